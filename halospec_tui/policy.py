"""A policy, not only a K: the pick per condition, and what one static K would cost.

Pure: per-condition verdicts in (verdict.py, one race per condition), a table out.

- Each row is a condition (`idle@1`, `memory@3`, ...): its verdict's recommendation,
  that arm's tokens/s with its interval, the arms tied with it, and what to paste.
- The single best static K is the fixed arm (nospec, fixed_K, pmin:P) measured in
  every condition that maximises the mean over conditions of its tokens/s relative to
  each condition's fastest; a tie goes to the smallest K, then the name.
- Its regret in a condition is 1 - its tokens/s / the condition's fastest, from the
  race's paired ratio (fastest / arm over the rounds both ran, Student-t): the point
  is 1 - 1/ratio, and the 95% interval maps the ratio's bounds the same way (1 - 1/x
  grows with x). Each interval holds for its condition alone (not jointly), and the
  choice of the static K is made on the same data, so the intervals are a guide,
  not a guarantee. An arm without a pair (no shared round) gets the point figure
  from the two geometric means, labelled as a point.
- The advice line says how the server in use can follow the table.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from halospec_tui.arms import arm_of, fixed_k, lean_key, threads_of
from halospec_tui.conditions import ConditionError, parse_key
from halospec_tui.paste import recommendation_line
from halospec_tui.race import Interval
from halospec_tui.verdict import Verdict


@dataclass(frozen=True)
class Regret:
    """1 - arm/fastest: the point, and its interval when the race paired them
    (None: a point figure only). Bounds may be infinite (too few rounds)."""

    value: float
    lo: float | None = None
    hi: float | None = None


@dataclass(frozen=True)
class PolicyRow:
    condition: str  # LOAD@C
    best: str | None  # the fastest arm
    recommended: str | None  # the verdict's pick (the smallest K certified within tolerance)
    recommended_k: int | None
    tps: Interval | None  # the pick's tokens/s (aggregate over the condition's clients)
    tied: tuple[str, ...]  # every arm certified within the tolerance of the fastest
    decisive: bool
    epsilon: float | None  # not decisive: the pick is certified within this share
    setting: str  # the recommendation line: what to do, and what to paste
    static_regret: Regret | None  # the single best static K here (None: not measured)


@dataclass(frozen=True)
class Policy:
    rows: tuple[PolicyRow, ...]
    static: str | None  # the single best static arm (None: no arm ran everywhere)
    static_k: int | None
    mean_regret: float | None  # of the static arm, over the conditions
    worst: str | None  # the condition where the static arm loses most
    advice: str  # how the server in use can follow the table
    tolerance: float


def relative_rates(v: Verdict) -> dict[str, float]:
    """Each arm's tokens/s relative to the condition's fastest (the fastest: 1)."""
    best = v.line(v.best) if v.best is not None else None
    if best is None or best.tps is None or best.tps.value <= 0:
        return {}
    out = {best.arm: 1.0}
    for a in v.lines:
        if a.arm == best.arm:
            continue
        if a.vs_best is not None and a.vs_best.value > 0:
            out[a.arm] = 1.0 / a.vs_best.value
        elif a.tps is not None:
            out[a.arm] = a.tps.value / best.tps.value
    return out


def regret_of(v: Verdict, arm: str) -> Regret | None:
    """1 - arm/fastest in this condition (see the module's docstring); None when the
    arm has no figure here."""
    if arm == v.best:
        return Regret(0.0, 0.0, 0.0)
    line = v.line(arm)
    if line is None:
        return None
    r = line.vs_best
    if r is not None and r.value > 0:
        lo = 1.0 - 1.0 / r.lo if r.lo > 0 else -math.inf
        hi = 1.0 - 1.0 / r.hi  # an unbounded ratio (inf): 1
        return Regret(1.0 - 1.0 / r.value, lo, hi)
    rel = relative_rates(v).get(arm)
    return None if rel is None else Regret(1.0 - rel)


def _k_order(arm: str) -> tuple[int, int, str]:
    return (*lean_key(arm, fixed_k(arm)), arm)


def best_static(rates: Sequence[Mapping[str, float]]) -> str | None:
    """The fixed arm measured in every condition with the largest mean relative rate;
    a tie (equal means) goes to the smallest K, then fewer threads, then the name
    (arms.lean_key). None: no such arm."""
    if not rates:
        return None
    shared = set.intersection(*(set(r) for r in rates))
    candidates = sorted((a for a in shared if fixed_k(a) is not None), key=_k_order)
    if not candidates:
        return None
    # every mean is over the same len(rates) conditions: the largest sum is the largest mean
    sums = {a: math.fsum(r[a] for r in rates) for a in candidates}
    top = max(sums.values())
    return next(a for a in candidates if sums[a] == top)


def build_policy(
    verdicts: Sequence[tuple[str, Verdict]],
    actuator: str,
    server_kind: str = "",
    reload_ms: float | None = None,
) -> Policy:
    """The policy table from per-condition verdicts (canonical order kept)."""
    static = best_static([relative_rates(v) for _, v in verdicts])
    rows = tuple(_row(cond, v, actuator, server_kind, static) for cond, v in verdicts)
    regrets = [(r.condition, r.static_regret.value) for r in rows if r.static_regret is not None]
    # regrets: one per condition when there is a static arm (it has a rate everywhere), none else
    mean = math.fsum(x for _, x in regrets) / len(regrets) if regrets else None
    worst = max(regrets, key=lambda cr: cr[1])[0] if regrets else None
    tolerance = verdicts[0][1].tolerance if verdicts else 0.0
    return Policy(rows, static, fixed_k(static) if static else None, mean, worst,
                  advice(rows, server_kind, reload_ms), tolerance)  # fmt: skip


def _row(cond: str, v: Verdict, actuator: str, server_kind: str, static: str | None) -> PolicyRow:
    pick = v.line(v.recommended) if v.recommended is not None else None
    tied = tuple(a.arm for a in v.lines if a.status in ("best", "within"))
    return PolicyRow(
        condition=cond, best=v.best, recommended=v.recommended, recommended_k=v.recommended_k,
        tps=pick.tps if pick is not None else None, tied=tied if len(tied) > 1 else (),
        decisive=v.decisive, epsilon=pick.epsilon if pick is not None else None,
        setting=recommendation_line(v, actuator, server_kind),
        static_regret=regret_of(v, static) if static is not None else None,
    )  # fmt: skip


# -- how the server can follow it ------------------------------------------------------
def _level(cond: str) -> tuple[str, int] | None:
    try:
        c = parse_key(cond)
    except ConditionError:
        return None
    return c.load, c.concurrency


def cutoff(rows: Sequence[PolicyRow]) -> int | None:
    """The concurrency level from which every load's pick is nospec, when below it the
    pick speculates: speculation pays at low concurrency only. None: no such level."""
    by_load: dict[str, list[tuple[int, int | None]]] = {}
    for r in rows:
        lv = _level(r.condition)
        if lv is not None:
            by_load.setdefault(lv[0], []).append((lv[1], r.recommended_k))
    cuts = set()
    for levels in by_load.values():
        levels.sort()
        off = [c for c, k in levels if k == 0]
        on = [c for c, k in levels if k is not None and k > 0]
        if not off or not on or max(on) > min(off) or any(k is None for _, k in levels):
            return None
        cuts.add(min(off))
    return cuts.pop() if len(cuts) == 1 else None


def advice(rows: Sequence[PolicyRow], server_kind: str, reload_ms: float | None = None) -> str:
    """How the server in use can follow the table: nothing to switch; vLLM's batch-size
    cut-off for speculation; else a restart (reload) per change, or an adaptive arm."""
    picks = {r.recommended for r in rows if r.recommended is not None}
    if len(picks) <= 1:
        return "one setting serves every condition: nothing to switch"
    cut = cutoff(rows)
    if server_kind == "vllm" and cut is not None:
        return (
            f"vLLM can switch by itself: speculation pays below {cut} concurrent requests "
            f'only; add "disable_by_batch_size": {cut - 1} to --speculative-config (older '
            f"versions: --speculative-disable-by-batch-size {cut - 1}) where your version "
            "honours it: speculation stops when more than "
            f"{cut - 1} requests run at once"
        )
    reload = f" (a reload took {reload_ms:.0f} ms in this run)" if reload_ms is not None else ""
    who = {"vllm": "vLLM", "sglang": "SGLang", "lemonade": "Lemonade"}.get(server_kind, "llama-server")
    threads = any(threads_of(p) is not None for p in picks)
    what = "K and the thread count at launch: nothing switches them" if threads else (
        "K at launch: nothing switches it")  # fmt: skip
    how = (
        f"{who} takes {what} at run time; follow the table by "
        f"reloading the server with the row's setting when the condition changes{reload}, "
        "or race an adaptive arm (adaptive:model), which switches with its reload cost counted"
    )
    if cut is not None:
        how = f"speculation pays below {cut} concurrent requests only; " + how
    return how


def pick_text(r: PolicyRow) -> str:
    """The pick in words: nospec is "speculation off"; an arm and its K otherwise."""
    if r.recommended is None:
        return "-"
    arm = arm_of(r.recommended)
    if arm is not None and arm.kind == "nospec":
        return "speculation off" + ("" if arm.threads is None else f" @t{arm.threads}")
    return r.recommended
