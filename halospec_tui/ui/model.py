"""What the monitor shows, folded from engine events. Plain Python: no Textual here.

The app feeds every event to `RunModel.apply` on the UI thread and redraws from the
model on a clock, so the drawing rate is bounded however fast events come.
"""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field

from halospec_tui.controllers.base import ControllerView
from halospec_tui.events import (
    ArmFinished,
    ArmStarted,
    Calibrated,
    ConditionStarted,
    ControllerState,
    Event,
    KnobVerdict,
    LoadChanged,
    LogLine,
    Paused,
    PhaseChanged,
    PolicyChanged,
    RoundFinished,
    RoundStarted,
    RunFinished,
    RunStarted,
    StepDone,
    StepRecord,
    WarmupStep,
)
from halospec_tui.policy import Policy
from halospec_tui.stats import ArmSummary, winner

SPARK_POINTS = 60


@dataclass
class RunModel:
    clock: Callable[[], float] = field(default=time.monotonic, repr=False, compare=False)
    started: RunStarted | None = None
    run_started_at: float | None = None  # on `clock`; None: at construction
    arm: str = ""
    arm_index: int = 0
    total_arms: int = 0
    step: int = 0
    measured_steps: int = 0
    warmup: tuple[int, int] | None = None  # (i, n) while warming up
    phase: str = "steady"
    k: int | None = None
    last: StepRecord | None = None
    low_ms: int | None = None
    high_ms: int | None = None
    # Whole-run series, indexed by global step.
    steps: list[int] = field(default_factory=list)
    latency: list[float] = field(default_factory=list)  # nan for a failed step
    ema: list[float] = field(default_factory=list)
    low: list[float] = field(default_factory=list)  # threshold band per step (nan: none)
    high: list[float] = field(default_factory=list)
    ks: list[int] = field(default_factory=list)
    arm_latency: deque[float] = field(default_factory=lambda: deque(maxlen=SPARK_POINTS))
    phase_marks: list[tuple[int, str]] = field(default_factory=list)  # (global step, phase)
    arm_marks: list[tuple[int, str]] = field(default_factory=list)  # (first global step, mode; in rounds "rN")
    summaries: dict[str, ArmSummary] = field(default_factory=dict)
    load_reason: str = ""
    paused: bool = False
    finished: RunFinished | None = None
    knob: KnobVerdict | None = None
    requests_done: int = 0
    request_time_s: float = 0.0
    logs: list[tuple[str, str]] = field(default_factory=list)  # pending for the log pane
    # Interleaved schedule: the round running and the verdict after the last round.
    round: RoundStarted | None = None
    verdict: RoundFinished | None = None
    # A run with conditions: the one running, each condition's last verdict (`verdict`
    # is the running condition's), and the policy table after the last round.
    condition: ConditionStarted | None = None
    verdicts: dict[str, RoundFinished] = field(default_factory=dict)
    policy: Policy | None = None
    block_step: int = 0  # measured steps of the running block (a StepDone's step counts the arm's)
    settling: bool = False  # a WarmupStep in rounds after the arm's warmup: a settle request
    warmups_seen: dict[str, int] = field(default_factory=dict)
    # Adaptive arms: each one's last view, and the arm the controller pane shows.
    views: dict[str, ControllerView] = field(default_factory=dict)
    view_arm: str | None = None
    version: int = 0  # bumped on every change, so the redraw can skip when nothing changed
    table_version: int = 0  # bumped when the results table has something new

    def __post_init__(self) -> None:
        if self.run_started_at is None:
            self.run_started_at = self.clock()

    # -- derived ------------------------------------------------------------
    @property
    def elapsed_s(self) -> float:
        assert self.run_started_at is not None
        return self.clock() - self.run_started_at

    @property
    def interleaved(self) -> bool:
        """The plan runs in rounds (a block of every arm per round)."""
        return self.round is not None

    @property
    def view(self) -> ControllerView | None:
        """The controller pane's arm: the adaptive arm running, or the last one seen."""
        return self.views.get(self.view_arm) if self.view_arm is not None else None

    @property
    def next_step(self) -> int:
        """The global step the next measured step will have."""
        return self.steps[-1] + 1 if self.steps else 1

    def remaining_s(self) -> float | None:
        """Requests left times the mean time a request has taken, plus planned sleeps."""
        if self.interleaved:  # the engine's bound, from the rounds so far
            return self.verdict.left_s if self.verdict is not None else None
        if self.started is None or self.requests_done == 0:
            return None
        current, *later = self.started.arms[self.arm_index :]
        if self.warmup is not None:  # warming up: all measured steps still to come
            left_requests = current.warmup_steps - self.warmup[0] + current.measured_steps
            left_cool = current.measured_steps
        else:
            left_requests = left_cool = current.measured_steps - self.step
        for m in later:
            left_requests += m.warmup_steps + m.measured_steps
            left_cool += m.measured_steps
        per = self.request_time_s / self.requests_done
        return left_requests * per + left_cool * self.started.cooldown_s

    @property
    def best_mode(self) -> str | None:
        if self.verdict is not None:
            return self.verdict.best
        best = winner(list(self.summaries.values()))
        return best.arm if best else None

    # -- folding events -----------------------------------------------------
    def apply(self, e: Event) -> None:
        self.version += 1
        if isinstance(e, RunStarted):
            self.started = e
            self.total_arms = len(e.arms)
            self.run_started_at = self.clock()
        elif isinstance(e, ArmStarted):
            self._arm_started(e)
        elif isinstance(e, WarmupStep):
            self._warmup_step(e)
        elif isinstance(e, Calibrated):
            self.low_ms, self.high_ms = e.low_ms, e.high_ms
        elif isinstance(e, StepDone):
            self._step_done(e.record)
        elif isinstance(e, PhaseChanged):
            self.phase = e.phase
            self.phase_marks.append((len(self.steps) + 1, e.phase))
        elif isinstance(e, ArmFinished):
            self.summaries[e.summary.arm] = e.summary
            self.table_version += 1
        elif isinstance(e, ControllerState):
            self.views[e.arm] = e.view
            self.view_arm = e.arm
        elif isinstance(e, RoundStarted):
            self.round = e
            self.arm_marks.append((self.next_step, f"r{e.round}"))
            self.table_version += 1
        elif isinstance(e, RoundFinished):
            self.verdicts[e.condition] = e
            running = self.condition.condition if self.condition is not None else ""
            if not e.condition or e.condition == running or e.stop is not None:
                self.verdict = e
            self.table_version += 1
        elif isinstance(e, ConditionStarted):
            self.condition = e
            self.verdict = self.verdicts.get(e.condition)
            self.table_version += 1
        elif isinstance(e, PolicyChanged):
            self.policy = e.policy
            self.table_version += 1
        elif isinstance(e, LoadChanged):
            self.load_reason = e.reason
        elif isinstance(e, Paused):
            self.paused = e.paused
        elif isinstance(e, LogLine):
            self.logs.append((e.level, e.text))
        elif isinstance(e, KnobVerdict):
            self.knob = e
        elif isinstance(e, RunFinished):
            self.finished = e
            self.knob = e.knob
            self.table_version += 1

    def _arm_started(self, e: ArmStarted) -> None:
        self.arm, self.arm_index, self.total_arms = e.arm, e.index, e.total_arms
        self.step, self.measured_steps = 0, e.measured_steps
        self.block_step, self.settling = 0, False
        self.warmup = (0, e.warmup_steps) if e.warmup_steps else None
        self.low_ms = self.high_ms = None
        self.arm_latency.clear()
        if not self.interleaved:  # in rounds the plot marks rounds, not blocks
            self.arm_marks.append((self.next_step, e.arm))
        if e.arm in self.views:
            self.view_arm = e.arm

    def _warmup_step(self, e: WarmupStep) -> None:
        self.warmup = (e.index, e.total)
        seen = self.warmups_seen[e.arm] = self.warmups_seen.get(e.arm, 0) + 1
        self.settling = self.interleaved and seen > self._warmup_steps(e.arm)
        self.k = e.k
        self.requests_done += 1
        self.request_time_s += e.latency_ms / 1000.0 + (
            self.started.warmup_sleep_s if self.started else 0
        )

    def _step_done(self, r: StepRecord) -> None:
        self.warmup = None
        self.settling = False
        self.last = r
        self.step = r.step
        if (r.client or 1) == 1:  # a step of c requests at once counts once
            self.block_step += 1
        self.k = r.draft_length
        lat = float(r.latency_ms) if r.success else float("nan")
        self.steps.append(r.global_step)
        self.latency.append(lat)
        nan = float("nan")
        # An arm that explains itself (ControllerState comes before its StepDone) is
        # not the original threshold rule: its uncalibrated band would only squash
        # the latency plot, so the EMA and band are the original rule's alone.
        rule = r.arm not in self.views
        self.ema.append(r.ema_ms if r.ema_ms is not None and rule else nan)
        self.low.append(float(r.low_ms) if r.low_ms is not None and rule else nan)
        self.high.append(float(r.high_ms) if r.high_ms is not None and rule else nan)
        self.ks.append(r.draft_length)
        if r.success:
            self.arm_latency.append(lat)
        self.requests_done += 1
        self.request_time_s += r.latency_ms / 1000.0

    def _warmup_steps(self, arm: str) -> int:
        if self.started is not None:
            for m in self.started.arms:
                if m.name == arm:
                    return m.warmup_steps
        return 0

    def take_logs(self) -> list[tuple[str, str]]:
        out, self.logs = self.logs, []
        return out
