"""Interleaved rounds: in each round every remaining arm runs one block, in an order
shuffled afresh (schedule.py), with the same prompts; load is laid on rounds.

With `until_decisive`, arms clearly slower than the best are dropped after each round
and the run stops once the verdict is decisive; `--max-time` is checked before every
request (settle ones too), so it is a cap, not a hint.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from halospec_tui.controllers import Controller
from halospec_tui.events import ArmStarted, Phase, RoundFinished, RoundStarted, RoundStop
from halospec_tui.plan import ArmSpec
from halospec_tui.results.reader import sample_from_record
from halospec_tui.schedule import (
    Block,
    grown_block,
    prompt_index,
    round_blocks,
    round_phase,
    settle_prompt_index,
)
from halospec_tui.steps import Skipped, StepPlace, Steps, Stopped
from halospec_tui.verdict import Verdict, decide, newly_worse, stop_reason


class OutOfTime(Exception):
    """--max-time has passed: the round in progress is the last."""


@dataclass
class _Race:
    """What the rounds keep between rounds."""

    remaining: list[str]
    controllers: dict[str, Controller]
    dropped: list[tuple[str, int]] = field(default_factory=list)
    warmed: set[str] = field(default_factory=set)
    steps_done: dict[str, int] = field(default_factory=dict)
    first_prompt: int = 0  # the run's prompt index of this round's first measured step


def run_rounds(steps: Steps, load_enabled: bool) -> None:
    plan, control = steps.plan, steps.control
    controllers = {a.name: c for a in plan.arms if (c := steps.controller_for(a)) is not None}
    race = _Race([a.name for a in plan.arms], controllers)
    started = control.clock()
    deadline = started + plan.max_time_s if plan.max_time_s is not None else None
    load_round = plan.load_round if load_enabled else None
    # A decisive verdict may stop the run from min_rounds, and not before every arm
    # has seen the whole load timeline (steady, load and recovery).
    first_stop = max(plan.min_rounds, load_round + plan.load_rounds if load_round else 0)
    for rnd in range(1, plan.rounds + 1):
        timeline = round_phase(rnd, load_round, plan.load_rounds)
        _round_load(steps, timeline, rnd)
        size = grown_block(plan.block, len(plan.arms), len(race.remaining))
        blocks = round_blocks(race.remaining, plan.seed, rnd, size)
        steps.sink.emit(RoundStarted(rnd, plan.rounds, tuple(b.arm for b in blocks), timeline))
        out_of_time = False
        try:
            for blk in blocks:
                _run_block(steps, race, blk, rnd, timeline, deadline)
        except OutOfTime:
            out_of_time = True
        race.first_prompt += size
        verdict = decide(
            [sample_from_record(r) for r in steps.records if not r.settle],
            tolerance=plan.tolerance,
            eliminated=race.dropped,
            with_phases=False,
        )
        if plan.until_decisive and rnd >= plan.drop_from_round and not out_of_time:
            _drop_worse(steps, race, verdict, rnd)
        elapsed = control.clock() - started
        reason: RoundStop | None = "time" if out_of_time else None
        if plan.until_decisive and reason is None:
            reason = stop_reason(
                verdict, rnd, min_rounds=first_stop,
                max_rounds=plan.rounds, elapsed_s=elapsed, max_time_s=plan.max_time_s,
            )  # fmt: skip
        _announce_round(steps, race, verdict, rnd, reason, elapsed)
        if reason is not None:
            steps.log("info", f"round {rnd}: stopping ({reason})")
            break
        if control.stopping:
            raise Stopped()
    if steps.load.active:
        steps.stop_load("load timeline over")


def _run_block(
    steps: Steps, race: _Race, blk: Block, rnd: int, timeline: Phase, deadline: float | None
) -> None:
    """One arm's block in a round: its K set, its warmup (first time), settle steps,
    then its measured steps. Skip ends the block; time running out ends the round."""
    plan = steps.plan
    spec = next(a for a in plan.arms if a.name == blk.arm)
    index = plan.arms.index(spec)
    steps.sink.emit(ArmStarted(spec.name, index, len(plan.arms), 0, blk.steps))
    controller = race.controllers.get(spec.name)

    def before() -> None:
        steps.before_request()
        if deadline is not None and steps.control.clock() >= deadline:
            raise OutOfTime()

    try:
        before()
        steps.pending = steps.actuate(_first_k(steps, race, spec, controller, rnd), spec.p_min)
        if spec.name not in race.warmed:
            race.warmed.add(spec.name)
            steps.warmup(spec, controller)
        for i in range(1, plan.settle + 1):
            before()
            steps.measure(spec, controller, StepPlace(
                i, settle_prompt_index(rnd, plan.settle, i), timeline, rnd, blk.position,
                settle=True, planned=plan.settle,
            ))  # fmt: skip
        for i in range(1, blk.steps + 1):
            before()
            done = race.steps_done[spec.name] = race.steps_done.get(spec.name, 0) + 1
            steps.measure(spec, controller, StepPlace(
                done, prompt_index(race.first_prompt, i), timeline, rnd, blk.position,
                planned=blk.steps,
            ))  # fmt: skip
            steps.control.sleep(plan.cooldown_s)
    except Skipped:
        steps.log("info", f"skipped the rest of {spec.name}'s block in round {rnd}")
        steps.finish_arm(spec, skipped=True)
        steps.control.skip_event.clear()
        return
    except OutOfTime:
        steps.log("info", f"--max-time reached in round {rnd}, during {spec.name}'s block")
        steps.finish_arm(spec)
        raise
    steps.finish_arm(spec)


def _first_k(
    steps: Steps, race: _Race, spec: ArmSpec, controller: Controller | None, rnd: int
) -> int:
    """The K the block's first request will ask for (set before the block starts)."""
    if controller is None or spec.name not in race.warmed:
        return spec.warmup_k
    plan = steps.plan
    first = (
        settle_prompt_index(rnd, plan.settle, 1)
        if plan.settle
        else prompt_index(race.first_prompt, 1)
    )
    return controller.next_k(steps.prompt(first)[2])


def _drop_worse(steps: Steps, race: _Race, verdict: Verdict, rnd: int) -> None:
    for arm in newly_worse(verdict):
        if arm in race.remaining and len(race.remaining) > 1:
            race.remaining.remove(arm)
            race.dropped.append((arm, rnd))
            steps.log("info", f"round {rnd}: {arm} is clearly slower than {verdict.best}: dropped")


def _announce_round(
    steps: Steps, race: _Race, verdict: Verdict, rnd: int, reason: RoundStop | None, elapsed: float
) -> None:
    plan = steps.plan
    steps.sink.emit(
        RoundFinished(
            round=rnd,
            rounds=plan.rounds,
            best=verdict.best,
            decisive=verdict.decisive,
            remaining=tuple(race.remaining),
            dropped=tuple(race.dropped),
            recommended_k=verdict.recommended_k,
            stop=reason,
            elapsed_s=elapsed,
            left_s=None if reason else elapsed / rnd * (plan.rounds - rnd),
            status=tuple((a.arm, verdict.status(a.arm)) for a in verdict.arms),
            half_width=tuple(
                (a.arm, a.tps.value, a.tps.half_width) for a in verdict.arms if a.tps
            ),
        )
    )


def _round_load(steps: Steps, timeline: Phase, rnd: int) -> None:
    """Burners on for the load rounds of the timeline, off after them."""
    if timeline == "load" and not steps.load.active:
        steps.load.start(steps.plan.max_time_s or steps.plan.load_duration_s)
        steps.announce_load(True, f"round {rnd} (load timeline)")
        steps.log("info", f"load: {steps.load.workers} worker(s) from round {rnd}")
    elif timeline == "recovery" and steps.load.active:
        steps.stop_load(f"round {rnd}: load timeline over")
