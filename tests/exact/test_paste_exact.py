"""paste.py word for word: the setting for each actuator's form (llama-server's flags,
Lemonade's load body, the request body, vLLM's flags with a thread count, nothing to
paste), the advice in words, and every clause of the recommendation line (why a
smaller K, how far an undecided run got). The flag texts are llama-server's documented
spelling: --spec-type draft-simple --spec-draft-n-max K --spec-draft-n-min 0
--spec-draft-p-min P, threads as -t N -td N."""

from __future__ import annotations

from halospec_tui.paste import paste_setting, recommendation_line, setting_words
from halospec_tui.race import Interval
from halospec_tui.verdict import ArmLine, Verdict

SPEC_2 = "--spec-type draft-simple --spec-draft-n-max 2 --spec-draft-n-min 0 --spec-draft-p-min 0"
REQUEST_2 = 'request body: "speculative": {"n_max": 2, "n_min": 0, "p_min": 0}'


def test_llama_server_flags_with_and_without_speculation_and_threads() -> None:
    assert paste_setting(0, "llama-server") == (
        "llama-server flags: no speculation (no -md; --spec-type none)"
    )
    assert paste_setting(0, "llama-server", threads=2) == (
        "llama-server flags: no speculation (no -md; --spec-type none) -t 2 -td 2"
    )
    assert paste_setting(4, "llama-server", 0.5, threads=1) == (
        "llama-server flags: -md DRAFT.gguf --spec-type draft-simple --spec-draft-n-max 4 "
        "--spec-draft-n-min 0 --spec-draft-p-min 0.5 -t 1 -td 1"
    )


def test_lemonades_load_body_and_the_request_body() -> None:
    assert paste_setting(3, "lemonade-load", threads=4) == (
        'Lemonade /api/v1/load: {"llamacpp_args": "--spec-type draft-simple '
        '--spec-draft-n-max 3 --spec-draft-n-min 0 --spec-draft-p-min 0 -t 4 -td 4"}'
    )
    assert paste_setting(16, "lemonade-load", 0.25) == (
        'Lemonade /api/v1/load: {"llamacpp_args": "--spec-type draft-simple '
        '--spec-draft-n-max 16 --spec-draft-n-min 0 --spec-draft-p-min 0.25"}'
    )
    assert paste_setting(16, "request", 0.75) == (
        'request body: "speculative": {"n_max": 16, "n_min": 0, "p_min": 0.75}'
    )


def test_an_actuator_that_never_reached_the_server_has_nothing_to_paste() -> None:
    assert paste_setting(2, "") == "K never reached the server through actuator ?: nothing to paste"
    # the original's field, even on a server whose flags this tool writes
    assert paste_setting(2, "field:speculative_draft_length", 0.0, "sglang") == (
        "K never reached the server through actuator field:speculative_draft_length: "
        "nothing to paste"
    )


def test_vllms_flags_carry_the_thread_count_in_words() -> None:
    vllm = "vLLM flags: --speculative-config '{\"model\": \"DRAFT\", \"num_speculative_tokens\": 4}'"
    assert paste_setting(4, "request", 0.0, "vllm", 1) == f"{vllm} (with 1 thread)"
    assert paste_setting(4, "lemonade-load", 0.0, "vllm", 8) == f"{vllm} (with 8 threads)"


def test_the_runs_own_launch_command_carries_k_p_min_and_the_thread_count() -> None:
    launch = "launch:srv --port {port} --n {k} --p {p_min} -t {threads}"
    # the launch command wins over the server kind's flags
    assert paste_setting(16, launch, 0.75, "vllm", 4) == (
        "launch command: srv --port {port} --n 16 --p 0.75 -t 4"
    )


def test_vllm_says_it_has_no_p_min() -> None:
    assert paste_setting(16, "request", 0.5, "vllm") == (
        "vLLM flags: --speculative-config '{\"model\": \"DRAFT\", \"num_speculative_tokens\": 16}' "
        "(vLLM has no draft-confidence cutoff like p_min 0.5)"
    )


def test_the_setting_in_words() -> None:
    assert setting_words(0) == "turn speculation off"
    assert setting_words(0, 0.5) == "turn speculation off"  # no drafts: no cutoff to say
    assert setting_words(0, threads=1) == "turn speculation off and use 1 thread"
    assert setting_words(0, threads=3) == "turn speculation off and use 3 threads"
    assert setting_words(4) == "use K = 4"
    assert setting_words(4, 0.5) == "use K = 4 with p_min 0.5"
    assert setting_words(4, threads=1) == "use K = 4 with 1 thread"
    assert setting_words(16, 0.75, 2) == "use K = 16 with p_min 0.75 and 2 threads"


# -- the recommendation line ---------------------------------------------------------------
def arm(name: str, k: int | None, epsilon: float | None = None) -> ArmLine:
    return ArmLine(arm=name, k=k, n=8, rounds=4, tps=Interval(40.0, 36.0, 44.0), mean_ms=None,
                   p95_ms=None, server_tps=None, cv=None, epsilon=epsilon)  # fmt: skip


def verdict(best: str | None, rec: str | None, lines: list[ArmLine], decisive: bool = True,
            interleaved: bool = True, tolerance: float = 0.02) -> Verdict:  # fmt: skip
    k = next((a.k for a in lines if a.arm == rec), None)
    return Verdict(tuple(lines), best, decisive, rec, k, tolerance, "", interleaved)


def test_no_pick_and_an_adaptive_pick_have_nothing_to_paste() -> None:
    assert recommendation_line(verdict(None, None, [arm("fixed_2", 2)]), "request") == (
        "no arm has a successful step: nothing to recommend"
    )
    v = verdict("adaptive:model", "adaptive:model", [arm("adaptive:model", None)])
    assert recommendation_line(v, "request") == (
        "fastest: adaptive:model (an adaptive arm: no fixed setting to paste)"
    )


def test_the_pick_carries_its_p_min_and_thread_count_to_the_flags() -> None:
    v = verdict("pmin:0.5", "pmin:0.5", [arm("pmin:0.5", 16)])
    assert recommendation_line(v, "llama-server") == (
        "use K = 16 with p_min 0.5; llama-server flags: -md DRAFT.gguf --spec-type draft-simple "
        "--spec-draft-n-max 16 --spec-draft-n-min 0 --spec-draft-p-min 0.5"
    )
    v = verdict("fixed_2@t2", "fixed_2@t2", [arm("fixed_2@t2", 2)])
    assert recommendation_line(v, "llama-server") == (
        f"use K = 2 with 2 threads; llama-server flags: -md DRAFT.gguf {SPEC_2} -t 2 -td 2"
    )


def test_a_smaller_k_within_the_tolerance_says_why() -> None:
    v = verdict("fixed_4", "fixed_2", [arm("fixed_4", 4), arm("fixed_2", 2)], tolerance=0.015)
    assert recommendation_line(v, "request") == (
        "use K = 2 (within 1.5% of the fastest, fixed_4: the smallest K certified so drafts "
        f"least for the same speed); {REQUEST_2}"
    )
    # the same K as the fastest, on a thread count of its own
    v = verdict("fixed_2", "fixed_2@t2", [arm("fixed_2", 2), arm("fixed_2@t2", 2)])
    assert recommendation_line(v, "request") == (
        "use K = 2 with 2 threads (within 2% of the fastest, fixed_2: the same K on fewer "
        f"threads); {REQUEST_2}"
    )
    # a smaller K on threads of its own is the smaller K, not fewer threads
    v = verdict("fixed_4", "fixed_2@t2", [arm("fixed_4", 4), arm("fixed_2@t2", 2)])
    assert recommendation_line(v, "request").startswith(
        "use K = 2 with 2 threads (within 2% of the fastest, fixed_4: the smallest K certified"
    )
    # a smaller K on the same threads is the smaller K, not fewer threads
    v = verdict("fixed_4@t2", "fixed_2@t2", [arm("fixed_4@t2", 4), arm("fixed_2@t2", 2)])
    assert recommendation_line(v, "request").startswith(
        "use K = 2 with 2 threads (within 2% of the fastest, fixed_4@t2: the smallest K certified"
    )


def test_an_undecided_run_says_how_far_it_got() -> None:
    lines = [arm("fixed_4", 4), arm("fixed_2", 2, epsilon=0.125)]
    v = verdict("fixed_4", "fixed_2", lines, decisive=False)
    assert recommendation_line(v, "request") == (
        "use K = 2 (within 2% of the fastest, fixed_4: the smallest K certified so drafts least "
        f"for the same speed) [not decisive: certified within 12.5% of the fastest]; {REQUEST_2}"
    )
    v = verdict("fixed_2", "fixed_2", [arm("fixed_2", 2), arm("fixed_4", 4)], decisive=False)
    assert recommendation_line(v, "request") == (
        f"use K = 2 [not decisive: nothing certified yet]; {REQUEST_2}"
    )
    v = verdict("fixed_2", "fixed_2", [arm("fixed_2", 2, epsilon=0.5)], decisive=False,
                interleaved=False)  # fmt: skip
    assert recommendation_line(v, "request") == (
        f"use K = 2 [not decisive: a sequential run decides nothing]; {REQUEST_2}"
    )
