"""Exact values at the boundaries of the pure core: each test pins one rule so that a
one-character change to it (a truncation dropped, `<` for `<=`, a factor halved, a
format widened) fails a test named after the rule."""

from __future__ import annotations

from pathlib import Path

import pytest

from halospec_tui.controllers import (
    DEFAULT_HIGH_MS,
    DEFAULT_LOW_MS,
    K_MAX,
    K_START,
    ThresholdController,
    Thresholds,
    ema_update,
    make_controller,
    threshold_rule,
    thresholds_from_warmup,
)
from halospec_tui.events import StepRecord
from halospec_tui.knob import NO_EFFECT, SHARE_OF_IDEAL, check_knob
from halospec_tui.results import (
    COLUMNS,
    CsvWriter,
    ResultsError,
    build_report,
    read_runs,
    record_cells,
    sample_from_record,
    sample_from_row,
    summary_paths,
)
from halospec_tui.results.schema import one_line
from halospec_tui.stats import StepSample


# -- the controller ---------------------------------------------------------------
def test_ema_is_truncated_to_whole_ms_before_the_rule():
    c = ThresholdController()
    c.calibrate([1000])  # p50 = p95 = 1000: low 850, high 1050
    assert c.thresholds == Thresholds(850, 1050, 1000, 1000)
    c.observe(4, True, 1050.4)  # type: ignore[arg-type]
    assert c.ema_ms == 1050.4
    # int(1050.4) = 1050 is not above high: in the band, K < 6 -> K + 1 (untruncated: K - 2)
    assert c.next_k() == 5


def test_ema_equal_to_low_is_inside_the_band():
    assert threshold_rule(850, 6, 850, 1050) == 6  # `<=` would give 7
    assert threshold_rule(849, 6, 850, 1050) == 7
    assert threshold_rule(850, 5, 850, 1050) == 6


def test_ema_equal_to_high_is_inside_the_band():
    assert threshold_rule(1050, 4, 850, 1050) == 5  # `>=` would give 2
    assert threshold_rule(1051, 4, 850, 1050) == 2
    assert threshold_rule(1050, 7, 850, 1050) == 7


def test_band_grows_k_only_below_six():
    assert threshold_rule(900, 5, 850, 1050) == 6
    assert threshold_rule(900, 6, 850, 1050) == 6
    assert threshold_rule(900, 8, 850, 1050) == 8
    assert threshold_rule(900, 1, 850, 1050) == 2


def test_rule_clamps_at_k_min_and_k_max():
    assert threshold_rule(100, K_MAX, 850, 1050) == K_MAX
    assert threshold_rule(100, 7, 850, 1050) == 8
    assert threshold_rule(5000, 3, 850, 1050) == 1
    assert threshold_rule(5000, 2, 850, 1050) == 1
    assert threshold_rule(5000, 1, 850, 1050) == 1
    assert threshold_rule(5000, 9, 850, 1050) == 7
    assert threshold_rule(5000, 12, 850, 1050, k_max=8) == 8
    assert threshold_rule(100, 5, 850, 1050, k_max=5) == 5
    assert threshold_rule(900, 5, 850, 1050, k_max=5) == 5
    assert threshold_rule(900, 0, 850, 1050) == 1


def test_rule_without_ema_keeps_k():
    assert threshold_rule(None, 3, 850, 1050) == 3
    assert threshold_rule(None, 8, 0, 0) == 8


def test_thresholds_are_floors_of_the_products():
    # p50 1001 -> 850.85 -> 850; p95 1001 -> 1051.05 -> 1051
    assert thresholds_from_warmup([1001]) == Thresholds(850, 1051, 1001, 1001)
    # nearest rank over 20 values: p50 = 10th, p95 = 19th
    warm = list(range(100, 2100, 100))
    assert thresholds_from_warmup(warm) == Thresholds(850, 1995, 1000, 1900)
    t = thresholds_from_warmup([])
    assert t == Thresholds(DEFAULT_LOW_MS, DEFAULT_HIGH_MS) == Thresholds(9000, 22000)
    assert not t.calibrated and thresholds_from_warmup([5]).calibrated


def test_ema_alpha_and_seed():
    assert ema_update(None, 1000) == 1000.0
    assert isinstance(ema_update(None, 1000), float)
    assert ema_update(1000.0, 2000) == pytest.approx(1400.0, abs=1e-9)
    assert ema_update(1000.0, 2000, alpha=0.5) == 1500.0


def test_controller_defaults_failure_and_k_max():
    c = ThresholdController()
    assert c.name == "threshold" and c.ema_ms is None
    assert c.thresholds == Thresholds(9000, 22000)
    assert c.next_k() == K_START == 4  # no success yet: K stays
    c.observe(4, False, 0)
    assert c.ema_ms is None and c.next_k() == 1  # failure: base K 1, rule not applied
    c.observe(1, True, 100)  # EMA 100 < 9000 -> K + 1
    assert c.ema_ms == 100.0 and c.next_k() == 2
    c.observe(2, True, 30000)  # 0.4*30000 + 0.6*100 = 12060: in the default band
    assert c.ema_ms == pytest.approx(12060.0) and c.next_k() == 3
    small = ThresholdController(k_start=5, k_max=5, alpha=1.0)
    small.observe(5, True, 10)
    assert small.ema_ms == 10.0 and small.next_k() == 5
    small.observe(5, True, 30)
    assert small.ema_ms == 30.0  # alpha 1: the last sample only
    assert isinstance(make_controller("threshold"), ThresholdController)
    with pytest.raises(ValueError, match=r"unknown controller 'x' \(choose from threshold, model, bandit\)"):
        make_controller("x")


# -- the knob verdict -------------------------------------------------------------
def _pass_samples(k: int, drafted: int, tokens: int = 64, accepted: int = 32) -> StepSample:
    return StepSample("m", k, True, 100, tokens, drafted=drafted, accepted=accepted)


def test_knob_threshold_is_inclusive():
    # drafted/pass 2.0 at K=1 vs 3.0 at K=2: exactly 1 + 0.5 * (2/1 - 1) times more
    v = check_knob([_pass_samples(1, 64), _pass_samples(2, 96)])
    assert v.status == "effective"
    assert v.message == "K took effect: drafted/pass 2.00 at K=1 vs 3.00 at K=2"


def test_knob_share_of_ideal_is_one_half():
    assert SHARE_OF_IDEAL == 0.5
    # 2.75 is above 1.25 x 2.0 (a quarter share) but below 1.5 x 2.0
    v = check_knob([_pass_samples(1, 64), _pass_samples(2, 88)])
    assert v.status == "no-effect"
    assert v.message == f"{NO_EFFECT} (drafted/pass 2.00 at K=1 vs 2.75 at K=2)"
    # just above the line (3.03 > 3.0) is effective, just below (2.97) is not
    assert check_knob([_pass_samples(1, 64), _pass_samples(2, 97)]).status == "effective"
    assert check_knob([_pass_samples(1, 64), _pass_samples(2, 95)]).status == "no-effect"


def test_knob_compares_smallest_and_largest_k_only():
    # K=4 in the middle draft nothing special; the verdict reads K=2 against K=8
    samples = [_pass_samples(2, 64), _pass_samples(4, 10), _pass_samples(8, 160)]
    v = check_knob(samples)
    # needed 1 + 0.5 * (8/2 - 1) = 2.5: 5.0 >= 2.5 * 2.0
    assert v.message == "K took effect: drafted/pass 2.00 at K=2 vs 5.00 at K=8"


def test_knob_pools_every_step_of_a_k():
    samples = [_pass_samples(1, 32), _pass_samples(1, 96), _pass_samples(3, 192)]
    # K=1: 128 drafted / 64 passes = 2.00; K=3: 192 / 32 = 6.00; needed 2 x 2.0
    assert check_knob(samples).message == "K took effect: drafted/pass 2.00 at K=1 vs 6.00 at K=3"


def test_knob_per_request_when_a_pass_count_is_missing():
    samples = [
        StepSample("m", 1, True, 100, 64, drafted=10),
        StepSample("m", 1, True, 100, 64, drafted=20),
        StepSample("m", 4, True, 100, 64, drafted=37, accepted=None),
    ]
    # 15 per request at K=1, 37 at K=4: needed 1 + 0.5 * 3 = 2.5 -> 37.5: not reached
    v = check_knob(samples)
    assert v.message == f"{NO_EFFECT} (drafted/request 15.00 at K=1 vs 37.00 at K=4)"
    samples[-1] = StepSample("m", 4, True, 100, 64, drafted=38)
    assert check_knob(samples).status == "effective"
    # a step whose accepted equals its tokens has no pass: per request as well
    zero_pass = [_pass_samples(1, 10, tokens=5, accepted=5), _pass_samples(2, 20)]
    assert "drafted/request 10.00 at K=1 vs 20.00 at K=2" in check_knob(zero_pass).message


def test_knob_ignores_failed_steps_and_missing_drafting():
    failed = StepSample("m", 8, False, 0, 0, drafted=9999, accepted=0)
    v = check_knob([_pass_samples(1, 64), failed])
    assert v.status == "unverified"
    assert v.message == "only K=1 was measured: nothing to compare"
    v = check_knob([failed])
    assert v.message == "cannot confirm that K took effect: no successful step"
    v = check_knob([StepSample("m", 1, True, 100, 64), failed])
    assert v.message == "cannot confirm that K took effect: the server reports no drafted tokens"
    v = check_knob([_pass_samples(1, 0), _pass_samples(4, 0)])
    assert v.status == "no-effect"
    assert v.message == NO_EFFECT + " (the server drafted no tokens at all)"
    v = check_knob([_pass_samples(1, 0), _pass_samples(4, 1)])
    # from nothing at the smallest K to anything at the largest: growth (no division by 0)
    assert v.message == "K took effect: drafted/pass 0.00 at K=1 vs 0.03 at K=4"
    assert check_knob([]).status == "unverified"


# -- the CSV ----------------------------------------------------------------------
FLOAT_RECORD = StepRecord(
    global_step=7,
    step=2,
    arm="adaptive",
    phase="load",
    draft_length=5,
    success=True,
    latency_ms=1234,
    tokens=64,
    timestamp="2026-01-02T03:04:05.678+00:00",
    run_id="r1",
    ema_ms=1050.4,
    low_ms=850,
    high_ms=1050,
    actuator="lemonade-load",
    confirmed_k=5,
    reload_ms=20,
    drafted=100,
    accepted=40,
    acceptance=0.4,
    ttft_ms=12.0,
    prompt_ms=3.1256,
    predicted_ms=812.25,
    predicted_n=64,
    cpu_percent=99.9999,
    server_cpu_percent=0.0,
    prompt_id=3,
    attempts=2,
    error="a\r\nb\nc\rd",
)
# Written by hand from the column list in the README, not by the code under test.
FLOAT_HEADER = (
    "global_step,step,mode,phase,draft_length,success,latency_ms,tokens,timestamp,run_id,"
    "ema_ms,low_ms,high_ms,actuator,confirmed_k,reload_ms,drafted,accepted,acceptance,"
    "ttft_ms,prompt_ms,predicted_ms,predicted_n,cpu_percent,server_cpu_percent,prompt_id,"
    "attempts,error,round,block_pos,settle,prompt_class,tokens_reported,drafting_shared,"
    "server_kind,load_gbps,machine_gbps,condition,concurrency,client,step_ms"
)
FLOAT_LINE = (
    "7,2,adaptive,load,5,1,1234,64,2026-01-02T03:04:05.678+00:00,r1,"
    "1050.4,850,1050,lemonade-load,5,20,100,40,0.4,"
    "12,3.126,812.25,64,100,0,3,"
    "2,a b c d,,,0,,,0,,,,,,,"
)


def test_csv_floats_are_written_with_three_decimals_trimmed(tmp_path):
    p = tmp_path / "f.csv"
    w = CsvWriter(p)
    w.open()
    w.write(FLOAT_RECORD)
    w.write(StepRecord(8, 3, "fixed_1", "steady", 1, False, 0, 0))
    w.close()
    # defaults: empty optionals, attempts 1, no error, no round, not a settle step
    empty_tail = ",,,,,,,,,,,,,,,,,,,1,,,,0,,,0,,,,,,,"
    assert p.read_text() == (
        FLOAT_HEADER + "\n" + FLOAT_LINE + "\n" + "8,3,fixed_1,steady,1,0,0,0" + empty_tail + "\n"
    )
    assert ",".join(COLUMNS) == FLOAT_HEADER


def test_csv_float_cells_exactly():
    cells = dict(zip(COLUMNS, record_cells(FLOAT_RECORD), strict=True))
    assert cells["predicted_ms"] == "812.25"  # `.0f` would write 812
    assert cells["prompt_ms"] == "3.126"  # three decimals, rounded
    assert cells["ema_ms"] == "1050.4"
    assert cells["cpu_percent"] == "100"  # 99.9999 -> "100.000" -> trimmed
    assert cells["server_cpu_percent"] == "0"
    assert cells["ttft_ms"] == "12"
    assert cells["success"] == "1" and cells["error"] == "a b c d"
    nan = StepRecord(1, 1, "m", "steady", 1, True, 1, 1, predicted_ms=float("nan"))
    assert dict(zip(COLUMNS, record_cells(nan), strict=True))["predicted_ms"] == ""
    ten = StepRecord(1, 1, "m", "steady", 1, True, 1, 1, predicted_ms=10.0, prompt_ms=100.5)
    cells = dict(zip(COLUMNS, record_cells(ten), strict=True))
    assert (cells["predicted_ms"], cells["prompt_ms"]) == ("10", "100.5")  # not "1" or "100.5"


def test_one_line_replaces_every_line_break():
    assert one_line("a\r\nb\nc\rd") == "a b c d"
    assert one_line("x\r\n\r\ny") == "x  y"


def test_predicted_ms_is_read_back_as_float(tmp_path):
    p = tmp_path / "f.csv"
    w = CsvWriter(p)
    w.open()
    w.write(FLOAT_RECORD)
    w.close()
    s = read_runs(p)[0].samples[0]
    assert s.predicted_ms == 812.25 and isinstance(s.predicted_ms, float)
    assert (s.drafted, s.accepted, s.predicted_n, s.reload_ms) == (100, 40, 64, 20)
    assert s.phase == "load" and s.success is True and s.draft_length == 5
    summary = build_report([s]).summaries[0]
    assert summary.server_tps == 64 / (812.25 / 1000.0)  # read as 812: 78.818..., not 78.793...
    assert sample_from_record(FLOAT_RECORD) == s


def test_sample_from_a_row_of_the_original_csv():
    row = {
        "global_step": "1", "step": "1", "mode": "fixed_2", "phase": "steady",
        "draft_length": "2", "success": "0", "latency_ms": "0", "tokens": "0",
    }  # fmt: skip
    s = sample_from_row(row)
    assert s == StepSample("fixed_2", 2, False, 0, 0)
    assert sample_from_row({**row, "success": " 1 "}).success is True
    assert sample_from_row({**row, "drafted": "12.0", "predicted_ms": ""}).drafted == 12
    no_phase = {k: v for k, v in row.items() if k != "phase"}
    assert sample_from_row(no_phase).phase == "steady"


def _write(p: Path, rows: list[tuple[int, str]]) -> None:
    w = CsvWriter(p)
    w.open()
    for g, rid in rows:
        w.write(StepRecord(g, g, "fixed_1", "steady", 1, True, 100 * g, 64, run_id=rid))
    w.close()


def test_read_runs_splits_on_run_id(tmp_path):
    p = tmp_path / "ids.csv"
    _write(p, [(1, "a"), (2, "a"), (3, "b"), (4, "b")])  # global_step never restarts
    runs = read_runs(p)
    assert [(r.index, r.run_id, len(r.rows)) for r in runs] == [(1, "a", 2), (2, "b", 2)]
    assert [s.latency_ms for s in runs[1].samples] == [300, 400]


def test_read_runs_restarts_when_global_step_does_not_grow(tmp_path):
    p = tmp_path / "eq.csv"
    _write(p, [(1, "a"), (2, "a"), (2, "a"), (3, "a")])  # `<` would keep one run
    assert [len(r.rows) for r in read_runs(p)] == [2, 2]
    q = tmp_path / "one.csv"
    _write(q, [(1, "a"), (2, "a"), (5, "a")])
    assert [len(r.rows) for r in read_runs(q)] == [3]


def test_read_runs_errors_name_the_file_and_line(tmp_path):
    with pytest.raises(ResultsError, match=r"nope\.csv: no such file"):
        read_runs(tmp_path / "nope.csv")
    bad = tmp_path / "bad.csv"
    bad.write_text(FLOAT_HEADER + "\n1,1,m,steady,1,yes,1,1" + "," * 33 + "\n")
    with pytest.raises(ResultsError, match=r"bad\.csv:2: not a results row \(success='yes' must be 0 or 1\)"):
        read_runs(bad)
    binary = tmp_path / "bin.csv"
    binary.write_bytes(b"\xff\xfe\x00")
    with pytest.raises(ResultsError, match=r"bin\.csv:1: not text"):
        read_runs(binary)
    assert read_runs(_header_only(tmp_path)) == []


def _header_only(tmp_path: Path) -> Path:
    p = tmp_path / "h.csv"
    p.write_text(FLOAT_HEADER + "\n")
    return p


def test_csv_writer_refuses_a_missing_folder_and_appends_once(tmp_path):
    with pytest.raises(ResultsError, match=r"cannot write .*: folder .*missing does not exist"):
        CsvWriter(tmp_path / "missing" / "x.csv").open()
    p = tmp_path / "a.csv"
    _write(p, [(1, "a")])
    _write(p, [(1, "b")])
    lines = p.read_text().splitlines()
    assert lines[0] == FLOAT_HEADER and len(lines) == 3
    empty = tmp_path / "empty.csv"
    empty.write_text("")
    _write(empty, [(1, "a")])
    assert empty.read_text().splitlines()[0] == FLOAT_HEADER


def test_summary_paths_beside_the_csv(tmp_path):
    assert summary_paths(tmp_path / "r.csv") == {
        "txt": tmp_path / "r_summary.txt",
        "json": tmp_path / "r_summary.json",
        "md": tmp_path / "r_summary.md",
    }
    assert summary_paths("out.data")["txt"] == Path("out.data_summary.txt")
