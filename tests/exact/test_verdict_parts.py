"""The verdict's parts, exact: an arm's figures from its rows, the intervals, the
grouping of rows by arm, the reference nospec arm, the race's settings and the words
for each arm's standing. Expected figures by hand (Student-t quantiles from a table).
"""

from __future__ import annotations

import math
import statistics

import pytest

from halospec_tui.race import Drop, Interval, Race, RaceConfig, RaceStatus
from halospec_tui.race_rows import Replay
from halospec_tui.stats import StepSample
from halospec_tui.verdict import (
    ArmLine,
    arm_line,
    by_arm,
    nospec_reference,
    race_config,
    race_words,
    t_interval_of_logs,
    welch_ratio,
)

T975_DF1 = 12.706204736  # Student-t, 97.5%, one degree of freedom


def row(arm: str, lat: int, tokens: int, rnd: int | None = None, **kw: object) -> StepSample:
    return StepSample(arm, 2, True, lat, tokens, round=rnd, **kw)  # type: ignore[arg-type]


def geo_t2(a: float, b: float) -> Interval:
    """Geometric mean of two values and its 95% Student-t interval (one df), by hand:
    the logs' standard error is |log a - log b| / 2."""
    m, r = (math.log(a) + math.log(b)) / 2, T975_DF1 * abs(math.log(a / b)) / 2
    return Interval(math.exp(m), math.exp(m - r), math.exp(m + r))


def close(got: Interval | None, want: Interval) -> None:
    assert got is not None
    assert (got.value, got.lo, got.hi) == pytest.approx((want.value, want.lo, want.hi), rel=1e-9)


# -- one arm's figures ---------------------------------------------------------------------
ROWS = [
    row("fixed_2", 100, 50, 1, predicted_n=40, predicted_ms=80.0),
    row("fixed_2", 200, 50, 1),  # no server timings
    row("fixed_2", 300, 0, 2, predicted_n=20, predicted_ms=20.0),  # no tokens: no tokens/s
    StepSample("fixed_2", 2, False, 0, 0, round=3),  # failed: not a measurement
    row("fixed_2", 50, 50, 3, settle=True),  # settle: not a measurement
]


def test_arm_line_figures_from_the_successful_measured_steps() -> None:
    line = arm_line("fixed_2", ROWS, "client", "load")
    # latencies 100, 200, 300: mean 200, p95 the 3rd of 3, CV sqrt(20000 / 3) / 200;
    # server: (40 + 20) tokens over (80 + 20) ms; tokens/s 500 and 250 (the 0-token step
    # has none)
    assert line == ArmLine(
        arm="fixed_2", k=2, n=3, rounds=2, tps=line.tps, mean_ms=200.0, p95_ms=300,
        server_tps=600.0, cv=pytest.approx(math.sqrt(20000 / 3) / 200, rel=1e-12),  # type: ignore[arg-type]
        group="load",
    )  # fmt: skip
    close(line.tps, geo_t2(500.0, 250.0))


def test_arm_line_with_the_server_metric_reads_the_server_timings() -> None:
    line = arm_line("fixed_2", ROWS, "server")
    close(line.tps, geo_t2(40_000 / 80, 20_000 / 20))
    assert (line.group, line.server_tps) == ("", 600.0)


def test_arm_line_of_an_arm_without_a_measurement() -> None:
    line = arm_line("nospec", [StepSample("nospec", 0, False, 0, 0, round=1)], "client")
    assert line == ArmLine("nospec", 0, 0, 0, None, None, None, None, None)


def test_one_step_has_a_point_and_no_spread() -> None:
    line = arm_line("fixed_2", [row("fixed_2", 250, 50)], "client")
    close(line.tps, Interval(200.0, 0.0, math.inf))
    assert (line.n, line.rounds, line.cv, line.mean_ms, line.p95_ms) == (1, 0, None, 250.0, 250)


def test_two_steps_have_a_coefficient_of_variation() -> None:
    # latencies 100 and 300: population sd 100 over mean 200
    assert arm_line("fixed_2", [row("fixed_2", 100, 5), row("fixed_2", 300, 5)], "client").cv == 0.5


def test_steps_of_no_time_have_no_tokens_per_second_nor_variation() -> None:
    line = arm_line("fixed_2", [row("fixed_2", 0, 5), row("fixed_2", 0, 5)], "client")
    assert (line.n, line.tps, line.cv, line.mean_ms) == (2, None, None, 0.0)


def test_an_arm_that_changes_k_pays_its_own_reloads() -> None:
    # K 2 -> 4 (a reload of 300 ms, its own) -> 4 (none): 64 tokens over 100, 100 + 300
    # and 100 ms
    rows = [
        StepSample("adaptive", 2, True, 100, 64, reload_ms=300),
        StepSample("adaptive", 4, True, 100, 64, reload_ms=300),
        StepSample("adaptive", 4, True, 100, 64, reload_ms=300),
    ]
    line = arm_line("adaptive", rows, "client")
    logs = [math.log(640.0), math.log(160.0), math.log(640.0)]
    m, se = statistics.fmean(logs), statistics.stdev(logs) / math.sqrt(3)
    r = 4.302652730 * se  # Student-t, 97.5%, two df
    close(line.tps, Interval(math.exp(m), math.exp(m - r), math.exp(m + r)))
    assert (line.k, line.mean_ms) == (None, 100.0)


def test_the_server_metric_skips_steps_without_timings() -> None:
    rows = [row("fixed_2", 100, 5, predicted_n=10, predicted_ms=20.0),
            row("fixed_2", 100, 5, predicted_n=0, predicted_ms=20.0),
            row("fixed_2", 100, 5, predicted_n=10, predicted_ms=0.0)]  # fmt: skip
    close(arm_line("fixed_2", rows, "server").tps, Interval(500.0, 0.0, math.inf))


# -- intervals ----------------------------------------------------------------------------------
def test_an_interval_too_wide_for_a_float_is_unbounded_above() -> None:
    # logs 0 and 120: mean 60, standard error 60, radius 12.706 * 60 = 762
    t = t_interval_of_logs([0.0, 120.0])
    assert t is not None and t.hi == math.inf
    assert (t.value, t.lo) == pytest.approx(
        (math.exp(60.0), math.exp(60.0 - T975_DF1 * 60)), rel=1e-9
    )
    assert t_interval_of_logs([]) is None


def test_welch_with_one_constant_side_is_a_one_sample_t() -> None:
    # logs 0 and 2 over logs 0 and 0: difference 1, variance 2 / 2 + 0 = 1, so the
    # standard error is 1 and Welch's df is n - 1 = 1
    got = welch_ratio([1.0, math.exp(2.0)], [1.0, 1.0])
    close(got, Interval(math.e, math.exp(1 - T975_DF1), math.exp(1 + T975_DF1)))


# -- grouping, reference, settings --------------------------------------------------------------
def test_by_arm_in_order_of_first_appearance() -> None:
    rows = [row("b", 1, 1), row("a", 2, 1), row("b", 3, 1), row("c", 4, 1)]
    groups = by_arm(rows)
    assert list(groups) == ["b", "a", "c"]
    assert groups == {"b": [rows[0], rows[2]], "a": [rows[1]], "c": [rows[3]]}


class Split(list[StepSample]):
    """A store that splits itself into per-arm views (as results.samples.Samples)."""

    views: dict[str, list[StepSample]] = {"only": []}

    def by_arm_views(self) -> dict[str, list[StepSample]]:
        return self.views


def test_a_store_that_splits_itself_is_asked_to() -> None:
    assert by_arm(Split([row("a", 1, 1)])) is Split.views


def test_the_nospec_reference_is_the_fastest_arm_that_does_not_speculate() -> None:
    assert nospec_reference({"nospec@t1": 20.0, "nospec@t2": 10.0, "fixed_2": 30.0}) == "nospec@t1"
    assert nospec_reference({"fixed_2": 30.0}) is None


def test_race_config_is_the_tolerance_with_drops_from_round_3() -> None:
    assert race_config(0.05) == RaceConfig(tolerance=0.05, drop_from=3)


# -- the words for each arm's standing --------------------------------------------------------
def test_race_words_one_per_arm() -> None:
    """`within` uses the race's own slack (race.Race certifies an arm whose epsilon is
    at most tolerance * (1 + 1e-9)), so an arm the race certifies is labelled within."""
    names = ["nospec", "fixed_1", "fixed_2", "fixed_3", "fixed_4", "fixed_5", "fixed_6"]
    race = Race({a: None for a in names})
    tol = 0.02
    status = RaceStatus(
        round=6, survivors=("fixed_1", "fixed_2", "fixed_3", "fixed_4", "fixed_5", "fixed_6"),
        dropped=(Drop("nospec", 3, "fixed_3", 1.5),), decisive=True, best="fixed_3",
        recommended="fixed_1", recommended_k=1,
        epsilon=(("fixed_1", tol), ("fixed_2", tol * (1 + 1e-9)), ("fixed_3", 0.0),
                 ("fixed_4", 0.0201), ("fixed_5", 0.039)),  # fixed_6: not certified yet
    )  # fmt: skip
    words = race_words(Replay(race, status, None, ("fixed_7",)), tol)
    assert words == {
        "nospec": "dropped", "fixed_1": "within", "fixed_2": "within", "fixed_3": "best",
        "fixed_4": "racing", "fixed_5": "racing", "fixed_6": "racing",
        "fixed_7": "screened out",
    }  # fmt: skip


def test_one_token_in_one_millisecond_is_a_tokens_per_second_figure() -> None:
    line = arm_line("fixed_2", [row("fixed_2", 1, 1)], "client")
    close(line.tps, Interval(1000.0, 0.0, math.inf))


def test_steps_of_0_and_1_ms_vary_by_their_mean() -> None:
    # latencies 0 and 1: population sd 0.5 over mean 0.5
    assert arm_line("fixed_2", [row("fixed_2", 0, 5), row("fixed_2", 1, 5)], "client").cv == 1.0


def test_p95_of_twenty_steps_is_the_nineteenth() -> None:
    # nearest rank: ceil(0.95 * 20) = 19
    rows = [row("fixed_2", lat, 5) for lat in range(20, 0, -1)]
    assert arm_line("fixed_2", rows, "client").p95_ms == 19


def test_server_tokens_per_second_pools_the_timed_steps() -> None:
    # (10 + 30) tokens over (20 + 60) ms; the steps without both figures are left out
    rows = [row("fixed_2", 100, 5, predicted_n=10, predicted_ms=20.0),
            row("fixed_2", 100, 5, predicted_n=0, predicted_ms=50.0),
            row("fixed_2", 100, 5, predicted_n=7, predicted_ms=0.0),
            row("fixed_2", 100, 5, predicted_n=30, predicted_ms=60.0)]  # fmt: skip
    assert arm_line("fixed_2", rows, "client").server_tps == 500.0
