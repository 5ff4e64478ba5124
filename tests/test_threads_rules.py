"""The rules of the server's thread count as a second dimension of the arms, pure: the
plan's crossing (--threads) and its refusals, the restart decision, the race's tie
order among thread variants, and what the verdict, the policy and the paste line say.
The actuators and the command line are in test_threads.py."""

from __future__ import annotations

import sys

import pytest

from halospec_tui.arms import is_nospec
from halospec_tui.launch_template import parse_templates
from halospec_tui.launched import needs_restart
from halospec_tui.paste import paste_setting, recommendation_line, setting_words
from halospec_tui.plan import PlanError, customise, named_plan
from halospec_tui.policy import PolicyRow, advice, best_static, pick_text
from halospec_tui.race import arm_label, pick
from halospec_tui.race_rows import arm_order, screen_arms
from halospec_tui.results.export_text import fmt_ratio, nospec_line
from halospec_tui.stats import StepSample
from halospec_tui.verdict import decide, nospec_reference

PY = sys.executable
SPEC4 = "--spec-type draft-simple --spec-draft-n-max 4 --spec-draft-n-min 0 --spec-draft-p-min 0"
T_SPEC = f"{PY} serve --port {{port}} --k {{k}} --threads {{threads}}"
T_NOSPEC = f"{PY} serve --port {{port}} --threads {{threads}}"

# -- the plan ---------------------------------------------------------------------------
def test_threads_cross_the_modes_in_the_order_given_and_keep_their_steps():
    plan = customise(named_plan("quick"), arms=["nospec", "fixed_2", "adaptive"], threads=(2, 1))
    assert [(a.name, a.threads, a.warmup_steps, a.measured_steps) for a in plan.arms] == [
        ("nospec@t2", 2, 2, 4), ("nospec@t1", 1, 2, 4), ("fixed_2@t2", 2, 2, 4),
        ("fixed_2@t1", 1, 2, 4), ("adaptive@t2", 2, 2, 8), ("adaptive@t1", 1, 2, 8),
    ]  # fmt: skip
    assert plan.threads == (2, 1)
    # without --modes: the plan's own arms, each crossed
    tune = customise(named_plan("tune"), threads=(1,))
    assert [a.name for a in tune.arms] == ["nospec@t1"] + [f"fixed_{k}@t1" for k in range(1, 9)]


@pytest.mark.parametrize(
    "plan,arms,threads,said",
    [
        ("quick", ["nospec", "fixed_2@t1"], (1, 2),
         "--threads crosses every arm with each thread count: arm fixed_2@t1 has its own; "
         "drop --threads or the @tN of the arms"),
        ("quick", ["fixed_2"], (0,), "--threads must be at least 1 (got 0)"),
        ("quick", ["fixed_2"], (1, 257), "--threads must be at most 256 (got 257)"),
        ("tune", ["fixed_2"], (2, 2), "--threads lists a thread count twice"),
        ("classic", ["fixed_2"], (1,),
         "--threads adds arms: the classic plan keeps the original's; use --plan tune or quick"),
    ],
)  # fmt: skip
def test_threads_that_cannot_run_are_refused_by_the_plan(plan, arms, threads, said):
    with pytest.raises(PlanError) as e:
        customise(named_plan(plan), arms=arms, threads=threads)
    assert str(e.value) == said


def test_explicit_thread_arms_need_no_flag_and_the_screen_leaves_them_to_the_race():
    plan = customise(named_plan("tune"), arms=["nospec@t1", "fixed_2@t1", "fixed_2@t2"])
    assert [a.threads for a in plan.arms] == [1, 1, 2] and plan.threads == ()
    # the screen's model has no term for threads: it screens plain arms only
    crossed = [a.name for a in customise(named_plan("tune"), threads=(1, 2)).arms]
    assert screen_arms(crossed) is None
    plain = [f"fixed_{k}" for k in range(1, 9)]
    assert screen_arms(["nospec", *plain, "fixed_4@t1"]) == ("nospec", "fixed_4", "fixed_8")


# -- the restart decision -------------------------------------------------------------------
def test_a_change_of_k_p_min_or_threads_is_a_restart():
    running = (4, 0.0, 1)
    assert not needs_restart(running, (4, 0.0, 1), alive=True)
    assert needs_restart(running, (4, 0.0, 2), alive=True)  # threads
    assert needs_restart(running, (4, 0.0, None), alive=True)  # back to the server's own
    assert needs_restart(running, (2, 0.0, 1), alive=True)  # K
    assert needs_restart(running, (4, 0.5, 1), alive=True)  # p_min
    assert needs_restart(running, (4, 0.0, 1), alive=False)  # not running
    assert needs_restart(None, (4, 0.0, None), alive=False)


# -- the decision and what to paste -----------------------------------------------------------
def test_among_equal_k_the_race_picks_fewer_threads_whatever_the_speed():
    ks = {"fixed_4@t2": 4, "fixed_4@t1": 4, "fixed_4": 4, "fixed_6@t1": 6}
    speed = {"fixed_4@t2": 3.0, "fixed_4@t1": 1.0, "fixed_4": 5.0, "fixed_6@t1": 9.0}
    assert pick(list(ks), ks, speed) == "fixed_4@t1"
    assert pick(["fixed_4@t2", "fixed_4"], ks, speed) == "fixed_4@t2"  # a count before the server's own
    assert pick(["fixed_6@t1", "fixed_4@t2"], ks, speed) == "fixed_4@t2"  # K first
    assert pick(["fixed_4", "pmin:0.5"], {"fixed_4": 4, "pmin:0.5": 4}, {"fixed_4": 1.0, "pmin:0.5": 2.0}) == "pmin:0.5"
    ad = {"adaptive@t2": None, "adaptive@t1": None}
    assert pick(list(ad), ad, {"adaptive@t2": 2.0, "adaptive@t1": 1.0}) == "adaptive@t1"
    # the static K of the policy: the same order on equal means
    assert best_static([{"fixed_4@t2": 1.0, "fixed_4@t1": 1.0, "fixed_4@t10": 1.0}]) == "fixed_4@t1"


def test_the_race_orders_its_arms_by_k_then_threads_whatever_the_rows_order():
    rows = ["fixed_4@t2", "adaptive", "fixed_4@t10", "nospec@t1", "fixed_4", "fixed_4@t1",
            "fixed_2", "adaptive@t1"]  # fmt: skip
    assert arm_order(rows) == ["nospec@t1", "fixed_2", "fixed_4@t1", "fixed_4@t2", "fixed_4@t10",
                               "fixed_4", "adaptive@t1", "adaptive"]  # fmt: skip


def _rows() -> list[StepSample]:
    # fixed_4@t2 answers in 99 ms, fixed_4@t1 in 100 ms (1% slower: within 2%), nospec
    # in 300 ms, every round: the race certifies both K 4 arms and picks the one thread
    return [StepSample(m, k, True, lat, 64, round=r) for r in range(1, 7)
            for m, k, lat in (("nospec@t1", 0, 300), ("fixed_4@t1", 4, 100), ("fixed_4@t2", 4, 99))]  # fmt: skip


def test_the_recommendation_says_the_thread_count_and_pastes_it():
    v = decide(_rows())
    assert (v.best, v.recommended, v.recommended_k, v.decisive) == ("fixed_4@t2", "fixed_4@t1", 4, True)
    why = "use K = 4 with 1 thread (within 2% of the fastest, fixed_4@t2: the same K on fewer threads); "
    assert recommendation_line(v, "llama-server") == (
        why + f"llama-server flags: -md DRAFT.gguf {SPEC4} -t 1 -td 1"
    )
    assert recommendation_line(v, "lemonade-load") == (
        why + f'Lemonade /api/v1/load: {{"llamacpp_args": "{SPEC4} -t 1 -td 1"}}'
    )
    launch = parse_templates(T_SPEC, T_NOSPEC).actuator_name()
    assert recommendation_line(v, launch) == (
        why + f"launch command: {PY} serve --port {{port}} --k 4 --threads 1"
    )


def test_setting_words_and_paste_lines_for_each_kind_of_arm():
    assert setting_words(0) == "turn speculation off"
    assert setting_words(0, 0.0, 2) == "turn speculation off and use 2 threads"
    assert setting_words(4, 0.0, 1) == "use K = 4 with 1 thread"
    assert setting_words(16, 0.5, 3) == "use K = 16 with p_min 0.5 and 3 threads"
    assert setting_words(16, 0.5) == "use K = 16 with p_min 0.5"
    assert paste_setting(0, "llama-server", 0.0, "", 2) == (
        "llama-server flags: no speculation (no -md; --spec-type none) -t 2 -td 2"
    )
    assert paste_setting(2, "llama-server", 0.0, "vllm", 1) == (
        "vLLM flags: --speculative-config '{\"model\": \"DRAFT\", \"num_speculative_tokens\": 2}' "
        "(with 1 thread)"
    )


def test_the_policy_table_shows_the_thread_count_of_each_pick():
    def row(arm: str) -> PolicyRow:
        return PolicyRow("idle@1", arm, arm, 0, None, (), True, None, "", None)

    assert [pick_text(row(a)) for a in ("nospec@t1", "nospec", "fixed_4@t2")] == [
        "speculation off @t1", "speculation off", "fixed_4@t2",
    ]  # fmt: skip
    # picks that differ: the server is reloaded with the row's K and thread count
    assert advice([row("fixed_4@t2"), row("nospec@t1")], "llama-server", 812.4) == (
        "llama-server takes K and the thread count at launch: nothing switches them at run "
        "time; follow the table by reloading the server with the row's setting when the "
        "condition changes (a reload took 812 ms in this run), or race an adaptive arm "
        "(adaptive:model), which switches with its reload cost counted"
    )


def test_speculation_is_compared_with_the_fastest_arm_that_does_not_speculate():
    # nospec@t2 (310 ms) is slower than nospec@t1 (300 ms): speculation is set against
    # nospec@t1; fixed_4@t2 is the fastest speculating arm, 300 / 99 = 3.03x
    v = decide(_rows() + [StepSample("nospec@t2", 0, True, 310, 64, round=r) for r in range(1, 7)])
    assert (v.vs_nospec_arm, v.vs_nospec_ref) == ("fixed_4@t2", "nospec@t1")
    assert v.vs_nospec is not None and v.vs_nospec.value == pytest.approx(300 / 99)
    assert nospec_reference({"nospec@t1": 5.0, "nospec@t2": 6.0, "fixed_2": 9.0}) == "nospec@t2"
    assert nospec_reference({"fixed_2": 9.0}) is None
    assert nospec_reference({"nospec": 1.0}) == "nospec"
    assert nospec_line(v) == (
        f"speculation (fixed_4@t2): {fmt_ratio(v.vs_nospec)} faster than nospec@t1"
    )
    # a sequential run: the same reference
    seq = decide([StepSample(m, k, True, lat, 64) for m, k, lat in
                  (("nospec@t1", 0, 300), ("nospec@t2", 0, 200), ("fixed_2@t1", 2, 100))] * 3)  # fmt: skip
    assert (seq.vs_nospec_arm, seq.vs_nospec_ref) == ("fixed_2@t1", "nospec@t2")


def test_the_race_statement_names_the_nospec_arm_of_a_thread_count():
    assert arm_label("nospec", 0) == "no speculation (K = 0)"
    assert arm_label("nospec@t1", 0) == "no speculation (K = 0, nospec@t1)"
    assert arm_label("fixed_4@t1", 4) == "K = 4 (fixed_4@t1)"
    assert [is_nospec(a) for a in ("nospec", "nospec@t2", "fixed_2@t1", "adaptive", "x")] == [
        True, True, False, False, False,
    ]  # fmt: skip
