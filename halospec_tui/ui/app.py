"""The live monitor: a Textual app hosting the runner in one named thread worker."""

from __future__ import annotations

import asyncio
import contextlib
import gc
import signal
import sys
import threading
import time
from collections import deque
from collections.abc import Callable, Sequence

from rich.text import Text
from textual import events, on, work
from textual.app import App, ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical
from textual.screen import ModalScreen
from textual.widgets import Button, Footer, Label, RichLog
from textual.worker import Worker, WorkerState

from halospec_tui.controls import RunControls
from halospec_tui.events import (
    Event,
    FanOut,
    KnobVerdict,
    LogLine,
    LogRouter,
    RunFinished,
    Sink,
    StopReason,
)
from halospec_tui.load_requests import Load
from halospec_tui.runner import RunConfig, Runner
from halospec_tui.session import Session
from halospec_tui.telemetry import per_core
from halospec_tui.ui.lines import TextLines
from halospec_tui.ui.model import RunModel
from halospec_tui.ui.spark import FastSparkline
from halospec_tui.ui.widgets import (
    KPanel,
    KPlot,
    LatencyPlot,
    ResultsTable,
    cpu_text,
    policy_text,
    status_text,
    verdict_text,
)

REDRAW_HZ = 4  # status, K, table and log
SLOW_EVERY = 4  # ticks between redraws of the plots and the CPU pane: once a second
GIL_SWITCH_S = 0.0005
LOG_STYLE = {"debug": "dim", "info": "", "warning": "yellow", "error": "bold red"}


class UiSink:
    """The engine's sink in the TUI. From the runner thread it only queues the event;
    the app takes them all at its next clock tick (`drain`), just before it draws.
    Events are drawn at the tick anyway: waking the app for each one (a message from
    another thread) only cost CPU."""

    def __init__(self) -> None:
        self._events: deque[Event] = deque()
        self._lock = threading.Lock()

    def emit(self, event: Event) -> None:
        with self._lock:
            self._events.append(event)

    def drain(self) -> list[Event]:
        """Every queued event, oldest first (UI thread)."""
        with self._lock:
            out = list(self._events)
            self._events.clear()
        return out


class ConfirmQuit(ModalScreen[bool]):
    BINDINGS = [
        Binding("y", "answer(True)", "yes"),
        Binding("n,escape", "answer(False)", "no"),
    ]

    def compose(self) -> ComposeResult:
        with Vertical():
            yield Label("Stop the run and quit? The CSV and summary are written either way.")
            with Horizontal():
                yield Button("Quit (y)", variant="error", id="yes")
                yield Button("Keep running (n)", variant="primary", id="no")

    def action_answer(self, value: bool) -> None:
        self.dismiss(value)

    @on(Button.Pressed)
    def pressed(self, event: Button.Pressed) -> None:
        self.dismiss(event.button.id == "yes")


class HaloSpecApp(App[None]):
    TITLE = "halospec-tui"
    CSS_PATH = "app.tcss"
    BINDINGS = [
        Binding("l", "toggle_load", "load on/off", id="load"),
        Binding("p", "toggle_pause", "pause", id="pause"),
        Binding("s", "skip", "skip mode", id="skip"),
        Binding("d", "toggle_debug", "debug JSON", id="debug"),
        Binding("q", "request_quit", "quit", id="quit"),
        Binding("ctrl+c", "quit_now('interrupted')", "quit", show=False, priority=True),
    ]

    def __init__(
        self,
        runner: RunControls,
        *,
        clock: Callable[[], float] = time.monotonic,
        cpu_sampler: Callable[[], list[float]] = per_core,
        sink: UiSink | None = None,
    ) -> None:
        """`runner`: the run's controls (a `Runner`, or a `Replay` in tests), emitting
        to `sink`; `clock` times the run for the status line; `cpu_sampler` gives
        per-core CPU %."""
        super().__init__()
        self.runner = runner
        self.clock = clock
        self.cpu_sampler = cpu_sampler
        self.model = RunModel(clock=clock)
        self.finished: RunFinished | None = None
        self.error: BaseException | None = None
        self._drawn_version = -1
        self._plotted_steps: tuple[int, int | None] | None = None
        self._drawn_table = -1
        self._ticks = 0
        self.sink = sink or UiSink()
        self._quitting = False
        self._debug = runner.debug

    # -- layout -------------------------------------------------------------
    def compose(self) -> ComposeResult:
        yield TextLines("starting…", id="status")
        with Horizontal(id="top"):
            with Vertical(id="left"):
                yield Label("recent latency, this mode", id="spark-label")
                yield FastSparkline([], id="spark")
                yield LatencyPlot(id="latency-plot")
            with Vertical(id="right"):
                yield KPanel()
                yield KPlot(id="k-plot")
                yield TextLines("", id="cpu")
        with Horizontal(id="bottom"):
            with Vertical(id="results-pane"):
                yield TextLines("", id="verdict")  # interleaved plans only (-rounds)
                yield ResultsTable(id="results")
                yield TextLines("", id="policy")  # runs with conditions only (-policy)
            # min_width=1: RichLog renders at least 78 columns by default, which
            # cuts lines at the edge of a narrower pane instead of wrapping them.
            yield RichLog(id="log", max_lines=500, wrap=True, markup=False, min_width=1)
        yield Footer()

    def on_mount(self) -> None:
        # The runner thread shares the GIL with rendering: with the default 5 ms
        # switch interval a response could wait up to 5 ms per hand-over while the UI
        # draws, inflating measured latency. 0.5 ms bounds that wait.
        self._switch_interval = sys.getswitchinterval()
        sys.setswitchinterval(GIL_SWITCH_S)
        # Once the screen is up, the objects made so far (modules, widgets, styles)
        # live as long as the app: frozen, the garbage collector stops scanning them
        # at each full collection, which cost about 1% of a core while drawing.
        self.call_after_refresh(gc.freeze)
        # One clock for every pane, so a tick paints one frame, not one per pane.
        self.set_interval(1 / REDRAW_HZ, self.tick)
        # one line per core, one for the load state, two for the border
        self.query_one("#cpu", TextLines).styles.height = len(self.cpu_sampler()) + 3
        self.redraw_cpu()
        self.on_resize()
        # Not in the main thread (tests) or no signals on this platform: nothing to add.
        with contextlib.suppress(NotImplementedError, RuntimeError, ValueError):
            asyncio.get_running_loop().add_signal_handler(
                signal.SIGTERM, lambda: self.action_quit_now("terminated")
            )
        self.run_benchmark()

    def on_unmount(self) -> None:
        sys.setswitchinterval(self._switch_interval)
        gc.unfreeze()
        if not self.run_over:  # leaving with the run still going: do not leave it behind
            self.runner.abandon()

    def on_resize(self, event: events.Resize | None = None) -> None:
        # The event's size: the app's own is stored only after this handler has run.
        size = self.size if event is None else event.size
        small = size.width < 100 or size.height < 30
        self.screen.set_class(small, "-small")

    # -- the worker ---------------------------------------------------------
    @work(thread=True, exclusive=True, exit_on_error=False, group="bench", name="benchmark")
    def run_benchmark(self) -> RunFinished:
        return self.runner.run()

    @on(Worker.StateChanged)
    def worker_changed(self, event: Worker.StateChanged) -> None:
        if event.worker.name != "benchmark":
            return
        if event.state == WorkerState.SUCCESS:
            self.finished = event.worker.result
            if self._quitting:
                self.exit()
            else:
                self.notify("Run finished: CSV and summary written. Press q to quit.", timeout=10)
        elif event.state == WorkerState.ERROR:
            self.error = event.worker.error
            self.model.apply(LogLine("error", f"runner failed: {self.error!r}"))
            if self._quitting:
                self.exit()
            else:
                self.notify(f"runner failed: {self.error}", severity="error", timeout=30)

    def take_events(self) -> None:
        """Fold the engine's queued events into the model."""
        for event in self.sink.drain():
            prev = self.model.knob
            self.model.apply(event)
            if isinstance(event, KnobVerdict) and event.status == "no-effect" and prev != event:
                self.notify(event.message, title="K has no effect", severity="error", timeout=20)

    # -- drawing on a clock -------------------------------------------------
    def tick(self) -> None:
        self._ticks += 1
        self.take_events()
        self.redraw()
        if self._ticks % SLOW_EVERY == 0:
            self.redraw_plots()
            self.redraw_cpu()

    # Textual stops the app's timers only after it has removed the screens: a tick
    # landing in between finds no widgets. `is_running` turns False before that.
    def redraw(self) -> None:
        if not self.is_running:
            return
        m = self.model
        # Fixed-size panes: no layout pass on update (a layout per tick cost most of
        # the UI's CPU, see benchmarks/ui_overhead.py). The same text again, or the
        # same data, repaints nothing: the status line changes each second (its clock).
        self.query_one("#status", TextLines).update(status_text(m))
        if m.version == self._drawn_version:
            return
        self._drawn_version = m.version
        with self.batch_update():
            self.query_one("#spark", FastSparkline).data = list(m.arm_latency)
            self.query_one(KPanel).draw(m)
            if m.started is not None and m.table_version != self._drawn_table:
                self._drawn_table = m.table_version
                if m.interleaved and not self.screen.has_class("-rounds"):
                    self.screen.add_class("-rounds")
                self.query_one(ResultsTable).draw(m)
                if m.interleaved:
                    self.query_one("#verdict", TextLines).update(verdict_text(m))
                if m.policy is not None:
                    if not self.screen.has_class("-policy"):
                        self.screen.add_class("-policy")
                    self.query_one("#policy", TextLines).update(policy_text(m))
            log = self.query_one(RichLog)
            for level, text in m.take_logs():
                if level == "debug" and not self._debug:
                    continue
                log.write(_styled(level, text))

    def redraw_plots(self) -> None:
        if not self.is_running:
            return
        m = self.model
        if (len(m.steps), m.low_ms) == self._plotted_steps:
            return
        self._plotted_steps = (len(m.steps), m.low_ms)
        with self.batch_update():
            self.query_one(LatencyPlot).draw(m)
            self.query_one(KPlot).draw(m)

    def redraw_cpu(self) -> None:
        if not self.is_running:
            return
        load = self.runner.load_status()
        text = cpu_text(self.cpu_sampler(), load.seconds_left, self.model.load_reason, load.workers,
                        load.load_gbps, load.machine_gbps)  # fmt: skip
        self.query_one("#cpu", TextLines).update(text)

    # -- keys ---------------------------------------------------------------
    def action_toggle_load(self) -> None:
        active = self.runner.load_status().active
        self.runner.toggle_load()
        self.notify("load: stopping burners" if active else "load: starting burners")

    def action_toggle_pause(self) -> None:
        self.runner.pause(not self.runner.paused)

    def action_skip(self) -> None:
        self.runner.skip()
        rnd = self.model.round
        block = f"'s block in round {rnd.round}" if rnd is not None else ""
        self.notify(f"skipping the rest of {self.model.arm}{block}")

    def action_toggle_debug(self) -> None:
        self._debug = self.runner.toggle_debug()
        self.notify(f"debug JSON {'on' if self._debug else 'off'}")

    @property
    def run_over(self) -> bool:
        """The worker has ended, with a result or an error."""
        return self.finished is not None or self.error is not None

    def action_request_quit(self) -> None:
        if self.run_over:
            self.exit()
            return

        def answered(yes: bool | None) -> None:
            if yes:
                self.action_quit_now()

        self.push_screen(ConfirmQuit(), answered)

    def action_quit_now(self, reason: StopReason = "stopped") -> None:
        """Stop the runner; it writes CSV and summary, then the worker's end exits."""
        if self.run_over:
            self.exit()
            return
        if self._quitting:  # asked twice: abandon the request in flight
            self.runner.abandon()
            return
        self._quitting = True
        self.runner.stop(reason)
        self.notify("stopping after the request in flight…")


def _styled(level: str, text: str) -> Text:
    prefix = "" if level == "info" else f"{level}: "
    return Text(prefix + text, style=LOG_STYLE.get(level, ""))


def make_app(
    config: RunConfig,
    session: Session,
    load: Load,
    log: LogRouter | None = None,
    extra_sinks: Sequence[Sink] = (),
) -> HaloSpecApp:
    """One factory for the CLI and the tests: the runner wired to the app's sink."""
    ui = UiSink()
    sink: Sink = FanOut(ui, *extra_sinks) if extra_sinks else ui
    runner = Runner(config, session.client, session.actuator, sink, load)
    app = HaloSpecApp(runner, sink=ui)
    if log is not None:
        log.attach(sink)
    return app
