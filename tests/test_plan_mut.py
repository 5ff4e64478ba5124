"""The plan's arm names, refusals and overrides pinned at every boundary.

Each expectation is written from the README's promises (arm names, K 1..16, p_min strictly
between 0 and 1, tune's rounds) and the exact messages the CLI prints; found by mutation
testing (scripts/mutation.sh) where a one-line change to plan.py went unnoticed.
"""

from __future__ import annotations

import math

import pytest

from halospec_tui.arms import parse_arm
from halospec_tui.plan import (
    TUNE_ARMS,
    ArmSpec,
    Plan,
    PlanError,
    classic,
    customise,
    named_plan,
    quick,
    tune,
    validate,
)

FIXED = [f"fixed_{k}" for k in range(1, 9)]


def _refused(fn, *args, **kw) -> str:
    with pytest.raises(PlanError) as e:
        fn(*args, **kw)
    return str(e.value)


# -- the tune plan as data -----------------------------------------------------------
def test_tune_plan_as_data():
    assert [m.name for m in tune().arms] == TUNE_ARMS == ["nospec", *FIXED]
    want = Plan(
        name="tune",
        arms=(ArmSpec(parse_arm("nospec"), 0, 4),) + tuple(ArmSpec(parse_arm(f"fixed_{k}"), 0, 4) for k in range(1, 9)),
        warmup_sleep_s=0.0,
        cooldown_s=0.0,
        load_step=6,
        load_duration_s=30.0,
        prompts="pool",
        max_tokens=64,
        schedule="interleaved",
        rounds=12,
        block=4,
        settle=1,
        seed=0,
        until_decisive=True,
        min_rounds=4,  # README: from round 4 the run stops as soon as it is decisive
        drop_from_round=3,  # README: from round 3 clearly slower arms are dropped
        max_time_s=600.0,
        tolerance=0.02,  # README: within 2% counts as tied
        load_round=2,
        load_rounds=2,
        workload="steady",
        shift_every=8,
        screen=True,  # README: nospec, a middle K and the largest K first; the model picks
        metric="client",
    )
    assert tune() == want == named_plan("tune")
    assert tune().interleaved and not classic().interleaved and not quick().interleaved


def test_plan_defaults_are_sequential_and_steady():
    p = Plan("p", (ArmSpec(parse_arm("fixed_1"), 0, 1),))
    assert (p.schedule, p.rounds, p.block, p.settle, p.seed, p.until_decisive) == (
        "sequential", 4, 2, 0, 0, False,
    )  # fmt: skip
    assert (p.min_rounds, p.drop_from_round, p.max_time_s, p.tolerance) == (4, 3, None, 0.02)
    assert (p.load_round, p.load_rounds, p.workload, p.shift_every) == (2, 2, "steady", 8)


# -- customise: refusals, each with its message --------------------------------------
@pytest.mark.parametrize(
    "kw,message",
    [
        ({"warmup_sleep_s": math.inf}, "--warmup-sleep must be a finite number (got inf)"),
        ({"cooldown_s": math.nan}, "--cooldown must be a finite number (got nan)"),
        ({"load_duration_s": -math.inf}, "--load-duration must be a finite number (got -inf)"),
        ({"max_time_s": math.inf}, "--max-time must be a finite number (got inf)"),
        ({"tolerance": math.nan}, "--tolerance must be a finite number (got nan)"),
        ({"rounds": 0}, "--rounds must be at least 1 (got 0)"),
        ({"block": 0}, "--block must be at least 1 (got 0)"),
        ({"settle": -1}, "--settle must be at least 0 (got -1)"),
        ({"load_round": 0}, "--load-round must be at least 1 (got 0)"),
        ({"load_rounds": -1}, "--load-rounds must be at least 0 (got -1)"),
        ({"shift_every": 0}, "--shift-every must be at least 1 (got 0)"),
        ({"settle": 101}, "--settle must be at most 100 (got 101)"),
        ({"block": 1001}, "--block must be at most 1000 (got 1001)"),
        ({"rounds": 1001}, "--rounds must be at most 1000 (got 1001)"),
        ({"load_round": 1001}, "--load-round must be at most 1000 (got 1001)"),
        ({"steps": 100_001}, "--steps must be at most 100000 (got 100001)"),
        ({"warmup": 100_001}, "--warmup must be at most 100000 (got 100001)"),
        ({"tolerance": -0.01}, "--tolerance must be at least 0 and below 1 (got -0.01)"),
        ({"tolerance": 1.0}, "--tolerance must be at least 0 and below 1 (got 1.0)"),
        ({"max_time_s": 0.0}, "--max-time must be positive (got 0.0)"),
        ({"max_time_s": -5.0}, "--max-time must be positive (got -5.0)"),
        ({"schedule": "random"}, "unknown schedule 'random' (choose sequential or interleaved)"),
        ({"workload": "bursty"}, "unknown workload 'bursty' (choose steady or shift)"),
        (
            {"workload": "shift", "prompts": "original"},
            "--workload shift draws prompts by class: drop --prompts original",
        ),
        ({"until_decisive": True}, "--until-decisive needs --schedule interleaved"),
        (
            {"until_decisive": True, "schedule": "sequential"},
            "--until-decisive needs --schedule interleaved",
        ),
    ],
)
def test_customise_quick_refuses(kw, message):
    assert _refused(customise, quick(), **kw) == message


CLASSIC_SEQUENTIAL = (
    "the classic plan keeps the original's sequential schedule: "
    "use --plan tune (or quick) for interleaved rounds and --until-decisive"
)


@pytest.mark.parametrize(
    "kw", [{"until_decisive": True}, {"schedule": "interleaved"},
           {"schedule": "interleaved", "until_decisive": False}],
)  # fmt: skip
def test_classic_keeps_its_sequential_schedule(kw):
    assert _refused(customise, classic(), **kw) == CLASSIC_SEQUENTIAL


def test_classic_accepts_what_keeps_it_sequential():
    assert customise(classic(), schedule="sequential", until_decisive=False) == classic()
    # a block on a sequential plan is stored but changes no mode's steps
    p = customise(classic(), block=3, rounds=5)
    assert p == Plan(
        "classic",
        tuple(ArmSpec(parse_arm(f"fixed_{k}"), 5, 10) for k in range(1, 9))
        + (ArmSpec(parse_arm("adaptive"), 5, 15),),
        rounds=5,
        block=3,
    )


def test_customise_accepts_every_lower_edge():
    p = customise(
        quick(),
        rounds=1,
        block=1,
        settle=0,
        load_round=1,
        load_rounds=0,
        shift_every=1,
        tolerance=0.0,
        max_time_s=0.5,
    )
    assert (p.rounds, p.block, p.settle, p.load_round, p.load_rounds, p.shift_every) == (
        1, 1, 0, 1, 0, 1,
    )  # fmt: skip
    assert (p.tolerance, p.max_time_s) == (0.0, 0.5)
    assert customise(quick(), tolerance=0.99).tolerance == 0.99
    # -0 is 0: the summary never says "tied within -0%"
    assert str(customise(quick(), tolerance=-0.0).tolerance) == "0.0"
    top = customise(quick(), rounds=1000, block=1000, settle=100, schedule="interleaved")
    assert (top.rounds, top.block, top.settle) == (1000, 1000, 100)


# -- customise: what it sets ---------------------------------------------------------
def test_quick_made_interleaved_takes_every_number():
    p = customise(
        quick(),
        arms=["nospec", "fixed_2", "adaptive:bandit"],
        schedule="interleaved",
        rounds=6,
        block=3,
        settle=2,
        seed=11,
        until_decisive=True,
        max_time_s=90.0,
        tolerance=0.05,
        load_round=3,
        load_rounds=1,
        workload="shift",
        shift_every=5,
    )
    # in rounds, every mode's measured steps are one block (3), whatever the plan had
    assert p == Plan(
        "quick",
        (
            ArmSpec(parse_arm("nospec"), 2, 3),
            ArmSpec(parse_arm("fixed_2"), 2, 3),
            ArmSpec(parse_arm("adaptive:bandit"), 2, 3),
        ),
        warmup_sleep_s=0.05,
        cooldown_s=0.1,
        load_step=3,
        load_duration_s=2.0,
        prompts="pool",
        schedule="interleaved",
        rounds=6,
        block=3,
        settle=2,
        seed=11,
        until_decisive=True,
        max_time_s=90.0,
        tolerance=0.05,
        load_round=3,
        load_rounds=1,
        workload="shift",
        shift_every=5,
    )


def test_interleaved_without_a_block_uses_the_plans_block():
    p = customise(quick(), schedule="interleaved")
    assert p.schedule == "interleaved" and p.block == 2 and not p.until_decisive
    # quick's 4 fixed / 8 adaptive steps become one block of 2 each
    assert [m.measured_steps for m in p.arms] == [2] * 10
    assert [m.warmup_steps for m in p.arms] == [2] * 10
    q = customise(tune(), block=6)
    assert q.block == 6 and [m.measured_steps for m in q.arms] == [6] * 9
    assert customise(tune()) == tune()


def test_tune_made_sequential_is_no_longer_until_decisive():
    p = customise(tune(), schedule="sequential")
    assert (p.schedule, p.until_decisive) == ("sequential", False)
    # sequential keeps the per-mode steps (tune's 4), not a block
    assert [m.measured_steps for m in p.arms] == [4] * 9
    assert customise(tune(), schedule="sequential", until_decisive=False).until_decisive is False
    assert _refused(customise, tune(), schedule="sequential", until_decisive=True) == (
        "--until-decisive needs --schedule interleaved"
    )
    # interleaved given again keeps it; nothing given keeps it
    assert customise(tune(), schedule="interleaved").until_decisive is True
    assert customise(tune(), until_decisive=False).until_decisive is False
    assert customise(tune(), seed=3).until_decisive is True
    assert customise(quick(), schedule="sequential").until_decisive is False


def test_a_shifting_workload_draws_from_the_pool():
    # classic's prompts are the original one: shift switches them to the pool
    p = customise(classic(), workload="shift")
    assert (p.workload, p.prompts, p.shift_every) == ("shift", "pool", 8)
    q = customise(quick(), workload="shift", prompts="pool", shift_every=3)
    assert (q.workload, q.prompts, q.shift_every) == ("shift", "pool", 3)
    # steady leaves the prompt set alone
    assert customise(classic(), workload="steady").prompts == "original"
    assert customise(quick(), workload="steady", prompts="original").prompts == "original"


# -- validate on a plan built directly: each refusal names the flag ------------------
def _one(arm: str, warmup: int = 0, steps: int = 1) -> tuple[ArmSpec, ...]:
    return (ArmSpec(parse_arm(arm), warmup, steps),)


@pytest.mark.parametrize(
    "plan,message",
    [
        (Plan("p", ()), "a plan needs at least one arm"),
        (Plan("p", _one("fixed_1", warmup=-1)), "--warmup must not be negative (got -1)"),
        (Plan("p", _one("fixed_1", steps=-2)), "--steps must not be negative (got -2)"),
        # sequential: an adaptive arm's steps come from --adaptive-steps
        (Plan("p", _one("adaptive", steps=-3)), "--adaptive-steps must not be negative (got -3)"),
        # in rounds every arm's measured steps are one block, set like a fixed arm's
        (
            Plan("p", _one("adaptive", steps=-4), schedule="interleaved"),
            "--steps must not be negative (got -4)",
        ),
        (
            Plan("p", _one("fixed_1", steps=-5), schedule="interleaved"),
            "--steps must not be negative (got -5)",
        ),
        # customise switches the prompts to the pool; a plan built directly is refused
        (
            Plan("p", _one("fixed_1"), workload="shift"),
            "--workload shift draws prompts by class: drop --prompts original",
        ),
    ],
)
def test_validate_refuses_a_plan_built_directly_naming_the_flag(plan, message):
    assert _refused(validate, plan) == message


def test_validate_returns_the_plan_it_accepts():
    p = Plan("p", _one("adaptive", steps=0), workload="shift", prompts="pool")
    assert validate(p) is p


def test_customise_names_settings_that_are_no_plan_field():
    with pytest.raises(TypeError) as e:
        customise(quick(), bogus=1, rounds=2, extra="x")
    assert str(e.value) == "customise() got unknown settings ['bogus', 'extra']"
