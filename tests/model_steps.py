"""Steps of a server that follows the model controller's own cost model, for its tests."""

from __future__ import annotations

from dataclasses import replace

from halospec_tui.controllers import ModelController, Observation
from halospec_tui.controllers.model import accepted_per_pass

T0 = 6.0  # ms per target pass


def step(k: int, a: float, passes: int = 40, t1_ratio: float = 0.2, **kw: object) -> Observation:
    """What a server with acceptance a and pass cost T0 (1 + t1_ratio K) reports."""
    accepted = round(accepted_per_pass(a, k) * passes)
    ms = passes * T0 * (1 + t1_ratio * k)
    obs = Observation(k, True, int(ms), passes + accepted, k * passes, accepted, ms)
    return replace(obs, **kw)  # type: ignore[arg-type]


def run(c: ModelController, n: int, a: float, cls: str = "", **kw: object) -> list[int]:
    """n steps of class `cls` at the K the controller asks for; the Ks it asked for."""
    ks = []
    for _ in range(n):
        k = c.next_k(cls)
        o = replace(step(k, a, **kw), context=cls)
        c.observe(k, True, o.latency_ms, o)
        ks.append(k)
    return ks
