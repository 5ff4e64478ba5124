"""A controller that models the server: acceptance and cost per pass, then the best K.

From the server's own figures for each step (drafted and accepted tokens, decode time)
it keeps discounted estimates, so it follows a shift within a few steps:
- per-token acceptance a, solved for each step from its accepted tokens per
  verification pass (a pass with d drafts accepts a (1 - a^d) / (1 - a) of them on
  average), then averaged with weights that fade by `discount` per step;
- the cost of a pass with d drafted tokens, t0 + t1 d (target step, plus draft and
  verification work per drafted token), fitted by weighted least squares.
It then picks the K (0: no speculation) that maximises expected tokens per second,
E(K) / (t0 + t1 K) with E(K) = (1 - a^(K+1)) / (1 - a) (Leviathan et al., 2023). A
uniform slow-down of the machine scales t0 and t1 alike and leaves that K where it
was. When a change of K costs a reload, it changes only when the expected saving over
the coming steps exceeds the measured reload time; small gains are ignored
(hysteresis). Without server timings it falls back to a bandit on latency.
"""

from __future__ import annotations

from collections.abc import Sequence

from halospec_tui.controllers.bandit import BanditController
from halospec_tui.controllers.base import (
    DEFAULT_HIGH_MS,
    DEFAULT_LOW_MS,
    ControllerView,
    Observation,
    Thresholds,
)

A_MAX = 0.995


def tokens_per_pass(a: float, k: int) -> float:
    """Expected tokens per verification pass with K drafts: (1 - a^(K+1)) / (1 - a)."""
    if a >= 1.0:
        return float(k + 1)
    return (1.0 - a ** (k + 1)) / (1.0 - a)


def accepted_per_pass(a: float, d: float) -> float:
    """Expected accepted drafts per pass with d drafts (d may be fractional: a mean)."""
    if d <= 0:
        return 0.0
    if a >= 1.0:
        return d
    return float(a * (1.0 - a**d) / (1.0 - a))


def acceptance_from(accepted_per: float, drafted_per: float) -> float | None:
    """Per-token acceptance a that explains `accepted_per` accepted of `drafted_per`
    drafted tokens per pass (bisection; accepted_per_pass grows with a)."""
    if drafted_per <= 0:
        return None
    if accepted_per <= 0:
        return 0.0
    if accepted_per >= accepted_per_pass(A_MAX, drafted_per):
        return A_MAX
    lo, hi = 0.0, A_MAX
    for _ in range(60):
        mid = (lo + hi) / 2
        if accepted_per_pass(mid, drafted_per) < accepted_per:
            lo = mid
        else:
            hi = mid
    return (lo + hi) / 2


def expected_tps(a: float, t0_ms: float, t1_ms: float, k: int) -> float:
    """Tokens per second with K drafts, from acceptance and the per-pass cost model."""
    return 1000.0 * tokens_per_pass(a, k) / max(t0_ms + t1_ms * k, 1e-9)


def best_k(a: float, t0_ms: float, t1_ms: float, k_max: int, k_min: int = 0) -> int:
    """argmax over integers (no closed form); ties keep the smaller K."""
    ks = range(k_min, k_max + 1)
    return max(ks, key=lambda k: (expected_tps(a, t0_ms, t1_ms, k), -k))


class CostFit:
    """Discounted weighted least squares of ms per pass on drafted tokens per pass."""

    def __init__(self, discount: float, prior_ratio: float) -> None:
        self.discount = discount
        self.prior_ratio = prior_ratio  # t1 / t0 until the data can tell
        self.sw = self.sx = self.sy = self.sxx = self.sxy = 0.0

    def add(self, x: float, y: float, w: float) -> None:
        g = self.discount
        self.sw = g * self.sw + w
        self.sx = g * self.sx + w * x
        self.sy = g * self.sy + w * y
        self.sxx = g * self.sxx + w * x * x
        self.sxy = g * self.sxy + w * x * y

    def fit(self) -> tuple[float, float] | None:
        """(t0, t1): the line when the drafted counts spread enough, else the prior ratio."""
        if self.sw <= 0:
            return None
        mx, my = self.sx / self.sw, self.sy / self.sw
        var = self.sxx / self.sw - mx * mx
        if var >= 0.25:
            t1 = (self.sxy / self.sw - mx * my) / var
            t0 = my - t1 * mx
            if t0 > 0 and t1 >= 0:
                self.prior_ratio = t1 / t0
                return t0, t1
        t0 = my / (1.0 + self.prior_ratio * mx)
        return t0, self.prior_ratio * t0


class ModelController:
    name = "model"

    def __init__(
        self,
        k_start: int = 4,
        k_max: int = 8,
        discount: float = 0.7,
        horizon: int = 20,
        hysteresis: float = 0.03,
        prior_ratio: float = 0.2,
        probe_every: int = 6,
    ) -> None:
        self._k = k_start
        self._k_max = k_max
        self._discount = discount
        self._horizon = horizon
        self._hysteresis = hysteresis
        self._probe_every = probe_every
        self._a_sum = self._a_weight = 0.0  # discounted, per-step acceptance by passes
        self._cost = CostFit(discount, prior_ratio)
        self._reload_ms = 0.0
        self._tokens = 64.0
        self._steps = 0
        self._probe: int | None = None
        self._fallback: BanditController | None = None
        self._ema: float | None = None
        self.notes: list[str] = []  # log lines the runner passes on

    # -- the protocol --------------------------------------------------------------
    def calibrate(self, warmup_latencies_ms: Sequence[int]) -> None:
        pass

    @property
    def ema_ms(self) -> float | None:
        return self._ema

    @property
    def thresholds(self) -> Thresholds:
        return Thresholds(DEFAULT_LOW_MS, DEFAULT_HIGH_MS)

    def next_k(self) -> int:
        if self._fallback is not None:
            return self._fallback.next_k()
        return self._probe if self._probe is not None else self._k

    def observe(
        self, k: int, success: bool, latency_ms: int, obs: Observation | None = None
    ) -> None:
        if not success:
            return
        self._ema = latency_ms if self._ema is None else 0.4 * latency_ms + 0.6 * self._ema
        if obs is not None and obs.reload_ms:
            self._reload_ms = max(self._reload_ms * 0.5, float(obs.reload_ms))
        timed = obs is not None and obs.predicted_ms is not None and obs.tokens > 0
        if k > 0 and timed and obs is not None and obs.drafted is None:
            timed = False
        if not timed or self._fallback is not None:
            self._to_fallback(k, success, latency_ms, obs)
            return
        assert obs is not None and obs.predicted_ms is not None
        self._steps += 1
        self._tokens = float(obs.tokens)
        drafted = obs.drafted or 0
        accepted = obs.accepted or 0
        passes = max(obs.tokens - accepted, 1)
        g = self._discount
        self._a_sum, self._a_weight = g * self._a_sum, g * self._a_weight
        a_step = acceptance_from(accepted / passes, drafted / passes)
        if a_step is not None:  # a step that drafted: its own acceptance, weighed by passes
            w = min(passes, 64) / 64
            self._a_sum += w * a_step
            self._a_weight += w
        self._cost.add(drafted / passes, obs.predicted_ms / passes, passes)
        self._decide()

    def _to_fallback(self, k: int, success: bool, latency_ms: int, obs: Observation | None) -> None:
        if self._fallback is None:
            self.notes.append(
                "model controller: the server reports no drafting timings: "
                "choosing K by measured tokens/s instead (bandit)"
            )
            self._fallback = BanditController(k_start=self._k, k_max=self._k_max)
        self._fallback.observe(k, success, latency_ms, obs)

    # -- the model ------------------------------------------------------------------
    def estimates(self) -> tuple[float, float, float] | None:
        """(acceptance, t0 ms, t1 ms) or None before the first drafting step."""
        a = self._a_sum / self._a_weight if self._a_weight > 1e-9 else None
        fit = self._cost.fit()
        if a is None or fit is None:
            return None
        return a, fit[0], fit[1]

    def _decide(self) -> None:
        self._probe = None
        est = self.estimates()
        if est is None:
            return
        a, t0, t1 = est
        cand = best_k(a, t0, t1, self._k_max)
        if cand != self._k:
            now, new = expected_tps(a, t0, t1, self._k), expected_tps(a, t0, t1, cand)
            gain = new / now - 1.0 if now > 0 else 1.0
            saving_ms = self._tokens * 1000.0 * (1.0 / now - 1.0 / new) if now > 0 else 0.0
            if gain >= self._hysteresis and saving_ms * self._horizon > self._reload_ms:
                self._k = cand
                return
        # Probe a neighbour now and then while the cost line is not yet identified,
        # but only where a change of K is free.
        unidentified = self._cost.sxx / self._cost.sw - (self._cost.sx / self._cost.sw) ** 2 < 0.25
        if unidentified and self._reload_ms == 0 and self._steps % self._probe_every == 0:
            step = 1 if (self._steps // self._probe_every) % 2 else -1
            probe = min(max(self._k + step, 0), self._k_max)
            self._probe = probe if probe != self._k else None

    def view(self) -> ControllerView | None:
        if self._fallback is not None:
            v = self._fallback.view()
            return v and ControllerView(
                "model (fallback: bandit)", v.k, None, None, None, v.expected_tps, v.note
            )
        est = self.estimates()
        if est is None:
            return ControllerView("model", self._k, None, None, None, (), "no drafting seen yet")
        a, t0, t1 = est
        table = tuple((k, expected_tps(a, t0, t1, k)) for k in range(self._k_max + 1))
        return ControllerView("model", self._k, a, t0, t1, table)
