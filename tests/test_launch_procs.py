"""A launched server is owned as a process group: restarted and ended with the workers
it starts, killed with them when the harness dies, given up when the run stops; and a
launch command that cannot serve ends the run before it begins, in one line, exit 2
or 4, with nothing left running. Against a stand-in engine (launch_standin.py)."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import psutil
import pytest
from conftest import CLI, tagged, wait_until_gone
from helpers import csv_rows

from halospec_tui.actuators import ActuatorInterrupted, ActuatorUnreachable
from halospec_tui.launch_template import parse_templates
from halospec_tui.launched import LaunchActuator, ServerStartError

STANDIN = str(Path(__file__).with_name("launch_standin.py"))
PY = sys.executable
SPEC = f"{PY} {STANDIN} --port {{port}} --k {{k}}"
NOSPEC = f"{PY} {STANDIN} --port {{port}}"


def _family(pid: int) -> list[int]:
    return [p.pid for p in psutil.Process(pid).children(recursive=True)]


def _gone(pids: list[int], deadline_s: float = 10.0) -> bool:
    deadline = time.monotonic() + deadline_s
    while time.monotonic() < deadline:
        alive = []
        for pid in pids:
            try:
                if psutil.Process(pid).status() != psutil.STATUS_ZOMBIE:
                    alive.append(pid)
            except psutil.NoSuchProcess:
                pass
        if not alive:
            return True
        time.sleep(0.05)
    return False


def _worker_of(pid: int, deadline_s: float = 10.0) -> int:
    deadline = time.monotonic() + deadline_s
    while not _family(pid):
        assert time.monotonic() < deadline, "the stand-in started no worker"
        time.sleep(0.02)
    return _family(pid)[0]


def test_each_k_restarts_the_whole_group_and_close_ends_it(no_leftovers):
    act = LaunchActuator(parse_templates(SPEC, NOSPEC), start_timeout_s=60)
    try:
        first = act.apply(2)
        assert first.confirmed_k == 2 and first.reload_ms is not None
        server = act.pid
        assert server is not None
        assert psutil.Process(server).cmdline()[-4:] == ["--port", str(act.port), "--k", "2"]
        assert os.getpgid(server) == server != os.getpgrp()  # its own process group
        worker = _worker_of(server)
        assert act.apply(2).reload_ms is None  # same K: no restart
        assert act.pid == server
        act.apply(0)  # the nospec template
        assert psutil.Process(act.pid).cmdline()[-2:] == ["--port", str(act.port)]
        assert _gone([server, worker])  # the old server and its worker ended
    finally:
        act.close()
    assert act.pid is None


def test_an_interrupted_start_gives_up_at_once_and_leaves_nothing(no_leftovers):
    never = parse_templates(f"{SPEC} --health 503 --models 200")  # llama-server loading
    act = LaunchActuator(never, start_timeout_s=120)
    asked = threading.Event()
    threading.Timer(1.0, asked.set).start()
    act.server.interrupted = asked.is_set
    with pytest.raises(ActuatorInterrupted, match="start of the launched server abandoned"):
        act.apply(1)
    assert act.pid is None and act.server.watcher_pid is None


@pytest.mark.parametrize(
    ("extra", "healthy"),
    [("--health 200 --models 503", True), ("--health 404 --models 200", True),
     ("--health 503 --models 200", False), ("--health 404 --models 404", False)],
)  # fmt: skip
def test_healthy_is_health_200_or_no_health_and_models_200(extra, healthy, no_leftovers):
    act = LaunchActuator(parse_templates(f"{SPEC} {extra}"), start_timeout_s=2)
    try:
        if healthy:
            assert act.apply(1).confirmed_k == 1
        else:
            with pytest.raises(ServerStartError, match="was not healthy after 2 s") as e:
                act.apply(1)
            # in a run, the steps that needed it fail as unreachable (the server-down watch)
            assert isinstance(e.value, ActuatorUnreachable)
            assert act.pid is None
    finally:
        act.close()


HARNESS = """\
import sys, time
from halospec_tui.launch_template import parse_templates
from halospec_tui.launched import LaunchActuator
a = LaunchActuator(parse_templates(sys.argv[1]), start_timeout_s=60)
a.apply(3)
print(a.pid, a.server.watcher_pid, flush=True)
time.sleep(120)
"""


def test_a_sigkilled_harness_takes_the_launched_group_with_it(no_leftovers):
    harness = subprocess.Popen([PY, "-c", HARNESS, SPEC], stdout=subprocess.PIPE,
                               stdin=subprocess.DEVNULL, text=True)  # fmt: skip
    try:
        line = harness.stdout.readline()  # type: ignore[union-attr]
        server, watcher = (int(x) for x in line.split())
        worker = _worker_of(server)
        assert {p.pid for p in tagged(no_leftovers)} >= {harness.pid, server, watcher, worker}
        harness.send_signal(signal.SIGKILL)
        harness.wait(timeout=10)
        assert not wait_until_gone(no_leftovers, deadline_s=10.0)
        assert _gone([server, watcher, worker])
    finally:
        if harness.poll() is None:
            harness.kill()
            harness.wait(timeout=10)


# -- through the command line --------------------------------------------------------
def _cli(tmp_path: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*CLI, "--no-ui", "--plan", "quick", "--modes", "fixed_2", "--warmup", "0", "--steps", "1",
         "--csv", str(tmp_path / "r.csv"), *args],
        capture_output=True, text=True, timeout=120, stdin=subprocess.DEVNULL,
    )  # fmt: skip


def _one_error(p: subprocess.CompletedProcess[str]) -> str:
    errors = [x for x in p.stderr.splitlines() if x.startswith("halospec-tui: error:")]
    assert len(errors) == 1, p.stderr
    assert "Traceback" not in p.stderr
    return errors[0].removeprefix("halospec-tui: error: ")


@pytest.mark.parametrize(
    ("args", "code", "said"),
    [
        (["--launch", f"{PY} {STANDIN} --port {{port}}"], 2, "--launch has no {k}"),
        (["--launch", "no-such-engine serve --port {port} {k}"], 2,
         "--launch: command 'no-such-engine' not found on PATH"),
        (["--launch", SPEC + " '"], 2, "--launch cannot be split into words: No closing quotation"),
        (["--launch", SPEC + " {draft}"], 2, "--launch: unknown placeholder {draft}"),
        (["--launch", SPEC, "--modes", "nospec,fixed_2"], 2, "arm nospec runs K 0"),
        (["--actuator", "launch"], 2, "--actuator launch needs --launch TEMPLATE"),
        (["--launch-nospec", NOSPEC], 2, "--launch and --launch-nospec go with --actuator launch"),
        (["--launch", SPEC, "--base-url", "http://127.0.0.1:9"], 2,
         "--actuator launch starts its own server: drop --base-url"),
        (["--launch", SPEC, "--launch-timeout", "0"], 2, "--launch-timeout must be positive"),
        (["--launch", SPEC + " --exit 3"], 4,
         "the launched server exited during start-up (status 3): stand-in: refusing to start (k=2)"),
        (["--launch", SPEC + " --health 404 --models 404", "--launch-timeout", "2"], 4,
         "the launched server was not healthy after 2 s (--launch-timeout gives it longer)"),
    ],
)  # fmt: skip
def test_a_launch_that_cannot_serve_ends_in_one_line(tmp_path, no_leftovers, args, code, said):
    p = _cli(tmp_path, *args)
    assert p.returncode == code, p.stderr
    assert _one_error(p).startswith(said)
    assert not (tmp_path / "r.csv").exists()  # the run never began


def test_a_launched_vllm_look_alike_is_detected_and_pasted_as_launched(tmp_path, no_leftovers):
    spec, nospec = f"{SPEC} --owned-by vllm", f"{NOSPEC} --owned-by vllm"
    p = _cli(tmp_path, "--launch", spec, "--launch-nospec", nospec, "--plan", "tune",
             "--modes", "nospec,fixed_2", "--rounds", "2", "--block", "1", "--settle", "0")  # fmt: skip
    assert p.returncode == 0, p.stderr
    assert "the launched server serves 'standin', not --model 'Qwen3-0.6B-GGUF'" in p.stderr
    assert "asked for: the harness restarts the launched server (vllm)" in p.stderr
    rows = csv_rows(tmp_path / "r.csv")
    assert [r["success"] for r in rows] == ["1"] * 4
    assert {r["server_kind"] for r in rows} == {"vllm"}
    assert {r["actuator"] for r in rows} == {f"launch:{spec} | nospec: {nospec}"}
    # seed 0 runs fixed_2 then nospec in both rounds: started at fixed_2's K before the
    # run, so its first block needs no restart, and each of the three blocks after does
    assert p.stderr.count("info: starting ") == 4
    recommendation = next(x for x in p.stdout.splitlines() if x.startswith("recommendation: "))
    k = json.loads((tmp_path / "r_summary.json").read_text())["verdict"]["recommended_k"]
    resolved = nospec if k == 0 else spec.replace("{k}", str(k))
    assert recommendation.endswith(f"; launch command: {resolved}")  # the launch command wins
