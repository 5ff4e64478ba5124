"""What every draft-length controller shares: the protocol, observations, views.

A controller is told the warmup latencies, then asked for K before each measured step
and told the outcome after it. Besides latency, an observation carries what the server
said about the step (tokens, drafted and accepted tokens, decode time, reload time), so
controllers that model the server can use it; the original rule ignores it.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol

DEFAULT_LOW_MS = 9000
DEFAULT_HIGH_MS = 22000


@dataclass(frozen=True)
class Thresholds:
    low_ms: int
    high_ms: int
    p50_ms: int | None = None
    p95_ms: int | None = None

    @property
    def calibrated(self) -> bool:
        return self.p50_ms is not None


@dataclass(frozen=True)
class Observation:
    """One measured step as a controller sees it."""

    k: int
    success: bool
    latency_ms: int
    tokens: int = 0
    drafted: int | None = None
    accepted: int | None = None
    predicted_ms: float | None = None  # server decode time
    reload_ms: int | None = None  # time this step's change of K cost, outside latency
    context: str = ""  # the request's class (the workload's prompt class), known before it is sent
    tokens_reported: bool = True  # False: `tokens` is max_tokens, not the server's count
    steps_left: int | None = None  # measured steps the arm has left in its plan, at most


@dataclass(frozen=True)
class ControllerView:
    """Why a controller chose K: its estimates, for the monitor and the log."""

    name: str
    k: int
    acceptance: float | None  # per-token acceptance estimate
    pass_ms: float | None  # cost of a pass with no drafts (target step)
    draft_ms: float | None  # added cost per drafted token
    expected_tps: tuple[tuple[int, float], ...]  # (K, expected tokens/s or score)
    note: str = ""


class Controller(Protocol):
    name: str
    notes: list[str]  # lines for the run's log; the runner passes them on and clears them

    def calibrate(self, warmup_latencies_ms: Sequence[int]) -> None: ...

    def next_k(self, context: str = ...) -> int:
        """K for the next request; `context` is its class, "" when none is given (a
        controller may ignore it)."""
        ...

    def observe(
        self, k: int, success: bool, latency_ms: int, obs: Observation | None = None
    ) -> None: ...

    @property
    def ema_ms(self) -> float | None: ...

    @property
    def thresholds(self) -> Thresholds: ...

    def view(self) -> ControllerView | None: ...


class ModelFree:
    """What the controllers that ignore warmup thresholds share: no calibration, the
    default thresholds, and an EMA of latency kept for the monitor only."""

    _ema: float | None = None
    _reload_ms: float = 0.0  # what a change of K costs, from the latest reloads seen

    def calibrate(self, warmup_latencies_ms: Sequence[int]) -> None:
        pass

    @property
    def ema_ms(self) -> float | None:
        return self._ema

    @property
    def thresholds(self) -> Thresholds:
        return Thresholds(DEFAULT_LOW_MS, DEFAULT_HIGH_MS)

    def _track(self, latency_ms: int) -> None:
        self._ema = latency_ms if self._ema is None else 0.4 * latency_ms + 0.6 * self._ema

    def _note_reload(self, obs: Observation | None) -> None:
        """Remember a reload's cost; an old dear one fades by half at each new one."""
        if obs is not None and obs.reload_ms:
            self._reload_ms = max(self._reload_ms * 0.5, float(obs.reload_ms))
