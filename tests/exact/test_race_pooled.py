"""The pooled table on the designs a race leaves behind: sparse rounds, lone blocks, gaps.

Reference: the round + arm design written out, one row per observed block weighted by
its steps, solved by numpy's lstsq (as in tests/test_race.py): a contrast mu_i - mu_j,
its variance sigma^2 c' (A'A)^+ c, and df = observations - rank.
"""

import math
import warnings

import numpy as np
import pytest
from race_ref import wls

from halospec_tui.confseq import mixture_factor
from halospec_tui.race import Figures, Race, RaceConfig, pair_table

NAN = math.nan


def check_pair(x: np.ndarray, steps: np.ndarray, i: int, j: int) -> None:
    t = pair_table(x, steps, pooled=True)
    mu, sigma2, gram, df = wls(x, steps)
    c = np.zeros(x.shape[1])
    c[i], c[j] = 1.0, -1.0
    assert t.df[i, j] == df
    assert t.mean[i, j] == pytest.approx(mu[i] - mu[j], abs=1e-12)
    assert t.var[i, j] / t.weight[i, j] == pytest.approx(sigma2 * (c @ gram @ c), rel=1e-9)


def test_a_pair_with_one_round_in_common_gets_the_pooled_one_degree_of_freedom() -> None:
    # a, b, c in round 1; a, b in round 2: 5 blocks, rank 4 (2 rounds + 3 arms - 1): 1 df.
    # a and c share round 1 only: on their own rounds they have no degree of freedom.
    x = np.log(np.array([[100.0, 90.0, 80.0], [104.0, 91.0, NAN]]))
    steps = np.array([[4.0, 4.0, 4.0], [4.0, 4.0, 0.0]])
    assert pair_table(x, steps).df[0, 2] == 0
    t = pair_table(x, steps, pooled=True)
    assert t.n[0, 2] == 1 and t.df[0, 2] == 1
    check_pair(x, steps, 0, 2)
    check_pair(x, steps, 0, 1)


def test_a_round_with_a_single_block_of_one_step_still_counts_as_a_round() -> None:
    # It adds one observation and one round effect: df stays obs - rank = 7 - 5 = 2.
    x = np.log(np.array([[100.0, 90.0, 80.0], [104.0, 91.0, 83.0], [102.0, NAN, NAN]]))
    steps = np.array([[1.0, 1.0, 1.0], [1.0, 1.0, 1.0], [1.0, 0.0, 0.0]])
    assert wls(x, steps)[3] == 2
    for i, j in ((0, 1), (1, 2), (0, 2)):
        check_pair(x, steps, i, j)


def test_a_pair_that_never_shared_a_round_gets_no_pooled_contrast() -> None:
    # a and c are linked through b, but never ran together: no figures for a/c.
    x = np.log(np.array([[100.0, 90.0, NAN], [NAN, 91.0, 80.0], [103.0, 92.0, NAN],
                         [NAN, 89.0, 82.0], [101.0, 90.0, NAN]]))  # fmt: skip
    steps = np.where(np.isfinite(x), 4.0, 0.0)
    t = pair_table(x, steps, pooled=True)
    assert (t.n[0, 2], t.df[0, 2], t.weight[0, 2]) == (0, 0, 0.0)
    assert math.isnan(t.mean[0, 2]) and math.isnan(t.mean[2, 0])
    assert t.df[0, 1] == t.df[1, 2] == 10 - 7  # 10 blocks, rank 5 rounds + 3 arms - 1
    check_pair(x, steps, 0, 1)
    check_pair(x, steps, 1, 2)


def test_a_round_in_which_no_arm_ran_changes_no_figure() -> None:
    x = np.log(np.array([[100.0, 90.0, 80.0], [104.0, 91.0, 83.0], [99.0, 93.0, 79.0]]))
    steps = np.array([[4.0, 4.0, 4.0], [2.0, 4.0, 8.0], [4.0, 4.0, 4.0]])
    gap_x = np.insert(x, 1, NAN, axis=0)
    gap_s = np.insert(steps, 1, 0.0, axis=0)
    for pooled in (False, True):
        a, b = pair_table(x, steps, pooled), pair_table(gap_x, gap_s, pooled)
        for name in ("n", "weight", "mean", "var", "df", "last_weight"):
            np.testing.assert_allclose(getattr(b, name), getattr(a, name), rtol=1e-12, atol=1e-15)


def test_the_diagonal_keeps_each_arms_own_figures() -> None:
    x = np.log(np.array([[100.0, 90.0, 80.0], [104.0, 91.0, 83.0], [99.0, 93.0, 79.0]]))
    steps = np.full((3, 3), 4.0)
    own, pooled = pair_table(x, steps), pair_table(x, steps, pooled=True)
    for name in ("n", "weight", "mean", "var", "df"):
        assert np.diag(getattr(pooled, name)).tolist() == np.diag(getattr(own, name)).tolist()
    assert pooled.df[0, 1] == 4  # (3 - 1)(3 - 1) off the diagonal


def test_a_race_with_gaps_computes_without_floating_point_warnings() -> None:
    """Arms that miss rounds, one that never runs, rounds that agree exactly: every
    division by zero and 0 * inf on the way is expected and handled (nan / inf),
    so none may surface as a warning (a terminal app would print it over its screen)."""
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        for pooled in (False, True):
            race = Race({"a": 1, "b": 2, "c": 3, "never": 4, "adaptive": None},
                        RaceConfig(pooled=pooled))  # fmt: skip
            for r in range(1, 7):
                figures = {"a": Figures(100.0, 1000.0, 4), "adaptive": Figures(90.0, 1000.0, 4)}
                if r % 2:
                    figures["b"] = Figures(95.0, 1000.0, 4)
                if r > 3:
                    figures["c"] = Figures(99.0 + r % 2, 1000.0, 4)
                st = race.add_round(r, figures)
            assert "never" in st.survivors and "a" in st.survivors
            assert race.rounds_needed() is None  # "never" is never measured
            assert race.pair("a", "never") is None
            x = np.log(np.array([[100.0, NAN], [100.0, 90.0]]))
            pair_table(x, np.array([[4.0, 0.0], [4.0, 4.0]]), pooled).radius(0.05, 8.0)
        q = mixture_factor(np.array([0, 1, 3]), np.array([0.0, 0.0, 4.0]), 0.05)
        assert q[0] == q[1] == math.inf and math.isfinite(q[2])


def test_a_block_of_no_steps_is_not_an_observation_of_the_pooled_model() -> None:
    x = np.log(np.array([[100.0, 90.0, 80.0], [104.0, 91.0, 83.0], [99.0, 93.0, 79.0]]))
    steps = np.full((3, 3), 4.0)
    steps[1, 2] = 0.0
    gap = x.copy()
    gap[1, 2] = NAN
    t, ref = pair_table(x, steps, pooled=True), pair_table(gap, steps, pooled=True)
    assert t.df[0, 1] == ref.df[0, 1] == 8 - 5  # 8 blocks, rank 3 rounds + 3 arms - 1
    assert t.var[0, 1] == pytest.approx(ref.var[0, 1], rel=1e-12)
    assert t.mean[0, 1] == pytest.approx(ref.mean[0, 1], abs=1e-15)


def test_identical_figures_in_a_pooled_table_raise_no_warning() -> None:
    """A server that answers alike every time: the residual variance is exactly 0, so a
    pair that never shared a round meets 0 / 0 on the way (and keeps its own nan)."""
    x = np.full((5, 3), math.log(100.0))
    x[[1, 3], 0] = NAN
    x[[0, 2, 4], 2] = NAN
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        t = pair_table(x, np.where(np.isfinite(x), 4.0, 0.0), pooled=True)
    assert (t.var[0, 1], t.var[1, 2], t.df[0, 1], t.n[0, 2]) == (0.0, 0.0, 3, 0)
    assert math.isnan(t.var[0, 2]) and math.isnan(t.mean[0, 2])
