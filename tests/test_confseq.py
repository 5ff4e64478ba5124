"""Student-t and the confidence sequence, pinned against independent references.

References: closed forms of Student's t for 1 and 2 degrees of freedom, published
table values, the t density integrated numerically, and the mixture likelihood ratio
integrated numerically over sigma and the effect (the definition the closed form in
confseq.py is derived from), plus hand arithmetic.
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
    t_quantile,
    t_radius,
    weighted_mean,
)


# -- Student-t -------------------------------------------------------------------------
@pytest.mark.parametrize("p", [0.6, 0.9, 0.975, 0.999, 0.9999])
def test_t_quantile_matches_closed_forms_for_one_and_two_df(p: float) -> None:
    assert t_quantile(p, 1) == pytest.approx(math.tan(math.pi * (p - 0.5)), rel=1e-10)
    two = (2 * p - 1) / math.sqrt(2 * p * (1 - p))  # t_2 quantile
    assert t_quantile(p, 2) == pytest.approx(two, rel=1e-10)


@pytest.mark.parametrize(
    ("p", "df", "table"),
    [
        (0.975, 3, 3.182446305284),
        (0.975, 11, 2.200985160092),
        (0.995, 5, 4.032142983555),
        (0.05, 4, -2.131846786327),
    ],
)
def test_t_quantile_matches_tables(p: float, df: int, table: float) -> None:
    assert t_quantile(p, df) == pytest.approx(table, abs=1e-9)


@pytest.mark.parametrize(("x", "df"), [(1.5, 3), (-2.2, 11), (0.3, 1), (4.0, 7)])
def test_t_cdf_matches_the_density_integrated(x: float, df: int) -> None:
    c = math.exp(math.lgamma((df + 1) / 2) - math.lgamma(df / 2)) / math.sqrt(df * math.pi)
    grid = np.linspace(0.0, abs(x), 200_001)
    dens = c * (1 + grid**2 / df) ** (-(df + 1) / 2)
    half = float(np.sum((dens[1:] + dens[:-1]) / 2 * np.diff(grid)))  # trapezoid, 0 to |x|
    expected = 0.5 + math.copysign(half, x)
    assert t_cdf(x, df) == pytest.approx(expected, abs=1e-9)


def test_betainc_edges_and_a_symmetric_value() -> None:
    assert betainc(2.0, 3.0, 0.0) == 0.0
    assert betainc(2.0, 3.0, 1.0) == 1.0
    assert betainc(2.5, 2.5, 0.5) == pytest.approx(0.5, abs=1e-14)
    # I_x(1, b) = 1 - (1 - x)^b
    assert betainc(1.0, 3.0, 0.2) == pytest.approx(1 - 0.8**3, abs=1e-14)


# -- the weighted mean and the fixed-sample interval -----------------------------------
Y = np.array([0.10, 0.02, 0.06, 0.04])


def test_weighted_mean_and_t_radius_by_hand() -> None:
    m = weighted_mean(Y, np.ones(4))
    assert (m.n, m.weight, m.dof) == (4, 4.0, 3)
    assert m.mean == pytest.approx(0.055, abs=1e-15)
    # deviations .045 -.035 .005 -.015: squares sum to .0035, over 3
    assert m.var == pytest.approx(0.0035 / 3, rel=1e-12)
    assert t_radius(m) == pytest.approx(3.182446305284 * math.sqrt(0.0035 / 3 / 4), rel=1e-10)


def test_weights_count_like_repeated_rounds_for_the_mean() -> None:
    m = weighted_mean(np.array([0.1, 0.4]), np.array([1.0, 2.0]))
    assert m.mean == pytest.approx(0.3, abs=1e-15)
    # sum w (y - m)^2 = 1 * .04 + 2 * .01 = .06, over n - 1 = 1; W = 3
    assert m.var == pytest.approx(0.06, abs=1e-15)
    assert m.se == pytest.approx(math.sqrt(0.06 / 3), abs=1e-15)


def test_one_round_has_no_interval() -> None:
    m = weighted_mean(np.array([0.3]), np.array([1.0]))
    assert m.dof == 0 and math.isnan(m.var)
    assert t_radius(m) == math.inf
    assert cs_radius(m, 0.05) == math.inf


# -- the confidence sequence -----------------------------------------------------------
def numeric_mixture(y: np.ndarray, w: np.ndarray, mu0: float, tau2: float) -> float:
    """The definition: integral over the effect theta ~ N(0, tau2) and sigma (measure
    d sigma / sigma) of the Gaussian likelihood with mean mu0 + theta sigma, over the
    same integral with theta = 0. Plain quadrature on grids."""
    d = y - mu0
    log_sigma = np.linspace(math.log(1e-4), math.log(10.0), 3000)
    sig = np.exp(log_sigma)
    step = log_sigma[1] - log_sigma[0]

    def lik(theta: float) -> np.ndarray:
        r = np.sqrt(w)[None, :] * (d[None, :] - theta * sig[:, None]) / sig[:, None]
        out: np.ndarray = np.exp(-0.5 * (r**2).sum(axis=1) - len(d) * log_sigma)
        return out

    den = lik(0.0).sum() * step
    thetas = np.linspace(-10 * math.sqrt(tau2), 10 * math.sqrt(tau2), 1201)
    prior = np.exp(-(thetas**2) / (2 * tau2)) / math.sqrt(2 * math.pi * tau2)
    num = sum(lik(t).sum() * step * p for t, p in zip(thetas, prior, strict=True))
    return float(num * (thetas[1] - thetas[0]) / den)


@pytest.mark.parametrize("mu0", [0.0, 0.03, -0.05])
def test_closed_form_mixture_equals_its_definition(mu0: float) -> None:
    w = np.array([1.0, 1.0, 2.0, 2.0])
    m = weighted_mean(Y, w)
    assert mixture_e_value(m, mu0, 8.0) == pytest.approx(numeric_mixture(Y, w, mu0, 8.0), rel=1e-5)


def test_cs_radius_by_hand() -> None:
    # n = 4, W = 4, tau^2 = 8, alpha = .05: g = 32, rho = 32/33,
    # U = (1 - (.05^2 / 33)^(1/4)) / rho, q = sqrt(3 U / (1 - U))
    u = (1 - (0.0025 / 33) ** 0.25) * 33 / 32
    q = math.sqrt(3 * u / (1 - u))
    assert q == pytest.approx(6.5713, abs=2e-4)  # hand: U = .93504, 3U/(1-U) = 43.18
    m = weighted_mean(Y, np.ones(4))
    assert cs_radius(m, 0.05, 8.0) == pytest.approx(q * math.sqrt(0.0035 / 3 / 4), rel=1e-12)
    assert float(mixture_factor(3, 4.0, 0.05, 8.0)) == pytest.approx(q, rel=1e-12)


def test_the_sequence_ends_where_the_mixture_reaches_one_over_alpha() -> None:
    w = np.array([1.0, 1.0, 2.0, 2.0])
    m = weighted_mean(Y, w)
    r = cs_radius(m, 0.05, 8.0)
    for edge in (m.mean - r, m.mean + r):
        assert numeric_mixture(Y, w, edge, 8.0) == pytest.approx(20.0, rel=1e-4)


def test_unbounded_until_enough_rounds() -> None:
    # At n = 2 the sequence is finite only when W tau^2 > 1/alpha^2 - 1 (= 399 at .05).
    assert math.isinf(float(mixture_factor(1, 2.0, 0.05, 8.0)))
    assert math.isfinite(float(mixture_factor(1, 50.0, 0.05, 8.0)))  # 400 > 399
    assert math.isinf(float(mixture_factor(1, 49.8, 0.05, 8.0)))  # 398.4 < 399
    assert math.isinf(float(mixture_factor(0, 10.0, 0.05, 8.0)))


def test_pooled_degrees_of_freedom_enter_as_extra_rounds() -> None:
    # df 24 on the same W: the exponent is (df + 1) / 2
    g = 4.0 * 8.0
    u = (1 - (0.0025 / (1 + g)) ** (1 / 25)) * (1 + g) / g
    assert float(mixture_factor(24, 4.0, 0.05, 8.0)) == pytest.approx(math.sqrt(24 * u / (1 - u)))
    m = Mean(4, 4.0, 0.1, 0.01, df=24)
    assert m.dof == 24
    assert t_radius(m) == pytest.approx(2.063898561628 * 0.05, rel=1e-9)  # t_.975,24


def test_looking_every_round_the_sequence_keeps_its_level_and_the_t_interval_does_not() -> None:
    """Gaussian rounds, the truth at 0, looked at after each of rounds 2..30: the share
    of runs in which the interval ever excludes the truth. The sequence stays under
    alpha at every stopping rule at once; the fixed-sample 95% interval, looked at
    every round, does not."""
    rng = np.random.default_rng(7)
    runs, rounds, alpha = 4000, 30, 0.05
    y = rng.normal(0.0, 1.0, size=(runs, rounds))
    n = np.arange(1, rounds + 1)
    mean = np.cumsum(y, axis=1) / n
    var = (np.cumsum(y * y, axis=1) - n * mean**2) / np.maximum(n - 1, 1)
    se = np.sqrt(var / n)
    q = mixture_factor(n - 1, n.astype(float), alpha, 8.0)[1:]
    t = np.array([t_quantile(0.975, k - 1) for k in n[1:]])
    dev, se = np.abs(mean[:, 1:]), se[:, 1:]
    cs_miss = np.where(np.isfinite(q), dev > q * se, False).any(axis=1).mean()
    t_miss = (dev > t * se).any(axis=1).mean()
    assert cs_miss < alpha
    assert t_miss > 3 * alpha
