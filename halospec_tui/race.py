"""Which arm to run, decided round by round with a guarantee that holds whenever the run stops.

The unit is the round: for each round and each arm that ran in it, the tokens it
produced and the time it took (ms; for an arm that changes K itself, its own reloads
too), so the round's tokens/s is tokens / time. Two arms are compared on the rounds
both ran, through the per-round log ratio of their tokens/s (paired: what a round's
conditions do to both cancels), weighted by the steps the round measured.

Rule, after each round (`Race.add_round`), with a confidence sequence per pair
(`confseq.py`) at level alpha / (arms - 1) (the arms the race started with):
  * drop an arm when a surviving arm is faster by more than the tolerance over the
    whole sequence (lower bound of survivor/arm above 1 + tolerance);
  * an arm is *certified epsilon-good* when, against every other survivor, the
    sequence says it is at most epsilon slower (upper bound of other/arm at most
    1 + epsilon); the race is decisive when some arm is certified tolerance-good;
  * recommend the smallest K among the certified arms (less draft work, within the
    tolerance of the best); the best is the fastest survivor on the rounds all
    survivors share (a dropped arm is never crowned).

Guarantee: whenever the run stops (after any round, for any reason),
P(the recommended arm's tokens/s is more than `tolerance` below the fastest arm's)
<= alpha, assuming that, given the schedule, each pair's per-round log ratios are
independent Gaussian with a constant mean (the log of the arms' speed ratio) and a
variance inversely proportional to the steps measured (and, pooled, alike across
the arms with a fixed K). Why: fix the fastest arm b
(unknown, but not random); with probability >= 1 - alpha the sequences of its
arms - 1 pairs hold at every round at once (Bonferroni). Then b is never dropped
(no arm is faster than it by anything) and any arm certified against every survivor
is certified against b, so it is within the tolerance of b. An undecided race still
certifies something: the smallest epsilon for which some arm is certified
epsilon-good, with the same guarantee (`Race.status.epsilon`).

Variance. By default (`RaceConfig.pooled`) one additive model is fitted to the arms
with a fixed K, log tokens/s = round effect + arm effect + noise of one variance per
step, and each pair's contrast and the residual variance come from it: the same
guarantee, assuming in addition that the noise per step is alike across those arms,
with far more degrees of freedom than a pair's own rounds - 1 (24 instead of 3 at 4
rounds and 9 arms), which is what lets a clear case finish in about 7 rounds instead
of 10. An arm without a fixed K (it pays its own reloads: noise of another kind)
keeps the variance of its pairs' own rounds, as every pair does with pooled=False.
benchmarks/decision_quality.py measures both, also with noise that differs by +-50%
across arms.

Reported intervals are fixed-sample Student-t over rounds (df = rounds - 1): per pair
for the log ratio (back to a ratio), per arm for its log tokens/s (back to tokens/s:
the weighted geometric mean over rounds). Deterministic: no resampling.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np

from halospec_tui.arms import lean_key
from halospec_tui.confseq import PRIOR, Mean, mixture_factor, t_radius, weighted_mean

ALPHA = 0.05
CONFIDENCE = 0.95
DEFAULT_TOLERANCE = 0.02
MAX_ROUNDS_NEEDED = 200  # beyond this the estimate says "more than"


@dataclass(frozen=True)
class RaceConfig:
    tolerance: float = DEFAULT_TOLERANCE
    alpha: float = ALPHA  # error of the decision, over the whole run
    confidence: float = CONFIDENCE  # of the reported (fixed-sample) intervals
    prior: float = PRIOR  # tau^2 of the confidence sequences
    min_rounds: int = 1  # no decisive stop before this round (the plan's first stop)
    drop_from: int = 1  # no arm dropped before this round
    pooled: bool = True  # one noise variance for the arms with a fixed K (pooled_table)


@dataclass(frozen=True)
class Figures:
    """One arm in one round: tokens, time (ms) and the steps they came from."""

    tokens: float
    ms: float
    steps: int = 1


@dataclass(frozen=True)
class Drop:
    arm: str
    round: int
    by: str  # the surviving arm that beat it
    lower: float  # the sequence's lower bound of by/arm (tokens/s) when it was dropped


@dataclass(frozen=True)
class Interval:
    value: float
    lo: float
    hi: float


@dataclass(frozen=True)
class PairInterval:
    """best/arm tokens/s on the rounds both ran: Student-t (reported) and the
    confidence sequence the decisions use (wider)."""

    arm: str
    against: str
    rounds: int
    t: Interval
    sequence: Interval


@dataclass(frozen=True)
class ArmInterval:
    arm: str
    k: int | None
    rounds: int
    tps: Interval  # weighted geometric mean over rounds, Student-t interval


@dataclass(frozen=True)
class RaceStatus:
    round: int
    survivors: tuple[str, ...]
    dropped: tuple[Drop, ...]
    decisive: bool
    best: str | None
    recommended: str | None  # decisive: the certified pick; else the arm certified tightest
    recommended_k: int | None
    epsilon: tuple[tuple[str, float], ...]  # survivors: certified epsilon-good (inf: not yet)
    arms: tuple[ArmInterval, ...] = field(default=())
    pairs: tuple[PairInterval, ...] = field(default=())
    rounds_needed: int | None = None  # more rounds the tolerance would take at this noise

    def epsilon_of(self, arm: str) -> float:
        return dict(self.epsilon).get(arm, math.inf)


# -- pairs over the rounds table ------------------------------------------------------
@dataclass(frozen=True)
class PairTable:
    """Every ordered pair (i, j) of arms: the mean of log(tps_i / tps_j), antisymmetric
    in (i, j), its weight W and variance per unit weight on `df` degrees of freedom."""

    n: np.ndarray  # (m, m) rounds in common
    weight: np.ndarray  # (m, m) W, in units of the pair's first common round
    mean: np.ndarray  # (m, m)
    var: np.ndarray  # (m, m) s^2 per unit weight (nan without degrees of freedom)
    df: np.ndarray  # (m, m) of s^2: n - 1 for a pair's own rounds, more when pooled
    last_weight: np.ndarray  # (m, m) the weight of the latest common round
    _radii: dict[tuple[float, float], np.ndarray] = field(default_factory=dict, compare=False)

    def of(self, i: int, j: int) -> Mean:
        return Mean(int(self.n[i, j]), float(self.weight[i, j]), float(self.mean[i, j]),
                    float(self.var[i, j]), int(self.df[i, j]))  # fmt: skip

    def radius(self, alpha: float, prior: float) -> np.ndarray:
        """(m, m) half-widths of the confidence sequences (inf while unbounded)."""
        key = (alpha, prior)
        if key not in self._radii:
            q = mixture_factor(self.df, self.weight, alpha, prior)
            with np.errstate(invalid="ignore", divide="ignore"):
                r = q * np.sqrt(self.var / self.weight)
            self._radii[key] = np.where(np.isfinite(q), r, np.inf)  # r = 0 where var = 0
        return self._radii[key]


def pair_table(
    log_tps: np.ndarray, steps: np.ndarray, pooled: bool | Sequence[bool] = False
) -> PairTable:
    """From (rounds, arms) log tokens/s (nan where the arm did not run) and steps.

    Each pair on the rounds both ran: a round's weight is 1 / (1/steps_i + 1/steps_j)
    (the variance of the difference of two block means goes as its inverse), relative
    to the pair's first common round. `pooled` (every arm, or those marked): see
    `pooled_table`."""
    x, s = np.asarray(log_tps), np.asarray(steps)
    both = np.isfinite(x)[:, :, None] & np.isfinite(x)[:, None, :]
    with np.errstate(divide="ignore"):
        raw = 1.0 / (1.0 / s[:, :, None] + 1.0 / s[:, None, :])  # (0 for a block of 0 steps)
    d = x[:, :, None] - x[:, None, :]  # nan where either did not run
    n = both.sum(axis=0)
    first = np.argmax(both, axis=0)
    w0 = np.take_along_axis(raw, first[None], axis=0)[0]
    with np.errstate(divide="ignore", invalid="ignore"):
        w = np.where(both, raw / np.where(w0 > 0, w0, 1.0), 0.0)
        big_w = w.sum(axis=0)
        mean = np.where(both, w * d, 0.0).sum(axis=0) / big_w  # nan (0 / 0) without rounds
        dev = np.where(both, d - mean[None], 0.0)
        var = np.where(n >= 2, (w * dev**2).sum(axis=0) / (n - 1), np.nan)
    last = np.where(n > 0, np.take_along_axis(w, _last_index(both)[None], axis=0)[0], 0.0)
    own = PairTable(n, big_w, mean, var, np.maximum(n - 1, 0), last)
    if isinstance(pooled, bool):
        members = np.full(x.shape[1], pooled)
    else:
        members = np.asarray(pooled, dtype=bool)
    return pooled_table(x, s, own, w0, members) if members.any() else own


def pooled_table(
    x: np.ndarray, s: np.ndarray, own: PairTable, w0: np.ndarray, members: np.ndarray
) -> PairTable:
    """The pairs among `members` from one additive model, log tps = round effect + arm
    effect + noise of variance sigma^2 / steps, fitted by weighted least squares on the
    members' rounds: a pair's mean is its fitted contrast and its variance the residual
    one, pooled over the members (df = observations - rank). Far more degrees of freedom
    than a pair's own n - 1 when the noise is alike across them; wrong when it is not.
    Pairs with a non-member keep their own rounds' figures."""
    obs = np.isfinite(x) & (s > 0) & members[None, :]
    if not obs.any():
        return own
    # The round effects are absorbed (each round's weighted mean is taken out), which
    # leaves the arms' normal equations M mu = b, M = sum over rounds of
    # diag(s_r) - s_r s_r' / S_r: an (arms x arms) system, whatever the rounds, where
    # the full design's least squares grew with the rounds cubed.
    w = np.where(obs, s, 0.0)
    wx = np.where(obs, s * x, 0.0)
    total = w.sum(axis=1)
    live = total > 0
    w, wx, total = w[live], wx[live], total[live]
    share = w / total[:, None]
    mat = np.diag(w.sum(axis=0)) - share.T @ w
    b = wx.sum(axis=0) - share.T @ wx.sum(axis=1)
    ev, vec = np.linalg.eigh(mat)
    keep = ev > float(ev.max()) * 1e-10  # (M is positive semidefinite)
    df = int(obs.sum()) - (int(live.sum()) + int(keep.sum()))
    if df < 1:
        return own
    g = (vec[:, keep] / ev[keep]) @ vec[:, keep].T  # pseudo-inverse of M
    mu = g @ b
    alpha_r = (wx.sum(axis=1) - w @ mu) / total  # each round's effect, given mu
    resid = x[live] - alpha_r[:, None] - mu[None, :]
    sigma2 = float(np.where(obs[live], w * resid * resid, 0.0).sum()) / df  # per step
    var_c = np.diag(g)[:, None] + np.diag(g)[None, :] - 2.0 * g  # var(contrast) / sigma^2
    # Two members measured in one round are linked by it, so mu_i - mu_j is estimable;
    # a pair without a round in common keeps its own (empty) figures, and so does the
    # diagonal.
    ok = (obs.T @ obs) & ~np.eye(x.shape[1], dtype=bool)  # (boolean product: any round)
    with np.errstate(divide="ignore", invalid="ignore"):
        weight = np.where(ok, 1.0 / (var_c * w0), own.weight)
        var = np.where(ok, sigma2 / w0, own.var)
    mean = np.where(ok, mu[:, None] - mu[None, :], own.mean)
    return PairTable(own.n, weight, mean, var, np.where(ok, df, own.df), own.last_weight)


def _last_index(mask: np.ndarray) -> np.ndarray:
    rev = mask[::-1]
    return np.asarray(mask.shape[0] - 1 - np.argmax(rev, axis=0))


# -- the decisions -----------------------------------------------------------------------
def _lower(table: PairTable, alpha: float, prior: float) -> np.ndarray:
    """(m, m) lower bounds of log(tps_i / tps_j) over the whole sequence; -inf for a pair
    that shares no round (no mean: nothing is known, and a nan would compare as neither
    larger nor smaller, so the decisions would hang on the order of the arms)."""
    lower = table.mean - table.radius(alpha, prior)
    out: np.ndarray = np.where(np.isnan(lower), -np.inf, lower)
    return out


def drops(
    table: PairTable, survivors: Sequence[int], log_tol: float, alpha: float, prior: float
) -> list[tuple[int, int, float]]:
    """(arm, by, lower) for each survivor that another survivor beats by more than the
    tolerance over the whole sequence (lower bound of log(by/arm) > log(1 + tol)); `by`
    is the survivor with the highest lower bound. Never every survivor."""
    if len(survivors) < 2:
        return []
    lower = _lower(table, alpha, prior)
    out: list[tuple[int, int, float]] = []
    for j in survivors:
        by = max((i for i in survivors if i != j), key=lambda i: lower[i, j])
        if lower[by, j] > log_tol:
            out.append((j, by, float(lower[by, j])))
    if len(out) == len(survivors):  # cannot happen when the sequences hold: keep the arm
        keep = min(out, key=lambda d: d[2])[0]  # beaten by the least
        out = [d for d in out if d[0] != keep]
    return out


def certified_epsilon(
    table: PairTable, survivors: Sequence[int], alpha: float, prior: float
) -> dict[int, float]:
    """Per survivor i: the smallest epsilon with i certified epsilon-good, i.e. the
    largest upper bound of tps_j / tps_i over the other survivors j, minus 1 (never
    below 0; inf while some sequence is unbounded)."""
    lower = _lower(table, alpha, prior)
    out: dict[int, float] = {}
    for i in survivors:
        worst = max((-float(lower[i, j]) for j in survivors if j != i), default=-math.inf)
        out[i] = max(0.0, math.expm1(worst))
    return out


def rounds_needed(
    table: PairTable,
    survivors: Sequence[int],
    log_tol: float,
    alpha: float,
    prior: float,
    df_per_round: int = 1,
    cap: int = MAX_ROUNDS_NEEDED,
) -> int | None:
    """More rounds until some survivor would be certified tolerance-good, if every pair
    kept its current mean and spread and each further round weighed as the latest did
    (an estimate, not a promise); None when beyond `cap` or never at these means."""
    extra = np.arange(cap + 1)
    needs = []
    for i in survivors:
        need = 0.0
        for j in (j for j in survivors if j != i):
            m = table.of(i, j)
            # the lower bound must reach -log_tol; a pair without rounds in common (nan)
            # or without degrees of freedom (q inf) never does
            big_w = m.weight + extra * float(table.last_weight[i, j])
            q = mixture_factor(m.dof + extra * df_per_round, big_w, alpha, prior)
            with np.errstate(invalid="ignore"):  # inf * 0 while unbounded; nan / 0 is quiet
                ok = np.flatnonzero(q * np.sqrt(m.var / big_w) <= m.mean + log_tol)
            need = max(need, float(ok[0]) if ok.size else math.inf)
        needs.append(need)
    reachable = [int(n) for n in needs if math.isfinite(n)]  # within cap: the extra rounds
    return min(reachable) if reachable else None


def shared_means(x: np.ndarray, alive: Sequence[int]) -> dict[int, float]:
    """Mean log tokens/s of each survivor on the rounds all survivors ran (none in
    common: on each one's own rounds)."""
    cols = x[:, list(alive)]
    ok = np.isfinite(cols)
    rows = ok.all(axis=1)
    if rows.any():
        means = cols[rows].mean(axis=0)
    else:
        counts = ok.sum(axis=0)
        means = np.where(
            counts > 0, np.where(ok, cols, 0.0).sum(axis=0) / np.maximum(counts, 1), np.nan
        )
    return {i: float(means[c]) for c, i in enumerate(alive) if math.isfinite(means[c])}


def shared_best(x: np.ndarray, alive: Sequence[int]) -> int | None:
    """The fastest survivor on the rounds all survivors ran (a dropped arm never is)."""
    means = shared_means(x, alive)
    return max(means, key=means.__getitem__) if means else None


def pick(
    candidates: Sequence[str], ks: Mapping[str, int | None], speed: Mapping[str, float]
) -> str | None:
    """The smallest K among the candidates that have one, then the fewest threads
    (arms.lean_key), then the faster; none with a K: the fewest threads, then the
    fastest."""
    if not candidates:  # (lean_key puts an arm without a K after every K)
        return None
    return min(candidates, key=lambda a: (*lean_key(a, ks.get(a)), -speed.get(a, -math.inf)))


# -- reported intervals ------------------------------------------------------------------
def arm_interval(
    arm: str, k: int | None, log_tps: np.ndarray, steps: np.ndarray, confidence: float
) -> ArmInterval | None:
    """An arm's tokens/s over its rounds: weighted (by steps) geometric mean, Student-t."""
    ok = np.isfinite(log_tps)
    if not ok.any():
        return None
    m = weighted_mean(log_tps[ok], steps[ok])
    r = t_radius(m, confidence)
    return ArmInterval(arm, k, m.n, Interval(math.exp(m.mean), exp_or_inf(m.mean - r), exp_or_inf(m.mean + r)))


def exp_or_inf(x: float) -> float:
    try:
        return math.exp(x)
    except OverflowError:  # an interval too wide for a float ends at infinity
        return math.inf


def pair_interval(
    table: PairTable, names: Sequence[str], i: int, j: int, config: RaceConfig, alpha_pair: float
) -> PairInterval | None:
    """tps_i / tps_j on the rounds both ran: Student-t and the confidence sequence."""
    m = table.of(i, j)
    if m.n == 0:  # no round in common: no mean
        return None
    r_t = t_radius(m, config.confidence)
    r_cs = float(table.radius(alpha_pair, config.prior)[i, j])
    return PairInterval(
        names[j], names[i], m.n,
        Interval(math.exp(m.mean), exp_or_inf(m.mean - r_t), exp_or_inf(m.mean + r_t)),
        Interval(math.exp(m.mean), exp_or_inf(m.mean - r_cs), exp_or_inf(m.mean + r_cs)),
    )  # fmt: skip


# -- the state a run holds -----------------------------------------------------------------
class Race:
    """Rounds in, decisions out: the runner and the benchmark feed it the same way.

    `ks` names the arms in the race with the K each stands for (None: an arm with no
    fixed K, e.g. adaptive); figures for other arms are ignored."""

    def __init__(self, ks: Mapping[str, int | None], config: RaceConfig | None = None) -> None:
        self.config = config or RaceConfig()
        self.names: tuple[str, ...] = tuple(ks)
        self.ks: dict[str, int | None] = dict(ks)
        self._index = {a: i for i, a in enumerate(self.names)}
        self._x: list[np.ndarray] = []
        self._s: list[np.ndarray] = []
        self._alive: list[int] = list(range(len(self.names)))
        self._dropped: list[Drop] = []
        self.status = RaceStatus(0, self.names, (), False, None, None, None, ())
        self.last_table: PairTable | None = None  # the pairs of every round so far, once one ran

    @property
    def alpha_pair(self) -> float:
        """The error budget of one pair's sequence: alpha over the arms - 1 pairs that
        involve the (unknown) fastest arm."""
        return self.config.alpha / max(1, len(self.names) - 1)

    @property
    def survivors(self) -> tuple[str, ...]:
        return tuple(self.names[i] for i in self._alive)

    def table(self) -> PairTable:
        pooled = [self.config.pooled and k is not None for k in self.ks.values()]
        return pair_table(np.array(self._x), np.array(self._s), pooled)

    def add_round(
        self, round_no: int, figures: Mapping[str, Figures | tuple[float, float, int]]
    ) -> RaceStatus:
        x = np.full(len(self.names), np.nan)
        s = np.zeros(len(self.names))
        for arm, f in figures.items():
            i = self._index.get(arm)
            fig = f if isinstance(f, Figures) else Figures(*f)
            if i is not None and fig.tokens > 0 and fig.ms > 0 and fig.steps > 0:
                x[i] = math.log(fig.tokens * 1000.0 / fig.ms)
                s[i] = fig.steps
        self._x.append(x)
        self._s.append(s)
        self.status = self._decide(round_no)
        return self.status

    def _decide(self, round_no: int) -> RaceStatus:
        cfg, a = self.config, self.alpha_pair
        table = self.last_table = self.table()
        log_tol = math.log1p(cfg.tolerance)
        if round_no >= cfg.drop_from:
            for j, by, low in drops(table, self._alive, log_tol, a, cfg.prior):
                self._dropped.append(Drop(self.names[j], round_no, self.names[by], math.exp(low)))
            gone = {self._index[d.arm] for d in self._dropped}
            self._alive = [i for i in self._alive if i not in gone]
        eps = certified_epsilon(table, self._alive, a, cfg.prior)
        x = np.array(self._x)
        speed = {self.names[i]: v for i, v in shared_means(x, self._alive).items()}
        certified = [self.names[i] for i in self._alive if eps[i] <= cfg.tolerance * (1 + 1e-9)]
        decisive = round_no >= cfg.min_rounds and bool(certified)
        b = shared_best(x, self._alive)
        best = None if b is None else self.names[b]
        if certified:
            rec = pick(certified, self.ks, speed)
        else:
            tight = min(eps.values(), default=math.inf)
            closest = [self.names[i] for i, e in eps.items() if e <= tight * (1 + 1e-9)]
            rec = pick(closest, self.ks, speed) if math.isfinite(tight) else best
        return RaceStatus(
            round=round_no,
            survivors=self.survivors,
            dropped=tuple(self._dropped),
            decisive=decisive,
            best=best,
            recommended=rec,
            recommended_k=None if rec is None else self.ks.get(rec),
            epsilon=tuple((self.names[i], e) for i, e in eps.items()),
            arms=self._arm_intervals(),
            pairs=self._pair_intervals(table, b),
        )

    def _arm_intervals(self) -> tuple[ArmInterval, ...]:
        x, s = np.array(self._x), np.array(self._s)
        out = (arm_interval(a, self.ks[a], x[:, i], s[:, i], self.config.confidence)
               for i, a in enumerate(self.names))  # fmt: skip
        return tuple(a for a in out if a is not None)

    def _pair_intervals(self, table: PairTable, best: int | None) -> tuple[PairInterval, ...]:
        if best is None:
            return ()
        out = (pair_interval(table, self.names, best, j, self.config, self.alpha_pair)
               for j in range(len(self.names)) if j != best)  # fmt: skip
        return tuple(p for p in out if p is not None)

    def pair(self, num: str, den: str) -> PairInterval | None:
        """tps_num / tps_den (e.g. the fastest speculating arm over nospec), reported the
        same way as the pairs against the best."""
        table = self.last_table  # the table of every round so far (None before any)
        if num not in self._index or den not in self._index or table is None:
            return None
        return pair_interval(table, self.names, self._index[num], self._index[den],
                             self.config, self.alpha_pair)  # fmt: skip

    def rounds_needed(self) -> int | None:
        """More rounds the tolerance would take at the observed means and noise."""
        table = self.last_table
        if self.status.decisive or table is None:
            return 0 if self.status.decisive else None
        cfg = self.config
        df_step = len(self._alive) - 1 if cfg.pooled else 1
        return rounds_needed(table, self._alive, math.log1p(cfg.tolerance),
                             self.alpha_pair, cfg.prior, df_step)  # fmt: skip


# -- what to say ----------------------------------------------------------------------------
def arm_label(arm: str, k: int | None) -> str:
    if k is None:
        return arm
    if k == 0:
        return "no speculation (K = 0)" if arm == "nospec" else f"no speculation (K = 0, {arm})"
    return f"K = {k}" + ("" if arm == f"fixed_{k}" else f" ({arm})")


def statement(status: RaceStatus, config: RaceConfig, rounds_needed: int | None = None) -> str:
    """One line: what the race certifies, decisive or not, at the confidence it holds
    at any stop."""
    conf = f"{(1 - config.alpha) * 100:g}%"
    tol = f"{config.tolerance * 100:g}%"
    rec = status.recommended
    if rec is None:
        return "not decisive: no arm has a measured round yet"
    what = arm_label(rec, status.recommended_k)
    eps = status.epsilon_of(rec)
    if status.decisive:
        return (f"decisive: {what} is within {tol} of the fastest "
                f"({conf}, valid at any stop)")  # fmt: skip
    if not math.isfinite(eps):
        head = f"not decisive: too few rounds to certify any arm ({conf} sequences still open)"
    else:
        head = f"not decisive: {what} is within {eps * 100:.1f}% of the fastest ({conf})"
    if rounds_needed is None:
        return f"{head}; {tol} is out of reach at this noise (more than {MAX_ROUNDS_NEEDED} rounds)"
    return f"{head}; about {rounds_needed} more rounds would certify {tol} at this noise"
