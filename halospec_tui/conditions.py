"""What a condition of the tune plan is: a load (or none) and a concurrency level.

A run with conditions (`--conditions idle,memory --concurrency 1,3`) races every arm
under each condition: `idle@1` (no load, one request at a time), `memory@3` (the
memory burners on, three requests at a time from the tool's own clients), and so on.
Each condition has its own race and verdict; the policy (policy.py) sums them up.

A condition's canonical name, `LOAD@C`, is what the summaries and the monitor show;
the CSV keeps its parts in columns of their own (`condition`: the load, `concurrency`).
Pure functions: the plan, the schedule and the reader ask, this module answers.
"""

from __future__ import annotations

import random
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from halospec_tui.errors import HalospecError

IDLE = "idle"
LOADS = (IDLE, "cpu", "memory", "requests")  # idle first: the canonical order
MAX_CONCURRENCY = 16  # concurrent requests of one step, at most
MAX_CONDITIONS = 32  # loads x levels


class ConditionError(HalospecError, ValueError):
    """A --conditions or --concurrency list that cannot run."""


@dataclass(frozen=True, order=True)
class Condition:
    """A load (idle: none) and the requests a step sends at once."""

    load: str
    concurrency: int = 1

    @property
    def key(self) -> str:
        """The canonical name, `LOAD@C`: idle@1, memory@3."""
        return f"{self.load}@{self.concurrency}"

    def describe(self) -> str:
        """In words: "idle, 1 request at a time", "memory load, 3 requests at a time"."""
        load = "idle" if self.load == IDLE else f"{self.load} load"
        n = self.concurrency
        return f"{load}, {n} request{'' if n == 1 else 's'} at a time"

    @property
    def sort_key(self) -> tuple[int, int]:
        return (LOADS.index(self.load) if self.load in LOADS else len(LOADS), self.concurrency)


def parse_key(key: str) -> Condition:
    """`LOAD@C` back into a Condition (the inverse of `Condition.key`)."""
    load, sep, level = key.partition("@")
    if not sep or load not in LOADS or not level.isdigit():
        raise ConditionError(f"not a condition: {key!r} (LOAD@N, LOAD one of {', '.join(LOADS)})")
    c = int(level)
    if not 1 <= c <= MAX_CONCURRENCY:
        raise ConditionError(f"condition {key!r}: concurrency must be 1..{MAX_CONCURRENCY}")
    return Condition(load, c)


def _items(text: str) -> list[str]:
    return [x.strip() for x in text.split(",") if x.strip()]


def parse_loads(text: str) -> tuple[str, ...]:
    """`--conditions idle,cpu,memory`: each a load of LOADS, once, in canonical order."""
    names = [x.lower() for x in _items(text)]
    if not names:
        raise ConditionError(f"--conditions needs at least one of {', '.join(LOADS)}")
    for n in names:
        if n not in LOADS:
            raise ConditionError(f"--conditions: unknown condition {n!r} (choose from {', '.join(LOADS)})")
    if len(set(names)) != len(names):
        raise ConditionError(f"--conditions lists a condition twice: {text!r}")
    return tuple(sorted(names, key=LOADS.index))


def parse_levels(text: str) -> tuple[int, ...]:
    """`--concurrency 1,2,4`: whole numbers 1..MAX_CONCURRENCY, once each, ascending."""
    items = _items(text)
    if not items:
        raise ConditionError("--concurrency needs at least one level, e.g. 1,2,4")
    levels = []
    for x in items:
        if not x.isdigit():
            raise ConditionError(f"--concurrency: {x!r} is not a whole number")
        c = int(x)
        if not 1 <= c <= MAX_CONCURRENCY:
            raise ConditionError(f"--concurrency: {c} is not from 1 to {MAX_CONCURRENCY}")
        levels.append(c)
    if len(set(levels)) != len(levels):
        raise ConditionError(f"--concurrency lists a level twice: {text!r}")
    return tuple(sorted(levels))


def conditions_of(loads: Iterable[str], levels: Iterable[int]) -> tuple[Condition, ...]:
    """Every load at every level, in canonical order (idle first, then by level)."""
    out = sorted({Condition(load, c) for load in loads for c in levels}, key=lambda x: x.sort_key)
    if len(out) > MAX_CONDITIONS:
        raise ConditionError(f"{len(out)} conditions: at most {MAX_CONDITIONS} (loads x levels)")
    return tuple(out)


def condition_order(conditions: Sequence[Condition], seed: int, round_no: int) -> list[Condition]:
    """The conditions in a fresh order for one round, reproducible from (seed, round)
    (another stream than the arms' order: schedule.round_order)."""
    order = list(conditions)
    random.Random(seed * 1_000_033 + round_no * 7 + 3).shuffle(order)
    return order


def arm_seed(seed: int, index: int) -> int:
    """The seed of the arms' order within the condition at `index` (canonical order):
    the run's own for the first, so one condition orders its arms as a plain run."""
    return seed + 7_919 * index


def key_of(load: str, concurrency: int | None) -> str:
    """A row's condition name; "" for a row without one (a run without conditions)."""
    return Condition(load, concurrency or 1).key if load else ""


def _parsed(key: str) -> Condition | None:
    try:
        return parse_key(key)
    except ConditionError:
        return None


def ordered_keys(keys: Iterable[str]) -> list[str]:
    """Condition names in canonical order (names that do not parse last, by name)."""
    parsed = {k: _parsed(k) for k in set(keys)}
    known = sorted((c.sort_key, k) for k, c in parsed.items() if c is not None)
    return [k for _, k in known] + sorted(k for k, c in parsed.items() if c is None)
