"""The policy table in words (results/export_policy.py): every cell, line and key.

Expected texts are worked out by hand from the inputs: a percentage is the share
times 100 with one decimal, the text table pads each column to its widest cell and
joins columns with two spaces, Markdown cells go through `md_escape` (`_` and `|`
escaped, a cell starting with "-" prefixed with "'").
"""

from __future__ import annotations

import math

from halospec_tui.arms import fixed_k
from halospec_tui.policy import Policy, PolicyRow, Regret
from halospec_tui.race import Interval
from halospec_tui.results.export_policy import (
    REGRET_NOTE,
    decided_text,
    policy_dicts,
    policy_lines,
    policy_markdown,
    regret_text,
    row_cells,
    static_dict,
    static_line,
)

NO_STATIC = "one static setting everywhere: no fixed arm was measured in every condition"


def _row(
    condition: str,
    recommended: str | None = "fixed_4",
    *,
    tps: Interval | None = None,
    tied: tuple[str, ...] = (),
    decisive: bool = False,
    epsilon: float | None = None,
    setting: str = "",
    regret: Regret | None = None,
) -> PolicyRow:
    k = None if recommended is None else fixed_k(recommended)
    return PolicyRow(condition, "fixed_4", recommended, k, tps, tied, decisive, epsilon, setting,
                     regret)  # fmt: skip


# A run where no fixed arm ran in every condition: no static K, no regret anywhere.
UNSHARED = Policy(
    rows=(
        _row("idle@1", "fixed_4", tps=Interval(40.0, 36.0, 44.0), tied=("fixed_4", "fixed_3"),
             decisive=True, setting="use fixed_4"),  # fmt: skip
        _row("memory@2", "nospec", epsilon=0.25, setting="turn speculation off"),
        _row("cpu@4", None, setting="no pick yet"),
    ),
    static=None,
    static_k=None,
    mean_regret=None,
    worst=None,
    advice="reload | relaunch",
    tolerance=0.025,
)

# fixed_2 ran everywhere: regret 20% [11.1, 33.3] at idle@1 (the worst), 0 where it is
# the fastest, a point 5% at cpu@1; mean (0.2 + 0 + 0.05) / 3 taken as given: 0.125.
SHARED = Policy(
    rows=(
        _row("idle@1", "fixed_4", tps=Interval(40.0, 38.0, 42.0), decisive=True,
             setting="use K = 4", regret=Regret(0.2, 0.111, 0.333)),  # fmt: skip
        _row("memory@1", "fixed_2", tps=Interval(20.0, 19.0, 21.0), decisive=True,
             setting="use K = 2", regret=Regret(0.0, 0.0, 0.0)),  # fmt: skip
        _row("cpu@1", "nospec", tps=Interval(10.0, 9.5, 10.5), decisive=True,
             setting="turn speculation off", regret=Regret(0.05)),  # fmt: skip
    ),
    static="fixed_2",
    static_k=2,
    mean_regret=0.125,
    worst="idle@1",
    advice="one setting serves every condition",
    tolerance=0.02,
)


# -- cells ------------------------------------------------------------------------------
def test_a_regret_with_its_interval_reads_value_and_bounds_in_percent() -> None:
    assert regret_text(Regret(0.2, 0.111, 0.333)) == "20.0% [11.1, 33.3]"


def test_a_regret_not_measured_is_a_dash() -> None:
    assert regret_text(None) == "-"


def test_a_regret_without_both_bounds_is_labelled_a_point() -> None:
    assert regret_text(Regret(0.041)) == "4.1% (point)"
    assert regret_text(Regret(0.041, None, 0.07)) == "4.1% (point)"
    assert regret_text(Regret(0.041, 0.01, None)) == "4.1% (point)"


def test_the_fastest_arm_as_static_has_a_bare_zero_regret() -> None:
    # regret_of gives the condition's fastest arm Regret(0, 0, 0): no interval to show
    assert regret_text(Regret(0.0, 0.0, 0.0)) == "0.0%"


def test_an_interval_of_zero_width_away_from_the_point_is_still_shown() -> None:
    assert regret_text(Regret(0.05, 0.02, 0.02)) == "5.0% [2.0, 2.0]"


def test_unbounded_ends_read_minus_inf_and_a_question_mark() -> None:
    assert regret_text(Regret(0.1, -math.inf, math.inf)) == "10.0% [-inf, ?]"
    assert regret_text(Regret(0.1, -math.inf, 0.5)) == "10.0% [-inf, 50.0]"


def test_decided_says_decisive_within_or_not_yet_and_names_the_tie() -> None:
    assert decided_text(_row("a@1", decisive=True)) == "decisive"
    assert decided_text(_row("a@1", epsilon=0.25)) == "within 25.0%"
    assert decided_text(_row("a@1")) == "not yet"
    tie = ("nospec", "fixed_2")
    assert decided_text(_row("a@1", decisive=True, tied=tie)) == "decisive (tie: nospec fixed_2)"
    assert decided_text(_row("a@1", epsilon=0.125, tied=tie)) == "within 12.5% (tie: nospec fixed_2)"
    assert decided_text(_row("a@1", tied=tie)) == "not yet (tie: nospec fixed_2)"


def test_a_pick_without_tokens_per_second_shows_a_dash() -> None:
    c = row_cells(_row("idle@1", "nospec", regret=Regret(0.05)))
    assert (c.condition, c.pick, c.tps, c.decided, c.regret) == (
        "idle@1", "speculation off", "-", "not yet", "5.0% (point)")  # fmt: skip


def test_the_pick_s_tokens_per_second_carry_half_the_interval_width() -> None:
    c = row_cells(_row("idle@1", tps=Interval(40.25, 37.0, 44.0)))
    assert c.tps == "40.2 ±3.5"  # 40.25 rounds half to even; (44 - 37) / 2 = 3.5


# -- the static K -------------------------------------------------------------------------
def test_the_static_line_names_the_arm_its_mean_and_where_it_costs_most() -> None:
    assert static_line(SHARED) == (
        "one static setting everywhere: fixed_2, mean regret 12.5%, most 20.0% at idle@1"
    )
    assert static_line(UNSHARED) == NO_STATIC


def test_the_static_line_leaves_out_what_it_was_not_given() -> None:
    bare = Policy(SHARED.rows, "fixed_2", 2, None, None, "", 0.02)
    assert static_line(bare) == "one static setting everywhere: fixed_2, mean regret -"
    # the worst condition named but without a regret there: no "most" clause
    unmeasured = (_row("idle@1"), _row("cpu@1", regret=Regret(0.1)))
    p = Policy(unmeasured, "fixed_2", 2, 0.1, "idle@1", "", 0.02)
    assert static_line(p) == "one static setting everywhere: fixed_2, mean regret 10.0%"


# -- the three forms ------------------------------------------------------------------------
def test_the_text_table_without_a_static_k() -> None:
    assert policy_lines(UNSHARED) == [
        "",
        f"Policy (tolerance 2.5%; regret: {REGRET_NOTE})",
        "condition  pick             tok/s      decided                          regret",
        "idle@1     fixed_4          40.0 ±4.0  decisive (tie: fixed_4 fixed_3)  -",
        "memory@2   speculation off  -          within 25.0%                     -",
        "cpu@4      -                -          not yet                          -",
        NO_STATIC,
        "idle@1: use fixed_4",
        "memory@2: turn speculation off",
        "cpu@4: no pick yet",
        "server: reload | relaunch",
    ]


def test_the_text_table_with_a_static_k() -> None:
    assert policy_lines(SHARED) == [
        "",
        f"Policy (tolerance 2%; regret: {REGRET_NOTE})",
        "condition  pick             tok/s      decided   regret of fixed_2",
        "idle@1     fixed_4          40.0 ±2.0  decisive  20.0% [11.1, 33.3]",
        "memory@1   fixed_2          20.0 ±1.0  decisive  0.0%",
        "cpu@1      speculation off  10.0 ±0.5  decisive  5.0% (point)",
        "one static setting everywhere: fixed_2, mean regret 12.5%, most 20.0% at idle@1",
        "idle@1: use K = 4",
        "memory@1: use K = 2",
        "cpu@1: turn speculation off",
        "server: one setting serves every condition",
    ]


def test_the_markdown_table_escapes_every_cell() -> None:
    assert policy_markdown(UNSHARED) == [
        "| condition | pick | tok/s | decided | regret |",
        "|---|---|---|---|---|",
        "| idle@1 | fixed\\_4 | 40.0 ±4.0 | decisive (tie: fixed\\_4 fixed\\_3) | - |",
        "| memory@2 | speculation off | - | within 25.0% | - |",
        "| cpu@4 | - | - | not yet | - |",
        "",
        f"Regret: {REGRET_NOTE}.",
        "",
        f"- {NO_STATIC}",
        "- idle@1: use fixed\\_4",
        "- memory@2: turn speculation off",
        "- cpu@4: no pick yet",
        "- server: reload \\| relaunch",
    ]
    assert policy_markdown(SHARED)[:5] == [
        "| condition | pick | tok/s | decided | regret of fixed\\_2 |",
        "|---|---|---|---|---|",
        "| idle@1 | fixed\\_4 | 40.0 ±2.0 | decisive | 20.0% \\[11.1, 33.3\\] |",
        "| memory@1 | fixed\\_2 | 20.0 ±1.0 | decisive | 0.0% |",
        "| cpu@1 | speculation off | 10.0 ±0.5 | decisive | 5.0% (point) |",
    ]
    assert policy_markdown(SHARED)[8] == (
        "- one static setting everywhere: fixed\\_2, mean regret 12.5%, most 20.0% at idle@1"
    )


def test_the_json_policy_has_one_object_per_condition_with_every_key() -> None:
    first, second, third = policy_dicts(SHARED)
    assert first == {
        "condition": "idle@1", "best": "fixed_4", "recommended": "fixed_4", "recommended_k": 4,
        "tps": {"value": 40.0, "lo": 38.0, "hi": 42.0}, "tied": [], "decisive": True,
        "certified_within": None, "setting": "use K = 4", "static": "fixed_2",
        "static_regret": {"value": 0.2, "lo": 0.111, "hi": 0.333},
    }  # fmt: skip
    assert third["static_regret"] == {"value": 0.05, "lo": None, "hi": None}
    assert [d["recommended_k"] for d in (first, second, third)] == [4, 2, 0]
    one, two, three = policy_dicts(UNSHARED)
    assert two == {
        "condition": "memory@2", "best": "fixed_4", "recommended": "nospec", "recommended_k": 0,
        "tps": None, "tied": [], "decisive": False, "certified_within": 0.25,
        "setting": "turn speculation off", "static": None, "static_regret": None,
    }  # fmt: skip
    assert one["tied"] == ["fixed_4", "fixed_3"] and three["recommended"] is None


def test_the_json_static_policy() -> None:
    assert static_dict(SHARED) == {
        "arm": "fixed_2", "k": 2, "mean_regret": 0.125, "worst": "idle@1",
        "advice": "one setting serves every condition", "tolerance": 0.02,
    }  # fmt: skip
    assert static_dict(UNSHARED) == {
        "arm": None, "k": None, "mean_regret": None, "worst": None,
        "advice": "reload | relaunch", "tolerance": 0.025,
    }  # fmt: skip
