"""The model controller where a change of K costs a reload: the cost ratio across
reloads and from visits, the last passes' t0, measured over modelled speed per K, the
scores, when a move pays, how long a new K is kept, and what the monitor is shown.

Expected values are worked out by hand (in the comments) from the rules in the module's
docstring and the methods' docstrings.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import replace

import pytest

from halospec_tui.controllers import ModelController, Observation
from halospec_tui.controllers.model import Seen


def at(k: int, x: float, y: float, passes: int = 40, **kw: object) -> Observation:
    """A step at K drafting x a pass, y ms a pass, nothing accepted (tokens = passes)."""
    ms = y * passes
    return replace(Observation(k, True, int(ms), passes, round(x * passes), 0, ms), **kw)  # type: ignore[arg-type]


def feed(c: ModelController, *obs: Observation) -> None:
    for o in obs:
        c.observe(o.k, True, o.latency_ms, o)


def transits(*obs: Observation) -> float | None:
    c = ModelController()
    feed(c, *obs)
    return c._ratio_with_reloads()


# -- the cost ratio across reloads --------------------------------------------------------
def test_a_change_of_k_gives_the_ratio_of_its_two_steps() -> None:
    # K 1 drafting 1 a pass at 7.2 ms, then K 2 drafting 2 at 8.4 ms: t0 6, r 0.2. No
    # K 0 was visited, so without the pair there would be no ratio at all
    assert transits(at(1, 1, 7.2), at(2, 2, 8.4)) == pytest.approx(0.2)
    assert transits(at(1, 1, 7.2), at(1, 1, 8.4)) is None


def test_the_ratio_s_range_across_a_reload_is_minus_half_to_eight() -> None:
    # from (x 0, 2 ms) to (x 1, 1 ms): r = -0.5 exactly, believed and read as 0
    assert transits(at(1, 0, 2.0), at(2, 1, 1.0)) == 0.0
    # from (0, 4) to (1, 1): r = -0.75, not believed
    assert transits(at(1, 0, 4.0), at(2, 1, 1.0)) is None
    # from (0, 1) to (1, 9): r = 8 exactly, believed; to (1, 11): r = 10, not believed
    assert transits(at(1, 0, 1.0), at(2, 1, 9.0)) == 8.0
    assert transits(at(1, 0, 1.0), at(2, 1, 11.0)) is None


def test_a_step_decoded_in_no_time_gives_no_ratio_across_a_reload() -> None:
    assert transits(at(1, 0, 0.0), at(2, 1, 6.0)) is None


def test_two_steps_at_one_k_are_no_reload_even_drafting_fewer_than_k() -> None:
    # K 5 whose draft stopped early (4 a pass) twice: the same K, so no ratio (as a pair
    # these would give r -1/4, believed and read as 0)
    assert transits(at(5, 4, 10.8), at(5, 4, 12.0)) is None


def test_the_ratio_across_reloads_is_the_median_of_the_last_eight() -> None:
    # nine changes of K: one with r 0.1, then four with 0.3 and four with 0.5 (a change
    # back to (0, 1 ms) gives the same r as the change out of it). The last eight's
    # median is (0.3 + 0.5) / 2; all nine's would be 0.3
    seq = [at(1, 0, 1.0), at(2, 1, 1.1), at(2, 1, 1.3)]
    seq += [at(1, 0, 1.0), at(2, 1, 1.3)] * 2 + [at(2, 1, 1.5)]
    seq += [at(1, 0, 1.0), at(2, 1, 1.5)] * 2
    assert transits(*seq) == pytest.approx(0.4)


# -- the cost ratio from visits --------------------------------------------------------------
def visits(seen: dict[int, Seen]) -> float | None:
    c = ModelController()
    c._seen = seen
    return c._ratio_from_visits()


def seen(x: float, y: float, weight: float = 2.0) -> Seen:
    """A K visited with mean drafted x and mean ms y a pass over `weight` faded steps."""
    return Seen(weight=weight, x_sum=x * weight, y_sum=y * weight)


def test_ratio_from_visits_is_a_least_squares_line_through_k0() -> None:
    # K 0 at 6 ms. K 1: 1 drafted at 7.2 ms (+20%); K 2: 0.5 at 6.9 ms (+15%); K 3
    # drafting 0.4 (< 0.5, left out); K 0 itself drafting 1 (a server that drafts at
    # K 0: left out). r = (0.2 x 1 + 0.15 x 0.5) / (1 + 0.25) = 0.22
    s = {0: seen(1.0, 6.0), 1: seen(1.0, 7.2), 2: seen(0.5, 6.9), 3: seen(0.4, 60.0)}
    assert visits(s) == pytest.approx(0.22)


def test_ratio_from_visits_needs_k0_and_a_k_that_drafted() -> None:
    assert visits({1: seen(1.0, 7.2)}) is None
    assert visits({0: seen(0.0, 6.0), 1: seen(0.4, 7.2)}) is None
    # one K drafting 1: r = 0.2 / 1, a denominator of exactly 1
    assert visits({0: seen(0.0, 6.0), 1: seen(1.0, 7.2)}) == pytest.approx(0.2)
    # K 0 at 0.5 ms: sub-millisecond passes count (+20%: 0.2)
    assert visits({0: seen(0.0, 0.5), 1: seen(1.0, 0.6)}) == pytest.approx(0.2)
    # K 0 decoded in no time: no ratio
    assert visits({0: seen(0.0, 0.0), 1: seen(1.0, 0.6)}) is None


# -- the model with reloads ------------------------------------------------------------------
def test_with_k0_measured_t0_comes_from_the_last_four_passes() -> None:
    # K 4 (4 drafted, 10.8 ms) then K 0 (6 ms): r 0.2 across the reload. Then K 0 at
    # 6, 6 and 12 ms: t0 is the mean of the last four target-step costs, 6 6 6 12: 7.5
    c = ModelController()
    feed(c, at(4, 4, 10.8), at(0, 0, 6.0), at(0, 0, 6.0), at(0, 0, 6.0), at(0, 0, 12.0))
    assert c._model() == pytest.approx((0.0, 7.5, 1.5))


def test_before_k0_is_measured_the_model_is_the_cost_fit_s() -> None:
    # K 1 (1 drafted, 9 ms) then K 2 (2, 12 ms): r 0.5 across the reload, but K 0 has not
    # been measured: the cost fit's ratio stands (its pairs 0.5 and the prior 0.2 twice:
    # median 0.2)
    c = ModelController()
    feed(c, at(1, 1, 9.0), at(2, 2, 12.0))
    assert c._ratio_with_reloads() == pytest.approx(0.5)
    est = c.estimates()
    assert est is not None and c._model() == est
    assert est[2] / est[1] == pytest.approx(0.2)


def test_the_monitor_shows_the_cost_fit_where_k_changes_freely_and_the_reload_model_else() -> None:
    # K 4 (4 drafted, 18 ms: r 0.5) then K 0 (6 ms). The cost fit: ratio 0.2 (median of
    # 0.5, 0.2, 0.2), t0 the faded mean (0.7 x 40 x 18 / 1.8 + 40 x 6) / (0.7 x 40 + 40)
    # = 520 / 68. The reload model: r 0.5 across the reload, t0 the mean of 18 / 3 and 6.
    free = ModelController()
    feed(free, at(4, 4, 18.0), at(0, 0, 6.0))
    v = free.view()
    t0 = 520 / 68
    assert v is not None and (v.acceptance, v.pass_ms, v.draft_ms) == pytest.approx(
        (0.0, t0, 0.2 * t0))  # fmt: skip
    assert [k for k, _ in v.expected_tps] == list(range(9))
    assert [tps for _, tps in v.expected_tps] == pytest.approx(
        [1000.0 / (t0 + 0.2 * t0 * k) for k in range(9)])  # fmt: skip
    reloads = ModelController()
    feed(reloads, at(4, 4, 18.0), at(0, 0, 6.0, reload_ms=1))
    v = reloads.view()
    assert v is not None and (v.acceptance, v.pass_ms, v.draft_ms) == pytest.approx(
        (0.0, 6.0, 3.0))  # fmt: skip


# -- measured over modelled speed ----------------------------------------------------------
def test_a_k_s_measured_speed_over_the_model_s_at_the_time() -> None:
    # two K 4 steps accepting nothing, 10.8 then 21.6 ms a pass (the machine slowed 2x).
    # First: the model is fitted on this very step, measured / modelled = 1. Second: the
    # cost fit's t0 is (0.7 x 40 x 6 + 40 x 12) / (0.7 x 40 + 40) = 648 / 68, so the
    # model says 1000 / (1.8 t0) tokens/s where 1000 / 21.6 were measured: t0 / 12.
    # Faded by 0.7 and shrunk towards 1 by two steps' worth:
    c = ModelController()
    feed(c, at(4, 4, 10.8), at(4, 4, 21.6))
    s = c._seen[4]
    second = 648 / 68 / 12
    assert (s.rho_weight, s.last) == pytest.approx((1.7, 2))
    assert s.rho == pytest.approx((0.7 + second + 2.0) / (1.7 + 2.0))


def test_a_step_with_no_decode_time_says_nothing_of_its_k_s_speed() -> None:
    c = ModelController()
    feed(c, at(4, 4, 10.8), at(4, 4, 0.0))
    assert c._seen[4].rho_weight == 1.0 and c._seen[4].weight == pytest.approx(1.7)


def test_a_step_decoded_within_a_millisecond_still_measures_its_k() -> None:
    # 40 passes of 0.02 ms: 0.8 ms of decoding for 40 tokens (a fast stub server)
    c = ModelController()
    feed(c, at(4, 4, 10.8), at(4, 4, 0.02))
    assert c._seen[4].rho_weight == pytest.approx(1.7)


def test_a_very_slow_step_still_measures_its_k() -> None:
    # 1 token in 1000 ms: 1 token/s, still a measurement
    c = ModelController()
    feed(c, at(4, 4, 10.8), Observation(4, True, 1000, 1, 4, 0, 1000.0))
    assert c._seen[4].rho_weight == pytest.approx(1.7)


def test_each_k_remembers_the_step_it_was_last_measured_at() -> None:
    c = ModelController()
    feed(c, at(0, 0, 6.0), at(4, 4, 10.8), at(4, 4, 10.8))
    assert (c._seen[0].last, c._seen[4].last) == (1, 3)


# -- the scores per K ---------------------------------------------------------------------
def rho_seen(rho_sum: float, rho_weight: float, last: int) -> Seen:
    return Seen(weight=1.0, rho_sum=rho_sum, rho_weight=rho_weight, last=last)


def scores_at(current: int) -> dict[int, float]:
    # a 0 and a free draft: the model says 100 tokens/s at every K (one token a 10 ms
    # pass). At step 100 with horizon 20 (fresh: measured within 60 steps):
    #   K 0: visited now, but never against a model (rho weight 0): not fresh;
    #   K 1: rho (0 + 2) / (2 + 2) = 0.5, now; K 2: rho (4 + 2) / (1 + 2) = 2, 60 steps
    #   ago (fresh); K 3: rho (4 + 2) / (2 + 2) = 1.5, 61 steps ago (stale).
    c = ModelController(k_max=3, horizon=20)
    c._steps, c._k = 100, current
    c._seen = {0: rho_seen(0.0, 0.0, 100), 1: rho_seen(0.0, 2.0, 100),
               2: rho_seen(4.0, 1.0, 40), 3: rho_seen(4.0, 2.0, 39)}  # fmt: skip
    return c._scores(0.0, 10.0, 0.0)


def test_a_k_not_fresh_is_scored_with_the_current_k_s_factor() -> None:
    # at K 1 (factor 0.5): K 0 and K 3 take 0.5, K 2 its own 2
    assert scores_at(1) == pytest.approx({0: 50.0, 1: 50.0, 2: 200.0, 3: 50.0})


def test_without_a_fresh_factor_for_the_current_k_the_model_stands() -> None:
    # at K 3 (stale): K 0 and K 3 take the model's own figure
    assert scores_at(3) == pytest.approx({0: 100.0, 1: 50.0, 2: 200.0, 3: 100.0})


# -- the reload rule on given scores ---------------------------------------------------------
Decider = Callable[..., ModelController]


@pytest.fixture
def deciding(monkeypatch: pytest.MonkeyPatch) -> Decider:
    """A controller on the reload rule, K 0 already measured, deciding on given scores:
    64-token requests, 20 steps ahead, reloads of 500 ms unless said."""

    def make(scores: dict[int, float], k: int = 0, reload_ms: float = 500.0,
             **kw: float) -> ModelController:  # fmt: skip
        c = ModelController(k_start=k, **kw)  # type: ignore[arg-type]  # ints and floats
        c._reload_ms, c._tokens, c._seen[0] = reload_ms, 64.0, Seen()
        monkeypatch.setattr(c, "_model", lambda: (0.5, 6.0, 1.2))
        monkeypatch.setattr(c, "_scores", lambda a, t0, t1: scores)
        return c

    return make


def test_a_tie_in_scores_moves_to_the_smaller_k(deciding: Decider) -> None:
    c = deciding({0: 100.0, 1: 200.0, 2: 200.0})
    c._decide_with_reloads()
    assert c.notes == ["model controller: K 1 expected 100.0% faster than K 0: K 0 -> 1 (a reload)"]


def test_a_gain_exactly_the_hysteresis_moves_and_is_said_when_held(deciding: Decider) -> None:
    # 80 over 64 tokens/s: 25% exactly. 64 x 1000 x (1/64 - 1/80) = 200 ms a request,
    # 4000 ms over 20 steps: repays 500 ms, not 5000
    c = deciding({0: 64.0, 1: 80.0}, hysteresis=0.25)
    c._decide_with_reloads()
    assert c._k == 1
    c = deciding({0: 64.0, 1: 80.0}, hysteresis=0.25, reload_ms=5000.0)
    c._decide_with_reloads()
    assert c._k == 0 and c.notes == [
        "model controller: switching does not pay here: reload 5000 ms, expected gain "
        "25.0% (K 1 over K 0); holding K 0"
    ]


def test_a_saving_equal_to_the_reload_is_no_move(deciding: Decider) -> None:
    # 128 over 64 tokens/s: 64 x 1000 x (1/64 - 1/128) = 500 ms a request, 10000 ms over
    # 20 steps: a reload of exactly 10000 ms is not repaid, one of 9999 ms is
    c = deciding({0: 64.0, 1: 128.0}, reload_ms=10000.0)
    c._decide_with_reloads()
    assert c._k == 0 and c._held.startswith("switching does not pay here: reload 10000 ms")
    c = deciding({0: 64.0, 1: 128.0}, reload_ms=9999.0)
    c._decide_with_reloads()
    assert c._k == 1


def test_a_tiny_score_is_still_a_score_and_a_zero_one_no_division(deciding: Decider) -> None:
    c = deciding({0: 0.5, 1: 1.0})  # 64 x 1000 x (2 - 1) ms saved a request
    c._decide_with_reloads()
    assert c._k == 1
    c = deciding({0: 0.0, 1: 1.0})  # K 0 scored 0 (figures overflowed): no move, no note
    c._decide_with_reloads()
    assert (c._k, c._held, c.notes) == (0, "", [])


@pytest.mark.parametrize(
    ("hysteresis", "noise", "held"),
    [
        # gain 25% exactly the noise: not within it, so the reload is what does not pay
        (0.03, 0.25, "switching does not pay here: reload 5000 ms, expected gain 25.0% "
                     "(K 1 over K 0)"),
        # gain 25% exactly the hysteresis, under a noise of 50%: within the noise
        (0.25, 0.5, "K 1 expected 25.0% faster than K 0, within the machine's "
                    "step-to-step noise (50.0%)"),
    ],
)  # fmt: skip
def test_the_reason_for_holding_at_the_edges_of_the_noise(
    deciding: Decider, hysteresis: float, noise: float, held: str
) -> None:
    c = deciding({0: 64.0, 1: 80.0}, hysteresis=hysteresis, reload_ms=5000.0)
    c._pace_var, c._pace_n = 2 * noise**2, 2  # a step's SD of exactly `noise`
    assert c.noise() == noise
    c._decide_with_reloads()
    assert c._k == 0 and c._held == held


def test_the_held_reason_clears_once_the_current_k_is_best(deciding: Decider) -> None:
    scores = {0: 64.0, 1: 128.0}
    c = deciding(scores, reload_ms=20000.0)
    c._decide_with_reloads()
    assert c._held.startswith("switching does not pay")
    scores[0] = 256.0
    c._decide_with_reloads()
    assert c._k == 0 and c._held == ""


@pytest.mark.parametrize(("explore_steps", "decides_at"), [(None, 2), (3, 3)])
def test_a_new_k_is_kept_for_explore_steps_before_the_next_decision(
    deciding: Decider, explore_steps: int | None, decides_at: int
) -> None:
    # the first decision moves to K 1; then K 2 scores best, but the decisions in the
    # following explore_steps - 1 steps are skipped: the move to K 2 comes at the
    # explore_steps-th (2 by default)
    scores = {0: 64.0, 1: 128.0, 2: 64.0}
    kw = {} if explore_steps is None else {"explore_steps": explore_steps}
    c = deciding(scores, **kw)
    c._decide_with_reloads()
    assert c._k == 1 and c._held == ""
    scores[2] = 256.0
    ks = []
    for _ in range(4):
        c._decide_with_reloads()
        ks.append(c._k)
    assert ks == [1] * (decides_at - 1) + [2] * (5 - decides_at)


# -- when plain decoding is measured: a request's whole time against two reloads ----------------
def test_a_request_s_time_is_the_larger_of_its_latency_and_recent_decode_time() -> None:
    # two reloads of 500 ms against a quarter of 8 steps of a request's time. 1 s latency
    # with 100 ms of decoding: 1000 ms is 2000 ms a quarter, K 0 measured; with 100 ms
    # latency: 200 ms, not
    c = ModelController()
    feed(c, at(4, 4, 2.5, latency_ms=1000, reload_ms=500, steps_left=8))
    assert c.next_k() == 0
    c = ModelController()
    feed(c, at(4, 4, 2.5, reload_ms=500, steps_left=8))
    assert c.next_k() == 4


def test_recent_decode_time_is_a_short_memory_mean() -> None:
    # latency 1 ms each (a client that times only the first byte, say). First step:
    # 600 ms of decoding with 1 step left: a quarter of 600 ms < 1000. Second: 300 ms of
    # decoding, recent 0.7 x 600 + 0.3 x 300 = 510 ms, 8 steps left: 1020 >= 1000
    c = ModelController()
    feed(c, at(4, 4, 15.0, latency_ms=1, reload_ms=500, steps_left=1))
    assert c.next_k() == 4 and c.notes[-1] == (
        "model controller: plain decoding not measured: two reloads (1000 ms) exceed a "
        "quarter of the 1 steps left; holding K 4")  # fmt: skip
    feed(c, at(4, 4, 7.5, latency_ms=1, steps_left=8))
    assert c.next_k() == 0


def test_two_reloads_of_exactly_a_quarter_of_the_steps_left_are_paid() -> None:
    # 400 ms requests, 10 steps left: a quarter is 1000 ms, two reloads of 500 ms
    c = ModelController()
    feed(c, at(4, 4, 10.0, reload_ms=500, steps_left=10))
    assert c.next_k() == 0


def test_a_request_timed_at_0_ms_is_not_taken_for_an_unknown_time() -> None:
    # latency 0 ms and 0.5 ms of decoding: 0.5 ms a request, a quarter of 10 of them
    # (1.25 ms) does not cover two reloads of 1 ms
    c = ModelController()
    feed(c, at(4, 4, 0.5 / 40, latency_ms=0, reload_ms=1, steps_left=10))
    assert c.next_k() == 4 and math.isclose(c._step_ms, 0.5)
