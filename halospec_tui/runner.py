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

import httpx

from halospec_tui.actuators import Actuation, Actuator, ActuatorError
from halospec_tui.client import ChatClient, Reply, preview
from halospec_tui.controllers import Controller, Observation, make_controller
from halospec_tui.controls import LoadStatus
from halospec_tui.events import (
    ArmFinished,
    ArmInfo,
    ArmStarted,
    Calibrated,
    ControllerState,
    KnobVerdict,
    LoadChanged,
    LogLine,
    Paused,
    PhaseChanged,
    RoundFinished,
    RoundStarted,
    RunFinished,
    RunStarted,
    Sink,
    StepDone,
    StepRecord,
    WarmupStep,
)
from halospec_tui.knob import check_knob
from halospec_tui.load import LoadInjector
from halospec_tui.load_requests import Load
from halospec_tui.metrics import DraftCounter, MetricsProbe
from halospec_tui.plan import ArmSpec, Plan
from halospec_tui.prompts import workload_prompt
from halospec_tui.results import (
    CsvWriter,
    SummaryWriteError,
    build_report,
    sample_from_record,
    summary_text,
    write_summaries,
)
from halospec_tui.schedule import (
    grown_block,
    prompt_index,
    round_blocks,
    round_phase,
    settle_prompt_index,
)
from halospec_tui.stats import summarize_arm
from halospec_tui.telemetry import Telemetry
from halospec_tui.verdict import decide, newly_worse, stop_reason


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


AUTH_REFUSALS_TO_STOP = 3  # consecutive steps answered 401/403


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
        load: Load | None = None,
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
        self.load: Load = load or LoadInjector()
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
        self._drafts = DraftCounter(MetricsProbe(client), self._log)
        self._pending = Actuation()  # a reload that started an arm, for its first row

    # -- control (any thread) ---------------------------------------------
    def stop(self, reason: str = "stopped") -> None:
        self._stop_reason = reason
        self._stop.set()
        stop_retrying = getattr(self.client, "stop_retrying", None)
        if stop_retrying is not None:  # the request in flight is the last attempt
            stop_retrying()
        self._resume.set()
        self._wake.set()

    def abandon(self) -> None:
        """Stop now: the request in flight fails at once and is not retried."""
        self.stop(self._stop_reason if self._stop.is_set() else "interrupted")
        abandon = getattr(self.client, "abandon", None) or self.client.close
        abandon()

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

    def load_status(self) -> LoadStatus:
        return LoadStatus(self.load.active, self.load.seconds_left(), self.load.workers)

    @property
    def debug(self) -> bool:
        return self.client.debug_json

    def toggle_debug(self) -> bool:
        """Log every response's JSON, or stop; returns the new state."""
        self.client.debug_json = not self.client.debug_json
        return self.client.debug_json

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
        self._log("info", f"load: {self.load.workers} worker(s) for {secs:g} s ({reason})")

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

    def _actuate(self, k: int, p_min: float = 0.0) -> Actuation:
        try:
            return self.actuator.apply(k, p_min)
        except ActuatorError as e:
            self._log("error", str(e))
            return Actuation()
        except httpx.HTTPError:
            if self._stop.is_set():  # abandoned under the actuator's request
                raise _Stop() from None
            raise

    def _prompt(self, step_index: int) -> tuple[int, str, str]:
        """The run's n-th prompt: (id, text, class)."""
        plan = self.plan
        return workload_prompt(step_index, plan.prompts, plan.workload, plan.shift_every)

    def _request(self, prompt: str, k: int, p_min: float) -> Reply:
        """Send one prompt at (K, p_min)."""
        plan = self.plan
        body = self.client.build_body(
            prompt,
            self.actuator.body_fields(k, p_min),
            max_tokens=plan.max_tokens,
            cache_prompt=False if plan.prompts == "pool" else None,
        )
        return self.client.chat(body)

    def _watch_server(self, reply: Reply) -> None:
        """Stop the run when the server stays unreachable for too long, or keeps
        refusing the API key."""
        refusals = getattr(self.client, "auth_refusals", 0)
        if refusals >= AUTH_REFUSALS_TO_STOP:
            self._log(
                "error",
                f"server refused {refusals} requests in a row with HTTP "
                f"{reply.status} (check --api-key / --api-key-file / LEMONADE_API_KEY): "
                "stopping the run",
            )
            self.stop("auth-refused")
            raise _Stop()
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
                arms=tuple(ArmInfo(m.name, m.warmup_steps, m.measured_steps) for m in plan.arms),
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
            if plan.interleaved:
                self._run_rounds(writer)
            for index, mode in enumerate(() if plan.interleaved else plan.arms):
                try:
                    self._run_arm(index, mode, writer)
                except _Skip:
                    self._log("info", f"skipped the rest of {mode.name}")
                    self._finish_arm(mode, skipped=True)
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
        if reason == "completed" and self._stop.is_set():
            reason = self._stop_reason  # stopped after the last step
        samples = [sample_from_record(r) for r in self.records]
        report = build_report(samples, tolerance=self.plan.tolerance)
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
                    self._log("error", f"summary not written: {line}")
            files += tuple(str(p.resolve()) for p in paths)
        if reason == "completed" and self._stop.is_set():
            reason = self._stop_reason  # a signal while the summaries were written
        if report.knob.status == "no-effect":
            self._log("warning", report.knob.message.upper())
        done = RunFinished(
            reason=reason,
            summaries=report.summaries,
            winner=report.winner,
            knob=report.knob,
            files=files,
            summary_text=summary_text(report),
            unwritten=failed,
        )
        self.sink.emit(done)
        return done

    def _finish_arm(self, mode: ArmSpec, skipped: bool = False) -> None:
        samples = [sample_from_record(r) for r in self.records if not r.settle]
        mine = [s for s in samples if s.arm == mode.name]
        self.sink.emit(ArmFinished(summarize_arm(mode.name, mine), skipped=skipped))
        # Say as early as possible whether K takes effect, not only at the end.
        verdict = check_knob(samples)
        if verdict != self._knob:
            self._knob = verdict
            self.sink.emit(verdict)

    def _controller_for(self, mode: ArmSpec) -> Controller | None:
        if not mode.adaptive:
            return None
        return make_controller(mode.controller or self.config.controller)

    def _warmup(self, mode: ArmSpec, controller: Controller | None) -> None:
        """Warmup requests: not logged, not counted; they calibrate the controller."""
        warm_lat: list[int] = []
        for w in range(1, mode.warmup_steps + 1):
            self._wait_if_paused()
            self._apply_manual_load()
            reply = self._request(self._prompt(w - 1)[1], mode.warmup_k, mode.p_min)
            self._watch_server(reply)
            if reply.success:
                warm_lat.append(reply.latency_ms)
            self.sink.emit(
                WarmupStep(
                    mode.name, w, mode.warmup_steps, mode.warmup_k, reply.success, reply.latency_ms
                )
            )
            self._sleep(self.plan.warmup_sleep_s)
        if controller is not None:
            controller.calibrate(warm_lat)
            thr = controller.thresholds
            self.sink.emit(Calibrated(mode.name, thr.low_ms, thr.high_ms, thr.p50_ms, thr.p95_ms))
            self._log(
                "info",
                f"adaptive calibration: warmup p50={thr.p50_ms} p95={thr.p95_ms} "
                f"=> low={thr.low_ms} ms high={thr.high_ms} ms",
            )

    def _run_arm(self, index: int, mode: ArmSpec, writer: CsvWriter) -> None:
        """The original's sequential schedule: warmup, then every measured step of one mode."""
        cfg, plan = self.config, self.plan
        self.sink.emit(
            ArmStarted(mode.name, index, len(plan.arms), mode.warmup_steps, mode.measured_steps)
        )
        self._load_seen = False
        self._set_phase(mode.name, 0, "load" if self.load.active else "steady")
        controller = self._controller_for(mode)
        self._pending = self._actuate(mode.warmup_k, mode.p_min)
        self._warmup(mode, controller)
        load_here = cfg.load_enabled and (cfg.load_arms == "all" or mode.adaptive)
        for step in range(1, mode.measured_steps + 1):
            self._wait_if_paused()
            self._apply_manual_load()
            if load_here and step == plan.load_step and not self.load.active:
                self._start_load(f"{mode.name} step {step}")
            if self.load.active:
                self._load_seen = True
            self._measure_step(mode, step, controller, writer, timeline=None)
            self._sleep(plan.cooldown_s)
        # As the original: the mode ends when its burner has ended, so load never
        # spills into the next arm's warmup.
        while self.load.active and load_here:
            self._sleep(0.1)
        if not self.load.active:
            self._announce_load(False, "burners finished")
        self._finish_arm(mode)

    def _measure_step(
        self,
        mode: ArmSpec,
        step: int,
        controller: Controller | None,
        writer: CsvWriter,
        *,
        timeline: str | None,
        prompt_index: int | None = None,
        round_no: int | None = None,
        block_pos: int | None = None,
        settle: bool = False,
        planned: int | None = None,
    ) -> StepRecord:
        """One request at the arm's K (or the controller's): measured, written, announced.

        `timeline` is the phase the schedule lays on this step (interleaved rounds);
        None: the phase follows the burners as in the original. A settle step is run
        and written (flagged) but is no measurement: it feeds no controller.
        """
        index = prompt_index if prompt_index is not None else mode.warmup_steps + step - 1
        prompt_id, prompt, prompt_class = self._prompt(index)
        k = controller.next_k(prompt_class) if controller is not None else mode.warmup_k
        act = self._actuate(k, mode.p_min)
        if self._pending.reload_ms is not None:  # the reload that started this arm/block
            act = replace(act, reload_ms=(act.reload_ms or 0) + self._pending.reload_ms)
        self._pending = Actuation()
        counters = self._drafts.before()
        self.telemetry.sample()  # start the CPU window at the request
        reply = self._request(prompt, k, mode.p_min)
        cpu = self.telemetry.sample()
        reply = self._drafts.after(reply, counters, k)
        if self._stop.is_set() and not reply.success:
            raise _Stop()  # an abandoned request is not a measurement
        if controller is not None and not settle:
            controller.observe(
                k,
                reply.success,
                reply.latency_ms,
                Observation(
                    k, reply.success, reply.latency_ms, reply.tokens if reply.success else 0,
                    reply.drafted, reply.accepted, reply.predicted_ms, act.reload_ms,
                    prompt_class,
                ),  # fmt: skip
            )
            for note in getattr(controller, "notes", ()):
                self._log("warning", f"{mode.name}: {note}")
            if hasattr(controller, "notes"):
                controller.notes.clear()
            view = controller.view()
            if view is not None:
                self.sink.emit(ControllerState(mode.name, view))
        if timeline is not None:
            phase = "load" if self.load.active and timeline == "steady" else timeline
        elif self.load.active:
            phase = "load"
        else:
            self._announce_load(False, "burners finished")
            phase = "recovery" if self._load_seen else "steady"
        if not settle:
            self._set_phase(mode.name, step, phase)
        self._global_step += 1
        record = self._record(mode, step, phase, k, reply, (prompt_id, prompt_class), act,
                              controller, cpu)  # fmt: skip
        if round_no is not None:
            record = replace(record, round=round_no, block_pos=block_pos, settle=settle)
        writer.write(record)
        self.records.append(record)
        if settle:
            self.sink.emit(WarmupStep(mode.name, step, planned or 0, k, reply.success, reply.latency_ms))
        else:
            self.sink.emit(StepDone(record, planned or mode.measured_steps))
        self._log_step(record, reply)
        self._watch_server(reply)
        return record

    # -- interleaved rounds ---------------------------------------------------
    def _run_rounds(self, writer: CsvWriter) -> None:
        """Rounds of one block per remaining arm, order shuffled each round (schedule.py);
        with until_decisive, arms clearly worse than the best are dropped after each round
        and the run stops once the verdict is decisive."""
        cfg, plan = self.config, self.plan
        index_of = {m.name: i for i, m in enumerate(plan.arms)}
        spec = {m.name: m for m in plan.arms}
        controllers: dict[str, Controller] = {
            m.name: c for m in plan.arms if (c := self._controller_for(m)) is not None
        }
        warmed: set[str] = set()
        steps_done: dict[str, int] = {m.name: 0 for m in plan.arms}
        remaining = [m.name for m in plan.arms]
        dropped: list[tuple[str, int]] = []
        started = time.monotonic()
        load_round = plan.load_round if cfg.load_enabled else None
        # A decisive verdict may stop the run from min_rounds, and not before every arm
        # has seen the whole load timeline (steady, load and recovery).
        first_stop = max(plan.min_rounds, load_round + plan.load_rounds if load_round else 0)
        first_prompt = 0
        for rnd in range(1, plan.rounds + 1):
            timeline = round_phase(rnd, load_round, plan.load_rounds)
            self._round_load(timeline, rnd)
            size = grown_block(plan.block, len(plan.arms), len(remaining))
            blocks = round_blocks(remaining, plan.seed, rnd, size)
            self.sink.emit(
                RoundStarted(rnd, plan.rounds, tuple(b.arm for b in blocks), timeline)
            )
            for blk in blocks:
                mode = spec[blk.arm]
                self.sink.emit(
                    ArmStarted(mode.name, index_of[mode.name], len(plan.arms), 0, blk.steps)
                )
                controller = controllers.get(mode.name)
                try:
                    warm = controller is None or mode.name not in warmed
                    if warm or controller is None:
                        k0 = mode.warmup_k
                    else:  # the K the block's first request will ask for
                        first = (
                            settle_prompt_index(rnd, plan.settle, 1)
                            if plan.settle
                            else prompt_index(first_prompt, 1)
                        )
                        k0 = controller.next_k(self._prompt(first)[2])
                    self._pending = self._actuate(k0, mode.p_min)
                    if mode.name not in warmed:
                        warmed.add(mode.name)
                        self._warmup(mode, controller)
                    for i in range(1, plan.settle + 1):
                        self._wait_if_paused()
                        self._apply_manual_load()
                        self._measure_step(
                            mode, i, controller, writer, timeline=timeline,
                            prompt_index=settle_prompt_index(rnd, plan.settle, i), round_no=rnd,
                            block_pos=blk.position, settle=True, planned=plan.settle,
                        )  # fmt: skip
                    for i in range(1, blk.steps + 1):
                        self._wait_if_paused()
                        self._apply_manual_load()
                        steps_done[mode.name] += 1
                        self._measure_step(
                            mode, steps_done[mode.name], controller, writer, timeline=timeline,
                            prompt_index=prompt_index(first_prompt, i), round_no=rnd,
                            block_pos=blk.position, planned=blk.steps,
                        )  # fmt: skip
                        self._sleep(plan.cooldown_s)
                except _Skip:
                    self._log("info", f"skipped the rest of {mode.name}'s block in round {rnd}")
                    self._finish_arm(mode, skipped=True)
                    self._skip.clear()
                    continue
                self._finish_arm(mode)
            first_prompt += size
            verdict = decide(
                [sample_from_record(r) for r in self.records if not r.settle],
                tolerance=plan.tolerance,
                eliminated=dropped,
                with_phases=False,
            )
            if plan.until_decisive and rnd >= plan.drop_from_round:
                for arm in newly_worse(verdict):
                    if arm in remaining and len(remaining) > 1:
                        remaining.remove(arm)
                        dropped.append((arm, rnd))
                        self._log("info", f"round {rnd}: {arm} is clearly slower than "
                                          f"{verdict.best}: dropped")  # fmt: skip
            elapsed = time.monotonic() - started
            reason = None
            if plan.until_decisive:
                reason = stop_reason(
                    verdict, rnd, min_rounds=first_stop,
                    max_rounds=plan.rounds, elapsed_s=elapsed, max_time_s=plan.max_time_s,
                )  # fmt: skip
            round_s = elapsed / rnd
            self.sink.emit(
                RoundFinished(
                    round=rnd,
                    rounds=plan.rounds,
                    best=verdict.best,
                    decisive=verdict.decisive,
                    remaining=tuple(remaining),
                    dropped=tuple(dropped),
                    recommended_k=verdict.recommended_k,
                    stop=reason,
                    elapsed_s=elapsed,
                    left_s=None if reason else round_s * (plan.rounds - rnd),
                    status=tuple((a.arm, verdict.status(a.arm)) for a in verdict.arms),
                    half_width=tuple(
                        (a.arm, a.tps.value, a.tps.half_width) for a in verdict.arms if a.tps
                    ),
                )
            )
            if reason is not None:
                self._log("info", f"round {rnd}: stopping ({reason})")
                break
            if self._stop.is_set():
                raise _Stop()
        if self.load.active:
            self.load.stop()
            self._announce_load(False, "load timeline over")

    def _round_load(self, timeline: str, rnd: int) -> None:
        """Burners on for the load rounds of the timeline, off after them."""
        if timeline == "load" and not self.load.active:
            self.load.start(self.plan.max_time_s or self.plan.load_duration_s)
            self._announce_load(True, f"round {rnd} (load timeline)")
            self._log("info", f"load: {self.load.workers} worker(s) from round {rnd}")
        elif timeline == "recovery" and self.load.active:
            self.load.stop()
            self._announce_load(False, f"round {rnd}: load timeline over")

    def _record(
        self,
        mode: ArmSpec,
        step: int,
        phase: str,
        k: int,
        reply: Reply,
        prompt: tuple[int, str],  # (id, class)
        act: Actuation,
        controller: Controller | None,
        cpu: tuple[float | None, float | None],
    ) -> StepRecord:
        thr = controller.thresholds if controller is not None else None
        return StepRecord(
            global_step=self._global_step,
            step=step,
            arm=mode.name,
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
            prompt_id=prompt[0],
            prompt_class=prompt[1],
            attempts=reply.attempts,
            error=reply.error,
        )

    def _log_step(self, r: StepRecord, reply: Reply) -> None:
        if r.success:
            self._log("debug", f"{r.arm} step {r.step}: reply {preview(reply.text)!r}")
        else:
            self._log(
                "error", f"{r.arm} step {r.step}: failed after {r.attempts} attempts: {r.error}"
            )
