"""Actuators under failure: an unreachable server, an abandoned reload, a binary that
will not start. Each must end the run the way the user expects, never as "failed"."""

import os
import stat
import threading
import time

import httpx
import pytest
import respx

from halospec_tui.actuators import (
    ActuatorError,
    ActuatorInterrupted,
    ActuatorUnreachable,
    LemonadeLoadActuator,
)
from halospec_tui.client import ChatClient
from halospec_tui.errors import HalospecError
from halospec_tui.events import ArmStarted, ListSink, LogLine
from halospec_tui.llama_server import LlamaServerActuator, LlamaServerConfig, free_port
from halospec_tui.plan import customise, named_plan
from halospec_tui.runner import RunConfig, Runner
from halospec_tui.sim.physics import SimParams
from halospec_tui.sim.process import SimProcess

MODEL = "Qwen3-0.6B-GGUF"
BASE = "http://test.local"


def test_the_actuator_errors_are_halospec_errors():
    assert issubclass(ActuatorUnreachable, ActuatorError)
    assert issubclass(ActuatorInterrupted, ActuatorError)
    assert issubclass(ActuatorError, HalospecError)


@respx.mock
def test_a_transport_error_during_a_reload_is_unreachable():
    health = respx.get(BASE + "/api/v1/health").mock(side_effect=httpx.ConnectError("refused"))
    respx.post(BASE + "/api/v1/load").mock(side_effect=httpx.ConnectError("refused"))
    act = LemonadeLoadActuator(ChatClient(BASE, MODEL), MODEL)
    with pytest.raises(ActuatorUnreachable, match="load with K=4: server unreachable: refused"):
        act.apply(4)
    assert act.current is None  # K not taken as set: the next step tries again
    # what was loaded is asked once, before the first reload (here: no answer)
    assert health.call_count == 1 and act.found is None


@respx.mock
def test_an_http_error_status_stays_a_plain_actuator_error():
    respx.get(BASE + "/api/v1/health").mock(return_value=httpx.Response(200, json={}))
    respx.post(BASE + "/api/v1/load").mock(
        return_value=httpx.Response(500, json={"error": "boom"})
    )
    act = LemonadeLoadActuator(ChatClient(BASE, MODEL), MODEL)
    with pytest.raises(ActuatorError, match="HTTP 500 boom") as info:
        act.apply(4)
    assert type(info.value) is ActuatorError


@pytest.mark.parametrize(
    "entry,confirmed",
    [
        # a launch command as one string (the embedded server) or, as Lemonade after
        # v11 sends it, the list of its arguments
        ({"launch_command": "llama-server -m t.gguf -md d.gguf --spec-draft-n-max 5"}, 5),
        ({"launch_command": ["llama-server", "-md", "d.gguf", "--spec-draft-n-max", "5"]}, 5),
        ({"launch_command": ["llama-server", "-m", "t.gguf"]}, 0),  # no draft: K 0
        ({}, None),  # Lemonade v10 says nothing: K is not confirmed, never guessed
        ({"launch_command": ["llama-server", 5]}, None),
        ({"launch_command": ["--spec-draft-n-max", "5x"]}, None),  # misread: no K
    ],
)
@respx.mock
def test_k_is_confirmed_from_the_launch_command_string_or_list(entry, confirmed):
    respx.post(BASE + "/api/v1/load").mock(return_value=httpx.Response(200, json={}))
    respx.get(BASE + "/api/v1/health").mock(return_value=httpx.Response(
        200, json={"all_models_loaded": [{"model_name": MODEL, **entry}]}
    ))  # fmt: skip
    act = LemonadeLoadActuator(ChatClient(BASE, MODEL), MODEL)
    assert act.apply(5).confirmed_k == confirmed


def test_a_closed_client_is_interrupted_not_unreachable():
    client = ChatClient(BASE, MODEL)
    client.close()
    with pytest.raises(ActuatorInterrupted, match="load with K=2 abandoned"):
        LemonadeLoadActuator(client, MODEL).apply(2)


def _plan(pause_s=0.0):
    return customise(
        named_plan("classic"), arms=["fixed_3"], warmup=1, steps=3, cooldown_s=pause_s,
        warmup_sleep_s=pause_s,
    )  # fmt: skip


def test_a_reload_against_no_server_ends_as_server_down(tmp_path):
    """Before: the ConnectError escaped the runner and the run ended "failed" (exit 1)."""
    base = f"http://127.0.0.1:{free_port()}"  # nothing listens there
    client = ChatClient(base, MODEL, attempts=1, sleep=lambda s: None, timeout_s=2)
    sink = ListSink()
    cfg = RunConfig(
        _plan(0.05), str(tmp_path / "r.csv"), server_down_after_s=0.05, write_summary_files=False
    )
    done = Runner(cfg, client, LemonadeLoadActuator(client, MODEL), sink).run()
    assert done.reason == "server-down"
    errors = [e.text for e in sink.of(LogLine) if e.level == "error"]
    assert any("load with K=3: server unreachable" in t for t in errors)
    client.close()


class _SignallingClient(ChatClient):
    """Tells the test when the reload's POST is on its way."""

    def __init__(self, *a, **kw):
        super().__init__(*a, **kw)
        self.posting = threading.Event()

    def post_json(self, path, body, timeout_s=300.0):
        self.posting.set()
        return super().post_json(path, body, timeout_s)


def test_abandoning_during_a_reload_ends_as_interrupted(tmp_path, no_leftovers):
    """A second Ctrl-C under a reload: before, the run ended "failed" (exit 1)."""
    sim = SimProcess.start(SimParams(target_ms=1.5, reload_ms=3_000.0, draft_n_max=1))
    try:
        client = _SignallingClient(sim.base_url, MODEL, sleep=lambda s: None)
        sink = ListSink()
        cfg = RunConfig(_plan(), str(tmp_path / "r.csv"), write_summary_files=False)
        runner = Runner(cfg, client, LemonadeLoadActuator(client, MODEL), sink)
        result = []
        t = threading.Thread(target=lambda: result.append(runner.run()), daemon=True)
        t.start()
        assert client.posting.wait(30)
        time.sleep(0.2)  # let the POST reach the server (either way it must end interrupted)
        runner.stop("interrupted")
        runner.abandon()
        t.join(30)
        assert not t.is_alive() and result, "the runner did not end"
        assert result[0].reason == "interrupted"
        assert sink.of(ArmStarted)
    finally:
        sim.stop()


def _fake_binary(tmp_path):
    exe = tmp_path / "llama-server"
    exe.write_text("#!/bin/sh\necho '--spec-type [none|draft-simple]'\necho '--spec-draft-n-max N'\n")
    exe.chmod(exe.stat().st_mode | stat.S_IXUSR)
    for name in ("t.gguf", "d.gguf"):
        (tmp_path / name).write_bytes(b"GGUF")
    cfg = LlamaServerConfig(str(exe), str(tmp_path / "t.gguf"), str(tmp_path / "d.gguf"))
    return exe, cfg


def test_llama_server_that_cannot_start_is_an_actuator_error(tmp_path):
    exe, cfg = _fake_binary(tmp_path)
    act = LlamaServerActuator(cfg)
    os.chmod(exe, 0o644)  # no longer executable: Popen raises PermissionError
    with pytest.raises(ActuatorError, match="cannot start .*llama-server: Permission denied"):
        act.apply(3)
    exe.unlink()
    with pytest.raises(ActuatorError, match="cannot start .*No such file"):
        act.apply(3)
    assert act.pid is None


def test_llama_server_command_for_k0_has_no_draft_model(tmp_path):
    _, cfg = _fake_binary(tmp_path)
    act = LlamaServerActuator(cfg)
    cmd = act.command(0)
    assert "-md" not in cmd and "--spec-draft-n-max" not in cmd
    assert cmd[cmd.index("--spec-type") + 1] == "none"
    cmd4 = act.command(4)
    assert cmd4[cmd4.index("-md") + 1] == cfg.draft
    assert cmd4[cmd4.index("--spec-draft-n-max") + 1] == "4"
