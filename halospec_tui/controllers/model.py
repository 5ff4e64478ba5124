"""A controller that models the server: acceptance and cost per pass, then the best K.

From the server's own figures for each step (drafted and accepted tokens, decode time)
it keeps discounted estimates, so it follows a shift within a few steps:
- per-token acceptance a, solved for each step from its accepted tokens per
  verification pass (a pass with d drafts accepts a (1 - a^d) / (1 - a) of them on
  average), then averaged over steps with weights that fade by `discount` per step
  (one vote a step: a step of poorly drafted text has more passes but no more say);
- the cost of a pass with d drafted tokens, t0 + t1 d (target step, plus draft and
  verification work per drafted token): t1 / t0 from pairs of neighbouring steps with
  different drafted counts (so the machine's load of the moment cancels), t0 recent.
It then picks the K (0: no speculation) that maximises expected tokens per second,
E(K) / (t0 + t1 K) with E(K) = (1 - a^(K+1)) / (1 - a) (Leviathan et al., 2023). A
uniform slow-down of the machine scales t0 and t1 alike and leaves that K where it
was. When a change of K costs a reload, it changes only when the expected saving over
the coming steps exceeds the measured reload time; small gains are ignored
(hysteresis). Without server timings it falls back to a bandit on latency.

Requests of different classes (the workload's prompt classes: structured text is
drafted well, open prose poorly) get their own acceptance estimate and their own K
when changing K is free (per-request K): the class of a request is known before it
is sent, so a class that comes back gets its K at once instead of after a few steps
of catching up. The cost of a pass is the machine's, shared by all classes. Where a
change of K costs a reload, one K serves every class (switching per request would
reload on every class change).
"""

from __future__ import annotations

import math
import statistics
from collections import deque
from dataclasses import dataclass

from halospec_tui.controllers.bandit import BanditController
from halospec_tui.controllers.base import (
    ControllerView,
    ModelFree,
    Observation,
)

A_MAX = 0.995
RHO_PRIOR = 2.0  # steps' worth of "the model is right" in each K's measured/model ratio
R_MAX = 8.0  # a drafted token may cost several target steps on a tiny, fast target


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


def ratio_from_pair(x0: float, y0: float, x1: float, y1: float) -> float | None:
    """r from two passes' costs y = t0 (1 + r x) at the same t0 (neighbouring steps, so
    the machine's load is common to both and cancels): r = (q - 1) / (x1 - q x0)."""
    if y0 <= 0 or y1 <= 0:
        return None
    q = y1 / y0
    den = x1 - q * x0
    if abs(den) < 1e-9:
        return None
    return (q - 1.0) / den


class CostFit:
    """The cost of a pass, t0 (1 + r d) for d drafted tokens.

    r, the cost of a drafted token relative to a target step, belongs to the model pair
    and the hardware, not to the moment: it is the median of the estimates from pairs of
    neighbouring steps whose drafted counts differ (the load of the moment cancels in
    each pair), with the prior counted twice, so one noisy pair cannot swing it. t0
    follows the machine (contention scales every cost alike): a short-memory mean of
    each pass's cost divided by (1 + r d).
    """

    def __init__(self, discount: float, prior_ratio: float, pairs: int = 15) -> None:
        self.discount = discount
        self.prior_ratio = prior_ratio
        self._pairs: deque[float] = deque(maxlen=pairs)
        self._last: tuple[float, float] | None = None
        self._xs: deque[float] = deque(maxlen=pairs)
        self._t0_sum = self._t0_w = 0.0

    def add(self, x: float, y: float, w: float) -> None:
        if self._last is not None and abs(x - self._last[0]) >= 0.75:
            r = ratio_from_pair(self._last[0], self._last[1], x, y)
            if r is not None and -0.5 <= r <= 2.0:
                self._pairs.append(r)
        self._last = (x, y)
        self._xs.append(x)
        r = self.ratio()
        d = self.discount
        self._t0_sum = d * self._t0_sum + w * y / (1.0 + r * x)
        self._t0_w = d * self._t0_w + w

    def spread(self) -> float:
        """How much the recent drafted counts varied (0 until K has changed)."""
        if len(self._xs) < 2:
            return 0.0
        m = sum(self._xs) / len(self._xs)
        return sum((x - m) ** 2 for x in self._xs) / len(self._xs)

    def ratio(self) -> float:
        """r = t1 / t0: the median of the pair estimates and the prior (twice), 0.02..1."""
        mid = statistics.median([*self._pairs, self.prior_ratio, self.prior_ratio])
        return min(max(mid, 0.02), 1.0)

    def fit(self) -> tuple[float, float] | None:
        """(t0, t1) in ms, or None before the first step."""
        if self._t0_w <= 0:
            return None
        t0 = self._t0_sum / self._t0_w
        return t0, self.ratio() * t0


@dataclass
class Seen:
    """What was measured at one K: drafted per pass and ms per pass (discounted sums),
    measured over modelled tokens/s, and the step it was last measured at."""

    weight: float = 0.0
    x_sum: float = 0.0
    y_sum: float = 0.0
    rho_sum: float = 0.0  # measured tokens/s over the model's, at the time
    rho_weight: float = 0.0
    last: int = 0

    @property
    def rho(self) -> float:
        """Measured over modelled tokens/s, shrunk towards 1 by `RHO_PRIOR` steps: two
        steps of a busy moment (15-20% apart on a loaded machine) must not make a K
        look 20% worse than the model says for the rest of the arm."""
        return (self.rho_sum + RHO_PRIOR) / (self.rho_weight + RHO_PRIOR)


class ModelController(ModelFree):
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
        explore_steps: int = 2,
        identify_share: float = 0.25,
        identify_steps: int = 1,
    ) -> None:
        self._k = k_start
        self._k_max = k_max
        self._discount = discount
        self._horizon = horizon
        self._hysteresis = hysteresis
        self._probe_every = probe_every
        self._a_sum = self._a_weight = 0.0  # discounted, per-step acceptance by passes
        self._by_class: dict[str, list[float]] = {}  # class -> [acceptance sum, weight]
        self._k_by_class: dict[str, int] = {}
        self._cost = CostFit(discount, prior_ratio)
        self._tokens = 64.0
        self._steps = 0
        self._probe: int | None = None  # a step -1 / +1 from the K chosen, or None
        self._fallback: BanditController | None = None
        self.notes: list[str] = []  # log lines the runner passes on
        # Where a change of K costs a reload (see `_decide_with_reloads`):
        self._explore_steps = explore_steps
        self._identify_share = identify_share
        self._identify_steps = identify_steps
        self._left: int | None = None  # measured steps the arm has left, when the plan says
        self._seen: dict[int, Seen] = {}  # K -> what was measured at it
        self._dwell = 0  # steps left at a K just moved to before deciding again
        self._held: str  # why the controller holds a K it would rather leave
        self._held_key: tuple[str | bool, int] | None  # (reason, K) last said in the log
        self._forget_held()
        self._step_ms = 0.0  # recent decode time of a request, ms
        self._recent: deque[tuple[float, float]] = deque(maxlen=4)  # (drafted, ms) per pass
        self._prev: tuple[int, float, float] | None = None  # (K, drafted, ms per pass) last
        self._transits: deque[float] = deque(maxlen=8)  # t1 / t0 across each change of K
        self._pace_var = 0.0  # mean square of log pace changes between same-K steps
        self._pace_n = 0

    # -- the protocol (calibrate, ema_ms, thresholds: ModelFree) ---------------------
    def next_k(self, context: str = "") -> int:
        if self._fallback is not None:
            return self._fallback.next_k()  # one K for every class
        k = self._k_by_class.get(context, self._k) if self._per_class() else self._k
        if self._probe is not None:
            return min(max(k + self._probe, 0), self._k_max)
        return k

    def observe(
        self, k: int, success: bool, latency_ms: int, obs: Observation | None = None
    ) -> None:
        if not success:
            return
        self._track(latency_ms)
        self._note_reload(obs)
        if obs is not None and obs.steps_left is not None:
            self._left = obs.steps_left
        if obs is not None and not obs.tokens_reported:
            return  # passes = tokens - accepted needs the server's own token count
        if (
            self._fallback is not None
            or obs is None
            or obs.predicted_ms is None
            or obs.tokens <= 0
            or (k > 0 and obs.drafted is None)
        ):  # no timings (or no drafting counts where it drafted): the bandit decides
            self._to_fallback(k, latency_ms, obs)
            return
        self._steps += 1
        self._tokens = float(obs.tokens)
        drafted = obs.drafted or 0
        accepted = obs.accepted or 0
        passes = max(obs.tokens - accepted, 1)
        g = self._discount
        self._a_sum, self._a_weight = g * self._a_sum, g * self._a_weight
        a_step = acceptance_from(accepted / passes, drafted / passes)
        if a_step is not None:  # a step that drafted: its own acceptance, one vote a step
            self._a_sum += a_step
            self._a_weight += 1.0
            if obs.context:
                acc = self._by_class.setdefault(obs.context, [0.0, 0.0])
                acc[0], acc[1] = g * acc[0] + a_step, g * acc[1] + 1.0
        self._cost.add(drafted / passes, obs.predicted_ms / passes, min(passes, 64))
        self._note_seen(k, drafted / passes, obs.predicted_ms / passes, obs.predicted_ms, obs.tokens)
        self._decide()

    def _to_fallback(self, k: int, latency_ms: int, obs: Observation | None) -> None:
        if self._fallback is None:
            self.notes.append(
                "model controller: the server reports no drafting timings: "
                "choosing K by measured tokens/s instead (bandit)"
            )
            self._fallback = BanditController(k_start=self._k, k_max=self._k_max)
        self._fallback.observe(k, True, latency_ms, obs)

    # -- the model ------------------------------------------------------------------
    def estimates(self) -> tuple[float, float, float] | None:
        """(acceptance, t0 ms, t1 ms) or None before the first drafting step."""
        a = self._a_sum / self._a_weight if self._a_weight > 1e-9 else None
        fit = self._cost.fit()
        if a is None or fit is None:
            return None
        return a, fit[0], fit[1]

    def _per_class(self) -> bool:
        """A K per request class only where changing K is free."""
        return self._reload_ms == 0

    def _better_k(self, a: float, t0: float, t1: float, k: int) -> int:
        """The best K for acceptance a, or k itself when the gain is too small to pay
        (hysteresis) or would not repay a reload over the coming steps."""
        cand = best_k(a, t0, t1, self._k_max)
        if cand == k:
            return k
        now, new = expected_tps(a, t0, t1, k), expected_tps(a, t0, t1, cand)  # both > 0
        gain = new / now - 1.0
        saving_ms = self._tokens * 1000.0 * (1.0 / now - 1.0 / new)  # per request
        if gain >= self._hysteresis and saving_ms * self._horizon > self._reload_ms:
            return cand
        return k

    def _decide(self) -> None:
        self._probe = None
        if self._reload_ms > 0:
            self._decide_with_reloads()
            return
        est = self.estimates()
        if est is None:
            return
        a, t0, t1 = est
        for cls, (a_sum, weight) in self._by_class.items():  # weight >= 1: one vote at least
            k = self._k_by_class.get(cls, self._k)
            self._k_by_class[cls] = self._better_k(a_sum / weight, t0, t1, k)
        new_k = self._better_k(a, t0, t1, self._k)
        if new_k != self._k:
            self._k = new_k
            return
        # Probe a neighbour now and then while the cost line is not yet identified,
        # but only where a change of K is free.
        unidentified = self._cost.spread() < 0.25
        if unidentified and self._reload_ms == 0 and self._steps % self._probe_every == 0:
            step = 1 if self._steps % (2 * self._probe_every) else -1  # odd multiples: up
            if 0 <= self._k + step <= self._k_max:
                self._probe = step

    # -- where a change of K costs a reload ----------------------------------------------
    def _note_seen(
        self, k: int, drafted_per_pass: float, ms_per_pass: float, ms: float, tokens: int
    ) -> None:
        """What this K decoded at: tokens/s (from the server's decode time `ms`) and the
        cost of its passes, fading with `discount` at each of its own steps."""
        tps = tokens * 1000.0 / ms if ms > 0 else 0.0
        self._step_ms = ms if not self._step_ms else 0.7 * self._step_ms + 0.3 * ms
        self._recent.append((drafted_per_pass, ms_per_pass))
        if self._prev is not None and self._prev[0] != k:  # the steps either side of a reload
            r = ratio_from_pair(self._prev[1], self._prev[2], drafted_per_pass, ms_per_pass)
            if r is not None and -0.5 <= r <= R_MAX:
                self._transits.append(min(max(r, 0.0), R_MAX))
        elif self._prev is not None and self._prev[2] > 0 and ms_per_pass > 0:
            self._note_pace(self._prev[1], self._prev[2], drafted_per_pass, ms_per_pass)
        self._prev = (k, drafted_per_pass, ms_per_pass)
        s = self._seen.setdefault(k, Seen())
        g = self._discount
        s.weight = g * s.weight + 1.0
        s.x_sum, s.y_sum = g * s.x_sum + drafted_per_pass, g * s.y_sum + ms_per_pass
        model = self._model()
        if model is not None and tps > 0:  # measured over the model of the moment
            s.rho_sum, s.rho_weight = (
                g * s.rho_sum + tps / expected_tps(*model, k),
                g * s.rho_weight + 1.0,
            )
        s.last = self._steps

    def _note_pace(self, x0: float, y0: float, x1: float, y1: float) -> None:
        """The machine's pace changes between two steps at the same K: the target-step
        cost of each (pass cost over 1 + r d), as a log ratio."""
        r = self._cost.ratio()
        d = math.log((y1 / (1.0 + r * x1)) / (y0 / (1.0 + r * x0)))
        self._pace_n += 1
        w = max(1.0 / self._pace_n, 0.2)  # a mean at first, then recent
        self._pace_var += w * (d * d - self._pace_var)

    def noise(self) -> float:
        """The per-step relative noise of the machine's pace (its SD), 0 until measured:
        a change of log pace between two steps has twice a step's variance."""
        return math.sqrt(self._pace_var / 2.0) if self._pace_n >= 2 else 0.0

    def _ratio_with_reloads(self) -> float | None:
        """t1 / t0 where K changes only by reloads: the median over the changes of K seen
        (the step before a reload and the one after it share the machine's moment, so
        its load cancels, as in `CostFit`); before any, from the visits."""
        if self._transits:
            return statistics.median(self._transits)
        return self._ratio_from_visits()

    def _ratio_from_visits(self) -> float | None:
        """t1 / t0 from the mean pass cost at K = 0 and at each drafting K visited,
        weighted by how far each drafts. Visits made at different moments carry the
        machine's load of each moment, so this is the fallback of `_ratio_with_reloads`."""
        zero = self._seen.get(0)
        if zero is None:  # a K seen has a weight of 1 at least
            return None
        y0 = zero.y_sum / zero.weight
        num = den = 0.0
        for k, s in self._seen.items():
            x = s.x_sum / s.weight
            if k > 0 and x >= 0.5 and y0 > 0:
                num += (s.y_sum / s.weight / y0 - 1.0) * x
                den += x * x
        return min(max(num / den, 0.0), R_MAX) if den > 0 else None

    def _model(self) -> tuple[float, float, float] | None:
        """(acceptance, t0 ms, t1 ms) as decisions with reloads use them: the cost ratio
        across the reloads (once K 0 was measured), t0 from the last few passes with it."""
        est = self.estimates()
        r = self._ratio_with_reloads() if 0 in self._seen else None
        if est is None or r is None or not self._recent:
            return est
        t0 = sum(y / (1.0 + r * x) for x, y in self._recent) / len(self._recent)
        return est[0], t0, r * t0

    def _scores(self, a: float, t0: float, t1: float) -> dict[int, float]:
        """Expected decode tokens/s per K: the model's (which follows the text's
        acceptance and the machine's pace), times what was measured at the K over what
        the model said at the time (where it was visited lately; else the current K's)."""
        fresh = {k: s for k, s in self._seen.items()
                 if self._steps - s.last <= 3 * self._horizon and s.rho_weight > 0}  # fmt: skip
        cur = fresh[self._k].rho if self._k in fresh else 1.0
        return {
            k: expected_tps(a, t0, t1, k) * (fresh[k].rho if k in fresh else cur)
            for k in range(self._k_max + 1)
        }

    def _decide_with_reloads(self) -> None:
        """One K for every class. Measure plain decoding (K = 0) once, early, when two
        reloads are a small share of the coming steps; then move only where the expected
        saving over the coming steps repays the reload, and say so when it does not."""
        if self._dwell > 0:
            self._dwell -= 1
            return
        est = self._model()
        if est is None:
            return
        a, t0, t1 = est
        ahead = self._ahead()
        if 0 not in self._seen:
            step = max(self._ema or 0.0, self._step_ms)  # a request's whole time
            if 2 * self._reload_ms <= self._identify_share * ahead * step:
                self._move(0, "measuring plain decoding (K = 0) once, to know what drafting gains",
                           self._identify_steps)  # fmt: skip
                return
            if not self._transits:  # the cost of drafting is the prior's alone: no move on it
                held = (
                    f"plain decoding not measured: two reloads ({2 * self._reload_ms:.0f} ms) "
                    f"exceed a quarter of the {ahead} steps left"
                )
                if self._held_key != ("unmeasured", self._k):
                    self.notes.append(f"model controller: {held}; holding K {self._k}")
                    self._held_key = ("unmeasured", self._k)
                self._held = held
                return
        scores = self._scores(a, t0, t1)
        best = max(scores, key=lambda k: (scores[k], -k))
        now = scores[self._k]
        if best == self._k or now <= 0:
            self._held = ""
            return
        gain = scores[best] / now - 1.0
        saving_ms = self._tokens * 1000.0 * (1.0 / now - 1.0 / scores[best])
        # A reload is paid for a gain the machine's own step-to-step noise could not
        # fake: the scores rest on a few steps at each K, each off by about `noise`.
        noise = self.noise()
        if gain >= max(self._hysteresis, noise) and saving_ms * ahead > self._reload_ms:
            self._move(best, f"K {best} expected {gain * 100:.1f}% faster than K {self._k}")
            return
        noisy = self._hysteresis <= gain < noise
        if noisy:
            held = (
                f"K {best} expected {gain * 100:.1f}% faster than K {self._k}, within the "
                f"machine's step-to-step noise ({noise * 100:.1f}%)"
            )
        else:
            held = (
                f"switching does not pay here: reload {self._reload_ms:.0f} ms, expected gain "
                f"{max(gain, 0.0) * 100:.1f}% (K {best} over K {self._k})"
            )
        # said once for each reason and K: the figures move with every step
        if gain >= self._hysteresis and (noisy, best) != self._held_key:
            self.notes.append(f"model controller: {held}; holding K {self._k}")
            self._held_key = (noisy, best)
        self._held = held

    def _ahead(self) -> int:
        """The steps a move is weighed over: those the plan leaves the arm (when the
        runner says), else `horizon`."""
        return self._left if self._left is not None else self._horizon

    def _move(self, k: int, why: str, dwell: int | None = None) -> None:
        self.notes.append(f"model controller: {why}: K {self._k} -> {k} (a reload)")
        self._k = k
        self._dwell = (self._explore_steps if dwell is None else dwell) - 1
        self._forget_held()

    def _forget_held(self) -> None:
        """No K held against the controller's wish, and no reason said for one yet."""
        self._held, self._held_key = "", None

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
        note = self._held
        model = self._model()
        if self._reload_ms > 0 and model is not None:
            a, t0, t1 = model
            table = tuple(sorted(self._scores(a, t0, t1).items()))
        if self._per_class() and self._k_by_class:
            note = "K by class: " + ", ".join(
                f"{cls} {k}" for cls, k in sorted(self._k_by_class.items())
            )
        return ControllerView("model", self._k, a, t0, t1, table, note)
