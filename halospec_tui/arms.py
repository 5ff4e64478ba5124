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

Any of them may end in `@tN`: the server runs with N threads (llama.cpp's `-t N -td
N`, N in 1..256, written without a leading zero), set where the harness starts or
reloads the server; without it the server keeps its own thread count. `fixed_4@t1`
and `fixed_4@t2` are two arms of the same K.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, replace
from typing import Literal

from halospec_tui.errors import HalospecError

K_LIMIT = 16  # largest draft length an arm may ask for
PMIN_N_MAX = 16  # pmin:P drafts up to this many tokens and lets p_min stop it early
WARMUP_K = 4  # the K an adaptive arm warms up at (the original's starting K)
NOSPEC = "nospec"
ADAPTIVE = "adaptive"
ADAPTIVE_KINDS = ("model", "bandit")  # adaptive:model, adaptive:bandit
THREADS_MAX = 256  # the most threads an arm may ask for (@tN)
THREADS_SUFFIX = "@t"

ArmKind = Literal["nospec", "fixed", "pmin", "adaptive"]

_FIXED = re.compile(r"fixed_([0-9]+)")
_PMIN = re.compile(r"pmin:([0-9]*\.?[0-9]+(?:[eE][-+]?[0-9]+)?)")
_THREADS = re.compile(r"t([1-9][0-9]*)")  # @tN: N without a leading zero
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
    threads: int | None = None  # @tN: the server's thread count; None: its own default

    @property
    def name(self) -> str:
        """The canonical spelling (what the CSV's mode column holds)."""
        at = "" if self.threads is None else f"{THREADS_SUFFIX}{self.threads}"
        if self.kind == "nospec":
            return NOSPEC + at
        if self.kind == "fixed":
            return f"fixed_{self.k}{at}"
        if self.kind == "pmin":
            return f"pmin:{self.p_min!r}{at}"
        return (ADAPTIVE if self.controller is None else f"{ADAPTIVE}:{self.controller}") + at

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
    base, at, count = text.partition("@")
    if not at:
        return _parse_base(text)
    arm = _parse_base(base)
    m = _THREADS.fullmatch(count)
    if not m or int(m.group(1)) > THREADS_MAX:
        raise ArmError(
            f"{text!r}: {at + count!r} is no thread count: write {THREADS_SUFFIX}N, N a "
            f"whole number 1..{THREADS_MAX} without a leading zero, e.g. "
            f"{arm.name}{THREADS_SUFFIX}1"
        )
    return replace(arm, threads=int(m.group(1)))


def _parse_base(text: str) -> Arm:
    """The arm a name without `@tN` stands for."""
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
        if not (m and 0.0 < float(m.group(1)) < 1.0):
            raise ArmError(f"{text!r}: p_min must be a number between 0 and 1, e.g. pmin:0.75")
        return Arm("pmin", PMIN_N_MAX, p_min=float(m.group(1)))
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


def with_threads(arms: Sequence[Arm], counts: Sequence[int]) -> tuple[Arm, ...]:
    """Every arm crossed with each thread count, in the order given (`--threads 1,2`:
    X becomes X@t1, X@t2); ArmError for an arm that already has a thread count."""
    for a in arms:
        if a.threads is not None:
            raise ArmError(
                f"--threads crosses every arm with each thread count: arm {a.name} has "
                f"its own; drop --threads or the {THREADS_SUFFIX}N of the arms"
            )
    return tuple(replace(a, threads=n) for a in arms for n in counts)


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


def is_nospec(name: str) -> bool:
    """An arm that never speculates: nospec, at any thread count."""
    arm = arm_of(name)
    return arm is not None and arm.kind == "nospec"


def threads_of(name: str) -> int | None:
    """The thread count an arm sets (@tN); None for the server's own, or no arm."""
    arm = arm_of(name)
    return None if arm is None else arm.threads


def lean_key(name: str, k: int | None) -> tuple[int, int]:
    """How the tie rule orders arms it may recommend (the race's pick among arms
    within the tolerance, the policy's static K): the smaller K first (less draft
    work; None, no K, last), then fewer threads (the server's own count, unknown
    here, after every @tN), so thread variants of one K are ordered too."""
    t = threads_of(name)
    return (k if k is not None else 10**6, t if t is not None else THREADS_MAX + 1)
