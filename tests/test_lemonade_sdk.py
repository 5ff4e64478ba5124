"""Lemonade's own Python client (PyPI lemonade-python-sdk) against the embedded server,
run as its own process: every call it makes on the way is answered as Lemonade does.

The client never raises: on an HTTP error it prints the error and returns
{"error": ...} (or {} / [] / False), so each answer is checked whole."""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest
from conftest import FAST_SIM
from lemonade_sdk import LemonadeClient

from halospec_tui.actuators import k_from_launch_command
from halospec_tui.sim.process import SimProcess

MODEL = FAST_SIM.model


@pytest.fixture
def server(no_leftovers: str) -> Iterator[SimProcess]:
    proc = SimProcess.start(FAST_SIM)  # its own: an unload changes what it serves
    try:
        yield proc
    finally:
        proc.stop()


def launch_k(base_url: str) -> int | None:
    h = httpx.get(base_url + "/api/v1/health", timeout=10).json()
    return k_from_launch_command(h["all_models_loaded"][0]["launch_command"])


def test_the_lemonade_sdk_loads_chats_reads_stats_and_unloads(server, capsys):
    client = LemonadeClient(base_url=server.base_url)
    assert client.health_check() is True
    assert [m["id"] for m in client.list_models()] == [MODEL]

    loaded = client.load_model(MODEL, llamacpp_args="--spec-type draft-simple --spec-draft-n-max 5")
    assert loaded == {"status": "success", "message": f"Loaded model: {MODEL}",
                      "model_name": MODEL, "checkpoint": "halospec-sim", "recipe": "llamacpp"}  # fmt: skip
    assert launch_k(server.base_url) == 5

    answer = client.chat_completion(MODEL, [{"role": "user", "content": "hello"}], max_tokens=20)
    assert "error" not in answer, answer
    t, u = answer["timings"], answer["usage"]
    stats = client.get_stats()
    assert stats == {
        "time_to_first_token": t["prompt_ms"] / 1000.0,
        "tokens_per_second": t["predicted_per_second"],
        "input_tokens": t["prompt_n"],
        "output_tokens": u["completion_tokens"],
        "prompt_tokens": u["prompt_tokens"],
        "request_count_total": 1,
        "input_tokens_total": t["prompt_n"],
        "output_tokens_total": 20,
        "prompt_tokens_total": u["prompt_tokens"],
    }
    assert stats["output_tokens"] == 20 and stats["tokens_per_second"] > 0

    assert client.unload_model() == {
        "status": "success",
        "message": "All models unloaded successfully",
    }
    h = httpx.get(server.base_url + "/api/v1/health", timeout=10).json()
    assert (h["model_loaded"], h["all_models_loaded"]) == (None, [])
    assert client.health_check() is True  # the server is up, the model is not loaded
    assert client.get_stats() == stats  # the last request's figures stay

    # The next chat loads the model again, at its launch-time K (Lemonade's auto-load
    # does not reuse the last load's llamacpp_args).
    again = client.chat_completion(MODEL, [{"role": "user", "content": "again"}], max_tokens=8)
    assert again["usage"]["completion_tokens"] == 8
    assert launch_k(server.base_url) == FAST_SIM.draft_n_max
    after = client.get_stats()
    assert (after["output_tokens"], after["request_count_total"]) == (8, 2)
    assert after["output_tokens_total"] == 28

    assert capsys.readouterr().out == ""  # the client prints every error it meets
