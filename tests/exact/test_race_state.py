"""The Race object round by round: what it holds before, during and after its rounds.

Expected numbers come from hand arithmetic or from `q_ref`, the confidence sequence's
factor written from its definition in plain floats (nothing from the module under test).
"""

import math

import pytest
from race_ref import fig, q_ref

from halospec_tui.race import Figures, Race, RaceConfig, RaceStatus, rounds_needed, statement

OWN = RaceConfig(pooled=False)
T_975_3 = 3.182446305284
T_95_3 = 2.353363434802  # t_.95 with 3 df (a 90% interval)


def sign(r: int) -> int:
    return 1 if r % 2 else -1


def test_before_any_round_the_race_knows_its_arms_and_nothing_else() -> None:
    race = Race({"nospec": 0, "fixed_2": 2})
    assert race.status == RaceStatus(0, ("nospec", "fixed_2"), (), False, None, None, None, ())
    assert race.last_table is None
    assert race.rounds_needed() is None
    assert race.pair("fixed_2", "nospec") is None
    assert statement(race.status, race.config) == "not decisive: no arm has a measured round yet"


def test_a_round_without_any_measured_block_recommends_nothing() -> None:
    race = Race({"a": 1, "b": 2})
    st = race.add_round(1, {"a": Figures(0.0, 900.0, 4), "b": Figures(12.0, 0.0, 4)})
    assert (st.round, st.best, st.recommended, st.recommended_k) == (1, None, None, None)
    assert (st.arms, st.pairs, st.dropped) == ((), (), ())
    assert st.epsilon == (("a", math.inf), ("b", math.inf))
    assert st.survivors == ("a", "b") and not st.decisive


def test_a_race_without_arms_says_nothing_and_does_not_fail() -> None:
    race = Race({})
    st = race.add_round(1, {"a": fig(10.0)})
    assert (st.round, st.survivors, st.recommended, st.epsilon) == (1, (), None, ())


def test_figures_as_plain_tuples_count_as_figures() -> None:
    rounds = [{"a": (100.0, 1000.0, 4), "b": (90.0, 1000.0, 2)},
              {"a": (110.0, 1000.0, 4), "b": (92.0, 1000.0, 2)},
              {"a": (105.0, 1000.0, 8), "b": (91.0, 1000.0, 2)}]  # fmt: skip
    plain, typed = Race({"a": 1, "b": 2}), Race({"a": 1, "b": 2})
    for r, figures in enumerate(rounds, start=1):
        st_plain = plain.add_round(r, figures)
        st_typed = typed.add_round(r, {a: Figures(*f) for a, f in figures.items()})
    assert st_plain == st_typed
    assert {a.arm: a.rounds for a in st_plain.arms} == {"a": 3, "b": 3}


def test_a_block_counts_for_any_positive_figures_and_not_without_steps() -> None:
    race = Race({"a": 1, "b": 2})
    # half a token in half a millisecond is 1000 tokens/s; a block of no steps is no block
    st = race.add_round(1, {"a": Figures(0.5, 0.5, 1), "b": Figures(10.0, 1000.0, 0)})
    assert [(a.arm, a.k, a.rounds) for a in st.arms] == [("a", 1, 1)]
    assert st.arms[0].tps.value == pytest.approx(1000.0, rel=1e-12)


def test_the_first_rounds_recommend_the_fastest_while_nothing_is_certified() -> None:
    race = Race({"fixed_1": 1, "fixed_3": 3})
    st = race.add_round(1, {"fixed_1": fig(80.0), "fixed_3": fig(100.0)})
    assert st.epsilon == (("fixed_1", math.inf), ("fixed_3", math.inf))
    assert (st.best, st.recommended, st.recommended_k) == ("fixed_3", "fixed_3", 3)
    text = statement(st, race.config, None)
    assert text == ("not decisive: too few rounds to certify any arm (95% sequences still open); "
                    "2% is out of reach at this noise (more than 200 rounds)")  # fmt: skip


def test_undecided_the_recommendation_is_the_arm_certified_tightest_not_the_fastest() -> None:
    """a (fastest) and c share only rounds 1-2, so neither is certified against the other
    (1 df at weight 2: unbounded); b ran every round and is certified to some epsilon."""
    race = Race({"a": 1, "b": 2, "c": 3}, OWN)
    for r in range(1, 9):
        figures = {"b": fig(100.0)}
        if r <= 6:
            figures["a"] = fig(101 * math.exp(0.01 * sign(r)))
        if r <= 2 or r > 6:
            figures["c"] = fig(99 * math.exp(-0.01 * sign(r)))
        st = race.add_round(r, figures)
    alpha = 0.05 / 2
    # a/b: rounds 1-6, log 1.01 +- .01; c/b: rounds 1, 2, 7, 8, log .99 -+ .01
    up_a = math.log(1.01) + q_ref(5, 6, alpha) * math.sqrt(6e-4 / 5 / 6)
    up_c = math.log(0.99) + q_ref(3, 4, alpha) * math.sqrt(4e-4 / 3 / 4)
    assert st.epsilon_of("b") == pytest.approx(math.expm1(max(up_a, up_c)), rel=1e-9)
    assert st.epsilon_of("a") == st.epsilon_of("c") == math.inf
    assert st.epsilon_of("b") > 0.02 and not st.decisive
    assert (st.round, st.best, st.recommended, st.recommended_k) == (8, "a", "b", 2)


def test_a_dropped_arm_has_no_epsilon() -> None:
    race = Race({"a": 1, "slow": 2}, OWN)
    for r in range(1, 4):
        st = race.add_round(r, {"a": fig(100.0), "slow": fig(70 * math.exp(0.01 * sign(r)))})
    # two arms: alpha .05 for the one pair; at round 3 (2 df) its lower bound clears 2%
    mean = math.log(100 / 70) - 0.01 / 3  # slow at +1%, -1%, +1%
    lower = mean - q_ref(2, 3, 0.05) * math.sqrt((2 * (0.02 / 3) ** 2 + (0.04 / 3) ** 2) / 2 / 3)
    assert lower > math.log(1.02)
    assert [(d.arm, d.by, d.round) for d in st.dropped] == [("slow", "a", 3)]
    assert st.dropped[0].lower == pytest.approx(math.exp(lower), rel=1e-9)
    assert st.epsilon == (("a", 0.0),)  # the last survivor: certified against nobody
    assert st.epsilon_of("slow") == math.inf
    assert st.epsilon_of("nobody") == math.inf


def test_an_arm_certified_exactly_at_the_tolerance_is_certified() -> None:
    def run(tolerance: float) -> RaceStatus:
        race = Race({"fixed_4": 4, "fixed_2": 2}, RaceConfig(tolerance=tolerance))
        for r in range(1, 7):
            st = race.add_round(r, {"fixed_4": fig(50 * math.exp(0.002 * sign(r))),
                                    "fixed_2": fig(50.0)})  # fmt: skip
        return st

    eps = run(0.5).epsilon_of("fixed_2")  # epsilon does not depend on the tolerance
    assert 0 < eps < 0.02
    st = run(eps)
    assert st.epsilon_of("fixed_2") == eps
    assert st.decisive and st.recommended == "fixed_2"
    assert not run(eps * (1 - 1e-6)).decisive


def test_a_zero_tolerance_is_met_by_arms_no_other_beats_for_sure() -> None:
    # One arm alone: certified (epsilon 0) at tolerance 0.
    race = Race({"fixed_2": 2}, RaceConfig(tolerance=0.0))
    st = race.add_round(1, {"fixed_2": fig(50.0)})
    assert st.epsilon == (("fixed_2", 0.0),) and st.decisive
    assert race.rounds_needed() == 0


def test_arms_with_the_same_k_go_to_the_faster() -> None:
    race = Race({"slower": 2, "faster": 2})
    for r in range(1, 9):
        st = race.add_round(r, {"slower": fig(50.0), "faster": fig(50.2 * math.exp(0.001 * sign(r)))})
    assert st.decisive and {a for a, e in st.epsilon if e <= 0.02} == {"slower", "faster"}
    assert (st.recommended, st.recommended_k, st.best) == ("faster", 2, "faster")


def test_rounds_needed_is_zero_once_decisive() -> None:
    race = Race({"fixed_4": 4, "fixed_2": 2})
    for r in range(1, 9):
        st = race.add_round(r, {"fixed_4": fig(50 * math.exp(0.002 * sign(r))),
                                "fixed_2": fig(50.0)})  # fmt: skip
    assert st.decisive
    assert race.rounds_needed() == 0


def test_arm_intervals_carry_the_k_and_the_configured_confidence() -> None:
    race = Race({"a": 3, "adaptive": None}, RaceConfig(confidence=0.90, pooled=False))
    tps = [10.0, 11.0, 12.0, 13.0]
    for r, v in enumerate(tps, start=1):
        st = race.add_round(r, {"a": fig(v), "adaptive": fig(20.0)})
    arms = {a.arm: a for a in st.arms}
    assert (arms["a"].k, arms["adaptive"].k) == (3, None)
    logs = [math.log(v) for v in tps]
    mean = sum(logs) / 4
    sd = math.sqrt(sum((x - mean) ** 2 for x in logs) / 3)
    r90 = T_95_3 * sd / 2
    assert arms["a"].tps.value == pytest.approx(math.exp(mean), rel=1e-12)
    assert (arms["a"].tps.lo, arms["a"].tps.hi) == pytest.approx(
        (math.exp(mean - r90), math.exp(mean + r90)), rel=1e-9
    )


def test_pair_intervals_against_the_best_report_the_t_interval_and_the_sequence() -> None:
    race = Race({"fast": 3, "slow": 8}, RaceConfig(confidence=0.90, pooled=False))
    for r in range(1, 5):
        st = race.add_round(r, {"fast": fig(100.0), "slow": fig(90 * math.exp(0.02 * sign(r)))})
    (p,) = st.pairs
    assert (p.arm, p.against, p.rounds) == ("slow", "fast", 4)
    # log(fast/slow) = log(100/90) -+ .02: s^2 = 4 * .0004 / 3, W = 4, se = sqrt(s^2 / 4)
    mean, se = math.log(100 / 90), math.sqrt(0.0016 / 3 / 4)
    r_t, r_cs = T_95_3 * se, q_ref(3, 4, 0.05) * se
    assert p.t.value == p.sequence.value == pytest.approx(100 / 90, rel=1e-12)
    assert (p.t.lo, p.t.hi) == pytest.approx((math.exp(mean - r_t), math.exp(mean + r_t)), rel=1e-9)
    assert (p.sequence.lo, p.sequence.hi) == pytest.approx(
        (math.exp(mean - r_cs), math.exp(mean + r_cs)), rel=1e-9
    )


def test_a_pair_with_one_round_in_common_has_a_ratio_and_open_intervals() -> None:
    race = Race({"a": 1, "b": 2}, OWN)
    race.add_round(1, {"a": fig(100.0), "b": fig(80.0)})
    p = race.pair("a", "b")
    assert p is not None and (p.arm, p.against, p.rounds) == ("b", "a", 1)
    assert p.t.value == p.sequence.value == pytest.approx(1.25, rel=1e-12)
    assert (p.t.lo, p.t.hi, p.sequence.lo, p.sequence.hi) == (0.0, math.inf, 0.0, math.inf)
    assert race.pair("nobody", "a") is None


def test_pair_is_reported_on_the_rounds_so_far() -> None:
    race = Race({"a": 1, "b": 2}, OWN)
    race.add_round(1, {"a": fig(100.0), "b": fig(80.0)})
    race.add_round(2, {"a": fig(100.0), "b": fig(50.0)})
    p = race.pair("a", "b")
    assert p is not None and p.rounds == 2
    assert p.t.value == pytest.approx(math.sqrt(1.25 * 2.0), rel=1e-12)  # geometric mean


def test_statement_prints_epsilon_as_a_percentage_with_one_decimal() -> None:
    st = RaceStatus(5, ("fixed_2", "nospec"), (), False, "nospec", "fixed_2", 2,
                    (("fixed_2", 0.1), ("nospec", 0.3)))  # fmt: skip
    cfg = RaceConfig(alpha=0.1, tolerance=0.05)
    assert statement(st, cfg, 3) == ("not decisive: K = 2 is within 10.0% of the fastest (90%); "
                                     "about 3 more rounds would certify 5% at this noise")  # fmt: skip


@pytest.mark.parametrize(("pooled", "per_round", "other"), [(True, 2, 1), (False, 1, 2)])
def test_rounds_needed_counts_the_degrees_of_freedom_a_round_adds(
    pooled: bool, per_round: int, other: int
) -> None:
    """Three survivors: a further round adds arms - 1 = 2 degrees of freedom to the pooled
    variance, 1 to a pair's own (rounds_needed itself is pinned in test_race_rules.py)."""
    race = Race({"a": 1, "b": 2, "c": 3}, RaceConfig(pooled=pooled))
    for r in range(1, 5):
        st = race.add_round(r, {"a": fig(100 * math.exp(0.03 * sign(r))),
                                "b": fig(99 * math.exp(-0.02 * sign(r))), "c": fig(98.5)})  # fmt: skip
    assert st.survivors == ("a", "b", "c") and not st.decisive
    table, tol = race.table(), math.log1p(0.02)
    expected = rounds_needed(table, [0, 1, 2], tol, 0.025, 8.0, df_per_round=per_round)
    assert expected is not None
    assert expected != rounds_needed(table, [0, 1, 2], tol, 0.025, 8.0, df_per_round=other)
    assert race.rounds_needed() == expected
