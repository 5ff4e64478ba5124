"""The plan's checks that only a plan built by hand reaches (`validate` is the one place
a plan is checked, whatever built it)."""

from __future__ import annotations

from dataclasses import replace

import pytest

from halospec_tui.arms import parse_arm
from halospec_tui.plan import ArmSpec, PlanError, customise, named_plan, validate


def test_a_plan_crossed_by_threads_refuses_an_arm_with_another_thread_count() -> None:
    crossed = customise(named_plan("quick"), arms=["fixed_2"], threads=(1, 2))
    assert validate(crossed) == crossed
    other = replace(crossed, arms=(*crossed.arms, ArmSpec(parse_arm("fixed_5@t3"), 2, 4)))
    with pytest.raises(PlanError) as e:
        validate(other)
    assert str(e.value) == (
        "--threads crosses every arm with each thread count: an arm with its own @tN "
        "cannot be given with it"
    )
    # an arm with one of the plan's counts is one it could have crossed: it runs
    same = replace(crossed, arms=(*crossed.arms, ArmSpec(parse_arm("fixed_5@t2"), 2, 4)))
    assert validate(same) == same


RACE_IN_ROUNDS = (
    "--conditions and --concurrency race arms in rounds: use --plan tune "
    "(or --schedule interleaved)"
)


@pytest.mark.parametrize(
    ("plan", "conditions", "concurrency", "said"),
    [
        ("quick", ("idle", "cpu"), (), RACE_IN_ROUNDS),
        ("quick", (), (1, 2), RACE_IN_ROUNDS),
        ("tune", ("idle", "gpu"), (),
         "--conditions: unknown condition 'gpu' (choose from idle, cpu, memory, requests)"),
        ("tune", ("cpu", "idle", "cpu"), (), "--conditions lists a condition twice"),
        ("tune", (), (2, 4, 2), "--concurrency lists a level twice"),
    ],
)  # fmt: skip
def test_conditions_a_plan_cannot_race_are_refused_with_the_flag_to_change(
    plan: str, conditions: tuple[str, ...], concurrency: tuple[int, ...], said: str
) -> None:
    with pytest.raises(PlanError) as e:
        customise(named_plan(plan), conditions=conditions, concurrency=concurrency)
    assert str(e.value) == said


def test_more_than_32_conditions_are_refused_by_the_plan() -> None:
    # 3 loads x 11 levels = 33 conditions; 2 x 16 = 32 is the most a run may race
    with pytest.raises(PlanError) as e:
        customise(named_plan("tune"), conditions=("idle", "cpu", "memory"),
                  concurrency=tuple(range(1, 12)))  # fmt: skip
    assert str(e.value) == "33 conditions: at most 32 (loads x levels)"
    most = customise(named_plan("tune"), conditions=("idle", "cpu"), concurrency=tuple(range(1, 17)))
    assert len(most.condition_list) == 32
