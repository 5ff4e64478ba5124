"""The race's pure rules on tables built by hand: drops, rounds needed, shared means, pick.

Expected numbers come from hand arithmetic or from `q_ref`, the confidence sequence's
factor written from its definition in plain floats (nothing from the module under test).
"""

import math

import numpy as np
import pytest
from race_ref import q_ref

from halospec_tui.confseq import Mean
from halospec_tui.race import (
    PairTable,
    arm_interval,
    drops,
    pair_table,
    pick,
    rounds_needed,
    shared_best,
    shared_means,
)

LOG_TOL = math.log(1.02)


def two_arms(mean: float, var: float, n: int, weight: float, last: float) -> PairTable:
    """Arm 0 over arm 1: log ratio `mean`, variance per unit weight `var`, n - 1 df."""
    m = np.array([[0.0, mean], [-mean, 0.0]])
    return PairTable(np.full((2, 2), n), np.full((2, 2), weight), m,
                     np.array([[0.0, var], [var, 0.0]]), np.full((2, 2), n - 1),
                     np.full((2, 2), last))  # fmt: skip


def need_ref(mean: float, var: float, df: int, weight: float, last: float, *,
             df_per_round: int = 1, tau2: float = 8.0, alpha: float = 0.05,
             cap: int = 200) -> int | None:  # fmt: skip
    """The first k with the sequence's half-width at df + k * df_per_round, W + k * last
    no larger than mean + log(1.02) (arm 1, slower by more than 2%, never gets there)."""
    for k in range(cap + 1):
        big_w = weight + k * last
        if q_ref(df + k * df_per_round, big_w, alpha, tau2) * math.sqrt(var / big_w) <= mean + LOG_TOL:
            return k
    return None


# -- rounds needed --------------------------------------------------------------------
def test_rounds_needed_follows_the_spread_the_weight_and_the_degrees_of_freedom() -> None:
    t = two_arms(0.03, 0.004, 4, 4.0, 1.0)
    base = need_ref(0.03, 0.004, 3, 4.0, 1.0)
    assert base == 19
    assert rounds_needed(t, [0, 1], LOG_TOL, 0.05, 8.0) == base  # one df per round by default
    two_df = need_ref(0.03, 0.004, 3, 4.0, 1.0, df_per_round=2)
    assert two_df == 17
    assert rounds_needed(t, [0, 1], LOG_TOL, 0.05, 8.0, df_per_round=2) == two_df
    # the latest round weighed 2: each further one is expected to weigh as much
    heavy = two_arms(0.03, 0.004, 4, 4.0, 2.0)
    assert need_ref(0.03, 0.004, 3, 4.0, 2.0) == 11
    assert rounds_needed(heavy, [0, 1], LOG_TOL, 0.05, 8.0) == 11
    # the prior of the sequences counts
    assert need_ref(0.03, 0.004, 3, 4.0, 1.0, tau2=2.0) == 16
    assert rounds_needed(t, [0, 1], LOG_TOL, 0.05, 2.0) == 16


def test_rounds_needed_stops_at_the_cap() -> None:
    t = two_arms(0.03, 0.004, 4, 4.0, 1.0)  # 19 more rounds (above)
    assert rounds_needed(t, [0, 1], LOG_TOL, 0.05, 8.0, cap=19) == 19
    assert rounds_needed(t, [0, 1], LOG_TOL, 0.05, 8.0, cap=18) is None


def test_rounds_needed_is_zero_when_an_arm_is_certified_already() -> None:
    t = two_arms(0.03, 1e-6, 4, 4.0, 1.0)
    hw = q_ref(3, 4.0, 0.05) * math.sqrt(1e-6 / 4.0)
    assert hw < 0.03 + LOG_TOL
    assert rounds_needed(t, [0, 1], LOG_TOL, 0.05, 8.0) == 0


def test_rounds_needed_at_two_rounds_in_common() -> None:
    t = two_arms(0.03, 0.004, 2, 2.0, 1.0)
    expected = need_ref(0.03, 0.004, 1, 2.0, 1.0)
    assert expected == 21
    assert rounds_needed(t, [0, 1], LOG_TOL, 0.05, 8.0) == expected


def test_rounds_needed_takes_the_survivor_closest_to_certified() -> None:
    # Three arms: 0 beats 1 by .03 and 2 by .05 (same spread), 1 beats 2 by .02. Arm 0
    # needs max(need vs 1, need vs 2); arm 1 never (0 beats it by more than 2%).
    mean = np.array([[0.0, 0.03, 0.05], [-0.03, 0.0, 0.02], [-0.05, -0.02, 0.0]])
    t = PairTable(np.full((3, 3), 4), np.full((3, 3), 4.0), mean, np.full((3, 3), 0.004),
                  np.full((3, 3), 3), np.ones((3, 3)))  # fmt: skip
    vs1, vs2 = need_ref(0.03, 0.004, 3, 4.0, 1.0), need_ref(0.05, 0.004, 3, 4.0, 1.0)
    assert (vs1, vs2) == (19, 9)
    assert rounds_needed(t, [0, 1, 2], LOG_TOL, 0.05, 8.0) == 19
    assert rounds_needed(t, [0, 2], LOG_TOL, 0.05, 8.0) == 9


# -- drops ---------------------------------------------------------------------------
def exact_table(mean: float) -> PairTable:
    """Two arms, ten rounds that all agree (variance 0): the lower bound is the mean."""
    return two_arms(mean, 0.0, 10, 10.0, 1.0)


def test_an_arm_exactly_at_the_tolerance_is_kept_and_one_beyond_it_goes() -> None:
    assert drops(exact_table(LOG_TOL), [0, 1], LOG_TOL, 0.05, 8.0) == []
    beyond = math.nextafter(LOG_TOL, 1.0)
    assert drops(exact_table(beyond), [0, 1], LOG_TOL, 0.05, 8.0) == [(1, 0, beyond)]


def test_a_lone_survivor_is_never_dropped() -> None:
    assert drops(exact_table(1.0), [1], LOG_TOL, 0.05, 8.0) == []
    assert drops(exact_table(1.0), [], LOG_TOL, 0.05, 8.0) == []


# -- shared means and the best -------------------------------------------------------------
def test_without_a_round_in_common_each_survivor_is_ranked_on_its_own_rounds() -> None:
    nan = math.nan
    x = np.log(np.array([[100.0, nan, nan, 90.0],
                         [110.0, nan, nan, nan],
                         [nan, 50.0, nan, nan],
                         [nan, 60.0, nan, nan],
                         [nan, 70.0, nan, nan]]))  # fmt: skip
    means = shared_means(x, [0, 1, 2])  # arm 2 never ran: left out
    assert means == {0: pytest.approx(math.log(100 * 110) / 2, abs=1e-15),
                     1: pytest.approx(math.log(50 * 60 * 70) / 3, abs=1e-15)}  # fmt: skip
    assert shared_best(x, [0, 1, 2]) == 0
    assert shared_means(x, [1, 3]) == {1: pytest.approx(math.log(50 * 60 * 70) / 3, abs=1e-15),
                                       3: pytest.approx(math.log(90.0), abs=1e-15)}  # fmt: skip
    assert shared_best(x, [2]) is None
    assert shared_means(x, []) == {}


def test_shared_means_keep_the_survivors_order_of_indices() -> None:
    x = np.log(np.array([[10.0, 20.0, 40.0], [10.0, 20.0, 40.0]]))
    assert shared_means(x, [2, 0]) == {2: pytest.approx(math.log(40.0)),
                                       0: pytest.approx(math.log(10.0))}  # fmt: skip
    assert shared_best(x, [2, 0]) == 2


# -- pick ------------------------------------------------------------------------------------
def test_pick_breaks_a_tie_of_k_by_speed_and_an_unknown_speed_comes_last() -> None:
    ks = {"a": 2, "b": 2, "c": None}
    assert pick(["a", "b"], ks, {"a": 1.0, "b": 2.0}) == "b"
    assert pick(["a", "b"], ks, {"b": 0.5}) == "b"
    assert pick(["b", "a"], ks, {"a": 0.5}) == "a"
    assert pick(["c", "a"], ks, {"c": 9.0, "a": 0.5}) == "a"


# -- intervals ---------------------------------------------------------------------------------
def test_an_interval_too_wide_for_a_float_ends_at_infinity() -> None:
    # log tps 0 and 1000 (a broken server's figures): mean 500, s = 500 * sqrt(2),
    # se = 500, t_.975 (1 df) = 12.706: exp(500 + 6353) overflows, exp(500 - 6353) is 0
    a = arm_interval("a", 1, np.array([0.0, 1000.0]), np.ones(2), 0.95)
    assert a is not None
    assert (a.rounds, a.tps.lo, a.tps.hi) == (2, 0.0, math.inf)
    assert a.tps.value == pytest.approx(math.exp(500.0), rel=1e-12)
    assert arm_interval("a", 1, np.array([math.nan, math.nan]), np.ones(2), 0.95) is None


# -- the pair table's bookkeeping -----------------------------------------------------------
def test_weights_are_in_units_of_the_first_common_round_even_for_one_step_blocks() -> None:
    # steps 1, 1, 3 for both arms: round weights 1/(1/s + 1/s) = .5, .5, 1.5 -> 1, 1, 3
    x = np.log(np.array([[100.0, 90.0], [110.0, 100.0], [105.0, 100.0]]))
    steps = np.array([[1.0, 1.0], [1.0, 1.0], [3.0, 3.0]])
    t = pair_table(x, steps)
    d = [math.log(100 / 90), math.log(110 / 100), math.log(105 / 100)]
    mean = (d[0] + d[1] + 3 * d[2]) / 5
    var = ((d[0] - mean) ** 2 + (d[1] - mean) ** 2 + 3 * (d[2] - mean) ** 2) / 2
    assert t.weight[0, 1] == pytest.approx(5.0, rel=1e-14)
    assert t.last_weight[0, 1] == pytest.approx(3.0, rel=1e-14)
    assert t.mean[0, 1] == pytest.approx(mean, abs=1e-15)
    assert t.var[0, 1] == pytest.approx(var, rel=1e-12)
    assert t.of(0, 1) == Mean(3, t.weight[0, 1], t.mean[0, 1], t.var[0, 1], 2)


def test_a_pair_without_rounds_in_common_has_no_mean_and_no_weight() -> None:
    x = np.log(np.array([[100.0, np.nan], [np.nan, 90.0]]))
    t = pair_table(x, np.array([[4.0, 0.0], [0.0, 4.0]]))
    assert (t.n[0, 1], t.weight[0, 1], t.last_weight[0, 1], t.df[0, 1]) == (0, 0.0, 0.0, 0)
    assert math.isnan(t.mean[0, 1]) and math.isnan(t.var[0, 1])
    assert t.radius(0.05, 8.0)[0, 1] == math.inf


def test_the_radius_is_kept_per_level_and_prior() -> None:
    x = np.log(np.array([[100.0, 90.0], [110.0, 97.0], [105.0, 96.0], [100.0, 91.0]]))
    t = pair_table(x, np.full((4, 2), 4.0))
    se = math.sqrt(float(t.var[0, 1]) / 4.0)
    for alpha, tau2 in ((0.05, 8.0), (0.01, 8.0), (0.05, 2.0), (0.05, 8.0)):
        assert t.radius(alpha, tau2)[0, 1] == pytest.approx(q_ref(3, 4.0, alpha, tau2) * se, rel=1e-12)
    # rounds that agree exactly: zero width (not 0 * inf)
    same = pair_table(np.log(np.array([[100.0, 90.0]] * 4)), np.full((4, 2), 4.0))
    assert same.radius(0.05, 8.0)[0, 1] == 0.0


def test_reaching_the_tolerance_exactly_needs_no_more_rounds() -> None:
    # Arm 0 is exactly 2% slower than arm 1 with no spread (as certified_epsilon
    # certifies it: the bound must reach -log 1.02, not pass it) and far ahead of arm 2;
    # arms 1 and 2 never shared a round, so neither of them can be certified.
    mean = np.array([[0.0, -LOG_TOL, 1.0], [LOG_TOL, 0.0, np.nan], [-1.0, np.nan, 0.0]])
    n = np.array([[10, 10, 10], [10, 10, 0], [10, 0, 10]])
    var = np.where(n > 0, 0.0, np.nan)
    t = PairTable(n, n.astype(float), mean, var, np.maximum(n - 1, 0), (n > 0).astype(float))
    assert rounds_needed(t, [0, 1, 2], LOG_TOL, 0.05, 8.0) == 0
    assert rounds_needed(t, [1, 2], LOG_TOL, 0.05, 8.0) is None


def test_the_latest_common_round_is_the_last_one_both_ran() -> None:
    # 4 rounds; arm 1 runs only rounds 1-2, with blocks of 2 then 6 steps (arm 0: 2 each).
    # Round weights 1/(1/2 + 1/2) = 1 and 1/(1/2 + 1/6) = 1.5: relative to the first, 1.5.
    x = np.log(np.array([[100.0, 90.0], [100.0, 91.0], [100.0, np.nan], [100.0, np.nan]]))
    steps = np.array([[2.0, 2.0], [2.0, 6.0], [2.0, 0.0], [2.0, 0.0]])
    t = pair_table(x, steps)
    assert (t.n[0, 1], t.weight[0, 1], t.last_weight[0, 1]) == (2, 2.5, 1.5)
    # a single common round is its own latest
    one = pair_table(x[1:], steps[1:])
    assert (one.n[0, 1], one.weight[0, 1], one.last_weight[0, 1]) == (1, 1.0, 1.0)
