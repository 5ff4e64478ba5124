"""The command line end to end: headless runs on the embedded server, report, bad input."""

import json
import subprocess
import sys

import pytest
from helpers import csv_rows

from halospec_tui.results import COLUMNS, ORIGINAL_COLUMNS

CLI = [sys.executable, "-m", "halospec_tui"]
FAST = ["--sim-target-ms", "1.5", "--sim-reload-ms", "20"]


def run(args, timeout=240, **kw):
    return subprocess.run(
        CLI + args, capture_output=True, text=True, timeout=timeout, stdin=subprocess.DEVNULL, **kw
    )


def test_quick_plan_headless_end_to_end(tmp_path, no_leftovers):
    out = tmp_path / "res.csv"
    p = run(["--no-ui", "--plan", "quick", "--backend", "sim", "--csv", str(out), *FAST])
    assert p.returncode == 0, p.stderr
    rows = csv_rows(out)
    modes = ["nospec"] + [f"fixed_{k}" for k in range(1, 9)] + ["adaptive"]
    assert [r["mode"] for r in rows] == [
        m for m in modes for _ in range(8 if m == "adaptive" else 4)
    ]
    assert [int(r["global_step"]) for r in rows] == list(range(1, 45))
    assert all(r["success"] == "1" and r["tokens"] == "64" for r in rows)
    assert {r["actuator"] for r in rows} == {"lemonade-load"}
    for r in rows:
        if r["mode"].startswith("fixed_"):
            assert int(r["draft_length"]) == int(r["mode"][6:]) == int(r["confirmed_k"])
        if r["mode"] == "nospec":  # the server ran without speculation: it drafted nothing
            assert (r["draft_length"], r["confirmed_k"], r["drafted"]) == ("0", "0", "0")
        assert int(r["drafted"]) >= int(r["accepted"]) >= 0
    summary = json.loads((tmp_path / "res_summary.json").read_text())
    assert [m["mode"] for m in summary["modes"]] == modes
    assert summary["knob"]["status"] == "effective"
    assert summary["meta"]["plan"] == "quick" and summary["meta"]["reason"] == "completed"
    txt = (tmp_path / "res_summary.txt").read_text()
    assert "HaloSpec Benchmark Summary" in txt and "Winner (lowest SLO-aware score):" in txt
    assert "[fixed_1 1/4] steady   K=1" in p.stdout
    # The report command reproduces the same summary from the CSV alone.
    rep = run(["report", str(out)])
    assert rep.returncode == 0
    assert rep.stdout.strip() == txt.strip()


def test_original_field_actuator_is_reported_as_no_effect(tmp_path, no_leftovers):
    out = tmp_path / "f.csv"
    p = run(["--no-ui", "--plan", "quick", "--modes", "fixed_1,fixed_8", "--steps", "2", "--warmup", "0",
             "--backend", "sim", "--actuator", "field:speculative_draft_length", "--csv", str(out), "--strict", *FAST])  # fmt: skip
    assert p.returncode == 3
    assert "draft length had no effect" in p.stderr
    assert "[WARNING] draft length had no effect" in p.stdout


def test_load_applies_the_same_timeline_to_every_arm(tmp_path, no_leftovers):
    out = tmp_path / "l.csv"
    p = run(["--no-ui", "--plan", "quick", "--modes", "fixed_2,adaptive", "--steps", "10", "--adaptive-steps", "10",
             "--warmup", "1", "--load", "--load-step", "2", "--load-duration", "1.5", "--load-workers", "1",
             "--cooldown", "0.3", "--backend", "sim", "--csv", str(out), *FAST])  # fmt: skip
    assert p.returncode == 0, p.stderr
    rows = csv_rows(out)
    for mode in ("fixed_2", "adaptive"):
        phases = [r["phase"] for r in rows if r["mode"] == mode]
        assert phases[0] == "steady" and phases[1] == "load" and phases[-1] == "recovery", phases
    p2 = run(["--no-ui", "--plan", "quick", "--modes", "fixed_2,adaptive", "--steps", "3", "--adaptive-steps", "3",
              "--warmup", "0", "--load-arms", "adaptive", "--load-step", "2", "--load-duration", "0.5",
              "--load-workers", "1", "--backend", "sim", "--csv", str(tmp_path / "l2.csv"), *FAST],
             env={"HALOSPEC_LOAD": "1", **__import__("os").environ})  # fmt: skip
    assert p2.returncode == 0, p2.stderr
    rows = csv_rows(tmp_path / "l2.csv")
    assert {r["phase"] for r in rows if r["mode"] == "fixed_2"} == {"steady"}
    assert [r["phase"] for r in rows if r["mode"] == "adaptive"][1] == "load"


def test_report_splits_appended_runs(tmp_path):
    p = tmp_path / "two.csv"
    p.write_text(
        ",".join(ORIGINAL_COLUMNS)
        + "\n1,1,fixed_1,steady,1,1,100,64\n2,2,fixed_1,steady,1,1,300,64\n"
        "1,1,fixed_1,steady,1,1,50,64\n"
    )
    every = run(["report", str(p)])
    assert every.returncode == 0
    assert "run 1: 2 rows" in every.stdout and "run 2: 1 rows" in every.stdout
    second = run(["report", str(p), "--run", "2", "--format", "json"])
    assert second.stderr == "run 2: 1 rows\n"  # beside the document, not in it
    doc = json.loads(second.stdout)
    assert doc["modes"][0]["avg"] == 50.0 and doc["meta"] == {"run": 2, "run_id": "", "rows": 1}


@pytest.mark.parametrize(
    "args,message",
    [
        (["--no-ui", "--plan", "nope"], "invalid choice"),
        (["--no-ui", "--modes", "fixed_17"], "outside 1..16"),
        (["--no-ui", "--modes", "fixed_0"], "outside 1..16"),
        (["--no-ui", "--modes", "banana"], "unknown arm"),
        (["--no-ui", "--steps", "-1"], "must not be negative"),
        (["--no-ui", "--base-url", "not a url"], "malformed base URL"),
        (["--no-ui", "--csv", "/nonexistent/dir/x.csv"], "does not exist"),
        # not writable even for root: the check tries, it does not read permission bits
        (["--no-ui", "--csv", "/proc/halospec.csv"], "cannot write /proc/halospec.csv"),
        (["--no-ui", "--actuator", "magic"], "unknown actuator"),
        (["--no-ui", "--actuator", "llama-server"], "needs --llama-server"),
        (["report", "/nonexistent.csv"], "no such file"),
        (["report", "pyproject.toml"], "not a results CSV"),
        (["--no-ui", "--sim-fault", "explode:1"], "unknown fault"),
        (["--no-ui", "--plan", "tune", "--rounds", "0"], "--rounds must be at least 1"),
        (["--no-ui", "--plan", "tune", "--block", "0"], "--block must be at least 1"),
        (["--no-ui", "--plan", "tune", "--tolerance", "-1"], "--tolerance must be at least 0 and below 1"),
        (["--no-ui", "--plan", "tune", "--max-time", "0"], "--max-time must be positive"),
        (["--no-ui", "--until-decisive"], "classic plan keeps the original's sequential"),
        (["--no-ui", "--plan", "quick", "--until-decisive"], "needs --schedule interleaved"),
        (["--no-ui", "--plan", "tune", "--modes", "nospec,fixed_x"], "unknown arm 'fixed_x'"),
        (["report", "pyproject.toml", "--tolerance", "2"], "--tolerance must be at least 0 and below 1"),
    ],
)
def test_bad_input_is_one_line_and_exit_2(args, message, no_leftovers):
    p = run(args, timeout=60)
    assert p.returncode == 2, (p.returncode, p.stderr)
    assert message in p.stderr
    assert "Traceback" not in p.stderr
    assert len(p.stderr.strip().splitlines()) == 1


def test_refuses_to_append_to_a_csv_with_another_header(tmp_path):
    f = tmp_path / "orig.csv"
    f.write_text(",".join(ORIGINAL_COLUMNS) + "\n")
    p = run(["--no-ui", "--csv", str(f), "--backend", "sim"], timeout=60)
    assert p.returncode == 2 and "refusing to append" in p.stderr
    assert f.read_text() == ",".join(ORIGINAL_COLUMNS) + "\n"


def test_engine_and_headless_never_import_textual():
    code = (
        "import sys, halospec_tui.cli, halospec_tui.headless, halospec_tui.runner, halospec_tui.session;"
        "bad=[m for m in sys.modules if m.split('.')[0] in ('textual','textual_plotext','plotext')];"
        "print(bad); sys.exit(1 if bad else 0)"
    )
    p = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert p.returncode == 0, p.stdout


def test_columns_keep_the_original_eight_first():
    assert COLUMNS[:8] == ORIGINAL_COLUMNS


def test_without_a_terminal_the_monitor_falls_back_to_headless(tmp_path, no_leftovers):
    out = tmp_path / "t.csv"
    p = run(["--plan", "quick", "--modes", "fixed_1", "--steps", "1", "--warmup", "0", "--backend", "sim",
             "--csv", str(out), "--log-file", str(tmp_path / "run.log"), *FAST])  # fmt: skip
    assert p.returncode == 0, p.stderr
    assert "no terminal: running headless" in p.stderr
    assert "[fixed_1 1/1] steady   K=1" in p.stdout
    assert len(csv_rows(out)) == 1
    log = (tmp_path / "run.log").read_text()
    assert " info    actuator lemonade-load: " in log and "fixed_1 step 1: reply" in log


def test_streaming_records_time_to_first_token(tmp_path):
    out = tmp_path / "s.csv"
    p = run(["--no-ui", "--plan", "quick", "--modes", "fixed_3", "--steps", "3", "--warmup", "0", "--stream",
             "--backend", "sim", "--csv", str(out), *FAST])  # fmt: skip
    assert p.returncode == 0, p.stderr
    rows = csv_rows(out)
    assert len(rows) == 3
    for r in rows:
        assert r["success"] == "1" and r["tokens"] == "64" and int(r["drafted"]) > 0
        assert 0 < float(r["ttft_ms"]) < int(r["latency_ms"])


def test_main_maps_the_error_tree_to_exit_2_and_lets_bugs_show(monkeypatch, capsys):
    from halospec_tui import cli
    from halospec_tui.sim.faults import FaultSpecError

    def bad_input(argv):
        raise FaultSpecError("unknown fault 'x'")

    monkeypatch.setattr(cli, "cmd_report", bad_input)
    assert cli.main(["report", "x.csv"]) == cli.EXIT_USAGE
    assert capsys.readouterr().err == "halospec-tui: error: unknown fault 'x'\n"

    def bug(argv):
        raise ValueError("a coding bug")

    monkeypatch.setattr(cli, "cmd_report", bug)
    with pytest.raises(ValueError, match="a coding bug"):
        cli.main(["report", "x.csv"])


def test_bad_sim_option_is_exit_2():
    p = run(["serve-sim", "--sim-acceptance", "2"])
    assert p.returncode == 2
    assert p.stderr == "halospec-tui: error: --sim-acceptance must be within 0..1\n"


def test_report_tolerance_minus_zero_reads_as_zero():
    p = run(["report", "tests/data/golden.csv", "--tolerance", "-0"], timeout=60)
    assert p.returncode == 0, p.stderr
    assert "tolerance 0%)" in p.stdout and "-0%" not in p.stdout
