"""Fewer arms to race: a model of the server fitted on three measured arms.

Before the race, a few interleaved rounds measure nospec (K = 0), a middle K and the
largest K. From them:
  * per-token acceptance a, from the largest K's accepted and drafted tokens per
    verification pass (a pass yields its accepted drafts plus one token, so
    passes = tokens - accepted; `controllers.model.acceptance_from`);
  * the cost of a pass with K drafts, t0 (1 + r K): t0 is nospec's time per token
    (one pass each), r from the largest K's time per pass in the same rounds;
  * tokens/s for every K: 1000 E(K) / (t0 (1 + r K)), E(K) = (1 - a^(K+1)) / (1 - a)
    (Leviathan, Kalman, Matias 2023).
Two parameters fitted on two arms reproduce those two exactly, so the check is the
middle K, which the fit never saw: the per-round log ratio measured / predicted
(each round's prediction from that round's own nospec and largest-K figures, so the
machine's moment cancels). The fit is trusted when its Student-t interval (95%)
reaches within the tolerance of 0; then the race holds nospec and the `keep` fastest
predicted K; otherwise it says so and races every K.

The race's guarantee then covers the arms raced; the screen adds an assumption (the
model, checked as above) for the arms it left out. The benchmark measures what that
costs (benchmarks/decision_quality.py).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np

from halospec_tui.confseq import t_radius, weighted_mean
from halospec_tui.controllers.model import acceptance_from, tokens_per_pass

SCREEN_KEEP = 3


@dataclass(frozen=True)
class Counts:
    """One arm's block in one round, with the server's draft counters."""

    tokens: float
    ms: float
    drafted: float = 0.0
    accepted: float = 0.0


@dataclass(frozen=True)
class Fit:
    acceptance: float  # a
    t0_ms: float  # time per target pass (nospec: per token)
    cost_ratio: float  # r: extra pass time per drafted token, over t0

    def tps(self, k: int) -> float:
        return (
            1000.0
            * tokens_per_pass(self.acceptance, k)
            / (self.t0_ms * (1.0 + self.cost_ratio * k))
        )


@dataclass(frozen=True)
class Screen:
    race: tuple[int, ...]  # the K to race (0 is nospec), in increasing order
    predicted: tuple[tuple[int, float], ...]  # (K, tokens/s) for every K
    fit_ok: bool
    why: str
    fit: Fit | None = None
    miss: float | None = None  # measured / predicted tokens/s of the check arm, minus 1


def fit(rounds: Sequence[Mapping[int, Counts]], k_max: int) -> Fit | None:
    """The model from nospec and the largest K, pooled over the rounds given."""
    zero = [r[0] for r in rounds if 0 in r]
    top = [r[k_max] for r in rounds if k_max in r]
    tok0, ms0 = sum(c.tokens for c in zero), sum(c.ms for c in zero)
    passes = sum(c.tokens - c.accepted for c in top)
    if tok0 <= 0 or ms0 <= 0 or passes <= 0 or k_max <= 0:
        return None
    a = acceptance_from(sum(c.accepted for c in top) / passes, sum(c.drafted for c in top) / passes)
    if a is None:
        return None
    t0 = ms0 / tok0
    per_pass = sum(c.ms for c in top) / passes
    return Fit(a, t0, max(0.0, (per_pass / t0 - 1.0) / k_max))


def screen(
    rounds: Sequence[Mapping[int, Counts]],
    ks: Sequence[int],
    tolerance: float,
    keep: int = SCREEN_KEEP,
    confidence: float = 0.95,
) -> Screen:
    """Which K to race, from rounds that measured K = 0, a middle K and the largest K."""
    every = tuple(sorted(set(ks)))
    measured = sorted({k for r in rounds for k in r})
    spec = [k for k in measured if k > 0]
    if 0 not in measured or len(spec) < 2:
        return Screen(every, (), False, "needs nospec and two speculating K measured")
    k_max, k_mid = spec[-1], spec[(len(spec) - 1) // 2]
    pooled = fit(rounds, k_max)
    if pooled is None:
        return Screen(every, (), False, "no draft counters to fit acceptance from")
    predicted = tuple((k, pooled.tps(k)) for k in every)
    miss = _check(rounds, k_max, k_mid, confidence)
    if miss is None:
        return Screen(every, predicted, False, f"K = {k_mid} has too few rounds to check the fit",
                      pooled)  # fmt: skip
    m, radius = miss
    band = math.log1p(tolerance)
    ok = abs(m) - radius <= band
    miss_pct = math.expm1(m)
    if not ok:
        why = (f"the model misses K = {k_mid} by {miss_pct * 100:+.1f}% (beyond "
               f"{tolerance * 100:g}% at {confidence * 100:g}%): racing every K")  # fmt: skip
        return Screen(every, predicted, False, why, pooled, miss_pct)
    ranked = sorted((k for k in every if k > 0), key=lambda k: -pooled.tps(k))[:keep]
    race = tuple(sorted({0, *ranked} & set(every)))
    why = (f"the model (a = {pooled.acceptance:.2f}, pass cost 1 + {pooled.cost_ratio:.3f} K) "
           f"checked on K = {k_mid}: measured/predicted {miss_pct * 100:+.1f}% "
           f"(+-{math.expm1(radius) * 100:.1f}% at {confidence * 100:g}%, within "
           f"{tolerance * 100:g}% not ruled out): racing K in {list(race)}")  # fmt: skip
    return Screen(race, predicted, True, why, pooled, miss_pct)


def _check(
    rounds: Sequence[Mapping[int, Counts]], k_max: int, k_mid: int, confidence: float
) -> tuple[float, float] | None:
    """Mean per-round log(measured / predicted) tokens/s of K = k_mid and its Student-t
    radius; each round predicted from its own nospec and largest-K figures."""
    logs = []
    for r in rounds:
        f = fit([r], k_max)  # None without nospec or the largest K in the round
        mid = r.get(k_mid)
        if f is None or mid is None or mid.ms <= 0 or mid.tokens <= 0:
            continue
        logs.append(math.log(mid.tokens * 1000.0 / mid.ms / f.tps(k_mid)))
    if len(logs) < 2:
        return None
    m = weighted_mean(np.array(logs), np.ones(len(logs)))
    return m.mean, t_radius(m, confidence)
