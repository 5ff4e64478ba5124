"""policy.py at its edges, with figures worked out by hand: rates and regrets when the
fastest has no usable figure or a ratio falls below one, ties of the static K by K,
conditions where nothing succeeded, the server's own flags in each row, and the advice
line word for word for each server kind."""

from __future__ import annotations

import math

import pytest

from halospec_tui.policy import (
    Policy,
    PolicyRow,
    Regret,
    advice,
    best_static,
    build_policy,
    cutoff,
    pick_text,
    regret_of,
    relative_rates,
)
from halospec_tui.race import Interval
from halospec_tui.verdict import ArmLine, Verdict

VLLM_4 = "vLLM flags: --speculative-config '{\"model\": \"DRAFT\", \"num_speculative_tokens\": 4}'"
FOLLOW = (
    " at run time; follow the table by reloading the server with the row's setting when the "
    "condition changes, or race an adaptive arm (adaptive:model), which switches with its "
    "reload cost counted"
)


def arm(name: str, k: int | None, tps: float | None, vs: tuple[float, float, float] | None = None,
        status: str = "racing", epsilon: float | None = None) -> ArmLine:  # fmt: skip
    return ArmLine(
        arm=name, k=k, n=8, rounds=4, tps=None if tps is None else Interval(tps, tps, tps),
        mean_ms=None, p95_ms=None, server_tps=None, cv=None,
        vs_best=None if vs is None else Interval(*vs), status=status, epsilon=epsilon,
    )  # fmt: skip


def verdict(best: str | None, lines: list[ArmLine], recommended: str | None = "",
            decisive: bool = True) -> Verdict:  # fmt: skip
    rec = best if recommended == "" else recommended
    k = next((a.k for a in lines if a.arm == rec), None)
    return Verdict(tuple(lines), best, decisive, rec, k, 0.02, "", True)


# fixed_4 fastest at 40 tok/s, nospec at 20 tok/s (half of it); memory@1 the other way
IDLE = verdict("fixed_4", [arm("fixed_4", 4, 40.0, status="best"),
                           arm("nospec", 0, 20.0, (2.0, 1.5, 2.5))])  # fmt: skip
MEMORY = verdict("nospec", [arm("nospec", 0, 20.0, status="best"),
                            arm("fixed_4", 4, 16.0, (1.25, 1.0, 1.5))])  # fmt: skip
# no arm had a successful step: no fastest, no pick
FAILED = verdict(None, [arm("fixed_2", 2, None, status="")], recommended=None)


# -- rates and regrets ---------------------------------------------------------------------
def test_no_rates_without_a_fastest_that_has_a_positive_rate() -> None:
    assert relative_rates(FAILED) == {}
    no_tps = verdict("fixed_4", [arm("fixed_4", 4, None, status="best"), arm("nospec", 0, 20.0)])
    assert relative_rates(no_tps) == {}
    zero = verdict("fixed_4", [arm("fixed_4", 4, 0.0, status="best"), arm("nospec", 0, 20.0)])
    assert relative_rates(zero) == {}


def test_a_slow_fastest_below_one_token_a_second_still_gives_rates() -> None:
    v = verdict("fixed_4", [arm("fixed_4", 4, 0.5, status="best"), arm("nospec", 0, 0.25)])
    assert relative_rates(v) == {"fixed_4": 1.0, "nospec": 0.5}  # 0.25 / 0.5, from the means


def test_a_paired_ratio_below_one_is_used_and_a_zero_ratio_falls_back_to_the_means() -> None:
    # the pairs can put an arm ahead of the fastest by the means: fastest/arm 0.8 gives
    # 1 / 0.8 = 1.25 (not the means' 30/40); a ratio of 0 is no figure: 20/40 = 0.5
    v = verdict("fixed_4", [arm("fixed_4", 4, 40.0, status="best"),
                            arm("fixed_2", 2, 30.0, (0.8, 0.5, 1.25)),
                            arm("nospec", 0, 20.0, (0.0, 0.0, 0.0))])  # fmt: skip
    assert relative_rates(v) == {"fixed_4": 1.0, "fixed_2": 1.25, "nospec": 0.5}
    # its regret is negative: 1 - 1/0.8 = -0.25, within [1 - 1/0.5, 1 - 1/1.25] = [-1, 0.2]
    r = regret_of(v, "fixed_2")
    assert r is not None
    assert [r.value, r.lo, r.hi] == pytest.approx([-0.25, -1.0, 0.2])
    assert regret_of(v, "nospec") == Regret(0.5)  # 1 - 20/40, a point only


def test_a_one_round_interval_maps_to_an_open_regret_interval() -> None:
    # a sequential run's ratio on one step per arm is (ratio, 0, inf): the regret's
    # interval is (-inf, 1], the point 1 - 1/1.25 = 0.2
    v = verdict("fixed_4", [arm("fixed_4", 4, 40.0, status="best"),
                            arm("fixed_2", 2, 32.0, (1.25, 0.0, math.inf))])  # fmt: skip
    r = regret_of(v, "fixed_2")
    assert r is not None
    assert r.value == pytest.approx(0.2) and (r.lo, r.hi) == (-math.inf, 1.0)


def test_an_arm_without_a_figure_has_no_regret() -> None:
    v = verdict("fixed_4", [arm("fixed_4", 4, 40.0, status="best"), arm("fixed_2", 2, None)])
    assert regret_of(v, "fixed_2") is None


# -- the static K --------------------------------------------------------------------------
def test_a_tie_of_the_static_k_goes_to_the_smaller_k_not_the_name() -> None:
    # both means 0.75; by name "fixed_2" < "nospec" and "fixed_10" < "fixed_4"
    assert best_static([{"fixed_2": 1.0, "nospec": 0.5}, {"fixed_2": 0.5, "nospec": 1.0}]) == "nospec"
    assert best_static([{"fixed_10": 1.0, "fixed_4": 0.5}, {"fixed_10": 0.5, "fixed_4": 1.0}]) == "fixed_4"
    # the same K: fewer threads first
    assert best_static([{"fixed_2@t4": 1.0, "fixed_2@t2": 1.0}]) == "fixed_2@t2"


# -- the table -----------------------------------------------------------------------------
def test_no_verdicts_make_an_empty_policy() -> None:
    assert build_policy([], "request") == Policy(
        (), None, None, None, None, "one setting serves every condition: nothing to switch", 0.0
    )


def test_a_condition_where_nothing_succeeded_leaves_no_static_k() -> None:
    p = build_policy([("idle@1", FAILED), ("memory@1", MEMORY)], "request")
    assert (p.static, p.static_k, p.mean_regret, p.worst) == (None, None, None, None)
    failed, memory = p.rows
    assert failed == PolicyRow("idle@1", None, None, None, None, (), True, None,
                               "no arm has a successful step: nothing to recommend", None)  # fmt: skip
    assert memory.static_regret is None and memory.recommended == "nospec"
    assert pick_text(failed) == "-"


def test_each_row_names_the_fastest_and_what_an_undecided_pick_certifies() -> None:
    v = verdict("fixed_4", [arm("fixed_4", 4, 40.0, status="best"),
                            arm("fixed_2", 2, 39.0, (1.02, 0.99, 1.05), "within", epsilon=0.013)],
                recommended="fixed_2", decisive=False)  # fmt: skip
    (row,) = build_policy([("idle@1", v)], "request").rows
    assert (row.best, row.recommended, row.recommended_k) == ("fixed_4", "fixed_2", 2)
    assert (row.decisive, row.epsilon, row.tied) == (False, 0.013, ("fixed_4", "fixed_2"))


def test_on_vllm_each_row_pastes_vllms_flags_and_the_advice_names_vllm() -> None:
    p = build_policy([("idle@1", IDLE), ("memory@1", MEMORY)], "request", "vllm")
    assert [r.setting for r in p.rows] == [
        f"use K = 4; {VLLM_4}",
        "turn speculation off; vLLM flags: no speculation (no --speculative-config)",
    ]
    # one level per load: no cut-off, so vLLM follows the table by reloads as the others
    assert p.advice == "vLLM takes K at launch: nothing switches it" + FOLLOW
    # mean rates: fixed_4 (1 + 1/1.25) / 2 = 0.9, nospec (0.5 + 1) / 2 = 0.75; fixed_4's
    # regret: 0 at idle@1, 1 - 1/1.25 = 0.2 at memory@1
    assert (p.static, p.static_k, p.worst) == ("fixed_4", 4, "memory@1")
    assert p.mean_regret == pytest.approx(0.1)


# -- the advice ----------------------------------------------------------------------------
def _row(cond: str, rec: str, k: int) -> PolicyRow:
    return PolicyRow(cond, rec, rec, k, None, (), True, None, "", None)


SPLIT = [_row("idle@1", "fixed_4", 4), _row("memory@1", "nospec", 0)]


def test_the_advice_names_the_server_that_takes_k_at_launch() -> None:
    assert advice(SPLIT, "sglang") == "SGLang takes K at launch: nothing switches it" + FOLLOW
    assert advice(SPLIT, "lemonade") == "Lemonade takes K at launch: nothing switches it" + FOLLOW
    assert advice(SPLIT, "") == "llama-server takes K at launch: nothing switches it" + FOLLOW
    assert advice(SPLIT, "sim") == "llama-server takes K at launch: nothing switches it" + FOLLOW


def test_vllms_cut_off_is_one_below_the_level_where_speculation_stops_paying() -> None:
    # nospec from 4 requests on: speculation must stop once more than 3 run at once,
    # and vLLM's disable_by_batch_size is that largest batch that still speculates
    rows = [_row("idle@1", "fixed_4", 4), _row("idle@2", "fixed_1", 1), _row("idle@4", "nospec", 0)]
    assert advice(rows, "vllm") == (
        "vLLM can switch by itself: speculation pays below 4 concurrent requests only; add "
        '"disable_by_batch_size": 3 to --speculative-config (older versions: '
        "--speculative-disable-by-batch-size 3) where your version honours it: speculation "
        "stops when more than 3 requests run at once"
    )


def test_k_one_counts_as_speculation_for_the_cut_off() -> None:
    assert cutoff([_row("idle@1", "fixed_1", 1), _row("idle@2", "nospec", 0)]) == 2


def test_the_pick_in_words() -> None:
    assert pick_text(_row("idle@1", "nospec@t2", 0)) == "speculation off @t2"
    assert pick_text(_row("idle@1", "nospec", 0)) == "speculation off"
    assert pick_text(_row("idle@1", "fixed_3", 3)) == "fixed_3"
