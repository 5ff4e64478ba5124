"""Pure statistics over measured steps, exactly as the original harness computes them.

Every function here takes plain values and returns plain values, so tests pin them
with exact numbers. Latencies are whole milliseconds; only successful steps count
toward latency figures.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from itertools import compress, pairwise

from halospec_tui.arms import arm_of, is_adaptive

CONVERGENCE_WINDOW = 5


def percentile_nearest_rank(values: Sequence[int], pct: float) -> int | None:
    """Nearest-rank percentile: index = ceil(pct/100 * n) - 1, clamped to [0, n-1]."""
    if not values:
        return None
    ordered = sorted(values)
    n = len(ordered)
    rank = math.ceil((pct / 100.0) * n)
    idx = min(max(rank - 1, 0), n - 1)
    return ordered[idx]


def mean(values: Sequence[float]) -> float | None:
    if not values:
        return None
    return sum(values) / len(values)


def population_stddev(values: Sequence[int]) -> float | None:
    """Population standard deviation; 0.0 for a single sample, None for none."""
    avg = mean(values)
    if avg is None:
        return None
    if len(values) < 2:
        return 0.0
    return math.sqrt(sum((x - avg) ** 2 for x in values) / len(values))


def throughput(tokens: Sequence[int], latencies_ms: Sequence[int]) -> float | None:
    """sum(tokens) / sum(latency in seconds); None without samples or with zero time."""
    if not latencies_ms:
        return None
    total_ms = sum(latencies_ms)
    if total_ms == 0:
        return None
    return sum(tokens) / (total_ms / 1000.0)


def slo_score(avg: float | None, p95: int | None, stddev: float | None) -> float | None:
    """SLO-aware score, lower is better: avg + 0.5 * p95 + 0.2 * stddev."""
    if avg is None or p95 is None or stddev is None:
        return None
    return avg + 0.5 * p95 + 0.2 * stddev


def k_changes(ks: Sequence[int]) -> int:
    """How many times the draft length differs from the step before."""
    return sum(1 for a, b in pairwise(ks) if a != b)


def convergence_step(ks: Sequence[int], window: int = CONVERGENCE_WINDOW) -> int | None:
    """First 1-based step that ends `window` equal draft lengths in a row."""
    if window <= 0 or len(ks) < window:
        return None
    for end in range(window - 1, len(ks)):
        run = ks[end + 1 - window : end + 1]
        if all(k == run[0] for k in run):
            return end + 1
    return None


@dataclass(frozen=True, slots=True)  # slots: a long report holds one per row
class StepSample:
    """What the summary needs of one measured step (a CSV row reduces to this)."""

    arm: str
    draft_length: int
    success: bool
    latency_ms: int
    tokens: int
    drafted: int | None = None
    accepted: int | None = None
    predicted_n: int | None = None
    predicted_ms: float | None = None
    reload_ms: int | None = None
    phase: str = "steady"
    round: int | None = None
    settle: bool = False
    actuator: str = ""
    timestamp: str = ""
    prompt_class: str = ""
    server_kind: str = ""  # what the server was (actuators.ServerInfo.kind), "" unknown
    condition: str = ""  # the step's load in a run with conditions ("": none)
    concurrency: int | None = None  # requests the step sent at once
    step_ms: int | None = None  # the step's wall time, first send to last answer


@dataclass(frozen=True)
class ArmSummary:
    arm: str
    steps: int
    successes: int
    failures: int
    success_rate: float
    avg: float | None
    median: int | None
    p95: int | None
    min: int | None
    max: int | None
    stddev: float | None
    throughput: float | None
    score: float | None
    k_changes: int
    convergence_step: int | None
    # Extras from server timings, when the server reports them.
    drafted: int | None = None
    accepted: int | None = None
    acceptance: float | None = None
    server_tps: float | None = None
    reloads: int = 0
    reload_ms: int = 0
    draft_lengths: tuple[int, ...] = field(default=())
    adapting_ms: int = 0  # reload time of the arm's own changes of K
    throughput_incl: float | None = None  # tokens / (latency + adapting reloads)

    @property
    def is_adaptive(self) -> bool:
        return is_adaptive(self.arm)

    def to_dict(self) -> dict[str, object]:
        """For the JSON summary, whose key for the arm is the CSV's word, "mode"."""
        d = asdict(self)
        d = {"mode": d.pop("arm"), **d}
        d["draft_lengths"] = list(self.draft_lengths)
        return d


def adapting_reload_ms(samples: Sequence[StepSample]) -> list[int]:
    """Per step of one arm: the reload time its own change of K cost (0 when its K is
    the arm's previous K: a reload then only undid another arm's K, an artefact of
    interleaving that running the arm alone would not pay)."""
    out = []
    prev: int | None = None
    for s in samples:
        changed = prev is not None and s.draft_length != prev
        out.append((s.reload_ms or 0) if changed else 0)
        prev = s.draft_length
    return out


def summarize_arm(mode: str, samples: Sequence[StepSample]) -> ArmSummary:
    """Summary of one mode's measured steps, the original's figures plus server extras."""
    ok = [s for s in samples if s.success]
    lat = [s.latency_ms for s in ok]
    toks = [s.tokens for s in ok]
    ks = [s.draft_length for s in samples]
    avg = mean(lat)
    p95 = percentile_nearest_rank(lat, 95.0)
    sd = population_stddev(lat)
    drafted_vals = [s.drafted for s in ok if s.drafted is not None]
    accepted_vals = [s.accepted for s in ok if s.accepted is not None]
    drafted = sum(drafted_vals) if drafted_vals else None
    accepted = sum(accepted_vals) if accepted_vals else None
    acceptance = accepted / drafted if drafted and accepted is not None else None
    timed = [(s.predicted_n, s.predicted_ms) for s in ok if s.predicted_n is not None and s.predicted_ms]
    server_tps = (
        sum(n for n, _ in timed) / (sum(ms for _, ms in timed) / 1000.0) if timed else None
    )
    reloads = [s.reload_ms for s in samples if s.reload_ms]
    # the arm's own reloads, of its successful steps only (0 when none succeeded)
    adapting = sum(compress(adapting_reload_ms(samples), (s.success for s in samples)))
    return ArmSummary(
        arm=mode,
        steps=len(samples),
        successes=len(ok),
        failures=len(samples) - len(ok),
        success_rate=(len(ok) / len(samples)) if samples else 0.0,
        avg=avg,
        median=percentile_nearest_rank(lat, 50.0),
        p95=p95,
        min=min(lat) if lat else None,
        max=max(lat) if lat else None,
        stddev=sd,
        throughput=throughput(toks, lat),
        score=slo_score(avg, p95, sd),
        k_changes=k_changes(ks),
        convergence_step=convergence_step(ks),
        drafted=drafted,
        accepted=accepted,
        acceptance=acceptance,
        server_tps=server_tps,
        reloads=len(reloads),
        reload_ms=sum(reloads),
        draft_lengths=tuple(ks),
        adapting_ms=adapting,
        throughput_incl=throughput(toks, [*lat, adapting]),  # None without a success
    )


def summarize(samples: Sequence[StepSample]) -> list[ArmSummary]:
    """One summary per mode, in the order modes first appear."""
    order: list[str] = []
    by_arm_views: dict[str, list[StepSample]] = {}
    for s in samples:
        if s.arm not in by_arm_views:
            order.append(s.arm)
            by_arm_views[s.arm] = []
        by_arm_views[s.arm].append(s)
    return [summarize_arm(m, by_arm_views[m]) for m in order]


def winner(summaries: Sequence[ArmSummary]) -> ArmSummary | None:
    """Lowest score wins; ties keep the earlier mode (strict <, as the original)."""
    best: ArmSummary | None = None
    for s in summaries:
        if s.score is None:
            continue
        if best is None or (best.score is not None and s.score < best.score):
            best = s
    return best


PHASES = ("steady", "load", "recovery")


CLASSES = ("structured", "open", "neutral")


def phase_means(samples: Sequence[StepSample], key: str = "phase") -> dict[str, dict[str, float]]:
    """Mean latency of successful steps, per mode and phase (modes in order of appearance);
    key="prompt_class": per mode and prompt class instead."""
    acc: dict[str, dict[str, list[int]]] = {}
    for s in samples:
        by_phase = acc.setdefault(s.arm, {})
        if s.success:
            by_phase.setdefault(getattr(s, key), []).append(s.latency_ms)
    return {m: {p: sum(v) / len(v) for p, v in ph.items()} for m, ph in acc.items()}


@dataclass(frozen=True)
class PhaseRegret:
    """An adaptive arm against the best fixed arm in one phase: regret = arm/best - 1."""

    phase: str
    best_fixed: str
    best_ms: float
    adaptive_ms: float
    arm: str = "adaptive"

    @property
    def regret(self) -> float | None:
        """None when the best arm's mean is 0 ms (only in a hand-made CSV): no ratio."""
        return self.adaptive_ms / self.best_ms - 1.0 if self.best_ms > 0 else None


def adaptive_regret(samples: Sequence[StepSample], key: str = "phase") -> list[PhaseRegret]:
    """Per adaptive arm (adaptive, adaptive:NAME, pmin:P) and phase where both exist:
    its mean latency vs the best fixed arm's (nospec counts as fixed, K = 0).

    Only meaningful when every arm ran the same load timeline (the default).
    """
    means = phase_means(samples, key)
    groups = PHASES if key == "phase" else CLASSES
    kinds = {name: (a.kind if (a := arm_of(name)) else None) for name in means}
    fixed_arms = {m: ph for m, ph in means.items() if kinds[m] in ("fixed", "nospec")}
    out = []
    for arm, own in means.items():
        if kinds[arm] not in ("adaptive", "pmin"):
            continue
        for phase in groups:
            fixed = [(m, ph[phase]) for m, ph in fixed_arms.items() if phase in ph]
            if phase not in own or not fixed:
                continue
            best_mode, best_ms = min(fixed, key=lambda x: x[1])
            out.append(PhaseRegret(phase, best_mode, best_ms, own[phase], arm))
    return out
