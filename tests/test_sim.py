"""The embedded server: protocol, physics measured in one run, contention, clean stop."""

import re
import time

import httpx
import psutil
import pytest

from halospec_tui.load import LoadInjector
from halospec_tui.metrics import parse_draft_counters
from halospec_tui.sim.physics import Engine, SimParams, acceptance_for, expected_speedup, generate
from halospec_tui.sim.process import SimProcess

MODEL = "Qwen3-0.6B-GGUF"


def chat(c, prompt="hello", **kw):
    body = {
        "model": MODEL,
        "messages": [{"role": "user", "content": prompt}],
        "max_tokens": 64,
        **kw,
    }
    return c.post("/api/v1/chat/completions", json=body)


def load_k(c, k):
    r = c.post(
        "/api/v1/load",
        json={
            "model_name": MODEL,
            "llamacpp_args": f"--spec-type draft-simple --spec-draft-n-max {k}",
        },
    )
    assert r.status_code == 200, r.text


def test_protocol(sim):
    with httpx.Client(base_url=sim.base_url, timeout=30) as c:
        h = c.get("/api/v1/health").json()
        assert h["status"] == "ok" and h["sim"]["target_ms"] == 1.5
        assert c.get("/v1/models").json()["data"][0]["id"] == MODEL
        load_k(c, 6)
        h = c.get("/api/v1/health").json()
        assert "--spec-draft-n-max 6" in h["all_models_loaded"][0]["launch_command"]
        r = chat(c).json()
        assert r["usage"]["completion_tokens"] == 64
        t = r["timings"]
        assert t["predicted_n"] == 64 and 0 <= t["draft_n_accepted"] <= t["draft_n"]
        # tokens = accepted + one target token per pass; a pass drafts at most K
        passes = 64 - t["draft_n_accepted"]
        assert t["draft_n"] <= 6 * passes
        # errors a real server gives
        bad = c.post(
            "/api/v1/chat/completions",
            json={"model": "other", "messages": [{"role": "user", "content": "x"}]},
        )
        assert bad.status_code == 404 and "not found" in bad.json()["error"]["message"]
        assert c.post("/api/v1/chat/completions", content=b"{oops").status_code == 400
        assert (
            c.post("/api/v1/chat/completions", json={"model": MODEL, "messages": []}).status_code
            == 400
        )
        assert (
            c.post(
                "/api/v1/load", json={"model_name": MODEL, "llamacpp_args": "-md x.gguf"}
            ).status_code
            == 400
        )
        assert c.get("/nope").status_code == 404
        assert parse_draft_counters(c.get("/metrics").text) is not None


def test_prompt_cache_counts_a_repeated_prompt_unless_disabled(sim):
    with httpx.Client(base_url=sim.base_url, timeout=30) as c:
        chat(c, "a prompt that repeats itself for the cache test")
        again = chat(c, "a prompt that repeats itself for the cache test").json()["timings"]
        off = chat(c, "a prompt that repeats itself for the cache test", cache_prompt=False).json()[
            "timings"
        ]
    assert again["cache_n"] > 0 and off["cache_n"] == 0


def test_streaming_answer(sim):
    with httpx.Client(base_url=sim.base_url, timeout=30) as c:
        lines = []
        with c.stream("POST", "/api/v1/chat/completions", json={"model": MODEL, "stream": True, "max_tokens": 16,
                      "messages": [{"role": "user", "content": "s"}]}) as r:  # fmt: skip
            lines = [ln for ln in r.iter_lines() if ln.startswith("data:")]
    assert lines[-1] == "data: [DONE]"
    assert '"completion_tokens": 16' in lines[-2] and '"draft_n"' in lines[-2]


def test_draft_counts_follow_k_and_are_ignored_per_request_by_default(sim):
    with httpx.Client(base_url=sim.base_url, timeout=30) as c:
        load_k(c, 1)
        one = chat(c, "k test").json()["timings"]
        load_k(c, 8)
        eight = chat(c, "k test").json()["timings"]
        ignored = chat(c, "k test", speculative={"n_max": 1}).json()["timings"]
    passes1 = 64 - one["draft_n_accepted"]
    assert one["draft_n"] <= passes1  # K=1 drafts at most one per pass
    assert eight["draft_n"] > 2 * one["draft_n"]
    assert ignored["draft_n"] > 2 * one["draft_n"]  # per-request K ignored, as current llama-server


def test_acceptance_depends_on_prompt_and_profile():
    p = SimParams()
    a = {acceptance_for(p, f"prompt {i}", 0) for i in range(20)}
    assert len(a) == 20 and min(a) >= p.acceptance - p.acceptance_spread - 1e-9
    s = SimParams(profile="shift", shift_every=10)
    assert acceptance_for(s, "x", 0) - acceptance_for(s, "x", 10) == pytest.approx(0.32)


def test_expected_speedup_has_an_interior_optimum():
    sp = [expected_speedup(0.72, 0.15, k, 0.04) for k in range(1, 9)]
    best = sp.index(max(sp)) + 1
    assert 1 < best < 8
    hi = [expected_speedup(0.9, 0.15, k, 0.04) for k in range(1, 9)]
    assert hi.index(max(hi)) + 1 > best


def _model_cost_ms(p: SimParams, passes: int, drafted: int) -> float:
    """Decode work the physics does, in unloaded ms: per pass one target pass plus
    `verify_per_token` per drafted token, and one draft step per drafted token."""
    return p.target_ms * (passes + drafted * (p.draft_ratio + p.verify_per_token))


def _tps(engine, ks, n=10):
    """Tokens per second of modelled work per K, from what the server counted (tokens,
    passes, drafted): the same numbers whatever else runs on the machine. Also checks
    that the work was really done: wall time never falls far below the modelled cost
    (contention only adds to it)."""
    p = engine.params
    tokens = dict.fromkeys(ks, 0)
    cost = dict.fromkeys(ks, 0.0)
    for i in range(n):
        for k in ks:
            g = generate(engine, f"physics prompt {i}", 64, k, i)
            assert g.tokens == 64 and g.tokens == g.accepted + g.passes
            assert g.drafted <= k * g.passes
            c = _model_cost_ms(p, g.passes, g.drafted)
            assert g.predicted_ms >= 0.5 * c, (k, g.predicted_ms, c)
            tokens[k] += g.tokens
            cost[k] += c
    return {k: tokens[k] / (cost[k] / 1000.0) for k in ks}


def test_physics_measured_in_one_run():
    """Tokens per unit of work over K peak inside 1..8, and higher acceptance moves the peak
    up: judged from the counts the server reports (seeded), with the real compute checked
    by a lower bound on its wall time that load cannot break."""
    mid = Engine(SimParams(target_ms=1.5, acceptance=0.7, acceptance_spread=0.0))
    tps = _tps(mid, (1, 3, 8))
    # expected from the model: K=3 about 12% over K=1 and 27% over K=8
    assert tps[3] > 1.05 * tps[1] and tps[3] > 1.05 * tps[8], tps
    high = Engine(SimParams(target_ms=1.5, acceptance=0.95, acceptance_spread=0.0))
    tps_hi = _tps(high, (3, 8))
    assert tps_hi[8] > 1.05 * tps_hi[3], tps_hi


def test_drafting_is_seeded_and_repeatable():
    """Same prompt, K and request number: the same drafted/accepted counts, every time."""
    e = Engine(SimParams(target_ms=0.2, acceptance=0.7, acceptance_spread=0.0))
    a = generate(e, "repeat", 64, 4, 3)
    b = generate(e, "repeat", 64, 4, 3)
    assert (a.drafted, a.accepted, a.passes) == (b.drafted, b.accepted, b.passes)
    other = [generate(e, "repeat", 64, 4, r) for r in range(4, 12)]
    assert len({(g.drafted, g.accepted) for g in other + [a]}) > 1  # the draw moves on


def _wait_burning(pids, cpu_s=0.05, timeout_s=30.0):
    """Until every burner has used some CPU (spawning takes a while on a busy machine)."""
    deadline = time.monotonic() + timeout_s
    while True:
        used = [sum(psutil.Process(p).cpu_times()[:2]) for p in pids]
        if used and min(used) >= cpu_s:
            return
        assert time.monotonic() < deadline, used
        time.sleep(0.05)


def test_latency_rises_under_load_and_falls_after(sim):
    with httpx.Client(base_url=sim.base_url, timeout=30) as c:
        load_k(c, 3)

        def median_latency():
            lat = []
            for i in range(7):
                t = time.perf_counter()
                chat(c, f"load {i}", cache_prompt=False)
                lat.append(time.perf_counter() - t)
            return sorted(lat)[3]

        before = median_latency()
        burner = LoadInjector(workers=(psutil.cpu_count() or 1) * 2)
        burner.start(20)
        try:
            _wait_burning(burner.pids())
            during = median_latency()
        finally:
            burner.stop()
        after = median_latency()
    assert during > 1.2 * before, (before, during)
    assert after < during / 1.1, (during, after)


def test_start_and_stop_leave_nothing(no_leftovers):
    s = SimProcess.start(SimParams(target_ms=1))
    pid = s.pid
    assert httpx.get(s.base_url + "/api/v1/health").status_code == 200
    assert s.host == "127.0.0.1"
    conns = [
        c for c in psutil.Process(pid).net_connections(kind="tcp") if c.status == psutil.CONN_LISTEN
    ]
    assert {c.laddr.ip for c in conns} == {"127.0.0.1"}
    s.stop()
    assert not s.alive()


# -- command line of the embedded server ----------------------------------------
def _round_trip(params):
    import argparse

    from halospec_tui.sim.process import add_sim_args, params_from_args, params_to_argv

    p = argparse.ArgumentParser()
    add_sim_args(p)
    return params_from_args(p.parse_args(params_to_argv(params)))


def test_params_round_trip_over_every_field():
    from dataclasses import fields, replace

    base = SimParams()
    assert _round_trip(base) == base
    changed = {
        "model": "other-model", "target_ms": 2.25, "draft_ratio": 0.3, "verify_per_token": 0.07,
        "prompt_ms_per_token": 0.125, "acceptance": 0.5, "acceptance_spread": 0.05,
        "profile": "drift", "shift_every": 7, "seed": 11, "draft_n_max": 0,
        "honor_request_draft": True, "reload_ms": 12.5, "fault": "500:0.1",
        "report_timings": False, "nature_shift": 0.05, "confidence_kappa": 3.5,
        "acceptance_decay": 0.75, "verify_quadratic": 0.125, "pass_overhead_ms": 0.25,
        "spec_overhead_ms": 0.5, "model_mb": 300.0, "load_ms_per_mb": 1.5,
    }  # fmt: skip
    assert set(changed) == {f.name for f in fields(SimParams)}, "a field has no test value"
    for name, value in changed.items():
        one = replace(base, **{name: value})
        assert one != base and _round_trip(one) == one, name
    every = replace(base, **changed)
    assert _round_trip(every) == every


@pytest.mark.parametrize(
    "argv,message",
    [
        (["--sim-target-ms", "-1"], "--sim-target-ms must not be negative"),
        (["--sim-acceptance", "1.5"], "--sim-acceptance must be within 0..1"),
        (["--sim-shift-every", "0"], "--sim-shift-every must be at least 1"),
        (["--sim-fault", "boom:1"], "unknown fault 'boom'"),
    ],
)
def test_bad_sim_options_are_halospec_errors(argv, message):
    import argparse

    from halospec_tui.errors import HalospecError
    from halospec_tui.sim.process import add_sim_args, params_from_args

    p = argparse.ArgumentParser()
    add_sim_args(p)
    with pytest.raises(HalospecError, match=message):
        params_from_args(p.parse_args(argv))


# -- K = 0: no speculation ------------------------------------------------------
@pytest.mark.parametrize("args", ["", "--ctx-size 2048", "--spec-type none"])
def test_load_without_spec_flags_is_k0(sim, args):
    with httpx.Client(base_url=sim.base_url, timeout=30) as c:
        load_k(c, 4)
        r = c.post("/api/v1/load", json={"model_name": MODEL, "llamacpp_args": args})
        assert r.status_code == 200, r.text
        h = c.get("/api/v1/health").json()
        assert h["sim"]["draft_n_max"] == 0
        cmd = h["all_models_loaded"][0]["launch_command"]
        assert cmd == "llama-server -m sim-target.gguf --spec-type none"
        from halospec_tui.actuators import k_from_launch_command

        assert k_from_launch_command(cmd) == 0
        t = chat(c, "plain decoding").json()["timings"]
        # one target pass per token: nothing drafted
        assert t["draft_n"] == 0 and t["draft_n_accepted"] == 0 and t["predicted_n"] == 64
        load_k(c, 3)  # leave the shared server as other tests expect


def test_lemonade_actuator_reaches_k0_and_back(sim):
    from halospec_tui.actuators import LemonadeLoadActuator
    from halospec_tui.client import ChatClient

    with ChatClient(sim.base_url, MODEL) as client:
        act = LemonadeLoadActuator(client, MODEL)
        assert act.llamacpp_args(0) == "--spec-type none"
        assert act.apply(0).confirmed_k == 0
        assert act.apply(5).confirmed_k == 5
        assert act.apply(3).confirmed_k == 3


# -- the HTTP front -------------------------------------------------------------
def test_unknown_post_route_keeps_keep_alive_in_step(sim):
    """The 404's request body must not be read as the next request on the connection."""
    import socket

    body = b'{"x": "' + b"y" * 3000 + b'"}'
    head = (
        f"POST /api/v1/nowhere HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
        f"Content-Length: {len(body)}\r\n\r\n"
    ).encode()
    follow = b"GET /api/v1/health HTTP/1.1\r\nHost: x\r\n\r\n"
    with socket.create_connection((sim.host, sim.port), timeout=10) as s:
        s.sendall(head + body + follow)
        seen = b""
        deadline = time.monotonic() + 10
        while b'"status": "ok"' not in seen and time.monotonic() < deadline:
            chunk = s.recv(65536)
            if not chunk:
                break
            seen += chunk
    statuses = re.findall(rb"HTTP/1\.1 (\d{3}) ", seen)
    assert statuses == [b"404", b"200"], seen[:300]
    assert b'"status": "ok"' in seen


def test_aborted_streams_do_not_block_the_server(no_leftovers):
    """Each aborted stream writes a traceback to stderr; an undrained stderr pipe fills
    (64 KB) and then every handler thread that writes to it blocks for good."""
    proc = SimProcess.start(SimParams(target_ms=0.5, reload_ms=0.0))
    try:
        body = {"model": MODEL, "messages": [{"role": "user", "content": "abort me"}],
                "max_tokens": 400, "stream": True}  # fmt: skip
        for _ in range(150):
            with httpx.Client(base_url=proc.base_url, timeout=10) as c, c.stream(
                "POST", "/api/v1/chat/completions", json=body
            ) as r:
                next(r.iter_lines())  # first chunk, then drop the connection
        # The server still answers a whole request promptly...
        with httpx.Client(base_url=proc.base_url, timeout=10) as c:
            start = time.monotonic()
            assert chat(c, "still there?").status_code == 200
            assert time.monotonic() - start < 5
        # ...and its handler threads end instead of piling up, blocked on stderr.
        p = psutil.Process(proc.pid)
        deadline = time.monotonic() + 20
        while p.num_threads() > 10 and time.monotonic() < deadline:
            time.sleep(0.2)
        assert p.num_threads() <= 10, f"{p.num_threads()} threads still alive"
    finally:
        proc.stop()
