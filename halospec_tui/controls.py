"""What a front end may ask of a run while it goes: the runner's control surface.

The monitor holds a `RunControls`, never the runner's client or load injector, so a
test can hand it a recorded run instead (`halospec_tui.ui.replay.Replay`). Every
method may be called from any thread.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

from halospec_tui.events import RunFinished, StopReason


@dataclass(frozen=True)
class LoadStatus:
    active: bool
    seconds_left: float | None  # None when the burners are off
    workers: int
    load_gbps: float | None = None  # the memory burners' own GB/s now (None: none runs)
    machine_gbps: float | None = None  # the memory controllers' (None: no counters)


class RunControls(Protocol):
    def run(self) -> RunFinished:
        """Run to the end (in a worker thread), emitting events to the sink."""
        ...

    @property
    def paused(self) -> bool: ...

    def pause(self, paused: bool) -> None: ...

    def skip(self) -> None:
        """End the current mode now and go on with the next."""
        ...

    def stop(self, reason: StopReason = "stopped") -> None:
        """Stop after the request in flight; CSV and summaries are written."""
        ...

    def abandon(self) -> None:
        """Stop now, failing the request in flight."""
        ...

    def toggle_load(self) -> None:
        """Start the CPU burners now, or stop them if they run."""
        ...

    def load_status(self) -> LoadStatus: ...

    def toggle_debug(self) -> bool:
        """Log every response's JSON, or stop doing so; returns the new state."""
        ...

    @property
    def debug(self) -> bool: ...
