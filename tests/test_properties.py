"""Property tests: the controller stays in bounds; summaries survive the CSV round trip."""

import math

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from halospec_tui.controllers import K_MAX, K_MIN, ThresholdController, threshold_rule
from halospec_tui.events import StepRecord
from halospec_tui.results import (
    CsvWriter,
    build_report,
    read_runs,
    sample_from_record,
    summary_json,
    summary_markdown,
    summary_text,
)
from halospec_tui.results.schema import one_line

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


# -- a chunk of rows is checked column by column as check_row checks each row ---------
CELLS = {
    "global_step": ["1", "0", "-1", "1000000000", "1000000001", "1e3", " 7", "x", "10" * 20],
    "step": ["3", "0", "-5", "1_000", ""],
    "mode": ["fixed_2", "nospec", "adaptive:model", "fixed_02", "pmin:0.5", "", "x"],
    "phase": ["steady", "load", ""],
    "draft_length": ["2", "0", "00", "16", "17", "-0", "2.0"],
    "success": ["1", "0", "", " 1", "yes"],
    "latency_ms": ["100", "0", "86400000", "86400001", "-1"],
    "tokens": ["64", "10000000", "10000001", "6x"],
    "drafted": ["", "3", "3.0", "2.5", "1e400", "nan", "-1", "10000001", "x"],
    "predicted_ms": ["", "812.25", "-0", "86400000.0", "86400000.5", "inf", "x"],
    "reload_ms": ["", "0", "86400000", "86400001"],
    "round": ["", "1", "0", "1000", "1001", "1e3", "1.5"],
    "block_pos": ["", "0", "999", "1000"],
    "settle": ["", "0", "1", "2", " 1"],
}


@settings(max_examples=400, deadline=None)
@given(row=st.fixed_dictionaries({c: st.sampled_from(v) for c, v in CELLS.items()}))
def test_a_chunk_is_refused_exactly_when_check_row_refuses_one_of_its_rows(row):
    from halospec_tui.results.reader import _Bad, _Reader, check_row, sample_from_row
    from halospec_tui.results.samples import ColumnsBuilder, Samples

    reader = _Reader("unused.csv", None)
    try:
        check_row(row)
        sound = True
    except ValueError:
        sound = False
    try:
        columns, g = reader._parse({c: (v,) for c, v in row.items()})
    except _Bad:
        assert not sound, row
        return
    assert sound, row
    built = ColumnsBuilder()
    built.add(columns, (row.get("timestamp", ""),))
    assert list(Samples(built.build(reader.codes.names()))) == [sample_from_row(row)]
    assert g.tolist() == [int(row["global_step"])]
