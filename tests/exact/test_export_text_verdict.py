"""The verdict as text, exactly: the per-arm table, the groups, the screen, the decision,
nospec and the recommendation, from hand-made verdicts (every figure worked out by hand
from the format rules: widths right-aligned, one decimal unless said)."""

from __future__ import annotations

import math

from halospec_tui.race import Interval
from halospec_tui.results.export_text import (
    fmt_ratio,
    fmt_tps,
    nospec_line,
    screen_lines,
    status_text,
    verdict_lines,
)
from halospec_tui.screen import Screen
from halospec_tui.verdict import ArmLine, Decision, Verdict

INF = math.inf
NOTHING = "recommendation: no arm has a successful step: nothing to recommend"


def _line(arm: str, k: int | None, **kw: object) -> ArmLine:
    base: dict[str, object] = {
        "n": 12, "rounds": 4, "tps": None, "mean_ms": None, "p95_ms": None,
        "server_tps": None, "cv": None,
    }  # fmt: skip
    base.update(kw)
    return ArmLine(arm, k, **base)  # type: ignore[arg-type]


def _verdict(lines: tuple[ArmLine, ...], **kw: object) -> Verdict:
    base: dict[str, object] = {
        "best": None, "decisive": False, "recommended": None, "recommended_k": None,
        "tolerance": 0.05, "statement": "fixed_2 is fastest", "interleaved": True,
    }  # fmt: skip
    base.update(kw)
    return Verdict(lines, **base)  # type: ignore[arg-type]


DECISION = Decision(rounds=4, requests=30, measured=24, settle=6, seconds=12.4, dropped=())
SEQUENTIAL = Decision(rounds=0, requests=9, measured=9, settle=0, seconds=None, dropped=())

BEST = _line("fixed_2", 2, tps=Interval(100.0, 94.0, 106.0), mean_ms=640.0, p95_ms=700.4,
             cv=0.0512, status="best")  # fmt: skip
WITHIN = _line("fixed_4", 4, tps=Interval(90.0, 80.0, 100.0), mean_ms=711.11, p95_ms=800.6,
               server_tps=120.25, cv=0.1, vs_best=Interval(1.111, 1.05, INF), status="within",
               epsilon=0.052)  # fmt: skip
DROPPED = _line("nospec", 0, n=6, rounds=2, cv=math.nan, vs_best=Interval(1.5, 1.2, 1.8),
                status="dropped", dropped_round=2, dropped_by="fixed_2")  # fmt: skip


def test_an_interleaved_verdict_prints_every_arm_its_decision_and_what_it_took() -> None:
    v = _verdict((BEST, WITHIN, DROPPED))
    assert verdict_lines(v, DECISION, "llama-server", None) == [
        "",
        "Verdict (tokens/s, 95% intervals, Student-t over rounds; one confidence sequence per"
        " pair decides, valid at any stop; tolerance 5%)",
        "arm           n  rnd          tok/s   mean ms   p95 ms  srv tok/s     CV"
        "              best/arm  status",
        "fixed_2      12    4     100.0 ±6.0     640.0      700          -  0.051"
        "                     -  best",
        "fixed_4      12    4     90.0 ±10.0     711.1      801      120.2  0.100"
        "       1.11x [1.05, ?]  within (certified within 5.2%)",
        "nospec        6    2              -         -        -          -      -"
        "    1.50x [1.20, 1.80]  dropped after round 2 (slower than fixed_2)",
        "",
        "decision: fixed_2 is fastest",
        "took: after 4 rounds; 30 requests (24 measured, 6 settle) in 12 s",
        NOTHING,
    ]


def test_a_sequential_server_metric_verdict_at_a_condition_names_both() -> None:
    long = _line("fixed_2@t16_long", 2, n=9, rounds=0, tps=Interval(50.0, 50.0, INF), cv=0.0)
    v = _verdict((long,), metric="server", interleaved=False, tolerance=0.025,
                 statement="nothing decided", recommended="adaptive")  # fmt: skip
    assert verdict_lines(v, SEQUENTIAL, "", None, at="steady@4") == [
        "",
        "Verdict at steady@4 (decode tokens/s (server timings), 95% intervals, Student-t over"
        " steps; a sequential run decides nothing; tolerance 2.5%)",
        "arm                 n  rnd          tok/s   mean ms   p95 ms  srv tok/s     CV"
        "              best/arm  status",
        "fixed_2@t16_long    9    0        50.0 ±?         -        -          -  0.000"
        "                     -  -",
        "",
        "decision: nothing decided",
        "took:; 9 requests (9 measured, 0 settle)",
        "recommendation: fastest: adaptive (an adaptive arm: no fixed setting to paste)",
    ]


def test_phase_and_prompt_tables_appear_only_when_their_groups_differ() -> None:
    steady = _line("fixed_2", 2, n=5, tps=Interval(101.0, 99.0, 103.0), mean_ms=630.0,
                   group="steady")  # fmt: skip
    load = _line("fixed_2", 2, n=7, tps=Interval(99.0, 96.5, 101.5), mean_ms=650.25,
                 group="load")  # fmt: skip
    open_ = _line("fixed_2", 2, n=12, group="open")
    v = _verdict((BEST,), phases=(steady, load), classes=(open_,))
    lines = verdict_lines(v, DECISION, "", None)
    assert lines[4:8] == [
        "",
        "arm        phase         n          tok/s   mean ms",
        "fixed_2    steady        5     101.0 ±2.0     630.0",
        "fixed_2    load          7      99.0 ±2.5     650.2",
    ]
    assert lines[8:10] == ["", "decision: fixed_2 is fastest"]
    both = _verdict((BEST,), phases=(), classes=(open_, load))
    assert verdict_lines(both, DECISION, "", None)[4:8] == [
        "",
        "arm        prompts       n          tok/s   mean ms",
        "fixed_2    open         12              -         -",
        "fixed_2    load          7      99.0 ±2.5     650.2",
    ]


def test_nospec_drafting_is_warned_of_and_the_nospec_ratio_printed() -> None:
    v = _verdict((BEST,), vs_nospec=Interval(1.25, 1.1, 1.4), vs_nospec_arm="fixed_2")
    tail = verdict_lines(v, DECISION, "", 5)[-4:]
    assert tail == [
        "took: after 4 rounds; 30 requests (24 measured, 6 settle) in 12 s",
        "speculation (fixed_2): 1.25x [1.10, 1.40] faster than nospec",
        "WARNING: nospec drafted 5 tokens: speculation was not switched off",
        NOTHING,
    ]
    assert verdict_lines(v, DECISION, "", 0)[-2:] == [tail[1], NOTHING]


def test_nospec_line_says_faster_slower_or_not_distinguishable_at_the_bounds() -> None:
    def say(lo: float, hi: float, ref: str | None = None) -> str | None:
        v = _verdict((), vs_nospec=Interval(1.0, lo, hi), vs_nospec_arm="fixed_4",
                     vs_nospec_ref=ref)  # fmt: skip
        return nospec_line(v)

    assert say(1.01, 1.2) == "speculation (fixed_4): 1.00x [1.01, 1.20] faster than nospec"
    assert say(1.0, 1.2) == (
        "speculation (fixed_4): 1.00x [1.00, 1.20] not distinguishable from nospec"
    )
    assert say(0.8, 0.99, "nospec@t8") == (
        "speculation (fixed_4): 1.00x [0.80, 0.99] slower than nospec@t8"
    )
    assert say(0.8, 1.0) == (
        "speculation (fixed_4): 1.00x [0.80, 1.00] not distinguishable from nospec"
    )
    assert nospec_line(_verdict(())) is None


def test_ratios_and_rates_print_an_unknown_bound_as_a_question_mark() -> None:
    assert fmt_ratio(None) == "-"
    assert fmt_ratio(Interval(1.234, 1.1, 1.456)) == "1.23x [1.10, 1.46]"
    assert fmt_ratio(Interval(1.2, 1.1, INF)) == "1.20x [1.10, ?]"
    assert fmt_ratio(Interval(1.2, 1.1, math.nan)) == "1.20x [1.10, ?]"
    assert fmt_tps(None) == "-"
    assert fmt_tps(Interval(80.0, 70.0, 91.0)) == "80.0 ±10.5"
    assert fmt_tps(Interval(80.0, 70.0, 91.0), 2) == "80.00 ±10.50"
    assert fmt_tps(Interval(80.0, 80.0, INF)) == "80.0 ±?"


def test_an_arms_standing_in_words() -> None:
    def st(**kw: object) -> str:
        return status_text(_line("fixed_2", 2, **kw))

    assert st(status="dropped", dropped_round=3, dropped_by="fixed_4") == (
        "dropped after round 3 (slower than fixed_4)"
    )
    assert st(status="dropped") == "dropped"
    assert st(status="within", epsilon=0.0125) == "within (certified within 1.2%)"
    assert st(status="racing", epsilon=0.2) == "racing (certified within 20.0%)"
    assert st(status="racing") == "racing"
    assert st(status="best", epsilon=0.01) == "best"
    assert st(status="screened out") == "screened out"
    assert st() == "-"


def test_the_screen_says_why_what_it_dropped_and_predicted_against_measured_tps() -> None:
    screen = Screen(race=(0, 2, 4), predicted=((0, 50.0), (2, 101.26), (4, 95.0), (8, 70.04)),
                    fit_ok=True, why="fitted on nospec and K 8")  # fmt: skip
    lines = (
        _line("nospec", 0, tps=Interval(49.0, 48.0, 50.0)),
        _line("fixed_2", 2, tps=Interval(100.0, 94.0, 106.0)),
        _line("fixed_4@t8", 4, tps=Interval(90.0, 80.0, 100.0)),  # threads: not in the model
        _line("fixed_8", 8),  # no rate measured
        _line("adaptive", None, tps=Interval(80.0, 70.0, 90.0)),
    )
    v = _verdict(lines, screen=screen, screened_out=("fixed_6", "fixed_7"))
    assert screen_lines(v) == [
        "",
        "screen: fitted on nospec and K 8",
        "screened out: fixed_6, fixed_7",
        "model tok/s by K (measured): K 0: 50.0 (49.0), K 2: 101.3 (100.0), K 4: 95.0,"
        " K 8: 70.0",
    ]
    bare = Screen(race=(0,), predicted=(), fit_ok=False, why="no fit")
    assert screen_lines(_verdict(lines, screen=bare)) == ["", "screen: no fit"]
    assert screen_lines(_verdict(lines)) == []
    # in the verdict, after the arms and before the decision
    out = verdict_lines(_verdict((BEST,), screen=bare), DECISION, "", None)
    assert out[4:8] == ["", "screen: no fit", "", "decision: fixed_2 is fastest"]
