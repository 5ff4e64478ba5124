from halospec_tui.controllers import (
    ThresholdController,
    ema_update,
    make_controller,
    threshold_rule,
    thresholds_from_warmup,
)


def test_thresholds_floor_of_products():
    t = thresholds_from_warmup([1905, 1000, 1176, 1100, 1300])
    # p50 = 1176 (index 2), p95 = 1905 (index 4); 999.6 -> 999, 2000.25 -> 2000
    assert (t.p50_ms, t.p95_ms) == (1176, 1905)
    assert (t.low_ms, t.high_ms) == (999, 2000)


def test_thresholds_without_warmup_success():
    t = thresholds_from_warmup([])
    assert (t.low_ms, t.high_ms, t.calibrated) == (9000, 22000, False)


def test_thresholds_single_sample():
    t = thresholds_from_warmup([2000])
    assert (t.low_ms, t.high_ms) == (1700, 2100)


def test_rule_table():
    assert threshold_rule(None, 4, 1000, 2000) == 4
    assert threshold_rule(999, 4, 1000, 2000) == 5  # below low: +1
    assert threshold_rule(999, 8, 1000, 2000) == 8  # capped at 8
    assert threshold_rule(2001, 4, 1000, 2000) == 2  # above high: -2
    assert threshold_rule(2001, 2, 1000, 2000) == 1  # at least 1
    assert threshold_rule(2001, 1, 1000, 2000) == 1
    assert threshold_rule(1000, 5, 1000, 2000) == 6  # in band, K < 6: +1
    assert threshold_rule(2000, 6, 1000, 2000) == 6  # in band, K >= 6: keep
    assert threshold_rule(1500, 7, 1000, 2000) == 7


def test_ema():
    assert ema_update(None, 1500) == 1500.0
    assert ema_update(1500.0, 500) == 0.4 * 500 + 0.6 * 1500


def test_controller_sequence_with_failure_and_truncation():
    c = ThresholdController()
    c.calibrate([1176, 1176, 1176, 1905, 1905])  # p50 1176 -> low 999; p95 1905 -> high 2000
    assert (c.thresholds.low_ms, c.thresholds.high_ms) == (999, 2000)
    assert c.next_k() == 4  # no success yet: K stays
    c.observe(4, True, 1500)
    assert c.ema_ms == 1500.0
    assert c.next_k() == 5  # in band, K < 6
    c.observe(5, True, 500)  # ema 1100
    assert c.next_k() == 6
    c.observe(6, True, 500)  # ema 860
    assert c.next_k() == 7
    c.observe(7, False, 0)  # failure: base K = 1, EMA unchanged
    assert c.ema_ms == 860.0
    assert c.next_k() == 2  # 860 < 999: 1 + 1
    c.observe(2, True, 5000)  # ema 2516
    assert c.next_k() == 1  # above high: max(2 - 2, 1)


def test_ema_is_truncated_before_the_rule():
    c = ThresholdController()
    c.calibrate([1000])  # low 850, high 1050
    c.observe(4, True, 850)
    c.observe(4, True, 851)  # ema 850.4 -> 850: not below 850
    assert int(c.ema_ms) == 850
    assert c.next_k() == 5
    c2 = ThresholdController()
    c2.calibrate([1000])
    c2.observe(4, True, 849)
    c2.observe(4, True, 850)  # ema 849.6 -> 849 < 850
    assert c2.next_k() == 5
    c2.observe(5, True, 1500)  # ema 0.4 * 1500 + 0.6 * 849.6 = 1109.76
    assert int(c2.ema_ms) == 1109
    assert c2.next_k() == 3


def test_make_controller_rejects_unknown():
    import pytest

    assert make_controller("threshold").name == "threshold"
    with pytest.raises(ValueError, match="unknown controller"):
        make_controller("pid")
