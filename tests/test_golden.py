"""Expectations that do not come from the code under test.

- tests/data/golden.csv and its summaries were written by hand from the original's
  rules (nearest-rank percentiles, population stddev, score = avg + 0.5 p95 + 0.2 sd,
  its table format string), not produced by this package.
- The summary of a run is compared with one computed from the in-memory records,
  field by field, without the CSV's serialisation in between: a CSV that loses
  precision makes the two differ.
"""

from __future__ import annotations

import json
from pathlib import Path

from helpers import FakeClientBase
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from halospec_tui.actuators import FieldActuator
from halospec_tui.cli import main
from halospec_tui.client import Reply
from halospec_tui.events import ListSink, StepRecord
from halospec_tui.plan import customise, named_plan
from halospec_tui.results import (
    CsvWriter,
    build_report,
    read_runs,
    summary_json,
    summary_markdown,
    summary_text,
)
from halospec_tui.runner import RunConfig, Runner
from halospec_tui.stats import StepSample

DATA = Path(__file__).parent / "data"


def _head_and_verdict(out: str, marker: str) -> tuple[str, str]:
    """The hand-written part, and the verdict after it (bootstrap figures, which are
    not written by hand: tests/test_verdict.py pins them)."""
    i = out.index(marker)
    return out[:i], out[i:]


def test_golden_report_text(capsys):
    assert main(["report", str(DATA / "golden.csv")]) == 0
    head, verdict = _head_and_verdict(capsys.readouterr().out, "\nVerdict (")
    assert head == (DATA / "golden_summary.txt").read_text().rstrip("\n") + "\n"
    assert "\nrecommendation: " in verdict


def test_golden_report_markdown(capsys):
    assert main(["report", str(DATA / "golden.csv"), "--format", "md"]) == 0
    head, verdict = _head_and_verdict(capsys.readouterr().out, "## Verdict")
    assert head == (DATA / "golden_summary.md").read_text().rstrip("\n") + "\n\n"
    assert "\nrecommendation: " in verdict


def test_golden_report_json_figures(capsys):
    assert main(["report", str(DATA / "golden.csv"), "--format", "json"]) == 0
    doc = json.loads(capsys.readouterr().out)
    f1, f2, ad = doc["modes"]
    # by hand: fixed_1 ok latencies 1000, 1200, 1100 (one failure), tokens 64 + 64 + 60
    assert (f1["steps"], f1["successes"], f1["failures"], f1["success_rate"]) == (4, 3, 1, 0.75)
    assert (f1["avg"], f1["median"], f1["p95"], f1["min"], f1["max"]) == (
        1100.0, 1100, 1200, 1000, 1200,
    )  # fmt: skip
    assert f1["stddev"] == (20000 / 3) ** 0.5
    assert f1["throughput"] == 188 / 3.3
    assert f1["score"] == 1100.0 + 600 + 0.2 * (20000 / 3) ** 0.5
    assert (f2["avg"], f2["median"], f2["p95"]) == (950.0, 950, 1000)
    assert ad["draft_lengths"] == [4, 5, 6, 6, 6, 6, 6]
    assert (ad["k_changes"], ad["convergence_step"]) == (2, 7)
    assert (ad["median"], ad["p95"], ad["avg"]) == (900, 1000, 6100 / 7)
    assert doc["winner"] == "adaptive"
    assert doc["knob"]["status"] == "unverified"
    assert doc["regret"] == [
        {"phase": "steady", "best_fixed": "fixed_2", "best_ms": 950.0,
         "adaptive_ms": 6100 / 7, "regret": 6100 / 7 / 950.0 - 1.0, "arm": "adaptive"},
    ]  # fmt: skip


def independent_sample(r: StepRecord) -> StepSample:
    """A StepSample straight from the record's fields: no text in between."""
    return StepSample(
        arm=r.arm,
        draft_length=r.draft_length,
        success=r.success,
        latency_ms=r.latency_ms,
        tokens=r.tokens,
        drafted=r.drafted,
        accepted=r.accepted,
        predicted_n=r.predicted_n,
        predicted_ms=r.predicted_ms,
        reload_ms=r.reload_ms,
        phase=r.phase,
        round=r.round,
        settle=r.settle,
        actuator=r.actuator,
        timestamp=r.timestamp,
        prompt_class=r.prompt_class,
    )


latency = st.integers(min_value=0, max_value=120_000)
# server times as a server reports them: at most three decimals (llama.cpp prints ms
# with three), so an exact `.3f` CSV keeps them whole and a coarser one does not
ms3 = st.integers(min_value=1, max_value=10_000_000).map(lambda n: n / 1000)
record = st.builds(
    lambda mode, phase, k, ok, lat, tok, drafted, acc, pn, pms, rel: dict(
        arm=mode, phase=phase, draft_length=k, success=ok,
        latency_ms=lat if ok else 0, tokens=tok if ok else 0,
        drafted=drafted, accepted=None if drafted is None else min(acc, drafted),
        predicted_n=pn, predicted_ms=pms, reload_ms=rel,
    ),  # fmt: skip
    st.sampled_from(["fixed_1", "fixed_4", "fixed_8", "adaptive"]),
    st.sampled_from(["steady", "load", "recovery"]),
    st.integers(1, 16),
    st.booleans(),
    latency,
    st.integers(0, 4096),
    st.one_of(st.none(), st.integers(0, 500)),
    st.integers(0, 500),
    st.one_of(st.none(), st.integers(1, 512)),
    st.one_of(st.none(), ms3),
    st.one_of(st.none(), st.integers(0, 5000)),
)


@settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(rows=st.lists(record, min_size=1, max_size=30))
def test_report_from_csv_equals_report_from_records_in_memory(tmp_path, rows):
    path = tmp_path / "prop.csv"
    path.unlink(missing_ok=True)
    records = [
        StepRecord(global_step=i + 1, step=i + 1, run_id="p", **r) for i, r in enumerate(rows)
    ]
    w = CsvWriter(path)
    w.open()
    for r in records:
        w.write(r)
    w.close()
    (run,) = read_runs(path)
    direct = build_report([independent_sample(r) for r in records])
    from_csv = build_report(run.samples)
    assert from_csv == direct
    assert summary_text(from_csv) == summary_text(direct)
    assert summary_json(from_csv) == summary_json(direct)
    assert summary_markdown(from_csv) == summary_markdown(direct)


class TimedClient(FakeClientBase):
    """Answers with server timings that need the CSV's three decimals to survive."""

    base_url = "http://scripted"
    model = "m"

    def __init__(self) -> None:
        self.n = 0

    def chat(self, body):
        self.n += 1
        k = body["speculative_draft_length"]
        return Reply(True, 900 + 10 * self.n, 64, drafted=16 * k, accepted=30,
                     predicted_n=64, predicted_ms=812.25 + self.n / 8, prompt_ms=3.125)  # fmt: skip



def test_live_summary_equals_summary_of_records_in_memory(tmp_path):
    plan = customise(
        named_plan("quick"), arms=["fixed_1", "fixed_3", "adaptive"], warmup_sleep_s=0, cooldown_s=0
    )
    csv = tmp_path / "live.csv"
    runner = Runner(RunConfig(plan, str(csv)), TimedClient(), FieldActuator(), ListSink())
    finished = runner.run()
    direct = build_report([independent_sample(r) for r in runner.records])
    assert finished.summaries == direct.summaries
    assert finished.winner == direct.winner and finished.knob == direct.knob
    assert finished.summary_text == summary_text(direct)
    # and what `report` computes from the file agrees with both
    assert build_report(read_runs(csv)[0].samples) == direct
    s1 = direct.summaries[0]
    times = [812.25 + n / 8 for n in range(3, 7)]  # fixed_1: requests 3..6 after 2 warmups
    assert s1.server_tps == 4 * 64 / (sum(times) / 1000.0)
