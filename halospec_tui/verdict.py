"""The verdict: which arm to run, with what the data certify, from rows alone.

The same function for a live run and for a CSV read later (`report`): rows in, verdict
out. The figure of merit is client-side tokens per second (sum of tokens / sum of
latency; an arm that changes K itself also pays the reloads of its own changes), or,
with metric "server", the server's decode tokens/s from its timings.

A run in rounds (every measured row has a round: the interleaved schedule) is decided
by the race (race.py, replayed from the rows by race_rows.py exactly as the runner
replays it after each round): a confidence sequence per pair of arms, so that
P(the recommended arm is more than the tolerance slower than the fastest) <= 5%
whenever the run stops. Its reported intervals are Student-t over rounds.

A sequential run (the original's schedule) ran each arm at its own time, so a drift
of the machine is not cancelled between arms: its verdict reports Student-t intervals
over steps and ratios against the fastest (Welch), and decides nothing.
"""

from __future__ import annotations

import datetime as _dt
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import TypeVar

import numpy as np

from halospec_tui.arms import fixed_k, is_nospec
from halospec_tui.confseq import t_quantile, t_radius, weighted_mean
from halospec_tui.race import DEFAULT_TOLERANCE, Interval, RaceConfig, exp_or_inf, statement
from halospec_tui.race_rows import Metric, Replay, replay
from halospec_tui.screen import Screen
from halospec_tui.stats import (
    CLASSES,
    PHASES,
    StepSample,
    adapting_reload_ms,
    percentile_nearest_rank,
)

CONFIDENCE = 0.95
DROP_FROM = 3  # rounds before the race may drop an arm (Plan.drop_from_round)
SEQUENTIAL = (
    "sequential run: each arm ran at its own time, so a drift of the machine is not "
    "cancelled between arms: no decision (the tune plan decides, in rounds)"
)
__all__ = ["CONFIDENCE", "DEFAULT_TOLERANCE", "DROP_FROM", "ArmLine", "Verdict", "decide"]


@dataclass(frozen=True)
class ArmLine:
    """One arm (or one arm in one phase or prompt class) in the verdict."""

    arm: str
    k: int | None  # the K it stands for (nospec 0, pmin n_max); None: adaptive
    n: int  # successful measured steps
    rounds: int  # rounds with a measured step (0: a sequential run)
    tps: Interval | None  # Student-t over rounds (sequential: over steps), geometric mean
    mean_ms: float | None
    p95_ms: int | None
    server_tps: float | None  # decoded tokens / decode time, from the server's timings
    cv: float | None  # coefficient of variation of latency
    vs_best: Interval | None = None  # fastest / this arm, Student-t; None for the fastest
    status: str = ""  # best | within | racing | dropped | screened out; "" sequential
    epsilon: float | None = None  # certified within this share of the fastest
    dropped_round: int | None = None
    dropped_by: str = ""
    group: str = ""  # "": the whole arm; else its phase or prompt class


@dataclass(frozen=True)
class Verdict:
    lines: tuple[ArmLine, ...]
    best: str | None
    decisive: bool
    recommended: str | None
    recommended_k: int | None
    tolerance: float
    statement: str  # what the data certify, in one line
    interleaved: bool
    metric: str = "client"
    vs_nospec: Interval | None = None  # fastest speculating arm / nospec, Student-t
    vs_nospec_arm: str | None = None
    vs_nospec_ref: str | None = None  # the nospec arm it is compared with (nospec_reference)
    screen: Screen | None = None
    screened_out: tuple[str, ...] = ()
    rounds_needed: int | None = None
    phases: tuple[ArmLine, ...] = field(default=())
    classes: tuple[ArmLine, ...] = field(default=())

    @property
    def smallest_of_tie(self) -> bool:
        """The recommendation is a smaller K than the fastest's, certified as good."""
        return self.recommended is not None and self.recommended != self.best

    def line(self, arm: str) -> ArmLine | None:
        return next((a for a in self.lines if a.arm == arm), None)


def nospec_reference(tps: Mapping[str, float]) -> str | None:
    """The arm speculation is compared with: nospec, or, where arms set thread counts,
    the fastest of the arms that do not speculate (nospec@t1, nospec@t2); None: none."""
    arms = [a for a in tps if is_nospec(a)]
    return max(arms, key=tps.__getitem__) if arms else None


def measured(samples: Sequence[StepSample]) -> list[StepSample]:
    """Successful, measured (not settle) steps."""
    return [s for s in samples if s.success and not s.settle]


def by_arm(samples: Sequence[StepSample]) -> dict[str, Sequence[StepSample]]:
    """Samples grouped by arm, arms in order of first appearance (a store that keeps a
    run column by column splits itself into per-arm views)."""
    split = getattr(samples, "by_arm_views", None)
    if split is not None:
        views: dict[str, Sequence[StepSample]] = split()
        return views
    out: dict[str, list[StepSample]] = {}
    for s in samples:
        out.setdefault(s.arm, []).append(s)
    return dict(out)


def race_config(tolerance: float) -> RaceConfig:
    """The race's settings, the same live (rounds.py) and from a CSV: decisive is what
    the data certify; the plan's first stop only holds a run back from stopping."""
    return RaceConfig(tolerance=tolerance, drop_from=DROP_FROM)


# -- per arm ----------------------------------------------------------------------------
def _tps_values(rows: Sequence[StepSample], metric: Metric) -> list[float]:
    """Per step: tokens/s (client: the arm's own reloads count as time)."""
    if metric == "server":
        return [s.predicted_n * 1000.0 / s.predicted_ms for s in rows
                if s.predicted_n and s.predicted_ms]  # fmt: skip
    extra = adapting_reload_ms(rows)  # one per row
    return [s.tokens * 1000.0 / (s.latency_ms + extra[i]) for i, s in enumerate(rows)
            if s.latency_ms + extra[i] > 0 and s.tokens > 0]  # fmt: skip


def t_interval_of_logs(logs: Sequence[float]) -> Interval | None:
    """A geometric mean with its Student-t interval (df = values - 1; one value: the
    point and an unbounded interval)."""
    if not logs:
        return None
    m = weighted_mean(np.array(logs), np.ones(len(logs)))
    if m.n < 2:
        return Interval(math.exp(m.mean), 0.0, math.inf)
    r = t_radius(m, CONFIDENCE)
    return Interval(math.exp(m.mean), math.exp(m.mean - r), exp_or_inf(m.mean + r))


def arm_line(arm: str, rows: Sequence[StepSample], metric: Metric, group: str = "") -> ArmLine:
    """What every verdict says of an arm: its figures (tokens/s over steps: a sequential
    run's; a race fills in its own interval over rounds)."""
    ok = measured(rows)
    lat = [s.latency_ms for s in ok]
    timed = [(s.predicted_n, s.predicted_ms) for s in ok if s.predicted_n and s.predicted_ms]
    server = sum(n for n, _ in timed) * 1000.0 / sum(ms for _, ms in timed) if timed else None
    cv = float(np.std(lat) / np.mean(lat)) if len(lat) >= 2 and sum(lat) > 0 else None
    logs = [math.log(v) for v in _tps_values(ok, metric)]
    return ArmLine(
        arm=arm, k=fixed_k(arm), n=len(ok), rounds=len({s.round for s in ok if s.round}),
        tps=t_interval_of_logs(logs), mean_ms=sum(lat) / len(lat) if lat else None,
        p95_ms=percentile_nearest_rank(lat, 95.0), server_tps=server, cv=cv, group=group,
    )  # fmt: skip


def welch_ratio(num: Sequence[float], den: Sequence[float]) -> Interval | None:
    """exp(mean log num - mean log den), Welch's t interval (unpaired: a sequential run)."""
    if len(num) < 1 or len(den) < 1:
        return None
    a, b = np.log(num), np.log(den)
    d = float(a.mean() - b.mean())
    if len(a) < 2 or len(b) < 2:
        return Interval(math.exp(d), 0.0, math.inf)
    va, vb = a.var(ddof=1) / len(a), b.var(ddof=1) / len(b)
    se = math.sqrt(va + vb)
    if se == 0:
        return Interval(math.exp(d), math.exp(d), math.exp(d))
    df = (va + vb) ** 2 / (va**2 / (len(a) - 1) + vb**2 / (len(b) - 1))
    r = t_quantile(0.5 + CONFIDENCE / 2, df) * se
    return Interval(math.exp(d), math.exp(d - r), exp_or_inf(d + r))


# -- the verdict --------------------------------------------------------------------------
def decide(
    samples: Sequence[StepSample],
    *,
    tolerance: float = DEFAULT_TOLERANCE,
    metric: Metric = "client",
    with_groups: bool = True,
) -> Verdict:
    rows = [s for s in samples if not s.settle]
    groups = by_arm(rows)
    interleaved = bool(rows) and all(s.round for s in rows)
    verdict = (_raced(rows, groups, tolerance, metric) if interleaved
               else _sequential(groups, tolerance, metric))  # fmt: skip
    if not with_groups:
        return verdict
    phases = _grouped(groups, metric, "phase", PHASES) if len({s.phase for s in rows}) > 1 else ()
    classes = (_grouped(groups, metric, "prompt_class", CLASSES)
               if len({s.prompt_class for s in rows if s.prompt_class}) > 1 else ())  # fmt: skip
    return _with(verdict, phases=phases, classes=classes)


T = TypeVar("T", ArmLine, Verdict)


def _with(v: T, **kw: object) -> T:
    return replace(v, **kw)  # type: ignore[arg-type]


def _grouped(
    groups: dict[str, Sequence[StepSample]], metric: Metric, key: str, known: tuple[str, ...]
) -> tuple[ArmLine, ...]:
    """Per arm and phase or prompt class: the known ones in their order, then any other
    (a hand-edited file) by name."""
    out = []
    for arm, rows in groups.items():
        ok = measured(rows)
        for g in sorted({getattr(s, key) for s in ok},
                        key=lambda p: (known.index(p) if p in known else len(known), p)):  # fmt: skip
            out.append(arm_line(arm, [s for s in ok if getattr(s, key) == g], metric, g))
    return tuple(out)


def _sequential(groups: dict[str, Sequence[StepSample]], tolerance: float, metric: Metric) -> Verdict:
    lines = [arm_line(a, rows, metric) for a, rows in groups.items()]
    values = {a: _tps_values(measured(rows), metric) for a, rows in groups.items()}
    ranked = {a.arm: a.tps.value for a in lines if a.tps is not None}
    best = max(ranked, key=ranked.__getitem__) if ranked else None
    out = [_with(a, vs_best=welch_ratio(values[best], values[a.arm]))
           if best is not None and a.arm != best else a for a in lines]  # fmt: skip
    spec = {a: v for a, v in ranked.items() if not is_nospec(a)}
    fastest = max(spec, key=spec.__getitem__) if spec else None
    ref = nospec_reference(ranked)
    vs = (welch_ratio(values[fastest], values[ref])
          if fastest is not None and ref is not None else None)  # fmt: skip
    return Verdict(
        lines=tuple(out), best=best, decisive=False, recommended=best,
        recommended_k=None if best is None else fixed_k(best), tolerance=tolerance,
        statement=SEQUENTIAL if best is not None else "no arm has a successful step",
        interleaved=False, metric=metric, vs_nospec=vs,
        vs_nospec_arm=fastest if vs is not None else None,
        vs_nospec_ref=ref if vs is not None else None,
    )  # fmt: skip


def _raced(
    rows: Sequence[StepSample], groups: dict[str, Sequence[StepSample]], tolerance: float,
    metric: Metric,
) -> Verdict:  # fmt: skip
    config = race_config(tolerance)
    rep = replay(rows, config, metric)
    st = rep.status
    words = race_words(rep, tolerance)
    by_arm_t = {a.arm: a for a in st.arms}
    vs_best = {p.arm: p.t for p in st.pairs}
    drops = {d.arm: d for d in st.dropped}
    lines = []
    for arm, arm_rows in groups.items():
        base = arm_line(arm, arm_rows, metric)
        race_t = by_arm_t.get(arm)
        eps = st.epsilon_of(arm)  # inf for an arm the race dropped or never certified
        d = drops.get(arm)
        lines.append(_with(
            base, rounds=race_t.rounds if race_t else base.rounds,
            tps=race_t.tps if race_t else base.tps, vs_best=vs_best.get(arm),
            status=words[arm], epsilon=eps if math.isfinite(eps) else None,
            dropped_round=d.round if d else None, dropped_by=d.by if d else "",
        ))  # fmt: skip
    needed = None if st.decisive else rep.race.rounds_needed()
    spec = [a for a in rep.race.names if not is_nospec(a) and a in by_arm_t]
    fastest = max(spec, key=lambda a: by_arm_t[a].tps.value) if spec else None
    ref = nospec_reference({a: t.tps.value for a, t in by_arm_t.items()})
    pair = rep.race.pair(fastest, ref) if fastest is not None and ref is not None else None
    return Verdict(
        lines=tuple(lines), best=st.best, decisive=st.decisive, recommended=st.recommended,
        recommended_k=st.recommended_k, tolerance=tolerance,
        statement=statement(st, config, needed), interleaved=True, metric=metric,
        vs_nospec=pair.t if pair else None, vs_nospec_arm=fastest if pair else None,
        vs_nospec_ref=ref if pair else None, screen=rep.screen, screened_out=rep.screened_out, rounds_needed=needed,
    )  # fmt: skip


def race_words(rep: Replay, tolerance: float) -> dict[str, str]:
    """Each arm's standing in the race: best, within (certified within the tolerance of
    the fastest), racing, dropped, screened out. One rule, for the summaries, the
    headless lines and the monitor."""
    st = rep.status
    dropped = {d.arm for d in st.dropped}
    out = {}
    for arm in (*rep.race.names, *rep.screened_out):
        if arm in rep.screened_out:
            out[arm] = "screened out"
        elif arm == st.best:
            out[arm] = "best"
        elif arm in dropped:
            out[arm] = "dropped"
        elif st.epsilon_of(arm) <= tolerance * (1 + 1e-9):
            out[arm] = "within"
        else:
            out[arm] = "racing"
    return out


# -- how long the decision took, from the rows alone --------------------------------
@dataclass(frozen=True)
class Decision:
    rounds: int  # the rounds run (0: no rounds, a sequential run)
    requests: int  # rows: measured and settle
    measured: int
    settle: int
    seconds: float | None  # first row's start to last row's end, from timestamps
    dropped: tuple[tuple[str, int], ...]  # (arm, last round it ran) for arms dropped early


def _epoch(stamp: str) -> float | None:
    try:
        return _dt.datetime.fromisoformat(stamp).timestamp()
    except ValueError:
        return None


def decision_of(samples: Sequence[StepSample]) -> Decision:
    ran = {s.round for s in samples if s.round}  # rounds are counted, not read off the
    last: dict[str, int] = {}  # largest number: a hand-edited file may skip some
    for s in samples:
        if s.round:
            last[s.arm] = max(last.get(s.arm, s.round), s.round)
    dropped = tuple((a, r) for a, r in last.items() if r < max(ran))  # ran: not empty here
    # Rows are written in time order, each stamped as it ends: the first and the last
    # stamped rows bound the run (the first one's latency back to its start).
    stamped = [s for s in (samples[0], samples[-1]) if s.timestamp] if samples else []
    seconds = None
    if len(stamped) == 2:
        start, end = _epoch(stamped[0].timestamp), _epoch(stamped[1].timestamp)
        if start is not None and end is not None:
            seconds = end - start + stamped[0].latency_ms / 1000.0
    n_settle = sum(1 for s in samples if s.settle)
    return Decision(len(ran), len(samples), len(samples) - n_settle, n_settle, seconds, dropped)


def main_server_kind(samples: Sequence[StepSample]) -> str:
    """The server kind most rows name (vllm, sglang, llama-server, ...), as
    `main_actuator`; "" when no row says (files written before the column)."""
    kinds = [s.server_kind for s in samples if s.server_kind]
    return max(dict.fromkeys(kinds), key=kinds.count) if kinds else ""


def main_actuator(samples: Sequence[StepSample]) -> str:
    """The actuator most rows name; a tie goes to the one seen first (not to the order
    of a set, which changes with the interpreter's string hashing)."""
    names = [s.actuator for s in samples if s.actuator]
    return max(dict.fromkeys(names), key=names.count) if names else ""
