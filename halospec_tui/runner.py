"""The benchmark engine: runs a plan, emits events to a sink, writes CSV and summaries.

It knows nothing of any UI. It can be paused, told to skip the current arm, told to
inject or stop load, and stopped, from another thread; every wait is interruptible.
The schedules live apart (sequential.py, rounds.py) over one step (steps.py).
"""

from __future__ import annotations

import datetime as _dt
import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

from halospec_tui.actuators import Actuator, ActuatorError, Setting
from halospec_tui.arms import p_min_of, threads_of
from halospec_tui.bandwidth import open_counter
from halospec_tui.controls import LoadStatus
from halospec_tui.events import (
    ArmInfo,
    LogLine,
    Paused,
    RunFinished,
    RunStarted,
    Sink,
    StepRecord,
    StopReason,
)
from halospec_tui.load import LoadInjector
from halospec_tui.load_requests import Load
from halospec_tui.plan import Plan
from halospec_tui.results.export_text import summary_text
from halospec_tui.results.reader import sample_from_record
from halospec_tui.results.report import Report, build_report
from halospec_tui.results.summary_files import SummaryWriteError, write_summaries
from halospec_tui.results.writer import CsvWriter
from halospec_tui.rounds import run_rounds
from halospec_tui.sequential import run_sequential
from halospec_tui.steps import (
    AUTH_REFUSALS_TO_STOP,
    BenchClient,
    Control,
    Steps,
    Stopped,
)
from halospec_tui.telemetry import Bandwidth, Telemetry

__all__ = ["AUTH_REFUSALS_TO_STOP", "RunConfig", "Runner", "new_run_id"]


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
    # At the end: put the server back as it was found, or leave the recommendation.
    leave: Literal["found", "recommended"] = "found"
    server_kind: str = ""  # actuators.ServerInfo.kind, written on every row
    # A run with conditions: each load condition's load (members of the runner's load).
    condition_loads: dict[str, Load] = field(default_factory=dict)


class Runner:
    def __init__(
        self,
        config: RunConfig,
        client: BenchClient,
        actuator: Actuator,
        sink: Sink,
        load: Load | None = None,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] | None = None,
    ) -> None:
        """`clock` and `sleep` drive the plan's sleeps and deadlines (tests inject
        fakes); by default the monotonic clock and a wait that stop, skip and resume
        cut short."""
        self.config = config
        self.plan = config.plan
        self.client = client
        self.actuator = actuator
        self.sink = sink
        self.load: Load = load or LoadInjector()
        self.control = Control(clock, sleep)
        self._steps: Steps | None = None
        self._manual_load: str | None = None  # asked for before the steps exist

    @property
    def records(self) -> list[StepRecord]:
        return self._steps.records if self._steps is not None else []

    # -- control (any thread) ---------------------------------------------
    def stop(self, reason: StopReason = "stopped") -> None:
        self.control.stop(reason)
        self.client.stop_retrying()  # the request in flight is the last attempt

    def abandon(self) -> None:
        """Stop now: the request in flight fails at once and is not retried."""
        self.stop(self.control.reason if self.control.stopping else "interrupted")
        self.client.abandon()

    def skip(self) -> None:
        self.control.skip()

    def pause(self, paused: bool) -> None:
        if paused:
            self.control.resume_event.clear()
        else:
            self.control.resume_event.set()
            self.control.wake.set()
        self.sink.emit(Paused(paused))

    @property
    def paused(self) -> bool:
        return not self.control.resume_event.is_set()

    def toggle_load(self) -> None:
        """Start the load timeline now, or stop it if it runs."""
        req = "stop" if self.load.active else "start"
        if self._steps is not None:
            self._steps.manual_load = req
        else:
            self._manual_load = req

    def load_status(self) -> LoadStatus:
        bw = self._steps.telemetry.live() if self._steps is not None else Bandwidth()
        return LoadStatus(
            self.load.active, self.load.seconds_left(), self.load.workers,
            bw.load_gbps, bw.machine_gbps,
        )  # fmt: skip

    def _log(self, level: str, text: str) -> None:
        self.sink.emit(LogLine(level, text))

    @property
    def debug(self) -> bool:
        return self.client.debug_json

    def toggle_debug(self) -> bool:
        """Log every response's JSON, or stop; returns the new state."""
        self.client.debug_json = not self.client.debug_json
        return self.client.debug_json

    # -- the run --------------------------------------------------------------
    def run(self) -> RunFinished:
        cfg, plan = self.config, self.plan
        writer = CsvWriter(cfg.csv_path)
        writer.open()
        steps = self._steps = Steps(
            plan=plan,
            run_id=cfg.run_id,
            client=self.client,
            actuator=self.actuator,
            sink=self.sink,
            load=self.load,
            writer=writer,
            control=self.control,
            telemetry=Telemetry(cfg.server_pid, self.load, open_counter(), self._log),
            controller_name=cfg.controller,
            server_kind=cfg.server_kind,
            server_down_after_s=cfg.server_down_after_s,
            manual_load=self._manual_load,
            condition_loads=cfg.condition_loads,
        )
        self.sink.emit(
            RunStarted(
                run_id=cfg.run_id,
                plan=plan.name,
                arms=tuple(ArmInfo(a.name, a.warmup_steps, a.measured_steps) for a in plan.arms),
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
        reason: StopReason = "completed"
        try:
            if plan.interleaved:
                run_rounds(steps, cfg.load_enabled)
            else:
                run_sequential(steps, cfg.load_enabled, cfg.load_arms)
        except Stopped:
            reason = self.control.reason
        except BaseException as e:
            reason = "failed"
            steps.log("error", f"runner failed: {type(e).__name__}: {e}")
            raise
        finally:
            self.load.stop()
            steps.telemetry.close()
            writer.close()
            finished = self._finish(steps, reason)
        return finished

    def _finish(self, steps: Steps, reason: StopReason) -> RunFinished:
        if reason == "completed" and self.control.stopping:
            reason = self.control.reason  # stopped after the last step
        samples = [sample_from_record(r) for r in steps.records]
        report = build_report(samples, tolerance=self.plan.tolerance, metric=self.plan.metric)
        server = self._leave_server(steps, report)
        files: tuple[str, ...] = (str(Path(self.config.csv_path).resolve()),)
        failed: tuple[str, ...] = ()
        if self.config.write_summary_files:
            meta = {
                "run_id": self.config.run_id,
                "plan": self.plan.name,
                "reason": reason,
                "base_url": self.client.base_url,
                "model": self.client.model,
                "actuator": self.actuator.name,
                "backend": self.config.backend,
                "server_left": server,
                **self.config.meta,
            }
            try:
                paths = write_summaries(self.config.csv_path, report, meta)
            except SummaryWriteError as e:
                # The run's own outcome (and any error in flight) stands; the summary
                # is printed with RunFinished, and the failure says where it could not go.
                paths = e.written
                failed = tuple(f"{p}: {why}" for p, why in e.failed)
                for line in failed:
                    steps.log("error", f"summary not written: {line}")
            files += tuple(str(p.resolve()) for p in paths)
        if reason == "completed" and self.control.stopping:
            reason = self.control.reason  # a signal while the summaries were written
        if report.knob.status == "no-effect":
            steps.log("warning", report.knob.message.upper())
        done = RunFinished(
            reason=reason,
            summaries=report.summaries,
            winner=report.winner,
            knob=report.knob,
            files=files,
            summary_text=summary_text(report),
            unwritten=failed,
            server=server,
        )
        self.sink.emit(done)
        return done

    def _leave_server(self, steps: Steps, report: Report) -> str:
        """Put the server back as it was found (or at the recommendation, with
        --leave recommended), before the summaries, which say what was done."""
        setting = None
        v = report.verdict
        if self.config.leave == "recommended":
            policy = report.policy
            if v is None and policy is not None and policy.static_k is not None:
                # several conditions: the one static setting that serves them all best
                static = policy.static or ""
                setting = Setting(policy.static_k, p_min_of(static), threads_of(static))
            elif v is not None and v.recommended_k is not None:
                pick = v.recommended or ""
                setting = Setting(v.recommended_k, p_min_of(pick), threads_of(pick))
            else:
                steps.log("warning", "--leave recommended: no fixed setting was recommended; "
                                     "putting the server back as it was found")  # fmt: skip
        try:
            said = self.actuator.leave(setting)
        except ActuatorError as e:
            steps.log("error", f"the server was not put back as found: {e}")
            return f"NOT put back: {e}"
        if said is None:
            return ""
        steps.log("info", f"server: {said}")
        return said
