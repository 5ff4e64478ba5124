"""The benchmark plan as data: which modes, how many steps, which sleeps, when load comes."""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, replace

from halospec_tui.errors import HalospecError

K_LIMIT = 16  # largest draft length a plan may ask for
ADAPTIVE = "adaptive"
NOSPEC = "nospec"  # K = 0: the target decodes alone
_FIXED_RE = re.compile(r"^fixed_(\d+)$")


class PlanError(HalospecError, ValueError):
    """A plan that cannot run: bad mode name, K out of range, negative steps."""


ADAPTIVE_KINDS = ("model", "bandit")  # adaptive:model, adaptive:bandit
PMIN_N_MAX = 16  # pmin:P drafts up to this many tokens and lets p_min stop it early


@dataclass(frozen=True)
class ModeSpec:
    name: str
    k: int | None  # fixed K (0: no speculation), or None for an adaptive controller
    warmup_steps: int
    measured_steps: int
    controller: str | None = None  # adaptive:NAME; None: the plan's --controller
    p_min: float = 0.0  # pmin:P: the server stops drafting below this confidence

    @property
    def adaptive(self) -> bool:
        return self.k is None

    @property
    def warmup_k(self) -> int:
        return self.k if self.k is not None else 4


@dataclass(frozen=True)
class Plan:
    name: str
    modes: tuple[ModeSpec, ...]
    warmup_sleep_s: float = 1.0
    cooldown_s: float = 2.0
    load_step: int = 6  # measured step at which the burner starts
    load_duration_s: float = 30.0
    prompts: str = "original"  # "original" (the seed's one prompt) or "pool"
    max_tokens: int = 64
    # Interleaved schedule (schedule.py): rounds of one block per arm, order shuffled.
    schedule: str = "sequential"  # sequential | interleaved
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
    workload: str = "steady"  # steady | shift (prompt classes alternate)
    shift_every: int = 8  # shift: prompts of one class before the other

    @property
    def interleaved(self) -> bool:
        return self.schedule == "interleaved"



def parse_mode(name: str, warmup: int, fixed_steps: int, adaptive_steps: int) -> ModeSpec:
    if name == ADAPTIVE:
        return ModeSpec(ADAPTIVE, None, warmup, adaptive_steps)
    if name.startswith(ADAPTIVE + ":"):
        kind = name.partition(":")[2]
        if kind not in ADAPTIVE_KINDS:
            raise PlanError(
                f"unknown adaptive arm {name!r}: use adaptive, "
                + ", ".join(f"adaptive:{k}" for k in ADAPTIVE_KINDS)
            )
        return ModeSpec(name, None, warmup, adaptive_steps, controller=kind)
    if name.startswith("pmin:"):
        try:
            p = float(name.partition(":")[2])
        except ValueError:
            p = math.nan
        if not 0.0 < p < 1.0:
            raise PlanError(f"{name!r}: p_min must be a number between 0 and 1, e.g. pmin:0.75")
        return ModeSpec(name, PMIN_N_MAX, warmup, fixed_steps, p_min=p)
    if name == NOSPEC:
        return ModeSpec(NOSPEC, 0, warmup, fixed_steps)
    m = _FIXED_RE.match(name)
    if not m:
        raise PlanError(
            f"unknown mode {name!r}: use nospec, fixed_K (K in 1..{K_LIMIT}), pmin:P, "
            "adaptive, adaptive:model or adaptive:bandit"
        )
    k = int(m.group(1))
    if not 1 <= k <= K_LIMIT:
        raise PlanError(f"draft length {k} in {name!r} is outside 1..{K_LIMIT}")
    return ModeSpec(name, k, warmup, fixed_steps)


def _build(
    name: str,
    mode_names: list[str],
    warmup: int,
    fixed_steps: int,
    adaptive_steps: int,
    **kw: object,
) -> Plan:
    modes = tuple(parse_mode(n, warmup, fixed_steps, adaptive_steps) for n in mode_names)
    return Plan(name=name, modes=modes, **kw)  # type: ignore[arg-type]


ALL_MODES = [f"fixed_{k}" for k in range(1, 9)] + [ADAPTIVE]


def classic() -> Plan:
    """The original's numbers: 5 warmup, 10 measured (15 adaptive), 1 s / 2 s sleeps."""
    return _build("classic", ALL_MODES, 5, 10, 15)


def quick() -> Plan:
    """Same shape as classic (plus nospec) with few steps and short sleeps, for demos and tests."""
    return _build(
        "quick",
        [NOSPEC, *ALL_MODES],
        warmup=2,
        fixed_steps=4,
        adaptive_steps=8,
        warmup_sleep_s=0.05,
        cooldown_s=0.1,
        load_step=3,
        load_duration_s=2.0,
        prompts="pool",
    )


TUNE_MODES = [NOSPEC] + [f"fixed_{k}" for k in range(1, 9)]


def tune() -> Plan:
    """Decide which K to run: interleaved rounds, settle after each K change, stop when decisive."""
    return _build(
        "tune",
        TUNE_MODES,
        warmup=0,
        fixed_steps=4,
        adaptive_steps=4,
        warmup_sleep_s=0.0,
        cooldown_s=0.0,
        load_duration_s=30.0,
        prompts="pool",
        schedule="interleaved",
        rounds=12,
        block=4,
        settle=1,
        until_decisive=True,
        min_rounds=4,
        max_time_s=600.0,
    )


PLANS = {"classic": classic, "quick": quick, "tune": tune}


def named_plan(name: str) -> Plan:
    try:
        return PLANS[name]()
    except KeyError:
        raise PlanError(f"unknown plan {name!r} (choose from {', '.join(PLANS)})") from None


def customise(
    plan: Plan,
    *,
    modes: list[str] | None = None,
    warmup: int | None = None,
    steps: int | None = None,
    adaptive_steps: int | None = None,
    warmup_sleep_s: float | None = None,
    cooldown_s: float | None = None,
    load_step: int | None = None,
    load_duration_s: float | None = None,
    prompts: str | None = None,
    schedule: str | None = None,
    rounds: int | None = None,
    block: int | None = None,
    settle: int | None = None,
    seed: int | None = None,
    until_decisive: bool | None = None,
    max_time_s: float | None = None,
    tolerance: float | None = None,
    load_round: int | None = None,
    load_rounds: int | None = None,
    workload: str | None = None,
    shift_every: int | None = None,
) -> Plan:
    """A plan with some numbers overridden; validates everything it is given."""
    for label, v in (
        ("warmup-sleep", warmup_sleep_s),
        ("cooldown", cooldown_s),
        ("load-duration", load_duration_s),
        ("max-time", max_time_s),
        ("tolerance", tolerance),
    ):
        if v is not None and not math.isfinite(v):
            raise PlanError(f"--{label} must be a finite number (got {v})")
    for label, v, least in (
        ("rounds", rounds, 1),
        ("block", block, 1),
        ("settle", settle, 0),
        ("load-round", load_round, 1),
        ("load-rounds", load_rounds, 0),
        ("shift-every", shift_every, 1),
    ):
        if v is not None and v < least:
            raise PlanError(f"--{label} must be at least {least} (got {v})")
    if tolerance is not None and not 0 <= tolerance < 1:
        raise PlanError(f"--tolerance must be from 0 to 1 (got {tolerance})")
    if max_time_s is not None and max_time_s <= 0:
        raise PlanError(f"--max-time must be positive (got {max_time_s})")
    if schedule is not None and schedule not in ("sequential", "interleaved"):
        raise PlanError(f"unknown schedule {schedule!r} (choose sequential or interleaved)")
    if plan.name == "classic" and (until_decisive or schedule == "interleaved"):
        raise PlanError(
            "the classic plan keeps the original's sequential schedule: "
            "use --plan tune (or quick) for interleaved rounds and --until-decisive"
        )
    if workload is not None and workload not in ("steady", "shift"):
        raise PlanError(f"unknown workload {workload!r} (choose steady or shift)")
    if workload == "shift":
        if (prompts or plan.prompts) == "original" and prompts is not None:
            raise PlanError("--workload shift draws prompts by class: drop --prompts original")
        prompts = "pool"
    interleaved = (schedule or plan.schedule) == "interleaved"
    if until_decisive and not interleaved:
        raise PlanError("--until-decisive needs --schedule interleaved")
    for label, v in (
        ("warmup", warmup),
        ("steps", steps),
        ("adaptive-steps", adaptive_steps),
        ("warmup-sleep", warmup_sleep_s),
        ("cooldown", cooldown_s),
        ("load-duration", load_duration_s),
    ):
        if v is not None and v < 0:
            raise PlanError(f"--{label} must not be negative (got {v})")
    if load_step is not None and load_step < 1:
        raise PlanError(f"--load-step must be at least 1 (got {load_step})")
    if prompts is not None and prompts not in ("original", "pool"):
        raise PlanError(f"unknown prompt set {prompts!r} (choose original or pool)")
    old = {m.name: m for m in plan.modes}
    names = modes if modes is not None else [m.name for m in plan.modes]
    if not names:
        raise PlanError("a plan needs at least one mode")
    if len(set(names)) != len(names):
        raise PlanError("a mode is listed twice")
    fixed_default = next((m.measured_steps for m in plan.modes if not m.adaptive), 10)
    adaptive_default = next((m.measured_steps for m in plan.modes if m.adaptive), 15)
    warm_default = plan.modes[0].warmup_steps
    new_modes = []
    for n in names:
        base = old.get(n)
        spec = parse_mode(
            n,
            warmup if warmup is not None else (base.warmup_steps if base else warm_default),
            steps if steps is not None else fixed_default,
            adaptive_steps if adaptive_steps is not None else adaptive_default,
        )
        new_modes.append(spec)
    kw: dict[str, object] = {"modes": tuple(new_modes)}
    if warmup_sleep_s is not None:
        kw["warmup_sleep_s"] = warmup_sleep_s
    if cooldown_s is not None:
        kw["cooldown_s"] = cooldown_s
    if load_step is not None:
        kw["load_step"] = load_step
    if load_duration_s is not None:
        kw["load_duration_s"] = load_duration_s
    if prompts is not None:
        kw["prompts"] = prompts
    for key, val in (
        ("schedule", schedule),
        ("rounds", rounds),
        ("block", block),
        ("settle", settle),
        ("seed", seed),
        ("until_decisive", until_decisive),
        ("max_time_s", max_time_s),
        ("tolerance", tolerance),
        ("load_round", load_round),
        ("load_rounds", load_rounds),
        ("workload", workload),
        ("shift_every", shift_every),
    ):
        if val is not None:
            kw[key] = val
    if schedule == "sequential" and plan.until_decisive and until_decisive is None:
        kw["until_decisive"] = False
    new = replace(plan, **kw)  # type: ignore[arg-type]
    if new.interleaved and block is not None:
        # In rounds, a mode's measured steps are one block.
        new = replace(new, modes=tuple(replace(m, measured_steps=block) for m in new.modes))
    elif new.interleaved and not plan.interleaved:
        new = replace(new, modes=tuple(replace(m, measured_steps=new.block) for m in new.modes))
    return new
