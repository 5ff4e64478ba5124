"""After a run, the user's server is left as it was found (or, with --leave
recommended, at the recommendation): exact protocol first, then the embedded server as
a user's Lemonade, then a real llama-server behind a Lemonade-like front, ended by
done, q, SIGINT and SIGTERM."""

from __future__ import annotations

import asyncio
import json
import signal
import subprocess
import sys
from pathlib import Path

import httpx
import pytest
import respx
from conftest import CLI, FAST_SIM, wait_until_gone
from helpers import LLAMA_SERVER, csv_rows, needs_llama, quit_after_rows, wait_rows

from halospec_tui.actuators import ActuatorError, LemonadeLoadActuator, Setting
from halospec_tui.client import ChatClient
from halospec_tui.events import LogRouter
from halospec_tui.load import LoadInjector
from halospec_tui.plan import customise, named_plan
from halospec_tui.runner import RunConfig
from halospec_tui.session import SessionOptions, open_session
from halospec_tui.sim.process import SimProcess
from halospec_tui.specflags import k_from_args
from halospec_tui.tiny_gguf import make_models

BASE = "http://lemonade.test"
M = "Qwen3-0.6B-GGUF"
SPEC4 = "--spec-type draft-simple --spec-draft-n-max 4 --spec-draft-n-min 0 --spec-draft-p-min 0"


def _health(*entries):
    return httpx.Response(200, json={"status": "ok", "all_models_loaded": list(entries)})


def _bodies(route):
    return [json.loads(c.request.content) for c in route.calls]


# -- the protocol, exactly ----------------------------------------------------------
@respx.mock
def test_our_model_is_reloaded_with_its_own_options_and_pushed_out_models_come_back():
    ours = {"model_name": M, "recipe_options": {"ctx_size": 4096, "llamacpp_args": "-t 2"}}
    other = {"model_name": "Other-GGUF", "recipe_options": {"llamacpp_backend": "vulkan"}}
    health = respx.get(BASE + "/api/v1/health").mock(side_effect=[
        _health(ours, other),  # before the first reload
        _health({"model_name": M, "launch_command": ["llama-server", "-md", "d", "--spec-draft-n-max", "4"]}),
        _health({"model_name": M}),  # after putting ours back: Other was pushed out
    ])  # fmt: skip
    load = respx.post(BASE + "/api/v1/load").mock(return_value=httpx.Response(200, json={}))
    act = LemonadeLoadActuator(ChatClient(BASE, M), M, base_args="-t 2")
    assert act.apply(4).confirmed_k == 4
    said = act.leave()
    assert _bodies(load) == [
        {"model_name": M, "llamacpp_args": "-t 2 " + SPEC4},
        {"ctx_size": 4096, "llamacpp_args": "-t 2", "model_name": M},
        {"llamacpp_backend": "vulkan", "llamacpp_args": "", "model_name": "Other-GGUF"},
    ]
    assert said == (
        f"reloaded {M} as found (llamacpp_args '-t 2'); "
        "reloaded Other-GGUF as found (llamacpp_args '')"
    )
    assert health.call_count == 3
    assert act.leave() is None and load.call_count == 3  # once only
    act.close()
    assert load.call_count == 3


@respx.mock
def test_a_model_that_was_not_loaded_is_unloaded_again():
    respx.get(BASE + "/api/v1/health").mock(return_value=_health())
    respx.post(BASE + "/api/v1/load").mock(return_value=httpx.Response(200, json={}))
    unload = respx.post(BASE + "/api/v1/unload").mock(return_value=httpx.Response(200, json={}))
    act = LemonadeLoadActuator(ChatClient(BASE, M), M)
    act.apply(2)
    assert act.leave() == f"unloaded {M} (it was not loaded before the run)"
    assert _bodies(unload) == [{"model_name": M}]


@respx.mock
def test_leave_recommended_loads_the_recommended_setting():
    respx.get(BASE + "/api/v1/health").mock(return_value=_health({"model_name": M}))
    load = respx.post(BASE + "/api/v1/load").mock(return_value=httpx.Response(200, json={}))
    act = LemonadeLoadActuator(ChatClient(BASE, M), M)
    act.apply(8)
    said = act.leave(Setting(0))
    assert _bodies(load)[-1] == {"model_name": M, "llamacpp_args": "--spec-type none"}
    assert said == f"left {M} at the recommendation: --spec-type none"


@respx.mock
def test_nothing_is_done_to_a_server_the_run_never_reloaded_and_failures_are_said():
    load = respx.post(BASE + "/api/v1/load")
    act = LemonadeLoadActuator(ChatClient(BASE, M), M)
    assert act.leave() is None and load.call_count == 0
    respx.get(BASE + "/api/v1/health").mock(return_value=httpx.Response(503))
    load.mock(side_effect=[httpx.Response(200, json={}), httpx.Response(500, json={"error": "x"})])
    act = LemonadeLoadActuator(ChatClient(BASE, M), M)
    act.apply(3)
    with pytest.raises(ActuatorError, match="did not say what was loaded before the run"):
        act.leave()


# -- the embedded server as a user's Lemonade -----------------------------------------
@pytest.fixture
def user_sim():
    proc = SimProcess.start(FAST_SIM)
    try:
        yield proc
    finally:
        proc.stop()


def _state(url: str) -> tuple[str, int | None]:
    entry = httpx.get(url + "/api/v1/health", timeout=5).json()["all_models_loaded"][0]
    return entry["recipe_options"]["llamacpp_args"], k_from_args(entry["launch_command"])


def _tune(url: str, csv: Path, *extra: str) -> list[str]:
    return [*CLI, "--no-ui", "--plan", "tune", "--modes", "nospec,fixed_5", "--rounds", "2",
            "--block", "1", "--settle", "0", "--base-url", url, "--actuator", "lemonade-load",
            "--csv", str(csv), *extra]  # fmt: skip


def test_the_embedded_server_is_put_back_after_a_tune_run(user_sim, tmp_path, no_leftovers):
    found = _state(user_sim.base_url)
    assert found[1] == 3
    p = subprocess.run(_tune(user_sim.base_url, tmp_path / "r.csv"), capture_output=True,
                       text=True, timeout=120)  # fmt: skip
    assert p.returncode == 0, p.stderr
    assert _state(user_sim.base_url) == found
    assert f"Server: reloaded {M} as found" in p.stdout
    meta = json.loads((tmp_path / "r_summary.json").read_text())["meta"]
    assert meta["server_left"] == f"reloaded {M} as found (llamacpp_args {found[0]!r})"


def test_leave_recommended_leaves_the_verdicts_setting(user_sim, tmp_path, no_leftovers):
    p = subprocess.run(_tune(user_sim.base_url, tmp_path / "r.csv", "--leave", "recommended"),
                       capture_output=True, text=True, timeout=120)  # fmt: skip
    assert p.returncode == 0, p.stderr
    verdict = json.loads((tmp_path / "r_summary.json").read_text())["verdict"]
    assert _state(user_sim.base_url)[1] == verdict["recommended_k"]
    assert f"Server: left {M} at the recommendation" in p.stdout


# -- a real llama-server behind a Lemonade-like front ----------------------------------
BINARY = LLAMA_SERVER
FRONT_ARGS = "--spec-type draft-simple --spec-draft-n-max 2 --spec-draft-n-min 0 --spec-draft-p-min 0"


@pytest.fixture
def none_left(owner_tag):
    """No process this test's run started outlives it. (The front restarts its own
    llama-server, our grandchild, on every load: only what carries the test's owner tag
    counts here, as every process the app starts does.)"""
    yield
    left = wait_until_gone(owner_tag)
    for p in left:
        p.kill()
    assert not left, f"processes left behind: {[p.pid for p in left]}"


@pytest.fixture(scope="module")
def front(tmp_path_factory):
    target, draft = make_models(tmp_path_factory.mktemp("gguf"))
    proc = subprocess.Popen(
        [sys.executable, str(Path(__file__).with_name("lemonade_front.py")), "--llama-server",
         str(BINARY), "-m", str(target), "-md", str(draft), "--model", M, "--args", FRONT_ARGS],
        stdout=subprocess.PIPE, stdin=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:
        line = proc.stdout.readline()  # type: ignore[union-attr]
        assert line.startswith("READY "), line
        yield f"http://127.0.0.1:{line.split()[1]}"
    finally:
        proc.terminate()
        proc.wait(timeout=30)


@pytest.mark.parametrize("how", ["done", "SIGINT", "SIGTERM"])
@pytest.mark.xdist_group("lemonade_front")
@pytest.mark.usefixtures("none_left")
@needs_llama[0]
@needs_llama[1]
def test_a_real_server_is_put_back_however_the_run_ends(front, tmp_path, how):
    assert _state(front) == (FRONT_ARGS, 2)
    csv = tmp_path / "r.csv"
    cmd = _tune(front, csv, "--model", M, "--timeout", "60")
    if how == "done":
        p = subprocess.run(cmd, capture_output=True, text=True, timeout=300)
        assert p.returncode == 0, p.stderr
    else:
        proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        wait_rows(csv, 1)
        proc.send_signal(getattr(signal, how))
        out, err = proc.communicate(timeout=120)
        assert proc.returncode == {"SIGINT": 130, "SIGTERM": 143}[how], err
    assert _state(front) == (FRONT_ARGS, 2)
    # every measured row ran at the K the server confirmed
    assert all(r["confirmed_k"] == r["draft_length"] for r in csv_rows(csv) if r["success"] == "1")


@pytest.mark.xdist_group("lemonade_front")
@pytest.mark.usefixtures("none_left")
@needs_llama[0]
@needs_llama[1]
def test_a_real_server_is_put_back_after_q_in_the_monitor(front, tmp_path):
    from halospec_tui.ui.app import make_app

    assert _state(front) == (FRONT_ARGS, 2)
    session = open_session(SessionOptions(backend="server", base_url=front, model=M,
                                          actuator="lemonade-load"), LogRouter())  # fmt: skip
    plan = customise(named_plan("tune"), arms=["nospec", "fixed_5"], rounds=6, block=1, settle=0)
    config = RunConfig(plan, str(tmp_path / "ui.csv"), backend=session.backend)
    app = make_app(config, session, LoadInjector(workers=1))

    async def go() -> None:
        async with app.run_test(size=(120, 40)) as pilot:
            finished = await quit_after_rows(app, pilot, tmp_path / "ui.csv", 1)
            assert finished.reason == "stopped"
            assert finished.server.startswith(f"reloaded {M} as found")

    with session:
        asyncio.run(go())
    assert _state(front) == (FRONT_ARGS, 2)
