"""The race of an interleaved run, from its rows: the same replay live and from a CSV.

A run in rounds is decided by `race.Race` over per-round figures (tokens, time and
steps of each arm's block). This module turns rows into those figures and replays the
race round by round, with the screen first when the run had one, so that the runner
(after every round) and `report` (from the CSV alone) reach the same decisions.

Figures come from an arm's successful measured steps of the round (settle steps and
failed steps are not measurements; a step whose K the server did not take is a
failed step). A step that sent c requests at once (a condition's concurrency) is one
row per request: together they count once, with the step's wall time, so the figure
is the aggregate tokens/s of the c clients. Time is client latency, plus, for an arm that changes K itself, the
reloads its own changes cost (`stats.adapting_reload_ms`); with `metric="server"` it
is the server's decode time and tokens its decoded tokens (`timings`), which K changes
and the prompt does not.

The screen (`screen.py`): in the first SCREEN_ROUNDS rounds only nospec, a middle K
and the largest K run; the model fitted on them picks the arms the race keeps (among
the run's fixed K). From a CSV the screen is recognised by its rounds: the leading
rounds run the same three arms, nospec among them, and a later round runs another
arm; the arms it could pick from are then those the rows name (the ones it picked
ran, and every K it left out was predicted slower than those, so the pick is the
same). Its curve is the model's tokens/s for every K from 0 to the largest screened.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Literal

from halospec_tui.arms import NOSPEC, arm_of, fixed_k, lean_key
from halospec_tui.race import Figures, Race, RaceConfig, RaceStatus
from halospec_tui.screen import Counts, Screen, screen
from halospec_tui.stats import StepSample, adapting_reload_ms

Metric = Literal["client", "server"]
SCREEN_ROUNDS = 2  # rounds of the three screen arms before the race


@dataclass(frozen=True)
class Block:
    """One arm's block in one round: what the race and the screen read of it."""

    tokens: float
    ms: float
    steps: int
    drafted: float
    accepted: float


def arm_order(arms: Sequence[str]) -> list[str]:
    """Arms in one order whatever the rows' order: by K (no K last), then by thread
    count (the server's own last: arms.lean_key), then by name."""
    return sorted(dict.fromkeys(arms), key=lambda a: (fixed_k(a) is None, *lean_key(a, fixed_k(a) or 0), a))


def blocks_by_round(
    samples: Sequence[StepSample], metric: Metric = "client"
) -> dict[int, dict[str, Block]]:
    """round -> arm -> Block, from measured successful steps (rows without a round: none)."""
    by_arm: dict[str, list[StepSample]] = {}
    for s in samples:
        if s.round and not s.settle:
            by_arm.setdefault(s.arm, []).append(s)
    out: dict[int, dict[str, Block]] = {}
    for arm, rows in by_arm.items():
        a = arm_of(arm)
        reloads = adapting_reload_ms(rows) if a is not None and a.adaptive else [0] * len(rows)
        acc: dict[int, list[float]] = {}
        for i, s in enumerate(rows):
            extra = reloads[i]
            if not s.success or s.round is None:
                continue
            if metric == "server":
                if not s.predicted_n or not s.predicted_ms:
                    continue
                tokens, ms = float(s.predicted_n), float(s.predicted_ms)
            else:
                tokens, ms = float(s.tokens), float(s.latency_ms + extra)
            share = 1.0
            if s.concurrency and s.concurrency > 1 and s.step_ms is not None and metric == "client":
                # One of c requests sent at once: its share of the step's wall time, so
                # that the block's figure is the aggregate, all tokens over wall time.
                share = 1.0 / s.concurrency
                ms = s.step_ms * share + extra
            t = acc.setdefault(s.round, [0.0, 0.0, 0.0, 0.0, 0.0])
            t[0] += tokens
            t[1] += ms
            t[2] += share
            t[3] += s.drafted or 0
            t[4] += s.accepted or 0
        for rnd, (tok, ms, n, dr, ac) in acc.items():
            out.setdefault(rnd, {})[arm] = Block(tok, ms, max(1, round(n)), dr, ac)
    return dict(sorted(out.items()))


def screenable(arm: str) -> bool:
    """An arm the screen's model covers: nospec or fixed_K at the server's own thread
    count (the model has no term for threads: arms with @tN are always raced)."""
    x = arm_of(arm)
    return x is not None and x.kind in ("fixed", "nospec") and x.threads is None


def screen_arms(arms: Sequence[str]) -> tuple[str, ...] | None:
    """nospec, the middle K and the largest K of the arms' fixed-K (not pmin) arms;
    None when there is nothing to screen (fewer than four fixed K, or no nospec)."""
    fixed = sorted((fixed_k(a) or 0, a) for a in arms if screenable(a))
    ks = [k for k, _ in fixed]
    if 0 not in ks or len(fixed) < 5:
        return None
    spec = [a for k, a in fixed if k > 0]
    return (fixed[0][1], spec[(len(spec) - 1) // 2], spec[-1])


def screen_of(rounds: Sequence[Mapping[str, Block]], arms: Sequence[str], tolerance: float) -> Screen:
    counts = [{fixed_k(a) or 0: Counts(b.tokens, b.ms, b.drafted, b.accepted)
               for a, b in r.items() if screenable(a)} for r in rounds]  # fmt: skip
    ks = sorted({fixed_k(a) or 0 for a in arms if screenable(a)})
    out = screen(counts, ks, tolerance)
    fit = out.fit
    if fit is None:
        return out
    top = max(k for r in counts for k in r)  # a fit means some K was measured
    return replace(out, predicted=tuple((k, fit.tps(k)) for k in range(top + 1)))


@dataclass(frozen=True)
class Replay:
    race: Race
    status: RaceStatus
    screen: Screen | None  # None: no screen
    screened_out: tuple[str, ...]  # arms the screen left out of the race


def replay(
    samples: Sequence[StepSample],
    config: RaceConfig,
    metric: Metric = "client",
    arms: Sequence[str] | None = None,
    screened: bool | None = None,
) -> Replay:
    """The race of an interleaved run's rows, round by round.

    `arms`: the run's arms (live: the plan's; default: those the rows name).
    `screened`: whether the run screened first (live: the plan says; None: recognise
    it from the rows, as `report` must)."""
    rounds = blocks_by_round(samples, metric)
    names = arm_order(arms if arms is not None else [s.arm for s in samples])
    order = sorted(rounds)
    if screened is None:
        trio = _screened_trio(rounds)
        screened = trio is not None
    else:
        trio = screen_arms(names)
    scr: Screen | None = None
    racing = names
    if screened and trio is not None and len(order) >= SCREEN_ROUNDS:
        first = [rounds[r] for r in order[:SCREEN_ROUNDS]]
        scr = screen_of(first, names, config.tolerance)
        keep = set(scr.race)
        racing = [a for a in names if not screenable(a) or fixed_k(a) in keep]
    race = Race({a: fixed_k(a) for a in racing}, config)
    status = race.status
    for r in order:
        status = race.add_round(r, {a: Figures(b.tokens, b.ms, b.steps) for a, b in rounds[r].items()})
    out = tuple(a for a in names if a not in racing)
    return Replay(race, status, scr, out)


def _screened_trio(rounds: Mapping[int, Mapping[str, Block]]) -> tuple[str, ...] | None:
    """The screen arms, when the rows show a screen: the leading SCREEN_ROUNDS rounds
    ran the same three fixed-K arms (nospec among them), and a later round another."""
    order = sorted(rounds)
    leading = {frozenset(rounds[r]) for r in order[:SCREEN_ROUNDS]}
    if len(leading) != 1:
        return None
    (trio,) = leading
    if len(trio) != 3 or NOSPEC not in trio or not all(screenable(a) for a in trio):
        return None
    if not any(set(rounds[r]) - trio for r in order[SCREEN_ROUNDS:]):
        return None
    return tuple(arm_order(list(trio)))
