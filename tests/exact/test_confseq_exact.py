"""confseq at its edges: the fewest rounds that give an interval, zero spread, the prior.

Expected values are hand arithmetic, published t quantiles, or `q_ref` below: the
sequence's factor written from its definition in plain floats (no numpy, nothing from
the module under test). The sequence's edges are also checked against the mixture
likelihood ratio, which must equal 1 / alpha there.
"""

import math

import numpy as np
import pytest

from halospec_tui.confseq import Mean, cs_radius, mixture_e_value, t_radius, weighted_mean

T_975_1 = 12.706204736174705  # tan(pi * .475): t_.975 with 1 df
T_975_24 = 2.063898561628


def q_ref(df: int, w: float, alpha: float, tau2: float = 8.0) -> float:
    """sqrt(df U / (1 - U)), U = (1 - (alpha^2 / (1 + W tau2))^(1 / (df + 1))) (1 + W tau2) / (W tau2)."""
    g = w * tau2
    u = (1 - (alpha**2 / (1 + g)) ** (1 / (df + 1))) * (1 + g) / g
    return math.sqrt(df * u / (1 - u))


def test_two_rounds_of_a_heavy_pair_already_bound_both_intervals() -> None:
    # W tau^2 = 400 > 1/alpha^2 - 1 = 399: the sequence is finite at 2 rounds (1 df)
    m = Mean(2, 50.0, 0.1, 0.01)
    se = math.sqrt(0.01 / 50.0)
    assert t_radius(m) == pytest.approx(T_975_1 * se, rel=1e-10)
    r = cs_radius(m, 0.05, 8.0)
    assert r == pytest.approx(q_ref(1, 50.0, 0.05) * se, rel=1e-12)
    for edge in (0.1 - r, 0.1 + r):
        assert mixture_e_value(m, edge, 8.0) == pytest.approx(20.0, rel=1e-9)


def test_one_shared_round_with_a_pooled_variance_has_both_intervals() -> None:
    m = Mean(1, 1.0, 0.1, 0.01, df=24)
    assert t_radius(m) == pytest.approx(T_975_24 * 0.1, rel=1e-9)
    assert cs_radius(m, 0.05, 8.0) == pytest.approx(q_ref(24, 1.0, 0.05) * 0.1, rel=1e-12)


def test_no_rounds_means_no_interval_whatever_else_the_record_holds() -> None:
    m = Mean(0, 4.0, 0.0, 0.01, df=24)
    assert t_radius(m) == math.inf
    assert cs_radius(m, 0.05, 8.0) == math.inf


def test_the_prior_sets_the_width_of_the_sequence() -> None:
    y = np.array([0.10, 0.02, 0.06, 0.04])
    m = weighted_mean(y, np.ones(4))  # mean .055, s^2 = .0035 / 3 (test_confseq.py)
    se = math.sqrt(0.0035 / 3 / 4)
    for tau2 in (2.0, 8.0, 30.0):
        r = cs_radius(m, 0.05, tau2)
        assert r == pytest.approx(q_ref(3, 4.0, 0.05, tau2) * se, rel=1e-12)
        assert mixture_e_value(m, m.mean + r, tau2) == pytest.approx(20.0, rel=1e-9)
    # tau^2 = 8 (PRIOR) is the narrowest of the three at 4 rounds
    assert cs_radius(m, 0.05, 8.0) < min(cs_radius(m, 0.05, 2.0), cs_radius(m, 0.05, 30.0))


def test_identical_rounds_give_zero_width_and_an_exact_likelihood_ratio() -> None:
    m = weighted_mean(np.full(4, 0.1), np.ones(4))
    assert (m.n, m.weight, m.var) == (4, 4.0, 0.0)
    assert t_radius(m) == 0.0
    assert cs_radius(m, 0.05, 8.0) == 0.0
    # g = W tau^2 = 32. At the mean itself: T = 0, M = (1 + g)^(-1/2).
    assert mixture_e_value(m, 0.1, 8.0) == pytest.approx(33**-0.5, rel=1e-14)
    # Anywhere else: u = 1, M = (1 + g)^(-1/2) (1 - rho)^(-n/2) = 33^(-1/2) 33^2.
    assert mixture_e_value(m, 0.0, 8.0) == pytest.approx(33**1.5, rel=1e-12)


def test_the_likelihood_ratio_by_hand_at_two_rounds() -> None:
    # y = .1, .3: m = .2, V = .02 = s^2 (1 df), W = 2. At mu0 = 0: T^2 = 2 * .04 / .02 = 4,
    # u = 4 / (1 + 4) = .8; g = 16, rho = 16/17: M = 17^(-1/2) / (1 - 12.8/17) = sqrt(17) / 4.2
    m = weighted_mean(np.array([0.1, 0.3]), np.ones(2))
    assert mixture_e_value(m, 0.0, 8.0) == pytest.approx(math.sqrt(17) / 4.2, rel=1e-13)


def test_one_round_is_no_evidence_either_way() -> None:
    m = weighted_mean(np.array([0.3]), np.array([2.0]))
    assert mixture_e_value(m, 0.0, 8.0) == 1.0
    assert mixture_e_value(m, 5.0, 8.0) == 1.0
