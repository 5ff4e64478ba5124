"""vLLM and SGLang: their speculative-decoding flags (written, pasted, read back) and
how detect_server recognises them from their answers (tests/data/servers/SOURCES.md)."""

import json
import shlex
from pathlib import Path

import httpx
import pytest
import respx

from halospec_tui.actuators import ServerInfo, detect_server
from halospec_tui.client import ChatClient
from halospec_tui.engines import (
    k_from_sglang_args,
    k_from_sglang_server_info,
    k_from_vllm_args,
    paste_setting,
    sglang_spec_args,
    spec_args,
    vllm_spec_args,
)

DATA = Path(__file__).parent / "data" / "servers"
BASE = "http://engine.test"


def doc(name: str):
    return json.loads((DATA / name).read_text())


# -- flags -------------------------------------------------------------------------------
def test_vllm_flags():
    assert vllm_spec_args(3) == [
        "--speculative-config", '{"model": "DRAFT", "num_speculative_tokens": 3}'
    ]  # fmt: skip
    assert vllm_spec_args(5, "Qwen/Qwen3-0.6B") == [
        "--speculative-config", '{"model": "Qwen/Qwen3-0.6B", "num_speculative_tokens": 5}'
    ]  # fmt: skip
    assert vllm_spec_args(0) == []


def test_sglang_flags():
    # num-steps is K; num-draft-tokens counts the tokens a pass verifies: K + 1
    assert sglang_spec_args(4) == [
        "--speculative-algorithm", "STANDALONE", "--speculative-draft-model-path", "DRAFT",
        "--speculative-num-steps", "4", "--speculative-eagle-topk", "1",
        "--speculative-num-draft-tokens", "5",
    ]  # fmt: skip
    assert sglang_spec_args(1, "d")[-4:] == ["--speculative-eagle-topk", "1",
                                            "--speculative-num-draft-tokens", "2"]  # fmt: skip
    assert sglang_spec_args(0) == []


def test_bad_k_and_kind():
    for f in (vllm_spec_args, sglang_spec_args):
        with pytest.raises(ValueError, match="negative"):
            f(-1)
    with pytest.raises(ValueError, match="no flags for server kind 'lemonade'"):
        spec_args("lemonade", 2)


def test_paste_lines():
    assert paste_setting("vllm", 2) == (
        """vLLM flags: --speculative-config '{"model": "DRAFT", "num_speculative_tokens": 2}'"""
    )
    assert paste_setting("vllm", 0) == "vLLM flags: no speculation (no --speculative-config)"
    assert paste_setting("sglang", 3) == (
        "SGLang flags: --speculative-algorithm STANDALONE --speculative-draft-model-path DRAFT "
        "--speculative-num-steps 3 --speculative-eagle-topk 1 --speculative-num-draft-tokens 4"
    )
    assert paste_setting("sglang", 0) == "SGLang flags: no speculation (no --speculative-* flag)"
    assert paste_setting("vllm", 16, p_min=0.75) == (
        """vLLM flags: --speculative-config '{"model": "DRAFT", "num_speculative_tokens": 16}'"""
        " (vLLM has no draft-confidence cutoff like p_min 0.75)"
    )
    assert paste_setting("sglang", 0, p_min=0.5).endswith("(no --speculative-* flag)")
    for kind in ("llama-server", "lemonade", "sim", "openai", "unknown", ""):
        assert paste_setting(kind, 2) is None


@pytest.mark.parametrize("k", range(0, 17))
def test_flags_read_back(k):
    vllm = shlex.join(["vllm", "serve", "Qwen/Qwen3-8B", *vllm_spec_args(k), "--port", "8000"])
    sglang = shlex.join(["python", "-m", "sglang.launch_server", "--model-path", "Qwen/Qwen3-8B",
                         *sglang_spec_args(k)])  # fmt: skip
    assert k_from_vllm_args(vllm) == k
    assert k_from_sglang_args(sglang) == k
    # what a pasted line carries reads back too
    for kind, read in (("vllm", k_from_vllm_args), ("sglang", k_from_sglang_args)):
        line = paste_setting(kind, k)
        assert read(line.split("flags: ", 1)[1] if k else "") == k


def test_vllm_command_lines():
    assert k_from_vllm_args("""--speculative-config='{"model":"d","num_speculative_tokens":5}'""") == 5
    # unquoted, a shell takes the JSON's quotes away: not JSON any more
    assert k_from_vllm_args('--speculative-config={"num_speculative_tokens":5}') is None
    assert k_from_vllm_args("--speculative-config.num_speculative_tokens 4") == 4
    assert k_from_vllm_args("--speculative-config.num_speculative_tokens=6 -tp 2") == 6
    last = """--speculative-config '{"num_speculative_tokens": 2}' --speculative-config '{"num_speculative_tokens": 7}'"""
    assert k_from_vllm_args(last) == 7
    assert k_from_vllm_args("""--speculative-config '{"model": "d"}'""") is None  # its own default
    assert k_from_vllm_args("--speculative-config '{not json'") is None
    assert k_from_vllm_args("--speculative-config '[3]'") is None
    assert k_from_vllm_args("""--speculative-config '{"num_speculative_tokens": 0}'""") is None
    assert k_from_vllm_args("--speculative-config 'unbalanced") is None
    assert k_from_vllm_args("vllm serve m --max-model-len 4096") == 0
    assert k_from_vllm_args("") == 0


def test_sglang_command_lines():
    assert k_from_sglang_args("--speculative-algorithm=EAGLE --speculative-num-steps=3") == 3
    assert k_from_sglang_args("--speculative-algorithm STANDALONE") is None  # SGLang picks
    tree = "--speculative-algorithm EAGLE --speculative-num-steps 5 --speculative-eagle-topk 4"
    assert k_from_sglang_args(tree) is None  # a tree of drafts: no single length
    assert k_from_sglang_args("--model-path m --port 30000") == 0
    assert k_from_sglang_args("--speculative-num-steps 'x") is None


def test_sglang_server_info_tells_k():
    assert k_from_sglang_server_info(doc("sglang_server_info.json")) == 3
    assert k_from_sglang_server_info({"speculative_algorithm": None}) == 0
    assert k_from_sglang_server_info({"speculative_algorithm": "EAGLE", "speculative_num_steps": 5,
                                      "speculative_eagle_topk": 8}) is None  # fmt: skip
    assert k_from_sglang_server_info(["not", "a", "dict"]) is None


# -- detection ---------------------------------------------------------------------------
def serve(answers: dict[str, httpx.Response]) -> list[str]:
    """Mock the server: the given paths answer, everything else is 404; returns the
    list the requested paths are appended to, in order."""
    asked: list[str] = []

    def handler(request: httpx.Request) -> httpx.Response:
        asked.append(request.url.path)
        return answers.get(request.url.path, httpx.Response(404, json={"detail": "Not Found"}))

    respx.route(host="engine.test").mock(side_effect=handler)
    return asked


def ok(name: str) -> httpx.Response:
    return httpx.Response(200, json=doc(name))


@respx.mock
def test_vllm_by_its_model_list():
    asked = serve({"/v1/models": ok("vllm_models.json"), "/version": ok("vllm_version.json")})
    info = detect_server(ChatClient(BASE, "Qwen/Qwen3-8B"))
    assert info == ServerInfo("vllm", "0.11.0", "vLLM /v1/models owned_by")
    assert asked == ["/api/v1/health", "/props", "/v1/models", "/version"]


@respx.mock
def test_vllm_by_its_version_when_the_model_list_is_refused():
    # /v1/models behind an API key the client lacks; vLLM's development /server_info
    # answers too, and is not taken for SGLang's
    asked = serve({"/v1/models": httpx.Response(401, json={"error": "Unauthorized"}),
                   "/server_info": ok("vllm_server_info.json"),
                   "/version": ok("vllm_version.json")})  # fmt: skip
    info = detect_server(ChatClient(BASE, "Qwen/Qwen3-8B"))
    assert info == ServerInfo("vllm", "0.11.0", "vLLM /version")
    assert asked == ["/api/v1/health", "/props", "/v1/models", "/server_info",
                     "/get_server_info", "/model_info", "/get_model_info", "/version"]  # fmt: skip


@respx.mock
def test_sglang_by_its_model_list_and_server_info():
    asked = serve({"/v1/models": ok("sglang_models.json"),
                   "/get_server_info": ok("sglang_server_info.json")})  # fmt: skip
    info = detect_server(ChatClient(BASE, "Qwen/Qwen3-8B"))
    assert info == ServerInfo("sglang", "0.5.4", "SGLang /v1/models owned_by; launched with K=3")
    assert asked == ["/api/v1/health", "/props", "/v1/models", "/server_info", "/get_server_info"]


@respx.mock
def test_sglang_by_its_own_endpoints():
    serve({"/server_info": ok("sglang_server_info.json")})
    assert detect_server(ChatClient(BASE, "m")) == ServerInfo(
        "sglang", "0.5.4", "SGLang /server_info; launched with K=3"
    )


@respx.mock
def test_sglang_by_its_model_info_alone():
    asked = serve({"/v1/models": ok("sglang_models.json"),
                   "/get_model_info": ok("sglang_model_info.json")})  # fmt: skip
    assert detect_server(ChatClient(BASE, "m")) == ServerInfo("sglang", "", "SGLang /get_model_info")
    assert asked[-1] == "/get_model_info"


@respx.mock
def test_another_server_that_names_itself_is_not_probed_further():
    other = {"object": "list", "data": [{"id": "m", "object": "model", "owned_by": "library"}]}
    asked = serve({"/v1/models": httpx.Response(200, json=other),
                   "/version": ok("vllm_version.json")})  # fmt: skip
    assert detect_server(ChatClient(BASE, "m")) == ServerInfo("openai", "", "answers /v1/models")
    assert asked == ["/api/v1/health", "/props", "/v1/models"]


@respx.mock
def test_a_version_answer_with_more_than_a_version_is_not_vllm():
    serve({"/version": httpx.Response(200, json={"version": "1.2", "name": "other"}),
           "/server_info": httpx.Response(200, json={"internal_states": "not a list"}),
           "/model_info": httpx.Response(200, json={"model_path": "m"})})  # fmt: skip
    assert detect_server(ChatClient(BASE, "m")) == ServerInfo("unknown")


@respx.mock
def test_the_servers_known_before_are_found_as_before():
    # llama-server's /props comes first, whatever its /v1/models says
    props = {"default_generation_settings": {}, "build_info": "b9012-abc"}
    asked = serve({"/props": httpx.Response(200, json=props),
                   "/v1/models": ok("vllm_models.json")})  # fmt: skip
    assert detect_server(ChatClient(BASE, "m")) == ServerInfo(
        "llama-server", "b9012-abc", "llama-server /props"
    )
    assert asked == ["/api/v1/health", "/props"]


def test_detection_against_the_embedded_server(sim):
    info = detect_server(ChatClient(sim.base_url, "Qwen3-0.6B-GGUF"))
    assert info.kind == "sim" and info.detail == "embedded simulation server"


@respx.mock
def test_a_stalling_server_costs_one_timeout_not_one_per_endpoint():
    asked: list[str] = []

    def handler(request: httpx.Request) -> httpx.Response:
        asked.append(request.url.path)
        if request.url.path == "/server_info":
            raise httpx.ReadTimeout("stalled", request=request)
        return httpx.Response(404)

    respx.route(host="engine.test").mock(side_effect=handler)
    assert detect_server(ChatClient(BASE, "m")) == ServerInfo("unknown")
    assert asked == ["/api/v1/health", "/props", "/v1/models", "/server_info"]


@respx.mock
def test_no_answer_to_the_model_list_asks_nothing_more():
    asked: list[str] = []

    def handler(request: httpx.Request) -> httpx.Response:
        asked.append(request.url.path)
        raise httpx.ConnectError("refused", request=request)

    respx.route(host="engine.test").mock(side_effect=handler)
    assert detect_server(ChatClient(BASE, "m")) == ServerInfo("unknown")
    assert asked == ["/api/v1/health", "/props", "/v1/models"]
