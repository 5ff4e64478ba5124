"""The text summary's tables, exactly: the classic table's adaptive and winner lines,
the drafting table (its width follows the longest arm), adapting, regret, the knob
line, and the verdict of each condition followed by the policy."""

from __future__ import annotations

import pytest

from halospec_tui.events import KnobVerdict
from halospec_tui.policy import Policy
from halospec_tui.results.export_policy import policy_lines
from halospec_tui.results.export_text import (
    adapting_lines,
    classic_table,
    extras_table,
    regret_lines,
    summary_text,
    verdict_lines,
    verdict_section,
)
from halospec_tui.results.report import Report
from halospec_tui.stats import ArmSummary, PhaseRegret
from halospec_tui.verdict import Decision, Verdict

FIXED = ArmSummary("fixed_2", 4, 4, 0, 1.0, 200.0, 190, 300, 100, 310, 81.6, 320.0, 366.3, 0,
                   None, drafted=30, accepted=24, acceptance=0.8, server_tps=812.5, reloads=2,
                   reload_ms=450)  # fmt: skip
LONG = ArmSummary("adaptive:model@t16", 2, 2, 0, 1.0, 50.0, 50, 50, 50, 50, 0.0, 250.04, 75.0,
                  3, None, adapting_ms=300, throughput_incl=240.96)  # fmt: skip
SHORT = ArmSummary("adaptive", 6, 6, 0, 1.0, 50.0, 50, 50, 50, 50, 0.0, 1280.0, 75.0, 1, 6)
KNOB = KnobVerdict("no-effect", "K changed nothing")


def test_the_drafting_table_widens_to_the_longest_arm_and_ends_with_the_knob() -> None:
    r = Report((FIXED, LONG), None, None, KNOB,
               class_regret=(PhaseRegret("open", "fixed_2", 100.0, 150.0, "adaptive:model@t16"),))  # fmt: skip
    assert extras_table(r).split("\n") == [
        "",
        "mode                 drafted  accepted  accept%  srv tok/s  reloads  reload ms",
        "fixed_2                   30        24     80.0      812.5        2        450",
        "adaptive:model@t16         -         -        -          -        0          0",
        "",
        "adaptive:model@t16: 3 K changes, 300 ms reloading for them; 250.0 tok/s without,"
        " 241.0 tok/s with them",
        "",
        "adaptive:model@t16 vs best fixed on open prompts: 150.0 ms vs 100.0 ms (fixed_2),"
        " regret +50.0%",
        "",
        "[WARNING] K changed nothing",
    ]


def test_without_adaptive_arms_or_regret_the_drafting_table_goes_straight_to_the_knob() -> None:
    for status, marker in (("effective", "OK"), ("unverified", "NOTE"), ("no-effect", "WARNING")):
        r = Report((FIXED,), None, None, KnobVerdict(status, "m"))
        assert extras_table(r).split("\n") == [
            "",
            "mode         drafted  accepted  accept%  srv tok/s  reloads  reload ms",
            "fixed_2           30        24     80.0      812.5        2        450",
            "",
            f"[{marker}] m",
        ]
    assert extras_table(Report((), None, None, KNOB)).split("\n")[1] == (
        "mode         drafted  accepted  accept%  srv tok/s  reloads  reload ms"
    )


def test_phase_regret_comes_before_prompt_class_regret() -> None:
    r = Report((), None, None, KNOB,
               regret=(PhaseRegret("burst", "fixed_4", 80.0, 100.0, "adaptive"),
                       PhaseRegret("load", "fixed_4", 0.0, 100.0, "adaptive")),
               class_regret=(PhaseRegret("code", "fixed_1", 200.0, 150.0),))  # fmt: skip
    assert regret_lines(r) == [
        "adaptive vs best fixed in burst: 100.0 ms vs 80.0 ms (fixed_4), regret +25.0%",
        "adaptive vs best fixed in load: 100.0 ms vs 0.0 ms (fixed_4), regret n/a",
        "adaptive vs best fixed on code prompts: 150.0 ms vs 200.0 ms (fixed_1), regret -25.0%",
    ]
    assert extras_table(r).split("\n")[2:7] == ["", *regret_lines(r), ""]


def test_adapting_lists_only_adaptive_arms() -> None:
    r = Report((FIXED, SHORT, LONG), None, None, KNOB)
    assert adapting_lines(r) == [
        "adaptive: 1 K changes, 0 ms reloading for them; 1280.0 tok/s without, - tok/s with them",
        "adaptive:model@t16: 3 K changes, 300 ms reloading for them; 250.0 tok/s without,"
        " 241.0 tok/s with them",
    ]


def test_the_classic_table_says_how_each_adaptive_arm_settled_and_who_won() -> None:
    r = Report((FIXED, SHORT, LONG), "adaptive", 75.0, KNOB)
    lines = classic_table(r).split("\n")
    assert lines[6:] == [
        "fixed_2         4    100.0%         0     200.0 ms       190 ms       300 ms     100 ms"
        "     310 ms      81.6 ms    320.0 tok/s      366.3",
        "adaptive        6    100.0%         0      50.0 ms        50 ms        50 ms      50 ms"
        "      50 ms       0.0 ms   1280.0 tok/s       75.0",
        "adaptive:model@t16      2    100.0%         0      50.0 ms        50 ms        50 ms"
        "      50 ms      50 ms       0.0 ms    250.0 tok/s       75.0",
        "",
        "[Adaptive Behavior] draft_length changes=1 | converged_at_step=6 (k=5)",
        "",
        "[Adaptive Behavior] draft_length changes=3 | no convergence within run (k=5)",
        "",
        "Winner (lowest SLO-aware score): adaptive at 75.0",
    ]
    # a winner without a score (or none at all) prints no winner line
    for winner, score in (("adaptive", None), (None, 75.0)):
        assert classic_table(Report((FIXED,), winner, score, KNOB)).split("\n")[-1].startswith(
            "fixed_2 "
        )


def test_the_summary_is_the_classic_table_then_the_drafting_table() -> None:
    r = Report((FIXED,), "fixed_2", 366.3, KNOB)
    text = summary_text(r)
    assert text == classic_table(r) + "\n" + extras_table(r) + "\n"
    assert "\nWinner (lowest SLO-aware score): fixed_2 at 366.3\n\nmode         drafted" in text
    assert text.endswith("\n\n[WARNING] K changed nothing\n")


DECISION = Decision(rounds=3, requests=12, measured=12, settle=0, seconds=None, dropped=())


def _v(statement: str) -> Verdict:
    return Verdict((), best="fixed_2", decisive=True, recommended="fixed_2", recommended_k=2,
                   tolerance=0.02, statement=statement, interleaved=True)  # fmt: skip


def test_a_run_with_conditions_has_a_verdict_per_condition_then_the_policy() -> None:
    policy = Policy(rows=(), static=None, static_k=None, mean_regret=None, worst=None,
                    advice="one setting serves every condition: nothing to switch",
                    tolerance=0.02)  # fmt: skip
    idle, cpu = _v("idle wins"), _v("cpu wins")
    r = Report((), None, None, KNOB, decision=DECISION, actuator="llama-server",
               nospec_drafted=5, server_kind="vllm",
               conditions=(("idle@1", idle), ("cpu@1", cpu)), policy=policy)  # fmt: skip
    first = verdict_lines(idle, DECISION, "llama-server", 5, "vllm", at="idle@1")
    second = verdict_lines(cpu, DECISION, "llama-server", 5, "vllm", at="cpu@1")
    out = verdict_section(r)
    assert out == first + second + policy_lines(policy)
    assert first[1].startswith("Verdict at idle@1 (tokens/s")
    assert second[1].startswith("Verdict at cpu@1 (tokens/s")
    assert first[-2:] == [
        "WARNING: nospec drafted 5 tokens: speculation was not switched off",
        first[-1],
    ] and first[-1] == verdict_lines(idle, DECISION, "llama-server", 5, "vllm")[-1]
    assert first[-1] != verdict_lines(idle, DECISION, "", 5, "")[-1]  # the actuator tells
    # one verdict of the whole run: only it, with the policy after it
    whole = Report((), None, None, KNOB, verdict=idle, decision=DECISION, actuator="x",
                   conditions=(("idle@1", idle),), policy=policy)  # fmt: skip
    assert verdict_section(whole) == verdict_lines(idle, DECISION, "x", None) + policy_lines(policy)
    assert verdict_section(Report((), None, None, KNOB, conditions=(("idle@1", idle),))) == []


def test_the_recommendation_pastes_the_flags_of_the_server_the_run_used() -> None:
    v = _v("fixed_2 wins")
    on_vllm = Report((), None, None, KNOB, verdict=v, decision=DECISION, actuator="llama-server",
                     server_kind="vllm")  # fmt: skip
    last = verdict_section(on_vllm)[-1]
    assert last.startswith("recommendation: use K = 2; vLLM flags: --speculative-config ")
    plain = Report((), None, None, KNOB, verdict=v, decision=DECISION, actuator="llama-server")
    assert verdict_section(plain)[-1].startswith("recommendation: use K = 2; llama-server flags: ")


def test_a_classic_row_of_the_wrong_number_of_cells_is_an_error_not_a_cut_row() -> None:
    from halospec_tui.results.export_text import _row

    with pytest.raises(ValueError):
        _row(["fixed_1", "10", "100.0", "0", "1", "2", "3", "4", "5", "6", "7"])  # 11 of 12
    with pytest.raises(ValueError):
        _row(["fixed_1", "10", "100.0", "0", "1", "2", "3", "4", "5", "6", "7", "8", "9"])
    assert _row(["m", "1", "2", "3", "4", "5", "6", "7", "8", "9", "10", "11"]) == (
        "m               1        2%         3            4            5            6"
        "          7          8            9             10         11"
    )
