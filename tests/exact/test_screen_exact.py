"""The screen at its edges: what the fit refuses, which K it checks, what it races and
what it says, with figures worked out by hand from the model
tokens/s(K) = 1000 E(K) / (t0 (1 + r K)), E(K) = (1 - a^(K+1)) / (1 - a).

Rounds are built from the model (so the fit must recover its parameters); a factor
on one arm's times stands for a server that the model misses on that arm.
"""

from __future__ import annotations

import math

import pytest

from halospec_tui.screen import Counts, Screen, fit, screen

T975_DF1 = 12.706204736  # Student-t, 97.5%, one degree of freedom (table)
T95_DF1 = 6.313751515  # Student-t, 95%, one degree of freedom (table)


def e_k(a: float, k: int) -> float:
    return (1 - a ** (k + 1)) / (1 - a)


def block(k: int, tokens: float, a: float, t0: float, r: float, slow: float = 1.0) -> Counts:
    """`tokens` generated with K drafts: tokens / E(K) passes of t0 (1 + r K) ms each."""
    if k == 0:
        return Counts(tokens, tokens * t0 * slow)
    passes = tokens / e_k(a, k)
    return Counts(tokens, passes * t0 * (1 + r * k) * slow, passes * k, tokens - passes)


def model_rounds(
    ks: tuple[int, ...], a: float = 0.7, t0: float = 40.0, r: float = 0.2,
    slow: dict[int, float] | None = None, moments: tuple[float, ...] = (1.0, 1.3),
) -> list[dict[int, Counts]]:  # fmt: skip
    """One round per moment (a factor on every time of the round), each K 400 tokens."""
    slow = slow or {}
    return [{k: block(k, 400, a, t0 * m, r, slow.get(k, 1.0)) for k in ks} for m in moments]


# -- fit: what it refuses --------------------------------------------------------------------
def test_fit_of_the_smallest_positive_figures() -> None:
    # nospec: 1 token in 1 ms (t0 = 1); K = 1: 1.5 tokens of which 0.5 accepted, so one
    # pass, with 1 draft: a = 0.5; that pass took 3 ms, so 1 + r = 3, r = 2
    f = fit([{0: Counts(1.0, 1.0), 1: Counts(1.5, 3.0, 1.0, 0.5)}], 1)
    assert f is not None
    assert (f.acceptance, f.t0_ms, f.cost_ratio) == pytest.approx((0.5, 1.0, 2.0), rel=1e-12)


@pytest.mark.parametrize(
    ("nospec", "top"),
    [
        (Counts(0.0, 10.0), Counts(1.5, 3.0, 1.0, 0.5)),  # nospec made no token
        (Counts(10.0, 0.0), Counts(1.5, 3.0, 1.0, 0.5)),  # nospec took no time
        (Counts(10.0, 10.0), Counts(1.0, 3.0, 1.0, 1.0)),  # every token accepted: no pass
    ],
)
def test_fit_refuses_rounds_without_time_tokens_or_passes(nospec: Counts, top: Counts) -> None:
    assert fit([{0: nospec, 1: top}], 1) is None


def test_fit_refuses_nospec_as_the_largest_k() -> None:
    # even when the K = 0 block reports draft counters, there is no cost per draft
    assert fit([{0: Counts(10.0, 100.0, 5.0, 2.0)}], 0) is None


# -- screen: exact results on each path -------------------------------------------------------
def test_without_nospec_and_two_speculating_k_every_k_races() -> None:
    rounds = model_rounds((0, 8))
    assert screen(rounds, range(9), 0.02) == Screen(
        tuple(range(9)), (), False, "needs nospec and two speculating K measured"
    )


def test_without_draft_counters_there_is_no_fit() -> None:
    rounds = [{k: Counts(c.tokens, c.ms) for k, c in r.items()} for r in model_rounds((0, 4, 8))]
    assert screen(rounds, range(9), 0.02) == Screen(
        tuple(range(9)), (), False, "no draft counters to fit acceptance from"
    )


def test_k_1_counts_as_a_speculating_k() -> None:
    s = screen(model_rounds((0, 1, 2)), range(5), 0.02)
    assert s.fit_ok is True
    # a = 0.7, r = 0.2: E(K) / (1 + 0.2 K) = 1.417, 1.564, 1.583, 1.541 for K = 1..4
    assert s.race == (0, 2, 3, 4)
    assert "checked on K = 1:" in s.why


def test_too_few_rounds_to_check_keeps_the_fit_and_its_curve() -> None:
    s = screen(model_rounds((0, 4, 8), moments=(1.0,)), range(9), 0.02)
    assert (s.race, s.fit_ok, s.miss) == (tuple(range(9)), False, None)
    assert s.why == "K = 4 has too few rounds to check the fit"
    assert s.fit is not None
    assert (s.fit.acceptance, s.fit.t0_ms, s.fit.cost_ratio) == pytest.approx((0.7, 40.0, 0.2))
    want = [(k, 1000 * e_k(0.7, k) / (40.0 * (1 + 0.2 * k))) for k in range(9)]
    assert [k for k, _ in s.predicted] == [k for k, _ in want]
    assert [v for _, v in s.predicted] == pytest.approx([v for _, v in want], rel=1e-9)


def slow_top_rounds() -> list[dict[int, Counts]]:
    # K = 0, 2, 4, 8 measured; K = 8 4% slower than the model. The fit from nospec and
    # K = 8 then has 1 + 8 r = 2.6 * 1.04 = 2.704, r = 0.213, and predicts K = 4 at
    # 1 + 4 * 0.213 = 1.852 per pass where it takes 1.8: measured / predicted = 1.852 / 1.8
    return model_rounds((0, 2, 4, 8), slow={8: 1.04})


def test_the_fit_is_on_the_largest_k_and_the_check_on_the_middle_one() -> None:
    s = screen(slow_top_rounds(), range(9), 0.05)
    assert s.fit_ok is True and s.miss == pytest.approx(1.852 / 1.8 - 1, rel=1e-9)
    assert s.fit is not None
    assert (s.fit.acceptance, s.fit.cost_ratio) == pytest.approx((0.7, 0.213), rel=1e-9)
    # E(K) / (1 + 0.213 K), K = 1..5: 1.401, 1.536, 1.546, 1.497, 1.424: the top 3, 2, 4
    assert s.race == (0, 2, 3, 4)
    assert s.why == (
        "the model (a = 0.70, pass cost 1 + 0.213 K) checked on K = 4: measured/predicted "
        "+2.9% (+-0.0% at 95%, within 5% not ruled out): racing K in [0, 2, 3, 4]"
    )


def test_a_miss_keeps_the_fit_and_its_curve_and_races_every_k() -> None:
    s = screen(slow_top_rounds(), range(9), 0.02)
    assert s.race == tuple(range(9)) and s.fit_ok is False
    assert s.why == "the model misses K = 4 by +2.9% (beyond 2% at 95%): racing every K"
    assert s.miss == pytest.approx(1.852 / 1.8 - 1, rel=1e-9)
    assert s.fit is not None and s.fit.cost_ratio == pytest.approx(0.213, rel=1e-9)
    want = [1000 * e_k(0.7, k) / (s.fit.t0_ms * (1 + 0.213 * k)) for k in range(9)]
    assert [k for k, _ in s.predicted] == list(range(9))
    assert [v for _, v in s.predicted] == pytest.approx(want, rel=1e-9)


def test_when_nospec_is_predicted_fastest_the_fastest_speculating_k_still_races() -> None:
    # a = 0.3, r = 0.5: E(K) / (1 + 0.5 K) = 1, 0.867, 0.695 for K = 0, 1, 2
    s = screen(model_rounds((0, 2, 4), a=0.3, r=0.5), range(5), 0.02, keep=1)
    assert s.fit_ok is True and s.race == (0, 1)
    assert s.why.endswith("racing K in [0, 1]")
    assert s.why.startswith("the model (a = 0.30, pass cost 1 + 0.500 K) checked on K = 2:")


def test_the_check_text_gives_the_miss_and_its_interval() -> None:
    # K = 4 as the model says in round 1, 10% slower in round 2: per-round logs 0 and
    # -log 1.1; mean -log(1.1) / 2 (a miss of 1.1^-0.5 - 1 = -4.65%), standard error
    # log(1.1) / 2, radius 12.706 * 0.04766 = 0.6056, exp - 1 = +83.2%
    rounds = model_rounds((0, 4, 8))
    rounds[1][4] = block(4, 400, 0.7, 40.0 * 1.3, 0.2, 1.1)
    s = screen(rounds, range(9), 0.02)
    assert math.expm1(T975_DF1 * math.log(1.1) / 2) == pytest.approx(0.8322, abs=1e-4)
    assert s.fit_ok is True
    assert s.why == (
        "the model (a = 0.70, pass cost 1 + 0.200 K) checked on K = 4: measured/predicted "
        "-4.7% (+-83.2% at 95%, within 2% not ruled out): racing K in [0, 2, 3, 4]"
    )


def test_the_check_interval_is_at_the_confidence_asked() -> None:
    # as above at 90%: radius 6.314 * 0.04766 = 0.3009, exp - 1 = +35.1%
    rounds = model_rounds((0, 4, 8))
    rounds[1][4] = block(4, 400, 0.7, 40.0 * 1.3, 0.2, 1.1)
    assert math.expm1(T95_DF1 * math.log(1.1) / 2) == pytest.approx(0.3510, abs=1e-4)
    s = screen(rounds, range(9), 0.02, confidence=0.9)
    assert "measured/predicted -4.7% (+-35.1% at 90%, within 2% not ruled out)" in s.why
    # at 30% the radius (0.3859 * 0.04766 = 0.0184) no longer reaches the 2% band:
    # |miss| - radius = 0.0477 - 0.0184 = 0.0293 > log 1.02 = 0.0198
    tight = screen(rounds, range(9), 0.02, confidence=0.3)
    assert tight.fit_ok is False and tight.race == tuple(range(9))


def test_rounds_without_the_check_arm_or_a_fit_are_left_out_of_the_check() -> None:
    good = model_rounds((0, 4, 8))
    no_mid = {0: good[0][0], 8: good[0][8]}  # the check arm did not run
    no_nospec_tokens = {0: Counts(0.0, 0.0), 4: good[0][4], 8: good[0][8]}  # no fit
    no_time = {**good[0], 4: Counts(400.0, 0.0, 10.0, 5.0)}  # the check block's time lost
    no_tokens = {**good[0], 4: Counts(0.0, 300.0)}  # the check block made nothing
    rounds = [no_mid, no_nospec_tokens, no_time, no_tokens, *good]
    s = screen(rounds, range(9), 0.02)
    assert (s.fit_ok, s.race) == (True, (0, 2, 3, 4)) and "checked on K = 4:" in s.why
    assert s.miss == pytest.approx(0.0, abs=1e-9)


def test_one_token_in_one_millisecond_is_a_check_block() -> None:
    # t0 chosen so that the model predicts K = 4 at 1000 tokens/s: t0 = E(4) / 1.8 ms;
    # the check blocks measure 1 token in 1 ms, exactly that
    t0 = e_k(0.7, 4) / 1.8
    rounds = model_rounds((0, 8), t0=t0, moments=(1.0, 1.0))
    passes = 1 / e_k(0.7, 4)
    for r in rounds:
        r[4] = Counts(1.0, 1.0, 4 * passes, 1 - passes)
    s = screen(rounds, range(9), 0.02)
    assert (s.fit_ok, s.race) == (True, (0, 2, 3, 4)) and "checked on K = 4:" in s.why
    assert s.miss == pytest.approx(0.0, abs=1e-9)


def test_a_miss_exactly_at_the_band_is_accepted() -> None:
    # two identical rounds: the check's radius is exactly 0, so the rule is |miss| <= band
    # (the band is log(1 + tolerance)); the miss is the round's log(measured / predicted)
    rounds = model_rounds((0, 4, 8), slow={4: 1.1}, moments=(1.0, 1.0))
    f = fit(rounds[:1], 8)
    assert f is not None
    m = abs(math.log(rounds[0][4].tokens * 1000.0 / rounds[0][4].ms / f.tps(4)))
    assert m == pytest.approx(math.log(1.1), rel=1e-9)
    tol = math.expm1(m)
    while math.log1p(tol) < m:
        tol = math.nextafter(tol, math.inf)
    while math.log1p(tol) > m:
        tol = math.nextafter(tol, -math.inf)
    below = tol
    while math.log1p(below) >= m:
        below = math.nextafter(below, -math.inf)
    assert math.log1p(tol) == m  # the band is exactly the miss
    assert screen(rounds, range(9), tol).fit_ok is True
    assert screen(rounds, range(9), below).fit_ok is False


def test_a_larger_miss_within_a_wide_tolerance() -> None:
    # K = 4 10% slower than the model in both rounds: measured/predicted 1 / 1.1 = -9.1%,
    # within 15%
    s = screen(model_rounds((0, 4, 8), slow={4: 1.1}), range(9), 0.15)
    assert s.fit_ok is True
    assert s.why == (
        "the model (a = 0.70, pass cost 1 + 0.200 K) checked on K = 4: measured/predicted "
        "-9.1% (+-0.0% at 95%, within 15% not ruled out): racing K in [0, 2, 3, 4]"
    )
