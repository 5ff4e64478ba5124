"""From rows to the race's figures (race_rows.py): arm order, blocks, the screen's arms.

Every expected block is summed by hand from the rows written out in the test: a
block holds an arm's successful, measured (not settle) steps of one round; c rows of
one step sent at once count as one step with the step's wall time; an adaptive arm
pays the reloads its own K changes cost, no other arm does.
"""

from __future__ import annotations

from typing import Any

from halospec_tui.arms import fixed_k
from halospec_tui.race_rows import Block, arm_order, blocks_by_round, screen_arms, screenable
from halospec_tui.stats import StepSample


def row(arm: str, rnd: int | None, tokens: int, ms: int, **kw: Any) -> StepSample:
    k = kw.pop("k", fixed_k(arm) or 0)
    return StepSample(arm=arm, draft_length=k, success=kw.pop("success", True),
                      latency_ms=ms, tokens=tokens, round=rnd, **kw)  # fmt: skip


# -- arm order -------------------------------------------------------------------------
def test_arms_are_ordered_by_k_then_threads_then_name_with_no_k_last() -> None:
    rows_order = ["fixed_10", "zzz", "fixed_1", "adaptive", "fixed_2", "nospec", "fixed_1@t4",
                  "fixed_2", "pmin:0.5"]  # fmt: skip
    # K: nospec 0, fixed_1 1, fixed_2 2, pmin:0.5 its n_max, fixed_10 10; an @tN
    # variant before the server's own count; adaptive and a non-arm have no K
    assert arm_order(rows_order)[:4] == ["nospec", "fixed_1@t4", "fixed_1", "fixed_2"]
    assert arm_order(rows_order)[-2:] == ["adaptive", "zzz"]
    assert arm_order(["fixed_1", "nospec"]) == ["nospec", "fixed_1"]
    assert arm_order(["nospec", "fixed_1"]) == ["nospec", "fixed_1"]


# -- blocks ----------------------------------------------------------------------------
def test_a_block_sums_the_successful_measured_steps_of_its_round() -> None:
    samples = [
        row("fixed_2", 1, 0, 9000, success=False),  # failed: not a measurement
        row("fixed_2", 1, 30, 300, drafted=20, accepted=12),
        row("fixed_2", 1, 999, 1, settle=True, drafted=99, accepted=99),  # settle step
        row("fixed_2", None, 500, 5),  # a row outside the rounds
        row("fixed_2", 2, 50, 250),  # no draft counters: they count 0
        row("fixed_2", 1, 40, 500, drafted=24, accepted=16),
        row("nospec", 1, 100, 1000),
        row("fixed_2", 2, 10, 50, drafted=6, accepted=3),
        row("fixed_2", 2, 7, 7, success=False),
    ]
    out = blocks_by_round(samples)
    assert list(out) == [1, 2]
    assert out == {
        1: {"fixed_2": Block(70.0, 800.0, 2, 44.0, 28.0), "nospec": Block(100.0, 1000.0, 1, 0.0, 0.0)},
        2: {"fixed_2": Block(60.0, 300.0, 2, 6.0, 3.0)},
    }


def test_rows_without_a_round_or_measurement_make_no_block() -> None:
    assert blocks_by_round([row("fixed_2", None, 30, 300), row("nospec", 0, 10, 100)]) == {}
    assert blocks_by_round([row("fixed_2", 1, 30, 300, success=False)]) == {}
    assert blocks_by_round([row("fixed_2", 1, 30, 300, settle=True)]) == {}


def test_an_adaptive_arm_pays_the_reloads_of_its_own_k_changes_only() -> None:
    samples = [
        row("adaptive", 1, 10, 100, k=2, reload_ms=100),  # first step: nothing to change from
        row("adaptive", 1, 10, 100, k=2, reload_ms=80),  # same K: undid another arm's K
        row("adaptive", 1, 10, 100, k=4, reload_ms=150),  # its own change: 150 ms
        row("adaptive", 2, 10, 100, k=4, reload_ms=120),
        row("adaptive", 2, 10, 100, k=2, reload_ms=90),  # its own change: 90 ms
    ]
    assert blocks_by_round(samples) == {
        1: {"adaptive": Block(30.0, 450.0, 3, 0.0, 0.0)},  # 100 + 100 + (100 + 150)
        2: {"adaptive": Block(20.0, 290.0, 2, 0.0, 0.0)},  # 100 + (100 + 90)
    }


def test_a_fixed_arm_or_a_non_arm_never_pays_reloads() -> None:
    samples = [
        row("fixed_4", 1, 10, 100, reload_ms=500),
        row("fixed_4", 1, 10, 100, reload_ms=400),
        # a name that is no arm, whose K moved: still no reload counted
        row("mystery", 1, 10, 100, k=1, reload_ms=300),
        row("mystery", 1, 10, 100, k=2, reload_ms=300),
    ]
    assert blocks_by_round(samples) == {
        1: {"fixed_4": Block(20.0, 200.0, 2, 0.0, 0.0), "mystery": Block(20.0, 200.0, 2, 0.0, 0.0)},
    }


def test_requests_sent_at_once_count_as_one_step_with_its_wall_time() -> None:
    three = [row("fixed_2", 1, 20, ms, concurrency=3, step_ms=600) for ms in (500, 550, 600)]
    two = [row("fixed_2", 2, 20, ms, concurrency=2, step_ms=300) for ms in (250, 300)]
    one = [row("fixed_2", 3, 20, 400, concurrency=1, step_ms=700)]  # alone: its latency
    out = blocks_by_round([*three, *two, *one])
    assert out == {
        1: {"fixed_2": Block(60.0, 600.0, 1, 0.0, 0.0)},  # 60 tokens in 600 ms
        2: {"fixed_2": Block(40.0, 300.0, 1, 0.0, 0.0)},
        3: {"fixed_2": Block(20.0, 400.0, 1, 0.0, 0.0)},
    }


def test_without_a_step_time_concurrent_rows_count_their_own_latency() -> None:
    rows = [row("fixed_2", 1, 20, ms, concurrency=2) for ms in (250, 300)]
    assert blocks_by_round(rows) == {1: {"fixed_2": Block(40.0, 550.0, 2, 0.0, 0.0)}}


def test_an_adaptive_arm_s_concurrent_step_adds_its_reload_to_its_share() -> None:
    rows = [
        row("adaptive", 1, 10, 150, k=2, concurrency=2, step_ms=400),
        row("adaptive", 1, 10, 180, k=2, concurrency=2, step_ms=400),
        row("adaptive", 1, 10, 150, k=4, concurrency=2, step_ms=400, reload_ms=300),
        row("adaptive", 1, 10, 180, k=4, concurrency=2, step_ms=400, reload_ms=300),
    ]
    # two steps of 400 ms, each row a half (200 ms); the change to K 4 costs 300 once
    assert blocks_by_round(rows) == {1: {"adaptive": Block(40.0, 1100.0, 2, 0.0, 0.0)}}


def test_the_server_metric_reads_decoded_tokens_and_decode_time() -> None:
    samples = [
        row("fixed_2", 1, 30, 300),  # no timings: skipped
        row("fixed_2", 1, 30, 300, predicted_n=25, predicted_ms=125.5),
        row("fixed_2", 1, 30, 300, predicted_n=5),  # no decode time: skipped
        row("fixed_2", 1, 30, 300, predicted_n=0, predicted_ms=50.0),  # nothing decoded
        row("fixed_2", 1, 30, 300, predicted_n=15, predicted_ms=74.5, drafted=8, accepted=6),
        # concurrent rows: the server's own figures, each a whole step
        row("nospec", 1, 30, 300, predicted_n=10, predicted_ms=100.0, concurrency=2, step_ms=900),
        row("nospec", 1, 30, 300, predicted_n=12, predicted_ms=110.0, concurrency=2, step_ms=900),
        # an adaptive arm's reloads are no decode time
        row("adaptive", 1, 30, 300, k=2, predicted_n=20, predicted_ms=80.0),
        row("adaptive", 1, 30, 300, k=4, predicted_n=20, predicted_ms=90.0, reload_ms=700),
    ]
    assert blocks_by_round(samples, "server") == {
        1: {
            "fixed_2": Block(40.0, 200.0, 2, 8.0, 6.0),
            "nospec": Block(22.0, 210.0, 2, 0.0, 0.0),
            "adaptive": Block(40.0, 170.0, 2, 0.0, 0.0),
        }
    }
    # the same rows by the client's clock
    client = blocks_by_round(samples)[1]
    assert client["fixed_2"] == Block(150.0, 1500.0, 5, 8.0, 6.0)
    assert client["nospec"] == Block(60.0, 900.0, 1, 0.0, 0.0)
    assert client["adaptive"] == Block(60.0, 1300.0, 2, 0.0, 0.0)


# -- the screen's arms -------------------------------------------------------------------
def test_the_screen_covers_nospec_and_fixed_k_at_the_server_s_own_threads() -> None:
    assert [a for a in ("nospec", "fixed_3", "fixed_3@t4", "nospec@t2", "pmin:0.5",
                        "adaptive", "adaptive:model", "mystery") if screenable(a)] == [
        "nospec", "fixed_3"]  # fmt: skip


def test_the_screen_runs_nospec_the_middle_k_and_the_largest_k() -> None:
    others = ["fixed_3@t4", "pmin:0.5", "adaptive", "nospec@t2", "mystery"]
    assert screen_arms(["fixed_8", "fixed_4", "nospec", "fixed_2", "fixed_1", *others]) == (
        "nospec", "fixed_2", "fixed_8")  # K 1 2 4 8: the middle of four is the second
    assert screen_arms(["nospec", "fixed_1", "fixed_2", "fixed_3", "fixed_4", "fixed_5"]) == (
        "nospec", "fixed_3", "fixed_5")  # K 1..5: the third
    assert screen_arms(["nospec", "fixed_2", "fixed_3", "fixed_4", "fixed_6"]) == (
        "nospec", "fixed_3", "fixed_6")


def test_no_screen_without_nospec_or_with_fewer_than_four_fixed_k() -> None:
    assert screen_arms(["fixed_1", "fixed_2", "fixed_3", "fixed_4", "fixed_5"]) is None
    assert screen_arms(["nospec", "fixed_1", "fixed_2", "fixed_3"]) is None
    # arms the screen does not cover do not make up the count
    assert screen_arms(["nospec", "fixed_1", "fixed_2", "fixed_3", "fixed_4@t4", "pmin:0.5"]) is None
