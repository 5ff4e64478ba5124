"""`--no-ui`: the engine in a worker thread, events printed as lines. No Textual here."""

from __future__ import annotations

import signal
import sys
import threading
from dataclasses import replace
from typing import TextIO

from halospec_tui.events import (
    ArmFinished,
    ArmStarted,
    Calibrated,
    ConditionStarted,
    Event,
    KnobVerdict,
    LoadChanged,
    LogLine,
    PhaseChanged,
    PolicyChanged,
    RoundFinished,
    RoundStarted,
    RunFinished,
    RunStarted,
    StepDone,
    StopReason,
    WarmupStep,
)
from halospec_tui.formats import step_details
from halospec_tui.policy import Policy, pick_text
from halospec_tui.runner import Runner

LEVELS = {"debug": 10, "info": 20, "warning": 30, "error": 40}


def arms_racing(n: int) -> str:
    return f"{n} arm{'' if n == 1 else 's'} racing"


STOPS = {"decisive": "decided", "rounds": "rounds used up", "time": "--max-time reached"}


def round_line(e: RoundFinished) -> str:
    """One line per finished round: what the race certifies, in its own words."""
    at = f" [{e.condition}]" if e.condition else ""
    head = f"== round {e.round}/{e.rounds}{at}: best {e.best or '-'}"
    if e.screened_out:
        head += f"; screened out: {', '.join(e.screened_out)}"
    if e.dropped:
        head += f"; dropped: {', '.join(a for a, _ in e.dropped)}"
    said = e.statement or ("decisive" if e.decisive else "not decisive")
    if e.stop is not None:
        return f"{head}; stopping ({STOPS[e.stop]}): {said}"
    left = "" if e.left_s is None else f", at most {e.left_s:.0f} s left"
    return f"{head}; {arms_racing(len(e.remaining))}{left}: {said}"


def policy_line(p: Policy) -> str:
    """The policy after a round, on one line: each condition's pick, the static K."""
    picks = ", ".join(f"{r.condition} {pick_text(r)}" for r in p.rows)
    if p.static is None or p.mean_regret is None:
        return f"-- policy: {picks}"
    return (f"-- policy: {picks}; one static {p.static} everywhere: mean regret "
            f"{p.mean_regret * 100:.1f}%")  # fmt: skip


def step_line(e: StepDone, block_step: int | None = None) -> str:
    """One measured step. In rounds, `block_step` is the step's place in the arm's block
    (the record's step counts the arm's steps over every round so far)."""
    r = e.record
    where = f"{r.step}" if r.round is None or block_step is None else f"r{r.round} {block_step}"
    who = f" client {r.client}/{r.concurrency}" if r.concurrency and r.concurrency > 1 else ""
    head = f"[{r.arm} {where}/{e.measured_steps}{who}] {r.phase:<8} K={r.draft_length}"
    if not r.success:
        return f"{head} FAILED after {r.attempts} attempts: {r.error}"
    d = step_details(r)
    line = f"{head} {r.latency_ms} ms {r.tokens} tok"
    if d.drafted is not None:
        line += f" drafted={d.drafted} accepted={d.accepted}"
        if d.acceptance is not None:
            line += f" ({d.acceptance})"
    if d.server_tps is not None:
        line += f" srv={d.server_tps} tok/s"
    if d.ema is not None:
        line += f" ema={d.ema} band=[{d.low},{d.high}]"
    if d.reload_ms is not None:
        line += f" reload={d.reload_ms} ms"
    return line


class HeadlessPrinter:
    """Prints steps and phases to `out`, log lines at or above `level` to `err`."""

    def __init__(
        self, out: TextIO = sys.stdout, err: TextIO = sys.stderr, level: str = "info"
    ) -> None:
        self.out = out
        self.err = err
        self.level = LEVELS[level]
        self._lock = threading.Lock()
        self._block_step = 0  # measured steps since the mode (in rounds: the block) began

    def _print(self, text: str, stream: TextIO | None = None) -> None:
        with self._lock:
            print(text, file=stream or self.out, flush=True)

    def emit(self, event: Event) -> None:
        if isinstance(event, RunStarted):
            self._print(
                f"halospec-tui run {event.run_id}: plan {event.plan}, model {event.model}, "
                f"actuator {event.actuator}\n  backend: {event.backend}\n  csv: {event.csv_path}"
            )
        elif isinstance(event, ArmStarted):
            self._block_step = 0
            self._print(
                f"\n== MODE {event.arm} ({event.index + 1}/{event.total_arms}): "
                f"{event.warmup_steps} warmup, {event.measured_steps} measured"
            )
        elif isinstance(event, WarmupStep):
            status = f"{event.latency_ms} ms" if event.success else "failed"
            self._print(f"[{event.arm} warmup {event.index}/{event.total}] K={event.k} {status}")
        elif isinstance(event, Calibrated):
            self._print(
                f"[{event.arm}] thresholds: low={event.low_ms} ms high={event.high_ms} ms "
                f"(warmup p50={event.p50_ms} p95={event.p95_ms})"
            )
        elif isinstance(event, StepDone):
            if (event.record.client or 1) == 1:  # a step of c requests counts once
                self._block_step += 1
            self._print(step_line(event, self._block_step))
        elif isinstance(event, PhaseChanged):
            self._print(f"-- phase: {event.phase} ({event.arm} step {event.step})")
        elif isinstance(event, RoundStarted):
            order = event.conditions or event.order  # with conditions: theirs
            self._print(
                f"\n=== ROUND {event.round}/{event.rounds} ({event.phase}): " + " ".join(order)
            )
        elif isinstance(event, ConditionStarted):
            self._print(
                f"--- condition {event.condition} ({event.index}/{event.total}): "
                f"{event.description}: " + " ".join(event.order)
            )
        elif isinstance(event, RoundFinished):
            self._print(round_line(event))
        elif isinstance(event, PolicyChanged):
            self._print(policy_line(event.policy))
        elif isinstance(event, LoadChanged):
            self._print(f"-- load {'ON' if event.active else 'off'}: {event.reason}")
        elif isinstance(event, ArmFinished):
            s = event.summary
            score = "-" if s.score is None else f"{s.score:.1f}"
            self._print(f"== {s.arm} done{' (skipped)' if event.skipped else ''}: score {score}")
        elif isinstance(event, LogLine):
            if LEVELS.get(event.level, 20) >= self.level:
                self._print(f"{event.level}: {event.text}", self.err)
        elif isinstance(event, KnobVerdict):
            if event.status != "unverified":
                self._print(f"-- knob check: {event.message}")
        elif isinstance(event, RunFinished):
            self._print(event.summary_text)
            self._print(f"Run {event.reason}. Files:\n  " + "\n  ".join(event.files))
            if event.server:
                self._print(f"Server: {event.server}")


def run_in_thread(runner: Runner) -> RunFinished | None:
    """Run the engine in a worker thread; Ctrl-C / SIGTERM stop it gracefully.

    The first signal stops after the request in flight (bounded by --timeout); a
    second one abandons it: the request fails at once, is not retried, and the run
    ends with the finished steps in the CSV and the summaries.
    """
    result: list[RunFinished] = []
    errors: list[BaseException] = []

    def target() -> None:
        try:
            result.append(runner.run())
        except BaseException as e:  # reported by the caller, never swallowed
            errors.append(e)

    t = threading.Thread(target=target, name="halospec-runner", daemon=True)
    hits = {"n": 0}
    last_signal: dict[str, StopReason | None] = {"reason": None}

    def handler(signum: int, _frame: object) -> None:
        hits["n"] += 1
        name: StopReason = "interrupted" if signum == signal.SIGINT else "terminated"
        last_signal["reason"] = name
        if hits["n"] == 1:
            print(
                f"\n{name}: stopping after the request in flight (again to abandon it)",
                file=sys.stderr,
            )
            runner.stop(name)
        else:
            print(f"\n{name}: abandoning the request in flight", file=sys.stderr)
            runner.abandon()

    old = {s: signal.signal(s, handler) for s in (signal.SIGINT, signal.SIGTERM)}
    try:
        t.start()
        while t.is_alive():
            t.join(0.2)
    finally:
        for s, h in old.items():
            signal.signal(s, h)
    if errors:
        raise errors[0]
    signalled = last_signal["reason"]
    if result and signalled is not None and result[0].reason == "completed":
        # The signal came after the last step was written: the exit code still says so.
        return replace(result[0], reason=signalled)
    return result[0] if result else None
