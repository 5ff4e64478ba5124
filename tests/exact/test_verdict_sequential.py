"""The verdict of a sequential run (no rounds: Student-t per arm, Welch against the
fastest, no decision) and the per-phase and per-prompt-class lines of any run.
Expected figures by hand: geometric means, Welch's interval with its df.
"""

from __future__ import annotations

import math
import statistics
from dataclasses import replace

import pytest

from halospec_tui.arms import fixed_k
from halospec_tui.confseq import t_quantile
from halospec_tui.race import Interval
from halospec_tui.stats import StepSample
from halospec_tui.verdict import SEQUENTIAL, Decision, decide, decision_of


def s(arm: str, lat: int, tokens: int = 64, **kw: object) -> StepSample:
    return StepSample(arm, fixed_k(arm) or 0, True, lat, tokens, **kw)  # type: ignore[arg-type]


def welch(num: list[float], den: list[float]) -> tuple[float, float, float]:
    """exp(mean log num - mean log den) and its Welch 95% interval, by hand."""
    la, lb = [math.log(x) for x in num], [math.log(x) for x in den]
    va, vb = statistics.variance(la) / len(la), statistics.variance(lb) / len(lb)
    df = (va + vb) ** 2 / (va**2 / (len(la) - 1) + vb**2 / (len(lb) - 1))
    d = statistics.fmean(la) - statistics.fmean(lb)
    r = t_quantile(0.975, df) * math.sqrt(va + vb)
    return math.exp(d), math.exp(d - r), math.exp(d + r)


def close(got: Interval | None, want: tuple[float, float, float]) -> None:
    assert got is not None
    assert (got.value, got.lo, got.hi) == pytest.approx(want, rel=1e-9)


FAST, SLOW, NOSPEC = (100, 110, 105), (200, 210, 190), (400, 380, 420, 410)


def test_the_fastest_by_tokens_per_second_not_by_name() -> None:
    rows = [s("fixed_1", x) for x in FAST] + [s("fixed_2", x) for x in SLOW]
    v = decide(rows, with_groups=False)
    assert (v.best, v.recommended, v.recommended_k) == ("fixed_1", "fixed_1", 1)
    assert v.decisive is False and v.interleaved is False and v.statement == SEQUENTIAL
    assert (v.metric, v.tolerance) == ("client", 0.02)
    assert v.line("fixed_1").vs_best is None  # type: ignore[union-attr]
    close(v.line("fixed_2").vs_best, welch([64_000 / x for x in FAST], [64_000 / x for x in SLOW]))  # type: ignore[union-attr]
    # no nospec arm: nothing to compare speculation with
    assert (v.vs_nospec, v.vs_nospec_arm, v.vs_nospec_ref) == (None, None, None)


def test_speculation_is_the_fastest_speculating_arm_over_nospec() -> None:
    rows = ([s("nospec", x) for x in NOSPEC] + [s("fixed_1", x) for x in FAST]
            + [s("fixed_2", x) for x in SLOW])  # fmt: skip
    v = decide(rows, with_groups=False)
    assert (v.vs_nospec_arm, v.vs_nospec_ref) == ("fixed_1", "nospec")
    close(v.vs_nospec, welch([64_000 / x for x in FAST], [64_000 / x for x in NOSPEC]))


def test_only_nospec_has_no_speculation_ratio() -> None:
    v = decide([s("nospec", x) for x in NOSPEC], with_groups=False)
    assert (v.best, v.recommended_k) == ("nospec", 0)
    assert (v.vs_nospec, v.vs_nospec_arm, v.vs_nospec_ref) == (None, None, None)


def test_no_successful_step_recommends_nothing() -> None:
    rows = [StepSample("fixed_1", 1, False, 0, 0), StepSample("nospec", 0, False, 0, 0)]
    v = decide(rows, with_groups=False)
    assert (v.best, v.recommended, v.recommended_k) == (None, None, None)
    assert v.statement == "no arm has a successful step"
    assert [(a.arm, a.n, a.tps) for a in v.lines] == [("fixed_1", 0, None), ("nospec", 0, None)]


def test_a_sequential_run_on_the_server_metric() -> None:
    # client latencies say fixed_1 is faster; the server's decode times say fixed_2 is
    fast = [s("fixed_1", 100, predicted_n=60, predicted_ms=ms) for ms in (300.0, 330.0, 310.0)]
    slow = [s("fixed_2", 200, predicted_n=60, predicted_ms=ms) for ms in (150.0, 160.0, 140.0)]
    v = decide(fast + slow, metric="server", with_groups=False)
    assert (v.metric, v.best) == ("server", "fixed_2")
    one, two = (
        [60_000 / x for x in (300.0, 330.0, 310.0)],
        [60_000 / x for x in (150.0, 160.0, 140.0)],
    )
    close(v.line("fixed_1").vs_best, welch(two, one))  # type: ignore[union-attr]
    geo = math.exp(statistics.fmean(math.log(x) for x in two))
    assert v.line("fixed_2").tps.value == pytest.approx(geo, rel=1e-12)  # type: ignore[union-attr]


# -- lines per phase and per prompt class --------------------------------------------------
def test_phase_lines_in_the_phases_order_per_arm() -> None:
    rows = [
        s("fixed_1", 100, phase="recovery"), s("fixed_1", 300, phase="load"),
        s("fixed_1", 120, phase="steady"), s("fixed_2", 200, phase="load"),
        s("fixed_2", 150, phase="steady"), s("fixed_1", 110, phase="steady"),
        StepSample("fixed_2", 2, False, 0, 0, phase="recovery"),  # failed: no line
        s("fixed_2", 250, phase="alpha"),  # a phase of a hand-edited file: after the known
    ]  # fmt: skip
    v = decide(rows)
    assert [(a.arm, a.group, a.n, a.mean_ms) for a in v.phases] == [
        ("fixed_1", "steady", 2, 115.0), ("fixed_1", "load", 1, 300.0),
        ("fixed_1", "recovery", 1, 100.0),
        ("fixed_2", "steady", 1, 150.0), ("fixed_2", "load", 1, 200.0),
        ("fixed_2", "alpha", 1, 250.0),
    ]  # fmt: skip
    assert v.classes == ()
    # the verdict itself is over every phase: mean of 100, 300, 120, 110
    assert v.line("fixed_1").mean_ms == 157.5  # type: ignore[union-attr]


def test_phase_lines_on_the_server_metric() -> None:
    rows = [s("fixed_1", 100, phase="steady", predicted_n=50, predicted_ms=100.0),
            s("fixed_1", 100, phase="load", predicted_n=50, predicted_ms=250.0)]  # fmt: skip
    v = decide(rows, metric="server")
    assert [(a.group, a.tps.value) for a in v.phases] == [  # type: ignore[union-attr]
        ("steady", pytest.approx(500.0)), ("load", pytest.approx(200.0)),
    ]  # fmt: skip


def test_prompt_class_lines_known_classes_first_then_by_name() -> None:
    # steps without a class ("") have a line too, among the unknown names
    classes = ("zeta", "open", "alpha", "neutral", "structured", "")
    rows = [s("fixed_1", 100 + i, prompt_class=c) for i, c in enumerate(classes)]
    v = decide(rows)
    assert [(a.group, a.mean_ms) for a in v.classes] == [
        ("structured", 104.0), ("open", 101.0), ("neutral", 103.0), ("", 105.0),
        ("alpha", 102.0), ("zeta", 100.0),
    ]  # fmt: skip
    assert v.phases == ()  # one phase: no phase lines


def test_one_prompt_class_has_no_class_lines_and_groups_can_be_left_out() -> None:
    rows = [s("fixed_1", 100, prompt_class="open", phase="steady"),
            s("fixed_1", 110, prompt_class="", phase="load")]  # fmt: skip
    v = decide(rows)
    assert v.classes == () and [a.group for a in v.phases] == ["steady", "load"]
    assert decide(rows, with_groups=False).phases == ()


# -- which verdict, and what it says of itself -----------------------------------------------
def test_a_run_with_a_row_outside_the_rounds_is_sequential() -> None:
    rows = [s("fixed_1", 100, round=1), s("fixed_1", 110, round=2), s("fixed_2", 200)]
    v = decide(rows, with_groups=False)
    assert v.interleaved is False and v.statement == SEQUENTIAL


def test_a_settle_row_outside_the_rounds_leaves_the_run_in_rounds() -> None:
    rows = [s("fixed_1", 100 + r, round=r) for r in (1, 2, 3)]
    rows.append(s("fixed_1", 10, settle=True))
    v = decide(rows, with_groups=False)
    assert v.interleaved is True and v.line("fixed_1").n == 3  # type: ignore[union-attr]


def test_no_rows_no_verdict_of_a_race() -> None:
    v = decide([])
    assert (v.lines, v.best, v.interleaved, v.phases, v.classes) == ((), None, False, (), ())
    assert v.statement == "no arm has a successful step"


def test_smallest_of_tie_and_line_lookup() -> None:
    v = decide([s("fixed_1", 100), s("fixed_2", 300)], with_groups=False)
    assert v.smallest_of_tie is False  # the recommendation is the fastest
    assert replace(v, recommended="fixed_2").smallest_of_tie is True
    assert replace(v, recommended=None).smallest_of_tie is False
    assert v.line("fixed_9") is None and v.line("fixed_2") is v.lines[1]


def test_an_arm_last_ran_in_its_largest_round_whatever_the_rows_order() -> None:
    # a hand-edited file: rows out of order; fixed_1 ran in rounds 3 and 1, fixed_2 in 2
    rows = [s("fixed_1", 100, round=3), s("fixed_2", 100, round=2), s("fixed_1", 100, round=1)]
    assert decision_of(rows) == Decision(3, 3, 3, 0, None, (("fixed_2", 2),))


def test_two_prompt_classes_have_class_lines_on_the_metric_asked() -> None:
    rows = [s("fixed_1", 100, prompt_class="open", predicted_n=50, predicted_ms=100.0),
            s("fixed_1", 100, prompt_class="structured", predicted_n=50, predicted_ms=250.0)]  # fmt: skip
    v = decide(rows, metric="server")
    assert [(a.group, a.tps.value) for a in v.classes] == [  # type: ignore[union-attr]
        ("structured", pytest.approx(200.0)), ("open", pytest.approx(500.0)),
    ]  # fmt: skip
