"""confseq at its edges: the fewest rounds that give an interval, zero spread, the prior.

Expected values are hand arithmetic, published t quantiles, or `q_ref` below: the
sequence's factor written from its definition in plain floats (no numpy, nothing from
the module under test). The sequence's edges are also checked against the mixture
likelihood ratio, which must equal 1 / alpha there.
"""

import math

import numpy as np
import pytest

from halospec_tui.confseq import (
    Mean,
    betainc,
    cs_radius,
    mixture_e_value,
    mixture_factor,
    t_cdf,
    t_radius,
    weighted_mean,
)

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


# -- the t distribution and the incomplete beta, against closed forms ------------------------
def t_cdf_closed(x: float, df: int) -> float:
    """Student's t cdf for 1, 2 and 3 df in closed form (theta = atan(x / sqrt(df)))."""
    if df == 1:
        return 0.5 + math.atan(x) / math.pi
    if df == 2:
        return 0.5 + x / (2 * math.sqrt(2 + x * x))
    th = math.atan(x / math.sqrt(3))
    return 0.5 + (th + math.sin(th) * math.cos(th)) / math.pi


@pytest.mark.parametrize("df", [1, 2, 3])
@pytest.mark.parametrize("x", [0.0, 0.05, 0.4, -0.4, 1.0, 2.5, -2.5, 9.0, -30.0, 250.0])
def test_t_cdf_equals_the_closed_forms_for_few_degrees_of_freedom(x: float, df: int) -> None:
    assert t_cdf(x, df) == pytest.approx(t_cdf_closed(x, df), rel=1e-12, abs=1e-15)


@pytest.mark.parametrize("x", [0.001, 0.1, 0.3, 0.5, 0.7, 0.9, 0.999])
@pytest.mark.parametrize("a", [0.5, 1.5, 4.0, 12.5])
def test_betainc_equals_its_closed_forms_on_both_sides_of_the_switch(a: float, x: float) -> None:
    # I_x(a, 1) = x^a; I_x(1, a) = 1 - (1 - x)^a; the switch to the complement at
    # x = (a + 1) / (a + b + 2) falls inside the grid for every a
    assert betainc(a, 1.0, x) == pytest.approx(x**a, rel=1e-12, abs=1e-300)
    assert betainc(1.0, a, x) == pytest.approx(1 - (1 - x) ** a, rel=1e-12)


@pytest.mark.parametrize("x", [0.02, 0.25, 0.5, 0.8, 0.97])
def test_betainc_half_half_is_the_arcsine_law(x: float) -> None:
    assert betainc(0.5, 0.5, x) == pytest.approx(2 / math.pi * math.asin(math.sqrt(x)), rel=1e-12)


def test_betainc_is_zero_and_one_outside_the_unit_interval() -> None:
    assert (betainc(2.0, 0.5, -0.5), betainc(2.0, 0.5, 0.0)) == (0.0, 0.0)
    assert (betainc(2.0, 0.5, 1.0), betainc(2.0, 0.5, 1.5)) == (1.0, 1.0)


def test_no_rounds_give_an_empty_mean() -> None:
    m = weighted_mean(np.array([]), np.array([]))
    assert (m.n, m.weight, m.dof) == (0, 0.0, -1)
    assert math.isnan(m.mean) and math.isnan(m.var) and math.isnan(m.se)
    assert t_radius(m) == math.inf and cs_radius(m, 0.05) == math.inf


def test_a_light_weight_with_many_degrees_of_freedom_is_still_bounded() -> None:
    # df 100, W tau^2 = 1: U = (1 - exp(ln(.00125) / 101)) * 2 = (1 - .935958) * 2 = .12808
    assert float(mixture_factor(100, 0.125, 0.05, 8.0)) == pytest.approx(q_ref(100, 0.125, 0.05), rel=1e-12)
    u = (1 - (0.0025 / 2) ** (1 / 101)) * 2
    assert u == pytest.approx(0.12808, abs=1e-5)
