"""The server's thread count reaches the server (@tN, --threads): each actuator that
starts or reloads the server sets it (a change is a restart, counted in reload_ms),
the others refuse it, and the command line refuses what cannot run before anything
starts. Without a real llama-server: stand-ins, the embedded server, and exact
protocol checks (respx); test_real_threads.py runs one. The pure rules (the plan's
crossing, the tie order, what is said and pasted) are in test_threads_rules.py."""

from __future__ import annotations

import json
import stat
import subprocess
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import httpx
import pytest
import respx
from conftest import CLI
from helpers import csv_rows

from halospec_tui.actuators import (
    ActuatorError,
    FieldActuator,
    LemonadeLoadActuator,
    RequestActuator,
    Setting,
)
from halospec_tui.arms import parse_arm
from halospec_tui.client import ChatClient
from halospec_tui.launch_template import TemplateError, arm_problem, parse_templates, paste_line
from halospec_tui.launched import RestartActuator
from halospec_tui.llama_server import LlamaServerActuator, LlamaServerConfig
from halospec_tui.session import SessionOptions, SetupError, open_session

PY = sys.executable
STANDIN = str(Path(__file__).with_name("launch_standin.py"))
SPEC4 = "--spec-type draft-simple --spec-draft-n-max 4 --spec-draft-n-min 0 --spec-draft-p-min 0"
FAST = ["--sim-target-ms", "1.5", "--sim-reload-ms", "20"]
M = "Qwen3-0.6B-GGUF"
SEQ = "[not decisive: a sequential run decides nothing]"


# -- the restart: a change of threads restarts the harness's server ------------------------
class _Server:
    """What RestartActuator uses of an OwnedServer, recording each start."""

    port = 1
    base_url = "http://127.0.0.1:1"

    def __init__(self) -> None:
        self.starts: list[list[str]] = []
        self.pid: int | None = None

    def start(self, argv: list[str], env: dict[str, str] | None = None) -> None:
        self.starts.append(argv)
        self.pid = 4242

    def stop(self) -> None:
        self.pid = None


class _Restarting(RestartActuator):
    def command(self, k: int, p_min: float = 0.0, threads: int | None = None) -> list[str]:
        return ["srv", str(k), f"{p_min:g}", str(threads)]


def test_the_restart_actuator_restarts_on_a_change_of_threads_and_times_it():
    server = _Server()
    act = _Restarting(server)  # type: ignore[arg-type]
    first = act.apply(4, 0.0, 1)
    assert first.confirmed_k == 4 and first.reload_ms is not None
    assert act.apply(4, 0.0, 1).reload_ms is None  # the same (K, p_min, threads)
    assert act.apply(4, 0.0, 2).reload_ms is not None  # threads alone changed
    assert act.apply(4).reload_ms is not None  # the server's own count again
    assert server.starts == [["srv", "4", "0", "1"], ["srv", "4", "0", "2"], ["srv", "4", "0", "None"]]
    assert act.sets_threads


def _fake_llama(tmp_path: Path) -> LlamaServerConfig:
    binary = tmp_path / "llama-server"
    binary.write_text("#!/bin/sh\necho '--spec-type [none|draft-simple]'\necho '--spec-draft-n-max N'\n")
    binary.chmod(binary.stat().st_mode | stat.S_IXUSR)
    for name in ("t.gguf", "d.gguf"):
        (tmp_path / name).write_text("")
    return LlamaServerConfig(str(binary), str(tmp_path / "t.gguf"), str(tmp_path / "d.gguf"),
                             extra_args="-np 1 -c 1024 -t 1 -td 1 --threads-draft 3")  # fmt: skip


def test_llama_server_runs_the_arms_threads_in_place_of_those_of_llama_args(tmp_path):
    act = LlamaServerActuator(_fake_llama(tmp_path))
    try:
        head = [str(tmp_path / "llama-server"), "-m", str(tmp_path / "t.gguf")]
        net = ["--host", "127.0.0.1", "--port", str(act.port), "--metrics"]
        assert act.command(4, 0.0, 2) == [*head, "-md", str(tmp_path / "d.gguf"), *SPEC4.split(),
                                          *net, "-np", "1", "-c", "1024", "-t", "2", "-td", "2"]  # fmt: skip
        assert act.command(0, 0.0, 1) == [*head, "--spec-type", "none", *net,
                                          "-np", "1", "-c", "1024", "-t", "1", "-td", "1"]  # fmt: skip
        # no thread count: --llama-args as given
        assert act.command(4)[-10:] == ["-np", "1", "-c", "1024", "-t", "1", "-td", "1",
                                        "--threads-draft", "3"]  # fmt: skip
    finally:
        act.close()


# -- Lemonade: -t/-td in llamacpp_args, exactly ---------------------------------------------
BASE = "http://lemonade.test"


def _health(*models: dict[str, object]) -> httpx.Response:
    return httpx.Response(200, json={"status": "ok", "all_models_loaded": list(models)})


@respx.mock
def test_lemonade_load_sends_the_threads_in_llamacpp_args_and_reloads_when_they_change():
    respx.get(BASE + "/api/v1/health").mock(return_value=_health({"model_name": M}))
    load = respx.post(BASE + "/api/v1/load").mock(return_value=httpx.Response(200, json={}))
    act = LemonadeLoadActuator(ChatClient(BASE, M), M, base_args="-ngl 99 -t 8 --threads-draft 8")
    assert act.apply(4, 0.0, 1).reload_ms is not None
    assert act.apply(4, 0.0, 1).reload_ms is None  # the same: no reload
    assert act.apply(4, 0.0, 2).reload_ms is not None  # threads alone: a reload
    act.apply(4)  # the server's own count: --lemonade-args as given
    sent = [json.loads(c.request.content)["llamacpp_args"] for c in load.calls]
    assert sent == [f"-ngl 99 {SPEC4} -t 1 -td 1", f"-ngl 99 {SPEC4} -t 2 -td 2",
                    f"-ngl 99 -t 8 --threads-draft 8 {SPEC4}"]  # fmt: skip
    assert act.leave(Setting(0, 0.0, 1)) == f"left {M} at the recommendation: -ngl 99 --spec-type none -t 1 -td 1"
    assert json.loads(load.calls[-1].request.content)["llamacpp_args"] == "-ngl 99 --spec-type none -t 1 -td 1"


def test_actuators_that_send_k_with_each_request_refuse_a_thread_count():
    for act in (RequestActuator(), FieldActuator()):
        assert not act.sets_threads and act.apply(4).error == ""
        with pytest.raises(ActuatorError) as e:
            act.apply(4, 0.0, 2)
        assert str(e.value) == (
            f"actuator {act.name} cannot set the server's thread count (2 asked): only "
            "llama-server, launch, lemonade-load start or reload the server"
        )


# -- launch: {threads} ---------------------------------------------------------------------
T_SPEC = f"{PY} {STANDIN} --port {{port}} --k {{k}} --threads {{threads}}"
T_NOSPEC = f"{PY} {STANDIN} --port {{port}} --threads {{threads}}"


def test_the_threads_placeholder_is_filled_and_pasted():
    t = parse_templates(T_SPEC, T_NOSPEC)
    assert t.command(3, 9, 0.0, 2)[1][-6:] == ["--port", "9", "--k", "3", "--threads", "2"]
    assert t.command(0, 9, 0.0, 1)[1][-4:] == ["--port", "9", "--threads", "1"]
    name = t.actuator_name()
    assert paste_line(name, 3, 0.0, 2) == f"launch command: {PY} {STANDIN} --port {{port}} --k 3 --threads 2"
    assert paste_line(name, 3) == f"launch command: {PY} {STANDIN} --port {{port}} --k 3 --threads {{threads}}"


def test_a_template_and_an_arm_must_agree_on_threads():
    with_t, without = parse_templates(T_SPEC, T_NOSPEC), parse_templates(
        f"{PY} {STANDIN} --port {{port}} --k {{k}}", f"{PY} {STANDIN} --port {{port}}")
    assert arm_problem(with_t, parse_arm("fixed_2@t1")) is None
    assert arm_problem(with_t, parse_arm("adaptive:model@t2")) is None  # both templates
    assert arm_problem(without, parse_arm("fixed_2")) is None
    assert arm_problem(without, parse_arm("fixed_2@t1")) == (
        "arm fixed_2@t1: 1 thread(s) asked, but --launch has no {threads} to set them "
        "(e.g. -t {threads} -td {threads})"
    )
    assert arm_problem(with_t, parse_arm("fixed_2")) == (
        "arm fixed_2: --launch has {threads}, but no thread count is asked: give --threads "
        "or arms ending in @tN"
    )
    half = parse_templates(T_SPEC, f"{PY} {STANDIN} --port {{port}}")
    assert arm_problem(half, parse_arm("nospec@t2")) == (
        "arm nospec@t2: 2 thread(s) asked, but --launch-nospec has no {threads} to set them "
        "(e.g. -t {threads} -td {threads})"
    )
    assert arm_problem(half, parse_arm("fixed_2@t2")) is None
    with pytest.raises(TemplateError) as e:
        without.command(2, 9, 0.0, 1)
    assert str(e.value).startswith("1 thread(s) asked, but the template for K 2 has no {threads}")


# -- the command line ------------------------------------------------------------------------
def _run(tmp_path: Path, *args: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*CLI, "--no-ui", "--plan", "quick", "--warmup", "0", "--steps", "2",
         "--csv", str(tmp_path / "r.csv"), *args],
        capture_output=True, text=True, timeout=timeout, stdin=subprocess.DEVNULL,
    )  # fmt: skip


def _one_error(p: subprocess.CompletedProcess[str]) -> str:
    errors = [x for x in p.stderr.splitlines() if "error:" in x]
    assert len(errors) == 1 and "Traceback" not in p.stderr, p.stderr
    return errors[0].partition("error: ")[2]


REFUSED_BY_REQUEST = (
    "arm fixed_2@t1 sets the server's thread count, which actuator {} cannot: only "
    "llama-server, launch, lemonade-load start or reload the server (drop --threads and the "
    "@tN of the arms, or choose one of those)"
)


@pytest.mark.parametrize(
    "args,said",
    [
        (["--modes", "fixed_2", "--threads", "1,2", "--actuator", "request"],
         REFUSED_BY_REQUEST.format("request")),
        (["--modes", "fixed_2@t1", "--actuator", "field"], REFUSED_BY_REQUEST.format("field")),
        (["--modes", "fixed_2@t1", "--threads", "1,2"],
         "--threads crosses every arm with each thread count: arm fixed_2@t1 has its own; "
         "drop --threads or the @tN of the arms"),
        (["--modes", "fixed_2", "--threads", "1,x"],
         "argument --threads: 'x' is no thread count: give whole numbers, e.g. 1,2"),
        (["--modes", "fixed_2", "--threads", "0"], "--threads must be at least 1 (got 0)"),
        (["--modes", "fixed_2@t01"],
         "'fixed_2@t01': '@t01' is no thread count: write @tN, N a whole number 1..256 "
         "without a leading zero, e.g. fixed_2@t1"),
        (["--modes", "fixed_2", "--threads", "1", "--launch", f"{PY} {STANDIN} --port {{port}} --k {{k}}"],
         "arm fixed_2@t1: 1 thread(s) asked, but --launch has no {threads} to set them "
         "(e.g. -t {threads} -td {threads})"),
    ],
)  # fmt: skip
def test_a_thread_count_that_cannot_be_set_ends_the_run_before_it_begins(tmp_path, args, said, no_leftovers):
    p = _run(tmp_path, *args)
    assert p.returncode == 2, p.stderr
    assert _one_error(p) == said
    assert not (tmp_path / "r.csv").exists()


class _LlamaLike(BaseHTTPRequestHandler):
    """Answers /props as llama-server does: `auto` then sends K with each request."""

    def do_GET(self) -> None:
        ok = self.path == "/props"
        body = json.dumps({"default_generation_settings": {}} if ok else {}).encode()
        self.send_response(200 if ok else 404)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *a: object) -> None:
        pass


def test_auto_refuses_threads_when_the_server_it_finds_takes_k_per_request():
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), _LlamaLike)
    t = threading.Thread(target=httpd.serve_forever, daemon=True)
    t.start()
    try:
        url = f"http://127.0.0.1:{httpd.server_address[1]}"
        opts = SessionOptions(backend="server", base_url=url, threads_arm="fixed_2@t1")
        with pytest.raises(SetupError) as e:
            open_session(opts, lambda level, text: None)
        assert str(e.value).startswith(REFUSED_BY_REQUEST.format("request") + " (llama-server: per-request")
    finally:
        httpd.shutdown()
        httpd.server_close()


def test_threads_through_the_embedded_server_one_reload_per_arm(tmp_path, no_leftovers):
    p = _run(tmp_path, "--backend", "sim", "--modes", "nospec,fixed_2", "--threads", "1,2", *FAST)
    assert p.returncode == 0, p.stderr
    rows = csv_rows(tmp_path / "r.csv")
    modes = ["nospec@t1", "nospec@t2", "fixed_2@t1", "fixed_2@t2"]
    assert [r["mode"] for r in rows] == [m for m in modes for _ in range(2)]
    assert {r["actuator"] for r in rows} == {"lemonade-load"}
    assert all(r["success"] == "1" for r in rows)
    # every arm opens with a reload (its K or its thread count changed), counted on its
    # first step; its second step runs on the loaded server
    assert [r["reload_ms"] != "" for r in rows] == [True, False] * 4
    assert [r["draft_length"] for r in rows] == ["0"] * 4 + ["2"] * 4
    # report, from the CSV alone, says and pastes the thread count of the pick
    spec2 = "--spec-type draft-simple --spec-draft-n-max 2 --spec-draft-n-min 0 --spec-draft-p-min 0"
    load = 'Lemonade /api/v1/load: {"llamacpp_args": "'
    expected = {
        "nospec@t1": f'turn speculation off and use 1 thread {SEQ}; {load}--spec-type none -t 1 -td 1"}}',
        "nospec@t2": f'turn speculation off and use 2 threads {SEQ}; {load}--spec-type none -t 2 -td 2"}}',
        "fixed_2@t1": f'use K = 2 with 1 thread {SEQ}; {load}{spec2} -t 1 -td 1"}}',
        "fixed_2@t2": f'use K = 2 with 2 threads {SEQ}; {load}{spec2} -t 2 -td 2"}}',
    }
    rep = subprocess.run([*CLI, "report", str(tmp_path / "r.csv"), "--format", "json"],
                         capture_output=True, text=True, timeout=60, stdin=subprocess.DEVNULL)  # fmt: skip
    assert rep.returncode == 0, rep.stderr
    v = json.loads(rep.stdout)["verdict"]
    assert v["recommendation"] == expected[v["recommended"]]
    live = json.loads((tmp_path / "r_summary.json").read_text())["verdict"]
    assert (live["recommended"], live["recommendation"]) == (v["recommended"], v["recommendation"])


def test_threads_through_a_launched_server(tmp_path, no_leftovers):
    p = _run(tmp_path, "--modes", "fixed_2", "--threads", "2,1", "--launch", T_SPEC)
    assert p.returncode == 0, p.stderr
    rows = csv_rows(tmp_path / "r.csv")
    assert [r["mode"] for r in rows] == ["fixed_2@t2"] * 2 + ["fixed_2@t1"] * 2
    # the first arm's server was started before the run (to find out that it starts);
    # the second arm's thread count restarts it, counted on its first step
    assert [r["reload_ms"] != "" for r in rows] == [False, False, True, False]
    said = [x for x in p.stdout.splitlines() if x.startswith("recommendation: ")]
    launch = f"launch command: {PY} {STANDIN} --port {{port}} --k 2 --threads"
    assert said in (  # the faster of the two (a sequential run: either may be)
        [f"recommendation: use K = 2 with 1 thread {SEQ}; {launch} 1"],
        [f"recommendation: use K = 2 with 2 threads {SEQ}; {launch} 2"],
    ), said


def test_threads_in_rounds_each_change_of_arm_is_a_reload(tmp_path, no_leftovers):
    p = subprocess.run(
        [*CLI, "--no-ui", "--plan", "tune", "--backend", "sim", "--modes", "nospec,fixed_2",
         "--threads", "1,2", "--rounds", "3", "--block", "1", "--settle", "0",
         "--no-until-decisive", "--no-screen", "--csv", str(tmp_path / "r.csv"), *FAST],
        capture_output=True, text=True, timeout=120, stdin=subprocess.DEVNULL,
    )  # fmt: skip
    assert p.returncode == 0, p.stderr
    rows = csv_rows(tmp_path / "r.csv")
    arms = {"nospec@t1", "nospec@t2", "fixed_2@t1", "fixed_2@t2"}
    assert [r["round"] for r in rows] == ["1"] * 4 + ["2"] * 4 + ["3"] * 4
    for rnd in ("1", "2", "3"):
        assert {r["mode"] for r in rows if r["round"] == rnd} == arms
    # one step per block: a block whose arm differs from the one before (in K or in
    # threads alone) opens with a reload; the very first block too (the server's own
    # setting is not the arm's)
    before = [None] + [r["mode"] for r in rows[:-1]]
    assert [r["reload_ms"] != "" for r in rows] == [r["mode"] != b for r, b in zip(rows, before, strict=True)]


@respx.mock
def test_lemonade_load_says_when_the_launch_command_shows_another_thread_count():
    said: list[tuple[str, str]] = []
    shown = ["llama-server", "-md", "d", "--spec-draft-n-max", "4", "-t", "8"]
    respx.get(BASE + "/api/v1/health").mock(return_value=_health({"model_name": M, "launch_command": shown}))
    respx.post(BASE + "/api/v1/load").mock(return_value=httpx.Response(200, json={}))
    act = LemonadeLoadActuator(ChatClient(BASE, M), M, log=lambda level, text: said.append((level, text)))
    assert act.apply(4, 0.0, 2).confirmed_k == 4
    assert ("warning", "server launch_command shows -t 8 after loading -t 2") in said
    said.clear()
    act.apply(4, 0.0, 8)  # as shown: nothing to say but the reload
    assert [level for level, _ in said] == ["info"]
    said.clear()
    act.apply(2)  # no thread count asked: the server's own is not compared
    assert [level for level, _ in said] == ["warning", "info"]  # K 2 asked, K 4 shown
    assert said[0][1] == "server launch_command shows K=4 after loading K=2"
