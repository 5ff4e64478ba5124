"""Orphans seen from outside: every process the app starts carries the run's owner tag,
and nothing it started keeps running once the harness is gone, even after SIGKILL.

Leftovers are looked for across the whole machine by the tag (conftest `tagged`),
not only among this test's descendants: an orphan is re-parented to PID 1.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time

import psutil
import pytest
from conftest import tagged, wait_until_gone
from helpers import LLAMA_SERVER, csv_rows

from halospec_tui.procs import OWNER_ENV

CLI = [sys.executable, "-m", "halospec_tui"]
FAST = ["--sim-target-ms", "1.5", "--sim-reload-ms", "20"]
REAL_LLAMA = LLAMA_SERVER

# A stand-in for the llama-server binary: answers --help with the old flag spelling,
# serves /health on --port, and (like the real binary) never looks at its parent.
FAKE_LLAMA = """\
#!{python}
import sys
from http.server import BaseHTTPRequestHandler, HTTPServer
if "--help" in sys.argv:
    print("--draft-max N  number of tokens to draft")
    sys.exit(0)
port = int(sys.argv[sys.argv.index("--port") + 1])
class H(BaseHTTPRequestHandler):
    def do_GET(self):
        self.send_response(200)
        self.end_headers()
        self.wfile.write(b"{{}}")
    def log_message(self, *a):
        pass
HTTPServer(("127.0.0.1", port), H).serve_forever()
"""

# The harness: owns a llama-server through the actuator, prints its PID, then waits
# (bounded) to be killed.
HARNESS = """\
import sys, time
from halospec_tui.llama_server import LlamaServerActuator, LlamaServerConfig
a = LlamaServerActuator(LlamaServerConfig(sys.argv[1], sys.argv[2], sys.argv[3], "-t 1"))
a.apply(4)
print(a.pid, a.server.watcher_pid, flush=True)
time.sleep(120)
"""


def _wait_line(proc: subprocess.Popen[str], timeout_s: float) -> str:
    import threading

    out: list[str] = []
    t = threading.Thread(target=lambda: out.append(proc.stdout.readline()), daemon=True)  # type: ignore[union-attr]
    t.start()
    t.join(timeout_s)
    return out[0] if out else ""


def owner_of(pid: int, timeout_s: float = 30.0) -> str | None:
    """The owner tag in a process's environment, once it has exec'd: right after a
    fork /proc still shows the parent's environment as it was at the parent's start."""
    deadline = time.monotonic() + timeout_s
    while True:
        env = psutil.Process(pid).environ()
        if OWNER_ENV in env or time.monotonic() > deadline:
            return env.get(OWNER_ENV)
        time.sleep(0.02)


def _alive(pid: int) -> bool:
    try:
        return psutil.Process(pid).status() != psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return False


def _alive_after(pids: tuple[int, ...], deadline_s: float) -> list[int]:
    """The pids still alive after `deadline_s`. A process in the middle of exiting has
    already lost its environment (so no tag) but is not yet a zombie: give it time."""
    deadline = time.monotonic() + deadline_s
    while True:
        alive = [pid for pid in pids if _alive(pid)]
        if not alive or time.monotonic() > deadline:
            return alive
        time.sleep(0.05)


def _sigkill_harness_and_check(binary: str, target: str, draft: str, tag: str) -> None:
    harness = subprocess.Popen(
        [sys.executable, "-c", HARNESS, binary, target, draft],
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        stdin=subprocess.DEVNULL,
        text=True,
    )
    try:
        line = _wait_line(harness, 180)
        assert line, "the harness did not start its llama-server"
        server_pid, watcher_pid = (int(x) for x in line.split())
        server = psutil.Process(server_pid)
        assert owner_of(server_pid) == tag  # tagged as the app's own
        assert server.ppid() == harness.pid
        assert {p.pid for p in tagged(tag)} >= {harness.pid, server_pid, watcher_pid}
        harness.send_signal(signal.SIGKILL)
        harness.wait(timeout=10)
        # the watcher polls every 0.25 s; 10 s is far beyond it even on a loaded machine
        left = wait_until_gone(tag, deadline_s=10.0)
        assert not left, [(p.pid, p.name()) for p in left]
        assert _alive_after((server_pid, watcher_pid), deadline_s=5.0) == []
    finally:
        if harness.poll() is None:
            harness.kill()
            harness.wait(timeout=10)


def test_stand_in_llama_server_dies_with_a_sigkilled_harness(tmp_path, no_leftovers):
    binary = tmp_path / "llama-server"
    binary.write_text(FAKE_LLAMA.format(python=sys.executable))
    binary.chmod(0o755)
    for name in ("t.gguf", "d.gguf"):
        (tmp_path / name).write_bytes(b"GGUF")
    _sigkill_harness_and_check(
        str(binary), str(tmp_path / "t.gguf"), str(tmp_path / "d.gguf"), no_leftovers
    )


@pytest.mark.llama
@pytest.mark.skipif(REAL_LLAMA is None, reason="no llama-server: run scripts/build-llama-server.sh")
def test_real_llama_server_dies_with_a_sigkilled_harness(tmp_path, no_leftovers):
    from halospec_tui.tiny_gguf import make_models

    target, draft = make_models(tmp_path)
    _sigkill_harness_and_check(str(REAL_LLAMA), str(target), str(draft), no_leftovers)


def test_watcher_ends_with_its_child_and_is_reaped(tmp_path, no_leftovers):
    from halospec_tui.procs import terminate, watch_child

    child = subprocess.Popen(["sleep", "60"], stdin=subprocess.DEVNULL)
    watcher = watch_child(child.pid)
    assert owner_of(watcher.pid) == no_leftovers
    terminate(child)
    watcher.wait(timeout=10)  # it notices the child is gone and ends by itself
    assert watcher.returncode == 0


@pytest.mark.parametrize(
    "load",
    [
        ["--load-workers", "2"],  # two CPU burners
        # a CPU and a memory burner, and a request client (a thread: no process)
        ["--load-kind", "all", "--load-workers", "1", "--load-clients", "1"],
    ],
    ids=["cpu", "all"],
)
def test_sigkilled_cli_leaves_no_server_and_no_burner(tmp_path, no_leftovers, load):
    out = tmp_path / "k.csv"
    cli = subprocess.Popen(
        CLI + ["--no-ui", "--plan", "quick", "--modes", "fixed_2", "--warmup", "0", "--steps", "500",
               "--cooldown", "0.05", "--load", "--load-step", "2", "--load-duration", "120",
               *load, "--backend", "sim", "--csv", str(out), *FAST],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, stdin=subprocess.DEVNULL,
    )  # fmt: skip
    try:
        deadline = time.monotonic() + 120
        while not (out.exists() and any(r["phase"] == "load" for r in csv_rows(out))):
            assert cli.poll() is None and time.monotonic() < deadline, "no load phase in time"
            time.sleep(0.1)
        mine = tagged(no_leftovers)
        cmdlines = [" ".join(p.cmdline()) for p in mine]
        assert sum("spawn_main" in c for c in cmdlines) == 2, cmdlines  # the two burners
        assert sum("halospec_tui.sim" in c for c in cmdlines) == 1, cmdlines  # the server
        cli.send_signal(signal.SIGKILL)
        cli.wait(timeout=10)
        left = wait_until_gone(no_leftovers, deadline_s=10.0)
        assert not left, [(p.pid, " ".join(p.cmdline())) for p in left]
    finally:
        if cli.poll() is None:
            cli.kill()
            cli.wait(timeout=10)


def test_tag_reaches_every_kind_of_child(no_leftovers):
    """In-process: the embedded server and the burners carry the tag of this run."""
    from halospec_tui.load import LoadInjector
    from halospec_tui.sim.physics import SimParams
    from halospec_tui.sim.process import SimProcess

    sim = SimProcess.start(SimParams(target_ms=1.5))
    load = LoadInjector(workers=1)
    try:
        load.start(30.0)
        pids = [sim.pid, *load.pids()]
        assert len(pids) == 2
        for pid in pids:
            assert owner_of(pid) == no_leftovers
    finally:
        load.stop()
        sim.stop()
    assert not any(_alive(p) for p in pids)


def test_fixture_sees_an_orphan_outside_our_descendants(no_leftovers):
    """The check itself: a tagged process re-parented to PID 1 is found by its tag."""
    code = textwrap.dedent(
        """
        import subprocess, sys
        p = subprocess.Popen(["sleep", "30"], stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        print(p.pid, flush=True)
        """
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=30)
    orphan = int(out.stdout)
    try:
        found = {p.pid for p in tagged(no_leftovers)}
        assert orphan in found
        assert psutil.Process(orphan).ppid() != os.getpid()  # not our child any more
    finally:
        psutil.Process(orphan).kill()
    assert not wait_until_gone(no_leftovers, deadline_s=10.0)
