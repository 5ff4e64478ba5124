import dataclasses
import json

import numpy as np
import pytest

from halospec_tui.events import StepRecord
from halospec_tui.results import (
    COLUMNS,
    ORIGINAL_COLUMNS,
    CsvWriter,
    ResultsError,
    build_report,
    iter_runs,
    read_runs,
    summary_json,
    summary_markdown,
    write_summaries,
)
from halospec_tui.results.export_md import md_escape
from halospec_tui.results.export_text import _row, classic_table, extras_table
from halospec_tui.stats import StepSample

# The header exactly as the original printed it (its notes/phase1_runs.md): Rust's
# `{:>8.1}` truncates "success" to "s".
ORIGINAL_HEADER = (
    "mode        steps        s%      fail          avg       median          p95        min"
    "        max       stddev     throughput      score"
)
# A row exactly as the original printed it, fed its own values.
ORIGINAL_ROW = (
    "fixed_1        10    100.0%         0    5752.2 ms      5331 ms      9463 ms    3948 ms"
    "    9463 ms    1451.0 ms     11.1 tok/s    10773.9"
)


def test_table_layout_matches_the_original_character_for_character():
    header = _row(
        [
            "mode",
            "steps",
            "s",
            "fail",
            "avg",
            "median",
            "p95",
            "min",
            "max",
            "stddev",
            "throughput",
            "score",
        ]
    )
    assert header == ORIGINAL_HEADER
    row = _row(
        [
            "fixed_1",
            "10",
            "100.0",
            "0",
            "5752.2 ms",
            "5331 ms",
            "9463 ms",
            "3948 ms",
            "9463 ms",
            "1451.0 ms",
            "11.1 tok/s",
            "10773.9",
        ]
    )
    assert row == ORIGINAL_ROW


def _samples():
    f = [(True, 100), (True, 300), (False, 0), (True, 200)]
    rows = [StepSample("fixed_1", 1, ok, lat, 64 if ok else 0) for ok, lat in f]
    rows += [StepSample("adaptive", k, True, 50, 64) for k in (4, 5, 5, 5, 5, 5)]
    return rows


def test_classic_table_numbers():
    text = classic_table(build_report(_samples()))
    lines = text.split("\n")
    assert lines[:6] == ["", "=" * 30, "HaloSpec Benchmark Summary", "=" * 30, "", ORIGINAL_HEADER]
    assert lines[6] == (
        "fixed_1         4     75.0%         1     200.0 ms       200 ms       300 ms     100 ms"
        "     300 ms      81.6 ms    320.0 tok/s      366.3"
    )
    assert lines[7] == (
        "adaptive        6    100.0%         0      50.0 ms        50 ms        50 ms      50 ms"
        "      50 ms       0.0 ms   1280.0 tok/s       75.0"
    )
    assert "\n[Adaptive Behavior] draft_length changes=1 | converged_at_step=6 (k=5)" in text
    assert text.endswith("\nWinner (lowest SLO-aware score): adaptive at 75.0")


def test_no_convergence_and_no_success_rows():
    rows = [StepSample("adaptive", k, True, 10, 64) for k in (1, 2, 3)]
    rows.append(StepSample("fixed_9", 9, False, 0, 0))
    text = classic_table(build_report(rows))
    assert "draft_length changes=2 | no convergence within run (k=5)" in text
    assert (
        "fixed_9         1      0.0%         1            -            -            -          -"
        "          -            -              -          -"
    ) in text


def _rec(g, step, arm="fixed_1", run_id="r1", **kw):
    base = dict(
        phase="steady", draft_length=1, success=True, latency_ms=100 + g, tokens=64, run_id=run_id
    )
    base.update(kw)
    return StepRecord(g, step, arm, **base)


def test_csv_writer_header_once_and_original_columns_first(tmp_path):
    p = tmp_path / "r.csv"
    w = CsvWriter(p)
    w.open()
    w.write(_rec(1, 1, drafted=10, accepted=7, acceptance=0.7, error="HTTP 500: x, y"))
    w.close()
    w = CsvWriter(p)
    w.open()
    w.write(_rec(1, 1, run_id="r2", success=False, latency_ms=0, tokens=0))
    w.close()
    lines = p.read_text().splitlines()
    assert lines[0] == ",".join(COLUMNS)
    assert tuple(lines[0].split(",")[:8]) == ORIGINAL_COLUMNS
    assert lines[1].startswith("1,1,fixed_1,steady,1,1,101,64,")
    assert lines[2].startswith("1,1,fixed_1,steady,1,0,0,0,")
    assert len(lines) == 3
    runs = read_runs(p)
    assert [(r.index, r.run_id, len(r.rows)) for r in runs] == [(1, "r1", 1), (2, "r2", 1)]
    assert runs[0].rows[0]["error"] == "HTTP 500: x, y"
    assert runs[0].samples[0].drafted == 10


def test_refuses_to_append_to_a_different_header(tmp_path):
    p = tmp_path / "orig.csv"
    p.write_text(",".join(ORIGINAL_COLUMNS) + "\n1,1,fixed_1,steady,1,1,100,64\n")
    with pytest.raises(ResultsError, match="original harness"):
        CsvWriter(p).open()
    q = tmp_path / "other.csv"
    q.write_text("a,b\n")
    with pytest.raises(ResultsError, match="header differs"):
        CsvWriter(q).open()


def test_reads_the_original_csv_and_splits_runs_on_restart(tmp_path):
    p = tmp_path / "orig.csv"
    p.write_text(
        ",".join(ORIGINAL_COLUMNS)
        + "\n1,1,fixed_1,steady,1,1,100,64\n2,2,fixed_1,steady,1,1,200,64\n"
        + "1,1,fixed_1,steady,1,1,300,64\n"
    )
    runs = read_runs(p)
    assert [len(r.rows) for r in runs] == [2, 1]
    assert build_report(runs[0].samples).summaries[0].avg == 150.0


@pytest.mark.parametrize(
    "content,msg",
    [
        ("x,y\n1,2\n", "not a results CSV"),
        (",".join(ORIGINAL_COLUMNS) + "\n1,1,m,steady,one,1,1,1\n", ":2: not a results row"),
    ],
)
def test_read_rejects_non_results(tmp_path, content, msg):
    p = tmp_path / "bad.csv"
    p.write_text(content)
    with pytest.raises(ResultsError, match=msg):
        read_runs(p)


def test_markdown_defuses_formulas_and_markup():
    assert md_escape('=HYPERLINK("x")') == '\'=HYPERLINK("x")'
    assert md_escape("a|b") == "a\\|b"
    assert md_escape("-3.5") == "-3.5"
    assert md_escape("[x](javascript:y)") == "\\[x\\](javascript:y)"
    rows = [StepSample("=cmd|' /C calc'!A0", 1, True, 10, 64)]
    md = summary_markdown(build_report(rows))
    assert "| '=cmd\\|' /C calc'\\!A0" in md.replace("**", "")


def test_summary_files(tmp_path):
    p = tmp_path / "res.csv"
    paths = write_summaries(p, build_report(_samples()), {"run_id": "x"})
    assert [q.name for q in paths] == ["res_summary.txt", "res_summary.json", "res_summary.md"]
    doc = json.loads(paths[1].read_text())
    assert doc["winner"] == "adaptive" and doc["meta"]["run_id"] == "x"
    assert doc["modes"][0]["p95"] == 300
    assert ORIGINAL_HEADER in paths[0].read_text()


def test_extras_table_and_knob_line():
    rows = [
        StepSample(
            "fixed_1", 1, True, 100, 64, drafted=30, accepted=24, predicted_n=64, predicted_ms=80.0
        ),
        StepSample(
            "fixed_8",
            8,
            True,
            100,
            64,
            drafted=90,
            accepted=45,
            predicted_n=64,
            predicted_ms=64.0,
            reload_ms=400,
        ),
    ]
    lines = extras_table(build_report(rows)).split("\n")
    assert lines[1] == "mode         drafted  accepted  accept%  srv tok/s  reloads  reload ms"
    assert lines[2] == "fixed_1           30        24     80.0      800.0        0          0"
    assert lines[3] == "fixed_8           90        45     50.0     1000.0        1        400"
    # passes = tokens - accepted: 40 at K=1, 19 at K=8
    assert lines[5] == "[OK] K took effect: drafted/pass 0.75 at K=1 vs 4.74 at K=8"


def test_regret_lines_in_text_json_and_markdown():
    rows = [
        StepSample("fixed_2", 2, True, 200, 64, phase="load"),
        StepSample("fixed_4", 4, True, 160, 64, phase="load"),
        StepSample("adaptive", 4, True, 176, 64, phase="load"),
    ]
    report = build_report(rows)
    line = "adaptive vs best fixed in load: 176.0 ms vs 160.0 ms (fixed_4), regret +10.0%"
    assert line in extras_table(report).split("\n")
    assert json.loads(summary_json(report))["regret"] == [
        {
            "phase": "load",
            "best_fixed": "fixed_4",
            "best_ms": 160.0,
            "adaptive_ms": 176.0,
            "regret": pytest.approx(0.1), "arm": "adaptive",
        }
    ]
    assert (
        "- adaptive vs best fixed in load: 176.0 ms vs 160.0 ms (fixed\\_4), regret +10.0%"
        in summary_markdown(report)
    )


def test_regret_against_a_zero_ms_best_arm_is_not_a_number():
    # Found by hypothesis: a hand-made CSV whose best fixed arm averages 0 ms.
    rows = [
        StepSample("fixed_1", 1, True, 0, 0),
        StepSample("adaptive", 1, True, 0, 0),
    ]
    report = build_report(rows)
    assert report.regret[0].regret is None
    line = "adaptive vs best fixed in steady: 0.0 ms vs 0.0 ms (fixed_1), regret n/a"
    assert line in extras_table(report).split("\n")
    assert json.loads(summary_json(report))["regret"][0]["regret"] is None


# -- a run kept as numpy columns ---------------------------------------------------------
def _write_records(p, records):
    w = CsvWriter(p)
    w.open()
    for r in records:
        w.write(r)
    w.close()


def _varied_records() -> list[StepRecord]:
    """Every kind of value a column can hold: empty, 0, the largest allowed, names."""
    stamp = "2026-01-01T00:00:0{}.900+00:00".format
    return [
        StepRecord(1, 1, "fixed_1", "steady", 1, True, 812, 64, timestamp=stamp(1), run_id="A",
                   actuator="request", drafted=10, accepted=5, predicted_n=64, predicted_ms=700.25,
                   round=1, prompt_class="open"),
        StepRecord(2, 2, "adaptive", "load", 0, False, 0, 0, run_id="A", reload_ms=120, settle=True),
        StepRecord(3, 3, "fixed_16", "steady", 16, True, 86_400_000, 10_000_000, timestamp=stamp(3),
                   run_id="A", actuator="request", drafted=10_000_000, accepted=0,
                   predicted_n=10_000_000, predicted_ms=86_400_000.0, reload_ms=86_400_000,
                   round=1000, block_pos=999, prompt_class="structured"),
        StepRecord(4, 4, "nospec", "recovery", 0, True, 1, 1, timestamp="é ✓", run_id="A",
                   actuator="llama-server", drafted=0, accepted=0, predicted_n=1, predicted_ms=-0.0,
                   reload_ms=0, round=0, prompt_class="open"),
        StepRecord(5, 5, "fixed_01", "steady", 1, True, 5, 64, run_id="A", predicted_ms=0.001,
                   round=3, prompt_class="neutral"),
    ]  # fmt: skip


def _independent(r: StepRecord) -> StepSample:
    """The sample a record stands for, field by field (no CSV in between)."""
    return StepSample(
        "fixed_1" if r.arm == "fixed_01" else r.arm, r.draft_length, r.success, r.latency_ms,
        r.tokens, r.drafted, r.accepted, r.predicted_n, r.predicted_ms, r.reload_ms, r.phase,
        r.round, r.settle, r.actuator, r.timestamp, r.prompt_class,
    )  # fmt: skip


def test_columns_give_back_every_field_exactly(tmp_path):
    p = tmp_path / "v.csv"
    records = _varied_records()
    _write_records(p, records)
    (run,) = iter_runs(p)
    expected = [_independent(r) for r in records]
    assert (run.index, run.run_id, run.rows, len(run.samples)) == (1, "A", 5, 5)
    assert list(run.samples) == expected == read_runs(p)[0].samples
    assert [run.samples[i] for i in range(5)] == expected and run.samples[-1] == expected[-1]
    assert run.samples[1:3] == expected[1:3]
    s1, s3 = run.samples[1], run.samples[3]
    assert s1.drafted is None and s1.predicted_ms is None and s1.round is None
    assert type(run.samples[2].drafted) is int and type(run.samples[2].predicted_ms) is float
    assert str(s3.predicted_ms) == "-0.0" and s3.timestamp == "é ✓"
    assert run.samples.column("latency_ms").tolist() == [812, 0, 86_400_000, 1, 5]
    assert run.samples.column("drafted").tolist() == [10, -1, 10_000_000, 0, -1]  # -1: None
    predicted_ms = run.samples.column("predicted_ms").tolist()
    assert predicted_ms[0] == 700.25 and predicted_ms[1] != predicted_ms[1]  # NaN: None


def test_views_split_by_arm_in_order_and_share_one_sample_per_row(tmp_path):
    p = tmp_path / "v.csv"
    records = _varied_records()
    _write_records(p, records)
    (run,) = iter_runs(p)
    measured = run.samples.measured()
    assert measured is run.samples.measured()  # asked again: the same view
    assert list(measured) == [_independent(r) for r in records if not r.settle]
    groups = measured.by_arm_views()
    assert groups is measured.by_arm_views()
    assert list(groups) == ["fixed_1", "fixed_16", "nospec"]
    assert [len(v) for v in groups.values()] == [2, 1, 1]
    assert groups["fixed_1"].at.tolist() == [0, 4] and groups["nospec"].at.tolist() == [3]
    assert groups["fixed_1"][1] is run.samples[4]  # built once, shared by every view
    assert [s.latency_ms for s in groups["fixed_1"]] == [812, 5]


def test_columns_hold_one_array_per_field_exactly():
    from halospec_tui.results.samples import FIELDS, Columns

    with pytest.raises(ValueError, match=r"^one array per field of StepSample, not \['arm'\]$"):
        Columns({"arm": np.zeros(1)}, ("fixed_1",))
    assert tuple(f.name for f in dataclasses.fields(StepSample)) == FIELDS


def test_iter_runs_reads_each_run_into_columns_equal_to_read_runs(tmp_path):
    p = tmp_path / "r.csv"
    w = CsvWriter(p)
    w.open()
    for g, (mode, rid) in enumerate([("fixed_1", "A"), ("fixed_2", "A"), ("fixed_1", "B")], 1):
        w.write(StepRecord(g, g, mode, "steady", int(mode[-1]), True, 800 + g, 64,
                           timestamp=f"2026-01-01T00:00:0{g}.000+00:00", run_id=rid,
                           drafted=9, accepted=4, predicted_ms=512.5, round=g, settle=g == 2))  # fmt: skip
    w.close()
    runs = list(iter_runs(p))
    assert [(r.index, r.run_id, r.rows) for r in runs] == [(1, "A", 2), (2, "B", 1)]
    assert [list(r.samples) for r in runs] == [r.samples for r in read_runs(p)]
    assert runs[0].samples[1].settle is True and runs[0].samples[1].timestamp.endswith("02.000+00:00")


def test_runs_and_bad_rows_across_chunks(tmp_path, monkeypatch):
    import halospec_tui.results.reader as reader

    monkeypatch.setattr(reader, "CHUNK_ROWS", 3)  # runs and faults fall across chunks
    p = tmp_path / "c.csv"
    plan = [(1, "A"), (2, "A"), (3, "A"), (4, "A"), (1, "B"), (2, "B"), (1, "C")]
    _write_records(p, [StepRecord(g, g, "fixed_2", "steady", 2, True, 100 * i, 64, run_id=rid)
                       for i, (g, rid) in enumerate(plan, 1)])  # fmt: skip
    runs = list(iter_runs(p))
    assert [(r.index, r.run_id, r.rows) for r in runs] == [(1, "A", 4), (2, "B", 2), (3, "C", 1)]
    assert [[s.latency_ms for s in r.samples] for r in runs] == [
        [100, 200, 300, 400], [500, 600], [700]
    ]  # fmt: skip
    assert [[s.latency_ms for s in r.samples] for r in read_runs(p)] == [
        [s.latency_ms for s in r.samples] for r in runs
    ]
    lines = p.read_text().splitlines()
    lines[5] = lines[5].replace(",fixed_2,steady,2,1,500,", ",fixed_2,steady,2,1,5x0,")
    p.write_text("\n".join(lines) + "\n")
    with pytest.raises(ResultsError) as e:
        list(iter_runs(p))
    assert str(e.value) == f"{p}:6: not a results row (latency_ms='5x0' is not an integer)"


def test_build_report_is_the_same_from_columns_and_from_a_list(tmp_path):
    from halospec_tui.results.export_text import summary_text

    records = []
    for rnd in range(1, 5):
        for mode, k in (("nospec", 0), ("fixed_2", 2), ("adaptive", 3)):
            for j in range(4):
                records.append(StepRecord(
                    len(records) + 1, len(records) + 1, mode, "load" if rnd == 3 else "steady", k,
                    j != 3 or rnd != 2, 900 - 50 * k + 7 * j + rnd, 64,
                    timestamp=f"2026-01-01T00:00:{rnd:02d}.{j}00+00:00", run_id="R",
                    actuator="request", drafted=16 * k if k else 0, accepted=8 * k, predicted_n=64,
                    predicted_ms=600.5 + j, reload_ms=40 if mode == "adaptive" and j == 0 else None,
                    round=rnd, settle=j == 0, prompt_class=("open", "structured")[j % 2],
                ))  # fmt: skip
    p = tmp_path / "b.csv"
    _write_records(p, records)
    (run,) = iter_runs(p)
    from_list = build_report([_independent(r) for r in records])
    from_cols = build_report(run.samples)
    assert from_cols == from_list
    assert summary_text(from_cols) == summary_text(from_list)
    assert summary_json(from_cols) == summary_json(from_list)
    assert summary_markdown(from_cols) == summary_markdown(from_list)


# -- torn tails, exact bytes ----------------------------------------------------------------
HEADER = ",".join(COLUMNS) + "\n"


def _row_line(g: int) -> str:
    return ",".join(str(c) for c in [g, g, "fixed_1", "steady", 1, 1, 100 + g, 64]
                    + [""] * (len(COLUMNS) - 8)) + "\n"  # fmt: skip


def test_tail_start_finds_the_last_newline_before_end(tmp_path):
    from halospec_tui.results.writer import _tail_start

    p = tmp_path / "b"
    p.write_bytes(b"\nab\ncd")
    with p.open("rb") as fh:
        assert _tail_start(fh, 6) == 4
        assert _tail_start(fh, 3) == 1
        assert _tail_start(fh, 1) == 1  # the newline at offset 0
        assert _tail_start(fh, 0) == 0
    p.write_bytes(b"abc")
    with p.open("rb") as fh:
        assert _tail_start(fh, 3) == 0
    p.write_bytes(b"x\n" + b"y" * 70_000)  # the last line spans two blocks of 65,536
    with p.open("rb") as fh:
        assert _tail_start(fh, 70_002) == 2
    p.write_bytes(b"x\n" + b"y" * 70_000 + b"\n")  # nothing at or after `end` is read
    with p.open("rb") as fh:
        assert _tail_start(fh, 70_002) == 2


def test_repair_leaves_whole_files_and_bare_headers_alone(tmp_path):
    from halospec_tui.results.writer import repair_torn_tail, torn_path

    p = tmp_path / "r.csv"
    p.write_bytes(b"")
    assert repair_torn_tail(p) is None and p.read_bytes() == b""
    p.write_text(HEADER)
    assert repair_torn_tail(p) is None and p.read_text() == HEADER
    p.write_text(HEADER[:-1])  # a header cut before its newline gets one
    assert repair_torn_tail(p) is None and p.read_text() == HEADER
    p.write_text(HEADER + _row_line(1) + _row_line(2))
    assert repair_torn_tail(p) is None and p.read_text() == HEADER + _row_line(1) + _row_line(2)
    assert not torn_path(p).exists()
    assert torn_path(p) == tmp_path / "r.csv.torn"


def test_repair_moves_a_fragment_aside_with_an_exact_message(tmp_path):
    from halospec_tui.results.writer import repair_torn_tail, torn_path

    p = tmp_path / "r.csv"
    torn_path(p).write_bytes(b"earlier\n")  # appended to, never replaced
    p.write_text(HEADER + _row_line(1) + "2,2,fix")
    msg = repair_torn_tail(p)
    assert msg == (
        f"{p}: its last row was torn (cut short by a crash or a full disk); "
        f"moved its 7 bytes to {p}.torn and appending after the last whole row"
    )
    assert p.read_text() == HEADER + _row_line(1)
    assert torn_path(p).read_bytes() == b"earlier\n2,2,fix\n"


def test_repair_moves_a_whole_line_with_the_wrong_cells_or_bytes(tmp_path):
    from halospec_tui.results.writer import repair_torn_tail, torn_path

    p = tmp_path / "r.csv"
    p.write_text(HEADER + _row_line(1) + "1,2,3\n")
    assert "moved its 6 bytes" in (repair_torn_tail(p) or "")
    assert p.read_text() == HEADER + _row_line(1) and torn_path(p).read_text() == "1,2,3\n"
    torn_path(p).unlink()
    bad = _row_line(2).encode().replace(b"fixed_1", b"fixed_\xff")
    p.write_bytes(HEADER.encode() + bad)
    assert f"moved its {len(bad)} bytes" in (repair_torn_tail(p) or "")
    assert p.read_text() == HEADER and torn_path(p).read_bytes() == bad
    torn_path(p).unlink()
    p.write_text(HEADER + _row_line(1)[:-1].replace(",,", ',"\n",', 1) + "\n")  # quoted newline
    assert repair_torn_tail(p) is not None  # its last physical line is not a whole row


def test_repair_counts_fields_against_the_columns_given(tmp_path):
    from halospec_tui.results.writer import repair_torn_tail

    p = tmp_path / "r.csv"
    p.write_text("a,b\n1,2\n")
    assert repair_torn_tail(p, columns=2) is None and p.read_text() == "a,b\n1,2\n"
    assert repair_torn_tail(p, columns=3) is not None and p.read_text() == "a,b\n"


# -- exact messages -------------------------------------------------------------------------
def test_check_row_names_the_column_and_the_value_exactly():
    from halospec_tui.results.reader import _short, check_row

    row = dict(zip(COLUMNS, _row_line(1)[:-1].split(","), strict=True))
    check_row(row)
    cases = [
        ({"step": None}, "step is missing"),
        ({"tokens": "6x"}, "tokens='6x' is not an integer"),
        ({"latency_ms": "-1"}, "latency_ms=-1 is below 0"),
        ({"success": ""}, "success='' must be 0 or 1"),
        ({"draft_length": "0", "mode": ""}, "draft_length=0 belongs to nospec or an adaptive arm, not ''"),
    ]  # fmt: skip
    for change, message in cases:
        bad = {k: v for k, v in {**row, **change}.items() if v is not None}
        with pytest.raises(ValueError) as e:
            check_row(bad)
        assert str(e.value) == message
    assert _short("x" * 40) == repr("x" * 40)
    assert _short("x" * 41) == repr("x" * 40 + "...")


def test_read_runs_and_iter_runs_warn_of_a_torn_last_row(tmp_path):
    from halospec_tui.results.reader import iter_runs

    p = tmp_path / "o.csv"
    p.write_text(",".join(ORIGINAL_COLUMNS) + "\n1,1,fixed_1,steady,1,1,100,64\n2,2,fix")
    said: list[str] = []
    assert [r.run_id for r in read_runs(p, said.append)] == [""]
    assert [(r.run_id, r.rows) for r in iter_runs(p, said.append)] == [("", 1)]
    assert said == [f"{p}:3: skipped a torn last row (cut short by a crash or a full disk)"] * 2


def test_summary_write_errors_list_what_failed_and_what_was_written(tmp_path, monkeypatch):
    import halospec_tui.results.summary_files as results
    from halospec_tui.results.summary_files import SummaryWriteError, summary_paths

    report = build_report([StepSample("fixed_1", 1, True, 100, 64)])
    csv_path = tmp_path / "s.csv"
    paths = summary_paths(csv_path)
    paths["json"].mkdir()  # a folder where the json summary goes
    with pytest.raises(SummaryWriteError) as e:
        write_summaries(csv_path, report)
    assert e.value.written == [paths["txt"], paths["md"]]
    assert e.value.failed == [(paths["json"], "Is a directory")]
    assert str(e.value) == f"{paths['json']}: Is a directory"
    assert sorted(x.name for x in tmp_path.iterdir()) == ["s_summary.json", "s_summary.md", "s_summary.txt"]

    def refuse(path, text):
        raise OSError("no room")

    monkeypatch.setattr(results, "_write_whole", refuse)
    with pytest.raises(SummaryWriteError) as e:
        write_summaries(csv_path, report)
    assert e.value.written == [] and [why for _, why in e.value.failed] == ["no room"] * 3
    assert str(e.value) == "; ".join(f"{p}: no room" for p in paths.values())


def test_write_whole_raises_the_first_error_and_leaves_no_temporary(tmp_path):
    from halospec_tui.results.summary_files import _write_whole

    target = tmp_path / "x.txt"
    (tmp_path / ".x.txt.tmp").mkdir()  # the temporary cannot be opened, nor unlinked
    with pytest.raises(IsADirectoryError) as e:
        _write_whole(target, "é")
    assert e.value.__context__ is None  # the open's own error, not the cleanup's
    (tmp_path / ".x.txt.tmp").rmdir()
    _write_whole(target, "é\n")
    assert target.read_bytes() == "é\n".encode() and sorted(tmp_path.iterdir()) == [target]


def test_a_failed_row_write_cuts_the_file_back_and_closes(tmp_path, monkeypatch):
    import halospec_tui.results.writer as writer

    p = tmp_path / "w.csv"
    w = CsvWriter(p)
    w.open()
    w.write(StepRecord(1, 1, "fixed_1", "steady", 1, True, 101, 64))
    before = p.read_bytes()
    real_write = writer.os.write

    def part_then_full(fd, data):  # a full disk: 7 bytes go, then no more
        if len(data) > 7:
            return real_write(fd, bytes(data[:7]))
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(writer.os, "write", part_then_full)
    with pytest.raises(OSError, match=r"^\[Errno 28\] No space left on device$"):
        w.write(StepRecord(2, 2, "fixed_1", "steady", 1, True, 102, 64))
    assert p.read_bytes() == before and w._fd is None  # cut back, closed
    w.close()  # nothing left open: no error
    with pytest.raises(AssertionError, match="open"):
        w.write(StepRecord(3, 3, "fixed_1", "steady", 1, True, 103, 64))


def test_repair_moves_a_trailing_empty_line_alone(tmp_path):
    from halospec_tui.results.writer import repair_torn_tail, torn_path

    p = tmp_path / "r.csv"
    p.write_text(HEADER + _row_line(1) + "\n")
    assert "moved its 1 bytes" in (repair_torn_tail(p) or "")
    assert p.read_text() == HEADER + _row_line(1) and torn_path(p).read_text() == "\n"


def test_csv_writer_says_what_it_repaired_or_why_it_could_not(tmp_path, monkeypatch):
    import errno

    import halospec_tui.results.writer as results

    p = tmp_path / "w.csv"
    w = CsvWriter(p)
    assert w.repaired is None
    p.write_text(HEADER + _row_line(1) + "2,2")
    w.open()
    w.close()
    assert w.repaired == (
        f"{p}: its last row was torn (cut short by a crash or a full disk); "
        f"moved its 3 bytes to {p}.torn and appending after the last whole row"
    )
    w = CsvWriter(p)
    w.open()
    w.close()
    assert w.repaired is None

    def broken(path, columns=0):
        raise OSError(errno.EIO, "Input/output error")

    monkeypatch.setattr(results, "repair_torn_tail", broken)
    with pytest.raises(ResultsError, match=r"^cannot repair .*w\.csv: Input/output error$"):
        CsvWriter(p).open()

    def bare(path, columns=0):
        raise OSError("no reason")

    monkeypatch.setattr(results, "repair_torn_tail", bare)
    with pytest.raises(ResultsError, match=r"^cannot repair .*w\.csv: no reason$"):
        CsvWriter(p).open()


def test_a_sync_that_failed_in_the_background_is_raised_by_the_next_write(tmp_path, monkeypatch):
    import halospec_tui.results.writer as writer

    def broken(fd):
        raise OSError(5, "Input/output error")

    monkeypatch.setattr(writer.os, "fsync", broken)
    p = tmp_path / "w.csv"
    w = CsvWriter(p)
    w.open()
    w.write(StepRecord(1, 1, "fixed_1", "steady", 1, True, 101, 64))  # written, then synced
    assert w._syncer is not None
    w._syncer._thread.join(10)  # the sync failed: the thread has ended
    written = p.read_bytes()
    with pytest.raises(OSError, match=r"^\[Errno 5\] Input/output error$"):
        w.write(StepRecord(2, 2, "fixed_1", "steady", 1, True, 102, 64))
    assert p.read_bytes() == written and written.count(b"\n") == 2  # the header, row 1
    assert str(w.sync_error) == "[Errno 5] Input/output error"
    w.close()  # does not raise: the rows are written, their sync is what failed
    assert w._fd is None and str(w.sync_error) == "[Errno 5] Input/output error"


def test_dropping_a_partial_row_survives_a_failing_truncate_and_a_missing_file(tmp_path, monkeypatch):
    import halospec_tui.results.writer as writer

    p = tmp_path / "w.csv"
    w = CsvWriter(p)
    w.open()
    w.write(StepRecord(1, 1, "fixed_1", "steady", 1, True, 101, 64))
    size = p.stat().st_size
    p.write_bytes(p.read_bytes() + b"1,2,cut")
    w._drop_partial(size)
    assert w._fd is None and p.stat().st_size == size
    w = CsvWriter(p)
    w.open()

    def refuse(fd, length):
        raise OSError(5, "Input/output error")

    monkeypatch.setattr(writer.os, "ftruncate", refuse)
    w._drop_partial(0)  # cannot cut: closed all the same, no error
    assert w._fd is None and p.stat().st_size == size
    monkeypatch.undo()
    w = CsvWriter(p)
    w.open()
    p.unlink()
    w._drop_partial(0)  # the file is gone: nothing to cut, no error
    assert w._fd is None and not p.exists()


# -- the durability sync off the request path ------------------------------------------
def _step_row(g):
    return StepRecord(g, g, "fixed_1", "steady", 1, True, 100 + g, 64)


def test_a_row_is_in_the_file_when_write_returns_while_the_sync_is_still_running(tmp_path, monkeypatch):
    import threading

    import halospec_tui.results.writer as writer

    release = threading.Event()
    synced: list[tuple[int, str]] = []  # (rows in the file when the sync began, thread)
    real_fsync = writer.os.fsync

    def slow(fd):
        synced.append((len(p.read_text().splitlines()) - 1, threading.current_thread().name))
        assert release.wait(10)
        real_fsync(fd)

    monkeypatch.setattr(writer.os, "fsync", slow)
    p = tmp_path / "w.csv"
    w = CsvWriter(p, sync_every_s=0.0)
    w.open()
    for g in (1, 2, 3):
        w.write(_step_row(g))  # returns at once although the first sync is held
        assert len(p.read_text().splitlines()) == 1 + g  # the row is there for anyone
    deadline = threading.Event()
    while not synced and not deadline.wait(0.01):
        pass
    assert synced[0][1] == "csv-sync"  # synced by the background thread, not the writer
    release.set()
    w.close()
    assert synced[-1] == (3, threading.current_thread().name)  # close syncs once more
    assert [line.split(",")[0] for line in p.read_text().splitlines()[1:]] == ["1", "2", "3"]


def test_rows_written_faster_than_the_interval_cost_one_sync(tmp_path, monkeypatch):
    import threading

    import halospec_tui.results.writer as writer

    calls: list[str] = []
    real_fsync = writer.os.fsync
    monkeypatch.setattr(writer.os, "fsync", lambda fd: (calls.append(threading.current_thread().name), real_fsync(fd)))
    p = tmp_path / "w.csv"
    w = CsvWriter(p, sync_every_s=30.0)
    w.open()
    for g in range(1, 201):
        w.write(_step_row(g))
    w.close()  # stops the thread in its wait: it does not take the 30 s
    assert calls.count("csv-sync") <= 1 and calls[-1] == threading.current_thread().name
    assert len(calls) <= 2 and len(p.read_text().splitlines()) == 201


def test_a_killed_process_keeps_every_row_it_wrote_though_no_sync_ever_ended(tmp_path):
    import signal
    import subprocess
    import sys
    import threading

    p = tmp_path / "k.csv"
    child = subprocess.Popen(
        [sys.executable, "-c", f"""
import os, time
import halospec_tui.results.writer as writer
from halospec_tui.events import StepRecord
writer.os.fsync = lambda fd: time.sleep(3600)  # no sync ever ends
w = writer.CsvWriter({str(p)!r})
w.open()
for g in range(1, 6):
    w.write(StepRecord(g, g, "fixed_1", "steady", 1, True, 100 + g, 64))
print("written", flush=True)
time.sleep(3600)
"""],
        stdout=subprocess.PIPE, text=True,
    )  # fmt: skip
    timer = threading.Timer(60, child.kill)  # a write stuck behind a sync: fail, not hang
    timer.start()
    try:
        assert child.stdout is not None and child.stdout.readline() == "written\n"
    finally:
        timer.cancel()
        child.send_signal(signal.SIGKILL)
        child.wait(30)
    assert [line.split(",")[:2] for line in p.read_text().splitlines()[1:]] == [
        [str(g), str(g)] for g in range(1, 6)
    ]


def test_check_row_accepts_k_0_only_for_nospec_and_adaptive_arms():
    from halospec_tui.results.reader import check_row

    row = dict(zip(COLUMNS, _row_line(1)[:-1].split(","), strict=True))
    for mode in ("nospec", "adaptive", "adaptive:model"):
        check_row({**row, "draft_length": "0", "mode": mode})
    no_mode = {k: v for k, v in row.items() if k != "mode"}
    with pytest.raises(ValueError, match=r"^draft_length=0 belongs to nospec or an adaptive arm, not ''$"):
        check_row({**no_mode, "draft_length": "0"})
    for settle in ("", "0", "1"):
        check_row({**row, "settle": settle})
    check_row({k: v for k, v in row.items() if k != "settle"})
    with pytest.raises(ValueError, match=r"^settle='2' must be 0 or 1$"):
        check_row({**row, "settle": "2"})
    cases = [
        ({"drafted": "x"}, "drafted='x' is not a number"),
        ({"drafted": "", "accepted": "1e400"}, "accepted='1e400' must be a finite number >= 0"),
        ({"round": "-1"}, "round='-1' must be a finite number >= 0"),
        ({"predicted_ms": "nan"}, "predicted_ms='nan' must be a finite number >= 0"),
        ({"block_pos": "2.5e1x"}, "block_pos='2.5e1x' is not a number"),
    ]  # fmt: skip
    for change, message in cases:
        with pytest.raises(ValueError) as e:
            check_row({**row, **change})
        assert str(e.value) == message
    check_row({**row, "drafted": "0", "predicted_ms": "0.5", "round": "3"})


def test_iter_rows_reads_every_sound_row_and_names_each_fault(tmp_path):
    from halospec_tui.results.reader import iter_rows

    head = ",".join(ORIGINAL_COLUMNS) + "\n"
    ok1, ok2 = "1,1,fixed_1,steady,1,1,100,64\n", "2,2,fixed_1,steady,1,1,101,64\n"
    p = tmp_path / "a.csv"
    p.write_text(head + ok1 + "\n" + ok2)  # a blank line is skipped, not an end
    assert [n for n, _ in iter_rows(p)] == [2, 4]
    said: list[str] = []
    p.write_text(head + ok1 + ok2[:-1])  # a full-width last row without its newline
    assert [n for n, _ in iter_rows(p, said.append)] == [2]
    assert said == [f"{p}:3: skipped a torn last row (cut short by a crash or a full disk)"]
    p.write_text(head + ok1 + "3,3\n")  # the last row, whole but short: torn too
    assert [n for n, _ in iter_rows(p, said.append)] == [2] and len(said) == 2
    p.write_text(head + "1,1,fixed_1,steady,1,1,100,6x\n" + ok2)
    with pytest.raises(ResultsError) as e:
        list(iter_rows(p))
    assert str(e.value) == f"{p}:2: not a results row (tokens='6x' is not an integer)"
    p.write_text(head + "3,3\n" + ok2)
    with pytest.raises(ResultsError) as e:
        list(iter_rows(p))
    assert str(e.value) == f"{p}:2: not a results row (2 fields, the header has 8)"
    p.write_text(head + ok1 + "1," + "x" * 140_000 + "\n" + ok2)
    with pytest.raises(ResultsError) as e:
        list(iter_rows(p))
    assert str(e.value) == f"{p}:3: not a results row (field larger than field limit (131072))"
    p.write_text("")
    with pytest.raises(ResultsError, match=r"is not a results CSV: its header must start with global_step,"):
        list(iter_rows(p))
    with pytest.raises(ResultsError) as e:
        list(iter_rows(tmp_path))
    assert str(e.value) == f"{tmp_path}: cannot read (Is a directory)"


def test_sample_from_row_reads_the_round_and_the_settle_flag():
    from halospec_tui.results.reader import sample_from_row

    row = dict(zip(ORIGINAL_COLUMNS, ["1", "1", "fixed_1", "steady", "1", "1", "100", "64"],
                   strict=True))  # fmt: skip
    assert sample_from_row(row).round is None and sample_from_row(row).settle is False
    assert sample_from_row({**row, "round": "3", "settle": "1"}).round == 3
    assert sample_from_row({**row, "round": "", "settle": "0"}).round is None
    assert sample_from_row({**row, "settle": " 1 "}).settle is True


def test_summary_json_and_text_carry_the_class_regret_exactly():
    from halospec_tui.results.export_text import summary_text

    samples = [
        StepSample(m, k, True, ms, 64, prompt_class=c)
        for m, k, ms, c in [
            ("fixed_1", 1, 100, "open"), ("fixed_1", 1, 300, "structured"),
            ("adaptive", 2, 150, "open"), ("adaptive", 2, 240, "structured"),
        ]
    ]  # fmt: skip
    r = build_report(samples)
    assert json.loads(summary_json(r))["class_regret"] == [
        {"prompt_class": "structured", "best_fixed": "fixed_1", "best_ms": 300.0,
         "arm_ms": 240.0, "regret": 240.0 / 300.0 - 1.0, "arm": "adaptive"},
        {"prompt_class": "open", "best_fixed": "fixed_1", "best_ms": 100.0,
         "arm_ms": 150.0, "regret": 0.5, "arm": "adaptive"},
    ]  # fmt: skip
    assert summary_text(r) == classic_table(r) + "\n" + extras_table(r) + "\n"


def test_report_carries_actuator_nospec_drafting_tolerance_and_drops_into_every_format():
    from halospec_tui.results.export_json import verdict_dict
    from halospec_tui.results.export_text import (
        adapting_lines,
        regret_lines,
        verdict_lines,
        verdict_section,
    )
    from halospec_tui.results.report import Report

    samples = []
    for rnd in (1, 2, 3):
        for mode, k, ms in (("nospec", 0, 200), ("fixed_2", 2, 150), ("adaptive:model", 3, 400)):
            if mode == "adaptive:model" and rnd == 3:
                continue  # dropped after round 2
            for j in range(3):
                samples.append(StepSample(
                    mode, k, True, ms + j + rnd, 64, 4 if mode == "nospec" else None,
                    round=rnd, actuator="llama-server", settle=j == 0 and rnd == 1,
                    prompt_class="open",
                ))  # fmt: skip
    r = build_report(samples, tolerance=0.3)
    assert r.actuator == "llama-server" and r.nospec_drafted == 4 * 8
    assert r.class_regret == () and r.verdict is not None and r.decision is not None
    assert r.verdict.tolerance == 0.3 and r.verdict.interleaved
    # the adaptive arm stopped after round 2 (its rows say no more): two rounds of it
    assert r.verdict.line("adaptive:model").rounds == 2 and r.decision.rounds == 3
    assert verdict_section(r) == verdict_lines(r.verdict, r.decision, "llama-server", 32)
    assert "WARNING: nospec drafted 32 tokens: speculation was not switched off" in verdict_section(r)
    assert json.loads(summary_json(r))["verdict"] == json.loads(
        json.dumps(verdict_dict(r.verdict, r.decision, "llama-server"))
    )
    md = summary_markdown(r)
    assert md.endswith("## Verdict\n\n```text\n" + "\n".join(verdict_section(r)[1:]) + "\n```\n")
    assert "\n\nadaptive:model: 0 K changes, converged at step 5 (k=5).\n" in md
    assert adapting_lines(r)[0].startswith("adaptive:model: 0 K changes, 0 ms reloading for them; ")
    failing = build_report([StepSample("adaptive", 3, False, 0, 0)])
    assert adapting_lines(failing) == [
        "adaptive: 0 K changes, 0 ms reloading for them; - tok/s without, - tok/s with them"
    ]
    only_settle = build_report([StepSample("fixed_1", 1, True, 100, 64, settle=True)])
    assert only_settle.verdict is None and json.loads(summary_json(only_settle))["verdict"] is None
    assert verdict_section(Report(r.summaries, None, None, r.knob, verdict=r.verdict)) == []
    assert json.loads(summary_json(Report(r.summaries, None, None, r.knob, verdict=r.verdict)))[
        "verdict"
    ] is None
    two = build_report([
        StepSample(m, k, True, ms, 64, prompt_class=c)
        for m, k, ms, c in [("fixed_1", 1, 100, "open"), ("adaptive", 2, 150, "open"),
                            ("fixed_1", 1, 300, "structured"), ("adaptive", 2, 240, "structured")]
    ])  # fmt: skip
    assert regret_lines(two)[-1] == (
        "adaptive vs best fixed on open prompts: 150.0 ms vs 100.0 ms (fixed_1), regret +50.0%"
    )


def test_nospec_drafted_counts_only_successful_nospec_steps():
    def rep(*rows):
        return build_report([StepSample(m, k, ok, 100, 64, drafted=d) for m, k, ok, d in rows])

    assert rep(("nospec", 0, True, 3), ("nospec", 0, False, 5), ("fixed_2", 2, True, 8),
               ("nospec", 0, True, None)).nospec_drafted == 3  # fmt: skip
    assert rep(("fixed_2", 2, True, 8)).nospec_drafted is None
    assert rep(("nospec", 0, True, 0)).nospec_drafted is None
