"""Typed events the engine emits, and the sink protocol that receives them.

Events are frozen dataclasses holding immutable values, so they can cross from the
runner thread to a UI thread without copying. The engine never imports Textual.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal, Protocol

from halospec_tui.controllers.base import ControllerView
from halospec_tui.stats import ArmSummary

if TYPE_CHECKING:
    from halospec_tui.policy import Policy

Phase = Literal["steady", "load", "recovery"]  # the load timeline's phases
# Why a run ended: done; quit from the UI; Ctrl-C; SIGTERM; an exception; the server
# stayed unreachable; the server kept refusing the API key.
StopReason = Literal[
    "completed", "stopped", "interrupted", "terminated", "failed", "server-down",
    "auth-refused",
]  # fmt: skip
RoundStop = Literal["decisive", "rounds", "time"]  # why the rounds stop


@dataclass(frozen=True)
class StepRecord:
    """One measured step: the original 8 CSV columns first, then extras."""

    global_step: int
    step: int
    arm: str
    phase: str
    draft_length: int
    success: bool
    latency_ms: int
    tokens: int
    timestamp: str = ""
    run_id: str = ""
    ema_ms: float | None = None
    low_ms: int | None = None
    high_ms: int | None = None
    actuator: str = ""
    confirmed_k: int | None = None
    reload_ms: int | None = None
    drafted: int | None = None
    accepted: int | None = None
    acceptance: float | None = None
    ttft_ms: float | None = None
    prompt_ms: float | None = None
    predicted_ms: float | None = None
    predicted_n: int | None = None
    cpu_percent: float | None = None
    server_cpu_percent: float | None = None
    prompt_id: int | None = None
    attempts: int = 1
    error: str = ""
    round: int | None = None  # interleaved schedule: the round of this step
    block_pos: int | None = None  # interleaved: the arm's place in the round's order
    settle: bool = False  # run after a change of K but not measured
    prompt_class: str = ""  # structured | open | neutral (pool prompts; see prompts.py)
    # The server gave no token count (no `usage`): `tokens` is max_tokens, as the
    # original counts it. None on a failed step.
    tokens_reported: bool | None = None
    drafting_shared: bool = False  # /metrics counts shared with other clients: not the step's
    server_kind: str = ""  # lemonade | llama-server | vllm | sglang | sim | openai | unknown
    load_gbps: float | None = None  # the memory burners' GB/s over the step (None: none ran)
    machine_gbps: float | None = None  # the memory controllers' GB/s (None: no counters)
    # A run with conditions (conditions.py): the step's load (idle, cpu, memory,
    # requests; "" without conditions), the requests its step sent at once, which of
    # them this row is (1-based), and the step's wall time, first send to last answer.
    condition: str = ""
    concurrency: int | None = None
    client: int | None = None
    step_ms: int | None = None


@dataclass(frozen=True)
class ArmInfo:
    name: str
    warmup_steps: int
    measured_steps: int


@dataclass(frozen=True)
class RunStarted:
    run_id: str
    plan: str
    arms: tuple[ArmInfo, ...]
    base_url: str
    model: str
    actuator: str
    backend: str
    csv_path: str
    load_arms: str
    load_enabled: bool
    cooldown_s: float
    warmup_sleep_s: float


@dataclass(frozen=True)
class ArmStarted:
    arm: str
    index: int  # 0-based position in the plan
    total_arms: int
    warmup_steps: int
    measured_steps: int


@dataclass(frozen=True)
class WarmupStep:
    arm: str
    index: int  # 1-based
    total: int
    k: int
    success: bool
    latency_ms: int


@dataclass(frozen=True)
class Calibrated:
    arm: str
    low_ms: int
    high_ms: int
    p50_ms: int | None
    p95_ms: int | None


@dataclass(frozen=True)
class PhaseChanged:
    arm: str
    step: int
    phase: str  # steady | load | recovery


@dataclass(frozen=True)
class StepDone:
    record: StepRecord
    measured_steps: int  # steps planned for this mode


@dataclass(frozen=True)
class ArmFinished:
    summary: ArmSummary
    skipped: bool = False


@dataclass(frozen=True)
class ControllerState:
    """Why an adaptive arm chose its K: the controller's estimates after a step."""

    arm: str
    view: ControllerView


@dataclass(frozen=True)
class RoundStarted:
    """Interleaved schedule: a round begins; `order` is this round's shuffled arm order."""

    round: int
    rounds: int  # the most rounds the plan runs
    order: tuple[str, ...]
    phase: Phase  # the load timeline's phase for this round
    conditions: tuple[str, ...] = ()  # a run with conditions: their order in this round


@dataclass(frozen=True)
class ConditionStarted:
    """A run with conditions: one condition's blocks begin (its load held on)."""

    round: int
    condition: str  # LOAD@C
    description: str  # in words: "memory load, 3 requests at a time"
    index: int  # 1-based place in this round's order
    total: int
    order: tuple[str, ...]  # its arms, in this round's order


@dataclass(frozen=True)
class RoundFinished:
    """The verdict after a round: best arm, ties, who was dropped, whether to stop."""

    round: int
    rounds: int
    best: str | None
    decisive: bool
    remaining: tuple[str, ...]
    dropped: tuple[tuple[str, int], ...]  # (arm, round it was dropped after)
    recommended_k: int | None
    stop: RoundStop | None  # None: go on
    elapsed_s: float
    left_s: float | None  # at most this long to the last round
    # (arm, best | within | racing | dropped | screened out): "within" is certified
    # within the tolerance of the fastest
    status: tuple[tuple[str, str], ...]
    half_width: tuple[tuple[str, float, float], ...]  # (arm, tokens/s, CI half-width)
    statement: str = ""  # what the race certifies, decisive or not (race.statement)
    screened_out: tuple[str, ...] = ()  # arms the screen left out of the race
    epsilon: tuple[tuple[str, float], ...] = ()  # (arm, certified within this share)
    condition: str = ""  # a run with conditions: the condition this race is (LOAD@C)


@dataclass(frozen=True)
class PolicyChanged:
    """A run with conditions: the policy table after a round (policy.py)."""

    policy: Policy


@dataclass(frozen=True)
class LoadChanged:
    active: bool
    workers: int
    reason: str


@dataclass(frozen=True)
class Paused:
    paused: bool


@dataclass(frozen=True)
class LogLine:
    level: str  # debug | info | warning | error
    text: str


@dataclass(frozen=True)
class KnobVerdict:
    """Whether K took effect, judged from the server's drafting; emitted as it changes."""

    status: str  # effective | no-effect | unverified
    message: str


@dataclass(frozen=True)
class RunFinished:
    reason: StopReason
    summaries: tuple[ArmSummary, ...]
    winner: str | None
    knob: KnobVerdict
    files: tuple[str, ...]
    summary_text: str
    unwritten: tuple[str, ...] = ()  # "path: reason" for each summary file that failed
    server: str = ""  # what was done to put the server back at the end ("": nothing)


Event = (
    RunStarted
    | ArmStarted
    | WarmupStep
    | Calibrated
    | PhaseChanged
    | StepDone
    | ArmFinished
    | ControllerState
    | RoundStarted
    | ConditionStarted
    | RoundFinished
    | PolicyChanged
    | LoadChanged
    | Paused
    | LogLine
    | KnobVerdict
    | RunFinished
)


class Sink(Protocol):
    """Receives engine events. Called from the runner thread."""

    def emit(self, event: Event) -> None: ...


class ListSink:
    """Keeps every event; for tests and for replay."""

    def __init__(self) -> None:
        self.events: list[Event] = []

    def emit(self, event: Event) -> None:
        self.events.append(event)

    def of(self, kind: type) -> list[Any]:
        return [e for e in self.events if isinstance(e, kind)]


class FanOut:
    def __init__(self, *sinks: Sink) -> None:
        self.sinks = sinks

    def emit(self, event: Event) -> None:
        for s in self.sinks:
            s.emit(event)


class LogRouter:
    """A log function (level, text) for the client and session that buffers until a
    sink is attached, then emits `LogLine`s to it."""

    def __init__(self) -> None:
        self._buffer: list[tuple[str, str]] = []
        self._sink: Sink | None = None

    def __call__(self, level: str, text: str) -> None:
        if self._sink is None:
            self._buffer.append((level, text))
        else:
            self._sink.emit(LogLine(level, text))

    def attach(self, sink: Sink) -> None:
        self._sink = sink
        for level, text in self._buffer:
            sink.emit(LogLine(level, text))
        self._buffer.clear()


class LogFile:
    """A sink that appends every log line, with a timestamp, to a file (--log-file)."""

    def __init__(self, path: str) -> None:
        self._fh = open(path, "a", encoding="utf-8")  # noqa: SIM115 - closed by close()

    def emit(self, event: Event) -> None:
        if isinstance(event, LogLine):
            stamp = time.strftime("%Y-%m-%dT%H:%M:%S")
            self._fh.write(f"{stamp} {event.level:<7} {event.text}\n")
            self._fh.flush()

    def close(self) -> None:
        self._fh.close()
