"""Injected faults for the embedded server, so the harness's fault paths run for real.

A fault spec is `kind:probability[,kind:probability...]`, e.g. `500:0.2,reset:0.1`.
Kinds: 500, 503 (loading), timeout (answers after a long stall), reset (drops the
connection), malformed (invalid JSON), truncated (JSON cut short), no-usage,
no-choices.
"""

from __future__ import annotations

from dataclasses import dataclass

from halospec_tui.errors import HalospecError

KINDS = ("500", "503", "timeout", "reset", "malformed", "truncated", "no-usage", "no-choices")


class FaultSpecError(HalospecError, ValueError):
    pass


@dataclass(frozen=True)
class FaultSpec:
    weights: tuple[tuple[str, float], ...] = ()

    def pick(self, u: float) -> str | None:
        """The fault for a uniform draw u in [0, 1), or None."""
        acc = 0.0
        for kind, p in self.weights:
            acc += p
            if u < acc:
                return kind
        return None

    def __str__(self) -> str:
        return ",".join(f"{k}:{p:g}" for k, p in self.weights)


def parse_faults(spec: str) -> FaultSpec:
    spec = (spec or "").strip()
    if not spec or spec == "none":
        return FaultSpec()
    out = []
    for part in spec.split(","):
        kind, _, prob = part.strip().partition(":")
        if kind not in KINDS:
            raise FaultSpecError(f"unknown fault {kind!r} (choose from {', '.join(KINDS)})")
        try:
            p = float(prob) if prob else 1.0
        except ValueError:
            raise FaultSpecError(f"fault probability {prob!r} is not a number") from None
        if not 0.0 <= p <= 1.0:
            raise FaultSpecError(f"fault probability {p} outside 0..1")
        out.append((kind, p))
    if sum(p for _, p in out) > 1.0 + 1e-9:
        raise FaultSpecError("fault probabilities add up to more than 1")
    return FaultSpec(tuple(out))
