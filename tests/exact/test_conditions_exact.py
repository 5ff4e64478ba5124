"""conditions.py at its edges: the exact messages a bad --conditions, --concurrency or
condition name gets, the limits themselves (16 requests, 32 conditions) accepted, the
seeded orders a recorded seed must give again, and the names that do not parse."""

from __future__ import annotations

import random

import pytest

from halospec_tui.conditions import (
    Condition,
    ConditionError,
    arm_seed,
    condition_order,
    conditions_of,
    key_of,
    ordered_keys,
    parse_key,
    parse_levels,
    parse_loads,
)


def _message(text: str, parse: object) -> str:
    assert callable(parse)
    with pytest.raises(ConditionError) as caught:
        parse(text)
    return str(caught.value)


# -- condition names -----------------------------------------------------------------------
def test_a_name_of_an_unknown_load_is_refused_with_the_loads_named() -> None:
    # the level alone parses: the load must be one of LOADS too
    assert _message("gpu@3", parse_key) == (
        "not a condition: 'gpu@3' (LOAD@N, LOAD one of idle, cpu, memory, requests)"
    )
    assert _message("idle3", parse_key) == (
        "not a condition: 'idle3' (LOAD@N, LOAD one of idle, cpu, memory, requests)"
    )


def test_a_name_at_sixteen_parses_and_at_seventeen_is_refused() -> None:
    assert parse_key("requests@16") == Condition("requests", 16)
    assert _message("idle@17", parse_key) == "condition 'idle@17': concurrency must be 1..16"
    assert _message("idle@0", parse_key) == "condition 'idle@0': concurrency must be 1..16"


def test_a_row_without_a_level_is_named_at_one_request() -> None:
    # rows written before concurrency had a column read back as None: one request
    assert key_of("memory", None) == "memory@1"
    assert key_of("memory", 0) == "memory@1"


def test_names_that_do_not_parse_come_last_by_name_and_each_once() -> None:
    names = ["zeta", "requests@1", "memory@2", "alpha", "idle@12", "zeta", "idle@2", "cpu@1", "gpu@1"]
    assert ordered_keys(names) == [
        "idle@2", "idle@12", "cpu@1", "memory@2", "requests@1", "alpha", "gpu@1", "zeta",
    ]  # fmt: skip
    assert ordered_keys([]) == []


# -- the lists on the command line -----------------------------------------------------------
def test_the_list_messages_name_every_load() -> None:
    assert _message(" , ", parse_loads) == (
        "--conditions needs at least one of idle, cpu, memory, requests"
    )
    assert _message("idle,gpu", parse_loads) == (
        "--conditions: unknown condition 'gpu' (choose from idle, cpu, memory, requests)"
    )


def test_the_levels_run_from_one_to_sixteen() -> None:
    assert parse_levels("16,1") == (1, 16)
    assert _message(" ,", parse_levels) == "--concurrency needs at least one level, e.g. 1,2,4"


def test_thirty_two_conditions_run_and_thirty_six_are_refused() -> None:
    loads = ("idle", "cpu", "memory", "requests")
    got = conditions_of(loads, range(1, 9))  # 4 x 8 = 32, the most a run takes
    assert len(got) == 32 and got[0] == Condition("idle", 1) and got[-1] == Condition("requests", 8)
    with pytest.raises(ConditionError) as caught:
        conditions_of(loads, range(1, 10))  # 4 x 9
    assert str(caught.value) == "36 conditions: at most 32 (loads x levels)"


# -- the seeded orders ---------------------------------------------------------------------
def test_the_order_of_conditions_is_the_documented_shuffle() -> None:
    """Round r of seed S visits the conditions in random.Random(S * 1_000_033 + 7 r + 3)
    shuffle order: a recorded seed gives the same orders again, in this version and
    later ones (the arms' order, schedule.round_order, is another stream)."""
    conds = list(conditions_of(("idle", "cpu", "memory", "requests"), (1, 2, 4)))
    for seed, rnd in ((5, 1), (5, 2), (123, 9), (0, 3), (7, 40)):
        want = list(conds)
        random.Random(seed * 1_000_033 + rnd * 7 + 3).shuffle(want)
        assert condition_order(conds, seed, rnd) == want
    assert conds == list(conditions_of(("idle", "cpu", "memory", "requests"), (1, 2, 4)))


def test_each_condition_orders_its_arms_from_its_own_documented_seed() -> None:
    """The condition at index i (canonical order) orders its arms from seed S + 7919 i:
    the first from the run's own seed, as a run without conditions does; a recorded
    seed gives the same orders again."""
    assert [arm_seed(5, i) for i in range(4)] == [5, 7_924, 15_843, 23_762]
    assert arm_seed(0, 31) == 245_489
