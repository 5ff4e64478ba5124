"""The statistics behind the verdict, pinned at their edges.

Expected values are computed by hand, or by a small reference written here in plain
loops (per-round sums, weights drawn stratum by stratum), not by calling the code
under test a second time.
"""

import math
import random
import zlib

import numpy as np
import pytest

from halospec_tui.arms import fixed_k
from halospec_tui.schedule import round_order, round_phase
from halospec_tui.stats import StepSample
from halospec_tui.verdict import (
    ArmStats,
    Comparison,
    Estimate,
    arm_stats,
    bootstrap,
    classify,
    cluster_weights,
    decide,
    decision_of,
    main_actuator,
    mean_ms,
    median_ms,
    p95_ms,
    phase_stats,
    ratio,
    recommend,
    rows_of,
    score,
    tps,
)


def s(mode, lat, rnd=1, tokens=64, phase="steady", **kw):
    return StepSample(mode, fixed_k(mode) or 0, True, lat, tokens, round=rnd, phase=phase, **kw)


def _seeded(seed, *labels):
    """The documented seed of a bootstrap: the run's seed and the crc32 of each label."""
    return np.random.default_rng([seed, *(zlib.crc32(x.encode()) for x in labels)])


def _ref_weights(strata, n_boot, rng):
    """Stratified cluster resampling, written as loops: strata in sorted order, each
    redrawing its own clusters (equal chances) as many times as it holds them."""
    w = np.zeros((n_boot, len(strata)))
    for key in sorted(set(strata)):
        pos = [i for i, x in enumerate(strata) if x == key]
        draws = rng.multinomial(len(pos), [1.0 / len(pos)] * len(pos), size=n_boot)
        for j, p in enumerate(pos):
            w[:, p] = draws[:, j]
    return w


def _ref_tps(tokens, ms, w):
    return (w @ np.array(tokens, dtype=float)) * 1000.0 / (w @ np.array(ms, dtype=float))


# -- cluster weights and intervals --------------------------------------------------
def test_cluster_weights_follow_the_reference_draw():
    strata = ("steady", "load", "steady", "recovery", "load", "steady")
    got = cluster_weights(strata, 50, np.random.default_rng(11))
    assert (got == _ref_weights(strata, 50, np.random.default_rng(11))).all()
    # Each stratum keeps its size in every replicate.
    assert (got[:, [0, 2, 5]].sum(axis=1) == 3).all()
    assert (got[:, [1, 4]].sum(axis=1) == 2).all() and (got[:, 3] == 1).all()


def test_interval_is_the_central_95_percent():
    # 0..1000 as replicates: the 2.5th and 97.5th percentiles are 25 and 975.
    rows = rows_of([s("fixed_1", 100, None)] * 2)
    e = bootstrap(rows, lambda r, w: np.arange(float(w.shape[0])) if w.shape[0] > 1 else np.array([7.0]),
                  np.random.default_rng(0), n_boot=1001)  # fmt: skip
    # (1 - 0.95) / 2 * 100 is 2.5 up to rounding
    assert e.value == 7.0 and e.lo == pytest.approx(25.0) and e.hi == pytest.approx(975.0)


def test_bootstrap_drops_non_finite_replicates():
    # Replicates 0..99 with every tenth one undefined: the interval is over the rest.
    def stat(r, w):
        if w.shape[0] == 1:
            return np.array([1.0])
        out = np.arange(100.0)
        out[::10] = np.nan
        return out

    rows = rows_of([s("fixed_1", 100, None)] * 2)
    kept = np.array([x for x in range(100) if x % 10])
    lo, hi = np.percentile(kept, [2.5, 97.5])
    e = bootstrap(rows, stat, np.random.default_rng(0), n_boot=100)
    assert e.value == 1.0 and e.lo == pytest.approx(lo) and e.hi == pytest.approx(hi)


def test_one_cluster_has_no_interval():
    rows = rows_of([s("fixed_1", x, 3) for x in (100, 300)])  # one round
    assert bootstrap(rows, tps, np.random.default_rng(0)) == Estimate(320.0, -math.inf, math.inf)
    assert bootstrap(rows_of([]), tps, np.random.default_rng(0)) is None


# -- figures ----------------------------------------------------------------------------
def test_score_mean_p95_and_population_stddev_by_hand():
    rows = rows_of([s("fixed_1", x, None) for x in (100, 200, 300, 600)])
    one = np.ones((1, 4))
    # mean 300; p95 nearest rank: ceil(3.8) = 4th = 600; median: 2nd = 200;
    # population variance (200² + 100² + 0 + 300²) / 4 = 35000.
    assert mean_ms(rows, one)[0] == 300.0
    assert p95_ms(rows, one)[0] == 600.0 and median_ms(rows, one)[0] == 200.0
    assert score(rows, one)[0] == pytest.approx(300 + 0.5 * 600 + 0.2 * math.sqrt(35000), abs=1e-9)
    # Weights count steps: 100 twice and 600 once -> mean 800 / 3, median 100.
    w = np.array([[2.0, 0.0, 0.0, 1.0]])
    assert mean_ms(rows, w)[0] == pytest.approx(800 / 3)
    assert median_ms(rows, w)[0] == 100.0 and p95_ms(rows, w)[0] == 600.0


def test_nearest_rank_over_many_replicates_in_slices():
    # 1000 steps and 600 replicates: more than one slice of replicates is computed.
    lat = [(i * 37) % 1000 + 1 for i in range(1000)]  # 1..1000, shuffled
    rows = rows_of([s("fixed_1", x, None) for x in lat])
    assert rows.keys == tuple(range(400))
    w = cluster_weights(rows.strata, 600, np.random.default_rng(4))
    got = p95_ms(rows, w)
    for i in (0, 299, 599):  # first, middle and last replicate, by expanding the steps
        counts = w[i][rows.cluster]
        expanded = sorted(x for x, c in zip(lat, counts, strict=True) for _ in range(int(c)))
        assert got[i] == expanded[math.ceil(0.95 * len(expanded)) - 1]


def test_long_sequential_runs_are_cut_into_400_runs_of_steps():
    rows = rows_of([s("fixed_1", 100, None, phase="load" if i >= 600 else "steady") for i in range(800)])
    assert rows.keys == tuple(range(400))
    assert list(rows.cluster[:4]) == [0, 0, 1, 1] and rows.cluster[-1] == 399
    assert rows.strata == ("steady",) * 300 + ("load",) * 100
    odd = rows_of([s("fixed_1", 100, None) for i in range(401)])
    # step i goes to run i * 400 // 401: runs 0..399, steps 0 and 1 share run 0
    assert len(odd.keys) == 400 and list(odd.cluster[-2:]) == [398, 399]
    assert list(odd.cluster[:3]) == [0, 0, 1]
    exact = rows_of([s("fixed_1", 100, None) for i in range(400)])
    assert list(exact.cluster) == list(range(400))


def test_rows_of_reads_missing_counts_as_zero_and_pays_own_reloads():
    rows = [
        StepSample("adaptive", 2, True, 100, 64, round=1),
        StepSample("adaptive", 3, True, 100, None, reload_ms=50, round=1),  # type: ignore[arg-type]
        StepSample("adaptive", 3, True, 100, 64, reload_ms=70, round=2),  # same K: no reload
    ]
    r = rows_of(rows, with_reloads=True)
    assert list(r.tokens) == [64.0, 0.0, 64.0] and list(r.extra) == [0.0, 50.0, 0.0]
    assert rows_of(rows).extra is None
    assert rows_of(rows[1:], with_reloads=True).extra is None  # no K change: none
    # 128 tokens in 300 ms of requests and 50 ms of reload.
    assert tps(r, np.ones((1, 2)))[0] == pytest.approx(128_000 / 350)


def test_arm_stats_cv_and_server_throughput():
    rows = [
        s("fixed_2", 100, None, predicted_n=40, predicted_ms=80.0),
        s("fixed_2", 300, None, predicted_n=60, predicted_ms=120.0),
        s("fixed_2", 200, None, predicted_n=None, predicted_ms=50.0),  # no count: not timed
        s("fixed_2", 200, None, predicted_n=9, predicted_ms=0.0),  # no time: not timed
        StepSample("fixed_2", 2, False, 5, 0),  # failed: not measured
        StepSample("fixed_2", 2, True, 5, 0, settle=True),  # settle: not measured
    ]
    a = arm_stats("fixed_2", rows, seed=3, phase="load")
    assert (a.arm, a.k, a.n, a.phase) == ("fixed_2", 2, 4, "load")
    # population sd of 100, 300, 200, 200 is sqrt(5000); mean 200
    assert a.cv == pytest.approx(math.sqrt(5000) / 200)
    assert a.server_tps.value == pytest.approx(100 / 0.2)  # 100 tokens predicted in 200 ms
    assert a.tps.value == pytest.approx(256 / 0.8)
    assert (a.mean_ms.value, a.median_ms.value, a.p95_ms.value) == (200.0, 200.0, 300.0)
    assert a.score.value == pytest.approx(200 + 150 + 0.2 * math.sqrt(5000))
    one = arm_stats("fixed_2", rows[:1])
    assert one.cv is None and one.tps == Estimate(640.0, -math.inf, math.inf)
    assert arm_stats("fixed_2", [s("fixed_2", 0, None, tokens=0)] * 2).cv is None
    assert arm_stats("nospec", []).tps is None and arm_stats("nospec", []).n == 0


# -- ratios ---------------------------------------------------------------------------
def _two_arms(factor_by_round, phase_by_round=None):
    """num takes 100 ms x the round's factor, den twice that: the same conditions hit both."""
    rows = []
    for rnd, f in factor_by_round.items():
        ph = (phase_by_round or {}).get(rnd, "steady")
        rows.append(s("fixed_4", 100 * f, rnd, phase=ph))
        rows.append(s("fixed_1", 200 * f, rnd, phase=ph))
    return [r for r in rows if r.arm == "fixed_4"], [r for r in rows if r.arm == "fixed_1"]


def test_paired_ratio_cancels_the_round_conditions():
    num, den = _two_arms({1: 1, 2: 3, 3: 7, 4: 2})
    e = ratio(num, den, 0, "x")
    assert (e.value, e.lo, e.hi) == (2.0, 2.0, 2.0)
    # Only the rounds both ran count: an extra round of num is left out.
    e = ratio([*num, s("fixed_4", 5000, 5)], den, 0, "x")
    assert (e.value, e.lo, e.hi) == (2.0, 2.0, 2.0)
    # Unpaired (a sequential run) the same steps spread.
    flat_num = [s("fixed_4", r.latency_ms, None) for r in num]
    flat_den = [s("fixed_1", r.latency_ms, None) for r in den]
    u = ratio(flat_num, flat_den, 0, "x")
    assert u.value == 2.0 and u.lo < 1.0 and u.hi > 4.0


def test_paired_ratio_does_not_depend_on_row_order():
    num, den = _two_arms({1: 1, 2: 3, 3: 7, 4: 2})
    num = [*num[:2], s("fixed_4", 250, 3), *num[2:]]  # round 3 no longer in proportion
    want = ratio(num, den, 0, "x")
    assert want.lo < want.hi
    assert ratio(num[::-1], den, 0, "x") == want
    assert ratio(num, den[::-1], 0, "x") == want


def test_paired_ratio_equals_the_reference_bootstrap():
    # Rounds 1..5; round 3 is a load round. Tokens differ, num pays one reload of its own.
    num = [
        StepSample("adaptive", 2, True, 100, 60, round=1),
        StepSample("adaptive", 2, True, 120, 64, round=2),
        StepSample("adaptive", 3, True, 90, 64, reload_ms=40, round=3, phase="load"),
        StepSample("adaptive", 3, True, 110, 70, round=4),
        StepSample("adaptive", 3, True, 100, 64, round=5),
    ]
    den = [
        StepSample("fixed_2", 2, True, 150, 64, round=r, reload_ms=500, phase="load" if r == 3 else "steady")
        for r in range(1, 6)
    ]  # fmt: skip
    den[1] = StepSample("fixed_2", 2, True, 130, 50, round=2, reload_ms=500)
    e = ratio(num, den, 7, "adaptive/fixed_2")
    tok_a, ms_a = [60, 64, 64, 70, 64], [100, 120, 130, 110, 100]  # 90 + 40 of reload
    tok_b, ms_b = [64, 50, 64, 64, 64], [150, 130, 150, 150, 150]  # same K: no reloads paid
    point = (sum(tok_a) / sum(ms_a)) / (sum(tok_b) / sum(ms_b))
    w = _ref_weights(["steady", "steady", "load", "steady", "steady"], 2000,
                     _seeded(7, "pair", "adaptive/fixed_2"))  # fmt: skip
    lo, hi = np.percentile(_ref_tps(tok_a, ms_a, w) / _ref_tps(tok_b, ms_b, w), [2.5, 97.5])
    assert e.value == pytest.approx(point, rel=1e-12)
    assert e.lo == pytest.approx(lo, rel=1e-12) and e.hi == pytest.approx(hi, rel=1e-12)


def test_unpaired_ratio_equals_the_reference_bootstrap():
    a = [100, 140, 90, 120]
    b = [200, 260, 210]
    num = [s("fixed_4", x, None) for x in a]
    den = [s("fixed_1", x, None, tokens=32) for x in b]
    e = ratio(num, den, 2, "fixed_4/fixed_1")
    wa = _ref_weights(["steady"] * 4, 2000, _seeded(2, "num", "fixed_4/fixed_1"))
    wb = _ref_weights(["steady"] * 3, 2000, _seeded(2, "den", "fixed_4/fixed_1"))
    reps = _ref_tps([64] * 4, a, wa) / _ref_tps([32] * 3, b, wb)
    lo, hi = np.percentile(reps, [2.5, 97.5])
    assert e.value == pytest.approx((256 / 450) / (96 / 670), rel=1e-12)
    assert e.lo == pytest.approx(lo, rel=1e-12) and e.hi == pytest.approx(hi, rel=1e-12)


def test_ratio_with_interleaved_num_and_sequential_den_is_unpaired():
    num = [s("fixed_4", 100, r) for r in (1, 2, 3)]
    den = [s("fixed_1", 200, None) for _ in range(3)]
    e = ratio(num, den, 0, "x")
    assert (e.value, e.lo, e.hi) == (2.0, 2.0, 2.0)


def test_ratio_edges():
    ok = [s("fixed_1", 200, r) for r in (1, 2, 3)]
    assert ratio([], ok, 0, "x") is None and ratio(ok, [], 0, "x") is None
    assert ratio([s("fixed_4", 100, 9)], ok, 0, "x") is None  # no round in common
    # num took no time: no throughput to compare
    assert ratio([s("fixed_4", 0, r, tokens=0) for r in (1, 2, 3)], ok, 0, "x") is None
    # den produced no tokens: a ratio over zero is no answer
    assert ratio(ok, [s("fixed_4", 100, r, tokens=0) for r in (1, 2, 3)], 0, "x") is None
    # den below 1 token/s still compares: 2 tokens in 4 s each round is 0.5 tok/s
    slow = ratio([s("fixed_4", 200, r) for r in (1, 2, 3)],
                 [s("fixed_1", 4000, r, tokens=2) for r in (1, 2, 3)], 0, "x")  # fmt: skip
    assert (slow.value, slow.lo, slow.hi) == (640.0, 640.0, 640.0)
    # One round in common: a value and no interval.
    one = ratio([s("fixed_4", 100, 2)], [s("fixed_1", 400, 2, tokens=32)], 0, "x")
    assert one == Estimate(8.0, 0.0, math.inf)
    # Two rounds are enough for an interval (each arm, paired or not).
    two = ratio([s("fixed_4", 100, r) for r in (1, 2)], [s("fixed_1", 400, r) for r in (1, 2)], 0, "x")
    assert two == Estimate(4.0, 4.0, 4.0)
    seq = ratio([s("fixed_4", 100, None)], [s("fixed_1", x, None) for x in (300, 500)], 0, "x")
    assert seq == Estimate(4.0, 0.0, math.inf)
    seq = ratio([s("fixed_4", x, None) for x in (100, 100, 100)], [s("fixed_1", 400, None)], 0, "x")
    assert seq == Estimate(4.0, 0.0, math.inf)
    seq = ratio([s("fixed_4", x, None) for x in (100, 100)], [s("fixed_1", 400, None)] * 2, 0, "x")
    assert seq == Estimate(4.0, 4.0, 4.0)


def test_ratio_leaves_out_replicates_without_a_ratio():
    # den's round 1 took no time: replicates holding only round 1 have no den throughput.
    num = [s("fixed_4", 100, 1), s("fixed_4", 50, 2)]
    den = [s("fixed_1", 0, 1, tokens=0), s("fixed_1", 200, 2)]
    e = ratio(num, den, 0, "x")
    # point: 128 tokens / 0.15 s over 64 / 0.2 s = 8/3; replicates: rounds {1,2} -> 8/3
    # (half of them), {2,2} -> 1280 / 320 = 4 (a quarter); {1,1} is undefined, left out.
    assert e.value == pytest.approx(8 / 3) and e.lo == pytest.approx(8 / 3) and e.hi == 4.0


# -- classification and the recommendation ------------------------------------------------
def test_a_ci_ending_exactly_at_the_tolerance_is_equivalent_even_when_wide():
    # half-width 0.375 is far over the tolerance; only the upper end settles it.
    assert classify(Estimate(1.0, 0.5, 1.25), 0.25) == ("tied", True)
    assert classify(Estimate(1.0, 0.5, 1.25 + 2**-20), 0.25) == ("tied", False)
    # Below 1 - tolerance at the top still counts as equivalent (the arm is faster).
    assert classify(Estimate(0.7, 0.5, 0.75), 0.125) == ("tied", True)


def _stats(*arms):
    return {a: ArmStats(a, fixed_k(a), 1, None, None, None, None, None, None, None) for a in arms}


def test_recommend_counts_only_ties_within_the_tolerance():
    stats = _stats("fixed_2", "fixed_5")
    at = [Comparison("fixed_2", Estimate(1.0, 0.9, 1.25), "tied", False)]
    assert recommend("fixed_5", at, stats, 0.25) == ("fixed_2", 2, True)
    over = [Comparison("fixed_2", Estimate(1.0, 0.9, 1.25 + 2**-20), "tied", False)]
    assert recommend("fixed_5", over, stats, 0.25) == ("fixed_5", 5, False)
    worse = [Comparison("fixed_2", Estimate(1.0, 0.9, 1.0), "worse", True)]
    assert recommend("fixed_5", worse, stats, 0.25) == ("fixed_5", 5, False)
    none = [Comparison("fixed_2", None, "tied", False)]
    assert recommend("fixed_5", none, stats, 0.25) == ("fixed_5", 5, False)
    assert recommend(None, at, stats) == (None, None, False)
    # The default tolerance is 2%.
    assert recommend("fixed_5", [Comparison("fixed_2", Estimate(1.0, 0.99, 1.02), "tied", True)],
                     stats) == ("fixed_2", 2, True)  # fmt: skip
    assert recommend("fixed_5", [Comparison("fixed_2", Estimate(1.0, 0.99, 1.03), "tied", True)],
                     stats) == ("fixed_5", 5, False)  # fmt: skip


def test_recommend_an_adaptive_best_with_a_tied_fixed_arm():
    stats = _stats("adaptive", "fixed_3")
    tied = [Comparison("fixed_3", Estimate(1.0, 0.99, 1.01), "tied", True)]
    assert recommend("adaptive", tied, stats) == ("fixed_3", 3, True)


# -- decide ----------------------------------------------------------------------------
def _race(extra=()):
    rows = []
    for rnd in (1, 2, 3, 4):
        for arm, base in (("nospec", 300), ("fixed_2", 202), ("fixed_3", 200), *extra):
            rows += [s(arm, base + j, rnd, actuator="request") for j in (0, 4, -4, 2)]
    return rows


def test_decide_leaves_out_arms_without_throughput_and_keeps_their_row():
    rows = _race() + [StepSample("fixed_8", 8, False, 0, 0, round=1)]
    v = decide(rows, with_phases=False)
    assert [a.arm for a in v.arms] == ["nospec", "fixed_2", "fixed_3", "fixed_8"]
    assert v.best == "fixed_3"
    c = v.comparison("fixed_8")
    assert (c.ratio, c.status, c.settled) == (None, "tied", False)
    assert not v.decisive  # nothing known about fixed_8 yet
    assert decide(rows, eliminated=[("fixed_8", 1)]).decisive
    assert decide([StepSample("fixed_8", 8, False, 0, 0)]).best is None
    assert not decide([StepSample("fixed_8", 8, False, 0, 0)]).decisive
    assert decide([]).comparisons == ()


def test_decide_tolerance_and_seed_reach_the_comparisons():
    rows = _race()
    wide = decide(rows, tolerance=0.5, seed=3)
    assert wide.tolerance == 0.5 and wide.status("nospec") == "tied"
    assert wide.comparison("nospec").ratio == ratio(
        [r for r in rows if r.arm == "fixed_3"], [r for r in rows if r.arm == "nospec"],
        3, "fixed_3/nospec",
    )  # fmt: skip
    assert wide.arms[0] == arm_stats("nospec", [r for r in rows if r.arm == "nospec"], 3)
    assert wide.vs_nospec == wide.comparison("nospec").ratio


def test_decide_against_nospec_is_the_fastest_speculating_arm():
    rows = _race(extra=(("fixed_1", 150),))  # fastest, and not last by name
    v = decide(rows, with_phases=False)
    assert v.best == "fixed_1" and v.vs_nospec_arm == "fixed_1"
    assert v.vs_nospec.value == pytest.approx(300.5 / 150.5)
    only = decide([r for r in rows if r.arm == "nospec"])
    assert (only.vs_nospec, only.vs_nospec_arm, only.best) == (None, None, "nospec")
    no_nospec = decide([r for r in rows if r.arm != "nospec"])
    assert (no_nospec.vs_nospec, no_nospec.vs_nospec_arm) == (None, None)
    # A speculating arm without a successful step is not the one compared.
    v = decide(rows + [StepSample("fixed_9", 9, False, 0, 0, round=1)])
    assert v.vs_nospec_arm == "fixed_1"


def test_decide_phase_and_prompt_class_tables_only_when_they_vary():
    rows = _race()
    assert decide(rows).phases == () and decide(rows).classes == ()
    loaded = [
        StepSample(r.arm, r.draft_length, True, r.latency_ms, 64, round=r.round,
                   phase="load" if r.round == 3 else "steady",
                   prompt_class="open" if r.round % 2 else "structured")
        for r in rows
    ]  # fmt: skip
    v = decide(loaded, seed=4)
    assert [(p.arm, p.phase) for p in v.phases] == [
        (a, p) for a in ("nospec", "fixed_2", "fixed_3") for p in ("steady", "load")
    ]
    assert v.phases[1] == arm_stats("nospec", [r for r in loaded if r.arm == "nospec"
                                               and r.phase == "load"], 4, phase="load")  # fmt: skip
    assert [p.phase for p in v.classes[:2]] == ["structured", "open"]
    assert decide(loaded, with_phases=False).phases == ()
    assert decide(loaded, with_phases=False).classes == ()
    # One class plus unclassified rows: nothing to break down.
    one = [StepSample(r.arm, 0, True, r.latency_ms, 64, round=r.round,
                      prompt_class="open" if r.round == 1 else "") for r in rows]  # fmt: skip
    assert decide(one).classes == ()


def test_phase_stats_order_and_seed():
    phases = ["zeta", "recovery", "alpha", "load", "steady"]
    rows = [s("fixed_1", 100 + 10 * i + j * j, None, phase=p) for i, p in enumerate(phases) for j in range(9)]
    rows.append(StepSample("fixed_1", 1, False, 0, 0, phase="omega"))  # never measured: no row
    out = phase_stats(rows, seed=6)
    assert [p.phase for p in out] == ["steady", "load", "recovery", "alpha", "zeta"]
    assert out[0] == arm_stats("fixed_1", [r for r in rows if r.phase == "steady"], 6, phase="steady")
    assert out[0] != arm_stats("fixed_1", [r for r in rows if r.phase == "steady"], 0, phase="steady")
    classes = ["neutral", "code", "open", "structured"]
    rows = [StepSample("fixed_1", 1, True, 100 + j, 64, prompt_class=c) for c in classes for j in (0, 3)]
    assert [p.phase for p in phase_stats(rows, key="prompt_class")] == [
        "structured", "open", "neutral", "code",
    ]  # fmt: skip
    two = [StepSample("fixed_1", 1, True, 100, 64, prompt_class=c) for c in ("open", "structured")]
    assert [p.phase for p in phase_stats(two, key="prompt_class")] == ["structured", "open"]
    assert [p.n for p in phase_stats(two, key="prompt_class")] == [1, 1]


# -- rows as written: order, actuators -------------------------------------------------
def test_dropped_arms_do_not_depend_on_row_order():
    rows = [s("a", 1, 2), s("a", 1, 1), s("b", 1, 2), s("b", 1, 1), s("c", 1, 1)]
    assert decision_of(rows).dropped == (("c", 1),)


def test_main_actuator_tie_goes_to_the_first_seen():
    rows = [s("a", 1, 1, actuator=x) for x in ("request", "llama-server", "llama-server", "request")]
    assert main_actuator(rows) == "request"
    assert main_actuator(rows[1:]) == "llama-server"
    assert main_actuator([s("a", 1, 1, actuator=x) for x in ("request", "lemonade-load", "lemonade-load")]) == (
        "lemonade-load"
    )


# -- schedule --------------------------------------------------------------------------
def test_round_order_is_the_documented_shuffle():
    """Round r of seed S is random.Random(S * 1_000_003 + r).shuffle of the arms: a
    recorded seed gives the same orders again, in this version and later ones."""
    arms = ["nospec", "fixed_1", "fixed_2", "fixed_3", "fixed_4", "fixed_5"]
    for seed, rnd in ((7, 1), (7, 2), (123, 9), (0, 3)):
        want = list(arms)
        random.Random(seed * 1_000_003 + rnd).shuffle(want)
        assert round_order(arms, seed, rnd) == want
    assert arms == ["nospec", "fixed_1", "fixed_2", "fixed_3", "fixed_4", "fixed_5"]  # untouched


def test_one_load_round():
    assert [round_phase(r, 2, 1) for r in (1, 2, 3)] == ["steady", "load", "recovery"]
    assert [round_phase(r, 1, -1) for r in (1, 2)] == ["steady", "steady"]


# -- more edges: one step more or less, one ms more or less ----------------------------
def test_short_sequential_clusters_are_the_step_positions():
    assert rows_of([s("fixed_1", x, None) for x in (5, 6, 7)]).keys == (0, 1, 2)


def test_equal_latencies_have_no_spread_in_the_score():
    rows = rows_of([s("fixed_1", 100, None)] * 3)
    assert score(rows, np.ones((1, 3)))[0] == 150.0  # 100 + 0.5 * 100 + 0.2 * 0


def test_median_of_two_steps_is_the_lower():
    rows = rows_of([s("fixed_1", x, None) for x in (300, 100)])
    assert median_ms(rows, np.ones((1, 2)))[0] == 100.0  # rank ceil(0.5 * 2) = 1
    assert p95_ms(rows, np.ones((1, 2)))[0] == 300.0
    assert median_ms(rows, np.array([[1.0, 0.0]]))[0] == 300.0


def test_nearest_rank_with_more_replicates_than_two_slices():
    lat = [(i * 37) % 1000 + 1 for i in range(1000)]
    rows = rows_of([s("fixed_1", x, None) for x in lat])
    w = cluster_weights(rows.strata, 1200, np.random.default_rng(8))  # slices of 500
    got = median_ms(rows, w)
    for i in (0, 499, 500, 999, 1000, 1199):
        counts = w[i][rows.cluster]
        expanded = sorted(x for x, c in zip(lat, counts, strict=True) for _ in range(int(c)))
        assert got[i] == expanded[math.ceil(0.5 * len(expanded)) - 1]


def test_no_replicate_with_a_value_leaves_the_interval_undefined():
    def stat(r, w):
        return np.array([3.0]) if w.shape[0] == 1 else np.full(w.shape[0], np.nan)

    e = bootstrap(rows_of([s("fixed_1", 100, None)] * 2), stat, np.random.default_rng(0), 10)
    assert e.value == 3.0 and math.isnan(e.lo) and math.isnan(e.hi)


def test_resamples_just_over_2000_steps():
    from halospec_tui.verdict import resamples

    n = resamples("median_ms", 2001)
    assert n == 1999 and isinstance(n, int)  # 2000 * 2000 // 2001


def test_arm_stats_defaults_reloads_and_cv_edges():
    a = arm_stats("fixed_1", [s("fixed_1", 100, None), s("fixed_1", 300, None)])
    assert a.phase == "" and a.cv == 0.5  # two steps: sd 100 over mean 200
    assert arm_stats("fixed_1", [s("fixed_1", x, None) for x in (0, 1)]).cv == 1.0
    own = [
        StepSample("adaptive", 2, True, 100, 64, round=1),
        StepSample("adaptive", 3, True, 100, 64, reload_ms=50, round=2),
    ]
    assert arm_stats("adaptive", own).tps.value == pytest.approx(128_000 / 250)


def test_arm_stats_server_throughput_reads_predicted_tokens_over_predicted_time():
    rows = [
        s("fixed_2", 100, None, predicted_n=40, predicted_ms=70.0),
        s("fixed_2", 300, None, predicted_n=60, predicted_ms=150.0),
    ]
    assert arm_stats("fixed_2", rows).server_tps.value == pytest.approx(100 / 0.22)


def test_arm_stats_seeds_and_replicates_per_figure():
    """Each figure is a bootstrap seeded by (seed, arm, phase, figure); on a long run the
    percentile figures take fewer replicates."""
    rows = [s("fixed_2", 100 + (i * 37) % 101, None, predicted_n=50, predicted_ms=40.0 + i % 7)
            for i in range(2001)]  # fmt: skip
    a = arm_stats("fixed_2", rows, seed=5, phase="load")
    r = rows_of(rows, with_reloads=True)
    for name, fn, n_boot in (("tps", tps, 2000), ("mean_ms", mean_ms, 2000),
                             ("median_ms", median_ms, 1999), ("p95_ms", p95_ms, 1999),
                             ("score", score, 1999)):  # fmt: skip
        assert getattr(a, name) == bootstrap(r, fn, _seeded(5, "fixed_2", "load", name), n_boot)
    timed = rows_of(rows, "predicted_n", "predicted_ms")
    assert a.server_tps == bootstrap(timed, tps, _seeded(5, "fixed_2", "load", "server_tps"))
    # Another seed, arm name or phase draws other replicates.
    assert bootstrap(r, mean_ms, _seeded(5, "fixed_2", "", "mean_ms")) != a.mean_ms
    assert bootstrap(r, mean_ms, _seeded(5, "fixed_3", "load", "mean_ms")) != a.mean_ms
    assert bootstrap(r, mean_ms, _seeded(6, "fixed_2", "load", "mean_ms")) != a.mean_ms


def test_ratio_pays_the_reloads_of_den_changes_too():
    num = [s("fixed_4", 100, r) for r in (1, 2)]
    den = [
        StepSample("adaptive", 2, True, 200, 64, round=1),
        StepSample("adaptive", 3, True, 200, 64, reload_ms=100, round=2),
    ]
    # num 128 tokens / 0.2 s = 640; den 128 / 0.5 s = 256
    assert ratio(num, den, 0, "x").value == pytest.approx(2.5)


def test_paired_ratio_over_many_rounds_equals_the_reference_bootstrap():
    rounds = range(1, 21)
    a = [100 + (r * 29) % 41 for r in rounds]
    b = [150 + (r * 17) % 53 for r in rounds]
    num = [s("fixed_4", x, r) for x, r in zip(a, rounds, strict=True)]
    den = [s("fixed_1", x, r) for x, r in zip(b, rounds, strict=True)]
    e = ratio(num, den, 1, "fixed_4/fixed_1")
    w = _ref_weights(["steady"] * 20, 2000, _seeded(1, "pair", "fixed_4/fixed_1"))
    reps = _ref_tps([64] * 20, a, w) / _ref_tps([64] * 20, b, w)
    lo, hi = np.percentile(reps, [2.5, 97.5])
    assert e.value == pytest.approx(sum(b) / sum(a), rel=1e-12)
    assert e.lo == pytest.approx(lo, rel=1e-12) and e.hi == pytest.approx(hi, rel=1e-12)


def test_status_of_an_arm_the_verdict_does_not_know():
    assert decide([]).status("fixed_1") == "-"
    v = decide([StepSample("fixed_1", 1, False, 0, 0)])
    assert v.status("fixed_1") == "-"


def _long_race():
    """16 rounds (9..16 under load) of 4 steps, each arm's latency varying by round."""
    rows = []
    for rnd in range(1, 17):
        for arm, base in (("nospec", 300), ("fixed_2", 202), ("fixed_3", 200)):
            rows += [s(arm, base + (rnd * 7 + j * 13) % 17, rnd, phase="load" if rnd > 8 else "steady")
                     for j in range(4)]  # fmt: skip
    return rows


def test_decide_passes_its_seed_to_every_figure():
    rows = _long_race()
    v = decide(rows, seed=3)
    mine = [r for r in rows if r.arm == "fixed_2"]
    assert v.arms[1] == arm_stats("fixed_2", mine, 3)
    assert v.arms[1] != arm_stats("fixed_2", mine, 0)  # the seed matters for these rows
    load = [r for r in mine if r.phase == "load"]
    assert v.phases[3] == arm_stats("fixed_2", load, 3, phase="load")
    assert v.phases[3] != arm_stats("fixed_2", load, 0, phase="load")
    classed = [StepSample(r.arm, 0, True, r.latency_ms, 64, round=r.round,
                          prompt_class="open" if r.round % 2 else "structured") for r in rows]  # fmt: skip
    c = decide(classed, seed=3).classes
    mine = [r for r in classed if r.arm == "fixed_2" and r.prompt_class == "open"]
    assert (c[3].arm, c[3].phase) == ("fixed_2", "open")
    assert c[3] == arm_stats("fixed_2", mine, 3, phase="open")
    assert c[3] != arm_stats("fixed_2", mine, 0, phase="open")


def test_decide_recommends_with_its_tolerance():
    # nospec is 300.5 / 200.5 = 1.499x slower: within 60% it ties and, K 0, is recommended.
    v = decide(_race(), tolerance=0.6)
    assert v.status("nospec") == "tied"
    assert (v.recommended, v.recommended_k, v.smallest_of_tie) == ("nospec", 0, True)


def test_recommend_k_zero_beats_k_one():
    stats = _stats("nospec", "fixed_1")
    tied = [Comparison("nospec", Estimate(1.0, 0.99, 1.01), "tied", True)]
    assert recommend("fixed_1", tied, stats) == ("nospec", 0, True)


def test_pmin_threshold_is_everything_after_the_first_colon():
    from halospec_tui.arms import p_min_of

    assert p_min_of("pmin:0.25") == 0.25
    assert p_min_of("pmin:x:0.25") == 0.0  # not a number


def test_nearest_rank_slices_cover_every_replicate_of_a_very_long_run():
    # 250 000 steps: slices of 500 000 // 250 000 = 2 replicates, so 5 replicates take 3.
    from halospec_tui.verdict import Rows

    n = 250_000
    lat = (np.arange(n) * 7919 % n).astype(float) + 1.0
    rows = Rows(np.ones(n), lat, np.arange(n) * 400 // n, tuple(range(400)), ("steady",) * 400)
    w = cluster_weights(rows.strata, 5, np.random.default_rng(2))
    got = median_ms(rows, w)
    for i in range(5):
        expanded = np.sort(np.repeat(lat, w[i][rows.cluster].astype(int)))
        assert got[i] == expanded[math.ceil(0.5 * len(expanded)) - 1]


def test_no_steps_no_throughput_at_the_figure_level():
    empty = rows_of([])
    assert empty.n == 0 and empty.keys == ()
    assert np.isnan(tps(empty, np.ones((1, 0)))[0]) and np.isnan(mean_ms(empty, np.ones((1, 0)))[0])
