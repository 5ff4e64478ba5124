"""A discounted-UCB bandit over K (Garivier and Moulines' D-UCB; cf. BanditSpec).

Each K in k_min..k_max is an arm, the reward of a step is its tokens per second
(normalised by the best mean so far). Old rewards fade by `discount` per step, so
the bandit tracks changing conditions; where a change of K is free, untried arms come
first, nearest K first. Where a change costs a reload, only plain decoding (K 0) is
tried for sure (once, when two reloads are a small share of the coming steps); an
untried K counts as `optimism` better than the best mean seen, and the bandit moves
only for an upper-bound gain larger than the reload's share of the coming `horizon`
steps.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

from halospec_tui.controllers.base import (
    ControllerView,
    ModelFree,
    Observation,
)


def ucb_scores(
    counts: Sequence[float], sums: Sequence[float], xi: float, scale: float
) -> list[float]:
    """Discounted UCB per arm: mean / scale + sqrt(xi * log(n) / count); untried: inf."""
    n = sum(counts)
    out = []
    for c, s in zip(counts, sums, strict=True):
        if c <= 1e-9:
            out.append(math.inf)
        else:
            out.append(s / c / scale + math.sqrt(xi * math.log(max(n, 1.0 + 1e-9)) / c))
    return out


class BanditController(ModelFree):
    name = "bandit"

    def __init__(
        self,
        k_start: int = 4,
        k_min: int = 0,
        k_max: int = 8,
        discount: float = 0.97,
        xi: float = 0.002,
        horizon: int = 20,
        optimism: float = 0.05,
        identify_share: float = 0.25,
    ) -> None:
        self._ks = list(range(k_min, k_max + 1))
        self._k = min(max(k_start, k_min), k_max)
        self._discount = discount
        self._xi = xi
        self._horizon = horizon
        self._n = [0.0] * len(self._ks)
        self._s = [0.0] * len(self._ks)
        self._step_ms = 0.0
        self._optimism = optimism
        self._identify_share = identify_share
        self.notes: list[str] = []

    def next_k(self, context: str = "") -> int:  # one K for every request class
        return self._k

    def observe(
        self, k: int, success: bool, latency_ms: int, obs: Observation | None = None
    ) -> None:
        g = self._discount
        self._n = [g * c for c in self._n]
        self._s = [g * s for s in self._s]
        self._note_reload(obs)
        if obs is not None and obs.steps_left is not None:
            self._horizon = max(obs.steps_left, 1)  # weigh a move over what the plan leaves
        if success and latency_ms > 0 and k in self._ks:
            tokens = obs.tokens if obs is not None and obs.tokens else 64
            i = self._ks.index(k)
            self._n[i] += 1.0
            self._s[i] += tokens * 1000.0 / latency_ms
            self._track(latency_ms)
            self._step_ms = latency_ms if not self._step_ms else 0.8 * self._step_ms + 0.2 * latency_ms
        elif not success and k in self._ks:
            self._n[self._ks.index(k)] += 1.0  # a failure earns nothing
        self._k = self._choose()

    def _means(self) -> list[float | None]:
        return [s / c if c > 1e-9 else None for c, s in zip(self._n, self._s, strict=True)]

    def _choose(self) -> int:
        untried = [k for k, c in zip(self._ks, self._n, strict=True) if c <= 1e-9]
        if untried and self._reload_ms == 0:
            return min(untried, key=lambda k: (abs(k - self._k), k))
        if 0 in untried:  # untimed (step_ms 0): a budget of 0, below any reload (> 0 here)
            budget = self._identify_share * self._horizon * self._step_ms
            if 2 * self._reload_ms <= budget:
                return 0
        means = [m or 0.0 for m in self._means()]
        scale = max(means) or 1.0
        scores = ucb_scores(self._n, self._s, self._xi, scale)
        if untried:  # where a change costs a reload: optimism, not certainty, of a gain
            n = sum(self._n)
            bonus = math.sqrt(self._xi * math.log(max(n, 1.0 + 1e-9)))
            scores = [1.0 + self._optimism + bonus if math.isinf(s) else s for s in scores]
        cur = self._ks.index(self._k)
        best = max(range(len(self._ks)), key=lambda i: (scores[i], -self._ks[i]))
        if best != cur and self._reload_ms > 0 and self._step_ms > 0:
            penalty = self._reload_ms / (self._horizon * self._step_ms)
            if scores[best] - scores[cur] <= penalty:
                return self._k
        return self._ks[best]

    def view(self) -> ControllerView | None:
        table = tuple((k, m) for k, m in zip(self._ks, self._means(), strict=True) if m is not None)
        return ControllerView("bandit", self._k, None, None, None, table, "measured tokens/s per K")
