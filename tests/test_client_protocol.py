"""Exact protocol checks and fault cases against respx mocks."""

import json
import time

import httpx
import pytest
import respx

from halospec_tui.actuators import FieldActuator, LemonadeLoadActuator, RequestActuator
from halospec_tui.client import MAX_TOKENS, ChatClient, parse_completion, preview, reply_text
from halospec_tui.controllers import threshold_rule
from halospec_tui.events import ListSink, StepDone
from halospec_tui.plan import customise, named_plan
from halospec_tui.prompts import ORIGINAL_PROMPT
from halospec_tui.redact import MASK
from halospec_tui.runner import RunConfig, Runner

BASE = "http://test.local"
URL = BASE + "/api/v1/chat/completions"


def ok_doc(tokens=64, **timings):
    doc = {
        "choices": [{"message": {"content": "<think>x</think> A. B is it."}}],
        "usage": {"completion_tokens": tokens},
    }
    if timings:
        doc["timings"] = timings
    return doc


def no_metrics():
    """The runner asks for /metrics once when answers carry no timings."""
    return respx.get(BASE + "/metrics").mock(return_value=httpx.Response(404))


def make_client(sleeps=None, **kw):
    return ChatClient(
        BASE,
        "Qwen3-0.6B-GGUF",
        sleep=(sleeps.append if sleeps is not None else (lambda s: None)),
        **kw,
    )


@respx.mock
def test_classic_plan_sends_the_original_body_exactly(tmp_path):
    metrics = no_metrics()
    route = respx.post(URL).mock(return_value=httpx.Response(200, json=ok_doc()))
    plan = customise(named_plan("classic"), arms=["fixed_3"], warmup=0, steps=1, cooldown_s=0)
    client = make_client()
    Runner(RunConfig(plan, str(tmp_path / "r.csv")), client, FieldActuator(), ListSink()).run()
    sent = json.loads(route.calls[0].request.content)
    assert list(sent) == [
        "model",
        "messages",
        "stream",
        "max_tokens",
        "temperature",
        "top_p",
        "stop",
        "speculative_draft_length",
    ]
    assert sent == {
        "model": "Qwen3-0.6B-GGUF",
        "messages": [{"role": "user", "content": ORIGINAL_PROMPT}],
        "stream": False,
        "max_tokens": 64,
        "temperature": 0.0,
        "top_p": 1.0,
        "stop": ["</think>"],
        "speculative_draft_length": 3,
    }
    assert route.calls[0].request.headers["content-type"] == "application/json"
    assert "authorization" not in route.calls[0].request.headers
    assert metrics.call_count == 1  # answers without timings: /metrics asked once, 404


@respx.mock
def test_pool_prompts_rotate_and_disable_the_cache(tmp_path):
    no_metrics()
    route = respx.post(URL).mock(return_value=httpx.Response(200, json=ok_doc()))
    plan = customise(
        named_plan("quick"),
        arms=["fixed_2", "fixed_5"],
        warmup=1,
        steps=2,
        cooldown_s=0,
        warmup_sleep_s=0,
    )
    Runner(
        RunConfig(plan, str(tmp_path / "r.csv")), make_client(), RequestActuator(), ListSink()
    ).run()
    bodies = [json.loads(c.request.content) for c in route.calls]
    assert all(b["cache_prompt"] is False for b in bodies)
    prompts = [b["messages"][0]["content"] for b in bodies]
    assert prompts[:3] == prompts[3:]  # each mode sees the same prompt sequence
    assert len(set(prompts[:3])) == 3
    assert bodies[0]["speculative"] == {"n_max": 2, "n_min": 0, "p_min": 0}
    assert bodies[3]["speculative"] == {"n_max": 5, "n_min": 0, "p_min": 0}


@respx.mock
def test_api_key_is_a_bearer_token():
    route = respx.post(URL).mock(return_value=httpx.Response(200, json=ok_doc()))
    make_client(api_key="s3cret").chat({"x": 1})
    assert route.calls[0].request.headers["authorization"] == "Bearer s3cret"


@respx.mock
def test_retries_then_success_with_400_800_backoff():
    sleeps = []
    respx.post(URL).mock(
        side_effect=[
            httpx.ConnectError("refused"),
            httpx.Response(500, text="boom"),
            httpx.Response(200, json=ok_doc(50)),
        ]
    )
    r = make_client(sleeps).chat({})
    assert (r.success, r.attempts, r.tokens) == (True, 3, 50)
    assert sleeps == [0.4, 0.8]


@respx.mock
def test_three_failures_make_a_failed_reply():
    sleeps = []
    route = respx.post(URL).mock(return_value=httpx.Response(502, text="bad gateway"))
    r = make_client(sleeps).chat({})
    assert route.call_count == 3
    assert (r.success, r.latency_ms, r.tokens, r.attempts, r.status) == (False, 0, 0, 3, 502)
    assert r.error == "HTTP 502: bad gateway"
    assert sleeps == [0.4, 0.8]


@respx.mock
def test_503_loading_waits_without_counting_an_attempt():
    sleeps = []
    route = respx.post(URL).mock(
        side_effect=[
            httpx.Response(503, json={"error": {"message": "Loading model"}}),
            httpx.Response(503, json={"error": {"message": "Loading model"}}),
            httpx.Response(200, json=ok_doc()),
        ]
    )
    r = make_client(sleeps).chat({})
    assert route.call_count == 3
    assert (r.success, r.attempts) == (True, 1)
    assert sleeps == [1.0, 1.0]


@respx.mock
def test_503_loading_gives_up_after_the_wait():
    sleeps = []
    respx.post(URL).mock(return_value=httpx.Response(503, text="Loading model"))
    r = make_client(sleeps, loading_wait_s=0).chat({})
    assert (r.success, r.attempts) == (False, 3)
    assert sleeps == [0.4, 0.8]


@respx.mock
def test_503_loading_with_retry_after_0_waits_the_retry_floor():
    # Retry-After: 0 asked for no wait at all: without a floor the client re-sent at
    # once, in a busy loop, for the whole loading wait (120 s by default)
    sleeps = []
    loading = httpx.Response(503, text="Loading model", headers={"Retry-After": "0"})
    route = respx.post(URL).mock(side_effect=[loading, loading, httpx.Response(200, json=ok_doc())])
    r = make_client(sleeps).chat({})
    assert (r.success, r.attempts, route.call_count) == (True, 1, 3)
    assert sleeps == [0.4, 0.4]  # the first backoff step, as a 429 with Retry-After: 0 gets


@respx.mock
def test_a_loading_wait_never_passes_the_loading_deadline():
    sleeps = []
    respx.post(URL).mock(
        side_effect=[
            httpx.Response(503, text="Loading model", headers={"Retry-After": "30"}),
            httpx.Response(200, json=ok_doc()),
        ]
    )
    r = make_client(sleeps, loading_wait_s=5.0).chat({})
    assert r.success and len(sleeps) == 1 and 4.5 < sleeps[0] <= 5.0


@respx.mock
def test_a_runtime_error_in_a_request_is_a_failure_not_an_abandon():
    sleeps = []
    route = respx.post(URL).mock(side_effect=RuntimeError("pool broke; key s3cret"))
    client = make_client(sleeps, api_key="s3cret")
    r = client.chat({})
    assert (r.success, r.attempts, route.call_count, sleeps) == (False, 3, 3, [0.4, 0.8])
    assert r.error == f"RuntimeError: pool broke; key {MASK}"  # redacted
    assert not r.connection_error and not client.abandoned


@respx.mock
def test_a_runtime_error_once_the_client_is_closed_is_its_abandon():
    # httpx raises RuntimeError for a client closed under it: the runner closes a
    # client that has no abandon(); that one is an abandon, reported as such
    sleeps = []
    client = make_client(sleeps)

    def close_and_refuse(request):
        client.close()
        raise RuntimeError("Cannot send a request, as the client has been closed.")

    respx.post(URL).mock(side_effect=close_and_refuse)
    r = client.chat({})
    assert (r.success, r.attempts, r.error, r.connection_error) == (
        False, 1, "request abandoned", True,
    )  # fmt: skip
    assert sleeps == []  # no retry


@respx.mock
@pytest.mark.parametrize(
    "response,error",
    [
        (httpx.Response(200, text="{not json"), "malformed JSON"),
        (httpx.Response(200, json=[1, 2]), "not a JSON object"),
        (httpx.Response(200, json={"usage": {"completion_tokens": 3}}), "no choices"),
    ],
)
def test_malformed_answers_are_failed_attempts(response, error):
    respx.post(URL).mock(return_value=response)
    r = make_client().chat({})
    assert not r.success and error in r.error and r.attempts == 3


@respx.mock
def test_timeout_is_a_connection_failure():
    respx.post(URL).mock(side_effect=httpx.ReadTimeout("slow"))
    r = make_client().chat({})
    assert not r.success and r.connection_error and r.error.startswith("timeout")


def test_parse_usage_and_timings():
    doc = ok_doc(
        61,
        prompt_n=12,
        prompt_ms=3.5,
        predicted_n=61,
        predicted_ms=812.25,
        cache_n=4,
        draft_n=90,
        draft_n_accepted=45,
    )
    f = parse_completion(doc)
    assert f == {
        "tokens": 61, "tokens_reported": True, "drafted": 90, "accepted": 45,
        "predicted_n": 61, "predicted_ms": 812.25, "prompt_ms": 3.5, "cache_n": 4,
    }  # fmt: skip
    missing = parse_completion({"choices": [{}]})
    assert (missing["tokens"], missing["tokens_reported"]) == (64, False)  # the original's 64
    assert MAX_TOKENS == 64
    assert parse_completion({"choices": [{}], "usage": {}}, 32)["tokens"] == 32
    assert parse_completion({"choices": [{}], "timings": {"draft_n": True}})["drafted"] is None


@respx.mock
@pytest.mark.parametrize("stream", [False, True], ids=["whole", "streamed"])
def test_an_answer_without_usage_says_its_tokens_were_not_reported(stream):
    lines = []
    if stream:
        chunk = {"choices": [{"delta": {"content": "Hi."}}]}
        answer = httpx.Response(200, content=f"data: {json.dumps(chunk)}\n\ndata: [DONE]\n\n",
                                headers={"content-type": "text/event-stream"})  # fmt: skip
    else:
        answer = httpx.Response(200, json={"choices": [{"message": {"content": "Hi."}}]})
    respx.post(URL).mock(return_value=answer)
    client = make_client(stream=stream, log=lambda level, text: lines.append((level, text)))
    r = client.chat(client.build_body("p"))
    assert (r.success, r.tokens, r.tokens_reported) == (True, 64, False)
    assert ("warning", "response has no usage; counting 64 tokens (the request's max_tokens) "
            "as the original") in lines  # fmt: skip
    r = client.chat(client.build_body("p", max_tokens=16))
    assert (r.tokens, r.tokens_reported) == (16, False)  # the budget that request had


@respx.mock
def test_reported_tokens_and_failures_say_so():
    respx.post(URL).mock(
        side_effect=[httpx.Response(200, json=ok_doc(7))] + [httpx.Response(500)] * 3
    )
    client = make_client()
    ok, failed = client.chat({}), client.chat({})
    assert (ok.tokens, ok.tokens_reported) == (7, True)
    assert (failed.success, failed.tokens, failed.tokens_reported) == (False, 0, False)


def test_reply_text_and_preview_follow_the_original():
    assert (
        reply_text({"choices": [{"message": {"content": "  ", "reasoning_content": "r"}}]}) == "r"
    )
    assert reply_text({"choices": [{"text": "t"}]}) == "t"
    assert reply_text({"choices": [{}]}) == "[EMPTY RESPONSE]"
    assert preview("<think>hmm</think> First. Second one!") == "Second one."
    assert preview("x" * 200) == "x" * 140


@respx.mock
def test_streaming_records_time_to_first_token():
    chunks = [
        {"choices": [{"delta": {"content": "Hel"}}]},
        {"choices": [{"delta": {"content": "lo"}}]},
        {
            "choices": [{"delta": {}}],
            "usage": {"completion_tokens": 2},
            "timings": {"draft_n": 4, "draft_n_accepted": 1},
        },
    ]
    events = [f"data: {json.dumps(c)}\n\n".encode() for c in chunks] + [b"data: [DONE]\n\n"]

    def slow_stream():
        # 60 ms before the first token, 60 ms more before the rest: under load the
        # gaps only grow, so the lower bounds below hold whatever the machine does
        time.sleep(0.06)
        yield events[0]
        time.sleep(0.06)
        yield from events[1:]

    route = respx.post(URL).mock(
        return_value=httpx.Response(
            200, content=slow_stream(), headers={"content-type": "text/event-stream"}
        )
    )
    r = make_client(stream=True).chat(make_client(stream=True).build_body("p"))
    sent = json.loads(route.calls[0].request.content)
    assert sent["stream"] is True and sent["stream_options"] == {"include_usage": True}
    assert (r.success, r.text, r.tokens, r.drafted, r.accepted) == (True, "Hello", 2, 4, 1)
    # time to first token is taken at the first content chunk, not at the end
    assert r.ttft_ms is not None and r.ttft_ms >= 60
    assert r.latency_ms >= 120 and r.latency_ms - r.ttft_ms >= 59


@respx.mock
def test_failed_step_is_logged_as_zeroes_and_sets_k_to_one(tmp_path):
    no_metrics()
    respx.post(URL).mock(
        side_effect=[httpx.Response(200, json=ok_doc())] * 2  # warmup
        + [httpx.Response(200, json=ok_doc())]  # step 1
        + [httpx.ConnectError("down")] * 3  # step 2 fails
        + [httpx.Response(200, json=ok_doc())] * 2
    )
    plan = customise(
        named_plan("classic"),
        arms=["adaptive"],
        warmup=2,
        adaptive_steps=3,
        cooldown_s=0,
        warmup_sleep_s=0,
    )
    sink = ListSink()
    csv = tmp_path / "r.csv"
    Runner(RunConfig(plan, str(csv)), make_client(), FieldActuator(), sink).run()
    rows = [line.split(",")[:8] for line in csv.read_text().splitlines()[1:]]
    assert rows[1] == ["2", "2", "adaptive", "steady", rows[1][4], "0", "0", "0"]
    recs = [e.record for e in sink.of(StepDone)]
    # step 1: K=4 (no EMA yet); step 3: base K reset to 1 by the failure, then the rule
    # applied to the EMA the failure left untouched
    assert recs[0].draft_length == 4
    assert recs[1].ema_ms == recs[0].ema_ms
    assert recs[2].draft_length == threshold_rule(
        int(recs[1].ema_ms), 1, recs[1].low_ms, recs[1].high_ms
    )
    assert sink.of(StepDone)[1].record.error.startswith("connection error")


@respx.mock
def test_lemonade_load_protocol():
    load = respx.post(BASE + "/api/v1/load").mock(
        return_value=httpx.Response(200, json={"status": "success"})
    )
    health = respx.get(BASE + "/api/v1/health").mock(
        return_value=httpx.Response(
            200,
            json={
                "status": "ok",
                "all_models_loaded": [
                    {
                        "model_name": "Qwen3-0.6B-GGUF",
                        "launch_command": "llama-server -m a.gguf --spec-type draft-simple --spec-draft-n-max 5",
                    }
                ],
            },
        )  # fmt: skip
    )
    client = make_client()
    act = LemonadeLoadActuator(client, "Qwen3-0.6B-GGUF", base_args="--ctx-size 4096")
    a = act.apply(5)
    assert json.loads(load.calls[0].request.content) == {
        "model_name": "Qwen3-0.6B-GGUF",
        "llamacpp_args": "--ctx-size 4096 --spec-type draft-simple --spec-draft-n-max 5 --spec-draft-n-min 0 --spec-draft-p-min 0",
    }
    assert a.confirmed_k == 5 and a.reload_ms is not None
    assert act.apply(5).reload_ms is None  # same K: no reload
    # health is read twice: what was loaded before the first reload, then K confirmed
    assert load.call_count == 1 and health.call_count == 2
    assert act.body_fields(5) == {}


def _lemonade_health(version):
    return {"status": "ok", "version": version, "model_loaded": "Qwen3-0.6B-GGUF",
            "all_models_loaded": []}  # fmt: skip


@pytest.mark.parametrize(
    "routes,kind,actuator,why",
    [
        ({"/api/v1/health": _lemonade_health("10.2.1")}, "lemonade", "request",
         "Lemonade 10.2.1 has no llamacpp_args reload"),
        ({"/api/v1/health": _lemonade_health("v10.3.0")}, "lemonade", "lemonade-load",
         "Lemonade v10.3.0: reload with llamacpp_args"),
        ({"/api/v1/health": _lemonade_health("10.8.1")}, "lemonade", "lemonade-load",
         "Lemonade 10.8.1: reload with llamacpp_args"),
        ({"/props": {"default_generation_settings": {}, "build_info": "b9012-abc"}},
         "llama-server", "request", "llama-server: per-request speculative.n_max"),
        ({"/v1/models": {"data": []}}, "openai", "request", "server kind openai"),
        ({}, "unknown", "request", "server kind unknown"),
    ],
)  # fmt: skip
@respx.mock
def test_auto_picks_the_actuator_from_what_answers(routes, kind, actuator, why):
    from halospec_tui.actuators import choose_actuator, detect_server

    for path, doc in routes.items():
        respx.get(BASE + path).mock(return_value=httpx.Response(200, json=doc))
    respx.route(host="test.local").mock(return_value=httpx.Response(404))  # the rest
    client = make_client()
    info = detect_server(client)
    assert info.kind == kind
    act, reason = choose_actuator(info, client, "Qwen3-0.6B-GGUF", lambda *a: None)
    assert act.name == actuator
    assert reason.startswith(why)
