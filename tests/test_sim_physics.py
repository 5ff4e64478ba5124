"""The embedded server's physics beyond Leviathan's model: acceptance that decays with
draft position, a verification cost quadratic in the drafted tokens, fixed costs per
pass and per drafting pass, and a reload time that grows with the model's size.

The analytic truth (expected_request_ms, expected_speedup) is pinned by hand-worked
numbers and by an independent enumeration of every outcome of a short answer; the
seeded decoder is checked against it; and the model controller's own formulas are
shown to disagree with it (so a controller checked on the embedded server is not
checked against itself).
"""

from __future__ import annotations

import itertools
import time
from dataclasses import replace

import httpx
import pytest

from halospec_tui.controllers.model import acceptance_from, best_k, ratio_from_pair
from halospec_tui.sim.physics import (
    REAL_PAIRS,
    Engine,
    SimParams,
    expected_decode_ms,
    expected_passes,
    expected_request_ms,
    expected_speedup,
    generate,
    pass_cost_ms,
    position_acceptance,
    reload_pause_ms,
)
from halospec_tui.sim.process import SimProcess

# T 2 ms, c 0.25, v 0.1, w 0.05, fixed 0.5 ms per pass, 0.3 ms more when drafting
P = SimParams(target_ms=2.0, draft_ratio=0.25, verify_per_token=0.1, verify_quadratic=0.05,
              pass_overhead_ms=0.5, spec_overhead_ms=0.3, acceptance_decay=0.5)  # fmt: skip


def test_pass_cost_by_hand():
    assert pass_cost_ms(P, 0) == pytest.approx(2.5)  # T + 0.5
    # 1 draft step 0.5, verify 2 (1 + 0.1 + 0.05) = 2.3, fixed 0.5 + 0.3
    assert pass_cost_ms(P, 1) == pytest.approx(3.6)
    # 2 draft steps 1.0, verify 2 (1 + 0.2 + 0.2) = 2.8, fixed 0.8
    assert pass_cost_ms(P, 2) == pytest.approx(4.6)
    # p_min: 3 draft steps paid, 2 drafts verified
    assert pass_cost_ms(P, 2, attempted=3) == pytest.approx(5.1)
    # 1 step paid, its token dropped: nothing verified, still the drafting pass's cost
    assert pass_cost_ms(P, 0, attempted=1) == pytest.approx(3.3)


def test_position_acceptance():
    assert position_acceptance(P, 0.8, 3) == pytest.approx([0.8, 0.4, 0.2])
    assert position_acceptance(SimParams(), 0.8, 3) == [0.8, 0.8, 0.8]


def test_expected_request_ms_by_hand():
    """a 0.8 at position 0, 0.4 at position 1 (decay 0.5).
    1 token: one pass without a draft: 2.5.
    2 tokens, K >= 1: a pass drafting 1 (3.6); rejected (0.2): one more plain pass:
        3.6 + 0.2 * 2.5 = 4.1.
    3 tokens, K 2: a pass drafting 2 (4.6); none accepted (0.2): 2 tokens left (4.1);
        one accepted (0.8 * 0.6 = 0.48): 1 left (2.5); both (0.32): done.
        4.6 + 0.2 * 4.1 + 0.48 * 2.5 = 6.62."""
    assert expected_request_ms(P, 0.8, 2, tokens=1) == pytest.approx(2.5)
    assert expected_request_ms(P, 0.8, 1, tokens=2) == pytest.approx(4.1)
    assert expected_request_ms(P, 0.8, 5, tokens=2) == pytest.approx(4.1)  # capped at 1 draft
    assert expected_request_ms(P, 0.8, 2, tokens=3) == pytest.approx(6.62)
    assert expected_request_ms(P, 0.8, 0, tokens=3) == pytest.approx(7.5)


def enumerate_ms(p: SimParams, a: float, k: int, tokens: int) -> float:
    """The same expectation by listing every sequence of passes (each pass: how many of
    its drafts were accepted) that yields exactly `tokens`, with its probability."""
    acc = [a * p.acceptance_decay**i for i in range(k)]

    def outcomes(left: int) -> list[tuple[float, float]]:  # (probability, cost) of each path
        if left == 0:
            return [(1.0, 0.0)]
        d = min(k, left - 1)
        paths = []
        for j in range(d + 1):
            prob = 1.0
            for i in range(j):
                prob *= acc[i]
            if j < d:
                prob *= 1.0 - acc[j]
            for q, c in outcomes(left - j - 1):
                paths.append((prob * q, pass_cost_ms(p, d) + c))
        return paths

    paths = outcomes(tokens)
    assert sum(q for q, _ in paths) == pytest.approx(1.0)
    return sum(q * c for q, c in paths)


@pytest.mark.parametrize("k,tokens", list(itertools.product([0, 1, 2, 3, 5], [1, 2, 4, 7])))
def test_expected_request_ms_matches_enumeration(k, tokens):
    for a in (0.3, 0.9):
        assert expected_request_ms(P, a, k, tokens) == pytest.approx(enumerate_ms(P, a, k, tokens))


# the new terms switched off: the physics before them
NEUTRAL = SimParams(pass_overhead_ms=0.0, spec_overhead_ms=0.0, load_ms_per_mb=0.0)


def test_neutral_terms_give_the_earlier_physics():
    """decay 1 and no extra costs: a pass costs T (1 + (c + v) d), as before."""
    assert pass_cost_ms(NEUTRAL, 3) == pytest.approx(6.0 * (1 + 0.19 * 3))
    assert expected_request_ms(NEUTRAL, 0.7, 0) == pytest.approx(64 * 6.0)
    # 2 tokens, K 1: one pass drafting 1 (6 (1 + 0.19) = 7.14), then a plain one (6) when
    # the draft is rejected (0.3): 7.14 + 1.8
    assert expected_request_ms(NEUTRAL, 0.7, 1, tokens=2) == pytest.approx(8.94)
    assert reload_pause_ms(NEUTRAL) == NEUTRAL.reload_ms


def test_defaults_are_the_fit():
    """The fitted defaults (physics.FIT): no decay and no quadratic term, 0.35 ms per
    pass, 0.2 ms more per drafting pass, reload 0.8 ms per MB (no size by default)."""
    p = SimParams()
    assert (p.acceptance_decay, p.verify_quadratic, p.pass_overhead_ms, p.spec_overhead_ms,
            p.model_mb, p.load_ms_per_mb) == (1.0, 0.0, 0.35, 0.2, 0.0, 0.8)  # fmt: skip
    assert pass_cost_ms(p, 0) == pytest.approx(6.35)
    assert pass_cost_ms(p, 2) == pytest.approx(6.0 * (1 + 0.19 * 2) + 0.55)
    assert reload_pause_ms(p) == p.reload_ms


def test_real_pair_presets_keep_their_regimes():
    """Each REAL_PAIRS preset, in the physics' own exact expectation over the prompt
    pool (128-token answers, as the fit was measured), shows its pair's regime: no
    speculation fastest for `loses`; a best K of 1..3 that K 8 loses more than 20% to
    for `mid`; tokens/s rising with K to 8 for `large` (measured on the real pairs:
    K 1..8 at 0.66-0.72 of no speculation; best K 1-2 (1.39x), K 8 1.06x; K 8 2.4x)."""
    from halospec_tui.prompts import POOL

    speed = {}
    for name, p in REAL_PAIRS.items():
        ms = [expected_decode_ms(p, k, POOL, 128) for k in range(9)]
        speed[name] = [ms[0] / m for m in ms]
    loses, mid, large = speed["loses"], speed["mid"], speed["large"]
    assert max(loses[1:]) < 0.75
    best = max(range(9), key=lambda k: mid[k])
    assert 1 <= best <= 3 and mid[best] > 1.25 and mid[8] < mid[best] / 1.2
    assert all(large[k + 1] > large[k] for k in range(8)) and large[8] > 2.2


def test_expected_passes_by_hand():
    # 2 tokens, K 1: 1 pass, plus one more when the draft is rejected
    assert expected_passes(0.7, 1, 2) == pytest.approx(1.3)
    # 3 tokens, K 2: 1 + 0.3 * E(2 left) + 0.7 * 0.3 * 1 = 1 + 0.39 + 0.21
    assert expected_passes(0.7, 2, 3) == pytest.approx(1.6)


def test_expected_speedup_by_hand():
    # tokens per pass 1 + 0.8 + 0.8 * 0.4 = 2.12; cost 1 + 0.15 * 2 + 0.02 * 4 + 0.1 = 1.48
    assert expected_speedup(0.8, 0.1, 2, 0.05, decay=0.5, w=0.02, spec_overhead=0.1) == (
        pytest.approx(2.12 / 1.48)
    )
    # a pass overhead of 0.2 target passes is paid by plain decoding too: x 1.2 / 1.68
    assert expected_speedup(
        0.8, 0.1, 2, 0.05, decay=0.5, w=0.02, spec_overhead=0.1, pass_overhead=0.2
    ) == pytest.approx(2.12 * 1.2 / 1.68)
    assert expected_speedup(0.8, 0.1, 0, spec_overhead=0.5) == 1.0
    assert expected_speedup(0.72, 0.15, 3, 0.04) == pytest.approx(
        (1 - 0.72**4) / (1 - 0.72) / (1 + 0.19 * 3)
    )


def test_decoder_follows_the_decay():
    """Seeded draws: at K 2 with a 0.9 and decay 0.5 (a_0 0.9, a_1 0.45), full passes
    accept 0.9 + 0.9 * 0.45 = 1.305 drafts on average; i.i.d. at 0.9 it would be 1.71."""
    eng = Engine(SimParams(target_ms=0.01, acceptance=0.9, acceptance_spread=0.0,
                           acceptance_decay=0.5))  # fmt: skip
    accepted = passes = 0
    for i in range(60):
        g = generate(eng, f"decay {i}", 63, 2, i)  # 63 tokens: every pass but a capped last
        assert g.tokens == 63 == g.accepted + g.passes
        accepted += g.accepted
        passes += g.passes
    per_pass = accepted / passes
    # about 2,300 passes: the standard error of the mean is about 0.014
    assert 1.26 < per_pass < 1.35, per_pass


def test_decoder_does_the_extra_work():
    """The fixed costs are real compute: with 2 ms of overhead per drafting pass a
    request takes at least half its modelled cost (load only adds to it)."""
    p = SimParams(target_ms=0.2, acceptance=0.5, acceptance_spread=0.0, spec_overhead_ms=2.0,
                  pass_overhead_ms=1.0, verify_quadratic=0.5)  # fmt: skip
    eng = Engine(p)
    g = generate(eng, "overheads", 32, 4, 0)
    floor = g.passes * (1.0 + 0.2) + (g.passes - 1) * 2.0  # every pass but the last drafts
    assert g.predicted_ms >= 0.5 * floor, (g.predicted_ms, floor)


def test_the_model_controllers_assumptions_do_not_hold():
    """The model controller assumes one acceptance a for every draft position and a
    pass cost t0 (1 + r d). With decay, the a it solves for from accepted drafts per
    pass falls as K grows, and the K it then picks is not the physics' best K; with a
    quadratic verification and a drafting overhead, the line it fits through two
    passes' costs misses the others."""
    p = replace(
        NEUTRAL, target_ms=1.0, draft_ratio=0.05, verify_per_token=0.0, acceptance_decay=0.85
    )
    seen = []
    for k in (1, 4, 8):
        reach, accepted = 1.0, 0.0
        for x in position_acceptance(p, 0.9, k):
            reach *= x
            accepted += reach
        seen.append(acceptance_from(accepted, k))
    assert seen[0] == pytest.approx(0.9) and seen[0] > seen[1] > seen[2] and seen[2] < 0.8
    truth = min(range(9), key=lambda k: expected_request_ms(p, 0.9, k))
    assert truth == 4
    # from K 1's figures (a = 0.9) and the true per-draft cost, the controller drafts 8
    assert best_k(seen[0], 1.0, 0.05, 8) == 8

    # cost: T 1, c 0.05, w 0.02, 0.5 ms per drafting pass:
    # d 0: 1; d 1: 0.05 + 1.02 + 0.5 = 1.57; d 4: 0.2 + 1.32 + 0.5 = 2.02;
    # d 8: 0.4 + 2.28 + 0.5 = 3.18
    q = replace(p, acceptance_decay=1.0, verify_quadratic=0.02, spec_overhead_ms=0.5)
    costs = [pass_cost_ms(q, d) for d in (0, 1, 4, 8)]
    assert costs == pytest.approx([1.0, 1.57, 2.02, 3.18])
    r = ratio_from_pair(0, costs[0], 4, costs[2])  # the line through d 0 and d 4
    assert r == pytest.approx(0.255)
    assert costs[0] * (1 + r) == pytest.approx(1.255)  # below the true 1.57
    assert costs[0] * (1 + 8 * r) == pytest.approx(3.04)  # below the true 3.18


def test_reload_pause_grows_with_model_size():
    p = SimParams(reload_ms=20.0, model_mb=300.0, load_ms_per_mb=1.5)
    assert reload_pause_ms(p) == pytest.approx(470.0)
    assert reload_pause_ms(replace(p, model_mb=0.0)) == 20.0


def test_sim_server_reload_takes_the_size_based_pause(no_leftovers):
    """A /load that changes K pauses reload_ms + model_mb * load_ms_per_mb (a sleep:
    the wall time is at least that much, whatever the load)."""
    sim = SimProcess.start(SimParams(target_ms=0.5, reload_ms=10.0, model_mb=200.0,
                                     load_ms_per_mb=2.0))  # fmt: skip
    try:
        with httpx.Client(base_url=sim.base_url, timeout=30) as c:
            args = "--spec-type draft-simple --spec-draft-n-max 5"
            t = time.perf_counter()
            r = c.post(
                "/api/v1/load", json={"model_name": "Qwen3-0.6B-GGUF", "llamacpp_args": args}
            )
            took_ms = (time.perf_counter() - t) * 1000.0
            assert r.status_code == 200, r.text
            assert took_ms >= 410.0, took_ms
            h = c.get("/api/v1/health").json()["sim"]
            assert (h["model_mb"], h["load_ms_per_mb"], h["draft_n_max"]) == (200.0, 2.0, 5)
    finally:
        sim.stop()
