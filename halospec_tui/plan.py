"""The benchmark plan as data: which arms, how many steps, which sleeps, when load comes.

Every number a plan holds is checked in one place (`validate`), whatever set it: a
named plan, the command line's overrides (`customise`), or a test.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, fields, replace
from typing import Literal

from halospec_tui.arms import (
    ADAPTIVE,
    ADAPTIVE_KINDS,
    K_LIMIT,
    NOSPEC,
    PMIN_N_MAX,
    THREADS_MAX,
    Arm,
    ArmError,
    parse_arms,
    with_threads,
)
from halospec_tui.conditions import (
    LOADS,
    MAX_CONCURRENCY,
    Condition,
    ConditionError,
    conditions_of,
)
from halospec_tui.errors import HalospecError

__all__ = [
    "ADAPTIVE", "ADAPTIVE_KINDS", "K_LIMIT", "NOSPEC", "PMIN_N_MAX", "ArmSpec", "Plan",
    "PlanError", "customise", "named_plan", "validate",
]  # fmt: skip

Schedule = Literal["sequential", "interleaved"]
Prompts = Literal["original", "pool"]
Workload = Literal["steady", "shift"]
Metric = Literal["client", "server"]  # what the verdict ranks: client or decode tokens/s


class PlanError(HalospecError, ValueError):
    """A plan that cannot run: bad arm name, K out of range, negative steps."""


@dataclass(frozen=True)
class ArmSpec:
    """An arm as the plan runs it: the arm, and its warmup and measured steps."""

    arm: Arm
    warmup_steps: int
    measured_steps: int

    @property
    def name(self) -> str:
        return self.arm.name

    @property
    def k(self) -> int | None:
        return self.arm.k

    @property
    def p_min(self) -> float:
        return self.arm.p_min

    @property
    def threads(self) -> int | None:
        return self.arm.threads

    @property
    def controller(self) -> str | None:
        return self.arm.controller

    @property
    def adaptive(self) -> bool:
        return self.arm.adaptive

    @property
    def warmup_k(self) -> int:
        return self.arm.warmup_k


@dataclass(frozen=True)
class Plan:
    name: str
    arms: tuple[ArmSpec, ...]
    warmup_sleep_s: float = 1.0
    cooldown_s: float = 2.0
    load_step: int = 6  # measured step at which the burner starts
    load_duration_s: float = 30.0
    prompts: Prompts = "original"  # "original" (the seed's one prompt) or "pool"
    max_tokens: int = 64
    # Interleaved schedule (schedule.py): rounds of one block per arm, order shuffled.
    schedule: Schedule = "sequential"
    rounds: int = 4  # interleaved: rounds (the most, with until_decisive)
    block: int = 2  # interleaved: measured steps per arm per round
    settle: int = 0  # interleaved: unmeasured requests after each change of K
    seed: int = 0  # round order and bootstrap
    until_decisive: bool = False  # stop once the verdict is decisive
    min_rounds: int = 4  # rounds before the verdict may stop the run
    drop_from_round: int = 3  # rounds before a clearly slower arm may be dropped
    max_time_s: float | None = None  # cap on the run's wall time (until_decisive)
    tolerance: float = 0.02  # arms within this of the best are tied
    load_round: int = 2  # interleaved: the round at which load starts
    load_rounds: int = 2  # interleaved: how many rounds it lasts
    workload: Workload = "steady"  # steady | shift (prompt classes alternate)
    shift_every: int = 8  # shift: prompts of one class before the other
    screen: bool = False  # interleaved: screen the K by a fitted model before racing
    metric: Metric = "client"  # the verdict ranks client tokens/s, or the server's decode
    # Interleaved: the loads (conditions.LOADS) and concurrency levels every arm is raced
    # under, one race each; both empty: no conditions (one race, one request at a time).
    conditions: tuple[str, ...] = ()
    concurrency: tuple[int, ...] = ()
    # --threads: the thread counts every arm was crossed with (X: X@t1, X@t2, ...);
    # (): none (an arm may still name its own, @tN).
    threads: tuple[int, ...] = ()

    @property
    def interleaved(self) -> bool:
        return self.schedule == "interleaved"

    @property
    def condition_list(self) -> tuple[Condition, ...]:
        """Every (load, level) the run races under; () for a run without conditions."""
        if not self.conditions and not self.concurrency:
            return ()
        return conditions_of(self.conditions or ("idle",), self.concurrency or (1,))


def arm_specs(
    names: list[str], warmup: int, fixed_steps: int, adaptive_steps: int
) -> tuple[ArmSpec, ...]:
    """The arms named, each with its steps (an adaptive arm takes `adaptive_steps`)."""
    return tuple(
        ArmSpec(a, warmup, adaptive_steps if a.adaptive else fixed_steps) for a in _parsed(names)
    )


def _parsed(names: list[str]) -> tuple[Arm, ...]:
    """The arms named, in order; PlanError for a name that is no arm or names one twice."""
    try:
        return parse_arms(names)
    except ArmError as e:
        raise PlanError(str(e)) from None


def _build(
    name: str,
    arm_names: list[str],
    warmup: int,
    fixed_steps: int,
    adaptive_steps: int,
    **kw: object,
) -> Plan:
    arms = arm_specs(arm_names, warmup, fixed_steps, adaptive_steps)
    return validate(Plan(name=name, arms=arms, **kw))  # type: ignore[arg-type]


CLASSIC_ARMS = [f"fixed_{k}" for k in range(1, 9)] + [ADAPTIVE]


def classic() -> Plan:
    """The original's numbers: 5 warmup, 10 measured (15 adaptive), 1 s / 2 s sleeps."""
    return _build("classic", CLASSIC_ARMS, 5, 10, 15)


def quick() -> Plan:
    """Same shape as classic (plus nospec) with few steps and short sleeps, for demos and tests."""
    return _build(
        "quick",
        [NOSPEC, *CLASSIC_ARMS],
        warmup=2,
        fixed_steps=4,
        adaptive_steps=8,
        warmup_sleep_s=0.05,
        cooldown_s=0.1,
        load_step=3,
        load_duration_s=2.0,
        prompts="pool",
    )


TUNE_ARMS = [NOSPEC] + [f"fixed_{k}" for k in range(1, 9)]


def tune() -> Plan:
    """Decide which K to run: interleaved rounds, settle after each K change, stop when decisive."""
    return _build(
        "tune",
        TUNE_ARMS,
        warmup=0,
        fixed_steps=4,
        adaptive_steps=4,
        warmup_sleep_s=0.0,
        cooldown_s=0.0,
        prompts="pool",
        schedule="interleaved",
        rounds=12,
        block=4,
        settle=1,
        until_decisive=True,
        max_time_s=600.0,
        screen=True,
    )


PLANS = {"classic": classic, "quick": quick, "tune": tune}


def named_plan(name: str) -> Plan:
    try:
        return PLANS[name]()
    except KeyError:
        raise PlanError(f"unknown plan {name!r} (choose from {', '.join(PLANS)})") from None


MAX_ROUNDS = 1000  # the most rounds a run may ask for
MAX_BLOCK = 1000  # the most measured steps of one arm in one round
MAX_SETTLE = 100  # the most unmeasured requests after a change of K
MAX_STEPS = 100_000  # the most warmup or measured steps of one arm
# Whole numbers of a plan: field -> (flag, least, most).
_INTS = {
    "rounds": ("--rounds", 1, MAX_ROUNDS),
    "block": ("--block", 1, MAX_BLOCK),
    "settle": ("--settle", 0, MAX_SETTLE),
    "load_round": ("--load-round", 1, MAX_ROUNDS),
    "load_rounds": ("--load-rounds", 0, MAX_ROUNDS),
    "shift_every": ("--shift-every", 1, MAX_STEPS),
    "load_step": ("--load-step", 1, MAX_STEPS),
}
# Seconds of a plan that may be 0 but not negative: field -> flag.
_SECONDS = {
    "warmup_sleep_s": "--warmup-sleep",
    "cooldown_s": "--cooldown",
    "load_duration_s": "--load-duration",
}
_CHOICES: dict[str, tuple[str, tuple[str, ...]]] = {
    "schedule": ("schedule", ("sequential", "interleaved")),
    "workload": ("workload", ("steady", "shift")),
    "prompts": ("prompt set", ("original", "pool")),
    "metric": ("metric", ("client", "server")),
}


def _check_number(flag: str, v: float) -> None:
    if not math.isfinite(v):
        raise PlanError(f"{flag} must be a finite number (got {v})")


def _check_whole(flag: str, v: int, least: int, most: int) -> None:
    if v < least:
        if least == 0 and flag in ("--warmup", "--steps", "--adaptive-steps"):
            raise PlanError(f"{flag} must not be negative (got {v})")
        raise PlanError(f"{flag} must be at least {least} (got {v})")
    if v > most:
        raise PlanError(f"{flag} must be at most {most} (got {v})")


def validate(plan: Plan) -> Plan:
    """The plan, if every number and choice it holds can run; else PlanError naming the
    command-line flag that sets it. The one place a plan is checked."""
    if not plan.arms:
        raise PlanError("a plan needs at least one arm")
    for spec in plan.arms:
        _check_whole("--warmup", spec.warmup_steps, 0, MAX_STEPS)
        flag = "--adaptive-steps" if spec.adaptive and not plan.interleaved else "--steps"
        _check_whole(flag, spec.measured_steps, 0, MAX_STEPS)
    for name, (flag, least, most) in _INTS.items():
        _check_whole(flag, getattr(plan, name), least, most)
    for name, flag in _SECONDS.items():
        v = getattr(plan, name)
        _check_number(flag, v)
        if v < 0:
            raise PlanError(f"{flag} must not be negative (got {v})")
    _check_number("--tolerance", plan.tolerance)
    if not 0 <= plan.tolerance < 1:
        raise PlanError(f"--tolerance must be at least 0 and below 1 (got {plan.tolerance})")
    if plan.max_time_s is not None:
        _check_number("--max-time", plan.max_time_s)
        if plan.max_time_s <= 0:
            raise PlanError(f"--max-time must be positive (got {plan.max_time_s})")
    for name, (what, allowed) in _CHOICES.items():
        v = getattr(plan, name)
        if v not in allowed:
            raise PlanError(f"unknown {what} {v!r} (choose {' or '.join(allowed)})")
    if plan.name == "classic" and (plan.until_decisive or plan.interleaved):
        raise PlanError(
            "the classic plan keeps the original's sequential schedule: "
            "use --plan tune (or quick) for interleaved rounds and --until-decisive"
        )
    if plan.until_decisive and not plan.interleaved:
        raise PlanError("--until-decisive needs --schedule interleaved")
    if plan.workload == "shift" and plan.prompts != "pool":
        raise PlanError("--workload shift draws prompts by class: drop --prompts original")
    _check_conditions(plan)
    _check_threads(plan)
    return plan


def _check_threads(plan: Plan) -> None:
    """--threads: counts within 1..THREADS_MAX, each once, on a plan that may change
    its arms (not classic), and the arms crossed with exactly those counts."""
    if not plan.threads:
        return
    if plan.name == "classic":
        raise PlanError("--threads adds arms: the classic plan keeps the original's; use "
                        "--plan tune or quick")  # fmt: skip
    for n in plan.threads:
        _check_whole("--threads", n, 1, THREADS_MAX)
    if len(set(plan.threads)) != len(plan.threads):
        raise PlanError("--threads lists a thread count twice")
    if any(a.threads not in plan.threads for a in plan.arms):
        raise PlanError("--threads crosses every arm with each thread count: an arm with "
                        "its own @tN cannot be given with it")  # fmt: skip


def _check_conditions(plan: Plan) -> None:
    if not plan.conditions and not plan.concurrency:
        return
    if not plan.interleaved:
        raise PlanError("--conditions and --concurrency race arms in rounds: use --plan tune "
                        "(or --schedule interleaved)")  # fmt: skip
    for name in plan.conditions:
        if name not in LOADS:
            raise PlanError(f"--conditions: unknown condition {name!r} (choose from {', '.join(LOADS)})")
    if len(set(plan.conditions)) != len(plan.conditions):
        raise PlanError("--conditions lists a condition twice")
    for c in plan.concurrency:
        _check_whole("--concurrency", c, 1, MAX_CONCURRENCY)
    if len(set(plan.concurrency)) != len(plan.concurrency):
        raise PlanError("--concurrency lists a level twice")
    try:
        _ = plan.condition_list  # too many loads x levels
    except ConditionError as e:
        raise PlanError(str(e)) from None


def customise(
    plan: Plan,
    *,
    arms: list[str] | None = None,
    warmup: int | None = None,
    steps: int | None = None,
    adaptive_steps: int | None = None,
    threads: tuple[int, ...] | None = None,
    **settings: object,
) -> Plan:
    """A plan with some of its numbers overridden (None: keep the plan's), then checked.

    `settings` are Plan fields (rounds=, tolerance=, ...). `arms` are names: an arm the
    plan has keeps its warmup; a new one takes the first arm's. `steps` and
    `adaptive_steps` set the measured steps of fixed and adaptive arms; in rounds a
    block is every arm's measured steps. `threads` crosses every arm (those named, or
    the plan's) with each thread count, in the order given."""
    given = {k: v for k, v in settings.items() if v is not None}
    unknown = set(given) - {f.name for f in fields(Plan)}
    if unknown:
        raise TypeError(f"customise() got unknown settings {sorted(unknown)}")
    if given.get("tolerance") == 0:
        given["tolerance"] = 0.0  # not -0.0: "tied within -0%" means nothing
    if given.get("workload") == "shift":
        if given.get("prompts") == "original":
            raise PlanError("--workload shift draws prompts by class: drop --prompts original")
        given["prompts"] = "pool"
    if given.get("schedule") == "sequential" and "until_decisive" not in given:
        given["until_decisive"] = False
    for flag, v in (("--warmup", warmup), ("--steps", steps), ("--adaptive-steps", adaptive_steps)):
        if v is not None:
            _check_whole(flag, v, 0, MAX_STEPS)
    new = replace(plan, arms=_arms_for(plan, arms, warmup, steps, adaptive_steps), **given)  # type: ignore[arg-type]
    if threads:
        new = _crossed(new, threads)
    if new.interleaved and ("block" in given or not plan.interleaved):
        # In rounds, an arm's measured steps are one block.
        new = replace(new, arms=tuple(replace(a, measured_steps=new.block) for a in new.arms))
    return validate(new)


def _crossed(plan: Plan, threads: tuple[int, ...]) -> Plan:
    """The plan with every arm crossed with each thread count (each keeps its steps)."""
    try:
        specs = tuple(replace(s, arm=a) for s in plan.arms for a in with_threads([s.arm], threads))
    except ArmError as e:
        raise PlanError(str(e)) from None
    return replace(plan, arms=specs, threads=threads)


def _arms_for(
    plan: Plan,
    names: list[str] | None,
    warmup: int | None,
    steps: int | None,
    adaptive_steps: int | None,
) -> tuple[ArmSpec, ...]:
    """The arms of a customised plan, each with its warmup and measured steps."""
    if names is not None and not names:
        raise PlanError("a plan needs at least one arm")
    arms = _parsed(names) if names is not None else tuple(a.arm for a in plan.arms)
    old = {a.arm: a for a in plan.arms}
    fixed = next((a.measured_steps for a in plan.arms if not a.adaptive), 10)
    adaptive = next((a.measured_steps for a in plan.arms if a.adaptive), 15)
    first_warmup = plan.arms[0].warmup_steps
    out = []
    for arm in arms:
        base = old.get(arm)
        w = warmup if warmup is not None else (base.warmup_steps if base else first_warmup)
        if arm.adaptive:
            n = adaptive_steps if adaptive_steps is not None else adaptive
        else:
            n = steps if steps is not None else fixed
        out.append(ArmSpec(arm, w, n))
    return tuple(out)
