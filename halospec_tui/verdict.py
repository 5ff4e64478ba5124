"""Decisive verdicts: bootstrap confidence intervals, ties, elimination, a recommendation.

Pure functions over `StepSample`s, the same for a live run and for a CSV read later
(`report`): rows in, verdict out. The figure of merit is client-side tokens per second
(sum of tokens / sum of latency), the speed a user of the server sees.

Confidence intervals are seeded percentile bootstraps. Resampling is stratified by
round: each round's block of an arm is resampled within itself, so every replicate
keeps the round (and so the load phase) composition the schedule gave every arm.
When two arms are compared, the same random draws index both (the interleaved
schedule sends the same prompts to every arm in a round), which pairs them.

An arm is *tied* with the best when the CI of best/arm throughput reaches down to
within the tolerance of 1, *worse* otherwise. A comparison is *settled* when the
arm is worse, or when the whole CI lies within the tolerance (they are equivalent),
or when the CI is no wider than the tolerance either side (an indifference zone:
what difference is left is below what the run was asked to resolve).
The verdict is decisive when every comparison with an arm still in the race is
settled (an arm dropped earlier was settled as worse when it was dropped).
"""

from __future__ import annotations

import math
import re
import zlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import numpy as np

from halospec_tui.stats import StepSample

RESAMPLES = 2000
CONFIDENCE = 0.95
DEFAULT_TOLERANCE = 0.02
DEFAULT_SEED = 0
NOSPEC = "nospec"
_FIXED = re.compile(r"^fixed_(\d+)$")

Stat = Callable[[np.ndarray, np.ndarray], np.ndarray]  # (tokens, latency) rows -> values


def arm_k(mode: str) -> int | None:
    """The fixed draft length an arm stands for: nospec 0, fixed_K K, else None."""
    if mode == NOSPEC:
        return 0
    m = _FIXED.match(mode)
    return int(m.group(1)) if m else None


@dataclass(frozen=True)
class Estimate:
    value: float
    lo: float
    hi: float

    @property
    def half_width(self) -> float:
        return (self.hi - self.lo) / 2.0


# -- resampling -----------------------------------------------------------------
def _rng(seed: int, *labels: str) -> np.random.Generator:
    return np.random.default_rng([seed, *(zlib.crc32(x.encode()) for x in labels)])


def resample_indices(strata: Sequence[int], n_boot: int, rng: np.random.Generator) -> np.ndarray:
    """(n_boot, n) indices; each row draws, within each stratum, as many as it holds.

    Strata are visited in sorted order and each draws uniform numbers for its own
    size, so two arms with the same strata sizes get the same positions (paired).
    """
    s = np.asarray(strata)
    out = np.empty((n_boot, len(s)), dtype=np.int64)
    for key in np.unique(s):
        pos = np.flatnonzero(s == key)
        u = rng.random((n_boot, len(pos)))
        out[:, pos] = pos[np.minimum((u * len(pos)).astype(np.int64), len(pos) - 1)]
    return out


def _interval(point: float, reps: np.ndarray, confidence: float = CONFIDENCE) -> Estimate:
    tail = (1.0 - confidence) / 2.0 * 100.0
    lo, hi = np.percentile(reps, [tail, 100.0 - tail])
    return Estimate(float(point), float(lo), float(hi))


def _nearest_rank(sorted_rows: np.ndarray, pct: float) -> np.ndarray:
    n = sorted_rows.shape[-1]
    idx = min(max(math.ceil(pct / 100.0 * n) - 1, 0), n - 1)
    return sorted_rows[..., idx]


def tps(tok: np.ndarray, lat: np.ndarray) -> np.ndarray:
    total = lat.sum(axis=-1)
    return np.where(total > 0, tok.sum(axis=-1) * 1000.0 / np.maximum(total, 1e-12), np.nan)


def mean_ms(tok: np.ndarray, lat: np.ndarray) -> np.ndarray:
    return lat.mean(axis=-1)


def median_ms(tok: np.ndarray, lat: np.ndarray) -> np.ndarray:
    return _nearest_rank(np.sort(lat, axis=-1), 50.0)


def p95_ms(tok: np.ndarray, lat: np.ndarray) -> np.ndarray:
    return _nearest_rank(np.sort(lat, axis=-1), 95.0)


def score(tok: np.ndarray, lat: np.ndarray) -> np.ndarray:
    """The original's SLO-aware score: avg + 0.5 * p95 + 0.2 * population stddev."""
    return lat.mean(axis=-1) + 0.5 * p95_ms(tok, lat) + 0.2 * lat.std(axis=-1)


def bootstrap(
    tok: Sequence[float],
    lat: Sequence[float],
    strata: Sequence[int],
    stat: Stat,
    rng: np.random.Generator,
    n_boot: int = RESAMPLES,
) -> Estimate | None:
    """Point value of `stat` on the data and its percentile CI over stratified resamples."""
    if not len(lat):
        return None
    t, x = np.asarray(tok, dtype=float), np.asarray(lat, dtype=float)
    idx = resample_indices(strata, n_boot, rng)
    return _interval(float(stat(t, x)), stat(t[idx], x[idx]))


# -- per arm --------------------------------------------------------------------
@dataclass(frozen=True)
class ArmStats:
    arm: str
    k: int | None
    n: int  # successful measured steps
    tps: Estimate | None
    mean_ms: Estimate | None
    median_ms: Estimate | None
    p95_ms: Estimate | None
    score: Estimate | None
    server_tps: Estimate | None
    cv: float | None  # coefficient of variation of latency
    phase: str = ""  # "" for the whole arm


def measured(samples: Sequence[StepSample]) -> list[StepSample]:
    """Successful, measured (not settle) steps."""
    return [s for s in samples if s.success and not s.settle]


def _stratum(s: StepSample) -> int:
    return s.round or 0


def arm_stats(
    arm: str, samples: Sequence[StepSample], seed: int = DEFAULT_SEED, phase: str = ""
) -> ArmStats:
    ok = measured(samples)
    tok = [float(s.tokens) for s in ok]
    lat = [float(s.latency_ms) for s in ok]
    strata = [_stratum(s) for s in ok]
    figures: dict[str, Estimate | None] = {}
    for name, fn in (
        ("tps", tps),
        ("mean_ms", mean_ms),
        ("median_ms", median_ms),
        ("p95_ms", p95_ms),
        ("score", score),
    ):
        figures[name] = bootstrap(tok, lat, strata, fn, _rng(seed, arm, phase, name))
    timed = [s for s in ok if s.predicted_n is not None and s.predicted_ms]
    server = bootstrap(
        [float(s.predicted_n or 0) for s in timed],
        [float(s.predicted_ms or 0.0) for s in timed],
        [_stratum(s) for s in timed],
        tps,
        _rng(seed, arm, phase, "server_tps"),
    )
    cv = None
    if len(lat) >= 2 and sum(lat) > 0:
        cv = float(np.std(lat) / np.mean(lat))
    return ArmStats(
        arm=arm,
        k=arm_k(arm),
        n=len(ok),
        server_tps=server,
        cv=cv,
        phase=phase,
        **figures,  # type: ignore[arg-type]
    )


def by_arm(samples: Sequence[StepSample]) -> dict[str, list[StepSample]]:
    """Samples grouped by arm, arms in order of first appearance."""
    out: dict[str, list[StepSample]] = {}
    for s in samples:
        out.setdefault(s.mode, []).append(s)
    return out


def phase_stats(samples: Sequence[StepSample], seed: int = DEFAULT_SEED) -> list[ArmStats]:
    """Per arm x phase (phases in the order steady, load, recovery, then others)."""
    order = {"steady": 0, "load": 1, "recovery": 2}
    out: list[ArmStats] = []
    for arm, rows in by_arm(samples).items():
        phases = sorted({s.phase for s in measured(rows)}, key=lambda p: (order.get(p, 9), p))
        for ph in phases:
            out.append(arm_stats(arm, [s for s in rows if s.phase == ph], seed, phase=ph))
    return out


# -- comparisons ----------------------------------------------------------------
def ratio(
    num: Sequence[StepSample], den: Sequence[StepSample], seed: int, label: str
) -> Estimate | None:
    """tokens/s of `num` over tokens/s of `den`, on the rounds both ran, paired draws."""
    a, b = measured(num), measured(den)
    common = {_stratum(s) for s in a} & {_stratum(s) for s in b}
    a = [s for s in a if _stratum(s) in common]
    b = [s for s in b if _stratum(s) in common]
    if not a or not b:
        return None
    arrays = []
    for rows in (a, b):
        tok = np.array([float(s.tokens) for s in rows])
        lat = np.array([float(s.latency_ms) for s in rows])
        idx = resample_indices([_stratum(s) for s in rows], RESAMPLES, _rng(seed, "pair", label))
        arrays.append((tps(tok, lat), tps(tok[idx], lat[idx])))
    (pa, ra), (pb, rb) = arrays
    if not (pb > 0 and np.all(rb > 0)):
        return None
    return _interval(float(pa / pb), ra / rb)


@dataclass(frozen=True)
class Comparison:
    arm: str
    ratio: Estimate | None  # best tokens/s over this arm's: above 1, the best is faster
    status: str  # tied | worse
    settled: bool


def classify(r: Estimate | None, tolerance: float) -> tuple[str, bool]:
    """tied when the CI reaches within tolerance of 1, else worse.

    Settled: worse; or tied and either equivalent (the whole CI within the tolerance)
    or known to within the tolerance (half-width at most the tolerance), so that the
    difference, if any, is below what the run is asked to resolve (an indifference zone).
    """
    if r is None:
        return "tied", False
    if r.lo > 1.0 + tolerance:
        return "worse", True
    return "tied", r.hi <= 1.0 + tolerance or r.half_width <= tolerance


@dataclass(frozen=True)
class Verdict:
    arms: tuple[ArmStats, ...]
    best: str | None
    comparisons: tuple[Comparison, ...]
    decisive: bool
    recommended: str | None  # the arm to run
    recommended_k: int | None
    smallest_of_tie: bool  # the recommendation is a smaller K tied with the best
    vs_nospec: Estimate | None  # fastest speculating arm's tokens/s over nospec's
    vs_nospec_arm: str | None
    tolerance: float
    eliminated: tuple[tuple[str, int], ...] = ()  # (arm, round it was dropped)
    phases: tuple[ArmStats, ...] = field(default=())

    def status(self, arm: str) -> str:
        if arm == self.best:
            return "best"
        if any(a == arm for a, _ in self.eliminated):
            return "eliminated"
        for c in self.comparisons:
            if c.arm == arm:
                return c.status
        return "-"

    def comparison(self, arm: str) -> Comparison | None:
        return next((c for c in self.comparisons if c.arm == arm), None)


def decide(
    samples: Sequence[StepSample],
    *,
    tolerance: float = DEFAULT_TOLERANCE,
    seed: int = DEFAULT_SEED,
    eliminated: Sequence[tuple[str, int]] = (),
    with_phases: bool = True,
) -> Verdict:
    groups = by_arm(samples)
    arms = tuple(arm_stats(a, rows, seed) for a, rows in groups.items())
    ranked = [a for a in arms if a.tps is not None and not math.isnan(a.tps.value)]
    best = max(ranked, key=lambda a: a.tps.value if a.tps else 0.0).arm if ranked else None
    comparisons: list[Comparison] = []
    if best is not None:
        for a in arms:
            if a.arm == best:
                continue
            r = ratio(groups[best], groups[a.arm], seed, f"{best}/{a.arm}")
            status, settled = classify(r, tolerance)
            comparisons.append(Comparison(a.arm, r, status, settled))
    stats_of = {a.arm: a for a in arms}
    gone = {a for a, _ in eliminated}
    contenders = [c for c in comparisons if c.arm not in gone]
    rec, rec_k, smaller = recommend(best, contenders, stats_of)
    vs, vs_arm = _against_nospec(groups, arms, seed)
    return Verdict(
        arms=arms,
        best=best,
        comparisons=tuple(comparisons),
        decisive=best is not None and all(c.settled for c in contenders),
        recommended=rec,
        recommended_k=rec_k,
        smallest_of_tie=smaller,
        vs_nospec=vs,
        vs_nospec_arm=vs_arm,
        tolerance=tolerance,
        eliminated=tuple(eliminated),
        phases=tuple(phase_stats(samples, seed)) if with_phases else (),
    )


def recommend(
    best: str | None, comparisons: Sequence[Comparison], stats_of: dict[str, ArmStats]
) -> tuple[str | None, int | None, bool]:
    """The smallest K among the best and the arms tied with it (less draft work, same speed)."""
    if best is None:
        return None, None, False
    tied = [c.arm for c in comparisons if c.status == "tied"]
    candidates = [a for a in (best, *tied) if stats_of[a].k is not None]
    if not candidates:
        return best, None, False
    pick = min(candidates, key=lambda a: stats_of[a].k or 0)
    return pick, stats_of[pick].k, pick != best


def _against_nospec(
    groups: dict[str, list[StepSample]], arms: Sequence[ArmStats], seed: int
) -> tuple[Estimate | None, str | None]:
    if NOSPEC not in groups:
        return None, None
    spec = [a for a in arms if a.arm != NOSPEC and a.tps is not None]
    if not spec:
        return None, None
    fastest = max(spec, key=lambda a: a.tps.value if a.tps else 0.0).arm
    return ratio(groups[fastest], groups[NOSPEC], seed, f"{fastest}/{NOSPEC}"), fastest


def newly_worse(verdict: Verdict) -> list[str]:
    """Arms the verdict shows clearly worse than the best and not yet eliminated."""
    gone = {a for a, _ in verdict.eliminated}
    return [c.arm for c in verdict.comparisons if c.status == "worse" and c.arm not in gone]


def stop_reason(
    verdict: Verdict,
    round_no: int,
    *,
    min_rounds: int,
    max_rounds: int,
    elapsed_s: float,
    max_time_s: float | None,
) -> str | None:
    """Why the run may stop after this round: decisive, rounds or time used up; else None."""
    if round_no >= min_rounds and verdict.decisive:
        return "decisive"
    if round_no >= max_rounds:
        return "rounds"
    if max_time_s is not None and elapsed_s >= max_time_s:
        return "time"
    return None


# -- what to paste ----------------------------------------------------------------
SPEC_FLAGS = "--spec-type draft-simple --spec-draft-n-max {k} --spec-draft-n-min 0 --spec-draft-p-min 0"


def paste_setting(k: int, actuator: str) -> str:
    """The server setting for K, in the form the server in use takes it."""
    if actuator == "llama-server":
        if k == 0:
            return "llama-server flags: no speculation (start it without -md and --spec-type)"
        return "llama-server flags: -md DRAFT.gguf " + SPEC_FLAGS.format(k=k)
    if actuator == "lemonade-load":
        args = "" if k == 0 else SPEC_FLAGS.format(k=k)
        return f'Lemonade /api/v1/load: {{"llamacpp_args": "{args}"}}'
    if actuator == "request":
        return f'request body: "speculative": {{"n_max": {k}, "n_min": 0, "p_min": 0}}'
    return f"K never reached the server through actuator {actuator or '?'}: nothing to paste"


# -- text -------------------------------------------------------------------------
def fmt_est(e: Estimate | None, digits: int = 1) -> str:
    if e is None:
        return "-"
    return f"{e.value:.{digits}f} ±{e.half_width:.{digits}f}"


def fmt_ratio(e: Estimate | None) -> str:
    return "-" if e is None else f"{e.value:.2f}x [{e.lo:.2f}, {e.hi:.2f}]"


def nospec_line(v: Verdict) -> str | None:
    e = v.vs_nospec
    if e is None:
        return None
    if e.lo > 1.0:
        how = "faster than"
    elif e.hi < 1.0:
        how = "slower than"
    else:
        how = "not distinguishable from"
    return f"speculation ({v.vs_nospec_arm}): {fmt_ratio(e)} {how} nospec"


def recommendation_line(v: Verdict, actuator: str) -> str:
    if v.best is None:
        return "no arm has a successful step: nothing to recommend"
    if v.recommended_k is None:
        return f"fastest: {v.best} (an adaptive arm: no fixed setting to paste)"
    k = v.recommended_k
    what = "turn speculation off" if k == 0 else f"use K = {k}"
    why = ""
    if v.smallest_of_tie:
        why = (
            f" (tied with the fastest, {v.best}, within {v.tolerance * 100:g}%:"
            " the smallest K among the tied drafts least for the same speed)"
        )
    hedge = "" if v.decisive else " [not decisive: more rounds would narrow it]"
    return f"{what}{why}{hedge}; {paste_setting(k, actuator)}"


# -- how long the decision took, from the rows alone --------------------------------
@dataclass(frozen=True)
class Decision:
    rounds: int  # the last round run (0: no rounds, a sequential run)
    requests: int  # rows: measured and settle
    measured: int
    settle: int
    seconds: float | None  # first row's start to last row's end, from timestamps
    dropped: tuple[tuple[str, int], ...]  # (arm, last round it ran) for arms dropped early


def _epoch(stamp: str) -> float | None:
    import datetime as _dt

    try:
        return _dt.datetime.fromisoformat(stamp).timestamp()
    except ValueError:
        return None


def decision_of(samples: Sequence[StepSample]) -> Decision:
    rounds = max((s.round or 0 for s in samples), default=0)
    last: dict[str, int] = {}
    for s in samples:
        if s.round:
            last[s.mode] = max(last.get(s.mode, 0), s.round)
    dropped = tuple((a, r) for a, r in last.items() if r < rounds)
    times = [t for t in (_epoch(s.timestamp) for s in samples if s.timestamp) if t is not None]
    seconds = None
    if len(times) >= 2:
        first = samples[0]
        seconds = max(times) - min(times) + first.latency_ms / 1000.0
    n_settle = sum(1 for s in samples if s.settle)
    return Decision(rounds, len(samples), len(samples) - n_settle, n_settle, seconds, dropped)


def main_actuator(samples: Sequence[StepSample]) -> str:
    names = [s.actuator for s in samples if s.actuator]
    return max(set(names), key=names.count) if names else ""


# -- rendering ----------------------------------------------------------------------
def _status_text(v: Verdict, arm: str, dropped: dict[str, int]) -> str:
    st = v.status(arm)
    if arm in dropped and st != "best":
        return f"{st} (dropped after round {dropped[arm]})"
    c = v.comparison(arm)
    if c is not None and c.status == "tied" and c.settled:
        return "tied (equivalent)"
    return st


def verdict_lines(v: Verdict, decision: Decision, actuator: str, nospec_drafted: int | None) -> list[str]:
    """The verdict as text: per-arm table with CIs, phases, decision, nospec, recommendation."""
    dropped = dict(decision.dropped)
    lines = [
        "",
        f"Verdict (tokens/s, 95% bootstrap CI of {RESAMPLES} resamples by round; "
        f"tied within {v.tolerance * 100:g}%)",
        f"{'arm':<10} {'n':>4} {'tok/s':>14} {'mean ms':>16} {'p95 ms':>16} "
        f"{'srv tok/s':>14} {'CV':>6} {'best/arm':>21}  status",
    ]
    for a in v.arms:
        c = v.comparison(a.arm)
        cv = "-" if a.cv is None else f"{a.cv:.3f}"
        lines.append(
            f"{a.arm:<10} {a.n:>4} {fmt_est(a.tps):>14} {fmt_est(a.mean_ms):>16} "
            f"{fmt_est(a.p95_ms):>16} {fmt_est(a.server_tps):>14} {cv:>6} "
            f"{fmt_ratio(c.ratio if c else None):>21}  {_status_text(v, a.arm, dropped)}"
        )
    phases = {p.phase for p in v.phases}
    if len(phases) > 1:
        lines += ["", f"{'arm':<10} {'phase':<9} {'n':>4} {'tok/s':>14} {'mean ms':>16}"]
        for p in v.phases:
            lines.append(
                f"{p.arm:<10} {p.phase:<9} {p.n:>4} {fmt_est(p.tps):>14} {fmt_est(p.mean_ms):>16}"
            )
    lines.append("")
    how = "decisive" if v.decisive else "not decisive"
    took = f"{decision.requests} requests ({decision.measured} measured, {decision.settle} settle)"
    if decision.seconds is not None:
        took += f" in {decision.seconds:.0f} s"
    where = f" after {decision.rounds} rounds" if decision.rounds else ""
    lines.append(f"decision: {how}{where}; {took}")
    ns = nospec_line(v)
    if ns:
        lines.append(ns)
    if nospec_drafted:
        lines.append(
            f"WARNING: nospec drafted {nospec_drafted} tokens: speculation was not switched off"
        )
    lines.append(f"recommendation: {recommendation_line(v, actuator)}")
    return lines


def _est_dict(e: Estimate | None) -> dict[str, float] | None:
    return None if e is None else {"value": e.value, "lo": e.lo, "hi": e.hi}


def _arm_dict(a: ArmStats) -> dict[str, object]:
    return {
        "arm": a.arm,
        "k": a.k,
        "phase": a.phase or None,
        "n": a.n,
        "tps": _est_dict(a.tps),
        "mean_ms": _est_dict(a.mean_ms),
        "median_ms": _est_dict(a.median_ms),
        "p95_ms": _est_dict(a.p95_ms),
        "score": _est_dict(a.score),
        "server_tps": _est_dict(a.server_tps),
        "cv": a.cv,
    }


def verdict_dict(v: Verdict, decision: Decision, actuator: str) -> dict[str, object]:
    dropped = dict(decision.dropped)
    return {
        "metric": "tokens/s",
        "confidence": CONFIDENCE,
        "resamples": RESAMPLES,
        "tolerance": v.tolerance,
        "best": v.best,
        "decisive": v.decisive,
        "arms": [
            {**_arm_dict(a), "status": _status_text(v, a.arm, dropped).split(" ")[0],
             "best_over_arm": _est_dict(c.ratio) if (c := v.comparison(a.arm)) else None,
             "dropped_after_round": dropped.get(a.arm)}
            for a in v.arms
        ],  # fmt: skip
        "phases": [_arm_dict(p) for p in v.phases],
        "decision": {
            "rounds": decision.rounds,
            "requests": decision.requests,
            "measured": decision.measured,
            "settle": decision.settle,
            "seconds": decision.seconds,
        },
        "speculation_vs_nospec": _est_dict(v.vs_nospec),
        "speculation_arm": v.vs_nospec_arm,
        "recommended": v.recommended,
        "recommended_k": v.recommended_k,
        "smallest_of_tie": v.smallest_of_tie,
        "recommendation": recommendation_line(v, actuator),
    }
