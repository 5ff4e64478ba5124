"""Verdicts: the seeded bootstrap, tie/worse rules, elimination, stopping, recommendations."""

import numpy as np
import pytest

from halospec_tui.arms import fixed_k, p_min_of
from halospec_tui.results.export_text import paste_setting, recommendation_line
from halospec_tui.schedule import grown_block, prompt_index, round_blocks, round_order, round_phase
from halospec_tui.stats import StepSample, percentile_nearest_rank
from halospec_tui.verdict import (
    Comparison,
    Estimate,
    bootstrap,
    classify,
    cluster_weights,
    decide,
    decision_of,
    mean_ms,
    median_ms,
    newly_worse,
    p95_ms,
    recommend,
    rows_of,
    stop_reason,
    tps,
)


def s(mode, lat, rnd=1, tokens=64, ok=True, settle=False, **kw):
    return StepSample(mode, fixed_k(mode) or 0, ok, lat, tokens, round=rnd, settle=settle, **kw)


def test_arm_k():
    assert [fixed_k(m) for m in ("nospec", "fixed_1", "fixed_12", "adaptive", "fixed_x")] == [
        0, 1, 12, None, None,
    ]  # fmt: skip


def test_bootstrap_pinned_figures_with_a_fixed_seed():
    # 3 steps of 64 tokens in 100, 200, 300 ms: 192 tokens in 0.6 s = 320 tok/s.
    rows = rows_of([s("fixed_1", x, None) for x in (100, 200, 300)])
    e = bootstrap(rows, tps, np.random.default_rng(0))
    assert e == Estimate(320.0, 213.33333333333334, 640.0)
    # The CI's ends are the all-300 ms and all-100 ms draws (each 1 in 27 > 2.5%).
    assert e.lo == pytest.approx(64 / 0.3) and e.hi == pytest.approx(64 / 0.1)


def test_rounds_are_resampled_whole():
    # Each round holds 100 and 300 ms: redrawing whole rounds cannot move the mean...
    rows = rows_of([s("fixed_1", x, rnd) for rnd in (1, 2) for x in (100, 300)])
    assert rows.keys == (1, 2)
    e = bootstrap(rows, mean_ms, np.random.default_rng(5))
    assert (e.value, e.lo, e.hi) == (200.0, 200.0, 200.0)
    # ...while steps as clusters (a sequential run) spread.
    flat = rows_of([s("fixed_1", x, None) for x in (100, 300, 100, 300)])
    f = bootstrap(flat, mean_ms, np.random.default_rng(5))
    assert f.lo < 200.0 < f.hi


def test_cluster_weights_redraw_within_strata_and_pair_with_the_same_seed():
    strata = ("steady", "steady", "load", "steady")
    a = cluster_weights(strata, 300, np.random.default_rng(3))
    b = cluster_weights(strata, 300, np.random.default_rng(3))
    assert (a == b).all()
    assert (a[:, [0, 1, 3]].sum(axis=1) == 3).all() and (a[:, 2] == 1).all()


def test_weighted_nearest_rank_is_the_nearest_rank_of_the_expanded_steps():
    rng = np.random.default_rng(9)
    for _ in range(50):
        lat = [int(x) for x in rng.integers(1, 50, size=6)]
        rows = rows_of([s("fixed_1", x, None) for x in lat])
        w = rng.integers(0, 4, size=(1, 6)).astype(float)
        if w.sum() == 0:
            continue
        expanded = [x for x, c in zip(lat, w[0], strict=True) for _ in range(int(c))]
        for pct, fn in ((50.0, median_ms), (95.0, p95_ms)):
            assert fn(rows, w)[0] == percentile_nearest_rank(expanded, pct)


def test_no_time_no_throughput():
    rows = rows_of([s("fixed_1", 0, None, tokens=0)])
    assert bootstrap(rows, tps, np.random.default_rng(0)) is None


@pytest.mark.parametrize(
    ("lo", "hi", "tol", "expected"),
    [
        (1.021, 1.05, 0.02, ("worse", True)),  # the whole CI is beyond 2%
        (1.02, 1.07, 0.02, ("tied", False)),  # reaches exactly to 1 + tolerance: tied, open
        (0.99, 1.02, 0.02, ("tied", True)),  # within tolerance everywhere: equivalent
        (0.97, 1.0201, 0.02, ("tied", False)),  # neither equivalent nor known to +-2%
        (1.0, 1.5, 0.25, ("tied", True)),  # known to +-25% (half-width exactly 0.25)
        (1.0, 1.5078125, 0.25, ("tied", False)),  # half-width just over
    ],
)
def test_tied_and_worse_at_the_tolerance_boundary(lo, hi, tol, expected):
    assert classify(Estimate((lo + hi) / 2, lo, hi), tol) == expected


def test_no_ratio_is_undecided():
    assert classify(None, 0.02) == ("tied", False)


def _stats(*arms):
    from halospec_tui.verdict import ArmStats

    return {a: ArmStats(a, fixed_k(a), 1, None, None, None, None, None, None, None) for a in arms}


def test_recommend_the_smallest_k_among_the_tied():
    comps = [
        Comparison("fixed_2", Estimate(1.0, 0.99, 1.01), "tied", True),
        Comparison("fixed_6", Estimate(1.3, 1.2, 1.4), "worse", True),
        Comparison("fixed_4", Estimate(1.0, 0.99, 1.01), "tied", True),
    ]
    assert recommend("fixed_3", comps, _stats("fixed_2", "fixed_3", "fixed_4", "fixed_6")) == (
        "fixed_2", 2, True,
    )  # fmt: skip
    # nospec tied with the best: speculation buys nothing, turn it off.
    comps.append(Comparison("nospec", Estimate(1.0, 0.98, 1.01), "tied", True))
    stats = _stats("nospec", "fixed_2", "fixed_3", "fixed_4", "fixed_6")
    assert recommend("fixed_3", comps, stats) == ("nospec", 0, True)
    # Nothing tied: the best itself.
    assert recommend("fixed_3", comps[1:2], stats) == ("fixed_3", 3, False)
    # An adaptive best has no K to paste.
    assert recommend("adaptive", [], _stats("adaptive")) == ("adaptive", None, False)


def _race():
    """fixed_3 fastest (200 ms), fixed_2 1% slower, nospec 50% slower: 4 rounds of 4."""
    rows = []
    jitter = [0, 4, -4, 2]
    for rnd in range(1, 5):
        for arm, base in (("nospec", 300), ("fixed_2", 202), ("fixed_3", 200)):
            rows += [s(arm, base + j, rnd, actuator="llama-server") for j in jitter]
    return rows


def test_decide_on_a_race():
    v = decide(_race())
    assert v.best == "fixed_3"
    assert v.status("nospec") == "worse" and v.status("fixed_2") == "tied"
    assert v.comparison("fixed_2").settled  # 1% apart with tight CIs: equivalent
    assert v.decisive
    assert (v.recommended, v.recommended_k, v.smallest_of_tie) == ("fixed_2", 2, True)
    assert v.vs_nospec_arm == "fixed_3" and v.vs_nospec.value == pytest.approx(300.5 / 200.5)  # mean latencies
    assert newly_worse(v) == ["nospec"]
    line = recommendation_line(v, "llama-server")
    assert line.startswith("use K = 2 (tied with the fastest, fixed_3, within 2%")
    assert line.endswith(
        "llama-server flags: -md DRAFT.gguf --spec-type draft-simple --spec-draft-n-max 2 "
        "--spec-draft-n-min 0 --spec-draft-p-min 0"
    )


def test_settle_rows_and_failures_are_not_measurements():
    rows = _race() + [s("fixed_2", 1, 4, settle=True), s("fixed_2", 0, 4, ok=False)]
    v = decide(rows)
    assert next(a for a in v.arms if a.arm == "fixed_2").n == 16


def test_a_dropped_arm_no_longer_holds_up_the_decision():
    rows = _race()
    # fixed_9 ran only round 1, as fast as fixed_3 within noise: undecided against it...
    rows += [s("fixed_9", 199 + j, 1) for j in (0, 30, -30, 15)]
    assert not decide(rows).decisive
    # ...but once it was dropped it is settled, and never recommended.
    v = decide(rows, eliminated=[("fixed_9", 1)])
    assert v.decisive and v.status("fixed_9") == "eliminated" and v.recommended != "fixed_9"


def test_stop_reasons():
    v = decide(_race())
    kw = {"min_rounds": 3, "max_rounds": 10, "elapsed_s": 5.0, "max_time_s": 60.0}
    assert stop_reason(v, 2, **kw) is None  # decisive, but too early
    assert stop_reason(v, 3, **kw) == "decisive"
    undecided = decide(_race() + [s("fixed_9", 199 + j, 1) for j in (0, 30, -30, 15)])
    assert stop_reason(undecided, 3, **kw) is None
    assert stop_reason(undecided, 10, **kw) == "rounds"
    assert stop_reason(undecided, 4, **{**kw, "elapsed_s": 60.0}) == "time"


def test_paste_setting_per_server_kind():
    assert paste_setting(5, "lemonade-load") == (
        'Lemonade /api/v1/load: {"llamacpp_args": "--spec-type draft-simple '
        '--spec-draft-n-max 5 --spec-draft-n-min 0 --spec-draft-p-min 0"}'
    )
    assert paste_setting(0, "lemonade-load") == (
        'Lemonade /api/v1/load: {"llamacpp_args": "--spec-type none"}'
    )
    assert paste_setting(16, "lemonade-load", 0.75).endswith('--spec-draft-p-min 0.75"}')
    assert paste_setting(5, "request") == (
        'request body: "speculative": {"n_max": 5, "n_min": 0, "p_min": 0}'
    )
    assert paste_setting(0, "llama-server") == (
        "llama-server flags: no speculation (no -md; --spec-type none)"
    )
    assert paste_setting(3, "field:speculative_draft_length") == (
        "K never reached the server through actuator field:speculative_draft_length: "
        "nothing to paste"
    )
    assert fixed_k("pmin:0.75") == 16 and p_min_of("pmin:0.75") == 0.75 and p_min_of("fixed_3") == 0


def test_decision_counts_from_rows():
    rows = _race()[:8] + [s("fixed_2", 1, 1, settle=True)]
    rows[0] = StepSample("nospec", 0, True, 500, 64, round=1, timestamp="2026-01-01T00:00:00+00:00")
    rows[-1] = StepSample("fixed_2", 2, True, 100, 64, round=2, settle=True,
                          timestamp="2026-01-01T00:00:09+00:00")  # fmt: skip
    d = decision_of(rows)
    assert (d.rounds, d.requests, d.measured, d.settle) == (2, 9, 8, 1)
    assert d.seconds == pytest.approx(9.5)  # first start to last end
    assert d.dropped == (("nospec", 1),)  # ran round 1 only, the run went to round 2


def test_round_order_is_a_reproducible_shuffle():
    arms = ["nospec", "fixed_1", "fixed_2", "fixed_3", "fixed_4"]
    orders = [round_order(arms, 7, r) for r in range(1, 6)]
    assert all(sorted(o) == sorted(arms) for o in orders)
    assert orders == [round_order(arms, 7, r) for r in range(1, 6)]
    assert len({tuple(o) for o in orders}) > 1  # fresh each round
    assert round_order(arms, 8, 1) != round_order(arms, 7, 1) or round_order(
        arms, 8, 2
    ) != round_order(arms, 7, 2)
    blocks = round_blocks(arms, 7, 2, 3)
    assert [b.arm for b in blocks] == orders[1]
    assert [(b.round, b.position, b.steps) for b in blocks] == [(2, i, 3) for i in range(1, 6)]


def test_round_phase_and_prompts():
    assert [round_phase(r, 2, 2) for r in range(1, 6)] == [
        "steady", "load", "load", "recovery", "recovery",
    ]  # fmt: skip
    assert [round_phase(r, None, 2) for r in (1, 2, 3)] == ["steady"] * 3
    assert [round_phase(r, 1, 0) for r in (1, 2)] == ["steady"] * 2
    assert [prompt_index(8, i) for i in (1, 4)] == [8, 11]


def test_blocks_grow_as_arms_are_dropped():
    assert [grown_block(4, 9, n) for n in (9, 5, 4, 3, 2, 1)] == [4, 4, 8, 12, 16, 16]
    assert grown_block(2, 3, 0) == 2


def test_long_runs_take_fewer_replicates_for_percentiles_only():
    from halospec_tui.verdict import resamples

    assert resamples("tps", 10**6) == resamples("mean_ms", 10**6) == 2000
    assert resamples("p95_ms", 2000) == 2000
    assert [resamples(s, 4000) for s in ("median_ms", "p95_ms", "score")] == [1000] * 3
    assert resamples("p95_ms", 22_000) == 200  # never fewer than 200
