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

from halospec_tui.concurrent_step import client_prompt_index, measure_together
from halospec_tui.conditions import IDLE, Condition, arm_seed, condition_order, key_of
from halospec_tui.controllers import Controller
from halospec_tui.events import (
    ArmStarted,
    ConditionStarted,
    Phase,
    PolicyChanged,
    RoundFinished,
    RoundStarted,
    RoundStop,
)
from halospec_tui.plan import ArmSpec, Plan
from halospec_tui.race import statement
from halospec_tui.race_rows import SCREEN_ROUNDS, Replay, replay, screen_arms
from halospec_tui.results.reader import sample_from_record
from halospec_tui.results.report import conditions_policy
from halospec_tui.schedule import (
    Block,
    grown_block,
    prompt_index,
    round_blocks,
    round_phase,
    settle_prompt_index,
)
from halospec_tui.stats import StepSample
from halospec_tui.steps import Skipped, StepPlace, Steps, Stopped
from halospec_tui.verdict import race_config, race_words

LOAD_SETTLE_S = 1.0  # after a condition's load starts, before its first request


class OutOfTime(Exception):
    """--max-time has passed: the round in progress is the last."""


@dataclass
class _Race:
    """What the rounds keep between rounds, for one race (a run with conditions keeps
    one per condition)."""

    remaining: list[str]
    controllers: dict[str, Controller]
    screened: bool = False  # the first SCREEN_ROUNDS rounds screen the arms
    dropped: list[tuple[str, int]] = field(default_factory=list)
    warmed: set[str] = field(default_factory=set)
    steps_done: dict[str, int] = field(default_factory=dict)
    first_prompt: int = 0  # the run's prompt index of this round's first measured step
    condition: Condition | None = None
    seed: int = 0  # of its arms' order in each round

    @property
    def concurrency(self) -> int:
        return self.condition.concurrency if self.condition is not None else 1


def _races(steps: Steps) -> list[_Race]:
    """One race per condition (one race for a run without conditions)."""
    plan = steps.plan
    names = [a.name for a in plan.arms]
    trio = screen_arms(names) if plan.screen else None
    out = []
    for i, cond in enumerate(plan.condition_list or (None,)):
        controllers = {a.name: c for a in plan.arms if (c := steps.controller_for(a)) is not None}
        out.append(_Race(list(trio) if trio else names, controllers, screened=trio is not None,
                         condition=cond, seed=arm_seed(plan.seed, i)))  # fmt: skip
    return out


def run_rounds(steps: Steps, load_enabled: bool) -> None:
    plan, control = steps.plan, steps.control
    names = [a.name for a in plan.arms]
    races = _races(steps)
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
        order = races if len(races) == 1 else _in_order(races, plan.seed, rnd)
        blocks = [(race, round_blocks(race.remaining, race.seed, rnd, _size(plan, race)))
                  for race in order]  # fmt: skip
        arms = tuple(dict.fromkeys(b.arm for _, bs in blocks for b in bs))
        keys = tuple(r.condition.key for r in order if r.condition is not None)
        steps.sink.emit(RoundStarted(rnd, plan.rounds, arms, timeline, keys))
        out_of_time = False
        try:
            for i, (race, bs) in enumerate(blocks, start=1):
                _run_condition(steps, race, bs, (rnd, i, len(blocks)), timeline, deadline)
        except OutOfTime:
            out_of_time = True
        for race, bs in blocks:
            race.first_prompt += (bs[0].steps if bs else 0) * race.concurrency
        samples = [sample_from_record(r) for r in steps.records if not r.settle]
        nows = [(race, replay(_of(samples, race), config, plan.metric, arms=names,
                              screened=race.screened)) for race in races]  # fmt: skip
        for race, now in nows:
            _follow(steps, race, now, rnd, out_of_time)
        elapsed = control.clock() - started
        reason: RoundStop | None = "time" if out_of_time else None
        if reason is None:
            if plan.until_decisive and all(n.status.decisive for _, n in nows) and rnd >= first_stop:
                reason = "decisive"
            elif rnd >= plan.rounds:
                reason = "rounds"
            elif plan.max_time_s is not None and elapsed >= plan.max_time_s:
                reason = "time"
        for race, now in nows:
            _announce_round(steps, race, now, rnd, reason, elapsed)
        if plan.condition_list:
            _announce_policy(steps, samples)
        if reason is not None:
            steps.log("info", f"round {rnd}: stopping ({reason})")
            break
        if control.stopping:
            raise Stopped()
    if steps.load.active:
        steps.stop_load("load timeline over" if not plan.condition_list else "conditions over")


def _size(plan: Plan, race: _Race) -> int:
    return grown_block(plan.block, len(plan.arms), len(race.remaining))


def _in_order(races: list[_Race], seed: int, rnd: int) -> list[_Race]:
    """The races in this round's shuffled order of their conditions."""
    by_cond = {r.condition: r for r in races}
    return [by_cond[c] for c in condition_order([r.condition for r in races if r.condition], seed, rnd)]


def _of(samples: list[StepSample], race: _Race) -> list[StepSample]:
    """The rows of this race (all of them without conditions)."""
    if race.condition is None:
        return samples
    key = race.condition.key
    return [s for s in samples if key_of(s.condition, s.concurrency) == key]


def _run_condition(
    steps: Steps, race: _Race, blocks: list[Block], where: tuple[int, int, int],
    timeline: Phase, deadline: float | None,
) -> None:  # fmt: skip
    """One condition's blocks in a round: its load held on (the others off), then each
    arm's block. `where`: (round, the condition's place in the round, conditions)."""
    cond = race.condition
    if cond is not None:
        rnd, i, n = where
        steps.sink.emit(ConditionStarted(rnd, cond.key, cond.describe(), i, n,
                                         tuple(b.arm for b in blocks)))  # fmt: skip
    for blk in blocks:
        if cond is not None:
            hold_load(steps, cond)
        _run_block(steps, race, blk, where[0], timeline, deadline)


def hold_load(steps: Steps, cond: Condition) -> None:
    """The condition's load on (from idle: none), every other condition's load off. A
    load that starts is given LOAD_SETTLE_S to take hold before the next request."""
    want = None if cond.load == IDLE else cond.load
    for name, load in steps.condition_loads.items():
        if name != want and load.active:
            load.stop()
    if want is None:
        steps.announce_load(False, f"condition {cond.key}")
        return
    load = steps.condition_loads[want]
    if not load.active:
        load.start(steps.plan.max_time_s or steps.plan.load_duration_s)
        steps.log("info", f"load: {want} on for condition {cond.key}")
        steps.control.sleep(LOAD_SETTLE_S)
    steps.announce_load(True, f"condition {cond.key}")


def _announce_policy(steps: Steps, samples: list[StepSample]) -> None:
    _, policy = conditions_policy(samples, tolerance=steps.plan.tolerance, metric=steps.plan.metric)
    if policy is not None:
        steps.sink.emit(PolicyChanged(policy))


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
        steps.pending = steps.actuate(_first_k(steps, race, spec, controller, rnd), spec.p_min, spec.threads)
        if spec.name not in race.warmed:
            race.warmed.add(spec.name)
            steps.warmup(spec, controller)
        for i in range(1, plan.settle + 1):
            before()
            steps.measure(spec, controller, StepPlace(
                i, settle_prompt_index(rnd, plan.settle, i), timeline, rnd, blk.position,
                settle=True, planned=plan.settle, condition=race.condition,
            ))  # fmt: skip
        c = race.concurrency
        for i in range(1, blk.steps + 1):
            before()
            done = race.steps_done[spec.name] = race.steps_done.get(spec.name, 0) + 1
            measure_together(steps, spec, controller, StepPlace(
                done, client_prompt_index(race.first_prompt, i, c, 1), timeline, rnd,
                blk.position, planned=blk.steps,
                left=(plan.rounds - rnd) * blk.steps + blk.steps - i, condition=race.condition,
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
            condition=race.condition.key if race.condition is not None else "",
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
