import math

import pytest

from halospec_tui.stats import (
    StepSample,
    adaptive_regret,
    convergence_step,
    k_changes,
    percentile_nearest_rank,
    phase_means,
    population_stddev,
    slo_score,
    summarize,
    summarize_arm,
    throughput,
    winner,
)


@pytest.mark.parametrize(
    "values,pct,expected",
    [
        ([], 50, None),
        ([7], 50, 7),
        ([7], 95, 7),
        ([3, 1, 2], 50, 2),  # ceil(1.5)=2 -> index 1
        ([3, 1, 2], 95, 3),  # ceil(2.85)=3 -> index 2
        ([10, 20], 50, 10),  # ceil(1.0)=1 -> index 0
        ([10, 20], 95, 20),
        (list(range(1, 21)), 95, 19),  # ceil(19.0)=19 -> index 18
        (list(range(1, 21)), 50, 10),
        ([5, 5, 1, 9], 0, 1),  # rank 0 clamps to the first
    ],
)
def test_nearest_rank(values, pct, expected):
    assert percentile_nearest_rank(values, pct) == expected


def test_stddev_is_population_and_zero_for_one():
    assert population_stddev([]) is None
    assert population_stddev([42]) == 0.0
    assert population_stddev([100, 200, 300]) == pytest.approx(math.sqrt(20000 / 3), abs=1e-12)
    assert population_stddev([2, 4, 4, 4, 5, 5, 7, 9]) == 2.0


def test_throughput_and_score():
    assert throughput([64, 64, 64], [100, 200, 300]) == 320.0
    assert throughput([], []) is None
    assert throughput([64], [0]) is None
    assert slo_score(200.0, 300, 10.0) == 200.0 + 150.0 + 2.0
    assert slo_score(None, 1, 1.0) is None


def test_k_changes_and_convergence():
    assert k_changes([]) == 0
    assert k_changes([4]) == 0
    assert k_changes([4, 5, 5, 6, 4]) == 3
    assert convergence_step([4, 5, 6, 6, 6, 6, 6, 7]) == 7
    assert convergence_step([4, 4, 4, 4]) is None  # fewer than 5 steps
    assert convergence_step([4, 4, 4, 4, 4]) == 5
    assert convergence_step([1, 2, 1, 2, 1, 2]) is None
    assert convergence_step([3, 3, 3], window=3) == 3


def _s(mode, k, ok, lat, tok=64, **kw):
    return StepSample(mode, k, ok, lat if ok else 0, tok if ok else 0, **kw)


def test_summary_of_a_mode_with_a_failure():
    rows = [
        _s("fixed_1", 1, True, 100),
        _s("fixed_1", 1, True, 300),
        _s("fixed_1", 1, False, 0),
        _s("fixed_1", 1, True, 200),
    ]
    s = summarize_arm("fixed_1", rows)
    assert (s.steps, s.successes, s.failures) == (4, 3, 1)
    assert s.success_rate == 0.75
    assert s.avg == 200.0
    assert (s.median, s.p95, s.min, s.max) == (200, 300, 100, 300)
    assert s.stddev == pytest.approx(81.64965809277261)
    assert s.throughput == 320.0
    assert s.score == pytest.approx(200 + 150 + 0.2 * 81.64965809277261)
    assert s.k_changes == 0 and s.convergence_step is None


def test_summary_with_no_success_has_no_figures():
    s = summarize_arm("fixed_2", [_s("fixed_2", 2, False, 0)])
    assert s.success_rate == 0.0
    assert (s.avg, s.median, s.p95, s.stddev, s.throughput, s.score) == (None,) * 6


def test_server_extras():
    rows = [
        _s("fixed_4", 4, True, 100, drafted=80, accepted=40, predicted_n=64, predicted_ms=90.0),
        _s("fixed_4", 4, True, 100, drafted=20, accepted=10, predicted_n=64, predicted_ms=110.0),
        _s("fixed_4", 4, False, 0, drafted=None),
    ]
    s = summarize_arm("fixed_4", rows)
    assert (s.drafted, s.accepted, s.acceptance) == (100, 50, 0.5)
    assert s.server_tps == 128 / 0.2


def test_winner_first_lowest_wins_ties():
    rows = [_s("a", 1, True, 100), _s("b", 2, True, 50), _s("c", 3, True, 50), _s("d", 4, False, 0)]
    sums = summarize(rows)
    assert [s.arm for s in sums] == ["a", "b", "c", "d"]
    assert winner(sums).arm == "b"
    assert winner([]) is None


def test_phase_means_and_adaptive_regret_per_phase():
    rows = [
        StepSample("fixed_2", 2, True, 100, 64, phase="steady"),
        StepSample("fixed_2", 2, True, 300, 64, phase="load"),
        StepSample("fixed_2", 2, True, 500, 64, phase="load"),
        StepSample("fixed_6", 6, True, 80, 64, phase="steady"),
        StepSample("fixed_6", 6, True, 450, 64, phase="load"),
        StepSample("fixed_6", 6, False, 0, 0, phase="recovery"),  # failures do not count
        StepSample("adaptive", 4, True, 90, 64, phase="steady"),
        StepSample("adaptive", 5, True, 420, 64, phase="load"),
        StepSample("adaptive", 3, True, 99, 64, phase="recovery"),
    ]
    assert phase_means(rows) == {
        "fixed_2": {"steady": 100.0, "load": 400.0},
        "fixed_6": {"steady": 80.0, "load": 450.0},
        "adaptive": {"steady": 90.0, "load": 420.0, "recovery": 99.0},
    }
    reg = adaptive_regret(rows)
    assert [(r.phase, r.best_fixed, r.best_ms, r.adaptive_ms) for r in reg] == [
        ("steady", "fixed_6", 80.0, 90.0),
        ("load", "fixed_2", 400.0, 420.0),
    ]  # no fixed arm succeeded in recovery: no comparison there
    assert reg[0].regret == pytest.approx(0.125) and reg[1].regret == pytest.approx(0.05)
