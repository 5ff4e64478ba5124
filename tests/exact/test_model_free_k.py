"""The model controller where a change of K is free: the estimate's fading edge, the
hysteresis and reload bounds of a move, a class's K, the probe's bounds, and the
machine's pace noise.

Expected values are worked out by hand (in the comments) from the rules in the module's
docstring.
"""

from __future__ import annotations

import math

import pytest
from model_steps import T0, run, step

from halospec_tui.controllers import ModelController, Observation
from halospec_tui.controllers.model import expected_tps


def plain(k: int, passes: int, ms_per_pass: float, drafted: int = 0) -> Observation:
    """A step of `passes` passes that accepted nothing, `ms_per_pass` each."""
    ms = passes * ms_per_pass
    return Observation(k, True, int(ms), passes, drafted, 0, ms)


def feed(c: ModelController, *obs: Observation) -> None:
    for o in obs:
        c.observe(o.k, True, o.latency_ms, o)


# -- the acceptance estimate ---------------------------------------------------------------
def test_an_acceptance_faded_to_1e9_of_a_vote_is_no_estimate() -> None:
    # discount 1e-9: one drafting step is a whole vote (weight 1); after one step at K 0
    # (no vote) its weight is 1e-9 exactly, which is no longer an estimate
    c = ModelController(discount=1e-9)
    feed(c, step(4, 0.8))
    assert c.estimates() is not None
    feed(c, Observation(0, True, 240, 40, None, None, 240.0))
    assert c._a_weight == 1e-9
    assert c.estimates() is None


# -- when a move is made --------------------------------------------------------------------
def test_a_gain_exactly_the_hysteresis_is_taken() -> None:
    # a 0 (nothing accepted): every K yields one token a pass, so K 0 is best; from K 1
    # (pass 1.5 ms against 1 ms) the gain is 50%, and a hysteresis of exactly that gain
    # lets the move through
    gain = expected_tps(0.0, 1.0, 0.5, 0) / expected_tps(0.0, 1.0, 0.5, 1) - 1.0
    assert gain == pytest.approx(0.5)
    assert ModelController(hysteresis=gain)._better_k(0.0, 1.0, 0.5, 1) == 0
    assert ModelController(hysteresis=gain + 1e-9)._better_k(0.0, 1.0, 0.5, 1) == 1


def test_a_saving_that_only_equals_the_reload_time_is_no_move() -> None:
    # from K 1 to K 0 above: a request of 64 tokens takes 64 x 1.5 ms, against 64 x 1 ms:
    # 32 ms saved a request, 640 ms over the 20-step horizon; a reload of exactly that
    # does not pay (the saving must exceed it), one just under does
    now, new = expected_tps(0.0, 1.0, 0.5, 1), expected_tps(0.0, 1.0, 0.5, 0)
    saving = 64 * 1000.0 * (1.0 / now - 1.0 / new)
    assert saving == pytest.approx(32.0)
    c = ModelController()
    c._tokens = 64.0
    c._reload_ms = saving * 20
    assert c._better_k(0.0, 1.0, 0.5, 1) == 1
    c._reload_ms = 639.0
    assert c._better_k(0.0, 1.0, 0.5, 1) == 0


def test_a_reload_of_one_ms_already_makes_one_k_for_all_and_measures_k0() -> None:
    # any reload time above 0 puts the controller on the reload rule: two reloads of
    # 1 ms are well within a quarter of 20 steps, so plain decoding is measured first
    c = ModelController()
    assert run(c, 2, 0.8, reload_ms=1) == [4, 0]
    assert c.notes[0] == (
        "model controller: measuring plain decoding (K = 0) once, to know what drafting "
        "gains: K 4 -> 0 (a reload)"
    )


# -- a class's own K ------------------------------------------------------------------------
def test_a_class_k_is_held_by_the_hysteresis_from_its_own_k_not_the_pool_s() -> None:
    # class s climbs from K 1 at a 0.3 towards 0.9's best (K 7) and stops at K 5, within
    # 3% of K 7's speed; open text then pulls the pool's K down to 1. Judged from the
    # pool's K 1, K 7 would be far better; judged from s's own K 5, it still is not
    # worth the move, so s keeps 5.
    assert expected_tps(0.9, T0, 0.2 * T0, 7) / expected_tps(0.9, T0, 0.2 * T0, 5) < 1.03
    c = ModelController()
    run(c, 6, 0.3, "s")
    assert run(c, 10, 0.9, "s")[-1] == 5
    run(c, 10, 0.2, "o")
    assert c.next_k() == 1 and c.next_k("o") == 1
    assert c.next_k("s") == 5


def test_no_probe_up_from_k_max_even_for_a_class_below_it() -> None:
    # class o settles on K 1 (a 0.3); then s, drafted almost perfectly with cheap drafts,
    # takes the pool to K 8 = k_max. At step 24 (an even multiple of 6) the probe goes
    # down (s runs K 7 once); at step 30 (an odd multiple) it would go up, past k_max:
    # no probe at all, so o's K stays 1 rather than 2
    c = ModelController()
    run(c, 3, 0.3, "o")
    ks = run(c, 27, 0.99, "s", t1_ratio=0.01)
    assert c._steps == 30 and ks[-6:] == [7, 8, 8, 8, 8, 8]
    assert c.next_k() == 8 and c.next_k("s") == 8
    assert c.next_k("o") == 1


# -- the machine's pace noise ------------------------------------------------------------------
def test_one_change_of_pace_is_not_yet_a_noise_figure() -> None:
    c = ModelController(k_start=0)
    feed(c, plain(0, 40, 6.0), plain(0, 40, 6.0 * math.exp(0.1)))
    assert c._pace_n == 1 and c.noise() == 0.0


def test_pace_noise_is_the_mean_square_of_the_log_changes_at_first() -> None:
    # pass costs 6, 6 e^0.1, 6 e^0.3: log changes 0.1 and 0.2, mean square
    # (0.01 + 0.04) / 2 = 0.025, a step's SD sqrt(0.025 / 2)
    c = ModelController(k_start=0)
    feed(c, *(plain(0, 40, 6.0 * math.exp(e)) for e in (0.0, 0.1, 0.3)))
    assert c.noise() == pytest.approx(math.sqrt(0.0125), rel=1e-9)


def test_pace_at_a_drafting_k_compares_target_step_costs() -> None:
    # K 4 drafting 4 a pass at 10.8, 10.8 e^0.1, 10.8 ms: the (1 + r 4) of each cancels,
    # log changes +-0.1, so the noise is sqrt(0.01 / 2) as at K 0
    c = ModelController()
    feed(c, *(plain(4, 40, 10.8 * math.exp(e), drafted=160) for e in (0.0, 0.1, 0.0)))
    assert c.noise() == pytest.approx(math.sqrt(0.005), rel=1e-9)


def test_sub_millisecond_passes_count_for_the_pace() -> None:
    # 0.5 ms passes (a fast stub server): the same +-0.1 log changes as at 6 ms
    c = ModelController(k_start=0)
    feed(c, *(plain(0, 40, 0.5 * math.exp(e)) for e in (0.0, 0.1, 0.0)))
    assert c.noise() == pytest.approx(math.sqrt(0.005), rel=1e-9)


def test_a_step_decoded_in_no_time_is_left_out_of_the_pace() -> None:
    # a 0 ms step (a server that reports no decode time for it) next to timed ones:
    # neither the change into it nor out of it is a change of pace
    c = ModelController(k_start=0)
    feed(c, plain(0, 40, 6.0), plain(0, 40, 0.0), plain(0, 40, 6.0), plain(0, 40, 6.6))
    assert c._pace_n == 1
    assert c._pace_var == pytest.approx(math.log(1.1) ** 2, rel=1e-12)
