"""Nothing lost, nothing poisoned: torn CSV rows, bad files for `report`, summary
files that cannot be written, and a signal while they are."""

import json
import resource
import signal
import subprocess
import sys

import pytest
from helpers import csv_rows

from halospec_tui.actuators import FieldActuator
from halospec_tui.cli import EXIT_INCOMPLETE, exit_code
from halospec_tui.events import ListSink, LogLine, RunFinished, StepRecord
from halospec_tui.plan import customise, named_plan
from halospec_tui.results import (
    COLUMNS,
    ORIGINAL_COLUMNS,
    CsvWriter,
    ResultsError,
    iter_runs,
    read_runs,
    record_cells,
    summary_paths,
)
from halospec_tui.results.writer import torn_path
from halospec_tui.runner import RunConfig, Runner

CLI = [sys.executable, "-m", "halospec_tui"]
FAST = ["--sim-target-ms", "1", "--sim-reload-ms", "5"]
SIM_RUN = ["--no-ui", "--plan", "quick", "--modes", "fixed_2", "--warmup", "0", "--cooldown", "0",
           "--backend", "sim", *FAST]  # fmt: skip


def cli(args, timeout=120, **kw):
    return subprocess.run(
        CLI + args, capture_output=True, text=True, timeout=timeout, stdin=subprocess.DEVNULL, **kw
    )


def rec(g, run_id="r1", **kw):
    base = dict(global_step=g, step=g, arm="fixed_1", phase="steady", draft_length=1,
                success=True, latency_ms=100 + g, tokens=64, run_id=run_id)  # fmt: skip
    base.update(kw)
    return StepRecord(**base)


def line(r):
    return ",".join(record_cells(r))


def two_runs_then_torn(p):
    """Run r1 (2 rows) and r2 (1 row), then r3's first row cut mid-way by a crash."""
    whole = [",".join(COLUMNS), line(rec(1)), line(rec(2)), line(rec(1, "r2"))]
    torn = line(rec(1, "r3"))[:23]
    p.write_text("\n".join(whole) + "\n" + torn)
    return torn


# -- torn last row ------------------------------------------------------------------
def test_appending_after_a_torn_row_moves_the_fragment_aside_first(tmp_path):
    p = tmp_path / "t.csv"
    torn = two_runs_then_torn(p)
    w = CsvWriter(p)
    w.open()
    w.write(rec(1, "r4"))
    w.close()
    assert w.repaired is not None
    assert "torn" in w.repaired and str(torn_path(p)) in w.repaired
    assert torn_path(p).read_text() == torn + "\n"
    runs = read_runs(p)
    assert [(r.run_id, len(r.rows)) for r in runs] == [("r1", 2), ("r2", 1), ("r4", 1)]
    assert runs[2].rows[0]["latency_ms"] == "101"


def test_a_last_row_with_the_wrong_field_count_is_moved_aside_too(tmp_path):
    p = tmp_path / "w.csv"
    p.write_text(",".join(COLUMNS) + "\n" + line(rec(1)) + "\n1,1,fixed_1\n")
    w = CsvWriter(p)
    w.open()
    w.close()
    assert w.repaired is not None and torn_path(p).read_text() == "1,1,fixed_1\n"
    assert p.read_text() == ",".join(COLUMNS) + "\n" + line(rec(1)) + "\n"


def test_a_whole_file_is_left_alone(tmp_path):
    p = tmp_path / "ok.csv"
    text = ",".join(COLUMNS) + "\n" + line(rec(1)) + "\n"
    p.write_text(text)
    w = CsvWriter(p)
    w.open()
    w.close()
    assert w.repaired is None and p.read_text() == text and not torn_path(p).exists()


def test_a_run_on_a_torn_csv_says_so_and_keeps_every_intact_run(tmp_path, no_leftovers):
    p = tmp_path / "c.csv"
    two_runs_then_torn(p)
    r = cli(SIM_RUN + ["--steps", "2", "--csv", str(p)])
    assert r.returncode == 0, r.stderr
    assert "its last row was torn" in r.stderr and str(torn_path(p)) in r.stderr
    runs = read_runs(p)
    assert [len(x.rows) for x in runs] == [2, 1, 2]
    assert [x.rows[0]["mode"] for x in runs] == ["fixed_1", "fixed_1", "fixed_2"]


def test_report_skips_a_torn_trailing_row_with_a_warning(tmp_path):
    p = tmp_path / "r.csv"
    two_runs_then_torn(p)
    r = cli(["report", str(p), "--format", "json"])
    assert r.returncode == 0, r.stderr
    assert r.stderr.splitlines() == [
        f"halospec-tui: warning: {p}:5: skipped a torn last row (cut short by a crash or a full disk)",
        "run 1 (r1): 2 rows",
        "run 2 (r2): 1 rows",
    ]
    docs = json.loads(r.stdout)  # one document: the two whole runs
    assert [d["meta"] for d in docs] == [
        {"run": 1, "run_id": "r1", "rows": 2}, {"run": 2, "run_id": "r2", "rows": 1},
    ]  # fmt: skip


def test_report_skips_a_torn_row_of_the_original_format_too(tmp_path):
    p = tmp_path / "o.csv"
    p.write_text(",".join(ORIGINAL_COLUMNS) + "\n1,1,fixed_1,steady,1,1,100,64\n2,2,fixed_1,st")
    warned = []
    runs = list(iter_runs(p, warned.append))
    assert [(r.index, r.rows) for r in runs] == [(1, 1)]
    assert warned == [f"{p}:3: skipped a torn last row (cut short by a crash or a full disk)"]


# -- report on bad files -------------------------------------------------------------
def _with(p, **cells):
    rows = [rec(1), rec(2), rec(3)]
    text = [",".join(COLUMNS)] + [line(r) for r in rows]
    bad = dict(zip(COLUMNS, record_cells(rows[1]), strict=True))
    bad.update({k: str(v) for k, v in cells.items()})
    text[2] = ",".join(bad[c] for c in COLUMNS)
    p.write_text("\n".join(text) + "\n")


@pytest.mark.parametrize(
    "cells,reason",
    [
        ({"drafted": "inf"}, "drafted='inf' must be a finite number >= 0"),
        ({"accepted": "nan"}, "accepted='nan' must be a finite number >= 0"),
        ({"draft_length": 0}, "draft_length=0 belongs to nospec or an adaptive arm, not 'fixed_1'"),
        ({"draft_length": -1}, "draft_length=-1 is below 0"),
        ({"latency_ms": -5}, "latency_ms=-5 is below 0"),
        ({"tokens": "1e3"}, "tokens='1e3' is not an integer"),
        ({"error": "x" * 140_000}, "field larger than field limit"),
        ({"success": "yes"}, "success='yes' must be 0 or 1"),
    ],
)
def test_report_names_file_line_and_reason_with_exit_2(tmp_path, cells, reason):
    p = tmp_path / "bad.csv"
    _with(p, **cells)
    r = cli(["report", str(p)])
    assert r.returncode == 2, r.stderr
    assert r.stderr.startswith(f"halospec-tui: error: {p}:3: ")
    assert reason in r.stderr
    assert len(r.stderr.strip().splitlines()) == 1 and "Traceback" not in r.stderr
    assert r.stdout == ""  # nothing half-reported


def test_a_short_row_in_the_middle_is_an_error_not_a_torn_row(tmp_path):
    p = tmp_path / "mid.csv"
    p.write_text(",".join(COLUMNS) + "\n1,1,fixed_1\n" + line(rec(2)) + "\n")
    with pytest.raises(ResultsError, match=r":2: not a results row \(3 fields, the header has"):
        read_runs(p)


def test_report_reads_one_run_at_a_time(tmp_path):
    # Memory is held per run, not per file: iter_runs hands each run over when it
    # ends, keeping only its samples (no row dictionaries).
    p = tmp_path / "many.csv"
    body = [line(rec(g, f"r{i}")) for i in range(3) for g in (1, 2, 3)]
    p.write_text(",".join(COLUMNS) + "\n" + "\n".join(body) + "\n")
    it = iter_runs(p)
    first = next(it)
    assert (first.index, first.run_id, first.rows, len(first.samples)) == (1, "r0", 3, 3)
    assert [s.latency_ms for s in first.samples] == [101, 102, 103]
    assert [r.run_id for r in it] == ["r1", "r2"]


# -- summaries that cannot be written ---------------------------------------------------
def plan(steps=2):
    return customise(named_plan("quick"), arms=["fixed_1"], warmup=0, steps=steps,
                     cooldown_s=0, warmup_sleep_s=0)  # fmt: skip


def refuse_summaries(csv):
    """Folders where the summary files should go: the folder 'refuses' them."""
    for path in summary_paths(csv).values():
        path.mkdir()


def test_refused_summaries_are_printed_named_and_exit_5(tmp_path, no_leftovers):
    out = tmp_path / "s.csv"
    refuse_summaries(out)
    r = cli(SIM_RUN + ["--steps", "2", "--csv", str(out)])
    assert r.returncode == EXIT_INCOMPLETE == 5, r.stderr
    assert "HaloSpec Benchmark Summary" in r.stdout and "fixed_2" in r.stdout
    for path in summary_paths(out).values():
        assert f"summary not written: {path}: Is a directory" in r.stderr
    assert "results incomplete" in r.stderr
    assert len(csv_rows(out)) == 2  # the CSV holds every step
    assert sorted(f.name for f in tmp_path.iterdir()) == sorted(
        ["s.csv", "s_summary.txt", "s_summary.json", "s_summary.md"]  # no temporary left
    )


def test_a_full_disk_while_writing_summaries_keeps_the_others_and_exits_5(tmp_path, no_leftovers):
    # RLIMIT_FSIZE makes every write past 2000 bytes fail (EFBIG, SIGXFSZ ignored):
    # the CSV of two steps fits, the JSON summary does not.
    out = tmp_path / "d.csv"

    def small_files():
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
        resource.setrlimit(resource.RLIMIT_FSIZE, (2000, 2000))

    r = cli(SIM_RUN + ["--steps", "2", "--csv", str(out)], preexec_fn=small_files)
    assert r.returncode == 5, r.stderr
    paths = summary_paths(out)
    assert f"summary not written: {paths['json']}: File too large" in r.stderr
    assert not paths["json"].exists()  # whole or not at all
    assert "HaloSpec Benchmark Summary" in paths["txt"].read_text()  # the others are kept
    assert paths["md"].exists()
    assert "HaloSpec Benchmark Summary" in r.stdout
    assert len(csv_rows(out)) == 2


def test_a_runner_error_and_a_summary_failure_are_both_reported(sim, tmp_path):
    class Broken(FieldActuator):
        calls = 0

        def apply(self, k, p_min=0.0, threads=None):
            Broken.calls += 1
            if Broken.calls == 3:  # 1: the mode start, 2: step 1
                raise RuntimeError("actuator exploded")
            return super().apply(k)

    from halospec_tui.client import ChatClient

    out = tmp_path / "b.csv"
    refuse_summaries(out)
    sink = ListSink()
    with pytest.raises(RuntimeError, match="exploded"):  # the original error stands
        Runner(RunConfig(plan(3), str(out)), ChatClient(sim.base_url, "m"), Broken(), sink).run()
    (done,) = sink.of(RunFinished)
    assert done.reason == "failed" and len(done.unwritten) == 3
    logs = [e.text for e in sink.of(LogLine)]
    assert "runner failed: RuntimeError: actuator exploded" in logs
    assert f"summary not written: {summary_paths(out)['txt']}: Is a directory" in logs
    assert len(csv_rows(out)) == 1


def test_a_signal_while_the_summaries_are_written_keeps_its_exit_code(sim, tmp_path, monkeypatch):
    import halospec_tui.runner as runner_mod
    from halospec_tui.client import ChatClient

    real = runner_mod.write_summaries
    box = {}

    def slow_write(*args, **kw):
        box["runner"].stop("terminated")  # SIGTERM lands while the files are written
        return real(*args, **kw)

    monkeypatch.setattr(runner_mod, "write_summaries", slow_write)
    runner = Runner(RunConfig(plan(2), str(tmp_path / "g.csv")), ChatClient(sim.base_url, "m"),
                    FieldActuator(), ListSink())  # fmt: skip
    box["runner"] = runner
    done = runner.run()
    assert done.reason == "terminated" and exit_code(done) == 143
    assert len(csv_rows(tmp_path / "g.csv")) == 2
    assert (tmp_path / "g_summary.json").exists()
    assert json.loads((tmp_path / "g_summary.json").read_text())["modes"][0]["steps"] == 2


def test_a_header_without_its_newline_gets_one_before_the_first_row(tmp_path):
    p = tmp_path / "h.csv"
    p.write_text(",".join(COLUMNS))
    w = CsvWriter(p)
    w.open()
    w.write(rec(1))
    w.close()
    assert w.repaired is None and not torn_path(p).exists()
    assert p.read_text() == ",".join(COLUMNS) + "\n" + line(rec(1)) + "\n"


def test_k_zero_is_a_row_of_nospec_or_of_an_adaptive_arm_that_chose_it(tmp_path):
    # adaptive:model and adaptive:bandit may choose K 0 (no speculation); report reads it
    p = tmp_path / "k0.csv"
    rows = [rec(1, arm="nospec", draft_length=0), rec(2, arm="adaptive:model", draft_length=0),
            rec(3, arm="adaptive:bandit", draft_length=0), rec(4, arm="adaptive", draft_length=0)]  # fmt: skip
    p.write_text(",".join(COLUMNS) + "\n" + "\n".join(line(r) for r in rows) + "\n")
    assert [s.draft_length for s in read_runs(p)[0].samples] == [0, 0, 0, 0]
    r = cli(["report", str(p)])
    assert r.returncode == 0, r.stderr
