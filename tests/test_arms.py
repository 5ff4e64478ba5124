"""Arm names: parsed once into an `Arm`, ASCII only, one canonical spelling, no twins.

Each expectation is written from the README's promises (arm names, K 1..16, p_min
strictly between 0 and 1) and the exact messages the CLI prints.
"""

from __future__ import annotations

import pytest

from halospec_tui.arms import (
    ADAPTIVE_KINDS,
    K_LIMIT,
    PMIN_N_MAX,
    THREADS_MAX,
    WARMUP_K,
    Arm,
    ArmError,
    arm_of,
    canonical,
    fixed_k,
    is_adaptive,
    lean_key,
    p_min_of,
    parse_arm,
    parse_arms,
    threads_of,
    with_threads,
)

HELP = (
    "nospec, fixed_K (K in 1..16), pmin:P (0 < P < 1), adaptive, adaptive:model or "
    "adaptive:bandit"
)


def _refused(text: str) -> str:
    with pytest.raises(ArmError) as e:
        parse_arm(text)
    return str(e.value)


def test_the_limits_the_readme_promises():
    assert K_LIMIT == 16 and PMIN_N_MAX == 16 and WARMUP_K == 4
    assert ADAPTIVE_KINDS == ("model", "bandit")


@pytest.mark.parametrize(
    "text,arm,name",
    [
        ("nospec", Arm("nospec", 0), "nospec"),
        ("fixed_1", Arm("fixed", 1), "fixed_1"),
        ("fixed_16", Arm("fixed", 16), "fixed_16"),
        ("fixed_007", Arm("fixed", 7), "fixed_7"),
        ("fixed_02", Arm("fixed", 2), "fixed_2"),
        ("pmin:0.75", Arm("pmin", 16, p_min=0.75), "pmin:0.75"),
        ("pmin:0.50", Arm("pmin", 16, p_min=0.5), "pmin:0.5"),
        ("pmin:.5", Arm("pmin", 16, p_min=0.5), "pmin:0.5"),
        ("pmin:5e-1", Arm("pmin", 16, p_min=0.5), "pmin:0.5"),
        ("pmin:0.001", Arm("pmin", 16, p_min=0.001), "pmin:0.001"),
        ("pmin:0.999", Arm("pmin", 16, p_min=0.999), "pmin:0.999"),
        ("adaptive", Arm("adaptive"), "adaptive"),
        ("adaptive:model", Arm("adaptive", controller="model"), "adaptive:model"),
        ("adaptive:bandit", Arm("adaptive", controller="bandit"), "adaptive:bandit"),
    ],
)
def test_every_spelling_parses_to_one_canonical_arm(text, arm, name):
    parsed = parse_arm(text)
    assert parsed == arm and parsed.name == name and str(parsed) == name
    assert parse_arm(name) == arm  # the canonical name reads back as the same arm
    assert canonical(text) == name


def test_what_each_kind_of_arm_runs():
    assert [(a.adaptive, a.warmup_k, a.setting_k, a.p_min) for a in (
        parse_arm("nospec"), parse_arm("fixed_3"), parse_arm("pmin:0.25"),
        parse_arm("adaptive"), parse_arm("adaptive:bandit"),
    )] == [
        (False, 0, 0, 0.0), (False, 3, 3, 0.0), (False, 16, 16, 0.25),
        (True, 4, None, 0.0), (True, 4, None, 0.0),
    ]  # fmt: skip


def test_a_draft_length_outside_1_to_16_is_refused():
    assert _refused("fixed_0") == "draft length 0 in 'fixed_0' is outside 1..16"
    assert _refused("fixed_17") == "draft length 17 in 'fixed_17' is outside 1..16"


@pytest.mark.parametrize(
    "text",
    ["fixed_", "fixed_x", "fixed_-1", "fixed_+2", "fixed_4 ", " fixed_4", "fixed_4\n",
     "Fixed_4", "NOSPEC", "adaptive ", "fixed_1_000", "fixed_2.0", "PMIN:0.5", ""],
)  # fmt: skip
def test_unknown_names(text):
    assert _refused(text) == f"unknown arm {text!r}: use {HELP}"


@pytest.mark.parametrize("text", ["fixed_٤", "fixed_２", "pmin:0.５", "nospec\u200b", "adaptive:modèl"])
def test_non_ascii_names_are_refused_never_read_as_digits(text):
    assert _refused(text) == f"arm {text!r} is not ASCII: use {HELP}"


@pytest.mark.parametrize(
    "text", ["adaptive:", "adaptive:threshold", "adaptive:Model", "adaptive:x:model",
             "adaptive:model:x", "adaptive:bandit "],
)  # fmt: skip
def test_unknown_adaptive_arm(text):
    assert _refused(text) == (
        f"unknown adaptive arm {text!r}: use adaptive, adaptive:model, adaptive:bandit"
    )


@pytest.mark.parametrize(
    "text",
    ["pmin:0", "pmin:0.0", "pmin:1", "pmin:1.0", "pmin:1.5", "pmin:-0.5", "pmin:nan",
     "pmin:inf", "pmin:", "pmin:abc", "pmin:0.5:0.25", "pmin:0.5:x", "pmin: 0.5", "pmin:0.5 ",
     "pmin:0_5", "pmin:0x1", "pmin:1e999", "pmin:+0.5"],
)  # fmt: skip
def test_pmin_outside_the_open_interval_or_not_a_plain_number_is_refused(text):
    assert _refused(text) == f"{text!r}: p_min must be a number between 0 and 1, e.g. pmin:0.75"


def test_a_list_names_each_arm_once_in_any_spelling():
    assert parse_arms(["fixed_2", "nospec", "pmin:0.5"]) == (
        Arm("fixed", 2), Arm("nospec", 0), Arm("pmin", 16, p_min=0.5),
    )  # fmt: skip
    for names, message in (
        (["fixed_02", "fixed_2"], "'fixed_02' and 'fixed_2' are the same arm, fixed_2"),
        (["pmin:0.5", "nospec", "pmin:0.50"], "'pmin:0.5' and 'pmin:0.50' are the same arm, pmin:0.5"),
        (["fixed_1", "fixed_1"], "'fixed_1' is the same arm, fixed_1"),
    ):
        with pytest.raises(ArmError) as e:
            parse_arms(names)
        assert str(e.value) == f"{message}: list each arm once"


def test_names_read_from_a_file():
    # a file may hold any name: one that is no arm keeps its name and has no K
    assert arm_of("fixed_03") == Arm("fixed", 3) and arm_of("m1") is None
    assert canonical("m1") == "m1" and canonical("pmin:0.250") == "pmin:0.25"
    assert [fixed_k(n) for n in ("nospec", "fixed_5", "pmin:0.5", "adaptive", "x")] == [
        0, 5, 16, None, None,
    ]  # fmt: skip
    assert [is_adaptive(n) for n in ("adaptive", "adaptive:model", "adaptiveX", "fixed_1")] == [
        True, True, False, False,
    ]  # fmt: skip
    assert [p_min_of(n) for n in ("pmin:0.75", "fixed_2", "pmin:x")] == [0.75, 0.0, 0.0]


# -- the thread count, @tN ---------------------------------------------------------------
@pytest.mark.parametrize(
    "text,arm,name",
    [
        ("fixed_4@t1", Arm("fixed", 4, threads=1), "fixed_4@t1"),
        ("fixed_04@t2", Arm("fixed", 4, threads=2), "fixed_4@t2"),
        ("nospec@t2", Arm("nospec", 0, threads=2), "nospec@t2"),
        ("pmin:0.750@t1", Arm("pmin", 16, p_min=0.75, threads=1), "pmin:0.75@t1"),
        ("adaptive@t3", Arm("adaptive", threads=3), "adaptive@t3"),
        ("adaptive:model@t1", Arm("adaptive", controller="model", threads=1), "adaptive:model@t1"),
        ("fixed_16@t256", Arm("fixed", 16, threads=256), "fixed_16@t256"),
        ("fixed_1@t10", Arm("fixed", 1, threads=10), "fixed_1@t10"),
    ],
)
def test_any_arm_may_carry_a_thread_count(text, arm, name):
    parsed = parse_arm(text)
    assert parsed == arm and parsed.name == name and parse_arm(name) == arm
    assert canonical(text) == name and threads_of(text) == arm.threads
    assert (fixed_k(text), p_min_of(text)) == (arm.k, arm.p_min)  # K and p_min as without


@pytest.mark.parametrize(
    "text,suffix,example",
    [
        ("fixed_4@t0", "@t0", "fixed_4@t1"),
        ("fixed_4@t01", "@t01", "fixed_4@t1"),
        ("fixed_4@t257", "@t257", "fixed_4@t1"),
        ("fixed_4@t", "@t", "fixed_4@t1"),
        ("fixed_4@t+1", "@t+1", "fixed_4@t1"),
        ("fixed_4@t-1", "@t-1", "fixed_4@t1"),
        ("fixed_4@t 1", "@t 1", "fixed_4@t1"),
        ("fixed_4@t1 ", "@t1 ", "fixed_4@t1"),
        ("fixed_4@t1.0", "@t1.0", "fixed_4@t1"),
        ("fixed_4@t1@t2", "@t1@t2", "fixed_4@t1"),
        ("fixed_04@t1e1", "@t1e1", "fixed_4@t1"),
        ("pmin:0.50@t0x1", "@t0x1", "pmin:0.5@t1"),
        ("fixed_4@", "@", "fixed_4@t1"),
        ("fixed_4@T1", "@T1", "fixed_4@t1"),
        ("fixed_4@x1", "@x1", "fixed_4@t1"),
        ("nospec@threads1", "@threads1", "nospec@t1"),
        ("adaptive:model@1", "@1", "adaptive:model@t1"),
        ("nospec@", "@", "nospec@t1"),
    ],
)
def test_a_suffix_other_than_at_t_1_to_256_is_refused_naming_the_canonical_form(
    text, suffix, example
):
    assert _refused(text) == (
        f"{text!r}: {suffix!r} is no thread count: write @tN, N a whole number 1..256 "
        f"without a leading zero, e.g. {example}"
    )


def test_the_arm_before_the_suffix_is_checked_as_any_arm():
    assert _refused("fixed_17@t1") == "draft length 17 in 'fixed_17' is outside 1..16"
    assert _refused("fixed_x@t1") == f"unknown arm 'fixed_x': use {HELP}"
    assert _refused("fixed_4@t٢") == f"arm 'fixed_4@t٢' is not ASCII: use {HELP}"


def test_thread_variants_are_different_arms_and_twins_are_refused():
    assert parse_arms(["fixed_4", "fixed_4@t1", "fixed_4@t2"]) == (
        Arm("fixed", 4), Arm("fixed", 4, threads=1), Arm("fixed", 4, threads=2),
    )  # fmt: skip
    with pytest.raises(ArmError) as e:
        parse_arms(["fixed_4@t1", "fixed_04@t1"])
    assert str(e.value) == (
        "'fixed_4@t1' and 'fixed_04@t1' are the same arm, fixed_4@t1: list each arm once"
    )


def test_threads_cross_every_arm_in_the_order_given():
    arms = parse_arms(["fixed_2", "nospec", "adaptive:model"])
    assert [a.name for a in with_threads(arms, [2, 1])] == [
        "fixed_2@t2", "fixed_2@t1", "nospec@t2", "nospec@t1",
        "adaptive:model@t2", "adaptive:model@t1",
    ]  # fmt: skip
    with pytest.raises(ArmError) as e:
        with_threads(parse_arms(["nospec", "fixed_2@t1"]), [1, 2])
    assert str(e.value) == (
        "--threads crosses every arm with each thread count: arm fixed_2@t1 has its own; "
        "drop --threads or the @tN of the arms"
    )


def test_the_tie_order_is_smaller_k_then_fewer_threads_then_the_servers_own():
    assert THREADS_MAX == 256
    names = ["fixed_4", "fixed_4@t2", "fixed_2@t8", "fixed_4@t1", "nospec@t2", "adaptive@t1",
             "fixed_4@t10"]  # fmt: skip
    keys = {n: lean_key(n, fixed_k(n)) for n in names}
    assert keys == {
        "fixed_4": (4, 257), "fixed_4@t2": (4, 2), "fixed_2@t8": (2, 8), "fixed_4@t1": (4, 1),
        "nospec@t2": (0, 2), "adaptive@t1": (10**6, 1), "fixed_4@t10": (4, 10),
    }  # fmt: skip
    assert sorted(names, key=keys.__getitem__) == [
        "nospec@t2", "fixed_2@t8", "fixed_4@t1", "fixed_4@t2", "fixed_4@t10", "fixed_4",
        "adaptive@t1",
    ]  # fmt: skip
