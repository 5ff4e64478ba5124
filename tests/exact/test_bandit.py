"""The D-UCB bandit's costs of a reload at their boundaries: when K 0 is tried for
sure, how the plan's last steps weigh a move, and the index of an untried arm on the
first step. Worked out by hand in the comments (the module docstring states the rule)."""

from __future__ import annotations

from halospec_tui.controllers import BanditController, Observation


def _first_step(
    c: BanditController, k: int, reload_ms: int, tokens: int = 64, steps_left: int | None = None
) -> int:
    """One successful 1000 ms step at K `k` that cost `reload_ms`; the K chosen next."""
    c.observe(k, True, 1000, Observation(k, True, 1000, tokens, reload_ms=reload_ms,
                                         steps_left=steps_left))  # fmt: skip
    return c.next_k()


def test_k0_is_tried_when_two_reloads_fill_exactly_the_share_of_the_horizon() -> None:
    # budget: a quarter of 20 steps of 1000 ms = 5000 ms; two reloads of 2500 fill it
    assert _first_step(BanditController(k_start=4), 4, 2500) == 0
    # 2 x 2501 > 5000: no sure try; every untried K scores 1.05 + bonus against 1 + the
    # same bonus for K 4: a gain of 0.05 is not more than 2501 / (20 x 1000) = 0.125: stays
    assert _first_step(BanditController(k_start=4), 4, 2501) == 4
    # a larger share makes room for it: 0.5 x 20 x 1000 = 10000 >= 5002
    assert _first_step(BanditController(k_start=4, identify_share=0.5), 4, 2501) == 0


def test_a_plan_with_one_step_left_weighs_a_reload_over_that_one_step() -> None:
    # reload 200 ms: two are 400 ms; budget 0.25 x steps left x 1000 ms
    # 1 step left (or 0, counted as 1): 250 < 400: no try of K 0, and a gain of 0.05
    # against 200 / (1 x 1000) = 0.2: K 4 stays
    assert _first_step(BanditController(k_start=4), 4, 200, steps_left=1) == 4
    assert _first_step(BanditController(k_start=4), 4, 200, steps_left=0) == 4
    # 2 steps left: 500 >= 400: K 0 is tried
    assert _first_step(BanditController(k_start=4), 4, 200, steps_left=2) == 0


def _two_arms(reload_ms: int) -> int:
    """K 2 (of 1..2) measured once at 100 tokens/s after a reload; K 1 untried.

    n = 1: both bonuses are sqrt(xi ln(1 + 1e-9)) = sqrt(1e-9) = 3.1623e-5 (the log's
    floor), so K 1's index 1 + 0.01 (optimism) + b beats K 2's 1 + b by exactly 0.01,
    against a cost of reload_ms / (100 steps x 1000 ms)."""
    c = BanditController(k_start=2, k_min=1, k_max=2, xi=1.0, optimism=0.01, horizon=100)
    return _first_step(c, 2, reload_ms, tokens=100)


def test_an_untried_arms_bonus_on_the_first_step_uses_the_logs_floor() -> None:
    # 0.01 > 999 / 100000 = 0.00999: moves to the untried K (a bonus of 0 for it, ln 1,
    # would leave a gain of 0.01 - 3.16e-5 = 0.00997, not enough)
    assert _two_arms(999) == 1
    # 0.01 <= 0.01001: stays (a floor of 2 would give it sqrt(ln 2) = 0.83 more)
    assert _two_arms(1001) == 2
