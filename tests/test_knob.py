from halospec_tui.knob import NO_EFFECT, check_knob
from halospec_tui.stats import StepSample


def s(k, drafted, accepted, tokens=64, ok=True):
    return StepSample(
        "m", k, ok, 100 if ok else 0, tokens if ok else 0, drafted=drafted, accepted=accepted
    )


def test_effective_by_drafted_per_pass():
    # K=1: 40 drafted, 30 accepted -> 34 passes; K=8: 200 drafted, 50 accepted -> 14 passes
    v = check_knob([s(1, 40, 30), s(8, 200, 50)])
    assert v.status == "effective"
    assert v.message == "K took effect: drafted/pass 1.18 at K=1 vs 14.29 at K=8"


def test_same_drafting_at_every_k_is_no_effect():
    v = check_knob([s(1, 60, 40), s(1, 64, 42), s(8, 62, 41), s(8, 60, 40)])
    assert v.status == "no-effect"
    assert v.message == f"{NO_EFFECT} (drafted/pass 2.70 at K=1 vs 2.60 at K=8)"


def test_small_k_steps_need_proportionally_small_growth():
    # K 7 -> 8 asks for 1 + 0.5 * (8/7 - 1) = 1.071x
    assert check_knob([s(7, 70, 54), s(8, 80, 54)]).status == "effective"  # 7.0 -> 8.0 per pass
    assert check_knob([s(7, 70, 54), s(8, 72, 54)]).status == "no-effect"  # 7.0 -> 7.2


def test_without_accepted_counts_per_request_stands_in():
    v = check_knob([s(1, 30, None), s(4, 100, None)])
    assert (v.status, v.message) == (
        "effective",
        "K took effect: drafted/request 30.00 at K=1 vs 100.00 at K=4",
    )


def test_unverified_and_no_drafting_cases():
    assert check_knob([]).message == "cannot confirm that K took effect: no successful step"
    assert check_knob([s(1, None, None)]).message == (
        "cannot confirm that K took effect: the server reports no drafted tokens"
    )
    assert (
        check_knob([s(2, 10, 5), s(2, 12, 6)]).message
        == "only K=2 was measured: nothing to compare"
    )
    assert check_knob([s(1, 0, 0), s(8, 0, 0)]).status == "no-effect"
    assert (
        check_knob([s(1, 0, 0, ok=False), s(8, 50, 20)]).status == "unverified"
    )  # only K=8 succeeded
