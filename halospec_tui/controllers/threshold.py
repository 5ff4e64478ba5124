"""The original HaloSpec controller and its pure rules, exact to the millisecond."""

from __future__ import annotations

import math
from collections.abc import Sequence

from halospec_tui.controllers.base import (
    DEFAULT_HIGH_MS,
    DEFAULT_LOW_MS,
    ControllerView,
    Observation,
    Thresholds,
)
from halospec_tui.stats import percentile_nearest_rank

K_START = 4
K_MIN = 1
K_MAX = 8
EMA_ALPHA = 0.4


def thresholds_from_warmup(latencies_ms: Sequence[int]) -> Thresholds:
    """low = floor(0.85 * p50), high = floor(1.05 * p95); 9000/22000 ms with no warmup."""
    if not latencies_ms:
        return Thresholds(DEFAULT_LOW_MS, DEFAULT_HIGH_MS)
    p50 = percentile_nearest_rank(latencies_ms, 50.0)
    p95 = percentile_nearest_rank(latencies_ms, 95.0)
    assert p50 is not None and p95 is not None
    return Thresholds(
        low_ms=math.floor(p50 * 0.85),
        high_ms=math.floor(p95 * 1.05),
        p50_ms=p50,
        p95_ms=p95,
    )


def ema_update(prev: float | None, sample: float, alpha: float = EMA_ALPHA) -> float:
    """EMA seeded with the first sample."""
    if prev is None:
        return float(sample)
    return alpha * sample + (1.0 - alpha) * prev


def threshold_rule(
    ema_ms: int | None, current: int, low_ms: int, high_ms: int, k_max: int = K_MAX
) -> int:
    """The original rule: below low -> K+1; above high -> K-2; else K+1 while K < 6."""
    if ema_ms is None:
        return current
    if ema_ms < low_ms:
        return min(current + 1, k_max)
    if ema_ms > high_ms:
        return min(max(current - 2, K_MIN), k_max)
    if current < 6:
        return min(max(current + 1, K_MIN), k_max)
    return current


class ThresholdController:
    """HaloSpec's adaptive controller.

    Before each step K is decided from the EMA after the previous step (truncated to
    whole ms) and the K of that step; a failed step sets the base K to 1 and leaves
    the EMA alone.
    """

    name = "threshold"

    def __init__(self, k_start: int = K_START, k_max: int = K_MAX, alpha: float = EMA_ALPHA):
        self._k = k_start
        self._k_max = k_max
        self._alpha = alpha
        self._ema: float | None = None
        self._thr = Thresholds(DEFAULT_LOW_MS, DEFAULT_HIGH_MS)
        self.notes: list[str] = []  # the original rule has nothing to say

    def calibrate(self, warmup_latencies_ms: Sequence[int]) -> None:
        self._thr = thresholds_from_warmup(warmup_latencies_ms)

    def next_k(self, context: str = "") -> int:  # one K for every request class
        ema = None if self._ema is None else int(self._ema)
        return threshold_rule(ema, self._k, self._thr.low_ms, self._thr.high_ms, self._k_max)

    def observe(
        self, k: int, success: bool, latency_ms: int, obs: Observation | None = None
    ) -> None:
        if success:
            self._ema = ema_update(self._ema, latency_ms, self._alpha)
            self._k = k
        else:
            self._k = K_MIN

    @property
    def ema_ms(self) -> float | None:
        return self._ema

    @property
    def thresholds(self) -> Thresholds:
        return self._thr

    def view(self) -> ControllerView | None:
        return None


