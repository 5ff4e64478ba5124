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
