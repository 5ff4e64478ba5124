"""A recorded run played back: `RunControls` without a server, for the tests and the
monitor's benchmarks (which put tests/ on their path).

`Replay(events).run()` emits the events to its sink, in order, then returns the
recorded `RunFinished`; without one it holds the run open (as a live run between
two steps) until asked to stop. Every control call is recorded in `calls`.
`long_run_model` makes the monitor's model of a long noisy run, for the plots'
tests and benchmark.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Sequence

import numpy as np

from halospec_tui.controls import LoadStatus
from halospec_tui.events import ArmFinished, Event, KnobVerdict, RunFinished, Sink, StopReason
from halospec_tui.telemetry import per_core
from halospec_tui.ui.app import HaloSpecApp, UiSink
from halospec_tui.ui.model import RunModel

NO_LOAD = LoadStatus(False, None, 2)


def long_run_model(n: int, seed: int) -> RunModel:
    """A run of `n` steps over ten modes: noisy latency with failed steps (nan), the
    threshold rule's EMA and band in the last mode, load in the middle third."""
    rng = np.random.default_rng(seed)
    m = RunModel(clock=lambda: 0.0)
    m.steps = list(range(1, n + 1))
    lat = 60 + 40 * rng.random(n) + 300 * (rng.random(n) < 0.01)
    lat[rng.random(n) < 0.02] = np.nan
    m.latency = lat.tolist()
    rule = np.arange(n) >= 9 * n // 10
    m.ema = np.where(rule, 75 + 5 * np.sin(np.arange(n) / 9), np.nan).tolist()
    m.low = np.where(rule, 65.0, np.nan).tolist()
    m.high = np.where(rule, 90.0, np.nan).tolist()
    m.ks = rng.integers(1, 9, n).tolist()
    m.arm_marks = [(1 + i * n // 10, f"fixed_{i + 1}") for i in range(10)]
    m.phase_marks = [(n // 3, "load"), (2 * n // 3, "recovery")]
    return m


class Replay:
    def __init__(
        self,
        events: Sequence[Event],
        sink: Sink | None = None,
        *,
        load: LoadStatus = NO_LOAD,
        hold_s: float = 600.0,
    ) -> None:
        self.events = tuple(events)
        self.sink = sink
        self.load = load
        self.hold_s = hold_s  # bound on holding an unfinished recording open
        self.calls: list[str] = []
        self.played = threading.Event()  # every event has been emitted
        self._paused = False
        self._debug = False
        self._reason: StopReason = "stopped"
        self._stop = threading.Event()

    def run(self) -> RunFinished:
        assert self.sink is not None, "give the replay a sink first"
        finished: RunFinished | None = None
        for e in self.events:
            self.sink.emit(e)
            if isinstance(e, RunFinished):
                finished = e
        self.played.set()
        if finished is not None:
            return finished
        self._stop.wait(self.hold_s)
        summaries = tuple(e.summary for e in self.events if isinstance(e, ArmFinished))
        done = RunFinished(
            reason=self._reason,
            summaries=summaries,
            winner=None,
            knob=KnobVerdict("unverified", "a replayed run"),
            files=(),
            summary_text="",
        )
        self.sink.emit(done)
        return done

    # -- RunControls --------------------------------------------------------
    @property
    def paused(self) -> bool:
        return self._paused

    def pause(self, paused: bool) -> None:
        self.calls.append(f"pause {paused}")
        self._paused = paused

    def skip(self) -> None:
        self.calls.append("skip")

    def stop(self, reason: StopReason = "stopped") -> None:
        self.calls.append(f"stop {reason}")
        self._reason = reason
        self._stop.set()

    def abandon(self) -> None:
        self.calls.append("abandon")
        self._stop.set()

    def toggle_load(self) -> None:
        self.calls.append("toggle_load")

    def load_status(self) -> LoadStatus:
        return self.load

    @property
    def debug(self) -> bool:
        return self._debug

    def toggle_debug(self) -> bool:
        self.calls.append("toggle_debug")
        self._debug = not self._debug
        return self._debug


def make_replay_app(
    events: Sequence[Event],
    *,
    clock: Callable[[], float] = time.monotonic,
    cpu_sampler: Callable[[], list[float]] = per_core,
    replay: Replay | None = None,
) -> HaloSpecApp:
    """The app fed a recorded list of engine events instead of a live run."""
    ui = UiSink()
    controls = replay or Replay(events)
    controls.sink = ui
    app = HaloSpecApp(controls, clock=clock, cpu_sampler=cpu_sampler, sink=ui)
    return app
