"""Reference computations for the race's tests, written out apart from halospec_tui.race."""

from __future__ import annotations

import math

import numpy as np

from halospec_tui.race import Figures

TAU2 = 8.0  # the mixture's prior variance (RaceConfig's default)


def q_ref(df: int, w: float, alpha: float, tau2: float = TAU2) -> float:
    """sqrt(df U / (1 - U)), U = (1 - (alpha^2 / (1 + W tau2))^(1 / (df + 1))) (1 + W tau2) / (W tau2)."""
    if df < 1:
        return math.inf
    g = w * tau2
    u = (1 - (alpha**2 / (1 + g)) ** (1 / (df + 1))) * (1 + g) / g
    return math.sqrt(df * u / (1 - u)) if u < 1 else math.inf


def fig(tps: float, steps: int = 4) -> Figures:
    """A block at `tps` tokens/s: tokens = tps over one second."""
    return Figures(tps, 1000.0, steps)


def wls(x: np.ndarray, steps: np.ndarray) -> tuple[np.ndarray, float, np.ndarray, int]:
    """The round + arm design written out, one row per observed block, weighted by its
    steps and solved by numpy's lstsq: (arm effects, sigma^2 per step, the arms' block
    of the normal matrix's pseudo-inverse, df = observations - rank)."""
    rounds, arms = x.shape
    r_idx, a_idx = np.nonzero(np.isfinite(x))
    design = np.zeros((r_idx.size, rounds + arms))
    design[np.arange(r_idx.size), r_idx] = 1.0
    design[np.arange(r_idx.size), rounds + a_idx] = 1.0
    root = np.sqrt(steps[r_idx, a_idx])
    a_mat, y = design * root[:, None], x[r_idx, a_idx] * root
    beta, _, rank, _ = np.linalg.lstsq(a_mat, y, rcond=None)
    df = int(r_idx.size - rank)
    sigma2 = float(((y - a_mat @ beta) ** 2).sum()) / df
    return beta[rounds:], sigma2, np.linalg.pinv(a_mat.T @ a_mat)[rounds:, rounds:], df
