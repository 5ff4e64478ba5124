"""Property tests: the controller stays in bounds; summaries survive the CSV round trip."""

import math

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from halospec_tui.controllers import K_MAX, K_MIN, ThresholdController, threshold_rule
from halospec_tui.events import StepRecord
from halospec_tui.results import (
    CsvWriter,
    build_report,
    one_line,
    read_runs,
    sample_from_record,
    summary_json,
    summary_markdown,
    summary_text,
)

latency = st.integers(min_value=0, max_value=120_000)


@given(
    warmup=st.lists(latency, max_size=8),
    outcomes=st.lists(st.tuples(st.booleans(), latency), min_size=1, max_size=60),
)
def test_controller_k_always_within_bounds(warmup, outcomes):
    c = ThresholdController()
    c.calibrate(warmup)
    # the thresholds, recomputed by hand: nearest-rank p50/p95, floors of 0.85 and 1.05
    if warmup:
        v = sorted(warmup)
        p50, p95 = v[math.ceil(0.5 * len(v)) - 1], v[math.ceil(0.95 * len(v)) - 1]
        want = (math.floor(p50 * 0.85), math.floor(p95 * 1.05), p50, p95)
    else:
        want = (9000, 22000, None, None)
    t = c.thresholds
    assert (t.low_ms, t.high_ms, t.p50_ms, t.p95_ms) == want
    for ok, lat in outcomes:
        k = c.next_k()
        assert K_MIN <= k <= K_MAX
        c.observe(k, ok, lat)


@given(ema=st.one_of(st.none(), latency), k=st.integers(K_MIN, K_MAX), low=latency, high=latency)
def test_rule_moves_at_most_two_and_stays_in_bounds(ema, k, low, high):
    n = threshold_rule(ema, k, low, high)
    assert K_MIN <= n <= K_MAX and -2 <= n - k <= 1


modes = st.sampled_from(["fixed_1", "fixed_4", "fixed_8", "adaptive"])
record = st.builds(
    lambda mode, phase, k, ok, lat, tok, drafted, acc, err: dict(
        arm=mode,
        phase=phase,
        draft_length=k,
        success=ok,
        latency_ms=lat if ok else 0,
        tokens=tok if ok else 0,
        drafted=drafted,
        accepted=None if drafted is None else min(acc, drafted),
        error=err,
    ),  # fmt: skip
    modes,
    st.sampled_from(["steady", "load", "recovery"]),
    st.integers(1, 16),
    st.booleans(),
    latency,
    st.integers(0, 4096),
    st.one_of(st.none(), st.integers(0, 500)),
    st.integers(0, 500),
    st.text(max_size=30),
)


@settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(rows=st.lists(record, min_size=1, max_size=40))
def test_report_of_written_csv_equals_report_of_rows(tmp_path, rows):
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
    runs = read_runs(path)
    assert len(runs) == 1 and len(runs[0].rows) == len(rows)
    assert [row["error"] for row in runs[0].rows] == [one_line(r["error"]) for r in rows]
    direct = build_report([sample_from_record(r) for r in records])
    from_csv = build_report(runs[0].samples)
    assert from_csv == direct
    assert summary_text(from_csv) == summary_text(direct)
    assert summary_json(from_csv) == summary_json(direct)
    assert summary_markdown(from_csv) == summary_markdown(direct)
    assert [s.steps for s in direct.summaries] == [
        sum(1 for r in rows if r["arm"] == m) for m in dict.fromkeys(r["arm"] for r in rows)
    ]
