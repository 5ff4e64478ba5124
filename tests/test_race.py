"""The race: pairs, drops, certification and the recommendation on fixed data.

Expected numbers come from hand arithmetic or from `q_ref` below, the confidence
sequence's factor written out directly from its definition in plain floats (no numpy,
no code from the module under test).
"""

import math

import numpy as np
import pytest
from race_ref import TAU2, fig, q_ref, wls

from halospec_tui.race import (
    Figures,
    PairTable,
    Race,
    RaceConfig,
    drops,
    pair_table,
    pick,
    rounds_needed,
    statement,
)

OWN = RaceConfig(pooled=False)  # each pair on its own rounds' variance


# -- pairs ---------------------------------------------------------------------------------
def test_pair_table_by_hand_with_growing_blocks() -> None:
    a, b = [100.0, 110.0, 105.0], [90.0, 100.0, 100.0]
    steps = [4, 4, 8]
    x = np.log(np.array([a, b]).T)
    t = pair_table(x, np.array([steps, steps], dtype=float).T)
    d = [math.log(100 / 90), math.log(110 / 100), math.log(105 / 100)]
    w = [1.0, 1.0, 2.0]  # 1/(1/4 + 1/4) = 2, 2, and 4 for the block of 8; over the first
    mean = sum(wi * di for wi, di in zip(w, d, strict=True)) / 4
    var = sum(wi * (di - mean) ** 2 for wi, di in zip(w, d, strict=True)) / 2
    assert t.n[0, 1] == 3 and t.df[0, 1] == 2
    assert t.weight[0, 1] == pytest.approx(4.0)
    assert t.mean[0, 1] == pytest.approx(mean, abs=1e-14)
    assert t.mean[1, 0] == pytest.approx(-mean, abs=1e-14)
    assert t.var[0, 1] == pytest.approx(var, rel=1e-12)
    assert t.last_weight[0, 1] == pytest.approx(2.0)


def test_pairs_use_only_the_rounds_both_ran() -> None:
    x = np.log(np.array([[100.0, 50.0, 80.0], [100.0, np.nan, 80.0], [120.0, 60.0, 80.0]]))
    t = pair_table(x, np.full((3, 3), 4.0))
    assert t.n[0, 1] == 2 and t.n[0, 2] == 3 and t.n[1, 2] == 2
    assert t.mean[0, 1] == pytest.approx(math.log(2.0))  # rounds 1 and 3: ratio 2 both times
    assert t.var[0, 1] == pytest.approx(0.0, abs=1e-24)


def test_pooled_table_is_the_two_way_anova_on_a_complete_table() -> None:
    rng = np.random.default_rng(3)
    rounds, arms = 5, 4
    x = rng.normal(0.0, 0.1, size=(rounds, arms)) + np.array([0.0, 0.1, 0.2, 0.3])
    t = pair_table(x, np.full((rounds, arms), 4.0), pooled=True)
    # Reference: residual = x - round mean - arm mean + grand mean, on (R-1)(m-1) df;
    # per step sigma^2 = 4 * RSS / df (a block of 4 has variance sigma^2 / 4).
    resid = x - x.mean(axis=1, keepdims=True) - x.mean(axis=0, keepdims=True) + x.mean()
    df = (rounds - 1) * (arms - 1)
    sigma2_step = 4.0 * float((resid**2).sum()) / df
    col = x.mean(axis=0)
    for i in range(arms):
        for j in range(arms):
            if i == j:
                continue
            assert t.mean[i, j] == pytest.approx(col[i] - col[j], abs=1e-12)
            assert t.df[i, j] == df
            # contrast variance 2 sigma^2 / (4 R); unit weight = one round's pair weight, 2
            assert t.var[i, j] / t.weight[i, j] == pytest.approx(2 * sigma2_step / (4 * rounds))
            assert t.var[i, j] == pytest.approx(sigma2_step / 2.0)
            assert t.weight[i, j] == pytest.approx(rounds)


@pytest.mark.parametrize("seed", range(6))
def test_pooled_table_is_weighted_least_squares_on_the_full_design(seed: int) -> None:
    # Reference: the round + arm design written out, one row per observed block,
    # weighted by its steps, solved by numpy's lstsq; a contrast mu_i - mu_j, its
    # variance sigma^2 c' (A'A)^+ c and df = observations - rank. Missing cells and
    # uneven blocks, as a race leaves them.
    rng = np.random.default_rng(seed)
    rounds, arms = 9, 5
    x = rng.normal(0.0, 0.1, size=(rounds, arms)) + np.linspace(0.0, 0.2, arms)
    steps = rng.integers(1, 6, size=(rounds, arms)).astype(float)
    x[rng.random((rounds, arms)) < 0.25] = np.nan
    x[:, 0] = rng.normal(0.0, 0.1, size=rounds)  # arm 0 in every round links them all
    t = pair_table(x, steps, pooled=True)
    mu, sigma2, gram, df = wls(x, steps)
    for i in range(arms):
        for j in range(arms):
            if i == j:
                continue
            c = np.zeros(arms)
            c[i], c[j] = 1.0, -1.0
            assert t.mean[i, j] == pytest.approx(mu[i] - mu[j], abs=1e-12)
            assert t.df[i, j] == df
            # the table's variance and weight are per unit weight (the pair's first
            # common round, as own rounds are), their ratio the contrast's variance
            assert t.var[i, j] / t.weight[i, j] == pytest.approx(sigma2 * (c @ gram @ c))


# -- drops, certification, the recommendation ----------------------------------------------
DRIFT = [1.0, 1.3, 0.9, 1.1, 1.0, 0.8, 1.2, 1.0, 0.95, 1.05, 1.0, 1.0]


def three_arm_round(r: int) -> dict[str, Figures]:
    """fast 100, near 99 (+-1% alternating), slow 70 (+-2% alternating), times a drift
    that every arm shares in the round (it cancels in every pair)."""
    s, e = (1 if r % 2 else -1), DRIFT[r - 1]
    return {
        "fast": fig(100 * e),
        "near": fig(99 * e * math.exp(0.01 * s)),
        "slow": fig(70 * e * math.exp(0.02 * s)),
    }


def test_drop_certify_and_stop_on_fixed_data() -> None:
    race = Race({"near": 2, "fast": 3, "slow": 8}, OWN)
    alpha = 0.05 / 2  # three arms: the two pairs with the fastest
    assert race.alpha_pair == alpha
    statuses = [race.add_round(r, three_arm_round(r)) for r in range(1, 7)]
    # Rounds 1-3: every sequence still open (at 2 df: (1 + 24)^2 < 1/alpha^2).
    assert q_ref(2, 3, alpha) == math.inf
    assert all(st.survivors == ("near", "fast", "slow") for st in statuses[:3])
    assert all(math.isinf(e) for st in statuses[:3] for _, e in st.epsilon)
    # Round 4: slow is dropped, by near (its lower bound is higher: near/slow varies less).
    q4 = q_ref(3, 4, alpha)
    low_near = math.log(99 / 70) - q4 * math.sqrt(4 * 0.01**2 / 3 / 4)
    low_fast = math.log(100 / 70) - q4 * math.sqrt(4 * 0.02**2 / 3 / 4)
    assert low_near > low_fast > math.log(1.02)
    st4 = statuses[3]
    assert st4.survivors == ("near", "fast")
    (drop,) = st4.dropped
    assert (drop.arm, drop.round, drop.by) == ("slow", 4, "near")
    assert drop.lower == pytest.approx(math.exp(low_near), rel=1e-12)
    # fast over near: mean log(100/99) - .01 * (sum of signs) / n; per round +-.01 around it.
    for st, n in zip(statuses[3:], (4, 5, 6), strict=True):
        sum_s = 1 if n % 2 else 0
        mean = math.log(100 / 99) - 0.01 * sum_s / n
        devs = [-0.01 * (1 if r % 2 else -1) + 0.01 * sum_s / n for r in range(1, n + 1)]
        se = math.sqrt(sum(d * d for d in devs) / (n - 1) / n)
        hw = q_ref(n - 1, n, alpha) * se
        assert st.epsilon_of("fast") == pytest.approx(math.exp(-(mean - hw)) - 1, rel=1e-9)
        assert st.epsilon_of("near") == pytest.approx(math.exp(mean + hw) - 1, rel=1e-9)
    # Round 5 not yet within 2%, round 6 is: decisive, and fast (not the smaller K of
    # near, which is not certified within 2%) is recommended.
    assert statuses[4].epsilon_of("fast") > 0.02 and not statuses[4].decisive
    st6 = statuses[5]
    assert st6.decisive and st6.epsilon_of("fast") <= 0.02 < st6.epsilon_of("near")
    assert (st6.best, st6.recommended, st6.recommended_k) == ("fast", "fast", 3)


def test_min_rounds_and_drop_from_hold_the_decisions_back() -> None:
    race = Race(
        {"near": 2, "fast": 3, "slow": 8}, RaceConfig(min_rounds=7, drop_from=5, pooled=False)
    )
    st = [race.add_round(r, three_arm_round(r)) for r in range(1, 8)]
    assert st[3].survivors == ("near", "fast", "slow")  # round 4: not before round 5
    assert [d.arm for d in st[4].dropped] == ["slow"] and st[4].dropped[0].round == 5
    assert not st[5].decisive  # certified at round 6, but no stop before round 7
    assert st[5].epsilon_of("fast") <= 0.02
    assert st[6].decisive


def test_equal_arms_certified_together_recommend_the_smallest_k() -> None:
    race = Race({"fixed_4": 4, "fixed_2": 2})
    for r in range(1, 9):
        s = 1 if r % 2 else -1
        st = race.add_round(r, {"fixed_4": fig(50 * math.exp(0.002 * s)), "fixed_2": fig(50.0)})
    # mean 0 (8 rounds, signs cancel), per round +-.002: both arms within eps of each other
    hw = q_ref(7, 8, 0.05) * math.sqrt(8 * 0.002**2 / 7 / 8)
    assert st.epsilon_of("fixed_2") == pytest.approx(math.expm1(hw), rel=1e-9)
    assert st.epsilon_of("fixed_4") == pytest.approx(math.expm1(hw), rel=1e-9)
    assert hw < math.log(1.02)
    assert st.decisive and st.recommended == "fixed_2" and st.recommended_k == 2


@pytest.mark.parametrize("pooled", [False, True])
def test_a_drift_cannot_crown_a_dropped_arm(pooled: bool) -> None:
    """The old failure: the best was taken from each arm's own rounds, so an arm dropped
    early, measured only while the machine was fast, could come out on top after the
    machine slowed for everyone. Here X is 30% slower than A in every round they share,
    is dropped at round 4 (3 when pooled), and from round 5 every arm runs at half speed."""
    race = Race({"X": 1, "A": 3, "B": 4}, RaceConfig(pooled=pooled))
    own: dict[str, list[float]] = {"X": [], "A": [], "B": []}
    for r in range(1, 13):
        s, level = (1 if r % 2 else -1), (1.0 if r <= 4 else 0.5)
        figures = {"A": fig(100 * level), "B": fig(99 * level * math.exp(0.01 * s)),
                   "X": fig(70 * level * math.exp(0.02 * s))}  # fmt: skip
        if "X" not in race.survivors:
            del figures["X"]  # a dropped arm runs no more
        for a, f in figures.items():
            own[a].append(f.tokens)
        st = race.add_round(r, figures)
    # The trap is set: over its own rounds, X has the highest tokens/s.
    own_tps = {a: sum(v) / len(v) for a, v in own.items()}
    assert max(own_tps, key=own_tps.__getitem__) == "X"
    assert [(d.arm, d.round) for d in st.dropped] == [("X", 3 if pooled else 4)]
    assert st.best == "A" and st.recommended in ("A", "B") and "X" not in st.survivors


def test_drops_never_empty_the_race() -> None:
    # Three arms, each beaten by another by far (impossible when the sequences hold):
    # one is kept, the one whose worst lower bound against it is least bad.
    mean = np.array([[0.0, 1.0, -2.0], [-1.0, 0.0, 1.5], [2.0, -1.5, 0.0]])
    t = PairTable(np.full((3, 3), 10), np.full((3, 3), 10.0), mean, np.full((3, 3), 1e-6),
                  np.full((3, 3), 9), np.ones((3, 3)))  # fmt: skip
    out = drops(t, [0, 1, 2], math.log(1.02), 0.05, TAU2)
    assert sorted(d[0] for d in out) == [0, 2]  # arm 1 (beaten by 1.0) stays; 0 and 2 by 2.0, 1.5


# -- what it says -------------------------------------------------------------------------------
def test_pick_prefers_the_smallest_k_and_arms_with_one() -> None:
    ks = {"adaptive": None, "fixed_3": 3, "nospec": 0, "pmin:0.5": 16}
    speed = {"adaptive": 1.0, "fixed_3": 0.5, "nospec": 0.2, "pmin:0.5": 0.9}
    assert pick(["adaptive", "fixed_3", "pmin:0.5"], ks, speed) == "fixed_3"
    assert pick(["adaptive", "nospec"], ks, speed) == "nospec"
    assert pick(["adaptive"], ks, speed) == "adaptive"
    assert pick([], ks, speed) is None


def test_undecided_statement_and_rounds_needed() -> None:
    race = Race({"near": 2, "fast": 3, "slow": 8}, OWN)
    for r in range(1, 5):
        st = race.add_round(r, three_arm_round(r))
    alpha = 0.05 / 2
    # Round 4: fast is certified within eps_fast (see above); how many more rounds at
    # this mean (log 100/99) and spread (s^2 = 4e-4/3 per round), each of weight 1?
    mean, var = math.log(100 / 99), 4 * 0.01**2 / 3
    need = next(k for k in range(0, 201)
                if q_ref(3 + k, 4 + k, alpha) * math.sqrt(var / (4 + k)) <= mean + math.log(1.02))  # fmt: skip
    assert race.rounds_needed() == need == 2  # and the race is decisive at round 6
    eps = st.epsilon_of("fast")
    text = statement(st, race.config, race.rounds_needed())
    assert text == (f"not decisive: K = 3 (fast) is within {eps * 100:.1f}% of the fastest (95%); "
                    "about 2 more rounds would certify 2% at this noise")  # fmt: skip
    assert f"{eps * 100:.1f}" == "4.2"


def test_statement_when_decisive_and_when_out_of_reach() -> None:
    race = Race({"near": 2, "fast": 3, "slow": 8}, OWN)
    for r in range(1, 7):
        st = race.add_round(r, three_arm_round(r))
    assert statement(st, race.config) == (
        "decisive: K = 3 (fast) is within 2% of the fastest (95%, valid at any stop)"
    )
    # Two arms 5% apart, 8% noise: no arm can be certified within 2% soon.
    race2 = Race({"nospec": 0, "fixed_1": 1})
    for r in range(1, 5):
        s = 1 if r % 2 else -1
        st2 = race2.add_round(r, {"nospec": fig(100.0), "fixed_1": fig(95 * math.exp(0.08 * s))})
    table = race2.table()
    assert rounds_needed(table, [0, 1], math.log(1.02), 0.05, TAU2, cap=5) is None
    assert st2.recommended == "nospec" and st2.recommended_k == 0
    assert statement(st2, race2.config, None).startswith(
        "not decisive: no speculation (K = 0) is within "
    )
    assert statement(st2, race2.config, None).endswith(
        "2% is out of reach at this noise (more than 200 rounds)"
    )


def test_figures_without_tokens_or_time_are_no_round_and_unknown_arms_are_ignored() -> None:
    race = Race({"a": 1, "b": 2})
    race.add_round(1, {"a": fig(10.0), "b": Figures(0.0, 500.0, 4), "zzz": fig(99.0)})
    race.add_round(2, {"a": fig(11.0), "b": fig(10.0)})
    st = race.add_round(3, {"a": fig(12.0), "b": Figures(5.0, 0.0, 4)})
    t = race.table()
    assert t.n[0, 1] == 1  # only round 2 has both
    arms = {a.arm: a for a in st.arms}
    assert arms["a"].rounds == 3 and arms["b"].rounds == 1
    assert arms["a"].tps.value == pytest.approx((10 * 11 * 12) ** (1 / 3))
    sd = float(np.std(np.log([10.0, 11.0, 12.0]), ddof=1))
    lo = math.exp(math.log((10 * 11 * 12) ** (1 / 3)) - 4.302652729749 * sd / math.sqrt(3))
    assert arms["a"].tps.lo == pytest.approx(lo, rel=1e-9)


def test_survivors_are_ranked_on_the_rounds_they_share() -> None:
    """B skipped its blocks in rounds 1-2, while the machine was fast; on the rounds both
    ran B is 5% faster. Each arm's own rounds would put A first."""
    race = Race({"A": 3, "B": 4})
    for r in range(1, 7):
        level = 1.0 if r <= 2 else 0.5
        figures = {"A": fig(100 * level)}
        if r > 2:
            figures["B"] = fig(105 * level * math.exp(0.05 * (1 if r % 2 else -1)))
        st = race.add_round(r, figures)
    assert st.best == "B"
    assert st.survivors == ("A", "B")


def test_pooled_race_drops_on_the_two_way_residual_variance() -> None:
    """The same three arms with `pooled`: each round's figures as a (round x arm) table;
    reference by the two-way ANOVA written out (complete table until the first drop)."""
    alpha, names = 0.05 / 2, ["near", "fast", "slow"]
    race = Race({"near": 2, "fast": 3, "slow": 8})  # pooled: the default
    rows: list[list[float]] = []
    expected_drop = None
    for r in range(1, 7):
        figures = three_arm_round(r)
        rows.append([math.log(figures[a].tokens) for a in names])  # ms = 1000: tps = tokens
        st = race.add_round(r, figures)
        if expected_drop is None and r >= 2:
            x = np.array(rows)
            resid = x - x.mean(axis=1, keepdims=True) - x.mean(axis=0, keepdims=True) + x.mean()
            df = (r - 1) * 2
            var_unit = 4.0 * float((resid**2).sum()) / df / 2.0  # per step, over the unit weight 2
            col = x.mean(axis=0)
            lower = [
                col[i] - col[2] - q_ref(df, r, alpha) * math.sqrt(var_unit / r) for i in (0, 1)
            ]
            if max(lower) > math.log(1.02):
                expected_drop = r
                assert st.dropped and st.dropped[0].arm == "slow"
                assert st.dropped[0].lower == pytest.approx(math.exp(max(lower)), rel=1e-9)
            else:
                assert not st.dropped
    assert expected_drop == 3  # a round sooner than on the pairs' own variances (round 4)


def test_pair_reports_any_two_arms() -> None:
    race = Race({"near": 2, "fast": 3, "slow": 8}, OWN)
    for r in range(1, 5):
        race.add_round(r, three_arm_round(r))
    p = race.pair("fast", "slow")
    assert p is not None and (p.arm, p.against, p.rounds) == ("slow", "fast", 4)
    hw = 3.182446305284 * math.sqrt(4 * 0.02**2 / 3 / 4)
    assert p.t.value == pytest.approx(100 / 70)
    assert (p.t.lo, p.t.hi) == pytest.approx((100 / 70 * math.exp(-hw), 100 / 70 * math.exp(hw)))
    assert race.pair("fast", "nobody") is None


def test_pooling_leaves_an_arm_without_a_fixed_k_to_its_own_pairs() -> None:
    rng = np.random.default_rng(5)
    ks = {"fixed_1": 1, "fixed_2": 2, "fixed_3": 3, "adaptive": None}
    race = Race(ks, RaceConfig(pooled=True))
    for r in range(1, 6):
        race.add_round(r, {a: fig(float(rng.uniform(40, 60))) for a in ks})
    t, own = race.table(), pair_table(np.array(race._x), np.array(race._s))
    fixed = pair_table(np.array(race._x)[:, :3], np.array(race._s)[:, :3], pooled=True)
    assert t.df[0, 1] == fixed.df[0, 1] == 4 * 2  # (rounds - 1)(fixed arms - 1)
    assert t.var[0, 1] == pytest.approx(fixed.var[0, 1])
    for i in range(3):
        assert t.df[i, 3] == own.df[i, 3] == 4
        assert t.mean[i, 3] == own.mean[i, 3] and t.var[i, 3] == own.var[i, 3]


def test_only_arms_beyond_the_tolerance_are_dropped() -> None:
    """Nearly noiseless: 1.5% slower stays (within 2%), 2.5% slower goes."""
    race = Race({"a": 1, "b": 2, "c": 3}, OWN)
    for r in range(1, 5):
        s = 1 if r % 2 else -1
        st = race.add_round(r, {"a": fig(100.0), "b": fig(98.5 * math.exp(0.0005 * s)),
                                "c": fig(97.5 * math.exp(0.0005 * s))})  # fmt: skip
    hw = q_ref(3, 4, 0.05 / 2) * math.sqrt(4 * 0.0005**2 / 3 / 4)
    assert math.log(100 / 98.5) - hw < math.log(1.02) < math.log(100 / 97.5) - hw
    assert [(d.arm, d.by, d.round) for d in st.dropped] == [("c", "a", 4)]
    assert st.survivors == ("a", "b")
