"""Intervals for a mean from a few rounds: fixed-sample Student-t and a confidence sequence.

The data are per-round values y_1..y_n (here: log ratios of two arms' tokens/s in the
rounds both ran) with known relative weights w_r (here: how many steps the round
measured, so a round with a larger block counts for more). Model: independent
y_r ~ N(mu, sigma^2 / w_r), mu and sigma unknown. With W = sum w, the weighted mean
m = sum w y / W, V = sum w (y - m)^2 and s^2 = V / (n - 1) (per unit weight):

* Student-t (a fixed number of rounds, chosen in advance): m +- t_{n-1, 1-a/2} s / sqrt(W).
  Exact under the model; the right interval to *report* (coverage 95% at 3 rounds as
  at 12, unlike a percentile bootstrap over so few rounds).

* Confidence sequence (valid at whatever round the run stops, however the stop was
  chosen): the scale-invariant Gaussian mixture (Lai 1976; Howard, Ramdas, McAuliffe,
  Sekhon 2021, and Wang and Ramdas 2023 on t-tests at any time). For a candidate mu0
  the likelihood ratio of the data's scale-invariant part, with sigma integrated out
  against d(sigma)/sigma and the standardised effect (mu - mu0)/sigma mixed over
  N(0, tau^2), is in closed form

      M_n(mu0) = (1 + W tau^2)^(-1/2) * (1 - rho u)^(-n/2),
      rho = W tau^2 / (1 + W tau^2),  u = T^2 / (n - 1 + T^2),
      T^2 = W (m - mu0)^2 / s^2  (the weighted t statistic at mu0),

  a nonnegative martingale with M_1 = 1 when mu = mu0, so by Ville's inequality
  P(M_n(mu) >= 1/alpha for some n) <= alpha. The set {mu0 : M_n(mu0) < 1/alpha} is
  m +- q_n s / sqrt(W) with

      U = (1 - (alpha^2 / (1 + W tau^2))^(1/n)) / rho,  q_n = sqrt((n - 1) U / (1 - U))

  (unbounded while U >= 1: at n = 2 that needs W tau^2 > 1/alpha^2 - 1). It holds
  for every n at once, so it stays valid when the run looks after each round and
  stops when it likes; the price is a width about 1.3-1.6x the Student-t one at
  8-12 rounds. Why this one: it needs no bound on the variance (a normal mixture or
  empirical Bernstein would: the noise of a server is not known in advance), it is
  exact for Gaussian rounds at any n >= 2 (no asymptotics: we have 3-12 rounds), and
  it does not depend on the horizon (--rounds is the user's). Log ratios of block
  throughputs are close to Gaussian (a block averages several steps).

With s^2 on nu degrees of freedom pooled from more data than the pair's own rounds
(race.pooled_table: residuals of an additive model, independent of the mean under
it), the same mixture has exponent (nu + 1) / 2 and q = sqrt(nu U / (1 - U)) with
U's root 1 / (nu + 1): n - 1 is simply replaced by nu (`Mean.df`).

tau^2 (`PRIOR`) is in units of the first round's weight: 8 makes the sequence finite
from round 4 with the error budget of a nine-arm race and keeps it within a few
percent of its narrowest over rounds 5-12 (a larger tau^2 opens it earlier, a smaller
one is narrower late).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from functools import lru_cache

import numpy as np

PRIOR = 8.0  # tau^2: prior variance of the standardised effect, per first-round weight
TINY = 1e-300  # Lentz's stand-in for a denominator of 0


# -- Student-t ------------------------------------------------------------------
def _beta_cf(a: float, b: float, x: float) -> float:
    """Continued fraction for the regularised incomplete beta (modified Lentz). The
    guards against a zero denominator are written out, not called: this loop runs some
    five million times in a report of 200,000 rows, and a call each made it 13% slower."""
    qab, qap, qam = a + b, a + 1.0, a - 1.0
    d = 1.0 - qab * x / qap
    c, d = 1.0, 1.0 / (d if abs(d) > TINY else TINY)
    h = d
    for m in range(1, 400):
        m2 = 2 * m
        for num in (m * (b - m) * x / ((qam + m2) * (a + m2)),
                    -(a + m) * (qab + m) * x / ((a + m2) * (qap + m2))):  # fmt: skip
            d = 1.0 + num * d
            d = 1.0 / (d if abs(d) > TINY else TINY)
            c = 1.0 + num / c
            c = c if abs(c) > TINY else TINY
            h *= d * c
        if abs(d * c - 1.0) < 1e-15:
            break
    return h


def betainc(a: float, b: float, x: float) -> float:
    """Regularised incomplete beta I_x(a, b)."""
    if x <= 0.0:
        return 0.0
    if x >= 1.0:
        return 1.0
    log_front = (
        math.lgamma(a + b) - math.lgamma(a) - math.lgamma(b)
        + a * math.log(x) + b * math.log1p(-x)
    )  # fmt: skip
    front = math.exp(log_front)
    if x < (a + 1.0) / (a + b + 2.0):
        return front * _beta_cf(a, b, x) / a
    return 1.0 - front * _beta_cf(b, a, 1.0 - x) / b


def t_cdf(x: float, df: float) -> float:
    """P(T <= x) for Student's t with `df` degrees of freedom."""
    tail = 0.5 * betainc(df / 2.0, 0.5, df / (df + x * x))  # P(T > |x|)
    return 0.5 + math.copysign(0.5 - tail, x)


@lru_cache(maxsize=4096)
def t_quantile(p: float, df: float) -> float:
    """The p-quantile of Student's t (bisection on the cdf, to 1e-12)."""
    if not 0.0 < p < 1.0:
        raise ValueError(f"p must be in (0, 1), got {p}")
    if p < 0.5:
        return -t_quantile(1.0 - p, df)
    hi = 1.0
    while t_cdf(hi, df) < p:
        hi *= 2.0
    lo = 0.0
    for _ in range(200):
        mid = (lo + hi) / 2.0
        if t_cdf(mid, df) < p:
            lo = mid
        else:
            hi = mid
        if hi - lo < 1e-12 * max(1.0, hi):
            break
    return (lo + hi) / 2.0


# -- the weighted mean of a few rounds ---------------------------------------------
@dataclass(frozen=True)
class Mean:
    n: int  # rounds
    weight: float  # W = sum of weights
    mean: float  # weighted mean
    var: float  # s^2 per unit weight: sum w (y - mean)^2 / df (nan without degrees of freedom)
    df: int | None = None  # of s^2: n - 1 unless the variance was pooled from more data

    @property
    def dof(self) -> int:
        return self.n - 1 if self.df is None else self.df

    @property
    def se(self) -> float:
        """s / sqrt(W): the standard error of the mean (nan without degrees of freedom)."""
        return math.sqrt(self.var / self.weight) if self.dof >= 1 and self.weight > 0 else math.nan


def weighted_mean(values: np.ndarray, weights: np.ndarray) -> Mean:
    y, w = np.asarray(values), np.asarray(weights)
    n = int(y.size)
    if n == 0:
        return Mean(0, 0.0, math.nan, math.nan)
    big_w = float(w.sum())
    m = float((w * y).sum() / big_w)
    var = float((w * (y - m) ** 2).sum() / (n - 1)) if n >= 2 else math.nan
    return Mean(n, big_w, m, var)


def t_radius(m: Mean, confidence: float = 0.95) -> float:
    """Half-width of the Student-t interval (df = n - 1, or the pooled df); inf without
    degrees of freedom."""
    if m.dof < 1 or m.n < 1:
        return math.inf
    return t_quantile(1.0 - (1.0 - confidence) / 2.0, m.dof) * m.se


def mixture_factor(
    df: np.ndarray | int, weight: np.ndarray | float, alpha: float, prior: float = PRIOR
) -> np.ndarray:
    """q of the confidence sequence (its half-width is q * s / sqrt(W)), elementwise, for
    s^2 on `df` degrees of freedom (df = n - 1 for a pair's own rounds); inf where the
    sequence is still unbounded (df < 1, or U >= 1)."""
    nu = np.asarray(df)  # (integer df and weights give the same floats below)
    g = np.asarray(weight) * prior  # W tau^2
    with np.errstate(divide="ignore", invalid="ignore"):
        # 1 - (alpha^2 / (1 + g))^(1/(df + 1)), without cancellation when it is small
        one_minus = -np.expm1((2.0 * math.log(alpha) - np.log1p(g)) / (nu + 1.0))
        u = one_minus * (1.0 + g) / g
        q = np.sqrt(nu * u / (1.0 - u))
    out: np.ndarray = np.where((nu >= 1) & (u < 1.0), q, np.inf)  # (u is inf where g = 0)
    return out


def cs_radius(m: Mean, alpha: float, prior: float = PRIOR) -> float:
    """Half-width of the confidence sequence at the current round (inf if unbounded)."""
    if m.dof < 1 or m.n < 1:
        return math.inf
    q = float(mixture_factor(m.dof, m.weight, alpha, prior))
    if not math.isfinite(q):
        return math.inf
    return q * m.se  # 0 when the rounds agree (var 0)


def mixture_e_value(m: Mean, mu0: float, prior: float = PRIOR) -> float:
    """M_n(mu0): the mixture likelihood ratio against mean mu0 (its reciprocal bounds the
    chance, under mu0, that it ever gets this large)."""
    if m.dof < 1:
        return 1.0
    g = m.weight * prior
    rho = g / (1.0 + g)
    v = m.var * m.dof  # V (plus the pooled sum of squares)
    z = m.weight * (m.mean - mu0) ** 2  # W (m - mu0)^2 = T^2 s^2
    u = z / (v + z) if v + z > 0 else 0.0
    return float((1.0 + g) ** -0.5 * (1.0 - rho * u) ** (-(m.dof + 1) / 2.0))
