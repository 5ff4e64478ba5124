"""The benchmark plan as data: which modes, how many steps, which sleeps, when load comes."""

from __future__ import annotations

import re
from dataclasses import dataclass, replace

from halospec_tui.errors import HalospecError

K_LIMIT = 16  # largest draft length a plan may ask for
ADAPTIVE = "adaptive"
_FIXED_RE = re.compile(r"^fixed_(\d+)$")


class PlanError(HalospecError, ValueError):
    """A plan that cannot run: bad mode name, K out of range, negative steps."""


@dataclass(frozen=True)
class ModeSpec:
    name: str
    k: int | None  # fixed K, or None for the adaptive controller
    warmup_steps: int
    measured_steps: int

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

    @property
    def total_measured(self) -> int:
        return sum(m.measured_steps for m in self.modes)

    @property
    def total_requests(self) -> int:
        return sum(m.measured_steps + m.warmup_steps for m in self.modes)


def parse_mode(name: str, warmup: int, fixed_steps: int, adaptive_steps: int) -> ModeSpec:
    if name == ADAPTIVE:
        return ModeSpec(ADAPTIVE, None, warmup, adaptive_steps)
    m = _FIXED_RE.match(name)
    if not m:
        raise PlanError(f"unknown mode {name!r}: use fixed_K (K in 1..{K_LIMIT}) or adaptive")
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
    """Same shape as classic with few steps and short sleeps, for demos and tests."""
    return _build(
        "quick",
        ALL_MODES,
        warmup=2,
        fixed_steps=4,
        adaptive_steps=8,
        warmup_sleep_s=0.05,
        cooldown_s=0.1,
        load_step=3,
        load_duration_s=2.0,
        prompts="pool",
    )


PLANS = {"classic": classic, "quick": quick}


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
) -> Plan:
    """A plan with some numbers overridden; validates everything it is given."""
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
    return replace(plan, **kw)  # type: ignore[arg-type]
