"""The verdict of a run in rounds: each arm's line from the race replayed on its rows
(rounds and interval over rounds, ratio to the best, standing, drop), the arms the
race has no figure for, the screen, speculation against nospec, and what the race
still needs. Figures worked out here from the rows (geometric means over rounds,
Student-t with the quantile from a table).
"""

from __future__ import annotations

import math
import statistics

import pytest

from halospec_tui.arms import fixed_k
from halospec_tui.stats import StepSample
from halospec_tui.verdict import ArmLine, Verdict, decide

T975 = {1: 12.706204736, 2: 4.302652730}  # Student-t, 97.5%


def st(arm: str, lat: int, rnd: int, tokens: int = 64, **kw: object) -> StepSample:
    return StepSample(arm, fixed_k(arm) or 0, True, lat, tokens, round=rnd, **kw)  # type: ignore[arg-type]


def rows_of(per_arm: dict[str, list[list[int]]]) -> list[StepSample]:
    """Per arm, per round, the latencies of its block (64 tokens a step)."""
    n = len(next(iter(per_arm.values())))
    return [st(arm, lat, r + 1) for r in range(n) for arm, b in per_arm.items() for lat in b[r]]


def line(v: Verdict, arm: str) -> ArmLine:
    got = v.line(arm)
    assert got is not None
    return got


def geo_t(values: list[float], t: float) -> tuple[float, float, float]:
    logs = [math.log(x) for x in values]
    m, r = statistics.fmean(logs), t * statistics.stdev(logs) / math.sqrt(len(logs))
    return math.exp(m), math.exp(m - r), math.exp(m + r)


CLEAR = {  # nospec half as fast; fixed_1 and fixed_2 alike (1% noise)
    "nospec": [[400, 404]] * 6,
    "fixed_1": [[200, 202], [201, 203], [199, 200], [202, 200], [200, 201], [203, 199]],
    "fixed_2": [[201, 200], [200, 204], [202, 199], [199, 203], [201, 200], [200, 202]],
}


def test_a_clear_race_drops_nospec_at_the_first_round_it_may() -> None:
    v = decide(rows_of(CLEAR), with_groups=False)
    assert (v.decisive, v.best, v.recommended, v.recommended_k) == (True, "fixed_1", "fixed_1", 1)
    assert v.rounds_needed is None and v.tolerance == 0.02
    assert v.statement == "decisive: K = 1 is within 2% of the fastest (95%, valid at any stop)"
    # no arm is dropped before round 3 (DROP_FROM); by then twice as slow with 1% noise
    # is beyond doubt; the arm that beat it is the fastest
    no = line(v, "nospec")
    assert (no.status, no.dropped_round, no.dropped_by, no.epsilon) == (
        "dropped",
        3,
        "fixed_1",
        None,
    )
    one, two = line(v, "fixed_1"), line(v, "fixed_2")
    assert (one.status, one.dropped_round, one.dropped_by, one.vs_best) == ("best", None, "", None)
    assert (two.status, two.dropped_round, two.dropped_by) == ("within", None, "")
    assert one.epsilon is not None and two.epsilon is not None
    assert 0 < one.epsilon <= 0.02 and 0 < two.epsilon <= 0.02
    # nospec's rounds are alike: 128 tokens in 804 ms each, no spread
    assert no.rounds == 6 and no.tps is not None
    assert (no.tps.value, no.tps.lo, no.tps.hi) == pytest.approx((128_000 / 804,) * 3, rel=1e-12)
    # speculation: fixed_1 over nospec, the geometric mean of the per-round ratios
    ratio = math.exp(statistics.fmean(math.log(804 / sum(b)) for b in CLEAR["fixed_1"]))
    assert (v.vs_nospec_arm, v.vs_nospec_ref) == ("fixed_1", "nospec")
    assert v.vs_nospec is not None and v.vs_nospec.value == pytest.approx(ratio, rel=1e-12)


def test_the_tolerance_reaches_the_race() -> None:
    v = decide(rows_of(CLEAR), tolerance=0.05, with_groups=False)
    assert v.tolerance == 0.05
    assert v.statement == "decisive: K = 1 is within 5% of the fastest (95%, valid at any stop)"


def test_an_undecided_race_says_how_many_more_rounds_it_needs() -> None:
    lat = {
        "fixed_1": [[300, 310], [290, 330], [310, 300]],
        "fixed_2": [[305, 295], [300, 320], [290, 310]],
    }
    v = decide(rows_of(lat), with_groups=False)
    assert v.decisive is False and v.rounds_needed is not None and v.rounds_needed > 0
    assert v.statement.endswith(
        f"; about {v.rounds_needed} more rounds would certify 2% at this noise"
    )
    one = line(v, "fixed_1")
    assert one.status == "racing" and one.epsilon is not None and one.epsilon > 0.02


def test_server_metric_rounds_are_those_with_timings() -> None:
    rows = []
    for r in range(1, 5):
        first = (st("fixed_1", 300, r) if r == 3
               else st("fixed_1", 300, r, predicted_n=60, predicted_ms=200.0 + r))  # fmt: skip
        rows += [first,
                 st("fixed_2", 300, r, predicted_n=60, predicted_ms=150.0 + r),
                 st("fixed_3", 300, r)]  # fmt: skip  # fixed_3: no timings at all
    v = decide(rows, metric="server", with_groups=False)
    one = line(v, "fixed_1")
    assert (one.n, one.rounds) == (4, 3)  # four steps; three rounds the race can read
    assert one.tps is not None
    want = geo_t([60_000 / 201, 60_000 / 202, 60_000 / 204], T975[2])
    assert (one.tps.value, one.tps.lo, one.tps.hi) == pytest.approx(want, rel=1e-9)
    # no figure for the race: the arm's own rows, on the server metric: none
    three = line(v, "fixed_3")
    assert (three.n, three.rounds, three.tps, three.vs_best) == (4, 4, None, None)
    assert v.metric == "server" and v.best == "fixed_2"


def test_speculation_against_nospec_needs_both() -> None:
    only_nospec = [st("nospec", 300 + r, r) for r in (1, 2, 3)] + [
        st("nospec@t1", 310 + r, r) for r in (1, 2, 3)
    ]
    v = decide(only_nospec, with_groups=False)
    assert v.best == "nospec" and (v.vs_nospec, v.vs_nospec_arm, v.vs_nospec_ref) == (
        None,
        None,
        None,
    )
    no_nospec = [st("fixed_1", 300 + r, r) for r in (1, 2, 3)] + [
        st("fixed_2", 310 + r, r) for r in (1, 2, 3)
    ]
    v = decide(no_nospec, with_groups=False)
    assert v.best == "fixed_1" and (v.vs_nospec, v.vs_nospec_arm, v.vs_nospec_ref) == (
        None,
        None,
        None,
    )


def test_speculation_is_the_fastest_speculating_arm_even_when_nospec_is_faster() -> None:
    rows = ([st("nospec", 200 + r, r) for r in (1, 2, 3)] + [st("fixed_2", 310 + r, r) for r in (1, 2, 3)]
            + [st("fixed_1", 330 + r, r) for r in (1, 2, 3)])  # fmt: skip
    v = decide(rows, with_groups=False)
    assert (v.best, v.vs_nospec_arm, v.vs_nospec_ref) == ("nospec", "fixed_2", "nospec")
    ratio = math.exp(statistics.fmean(math.log((200 + r) / (310 + r)) for r in (1, 2, 3)))
    assert v.vs_nospec is not None and v.vs_nospec.value == pytest.approx(ratio, rel=1e-12)


# -- a run that screened first -------------------------------------------------------------
A, T0, R = 0.9, 10.0, 0.05  # acceptance, ms per target pass, pass cost per draft / t0


def model_step(arm: str, rnd: int, noise: float = 1.0) -> StepSample:
    """128 tokens with K drafts: 128 / E(K) passes of t0 (1 + r K) ms, with its counters."""
    k = fixed_k(arm) or 0
    if k == 0:
        return StepSample(arm, 0, True, round(128 * T0 * noise), 128, 0, 0, round=rnd)
    passes = 128 * (1 - A) / (1 - A ** (k + 1))
    lat = round(passes * T0 * (1 + R * k) * noise)
    return StepSample(arm, k, True, lat, 128, round(passes * k), round(128 - passes), round=rnd)


def test_the_screened_out_arm_keeps_its_own_figures() -> None:
    # rounds 1-2: nospec, K = 3 and K = 6 (the screen); the model (a = 0.9, r = 0.05)
    # predicts E(K) / (1 + 0.05 K) = 2.99, 3.41, 3.75, 4.01 for K = 3..6: it races
    # nospec, 4, 5 and 6, which rounds 3-8 ran, and leaves K = 3 out
    rows = [model_step(a, r) for r in (1, 2) for a in ("nospec", "fixed_3", "fixed_6")]
    noise = [1.0, 1.01, 0.99, 1.02, 0.98, 1.0]
    rows += [model_step(a, r, noise[(r + i) % 6]) for r in range(3, 9)
             for i, a in enumerate(("nospec", "fixed_4", "fixed_5", "fixed_6"))]  # fmt: skip
    v = decide(rows, with_groups=False)
    assert v.screen is not None and v.screen.fit_ok is True and v.screen.race == (0, 4, 5, 6)
    assert v.screened_out == ("fixed_3",)
    three = line(v, "fixed_3")
    # its two steps of 128 tokens in 428 ms: the point, no spread, over its 2 rounds
    assert three.tps is not None
    assert (three.tps.value, three.tps.lo, three.tps.hi) == pytest.approx(
        (128_000 / 428,) * 3, rel=1e-12
    )
    assert (three.status, three.rounds, three.n, three.vs_best, three.epsilon) == (
        "screened out", 2, 2, None, None,
    )  # fmt: skip
    assert [a.arm for a in v.lines] == ["nospec", "fixed_3", "fixed_6", "fixed_4", "fixed_5"]
    assert line(v, "fixed_6").rounds == 8 and line(v, "fixed_4").rounds == 6
