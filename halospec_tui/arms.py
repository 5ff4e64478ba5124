"""What an arm is: one configuration of the server the benchmark measures.

An arm is parsed once, at the edge (the command line, or a mode name read from a
CSV), into a frozen `Arm`; everything after works with it, never with the name. Arm
names are ASCII in one canonical spelling, which is what the CSV's `mode` column holds
(the column keeps the original's word):

- `nospec`: K = 0, the target decodes alone;
- `fixed_K`: K drafted tokens per pass, K in 1..16 (`fixed_02` reads as `fixed_2`);
- `pmin:P`: up to 16 drafted tokens, the server stops drafting below confidence P
  (`pmin:0.50` reads as `pmin:0.5`);
- `adaptive`: the original HaloSpec rule chooses K (the plan's --controller);
  `adaptive:model`, `adaptive:bandit`: another controller chooses K.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Literal

from halospec_tui.errors import HalospecError

K_LIMIT = 16  # largest draft length an arm may ask for
PMIN_N_MAX = 16  # pmin:P drafts up to this many tokens and lets p_min stop it early
WARMUP_K = 4  # the K an adaptive arm warms up at (the original's starting K)
NOSPEC = "nospec"
ADAPTIVE = "adaptive"
ADAPTIVE_KINDS = ("model", "bandit")  # adaptive:model, adaptive:bandit

ArmKind = Literal["nospec", "fixed", "pmin", "adaptive"]

_FIXED = re.compile(r"fixed_([0-9]+)")
_PMIN = re.compile(r"pmin:([0-9]*\.?[0-9]+(?:[eE][-+]?[0-9]+)?)")
HELP = (
    f"nospec, fixed_K (K in 1..{K_LIMIT}), pmin:P (0 < P < 1), "
    "adaptive, adaptive:model or adaptive:bandit"
)


class ArmError(HalospecError, ValueError):
    """A name that is no arm, or a list naming one arm twice."""


@dataclass(frozen=True)
class Arm:
    kind: ArmKind
    k: int | None = None  # nospec 0, fixed_K K, pmin:P its n_max; None: adaptive
    p_min: float = 0.0  # pmin:P: the server stops drafting below this confidence
    controller: str | None = None  # adaptive:NAME; None: the plan's --controller

    @property
    def name(self) -> str:
        """The canonical spelling (what the CSV's mode column holds)."""
        if self.kind == "nospec":
            return NOSPEC
        if self.kind == "fixed":
            return f"fixed_{self.k}"
        if self.kind == "pmin":
            return f"pmin:{self.p_min!r}"
        return ADAPTIVE if self.controller is None else f"{ADAPTIVE}:{self.controller}"

    def __str__(self) -> str:
        return self.name

    @property
    def adaptive(self) -> bool:
        return self.kind == "adaptive"

    @property
    def warmup_k(self) -> int:
        """The K of the arm's warmup (and first block): its own, or WARMUP_K."""
        return self.k if self.k is not None else WARMUP_K

    @property
    def setting_k(self) -> int | None:
        """The draft length to paste for this arm (n_max for pmin); None: adaptive."""
        return self.k


def parse_arm(text: str) -> Arm:
    """The arm a name stands for, or ArmError saying what names are allowed.

    Only ASCII digits count (`fixed_٤` is refused, never read as K = 4)."""
    if not text.isascii():
        raise ArmError(f"arm {text!r} is not ASCII: use {HELP}")
    if text == NOSPEC:
        return Arm("nospec", 0)
    if text == ADAPTIVE:
        return Arm("adaptive")
    if text.startswith(ADAPTIVE + ":"):
        kind = text.partition(":")[2]
        if kind not in ADAPTIVE_KINDS:
            raise ArmError(
                f"unknown adaptive arm {text!r}: use adaptive, "
                + ", ".join(f"adaptive:{k}" for k in ADAPTIVE_KINDS)
            )
        return Arm("adaptive", controller=kind)
    if text.startswith("pmin:"):
        m = _PMIN.fullmatch(text)
        p = float(m.group(1)) if m else -1.0
        if not 0.0 < p < 1.0:
            raise ArmError(f"{text!r}: p_min must be a number between 0 and 1, e.g. pmin:0.75")
        return Arm("pmin", PMIN_N_MAX, p_min=p)
    m = _FIXED.fullmatch(text)
    if not m:
        raise ArmError(f"unknown arm {text!r}: use {HELP}")
    k = int(m.group(1))
    if not 1 <= k <= K_LIMIT:
        raise ArmError(f"draft length {k} in {text!r} is outside 1..{K_LIMIT}")
    return Arm("fixed", k)


def parse_arms(names: Iterable[str]) -> tuple[Arm, ...]:
    """Arms in the order given; ArmError when two names are the same arm."""
    seen: dict[Arm, str] = {}
    out = []
    for text in names:
        arm = parse_arm(text)
        if arm in seen:
            twin = seen[arm]
            both = f"{twin!r} and {text!r} are" if twin != text else f"{text!r} is"
            raise ArmError(f"{both} the same arm, {arm.name}: list each arm once")
        seen[arm] = text
        out.append(arm)
    return tuple(out)


@functools.lru_cache(maxsize=256)
def arm_of(name: str) -> Arm | None:
    """The arm a mode name read from a file stands for; None for a name that is no
    arm (a file may hold anything: such rows keep their name and have no K)."""
    try:
        return parse_arm(name)
    except ArmError:
        return None


def canonical(name: str) -> str:
    """A mode name read from a file in its canonical spelling (unchanged if no arm)."""
    arm = arm_of(name)
    return name if arm is None else arm.name


def is_adaptive(name: str) -> bool:
    """An arm whose controller chooses K as it runs."""
    arm = arm_of(name)
    return arm is not None and arm.adaptive


def fixed_k(name: str) -> int | None:
    """The draft length an arm stands for as a setting: nospec 0, fixed_K K, pmin:P
    its n_max; None for an adaptive arm or a name that is no arm."""
    arm = arm_of(name)
    return None if arm is None else arm.setting_k


def p_min_of(name: str) -> float:
    """pmin:P arms stop drafting below confidence P; every other arm uses 0."""
    arm = arm_of(name)
    return 0.0 if arm is None else arm.p_min
