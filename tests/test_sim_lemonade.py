"""The embedded server's /api/v1/stats and /api/v1/unload, as Lemonade v10.10's server
answers them (read from its source: Router::get_stats, Server::handle_unload,
Server::handle_chat_completions, StreamingProxy::forward_sse_stream)."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from dataclasses import replace

import httpx
import pytest
from conftest import FAST_SIM

from halospec_tui.actuators import k_from_launch_command
from halospec_tui.sim.physics import SimParams
from halospec_tui.sim.server import make_server

MODEL = FAST_SIM.model
ZERO = {"time_to_first_token": 0.0, "tokens_per_second": 0.0, "input_tokens": 0,
        "output_tokens": 0, "prompt_tokens": 0, "request_count_total": 0,
        "input_tokens_total": 0, "output_tokens_total": 0, "prompt_tokens_total": 0}  # fmt: skip


def serve(params: SimParams) -> Iterator[httpx.Client]:
    srv, _ = make_server(params)
    threading.Thread(target=srv.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True).start()
    host, port = srv.server_address[:2]
    try:
        with httpx.Client(base_url=f"http://{host}:{port}", timeout=30) as c:
            yield c
    finally:
        srv.shutdown()
        srv.server_close()


@pytest.fixture
def c() -> Iterator[httpx.Client]:
    yield from serve(FAST_SIM)


@pytest.fixture
def bare() -> Iterator[httpx.Client]:
    """A server whose answers carry no llama.cpp timings (as behind some proxies)."""
    yield from serve(replace(FAST_SIM, report_timings=False))


def chat(c: httpx.Client, prompt: str, **kw: object) -> dict:
    body = {"model": MODEL, "messages": [{"role": "user", "content": prompt}],
            "max_tokens": 24, **kw}  # fmt: skip
    r = c.post("/api/v1/chat/completions", json=body)
    assert r.status_code == 200, r.text
    return r.json()


def streamed(c: httpx.Client, prompt: str) -> dict:
    """The final chunk of a streamed answer (the one with usage and timings)."""
    import json

    body = {"model": MODEL, "messages": [{"role": "user", "content": prompt}],
            "max_tokens": 24, "stream": True}  # fmt: skip
    with c.stream("POST", "/api/v1/chat/completions", json=body) as r:
        docs = [json.loads(ln[6:]) for ln in r.iter_lines() if ln.startswith("data: {")]
    return docs[-1]


def health(c: httpx.Client) -> dict:
    return c.get("/api/v1/health").json()


# -- /stats ------------------------------------------------------------------------------
def test_stats_before_any_request_are_zero_with_lemonades_nine_fields(c):
    r = c.get("/api/v1/stats")
    assert r.status_code == 200 and r.json() == ZERO
    assert c.get("/v1/stats").json() == ZERO  # every prefix, as the other routes


def test_stats_of_whole_answers_come_from_their_timings_and_usage(c):
    prompt = "the same prompt twice, so the second is served from the cache"
    first = chat(c, prompt)
    second = chat(c, prompt)
    t, u = second["timings"], second["usage"]
    assert t["cache_n"] > 0 and t["prompt_n"] < u["prompt_tokens"]  # so they differ below
    t1, u1 = first["timings"], first["usage"]
    assert c.get("/api/v1/stats").json() == {
        "time_to_first_token": t["prompt_ms"] / 1000.0,
        "tokens_per_second": t["predicted_per_second"],
        "input_tokens": t["prompt_n"],  # tokens processed: the cached ones not counted
        "output_tokens": t["predicted_n"],
        "prompt_tokens": u["prompt_tokens"],  # including the cached ones
        "request_count_total": 2,
        "input_tokens_total": t1["prompt_n"] + t["prompt_n"],
        "output_tokens_total": t1["predicted_n"] + t["predicted_n"],
        "prompt_tokens_total": u1["prompt_tokens"] + u["prompt_tokens"],
    }
    assert t["predicted_n"] == u["completion_tokens"] == 24


def test_stats_of_a_streamed_answer_take_its_input_tokens_as_prompt_tokens(c):
    final = streamed(c, "a streamed one")
    t = final["timings"]
    stats = c.get("/api/v1/stats").json()
    assert stats == {
        **ZERO,
        "time_to_first_token": t["prompt_ms"] / 1000.0,
        "tokens_per_second": t["predicted_per_second"],
        "input_tokens": t["prompt_n"],
        "output_tokens": 24,
        "prompt_tokens": t["prompt_n"],  # Lemonade records input_tokens there when streaming
        "request_count_total": 1,
        "input_tokens_total": t["prompt_n"],
        "output_tokens_total": 24,
        "prompt_tokens_total": t["prompt_n"],
    }


def test_an_answer_without_usage_leaves_prompt_tokens_as_they_were(c):
    before = chat(c, "with usage")
    assert c.post("/sim/fault", json={"fault": "no-usage:1"}).status_code == 200
    t = chat(c, "without usage")["timings"]
    stats = c.get("/api/v1/stats").json()
    assert (stats["input_tokens"], stats["output_tokens"]) == (t["prompt_n"], t["predicted_n"])
    assert stats["prompt_tokens"] == stats["prompt_tokens_total"] == before["usage"]["prompt_tokens"]
    assert stats["request_count_total"] == 2


def test_without_timings_a_whole_answer_has_no_speed_and_a_streamed_one_a_measured_one(bare):
    u = chat(bare, "no timings here")["usage"]
    assert bare.get("/api/v1/stats").json() == {
        **ZERO, "input_tokens": u["prompt_tokens"], "output_tokens": 24,
        "prompt_tokens": u["prompt_tokens"], "request_count_total": 1,
        "input_tokens_total": u["prompt_tokens"], "output_tokens_total": 24,
        "prompt_tokens_total": u["prompt_tokens"],
    }  # fmt: skip
    start = time.perf_counter()
    final = streamed(bare, "no timings, streamed")
    took = time.perf_counter() - start
    assert "timings" not in final
    stats = bare.get("/api/v1/stats").json()
    # Lemonade times the first chunk itself and divides the tokens by the rest.
    assert 0 < stats["time_to_first_token"] < took
    assert stats["tokens_per_second"] > 24 / took
    assert stats["input_tokens"] == stats["prompt_tokens"] == final["usage"]["prompt_tokens"]


# -- /unload -----------------------------------------------------------------------------
def test_unload_all_empties_health_and_a_chat_loads_the_model_again_with_its_defaults(c):
    r = c.post("/api/v1/load", json={"model_name": MODEL,
                                      "llamacpp_args": "--spec-draft-n-max 6"})  # fmt: skip
    assert r.status_code == 200 and health(c)["sim"]["draft_n_max"] == 6
    stats = c.get("/api/v1/stats").json()
    r = c.post("/api/v1/unload")  # no body at all, as `curl -X POST` sends it
    assert r.status_code == 200
    assert r.json() == {"status": "success", "message": "All models unloaded successfully"}
    h = health(c)
    assert (h["status"], h["model_loaded"], h["all_models_loaded"]) == ("ok", None, [])
    assert c.get("/api/v1/stats").json() == stats  # Lemonade keeps them
    assert c.get("/v1/models").json()["data"][0]["id"] == MODEL  # still registered
    # A chat request loads the model as Lemonade's auto-load does: without the last
    # load's llamacpp_args, so at the launch-time K.
    t = chat(c, "after the unload")["timings"]
    h = health(c)
    assert h["model_loaded"] == MODEL and h["sim"]["draft_n_max"] == FAST_SIM.draft_n_max
    assert k_from_launch_command(h["all_models_loaded"][0]["launch_command"]) == 3
    assert t["draft_n"] <= 3 * (24 - t["draft_n_accepted"])  # at most K per pass
    assert c.get("/api/v1/stats").json()["request_count_total"] == 1


def test_unload_by_name_and_what_is_not_loaded_is_a_404(c):
    for key in ("model_name", "model"):
        r = c.post("/api/v1/unload", json={key: MODEL})
        assert r.status_code == 200
        assert r.json() == {"status": "success", "message": "Model unloaded successfully",
                            "model_name": MODEL}  # fmt: skip
        again = c.post("/api/v1/unload", json={key: MODEL})
        assert again.status_code == 404
        assert again.json() == {"error": f"Model not loaded: {MODEL}"}
        load = c.post("/api/v1/load", json={"model_name": MODEL})
        assert load.status_code == 200 and health(c)["model_loaded"] == MODEL
    r = c.post("/api/v1/unload", json={"model_name": "other"})
    assert r.status_code == 404 and r.json() == {"error": "Model not loaded: other"}
    assert health(c)["model_loaded"] == MODEL
    # A body that is no JSON object names no model: Lemonade then unloads them all.
    r = c.post("/api/v1/unload", content=b"{oops")
    assert r.status_code == 200 and health(c)["all_models_loaded"] == []


def test_a_load_after_an_unload_loads_even_with_the_same_args(c):
    args = {"model_name": MODEL, "llamacpp_args": "--spec-draft-n-max 5"}
    assert c.post("/api/v1/load", json=args).status_code == 200
    assert c.post("/api/v1/unload").status_code == 200
    assert c.post("/api/v1/load", json=args).status_code == 200
    h = health(c)
    assert h["model_loaded"] == MODEL and h["sim"]["draft_n_max"] == 5


def test_an_unload_during_a_request_lets_it_finish(c):
    """Lemonade waits for the request in flight before it evicts a model; so does the
    server here (the unload takes the decoding slot): the answer comes whole."""
    import json

    lines: list[str] = []
    body = {"model": MODEL, "messages": [{"role": "user", "content": "long"}],
            "max_tokens": 400, "stream": True}  # fmt: skip
    started = threading.Event()

    def stream() -> None:
        with c.stream("POST", "/api/v1/chat/completions", json=body) as r:
            for ln in r.iter_lines():
                lines.append(ln)
                started.set()

    t = threading.Thread(target=stream)
    t.start()
    assert started.wait(10)
    assert c.post("/api/v1/unload").status_code == 200
    t.join(30)
    data = [ln for ln in lines if ln.startswith("data: ")]
    assert data[-1] == "data: [DONE]"
    assert json.loads(data[-2][6:])["usage"]["completion_tokens"] == 400
    assert health(c)["all_models_loaded"] == []
