"""Faults, interruptions and leftovers: every step accounted for, nothing left running."""

import json
import signal
import subprocess
import sys
import time

import httpx
import psutil
import pytest
from helpers import csv_rows, wait_rows

from halospec_tui.actuators import FieldActuator
from halospec_tui.client import ChatClient
from halospec_tui.events import ListSink, LogLine, LogRouter, StepDone
from halospec_tui.llama_server import free_port
from halospec_tui.plan import customise, named_plan
from halospec_tui.runner import RunConfig, Runner
from halospec_tui.sim.physics import SimParams
from halospec_tui.sim.process import SimProcess

CLI = [sys.executable, "-m", "halospec_tui"]


def set_fault(sim, spec):
    r = httpx.post(sim.base_url + "/sim/fault", json={"fault": spec})
    assert r.status_code == 200, r.text


def fast_client(url, **kw):
    return ChatClient(url, "Qwen3-0.6B-GGUF", sleep=lambda s: None, **kw)


def plan(modes, steps=2, **kw):
    return customise(
        named_plan("quick"), arms=modes, warmup=0, steps=steps, adaptive_steps=steps,
        cooldown_s=0, warmup_sleep_s=0, **kw,
    )  # fmt: skip


@pytest.mark.parametrize(
    "fault,error",
    [
        ("500", "HTTP 500"),
        ("503", "503 model still loading"),  # waited for, uncounted, then a failure
        ("reset", "connection error"),
        ("malformed", "malformed JSON"),
        ("truncated", "malformed JSON"),
        ("no-choices", "no choices"),
        ("timeout", "timeout"),
    ],
)
def test_each_fault_fails_the_step_the_original_way_and_the_run_goes_on(
    sim, tmp_path, fault, error
):
    set_fault(sim, f"{fault}:1")
    sink = ListSink()
    # 0.5 s only where the timeout is the fault: on a busy machine (parallel tests) an
    # answer can take longer than that, and the step would fail for the wrong reason
    timeout_s = 0.5 if fault == "timeout" else 10.0
    client = fast_client(sim.base_url, timeout_s=timeout_s, loading_wait_s=0.2)
    try:
        steps = 1 if fault == "timeout" else 2
        done = Runner(RunConfig(plan(["fixed_3", "adaptive"], steps), str(tmp_path / "f.csv")), client,
                      FieldActuator(), sink).run()  # fmt: skip
    finally:
        set_fault(sim, "")
        client.close()
    rows = csv_rows(tmp_path / "f.csv")
    assert [r["mode"] for r in rows] == ["fixed_3"] * steps + ["adaptive"] * steps
    assert all(
        (r["success"], r["latency_ms"], r["tokens"], r["attempts"]) == ("0", "0", "0", "3")
        for r in rows
    )
    assert all(error in r["error"] for r in rows), rows[0]["error"]
    adaptive_ks = [r["draft_length"] for r in rows if r["mode"] == "adaptive"]
    assert adaptive_ks == ["4"] + ["1"] * (steps - 1)  # a failed step sets K to 1
    assert done.reason == "completed"
    assert [s.failures for s in done.summaries] == [steps, steps]
    logs = [e.text for e in sink.of(LogLine)]
    assert f"fixed_3 step 1: failed after 3 attempts: {rows[0]['error']}" in logs


def test_missing_usage_counts_64_tokens_as_the_original(sim, tmp_path):
    set_fault(sim, "no-usage:1")
    sink = ListSink()
    log = LogRouter()
    log.attach(sink)  # the client's own log lines reach the sink
    try:
        client = fast_client(sim.base_url, log=log)
        Runner(
            RunConfig(plan(["fixed_2"], 2), str(tmp_path / "u.csv")), client, FieldActuator(), sink
        ).run()
    finally:
        set_fault(sim, "")
    rows = csv_rows(tmp_path / "u.csv")
    assert [(r["success"], r["tokens"]) for r in rows] == [("1", "64"), ("1", "64")]
    said = "response has no usage; counting 64 tokens (the request's max_tokens) as the original"
    assert [e.text for e in sink.of(LogLine)].count(said) == 2


def test_server_killed_mid_run_stops_after_a_bounded_wait(tmp_path, no_leftovers):
    sim = SimProcess.start(SimParams(target_ms=1.0))

    class KillAfterTwo(ListSink):
        def emit(self, event):
            super().emit(event)
            if isinstance(event, StepDone) and event.record.step == 2:
                sim.stop()

    sink = KillAfterTwo()
    t0 = time.monotonic()
    p = customise(plan(["fixed_1", "fixed_2"], 500), cooldown_s=0.05)
    cfg = RunConfig(p, str(tmp_path / "k.csv"), server_down_after_s=1.0)
    done = Runner(cfg, fast_client(sim.base_url), FieldActuator(), sink).run()
    assert time.monotonic() - t0 < 30
    assert done.reason == "server-down"
    rows = csv_rows(tmp_path / "k.csv")
    assert [r["success"] for r in rows[:2]] == ["1", "1"]
    assert all(r["success"] == "0" and "connection error" in r["error"] for r in rows[2:])
    assert 2 < len(rows) < 100
    assert any("unreachable" in e.text for e in sink.of(LogLine))
    assert (tmp_path / "k_summary.json").exists()


def test_server_restarted_mid_run_and_the_run_recovers(tmp_path, no_leftovers):
    port = free_port()
    cmd = CLI + ["serve-sim", "--port", str(port), "--sim-target-ms", "1"]

    def start():
        p = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
        assert "LISTENING" in p.stdout.readline()
        return p

    procs = [start()]

    class Restart(ListSink):
        def emit(self, event):
            super().emit(event)
            if isinstance(event, StepDone) and event.record.step == 2:
                procs[0].terminate()
                procs[0].wait()
            if isinstance(event, StepDone) and event.record.step == 4:
                procs.append(start())

    try:
        cfg = RunConfig(plan(["fixed_2"], 8), str(tmp_path / "r.csv"))
        done = Runner(
            cfg, fast_client(f"http://127.0.0.1:{port}"), FieldActuator(), Restart()
        ).run()
    finally:
        for p in procs:
            p.terminate()
            p.wait()
    ok = [r["success"] for r in csv_rows(tmp_path / "r.csv")]
    assert done.reason == "completed"
    assert ok == ["1", "1", "0", "0", "1", "1", "1", "1"]


def test_exception_inside_the_runner_still_writes_csv_and_summary(sim, tmp_path):
    class Broken(FieldActuator):
        def __init__(self):
            super().__init__()
            self.calls = 0

        def apply(self, k, p_min=0.0, threads=None):
            self.calls += 1
            if self.calls == 3:
                raise RuntimeError("actuator exploded")
            return super().apply(k)

    with pytest.raises(RuntimeError, match="exploded"):
        Runner(RunConfig(plan(["fixed_1"], 5), str(tmp_path / "x.csv")), fast_client(sim.base_url), Broken(),
               ListSink()).run()  # fmt: skip
    assert len(csv_rows(tmp_path / "x.csv")) == 1  # apply #1 warmup-less mode start, #2 step 1
    doc = json.loads((tmp_path / "x_summary.json").read_text())
    assert doc["meta"]["reason"] == "failed" and doc["modes"][0]["steps"] == 1


@pytest.mark.parametrize(
    "sig,code,reason", [(signal.SIGINT, 130, "interrupted"), (signal.SIGTERM, 143, "terminated")]
)
def test_signals_write_everything_and_reap_everything(tmp_path, sig, code, reason, no_leftovers):
    out = tmp_path / "s.csv"
    proc = subprocess.Popen(
        CLI + ["--no-ui", "--plan", "quick", "--modes", "fixed_2,fixed_3", "--steps", "400", "--warmup", "0",
               "--load", "--load-step", "2", "--load-duration", "60", "--load-workers", "2", "--backend", "sim",
               "--sim-target-ms", "1", "--csv", str(out)],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, stdin=subprocess.DEVNULL,
    )  # fmt: skip
    wait_rows(out, 4, proc)
    kids = psutil.Process(proc.pid).children(recursive=True)
    names = [" ".join(k.cmdline()) for k in kids]
    assert any("halospec_tui.sim" in n for n in names), names
    assert sum("multiprocessing" in n for n in names) >= 2, names  # sim + 2 burners (+ tracker)
    proc.send_signal(sig)
    stdout, stderr = proc.communicate(timeout=60)
    assert proc.returncode == code, stderr
    gone = psutil.wait_procs(kids, timeout=10)[1]
    assert not gone, [k.pid for k in gone]
    rows = csv_rows(out)
    assert [int(r["global_step"]) for r in rows] == list(range(1, len(rows) + 1))
    doc = json.loads((tmp_path / "s_summary.json").read_text())
    assert doc["meta"]["reason"] == reason
    assert sum(m["steps"] for m in doc["modes"]) == len(rows)
    assert f"Run {reason}" in stdout


def test_a_killed_harness_leaves_no_orphans(tmp_path):
    out = tmp_path / "o.csv"
    proc = subprocess.Popen(
        CLI + ["--no-ui", "--plan", "quick", "--modes", "fixed_2", "--steps", "400", "--warmup", "0", "--load",
               "--load-step", "1", "--load-duration", "60", "--load-workers", "1", "--backend", "sim",
               "--sim-target-ms", "1", "--csv", str(out)],
        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True, stdin=subprocess.DEVNULL,
    )  # fmt: skip
    wait_rows(out, 2, proc)
    kids = psutil.Process(proc.pid).children(recursive=True)
    assert len(kids) >= 2
    proc.kill()
    proc.wait()
    alive = psutil.wait_procs(kids, timeout=15)[1]
    for k in alive:
        k.kill()
    assert not alive, [(k.pid, k.cmdline()) for k in alive]


def test_api_key_never_leaves_the_request(tmp_path):
    out = tmp_path / "key.csv"
    p = subprocess.run(
        CLI + ["--no-ui", "--plan", "quick", "--modes", "fixed_1", "--steps", "2", "--warmup", "1", "--backend",
               "sim", "--sim-target-ms", "1", "--api-key", "sk-SECRET-123", "--debug-json", "-v", "--csv", str(out)],
        capture_output=True, text=True, timeout=120, stdin=subprocess.DEVNULL,
    )  # fmt: skip
    assert p.returncode == 0, p.stderr
    assert "response JSON" in p.stderr  # debug output was on
    texts = [p.stdout, p.stderr] + [f.read_text() for f in tmp_path.iterdir()]
    assert not any("SECRET" in t for t in texts)
