"""The tiny model pairs of each regime (tiny_gguf): how they are made and cached, and
what speculation does on them on the real llama-server.

The regime tests run one llama-server per K at once and send the same prompts to each
in interleaved rounds (pair_timing.interleave), then compare tokens per CPU second of
the server: a single-threaded server's CPU time is its work, which a busy machine
inflates far less than wall time, and pairing by round cancels drift. The margins
sit well below what these settings measured on a busy 2-core machine (below), so they
hold under load; a failure message gives every figure and the load average. The
pairs come from the model cache (the `model_pair` fixture): about 2 s each to write
the first time, 286 MB each for mid and large.
"""

from __future__ import annotations

import filecmp
import os
import threading
from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace
from pathlib import Path

import pytest
from helpers import LLAMA_SERVER, needs_llama

from halospec_tui.pair_timing import (
    Rounds,
    Sample,
    SpecCounters,
    interleave,
    parse_spec_counters,
    servers,
)
from halospec_tui.prompts import POOL
from halospec_tui.tiny_gguf import REGIMES, PairSpec, cached_pair, make_models, write_pair

# The truth tables compare CPU time per token across K; memory burners elsewhere in the
# suite would tax the two-model path more than the plain one, so they share a worker.
pytestmark = pytest.mark.xdist_group("memory_traffic")

BINARY = LLAMA_SERVER
needs_binary = needs_llama[1]
SMALL = PairSpec(n_embd=32, n_head=2, n_ff=64, draft_layers=1, target_layers=2)


# -- making and caching pairs ----------------------------------------------------------
def test_pairs_are_deterministic_by_seed(tmp_path):
    a = write_pair(tmp_path / "a", SMALL)
    b = write_pair(tmp_path / "b", SMALL)
    c = write_pair(tmp_path / "c", replace(SMALL, seed=1))
    for x, y, z in zip(a, b, c, strict=True):
        assert filecmp.cmp(x, y, shallow=False)
        assert not filecmp.cmp(x, z, shallow=False)


def test_the_default_regime_is_the_suites_pair(tmp_path):
    """make_models(DIR) writes the `loses` pair, as before regimes existed."""
    t, d = make_models(tmp_path / "default")
    t2, d2 = write_pair(tmp_path / "loses", REGIMES["loses"])
    assert filecmp.cmp(t, t2, shallow=False) and filecmp.cmp(d, d2, shallow=False)
    with pytest.raises(ValueError, match="unknown regime 'huge'"):
        make_models(tmp_path, regime="huge")


def test_cache_key_follows_every_parameter():
    keys = {SMALL.key()}
    for change in ({"n_embd": 48}, {"n_head": 4}, {"n_ff": 96}, {"draft_layers": 2},
                   {"target_layers": 3}, {"scale": 0.05}, {"wtype": "f16"}, {"seed": 2}):  # fmt: skip
        keys.add(replace(SMALL, **change).key())
    assert len(keys) == 9
    assert replace(SMALL).key() == SMALL.key()


def test_cached_pair_is_written_once_and_shared(tmp_path):
    """Three threads ask at once: one writes (into a temporary folder, renamed when
    complete), the others wait and get the same files; a later call reuses them."""
    with ThreadPoolExecutor(3) as pool:
        got = list(pool.map(lambda _: cached_pair("loses", root=tmp_path), range(3)))
    assert got[0] == got[1] == got[2]
    target, draft = got[0]
    folder = target.parent
    assert folder.name == f"loses-{REGIMES['loses'].key()}" and draft.parent == folder
    assert sorted(p.name for p in tmp_path.iterdir() if p.is_dir()) == [folder.name]
    assert sorted(p.name for p in folder.iterdir()) == ["draft.gguf", "spec.json", "target.gguf"]
    made = make_models(tmp_path / "fresh")
    assert filecmp.cmp(target, made[0], shallow=False) and filecmp.cmp(
        draft, made[1], shallow=False
    )
    stamp = target.stat().st_mtime_ns
    assert cached_pair("loses", root=tmp_path) == (target, draft)
    assert target.stat().st_mtime_ns == stamp


def test_cached_pair_waits_for_the_lock_a_bounded_time(tmp_path, monkeypatch):
    import fcntl

    import halospec_tui.tiny_gguf as tg

    monkeypatch.setattr(tg, "LOCK_WAIT_S", 0.3)
    lock = tmp_path / f".loses-{REGIMES['loses'].key()}.lock"
    with open(lock, "a+b") as fh:
        fcntl.flock(fh, fcntl.LOCK_EX)
        done = threading.Event()
        errors: list[BaseException] = []

        def ask() -> None:
            try:
                cached_pair("loses", root=tmp_path)
            except BaseException as e:  # noqa: BLE001 - handed to the test thread
                errors.append(e)
            done.set()

        threading.Thread(target=ask, daemon=True).start()
        assert done.wait(10)
    assert len(errors) == 1 and isinstance(errors[0], TimeoutError)
    assert not (tmp_path / f"loses-{REGIMES['loses'].key()}").exists()


@pytest.mark.parametrize("wtype,code", [("f32", 0), ("f16", 1), ("q8_0", 8)])
def test_weight_types(tmp_path, wtype, code):
    """2-D weights in the pair's type (GGML type codes: F32 0, F16 1, Q8_0 8); token
    embeddings and norms stay F32."""
    import gguf

    target, _ = write_pair(tmp_path, replace(SMALL, wtype=wtype))
    types = {t.name: int(t.tensor_type) for t in gguf.GGUFReader(str(target)).tensors}
    assert types["token_embd.weight"] == 0 and types["output_norm.weight"] == 0
    assert types["blk.0.attn_norm.weight"] == 0 and types["blk.1.ffn_norm.weight"] == 0
    assert types["output.weight"] == code and types["blk.1.ffn_down.weight"] == code
    with pytest.raises(ValueError, match="weight type 'q4'"):
        PairSpec(wtype="q4")


# -- what a server reports -----------------------------------------------------------
METRICS = """# TYPE llamacpp:spec_decode_num_draft_tokens_total counter
llamacpp:spec_decode_num_draft_tokens_total 277
llamacpp:spec_decode_num_accepted_tokens_total 244
llamacpp:spec_decode_num_drafts_total 71
llamacpp:spec_decode_num_accepted_tokens_per_pos_total{position="0"} 69
llamacpp:spec_decode_num_accepted_tokens_per_pos_total{position="2"} 58
llamacpp:spec_decode_num_accepted_tokens_per_pos_total{position="1"} 64
llamacpp:tokens_predicted_total 320
"""


def test_spec_counters_parse_and_subtract():
    c = parse_spec_counters(METRICS)
    assert c == SpecCounters(
        drafts=71, draft_tokens=277, accepted=244, accepted_per_pos=(69, 64, 58)
    )
    earlier = SpecCounters(drafts=1, draft_tokens=4, accepted=3, accepted_per_pos=(1, 1))
    assert c.minus(earlier) == SpecCounters(70, 273, 241, (68, 63, 58))
    assert parse_spec_counters("llamacpp:requests_processing 0\n") == SpecCounters(0, 0, 0, ())


def test_sample_rates():
    s = Sample(k=4, prompt_n=50, prompt_ms=100.0, predicted_n=64, predicted_ms=800.0,
               drafted=60, accepted=40, wall_ms=1000.0, cpu_ms=640.0)  # fmt: skip
    assert (s.decode_tps, s.e2e_tps, s.cpu_tps) == (80.0, 64.0, 100.0)


# -- the regimes on the real server ----------------------------------------------------
def cpu_tps(samples: list[Sample]) -> float:
    """Tokens per CPU second of the server over all the samples (prompts included)."""
    return 1000.0 * sum(s.predicted_n for s in samples) / sum(s.cpu_ms for s in samples)


def measure(
    pair: tuple[Path, Path], ks: list[int], rounds: int, max_tokens: int, chars: int, warmup: int
) -> Rounds:
    """Interleaved rounds on one server per K; prompts cut to `chars` bytes (tokens), so
    that decoding, not the prompt, makes up most of each request."""
    assert BINARY is not None
    prompts = [p[:chars] for p in POOL[:rounds]]
    with servers(BINARY, *pair, ks) as pool:
        return interleave(pool, prompts, seed=1, warmup=warmup, max_tokens=max_tokens)


def figures(got: Rounds) -> str:
    """Everything measured, for a failure message."""
    rows = [f"load {os.getloadavg()}"]
    for k, s in got.samples.items():
        dec = 1000.0 * sum(x.predicted_n for x in s) / sum(x.predicted_ms for x in s)
        acc = sum(x.accepted for x in s) / max(sum(x.drafted for x in s), 1)
        rows.append(f"K {k}: {cpu_tps(s):.1f} tok/CPU-s, decode {dec:.1f} tok/s, accept {acc:.2f}")
    return "; ".join(rows)


# Measured with these very settings (2026-12-06, load 8-11 on 2 cores, a burner and
# other test suites running): loses K0 / K4 1.45-1.5; mid K3 / K0 1.30-1.37,
# K3 / K8 1.15-1.19; large K8 / K0 1.98-2.04, K8 / K2 1.32-1.37 (tokens per CPU second).


@pytest.mark.llama
@needs_binary
def test_loses_no_speculation_is_fastest(model_pair, no_leftovers):
    """Width 64: drafting costs more than it saves."""
    got = measure(model_pair("loses"), [0, 4], rounds=8, max_tokens=64, chars=200, warmup=1)
    tps = {k: cpu_tps(s) for k, s in got.samples.items()}
    assert tps[0] > 1.2 * tps[4], figures(got)
    # drafting did happen, and was mostly accepted: it loses on cost, not on acceptance
    assert got.counters[0].draft_tokens == 0 and got.counters[4].draft_tokens > 0
    assert got.counters[4].accepted > 0.7 * got.counters[4].draft_tokens, figures(got)


@pytest.mark.llama
@needs_binary
def test_mid_a_middle_k_beats_no_speculation_and_k8(model_pair, no_leftovers):
    """Width 768, scale 0.12: acceptance about 0.76 per token, so drafting pays, but
    K 8 drafts mostly in vain. (llama-server's own warm-up run at start touches every
    weight, so no warm-up request is needed.)"""
    got = measure(model_pair("mid"), [0, 3, 8], rounds=4, max_tokens=32, chars=24, warmup=0)
    tps = {k: cpu_tps(s) for k, s in got.samples.items()}
    assert tps[3] > 1.15 * tps[0] and tps[3] > 1.06 * tps[8], figures(got)
    c = got.counters[8]
    assert c.accepted < 0.6 * c.draft_tokens, figures(got)


@pytest.mark.llama
@needs_binary
def test_large_k8_beats_short_drafts(model_pair, no_leftovers):
    """Width 768, scale 0.01: drafts almost always accepted, so K 8 pays best."""
    got = measure(model_pair("large"), [0, 2, 8], rounds=4, max_tokens=32, chars=24, warmup=0)
    tps = {k: cpu_tps(s) for k, s in got.samples.items()}
    assert tps[8] > 1.5 * tps[0] and tps[8] > 1.15 * tps[2], figures(got)
    c = got.counters[8]
    assert c.accepted > 0.85 * c.draft_tokens, figures(got)
