"""Interleaved rounds: in each round every remaining arm runs one block, in an order
shuffled afresh (schedule.py), with the same prompts; load is laid on rounds.

After each round the race (race.py, replayed from the rows by race_rows.py, as
`report` replays it) says which arms are clearly slower; with `until_decisive` they are
dropped, and the run stops once an arm is certified within the tolerance of the
fastest (not before the plan's first stop). With `screen`, the first rounds run only
nospec, a middle K and the largest K, and the model fitted on them picks the arms to
race. `--max-time` is checked before every request (settle ones too): a cap, not a
hint.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from halospec_tui.controllers import Controller
from halospec_tui.events import ArmStarted, Phase, RoundFinished, RoundStarted, RoundStop
from halospec_tui.plan import ArmSpec
from halospec_tui.race import statement
from halospec_tui.race_rows import SCREEN_ROUNDS, Replay, replay, screen_arms
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
from halospec_tui.verdict import race_config, race_words


class OutOfTime(Exception):
    """--max-time has passed: the round in progress is the last."""


@dataclass
class _Race:
    """What the rounds keep between rounds."""

    remaining: list[str]
    controllers: dict[str, Controller]
    screened: bool = False  # the first SCREEN_ROUNDS rounds screen the arms
    dropped: list[tuple[str, int]] = field(default_factory=list)
    warmed: set[str] = field(default_factory=set)
    steps_done: dict[str, int] = field(default_factory=dict)
    first_prompt: int = 0  # the run's prompt index of this round's first measured step


def run_rounds(steps: Steps, load_enabled: bool) -> None:
    plan, control = steps.plan, steps.control
    controllers = {a.name: c for a in plan.arms if (c := steps.controller_for(a)) is not None}
    names = [a.name for a in plan.arms]
    trio = screen_arms(names) if plan.screen else None
    race = _Race(list(trio) if trio else names, controllers, screened=trio is not None)
    started = control.clock()
    deadline = started + plan.max_time_s if plan.max_time_s is not None else None
    load_round = plan.load_round if load_enabled else None
    # A decisive race may stop the run from min_rounds, and not before every arm has
    # seen the whole load timeline (steady, load and recovery).
    first_stop = max(plan.min_rounds, load_round + plan.load_rounds if load_round else 0)
    config = race_config(plan.tolerance)
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
        samples = [sample_from_record(r) for r in steps.records if not r.settle]
        now = replay(samples, config, plan.metric, arms=names, screened=race.screened)
        _follow(steps, race, now, rnd, out_of_time)
        elapsed = control.clock() - started
        reason: RoundStop | None = "time" if out_of_time else None
        if reason is None:
            if plan.until_decisive and now.status.decisive and rnd >= first_stop:
                reason = "decisive"
            elif rnd >= plan.rounds:
                reason = "rounds"
            elif plan.max_time_s is not None and elapsed >= plan.max_time_s:
                reason = "time"
        _announce_round(steps, race, now, rnd, reason, elapsed)
        if reason is not None:
            steps.log("info", f"round {rnd}: stopping ({reason})")
            break
        if control.stopping:
            raise Stopped()
    if steps.load.active:
        steps.stop_load("load timeline over")


def _follow(steps: Steps, race: _Race, now: Replay, rnd: int, out_of_time: bool) -> None:
    """The arms the next round runs: after the screen, those it keeps; then the
    survivors (with until_decisive: those not clearly slower)."""
    plan = steps.plan
    if race.screened and rnd < SCREEN_ROUNDS:
        return
    if race.screened and rnd == SCREEN_ROUNDS:
        if now.screen is not None:
            steps.log("info", f"screen: {now.screen.why}")
        race.remaining = list(now.race.names)
        return
    if not plan.until_decisive or out_of_time:
        return
    for d in now.status.dropped:
        if d.arm in race.remaining and len(race.remaining) > 1:
            race.remaining.remove(d.arm)
            race.dropped.append((d.arm, rnd))
            steps.log("info", f"round {rnd}: {d.arm} is clearly slower than {d.by} "
                              f"(by {(d.lower - 1) * 100:.1f}% at least): dropped")  # fmt: skip


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
                planned=blk.steps, left=(plan.rounds - rnd) * blk.steps + blk.steps - i,
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


def _announce_round(
    steps: Steps, race: _Race, now: Replay, rnd: int, reason: RoundStop | None, elapsed: float
) -> None:
    plan, st = steps.plan, now.status
    words = race_words(now, plan.tolerance)
    needed = None if st.decisive else now.race.rounds_needed()
    steps.sink.emit(
        RoundFinished(
            round=rnd,
            rounds=plan.rounds,
            best=st.best,
            decisive=st.decisive,
            remaining=tuple(race.remaining),
            dropped=tuple(race.dropped),
            recommended_k=st.recommended_k,
            stop=reason,
            elapsed_s=elapsed,
            left_s=None if reason else elapsed / rnd * (plan.rounds - rnd),
            status=tuple((a.name, words[a.name]) for a in plan.arms if a.name in words),
            half_width=tuple((a.arm, a.tps.value, (a.tps.hi - a.tps.lo) / 2) for a in st.arms),
            statement=statement(st, now.race.config, needed),
            screened_out=now.screened_out,
            epsilon=st.epsilon,
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
