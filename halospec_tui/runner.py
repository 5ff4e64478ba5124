"""The benchmark engine: runs a plan, emits events to a sink, writes CSV and summaries.

It knows nothing of any UI. It can be paused, told to skip the current mode, told to
inject or stop load, and stopped, from another thread; every wait is interruptible.
"""

from __future__ import annotations

import datetime as _dt
import secrets
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from pathlib import Path

from halospec_tui.actuators import Actuation, Actuator, ActuatorError
from halospec_tui.client import ChatClient, Reply, preview
from halospec_tui.controllers import Controller, make_controller
from halospec_tui.events import (
    Calibrated,
    KnobVerdict,
    LoadChanged,
    LogLine,
    ModeFinished,
    ModeInfo,
    ModeStarted,
    Paused,
    PhaseChanged,
    RunFinished,
    RunStarted,
    Sink,
    StepDone,
    StepRecord,
    WarmupStep,
)
from halospec_tui.knob import check_knob
from halospec_tui.load import LoadInjector
from halospec_tui.metrics import MetricsProbe
from halospec_tui.plan import ModeSpec, Plan
from halospec_tui.prompts import prompt_for
from halospec_tui.results import (
    CsvWriter,
    build_report,
    sample_from_record,
    summary_text,
    write_summaries,
)
from halospec_tui.stats import summarize_mode
from halospec_tui.telemetry import Telemetry


def new_run_id() -> str:
    now = _dt.datetime.now().strftime("%Y%m%dT%H%M%S")
    return f"{now}-{secrets.token_hex(2)}"


@dataclass
class RunConfig:
    plan: Plan
    csv_path: str = "results_phase0.csv"
    load_enabled: bool = False
    load_arms: str = "all"  # all | adaptive
    controller: str = "threshold"
    run_id: str = field(default_factory=new_run_id)
    backend: str = ""
    server_pid: Callable[[], int | None] | None = None
    server_down_after_s: float = 60.0
    write_summary_files: bool = True
    meta: dict[str, object] = field(default_factory=dict)


class _Skip(Exception):
    pass


class _Stop(Exception):
    pass


class Runner:
    def __init__(
        self,
        config: RunConfig,
        client: ChatClient,
        actuator: Actuator,
        sink: Sink,
        load: LoadInjector | None = None,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] | None = None,
    ) -> None:
        """`clock` and `sleep` drive the plan's sleeps (tests inject fakes); by default
        the monotonic clock and a wait that stop, skip and resume cut short."""
        self.config = config
        self.plan = config.plan
        self.client = client
        self.actuator = actuator
        self.sink = sink
        self.load = load or LoadInjector()
        self.telemetry = Telemetry(config.server_pid)
        self.records: list[StepRecord] = []
        self._stop = threading.Event()
        self._skip = threading.Event()
        self._resume = threading.Event()
        self._resume.set()
        self._wake = threading.Event()  # set on stop/skip/resume to cut sleeps short
        self._clock = clock
        self._sleep_fn = sleep or self._wait_for_wake
        self._manual_load: str | None = None  # "start" | "stop" requested from outside
        self._stop_reason = "stopped"
        self._global_step = 0
        self._phase = "steady"
        self._load_seen = False
        self._load_announced = False
        self._down_since: float | None = None
        self._knob: KnobVerdict | None = None
        self._metrics = MetricsProbe(client)
        self._draft_source = "unknown"  # timings | metrics | none, once known

    # -- control (any thread) ---------------------------------------------
    def stop(self, reason: str = "stopped") -> None:
        self._stop_reason = reason
        self._stop.set()
        self._resume.set()
        self._wake.set()

    def abandon(self) -> None:
        """Stop now: close the HTTP client so the request in flight fails at once."""
        self.stop(self._stop_reason if self._stop.is_set() else "interrupted")
        self.client.close()

    def skip(self) -> None:
        self._skip.set()
        self._wake.set()

    def pause(self, paused: bool) -> None:
        if paused:
            self._resume.clear()
        else:
            self._resume.set()
            self._wake.set()
        self.sink.emit(Paused(paused))

    @property
    def paused(self) -> bool:
        return not self._resume.is_set()

    def toggle_load(self) -> None:
        """Start the burner timeline now, or stop it if it runs."""
        self._manual_load = "stop" if self.load.active else "start"

    # -- helpers ------------------------------------------------------------
    def _log(self, level: str, text: str) -> None:
        self.sink.emit(LogLine(level, text))

    def _check(self) -> None:
        if self._stop.is_set():
            raise _Stop()
        if self._skip.is_set():
            raise _Skip()

    def _wait_for_wake(self, seconds: float) -> None:
        self._wake.wait(seconds)
        self._wake.clear()

    def _sleep(self, seconds: float) -> None:
        deadline = self._clock() + seconds
        while True:
            self._check()
            left = deadline - self._clock()
            if left <= 0:
                return
            self._sleep_fn(min(left, 0.1))

    def _wait_if_paused(self) -> None:
        while not self._resume.is_set():
            self._check()
            self._resume.wait(0.1)
        self._check()

    def _announce_load(self, active: bool, reason: str) -> None:
        """One LoadChanged per real change of the burners' state."""
        if active != self._load_announced:
            self._load_announced = active
            self.sink.emit(LoadChanged(active, self.load.workers, reason))

    def _start_load(self, reason: str) -> None:
        self.load.start(self.plan.load_duration_s)
        self._announce_load(True, reason)
        secs = self.plan.load_duration_s
        self._log("info", f"load: {self.load.workers} burner(s) for {secs:g} s ({reason})")

    def _apply_manual_load(self) -> None:
        req, self._manual_load = self._manual_load, None
        if req == "start" and not self.load.active:
            self._start_load("injected from the keyboard")
        elif req == "stop" and self.load.active:
            self.load.stop()
            self._announce_load(False, "stopped from the keyboard")

    def _set_phase(self, mode: str, step: int, phase: str) -> None:
        if phase != self._phase:
            self._phase = phase
            self.sink.emit(PhaseChanged(mode, step, phase))

    def _actuate(self, k: int) -> Actuation:
        try:
            return self.actuator.apply(k)
        except ActuatorError as e:
            self._log("error", str(e))
            return Actuation()

    def _request(self, step_index: int, k: int) -> tuple[Reply, int]:
        prompt_id, prompt = prompt_for(step_index, self.plan.prompts)
        body = self.client.build_body(
            prompt,
            self.actuator.body_fields(k),
            max_tokens=self.plan.max_tokens,
            cache_prompt=False if self.plan.prompts == "pool" else None,
        )
        return self.client.chat(body), prompt_id

    def _drafting(self, reply: Reply, before: tuple[int, int] | None) -> Reply:
        """Drafted/accepted from the answer's timings, else from /metrics deltas.

        The source is settled at the first successful step: timings when the answer
        has them; else /metrics counters, read around every later step (so servers
        with timings never see an extra request); else none.
        """
        if not reply.success or self._draft_source in ("timings", "none"):
            return reply
        if reply.drafted is not None:
            self._draft_source = "timings"
            return reply
        if self._draft_source == "unknown":
            if self._metrics.read() is None:
                self._draft_source = "none"
            else:
                self._log("info", "answers carry no draft timings: reading drafting from /metrics")
                self._draft_source = "metrics"
            return reply
        after = self._metrics.read()
        if before is None or after is None:
            return reply
        return replace(reply, drafted=after[0] - before[0], accepted=after[1] - before[1])

    def _watch_server(self, reply: Reply) -> None:
        """Stop the run when the server stays unreachable for too long."""
        if reply.success or not reply.connection_error:
            self._down_since = None
            return
        now = time.monotonic()
        if self._down_since is None:
            self._down_since = now
        if now - self._down_since >= self.config.server_down_after_s and not self.client.ping():
            self._log(
                "error",
                f"server at {self.client.base_url} unreachable for "
                f"{now - self._down_since:.0f} s: stopping the run",
            )
            self.stop("server-down")
            raise _Stop()

    # -- the run --------------------------------------------------------------
    def run(self) -> RunFinished:
        cfg, plan = self.config, self.plan
        writer = CsvWriter(cfg.csv_path)
        writer.open()
        self.sink.emit(
            RunStarted(
                run_id=cfg.run_id,
                plan=plan.name,
                modes=tuple(ModeInfo(m.name, m.warmup_steps, m.measured_steps) for m in plan.modes),
                base_url=self.client.base_url,
                model=self.client.model,
                actuator=self.actuator.name,
                backend=cfg.backend,
                csv_path=str(Path(cfg.csv_path).resolve()),
                load_arms=cfg.load_arms,
                load_enabled=cfg.load_enabled,
                cooldown_s=plan.cooldown_s,
                warmup_sleep_s=plan.warmup_sleep_s,
            )
        )
        reason = "completed"
        try:
            for index, mode in enumerate(plan.modes):
                try:
                    self._run_mode(index, mode, writer)
                except _Skip:
                    self._log("info", f"skipped the rest of {mode.name}")
                    self._finish_mode(mode, skipped=True)
                finally:
                    self._skip.clear()
                if self._stop.is_set():
                    raise _Stop()
        except _Stop:
            reason = self._stop_reason
        except BaseException as e:
            reason = "failed"
            self._log("error", f"runner failed: {type(e).__name__}: {e}")
            raise
        finally:
            self.load.stop()
            writer.close()
            finished = self._finish(reason)
        return finished

    def _finish(self, reason: str) -> RunFinished:
        samples = [sample_from_record(r) for r in self.records]
        report = build_report(samples)
        files: tuple[str, ...] = (str(Path(self.config.csv_path).resolve()),)
        if self.config.write_summary_files:
            meta = {
                "run_id": self.config.run_id,
                "plan": self.plan.name,
                "reason": reason,
                "base_url": self.client.base_url,
                "model": self.client.model,
                "actuator": self.actuator.name,
                "backend": self.config.backend,
                **self.config.meta,
            }
            paths = write_summaries(self.config.csv_path, report, meta)
            files += tuple(str(p.resolve()) for p in paths)
        if report.knob.status == "no-effect":
            self._log("warning", report.knob.message.upper())
        done = RunFinished(
            reason=reason,
            summaries=report.summaries,
            winner=report.winner,
            knob=report.knob,
            files=files,
            summary_text=summary_text(report),
        )
        self.sink.emit(done)
        return done

    def _finish_mode(self, mode: ModeSpec, skipped: bool = False) -> None:
        samples = [sample_from_record(r) for r in self.records]
        mine = [s for s in samples if s.mode == mode.name]
        self.sink.emit(ModeFinished(summarize_mode(mode.name, mine), skipped=skipped))
        # Say as early as possible whether K takes effect, not only at the end.
        verdict = check_knob(samples)
        if verdict != self._knob:
            self._knob = verdict
            self.sink.emit(verdict)

    def _run_mode(self, index: int, mode: ModeSpec, writer: CsvWriter) -> None:
        cfg, plan = self.config, self.plan
        self.sink.emit(
            ModeStarted(mode.name, index, len(plan.modes), mode.warmup_steps, mode.measured_steps)
        )
        self._load_seen = False
        self._set_phase(mode.name, 0, "load" if self.load.active else "steady")
        controller: Controller | None = make_controller(cfg.controller) if mode.adaptive else None

        # Warmup: not logged, not counted; feeds the controller's thresholds.
        warm_lat: list[int] = []
        self._actuate(mode.warmup_k)
        for w in range(1, mode.warmup_steps + 1):
            self._wait_if_paused()
            self._apply_manual_load()
            reply, _ = self._request(w - 1, mode.warmup_k)
            self._watch_server(reply)
            if reply.success:
                warm_lat.append(reply.latency_ms)
            self.sink.emit(
                WarmupStep(
                    mode.name, w, mode.warmup_steps, mode.warmup_k, reply.success, reply.latency_ms
                )
            )
            self._sleep(plan.warmup_sleep_s)
        if controller is not None:
            controller.calibrate(warm_lat)
            thr = controller.thresholds
            self.sink.emit(Calibrated(mode.name, thr.low_ms, thr.high_ms, thr.p50_ms, thr.p95_ms))
            self._log(
                "info",
                f"adaptive calibration: warmup p50={thr.p50_ms} p95={thr.p95_ms} "
                f"=> low={thr.low_ms} ms high={thr.high_ms} ms",
            )

        load_here = cfg.load_enabled and (cfg.load_arms == "all" or mode.adaptive)
        for step in range(1, mode.measured_steps + 1):
            self._wait_if_paused()
            self._apply_manual_load()
            if load_here and step == plan.load_step and not self.load.active:
                self._start_load(f"{mode.name} step {step}")
            k = controller.next_k() if controller is not None else mode.k
            assert k is not None
            act = self._actuate(k)
            counters = self._metrics.read() if self._draft_source == "metrics" else None
            self.telemetry.sample()  # start the CPU window at the request
            reply, prompt_id = self._request(mode.warmup_steps + step - 1, k)
            cpu = self.telemetry.sample()
            reply = self._drafting(reply, counters)
            if self._stop.is_set() and not reply.success:
                raise _Stop()  # an abandoned request is not a measurement
            if controller is not None:
                controller.observe(k, reply.success, reply.latency_ms)
            if self.load.active:
                self._load_seen = True
                phase = "load"
            else:
                self._announce_load(False, "burners finished")
                phase = "recovery" if self._load_seen else "steady"
            self._set_phase(mode.name, step, phase)
            self._global_step += 1
            record = self._record(mode, step, phase, k, reply, prompt_id, act, controller, cpu)
            writer.write(record)
            self.records.append(record)
            self.sink.emit(StepDone(record, mode.measured_steps))
            self._log_step(record, reply)
            self._watch_server(reply)
            self._sleep(plan.cooldown_s)
        # As the original: the mode ends when its burner has ended, so load never
        # spills into the next arm's warmup.
        while self.load.active and load_here:
            self._sleep(0.1)
        if not self.load.active:
            self._announce_load(False, "burners finished")
        self._finish_mode(mode)

    def _record(
        self,
        mode: ModeSpec,
        step: int,
        phase: str,
        k: int,
        reply: Reply,
        prompt_id: int,
        act: Actuation,
        controller: Controller | None,
        cpu: tuple[float | None, float | None],
    ) -> StepRecord:
        thr = controller.thresholds if controller is not None else None
        return StepRecord(
            global_step=self._global_step,
            step=step,
            mode=mode.name,
            phase=phase,
            draft_length=k,
            success=reply.success,
            latency_ms=reply.latency_ms if reply.success else 0,
            tokens=reply.tokens if reply.success else 0,
            timestamp=_dt.datetime.now(_dt.timezone.utc).isoformat(timespec="milliseconds"),
            run_id=self.config.run_id,
            ema_ms=controller.ema_ms if controller is not None else None,
            low_ms=thr.low_ms if thr else None,
            high_ms=thr.high_ms if thr else None,
            actuator=self.actuator.name,
            confirmed_k=act.confirmed_k,
            reload_ms=act.reload_ms,
            drafted=reply.drafted,
            accepted=reply.accepted,
            acceptance=reply.acceptance,
            ttft_ms=reply.ttft_ms,
            prompt_ms=reply.prompt_ms,
            predicted_ms=reply.predicted_ms,
            predicted_n=reply.predicted_n,
            cpu_percent=cpu[0],
            server_cpu_percent=cpu[1],
            prompt_id=prompt_id,
            attempts=reply.attempts,
            error=reply.error,
        )

    def _log_step(self, r: StepRecord, reply: Reply) -> None:
        if r.success:
            self._log("debug", f"{r.mode} step {r.step}: reply {preview(reply.text)!r}")
        else:
            self._log(
                "error", f"{r.mode} step {r.step}: failed after {r.attempts} attempts: {r.error}"
            )
