"""The verdict before the race (halospec-tui up to 2026-12): seeded percentile
bootstraps over rounds, ties by CI overlap, elimination and stopping checked after
every round. Kept only so that benchmarks/decision_quality.py can print it beside the
race on the same synthetic runs; the tool no longer uses it.
"""

from __future__ import annotations

import math
import zlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import numpy as np

from halospec_tui.arms import NOSPEC, fixed_k
from halospec_tui.events import RoundStop
from halospec_tui.stats import StepSample, adapting_reload_ms
from halospec_tui.verdict import by_arm, measured

RESAMPLES = 2000
CONFIDENCE = 0.95
DEFAULT_TOLERANCE = 0.02
DEFAULT_SEED = 0


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


def cluster_weights(
    strata: Sequence[str], n_boot: int, rng: np.random.Generator
) -> np.ndarray:
    """(n_boot, n_clusters) counts: each replicate redraws, within each stratum, as many
    clusters as the stratum holds, with replacement (a stratified cluster bootstrap).

    Strata are visited in sorted order and each draws for its own size, so the same
    strata sizes and seed give the same weights (two arms compared on the same
    rounds are resampled together: paired)."""
    keys = np.asarray(strata)
    w = np.zeros((n_boot, len(keys)))
    for key in sorted(set(strata)):
        pos = np.flatnonzero(keys == key)
        m = len(pos)
        p = np.full(m, 1.0 / m)
        # A slice of replicates at a time (the generator draws them one after another,
        # so the weights are the same): no second n_boot x m array of counts.
        for lo in range(0, n_boot, 256):
            hi = min(n_boot, lo + 256)
            w[lo:hi, pos] = rng.multinomial(m, p, size=hi - lo)
    return w


def _interval(point: float, reps: np.ndarray, confidence: float = CONFIDENCE) -> Estimate:
    """The percentile interval of the replicates that have a value (NaN ends when none has)."""
    finite = reps[np.isfinite(reps)]
    tail = (1.0 - confidence) / 2.0 * 100.0
    lo, hi = np.percentile(finite if finite.size else reps, [tail, 100.0 - tail])
    return Estimate(float(point), float(lo), float(hi))


@dataclass(frozen=True)
class Rows:
    """One arm's measured steps grouped into clusters (rounds; or single steps when the
    schedule had none), each cluster in one stratum (its load phase)."""

    tokens: np.ndarray  # per step
    latency: np.ndarray  # per step, ms
    cluster: np.ndarray  # per step: index into `keys`
    keys: tuple[object, ...]  # cluster ids (round numbers, or step positions)
    strata: tuple[str, ...]  # per cluster
    extra: np.ndarray | None = None  # per step, ms: the arm's own reloads (tokens/s only)

    @property
    def n(self) -> int:
        return len(self.latency)

    def sums(self, values: np.ndarray) -> np.ndarray:
        return np.bincount(self.cluster, weights=values, minlength=len(self.keys))


MAX_CLUSTERS = 400  # a long sequential run is cut into this many runs of steps


def rows_of(
    samples: Sequence[StepSample],
    tokens: str = "tokens",
    ms: str = "latency_ms",
    with_reloads: bool = False,
) -> Rows:
    """Clusters are rounds when every step has one (interleaved); else single steps, or
    for a long run consecutive runs of steps (a block bootstrap: at most MAX_CLUSTERS,
    which bounds memory and respects that neighbouring steps share the machine).
    `with_reloads`: tokens/s also pays the reloads of the arm's own changes of K."""
    rounds = all(s.round for s in samples)
    n = len(samples)
    keys: list[object] = []
    strata: list[str] = []
    where: dict[object, int] = {}
    cluster = []
    for i, s in enumerate(samples):
        key: object = s.round if rounds else (i if n <= MAX_CLUSTERS else i * MAX_CLUSTERS // n)
        if key not in where:
            where[key] = len(keys)
            keys.append(key)
            strata.append(s.phase)
        cluster.append(where[key])
    extra = np.array(adapting_reload_ms(samples), dtype=float) if with_reloads else None
    return Rows(
        np.array([float(getattr(s, tokens) or 0) for s in samples]),
        np.array([float(getattr(s, ms) or 0) for s in samples]),
        np.array(cluster, dtype=np.int64),
        tuple(keys),
        tuple(strata),
        extra if extra is not None and extra.any() else None,
    )


def _safe_div(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    return np.where(b > 0, a / np.where(b > 0, b, 1.0), np.nan)


def tps(r: Rows, w: np.ndarray) -> np.ndarray:
    """Tokens per second: sum of tokens over sum of latency (plus the arm's own
    reloads, when counted), per replicate."""
    time = r.latency if r.extra is None else r.latency + r.extra
    return _safe_div(w @ r.sums(r.tokens) * 1000.0, w @ r.sums(time))


def mean_ms(r: Rows, w: np.ndarray) -> np.ndarray:
    return _safe_div(w @ r.sums(r.latency), w @ r.sums(np.ones(r.n)))


def _std(r: Rows, w: np.ndarray) -> np.ndarray:
    m = mean_ms(r, w)
    sq = _safe_div(w @ r.sums(r.latency**2), w @ r.sums(np.ones(r.n)))
    out: np.ndarray = np.sqrt(np.maximum(sq - m * m, 0.0))
    return out


def _nearest_rank(r: Rows, w: np.ndarray, pct: float) -> np.ndarray:
    """Nearest-rank percentile of the steps each replicate holds (weights per step),
    a slice of replicates at a time so memory stays bounded on long runs."""
    order = np.argsort(r.latency, kind="stable")
    sorted_lat = r.latency[order]
    by_step = r.cluster[order]
    chunk = max(1, 500_000 // max(r.n, 1))
    out = np.empty(w.shape[0])
    for lo in range(0, w.shape[0], chunk):
        cum = np.cumsum(w[lo : lo + chunk, by_step], axis=1)
        rank = np.maximum(np.ceil(pct / 100.0 * cum[:, -1] - 1e-9), 1.0)
        idx = np.minimum((cum < rank[:, None]).sum(axis=1), r.n - 1)
        out[lo : lo + chunk] = sorted_lat[idx]
    return out


def median_ms(r: Rows, w: np.ndarray) -> np.ndarray:
    return _nearest_rank(r, w, 50.0)


def p95_ms(r: Rows, w: np.ndarray) -> np.ndarray:
    return _nearest_rank(r, w, 95.0)


def score(r: Rows, w: np.ndarray) -> np.ndarray:
    """The original's SLO-aware score: avg + 0.5 * p95 + 0.2 * population stddev."""
    return mean_ms(r, w) + 0.5 * p95_ms(r, w) + 0.2 * _std(r, w)


Stat = Callable[[Rows, np.ndarray], np.ndarray]


def bootstrap(
    r: Rows, stat: Stat, rng: np.random.Generator, n_boot: int = RESAMPLES
) -> Estimate | None:
    """`stat` on the data and its percentile CI over stratified cluster resamples."""
    if r.n == 0:
        return None
    point = float(stat(r, np.ones((1, len(r.keys))))[0])
    if not math.isfinite(point):
        return None
    if len(r.keys) < 2:
        return Estimate(point, -math.inf, math.inf)  # one cluster: no spread to measure
    return _interval(point, stat(r, cluster_weights(r.strata, n_boot, rng)))


# -- per arm --------------------------------------------------------------------
def resamples(stat: str, n: int) -> int:
    """Replicates for a statistic: all for tokens/s and means; for the percentile-based
    ones (median, p95, score) on a long run fewer, as each costs a pass over every step."""
    if stat in ("tps", "mean_ms") or n <= 2000:
        return RESAMPLES
    return max(200, RESAMPLES * 2000 // n)


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


def arm_stats(
    arm: str, samples: Sequence[StepSample], seed: int = DEFAULT_SEED, phase: str = ""
) -> ArmStats:
    ok = measured(samples)
    rows = rows_of(ok, with_reloads=True)
    figures: dict[str, Estimate | None] = {}
    for name, fn in (
        ("tps", tps),
        ("mean_ms", mean_ms),
        ("median_ms", median_ms),
        ("p95_ms", p95_ms),
        ("score", score),
    ):
        figures[name] = bootstrap(rows, fn, _rng(seed, arm, phase, name), resamples(name, rows.n))
    timed = [s for s in ok if s.predicted_n is not None and s.predicted_ms]
    server = bootstrap(
        rows_of(timed, "predicted_n", "predicted_ms"), tps, _rng(seed, arm, phase, "server_tps")
    )
    lat = rows.latency
    cv = float(np.std(lat) / np.mean(lat)) if len(lat) >= 2 and lat.sum() > 0 else None
    return ArmStats(
        arm=arm,
        k=fixed_k(arm),
        n=len(ok),
        server_tps=server,
        cv=cv,
        phase=phase,
        **figures,
    )


def phase_stats(
    samples: Sequence[StepSample], seed: int = DEFAULT_SEED, key: str = "phase"
) -> list[ArmStats]:
    """Per arm x phase (steady, load, recovery, then others); key="prompt_class": per
    arm x prompt class (structured, open, neutral)."""
    order = {"steady": 0, "load": 1, "recovery": 2, "structured": 0, "open": 1, "neutral": 2}
    out: list[ArmStats] = []
    for arm, rows in by_arm(samples).items():
        groups = sorted({getattr(s, key) for s in measured(rows)}, key=lambda p: (order.get(p, 9), p))
        for g in groups:
            out.append(arm_stats(arm, [s for s in rows if getattr(s, key) == g], seed, phase=g))
    return out


# -- comparisons ----------------------------------------------------------------
def ratio(
    num: Sequence[StepSample], den: Sequence[StepSample], seed: int, label: str
) -> Estimate | None:
    """tokens/s of `num` over tokens/s of `den`.

    Interleaved rows: on the rounds both ran, resampling rounds together (paired: a
    round's conditions hit both arms). Otherwise each arm is resampled on its own."""
    a, b = measured(num), measured(den)
    if not a or not b:
        return None
    paired = all(s.round for s in a) and all(s.round for s in b)
    if paired:
        common = {s.round for s in a} & {s.round for s in b}
        a = [s for s in a if s.round in common]
        b = [s for s in b if s.round in common]
        if not a:
            return None
    ra, rb = rows_of(a, with_reloads=True), rows_of(b, with_reloads=True)
    del a, b  # only the Rows from here on: a long run's samples can go before resampling
    pa, pb = tps(ra, np.ones((1, len(ra.keys))))[0], tps(rb, np.ones((1, len(rb.keys))))[0]
    if not (math.isfinite(pa) and math.isfinite(pb) and pb > 0):
        return None
    if len(ra.keys) < 2 or len(rb.keys) < 2:
        return Estimate(float(pa / pb), 0.0, math.inf)  # one round in common: cannot tell
    if paired:
        # Same round order in both (sorted), so one weight matrix serves both arms.
        ra, rb = _by_round(ra), _by_round(rb)
        w = cluster_weights(ra.strata, RESAMPLES, _rng(seed, "pair", label))
        reps = _safe_div(tps(ra, w), tps(rb, w))
    else:  # one weight matrix at a time (each arm has its own generator)
        num_tps = tps(ra, cluster_weights(ra.strata, RESAMPLES, _rng(seed, "num", label)))
        den_tps = tps(rb, cluster_weights(rb.strata, RESAMPLES, _rng(seed, "den", label)))
        reps = _safe_div(num_tps, den_tps)
    return _interval(float(pa / pb), reps)


def _by_round(r: Rows) -> Rows:
    """The same rows with clusters renumbered in round order."""
    order = sorted(range(len(r.keys)), key=lambda i: r.keys[i])  # type: ignore[arg-type,return-value]
    new_index = np.empty(len(order), dtype=np.int64)
    new_index[order] = np.arange(len(order))
    return Rows(
        r.tokens,
        r.latency,
        new_index[r.cluster],
        tuple(r.keys[i] for i in order),
        tuple(r.strata[i] for i in order),
        r.extra,
    )


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
    classes: tuple[ArmStats, ...] = field(default=())  # per prompt class, when they vary

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
    ranked = {a.arm: a.tps.value for a in arms if a.tps is not None and not math.isnan(a.tps.value)}
    best = max(ranked, key=ranked.__getitem__) if ranked else None
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
    rec, rec_k, smaller = recommend(best, contenders, stats_of, tolerance)
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
        phases=(
            tuple(phase_stats(samples, seed))
            if with_phases and len({s.phase for s in samples}) > 1
            else ()
        ),
        classes=(
            tuple(phase_stats(samples, seed, key="prompt_class"))
            if with_phases and len({s.prompt_class for s in samples if s.prompt_class}) > 1
            else ()
        ),
    )


def recommend(
    best: str | None,
    comparisons: Sequence[Comparison],
    stats_of: dict[str, ArmStats],
    tolerance: float = DEFAULT_TOLERANCE,
) -> tuple[str | None, int | None, bool]:
    """The smallest K among the best and the arms tied with it (less draft work, same
    speed). Only ties whose whole CI lies within the tolerance count here, so the
    recommendation costs at most the tolerance (at 95% confidence)."""
    if best is None:
        return None, None, False
    tied = [
        c.arm
        for c in comparisons
        if c.status == "tied" and c.ratio is not None and c.ratio.hi <= 1.0 + tolerance
    ]
    candidates = [a for a in (best, *tied) if stats_of[a].k is not None]
    if not candidates:
        return best, None, False
    pick = min(candidates, key=lambda a: stats_of[a].k or 0)
    return pick, stats_of[pick].k, pick != best


def _against_nospec(
    groups: dict[str, Sequence[StepSample]], arms: Sequence[ArmStats], seed: int
) -> tuple[Estimate | None, str | None]:
    if NOSPEC not in groups:
        return None, None
    spec = {a.arm: a.tps.value for a in arms if a.arm != NOSPEC and a.tps is not None}
    if not spec:
        return None, None
    fastest = max(spec, key=spec.__getitem__)
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
) -> RoundStop | None:
    """Why the run may stop after this round: decisive, rounds or time used up; else None."""
    if round_no >= min_rounds and verdict.decisive:
        return "decisive"
    if round_no >= max_rounds:
        return "rounds"
    if max_time_s is not None and elapsed_s >= max_time_s:
        return "time"
    return None


