"""One step of a run, shared by every schedule: a request at an arm's K, measured,
written and announced; the warmup before an arm; and the control flags (stop, skip,
pause) that every wait honours.

`sequential.py` (the original's order) and `rounds.py` (interleaved rounds) decide
which arm runs when; they call `Steps` for everything else, so a step is measured,
recorded and told the same way whatever the schedule.
"""

from __future__ import annotations

import datetime as _dt
import threading
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from typing import Any, Literal, Protocol

import httpx

from halospec_tui.actuators import Actuation, Actuator, ActuatorError, ActuatorUnreachable
from halospec_tui.client import Reply, preview
from halospec_tui.conditions import Condition
from halospec_tui.controllers import Controller, Observation, make_controller
from halospec_tui.events import (
    ArmFinished,
    Calibrated,
    ControllerState,
    KnobVerdict,
    LoadChanged,
    LogLine,
    Phase,
    PhaseChanged,
    Sink,
    StepDone,
    StepRecord,
    StopReason,
    WarmupStep,
)
from halospec_tui.knob import check_knob
from halospec_tui.load_requests import Load, background_of
from halospec_tui.metrics import DraftCounter, MetricsProbe
from halospec_tui.plan import ArmSpec, Plan
from halospec_tui.prompts import workload_prompt
from halospec_tui.results.reader import sample_from_record
from halospec_tui.results.writer import CsvWriter
from halospec_tui.stats import summarize_arm
from halospec_tui.telemetry import Telemetry

AUTH_REFUSALS_TO_STOP = 3  # consecutive steps answered 401/403
K_NOT_SET = "K not set"  # the error of a step whose K the server did not take

LogLevel = Literal["debug", "info", "warning", "error"]


class BenchClient(Protocol):
    """What the engine needs of an HTTP client (`client.ChatClient`; tests' fakes)."""

    base_url: str
    model: str
    debug_json: bool
    auth_refusals: int  # consecutive replies refused with 401/403

    def build_body(
        self,
        prompt: str,
        extra: dict[str, Any] | None = None,
        *,
        max_tokens: int = 64,
        cache_prompt: bool | None = None,
    ) -> dict[str, Any]: ...

    def chat(self, body: dict[str, Any]) -> Reply: ...

    def ping(self) -> bool: ...

    def get_text(self, path: str, timeout_s: float = 5.0) -> tuple[int, str]: ...

    def stop_retrying(self) -> None:
        """The attempt in flight is the last one (the run is stopping)."""
        ...

    def abandon(self) -> None:
        """Fail the request in flight now; no retry, no later request."""
        ...

    def close(self) -> None: ...


class Skipped(Exception):
    """The rest of the current arm (or its block) is skipped."""


class Stopped(Exception):
    """The run stops: after the request in flight, or at once when abandoned."""


class Control:
    """Stop, skip and pause, set from any thread; every wait of the run honours them."""

    def __init__(self, clock: Callable[[], float], sleep: Callable[[float], None] | None) -> None:
        self.stop_event = threading.Event()
        self.skip_event = threading.Event()
        self.resume_event = threading.Event()
        self.resume_event.set()
        self.wake = threading.Event()  # set on stop/skip/resume to cut sleeps short
        self.clock = clock
        self._sleep_fn = sleep or self._wait_for_wake
        self.reason: StopReason = "stopped"

    @property
    def stopping(self) -> bool:
        return self.stop_event.is_set()

    def stop(self, reason: StopReason) -> None:
        self.reason = reason
        self.stop_event.set()
        self.resume_event.set()
        self.wake.set()

    def skip(self) -> None:
        self.skip_event.set()
        self.wake.set()

    def check(self) -> None:
        if self.stop_event.is_set():
            raise Stopped()
        if self.skip_event.is_set():
            raise Skipped()

    def _wait_for_wake(self, seconds: float) -> None:
        self.wake.wait(seconds)
        self.wake.clear()

    def sleep(self, seconds: float) -> None:
        """Sleep on the run's clock; stop and skip cut it short."""
        deadline = self.clock() + seconds
        while True:
            self.check()
            left = deadline - self.clock()
            if left <= 0:
                return
            self._sleep_fn(min(left, 0.1))

    def wait_if_paused(self) -> None:
        while not self.resume_event.is_set():
            self.check()
            self.resume_event.wait(0.1)
        self.check()


@dataclass(frozen=True)
class StepPlace:
    """Where a step stands in its schedule, and what the schedule lays on it."""

    step: int  # the arm's measured step (1-based), or the settle step's number
    prompt_index: int | None = None  # the run's n-th prompt; None: after the warmup's
    timeline: Phase | None = None  # rounds: the phase laid on the step; None: burners
    round: int | None = None
    block_pos: int | None = None
    settle: bool = False  # run after a change of K, written but not measured
    planned: int | None = None  # steps planned for this arm (or block)
    left: int | None = None  # measured steps the arm has left after this one, at most
    condition: Condition | None = None  # a run with conditions: the one laid on the step
    client: int | None = None  # which of the step's concurrent requests (1-based)
    step_ms: int | None = None  # the concurrent step's wall time (None: the request's own)


@dataclass
class Steps:
    """The state a run's steps share, and the one way a step is run."""

    plan: Plan
    run_id: str
    client: BenchClient
    actuator: Actuator
    sink: Sink
    load: Load
    writer: CsvWriter
    control: Control
    telemetry: Telemetry
    controller_name: str = "threshold"  # the plain `adaptive` arm's controller
    server_kind: str = ""  # what the server is (actuators.ServerInfo.kind), for the rows
    server_down_after_s: float = 60.0
    records: list[StepRecord] = field(default_factory=list)
    global_step: int = 0
    phase: Phase = "steady"
    load_seen: bool = False  # sequential: this arm has met load (recovery follows it)
    knob: KnobVerdict | None = None
    pending: Actuation = field(default_factory=Actuation)  # a reload that opened an arm
    # A settle step's reload (its row holds it), told to the controller with the next
    # measured step: what a change of K costs, known before the controller's first move
    untold_reload_ms: int | None = None
    manual_load: str | None = None  # "start" | "stop", asked for from outside
    # A run with conditions: each load condition's own load (cpu, memory, requests), all
    # of them members of `load`; the rounds hold one on at a time (rounds.hold_load).
    condition_loads: dict[str, Load] = field(default_factory=dict)
    _load_announced: bool = False
    _down_since: float | None = None
    drafts: DraftCounter = field(init=False)

    def __post_init__(self) -> None:
        self.drafts = DraftCounter(MetricsProbe(self.client), self.log, background_of(self.load))

    # -- telling ------------------------------------------------------------------
    def log(self, level: LogLevel | str, text: str) -> None:
        self.sink.emit(LogLine(level, text))

    def set_phase(self, arm: str, step: int, phase: Phase) -> None:
        if phase != self.phase:
            self.phase = phase
            self.sink.emit(PhaseChanged(arm, step, phase))

    def announce_load(self, active: bool, reason: str) -> None:
        """One LoadChanged per real change of the load's state."""
        if active != self._load_announced:
            self._load_announced = active
            self.sink.emit(LoadChanged(active, self.load.workers, reason))

    # -- load -----------------------------------------------------------------------
    def start_load(self, reason: str, duration_s: float | None = None) -> None:
        secs = self.plan.load_duration_s if duration_s is None else duration_s
        self.load.start(secs)
        self.announce_load(True, reason)
        self.log("info", f"load: {self.load.workers} worker(s) for {secs:g} s ({reason})")

    def stop_load(self, reason: str) -> None:
        if self.load.active:
            self.load.stop()
        self.announce_load(False, reason)

    def apply_manual_load(self) -> None:
        req, self.manual_load = self.manual_load, None
        if req == "start" and not self.load.active:
            self.start_load("injected from the keyboard")
        elif req == "stop" and self.load.active:
            self.stop_load("stopped from the keyboard")

    def before_request(self) -> None:
        """Between two requests: honour pause, stop and skip, and the load key."""
        self.control.wait_if_paused()
        self.apply_manual_load()

    # -- one request ------------------------------------------------------------------
    def actuate(self, k: int, p_min: float = 0.0, threads: int | None = None) -> Actuation:
        """Set K (and p_min, and the thread count); an actuator's refusal is logged and
        returned as `error`."""
        try:
            return self.actuator.apply(k, p_min, threads)
        except ActuatorError as e:
            self.log("error", str(e))
            return Actuation(error=str(e), unreachable=isinstance(e, ActuatorUnreachable))
        except httpx.HTTPError:
            if self.control.stopping:  # abandoned under the actuator's request
                raise Stopped() from None
            raise

    def prompt(self, index: int) -> tuple[int, str, str]:
        """The run's n-th prompt: (id, text, class)."""
        plan = self.plan
        return workload_prompt(index, plan.prompts, plan.workload, plan.shift_every)

    def request(self, prompt: str, k: int, p_min: float) -> Reply:
        """Send one prompt at (K, p_min)."""
        plan = self.plan
        body = self.client.build_body(
            prompt,
            self.actuator.body_fields(k, p_min),
            max_tokens=plan.max_tokens,
            cache_prompt=False if plan.prompts == "pool" else None,
        )
        return self.client.chat(body)

    def watch_server(self, reply: Reply) -> None:
        """Stop the run when the server stays unreachable for too long, or keeps
        refusing the API key."""
        refusals = self.client.auth_refusals
        if refusals >= AUTH_REFUSALS_TO_STOP:
            self.log(
                "error",
                f"server refused {refusals} requests in a row with HTTP "
                f"{reply.status} (check --api-key / --api-key-file / LEMONADE_API_KEY): "
                "stopping the run",
            )
            self.control.stop("auth-refused")
            raise Stopped()
        if reply.success or not reply.connection_error:
            self._down_since = None
            return
        now = self.control.clock()
        if self._down_since is None:
            self._down_since = now
        if now - self._down_since >= self.server_down_after_s and not self.client.ping():
            self.log(
                "error",
                f"server at {self.client.base_url} unreachable for "
                f"{now - self._down_since:.0f} s: stopping the run",
            )
            self.control.stop("server-down")
            raise Stopped()

    # -- arms ---------------------------------------------------------------------------
    def controller_for(self, spec: ArmSpec) -> Controller | None:
        if not spec.adaptive:
            return None
        return make_controller(spec.controller or self.controller_name)

    def warmup(self, spec: ArmSpec, controller: Controller | None) -> None:
        """Warmup requests: not logged, not counted; they calibrate the controller."""
        warm_lat: list[int] = []
        for w in range(1, spec.warmup_steps + 1):
            self.before_request()
            reply = self.request(self.prompt(w - 1)[1], spec.warmup_k, spec.p_min)
            self.watch_server(reply)
            if reply.success:
                warm_lat.append(reply.latency_ms)
            self.sink.emit(
                WarmupStep(
                    spec.name, w, spec.warmup_steps, spec.warmup_k, reply.success,
                    reply.latency_ms,
                )
            )  # fmt: skip
            self.control.sleep(self.plan.warmup_sleep_s)
        if controller is not None:
            controller.calibrate(warm_lat)
            thr = controller.thresholds
            self.sink.emit(Calibrated(spec.name, thr.low_ms, thr.high_ms, thr.p50_ms, thr.p95_ms))
            self.log(
                "info",
                f"adaptive calibration: warmup p50={thr.p50_ms} p95={thr.p95_ms} "
                f"=> low={thr.low_ms} ms high={thr.high_ms} ms",
            )

    def finish_arm(self, spec: ArmSpec, skipped: bool = False) -> None:
        samples = [sample_from_record(r) for r in self.records if not r.settle]
        mine = [s for s in samples if s.arm == spec.name]
        self.sink.emit(ArmFinished(summarize_arm(spec.name, mine), skipped=skipped))
        # Say as early as possible whether K takes effect, not only at the end.
        verdict = check_knob(samples)
        if verdict != self.knob:
            self.knob = verdict
            self.sink.emit(verdict)

    # -- the step ---------------------------------------------------------------------
    def measure(self, spec: ArmSpec, controller: Controller | None, at: StepPlace) -> StepRecord:
        """One request at the arm's K (or the controller's): measured, written, announced.

        A step whose K the server did not take (the actuator failed, or the server
        confirms another K) is not sent: it is written as a failed step, `K not set`,
        so no row ever carries a K the server was not running. A settle step is run
        and written (flagged) but is no measurement: it feeds no controller.
        """
        index = at.prompt_index if at.prompt_index is not None else spec.warmup_steps + at.step - 1
        prompt_id, prompt, prompt_class = self.prompt(index)
        k = controller.next_k(prompt_class) if controller is not None else spec.warmup_k
        act, not_set = self.set_k(k, spec.p_min, spec.threads)
        if not_set is not None:
            reply = self.not_sent(not_set, act)
            cpu: tuple[float | None, float | None] = (None, None)
        else:
            counters = self.drafts.before()
            self.telemetry.sample()  # start the CPU window at the request
            reply = self.request(prompt, k, spec.p_min)
            cpu = self.telemetry.sample()
            reply = self.drafts.after(reply, counters, k)
            if self.drafts.last_shared:  # other clients' drafting cannot be told apart
                reply = replace(reply, drafted=None, accepted=None)
            if self.control.stopping and not reply.success:
                raise Stopped()  # an abandoned request is not a measurement
        shared = not_set is None and self.drafts.last_shared
        return self.keep(spec, controller, at, k, reply, (prompt_id, prompt_class), act, cpu, shared)

    def set_k(self, k: int, p_min: float, threads: int | None = None) -> tuple[Actuation, str | None]:
        """Set K for a step (the block's opening reload counted on it); the second item
        says why K is not set, None when it is."""
        act = self.actuate(k, p_min, threads)
        if self.pending.reload_ms is not None:  # the reload that started this arm/block
            act = replace(act, reload_ms=(act.reload_ms or 0) + self.pending.reload_ms)
        self.pending = Actuation()
        return act, act.not_set(k)

    @staticmethod
    def not_sent(why: str, act: Actuation) -> Reply:
        """The failed reply of a step whose K the server did not take."""
        return Reply(
            False, 0, 0, error=f"{K_NOT_SET}: {why}", attempts=0, connection_error=act.unreachable
        )

    def keep(
        self,
        spec: ArmSpec,
        controller: Controller | None,
        at: StepPlace,
        k: int,
        reply: Reply,
        prompt: tuple[int, str],  # (id, class)
        act: Actuation,
        cpu: tuple[float | None, float | None],
        shared: bool,
    ) -> StepRecord:
        """A request's outcome: told to the controller, written, announced, watched."""
        if controller is not None and at.settle and act.reload_ms:
            self.untold_reload_ms = act.reload_ms
        if controller is not None and not at.settle and not reply.error.startswith(K_NOT_SET):
            told = act  # the row keeps its own reload; the controller learns the cost
            if not act.reload_ms and self.untold_reload_ms:
                told = replace(act, reload_ms=self.untold_reload_ms)
            self.untold_reload_ms = None
            self._tell(spec, controller, k, reply, told, prompt[1], at)
        phase = self._phase_of(at.timeline)
        if not at.settle:
            self.set_phase(spec.name, at.step, phase)
        self.global_step += 1
        record = self._record(spec, at, phase, k, reply, prompt, act, controller, cpu, shared)
        self.writer.write(record)
        self.records.append(record)
        if at.settle:
            self.sink.emit(
                WarmupStep(spec.name, at.step, at.planned or 0, k, reply.success, reply.latency_ms)
            )
        else:
            self.sink.emit(StepDone(record, at.planned or spec.measured_steps))
        self._log_step(record, reply)
        self.watch_server(reply)
        return record

    def _tell(
        self,
        spec: ArmSpec,
        controller: Controller,
        k: int,
        reply: Reply,
        act: Actuation,
        prompt_class: str,
        at: StepPlace,
    ) -> None:
        """The controller learns the step's outcome; its notes and view are passed on."""
        controller.observe(
            k,
            reply.success,
            reply.latency_ms,
            Observation(
                k, reply.success, reply.latency_ms, reply.tokens if reply.success else 0,
                reply.drafted, reply.accepted, reply.predicted_ms, act.reload_ms, prompt_class,
                reply.tokens_reported, at.left,
            ),  # fmt: skip
        )
        for note in controller.notes:
            self.log("warning", f"{spec.name}: {note}")
        controller.notes.clear()
        view = controller.view()
        if view is not None:
            self.sink.emit(ControllerState(spec.name, view))

    def _phase_of(self, timeline: Phase | None) -> Phase:
        """The step's phase: the schedule's timeline (load where the burners run in a
        steady round), or, sequentially, what the burners do (recovery after load)."""
        if timeline is not None:
            return "load" if self.load.active and timeline == "steady" else timeline
        if self.load.active:
            return "load"
        self.announce_load(False, "burners finished")
        return "recovery" if self.load_seen else "steady"

    def _record(
        self,
        spec: ArmSpec,
        at: StepPlace,
        phase: Phase,
        k: int,
        reply: Reply,
        prompt: tuple[int, str],  # (id, class)
        act: Actuation,
        controller: Controller | None,
        cpu: tuple[float | None, float | None],
        shared: bool,
    ) -> StepRecord:
        thr = controller.thresholds if controller is not None else None
        bw = self.telemetry.take_bandwidth()  # over the request, as cpu; none when not sent
        return StepRecord(
            global_step=self.global_step,
            step=at.step,
            arm=spec.name,
            phase=phase,
            draft_length=k,
            success=reply.success,
            latency_ms=reply.latency_ms if reply.success else 0,
            tokens=reply.tokens if reply.success else 0,
            timestamp=_dt.datetime.now(_dt.timezone.utc).isoformat(timespec="milliseconds"),
            run_id=self.run_id,
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
            round=at.round,
            block_pos=at.block_pos,
            settle=at.settle,
            tokens_reported=reply.tokens_reported if reply.success else None,
            drafting_shared=shared,
            server_kind=self.server_kind,
            load_gbps=bw.load_gbps, machine_gbps=bw.machine_gbps,
            **_condition_cells(at, reply),
        )

    def _log_step(self, r: StepRecord, reply: Reply) -> None:
        if r.success:
            self.log("debug", f"{r.arm} step {r.step}: reply {preview(reply.text)!r}")
        else:
            self.log(
                "error", f"{r.arm} step {r.step}: failed after {r.attempts} attempts: {r.error}"
            )


def _condition_cells(at: StepPlace, reply: Reply) -> dict[str, Any]:
    """A step's condition columns: none without conditions; else its load, its
    concurrency, which request it is, and the step's wall time (one request: its own)."""
    c = at.condition
    if c is None:
        return {}
    own = reply.latency_ms if reply.success else None
    return {
        "condition": c.load, "concurrency": c.concurrency, "client": at.client or 1,
        "step_ms": at.step_ms if at.step_ms is not None else own,
    }  # fmt: skip
