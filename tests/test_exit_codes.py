"""Every exit the README promises, met as a user meets it: the CLI as a subprocess, the
monitor in a pseudo-terminal, signals sent by PID.

Exit codes: 0 done, 1 the runner failed, 2 bad input (test_cli.py), 3 --strict and K
not shown to take effect, 4 the server stayed unreachable, 130 Ctrl-C, 143 SIGTERM.
"""

from __future__ import annotations

import fcntl
import json
import os
import pty
import resource
import signal
import struct
import subprocess
import sys
import termios
import threading
import time
from pathlib import Path

import pytest
from conftest import tagged
from helpers import csv_rows, wait_rows

from halospec_tui.results import COLUMNS

CLI = [sys.executable, "-m", "halospec_tui"]
FAST = ["--sim-target-ms", "1.5", "--sim-reload-ms", "20"]
DATA = Path(__file__).parent / "data"


def run(args, timeout=240, **kw):
    return subprocess.run(
        CLI + args, capture_output=True, text=True, timeout=timeout, stdin=subprocess.DEVNULL, **kw
    )


def summary(csv: Path) -> dict:
    return json.loads(csv.with_name(csv.stem + "_summary.json").read_text())


def complete_rows(csv: Path) -> list[list[str]]:
    lines = csv.read_text().split("\n")
    assert lines[0] == ",".join(COLUMNS)
    return [line.split(",") for line in lines[1:] if line.count(",") == len(COLUMNS) - 1]


# -- 1: the runner failed -----------------------------------------------------------
CSV_LIMIT = 8192  # bytes: the CSV outgrows it after about 40 rows; the summaries fit


def _limit_file_size() -> None:  # in the child, before exec
    signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # EFBIG instead of a killed process
    resource.setrlimit(resource.RLIMIT_FSIZE, (CSV_LIMIT, CSV_LIMIT))


def _run_until_the_csv_fails(tmp_path: Path) -> tuple[subprocess.CompletedProcess, Path]:
    out = tmp_path / "r.csv"
    p = run(["--no-ui", "--plan", "quick", "--modes", "fixed_2", "--warmup", "0", "--steps", "200",
             "--cooldown", "0", "--backend", "sim", "--csv", str(out), *FAST],
            preexec_fn=_limit_file_size)  # fmt: skip
    return p, out


def test_exit_1_when_the_runner_fails(tmp_path, no_leftovers):
    p, out = _run_until_the_csv_fails(tmp_path)
    assert p.returncode == 1, p.stderr
    assert "halospec-tui: runner failed: OSError: [Errno 27] File too large" in p.stderr
    assert "error: runner failed: OSError" in p.stderr  # the log line as well
    # the row that did not fit is cut off whole: the file ends on a row's end
    assert out.stat().st_size <= CSV_LIMIT and out.read_bytes().endswith(b"\n")
    rows = complete_rows(out)
    # every step the run printed as done before the failure is in the CSV
    printed = [line for line in p.stdout.splitlines() if line.startswith("[fixed_2 ")]
    assert 10 <= len(rows) < 200
    assert [r[0] for r in rows] == [str(i) for i in range(1, len(rows) + 1)]
    assert len(printed) in (len(rows), len(rows) + 1)  # + the step whose row failed


def test_exit_1_still_writes_the_summaries_and_no_torn_row(tmp_path, no_leftovers):
    p, out = _run_until_the_csv_fails(tmp_path)
    assert p.returncode == 1
    assert summary(out)["meta"]["reason"] == "failed"
    assert out.read_text().endswith("\n")


# -- 3: --strict and K without effect -----------------------------------------------
def test_exit_3_strict_with_csv_and_summaries(tmp_path, no_leftovers):
    out = tmp_path / "s.csv"
    p = run(["--no-ui", "--plan", "quick", "--modes", "fixed_1,fixed_8", "--steps", "3", "--warmup", "0",
             "--backend", "sim", "--actuator", "field:speculative_draft_length", "--csv", str(out),
             "--strict", *FAST])  # fmt: skip
    assert p.returncode == 3, p.stderr
    assert p.stderr.strip().splitlines()[-1].startswith(
        "error: --strict: draft length had no effect: results compare identical configurations"
    )
    rows = csv_rows(out)
    assert [(r["mode"], r["draft_length"], r["success"]) for r in rows] == [
        ("fixed_1", "1", "1")] * 3 + [("fixed_8", "8", "1")] * 3  # fmt: skip
    assert {r["actuator"] for r in rows} == {"field:speculative_draft_length"}
    doc = summary(out)
    assert doc["meta"]["reason"] == "completed"  # the run itself completed
    assert doc["knob"]["status"] == "no-effect"
    assert [(m["mode"], m["steps"], m["successes"]) for m in doc["modes"]] == [
        ("fixed_1", 3, 3), ("fixed_8", 3, 3)]  # fmt: skip
    txt = out.with_name("s_summary.txt").read_text()
    assert "[WARNING] draft length had no effect" in txt
    md = out.with_name("s_summary.md").read_text()
    assert "Knob check: **no-effect**" in md
    # without --strict the same run exits 0
    p0 = run(["--no-ui", "--plan", "quick", "--modes", "fixed_1,fixed_8", "--steps", "2", "--warmup", "0",
              "--backend", "sim", "--actuator", "field", "--csv", str(tmp_path / "n.csv"), *FAST])  # fmt: skip
    assert p0.returncode == 0, p0.stderr


# -- 4: the server stayed unreachable -----------------------------------------------
def test_exit_4_when_the_server_dies_mid_run(tmp_path, no_leftovers):
    server = subprocess.Popen(
        CLI + ["serve-sim", "--port", "0", *FAST],
        stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, stdin=subprocess.DEVNULL, text=True,
    )  # fmt: skip
    cli = None
    try:
        line = server.stdout.readline()  # type: ignore[union-attr]
        assert line.startswith("HALOSPEC-SIM LISTENING 127.0.0.1:"), line
        url = "http://" + line.split()[2]
        out = tmp_path / "d.csv"
        cli = subprocess.Popen(
            CLI + ["--no-ui", "--plan", "quick", "--modes", "fixed_2", "--warmup", "0", "--steps", "1000",
                   "--cooldown", "0.02", "--base-url", url, "--server-down-after", "1", "--timeout", "5",
                   "--csv", str(out)],
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, stdin=subprocess.DEVNULL, text=True,
        )  # fmt: skip
        wait_rows(out, 3, cli)
        server.send_signal(signal.SIGKILL)  # by PID: the server we started
        server.wait(timeout=10)
        stdout, stderr = cli.communicate(timeout=120)
        assert cli.returncode == 4, stderr
        assert f"server at {url} unreachable for " in stderr and "stopping the run" in stderr
        rows = csv_rows(out)
        ok = [r for r in rows if r["success"] == "1"]
        assert len(ok) >= 3 and len(rows) < 1000
        # the steps after the kill failed, each after the original's three attempts
        failed = rows[len(ok) :]
        assert failed and all(r["success"] == "0" and r["attempts"] == "3" for r in failed)
        doc = summary(out)
        assert doc["meta"]["reason"] == "server-down"
        assert doc["modes"][0]["steps"] == len(rows)
        assert doc["modes"][0]["successes"] == len(ok)
        assert "Run server-down. Files:" in stdout
    finally:
        for proc in (cli, server):
            if proc is not None and proc.poll() is None:
                proc.kill()
                proc.wait(timeout=10)


# -- 130 and 143, headless ------------------------------------------------------------
@pytest.mark.parametrize(
    "sig,code,reason", [(signal.SIGINT, 130, "interrupted"), (signal.SIGTERM, 143, "terminated")]
)
def test_headless_signal_exit_codes(tmp_path, no_leftovers, sig, code, reason):
    out = tmp_path / "h.csv"
    cli = subprocess.Popen(
        CLI + ["--no-ui", "--plan", "quick", "--modes", "fixed_3", "--warmup", "0", "--steps", "1000",
               "--cooldown", "0.02", "--backend", "sim", "--csv", str(out), *FAST],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, stdin=subprocess.DEVNULL, text=True,
    )  # fmt: skip
    try:
        wait_rows(out, 3, cli)
        cli.send_signal(sig)
        stdout, stderr = cli.communicate(timeout=60)
    finally:
        if cli.poll() is None:
            cli.kill()
            cli.wait(timeout=10)
    assert cli.returncode == code, stderr
    assert f"{reason}: stopping after the request in flight" in stderr
    assert "Traceback" not in stderr
    rows = csv_rows(out)
    assert 3 <= len(rows) < 1000 and all(r["success"] == "1" for r in rows)
    assert [int(r["step"]) for r in rows] == list(range(1, len(rows) + 1))
    doc = summary(out)
    assert doc["meta"]["reason"] == reason and doc["modes"][0]["steps"] == len(rows)
    assert f"Run {reason}. Files:" in stdout


# -- 130 and 143 in the monitor, in a pseudo-terminal ------------------------------
class Terminal:
    """The CLI on a pseudo-terminal of 120x40, its output drained in the background."""

    def __init__(self, args: list[str], env: dict[str, str]) -> None:
        master, slave = pty.openpty()
        fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", 40, 120, 0, 0))
        self.proc = subprocess.Popen(
            CLI + args, stdin=slave, stdout=slave, stderr=slave, env=env, start_new_session=True
        )
        os.close(slave)
        self.master = master
        self.output = bytearray()
        self._reader = threading.Thread(target=self._drain, daemon=True)
        self._reader.start()

    def _drain(self) -> None:
        while True:
            try:
                chunk = os.read(self.master, 65536)
            except OSError:
                return
            if not chunk:
                return
            self.output += chunk

    def type(self, data: bytes) -> None:
        os.write(self.master, data)

    def close(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
        self.proc.wait(timeout=10)
        self._reader.join(timeout=10)
        os.close(self.master)


def _monitor(tmp_path: Path) -> tuple[Terminal, Path]:
    out = tmp_path / "m.csv"
    env = {**os.environ, "TERM": "xterm-256color", "COLUMNS": "120", "LINES": "40"}
    term = Terminal(
        ["--plan", "quick", "--modes", "fixed_4", "--warmup", "0", "--steps", "1000",
         "--cooldown", "0.02", "--backend", "sim", "--csv", str(out), *FAST],
        env,
    )  # fmt: skip
    return term, out


@pytest.mark.parametrize("how,code,reason", [("ctrl-c", 130, "interrupted"), ("sigterm", 143, "terminated")])
def test_monitor_exit_codes(tmp_path, no_leftovers, how, code, reason):
    term, out = _monitor(tmp_path)
    try:
        wait_rows(out, 3, term.proc)
        if how == "ctrl-c":
            term.type(b"\x03")  # the key, as typed: the monitor reads it in raw mode
        else:
            term.proc.send_signal(signal.SIGTERM)
        assert term.proc.wait(timeout=60) == code
    finally:
        term.close()
    text = term.output.decode(errors="replace")
    assert f"Run {reason}. Files:" in text
    assert "no terminal" not in text  # it really ran the monitor
    rows = csv_rows(out)
    assert 3 <= len(rows) < 1000
    doc = summary(out)
    assert doc["meta"]["reason"] == reason and doc["modes"][0]["steps"] == len(rows)


# -- report --format md ------------------------------------------------------------
def test_report_format_md_as_a_user_runs_it():
    p = run(["report", str(DATA / "golden.csv"), "--format", "md"], timeout=60)
    assert p.returncode == 0, p.stderr
    head, verdict = p.stdout.split("## Verdict", 1)  # the verdict: tests/test_verdict.py
    assert head == (DATA / "golden_summary.md").read_text().rstrip("\n") + "\n\n"
    assert "recommendation: " in verdict
    one = run(["report", str(DATA / "golden.csv"), "--run", "1", "--format", "md"], timeout=60)
    assert one.stdout == "<!-- run 1: 14 rows -->\n" + p.stdout


# -- HALOSPEC_DEBUG_JSON=1 -----------------------------------------------------------
@pytest.mark.parametrize("flag,logged", [("1", True), ("0", False)])
def test_debug_json_from_the_environment(tmp_path, no_leftovers, flag, logged):
    out = tmp_path / "j.csv"
    p = run(["--no-ui", "--plan", "quick", "--modes", "fixed_2", "--warmup", "1", "--steps", "2",
             "--backend", "sim", "--csv", str(out), *FAST],
            env={**os.environ, "HALOSPEC_DEBUG_JSON": flag})  # fmt: skip
    assert p.returncode == 0, p.stderr
    prefix = "debug: response JSON: "
    docs = [json.loads(line[len(prefix) :]) for line in p.stderr.splitlines() if line.startswith(prefix)]
    if not logged:
        assert docs == [] and "debug:" not in p.stderr
        return
    assert len(docs) == 3  # one per request: 1 warmup + 2 measured
    rows = csv_rows(out)
    for doc, row in zip(docs[1:], rows, strict=True):
        assert doc["usage"]["completion_tokens"] == int(row["tokens"]) == 64
        assert doc["timings"]["draft_n"] == int(row["drafted"])
        assert doc["timings"]["draft_n_accepted"] == int(row["accepted"])


# -- the default: one burner per core -------------------------------------------------
def test_load_defaults_to_one_burner_per_core(tmp_path, no_leftovers):
    cores = os.cpu_count()
    out = tmp_path / "b.csv"
    cli = subprocess.Popen(
        CLI + ["--no-ui", "--plan", "quick", "--modes", "fixed_1", "--warmup", "0", "--steps", "1000",
               "--cooldown", "0.05", "--load", "--load-step", "1", "--load-duration", "60",
               "--backend", "sim", "--csv", str(out), *FAST],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, stdin=subprocess.DEVNULL, text=True,
    )  # fmt: skip
    try:
        deadline = time.monotonic() + 120
        while True:  # the burners, found from outside by the run's tag
            burners = [p for p in tagged(no_leftovers) if "spawn_main" in " ".join(p.cmdline())]
            if len(burners) >= cores or time.monotonic() > deadline:
                break
            assert cli.poll() is None
            time.sleep(0.1)
        assert len(burners) == cores
        wait_rows(out, 2, cli)
        cli.send_signal(signal.SIGTERM)
        stdout, stderr = cli.communicate(timeout=60)
    finally:
        if cli.poll() is None:
            cli.kill()
            cli.wait(timeout=10)
    assert cli.returncode == 143, stderr
    assert f"info: load: {cores} worker(s) for 60 s (fixed_1 step 1)" in stderr
    assert "-- load ON: fixed_1 step 1" in stdout
    assert {r["phase"] for r in csv_rows(out)} == {"load"}
