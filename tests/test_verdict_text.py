"""The verdict as the user reads it: every line and every JSON field pinned exactly.

The verdicts here are built by hand (no bootstrap), so each expected string follows
from the figures written in the test and the format promised in the README.
"""

import math

from halospec_tui.arms import p_min_of
from halospec_tui.results.export_json import verdict_dict
from halospec_tui.results.export_text import (
    fmt_est,
    fmt_ratio,
    nospec_line,
    paste_setting,
    recommendation_line,
    verdict_lines,
)
from halospec_tui.stats import StepSample
from halospec_tui.verdict import (
    ArmStats,
    Comparison,
    Decision,
    Estimate,
    Verdict,
    decision_of,
    main_actuator,
)

INF = math.inf


def _arm(name, k, n, tps=None, mean=None, p95=None, server=None, cv=None, phase=""):
    return ArmStats(name, k, n, tps, mean, None, p95, None, server, cv, phase)


def _verdict(**kw):
    base = dict(
        arms=(),
        best=None,
        comparisons=(),
        decisive=False,
        recommended=None,
        recommended_k=None,
        smallest_of_tie=False,
        vs_nospec=None,
        vs_nospec_arm=None,
        tolerance=0.02,
    )
    return Verdict(**{**base, **kw})


# -- estimates as text ---------------------------------------------------------------
def test_fmt_est():
    assert fmt_est(None) == "-"
    assert fmt_est(Estimate(320.0, 310.25, 330.5)) == "320.0 ±10.1"
    assert fmt_est(Estimate(320.0, 310.25, 330.5), 2) == "320.00 ±10.12"
    assert fmt_est(Estimate(320.0, 310.25, 330.5), 0) == "320 ±10"
    assert fmt_est(Estimate(12.25, -INF, INF)) == "12.2 ±?"  # one cluster: spread unknown
    assert fmt_est(Estimate(12.25, 0.0, INF), 2) == "12.25 ±?"


def test_fmt_ratio():
    assert fmt_ratio(None) == "-"
    assert fmt_ratio(Estimate(1.5, 1.25, 1.875)) == "1.50x [1.25, 1.88]"


def test_nospec_line_at_the_edges_of_one():
    def line(lo, hi):
        return nospec_line(_verdict(vs_nospec=Estimate((lo + hi) / 2, lo, hi), vs_nospec_arm="fixed_4"))

    assert nospec_line(_verdict()) is None
    assert line(1.125, 1.375) == "speculation (fixed_4): 1.25x [1.12, 1.38] faster than nospec"
    assert line(0.5, 0.75) == "speculation (fixed_4): 0.62x [0.50, 0.75] slower than nospec"
    # A CI that touches 1 at either end cannot tell the two apart.
    assert line(1.0, 1.5).endswith("[1.00, 1.50] not distinguishable from nospec")
    assert line(0.5, 1.0).endswith("[0.50, 1.00] not distinguishable from nospec")


# -- what to paste ----------------------------------------------------------------------
def test_paste_setting_with_p_min_and_without_an_actuator():
    assert paste_setting(4, "llama-server", 0.5) == (
        "llama-server flags: -md DRAFT.gguf --spec-type draft-simple --spec-draft-n-max 4 "
        "--spec-draft-n-min 0 --spec-draft-p-min 0.5"
    )
    assert paste_setting(0, "request") == (
        'request body: "speculative": {"n_max": 0, "n_min": 0, "p_min": 0}'
    )
    assert paste_setting(16, "request", 0.75) == (
        'request body: "speculative": {"n_max": 16, "n_min": 0, "p_min": 0.75}'
    )
    assert paste_setting(3, "") == "K never reached the server through actuator ?: nothing to paste"


def test_arm_p_min():
    assert p_min_of("pmin:0.5") == 0.5
    assert p_min_of("pmin:") == 0.0  # not a number: no threshold
    assert p_min_of("pmin:high") == 0.0
    assert p_min_of("nospec") == 0.0
    assert p_min_of("xpmin:0.5") == 0.0


# -- the recommendation line ------------------------------------------------------------
def test_recommendation_line_every_branch():
    assert recommendation_line(_verdict(), "llama-server") == (
        "no arm has a successful step: nothing to recommend"
    )
    assert recommendation_line(_verdict(best="adaptive", recommended="adaptive"), "request") == (
        "fastest: adaptive (an adaptive arm: no fixed setting to paste)"
    )
    decisive_k3 = _verdict(best="fixed_3", recommended="fixed_3", recommended_k=3, decisive=True)
    assert recommendation_line(decisive_k3, "request") == (
        'use K = 3; request body: "speculative": {"n_max": 3, "n_min": 0, "p_min": 0}'
    )
    open_k3 = _verdict(best="fixed_3", recommended="fixed_3", recommended_k=3)
    assert recommendation_line(open_k3, "request") == (
        "use K = 3 [not decisive: more rounds would narrow it]; "
        'request body: "speculative": {"n_max": 3, "n_min": 0, "p_min": 0}'
    )
    off = _verdict(
        best="fixed_2", recommended="nospec", recommended_k=0, smallest_of_tie=True,
        decisive=True, tolerance=0.025,
    )  # fmt: skip
    assert recommendation_line(off, "llama-server") == (
        "turn speculation off (tied with the fastest, fixed_2, within 2.5%: the smallest K "
        "among the tied drafts least for the same speed); "
        "llama-server flags: no speculation (no -md; --spec-type none)"
    )
    pmin = _verdict(best="pmin:0.75", recommended="pmin:0.75", recommended_k=16, decisive=True)
    assert recommendation_line(pmin, "lemonade-load") == (
        'use K = 16 with p_min 0.75; Lemonade /api/v1/load: {"llamacpp_args": '
        '"--spec-type draft-simple --spec-draft-n-max 16 --spec-draft-n-min 0 '
        '--spec-draft-p-min 0.75"}'
    )


# -- how long the decision took ---------------------------------------------------------
def _row(mode, lat, rnd, ts="", settle=False, actuator=""):
    return StepSample(mode, 0, True, lat, 64, round=rnd, settle=settle, timestamp=ts,
                      actuator=actuator)  # fmt: skip


def test_decision_of_empty_and_unstamped():
    assert decision_of([]) == Decision(0, 0, 0, 0, None, ())
    # A sequential run: no rounds, so nothing was dropped; one stamp is not a span.
    rows = [_row("fixed_1", 100, None, "2026-01-01T00:00:00+00:00"), _row("fixed_2", 100, None)]
    assert decision_of(rows) == Decision(0, 2, 2, 0, None, ())
    # An unreadable stamp at either end: no duration.
    good, bad = "2026-01-01T00:00:00+00:00", "yesterday"
    assert decision_of([_row("a", 1, 1, bad), _row("a", 1, 1, good)]).seconds is None
    assert decision_of([_row("a", 1, 1, good), _row("a", 1, 1, bad)]).seconds is None


def test_decision_of_one_row_spans_its_own_latency():
    one = _row("fixed_1", 1500, 1, "2026-01-01T00:00:00+00:00")
    assert decision_of([one]).seconds == 1.5


def test_decision_of_dropped_arms_and_their_last_round():
    rows = [
        _row("a", 250, 1, "2026-01-01T00:00:00+00:00"),
        _row("b", 1, 1), _row("c", 1, 1),
        _row("a", 1, 2), _row("b", 1, 2),
        _row("a", 1, 3, settle=True),
        _row("a", 1, 3, "2026-01-01T00:01:00.5+00:00"),
    ]  # fmt: skip
    assert decision_of(rows) == Decision(3, 7, 6, 1, 60.75, (("b", 2), ("c", 1)))


def test_main_actuator_is_the_most_common():
    rows = [_row("a", 1, 1, actuator=x) for x in ("request", "", "llama-server", "request", "")]
    assert main_actuator(rows) == "request"
    assert main_actuator([_row("a", 1, 1)]) == ""
    assert main_actuator([]) == ""


# -- the whole verdict, as text and as JSON ---------------------------------------------
def _full():
    arms = (
        _arm("fixed_3", 3, 8, Estimate(320.0, 310.25, 330.5), Estimate(200.0, 195.0, 205.0),
             Estimate(210.0, 206.0, 216.0), Estimate(400.0, -INF, INF), 0.0125),
        _arm("nospec", 0, 8, Estimate(160.0, 150.0, 170.0), Estimate(400.0, 390.0, 410.0)),
        _arm("fixed_2", 2, 7, Estimate(318.0, 300.0, 336.0)),
        _arm("adaptive_x", None, 0),
        _arm("fixed_5", 5, 2, Estimate(290.0, 280.0, 300.0)),
    )  # fmt: skip
    comps = (
        Comparison("nospec", Estimate(2.0, 1.875, 2.125), "worse", True),
        Comparison("fixed_2", Estimate(1.0, 0.99, 1.015), "tied", True),
        Comparison("adaptive_x", None, "tied", False),
        Comparison("fixed_5", Estimate(1.1, 1.05, 1.15), "worse", True),
    )
    phases = (
        _arm("fixed_3", 3, 4, Estimate(330.0, 320.0, 340.0), Estimate(190.0, 185.0, 195.0),
             phase="steady"),
        _arm("fixed_3", 3, 4, Estimate(310.0, 300.0, 320.0), None, phase="load"),
    )  # fmt: skip
    v = _verdict(
        arms=arms, best="fixed_3", comparisons=comps, decisive=True, recommended="fixed_2",
        recommended_k=2, smallest_of_tie=True, vs_nospec=Estimate(2.0, 1.875, 2.125),
        vs_nospec_arm="fixed_3", eliminated=(("fixed_5", 2),), phases=phases,
    )  # fmt: skip
    d = Decision(4, 40, 32, 8, 61.6, (("fixed_5", 2),))
    return v, d


def test_verdict_lines_exact():
    v, d = _full()
    assert verdict_lines(v, d, "request", None) == [
        "",
        "Verdict (tokens/s, 95% bootstrap CI of 2000 resamples by round; tied within 2%)",
        "arm           n          tok/s          mean ms           p95 ms      srv tok/s     CV"
        "              best/arm  status",
        "fixed_3       8    320.0 ±10.1       200.0 ±5.0       210.0 ±5.0       400.0 ±?  0.013"
        "                     -  best",
        "nospec        8    160.0 ±10.0      400.0 ±10.0                -              -      -"
        "    2.00x [1.88, 2.12]  worse",
        "fixed_2       7    318.0 ±18.0                -                -              -      -"
        "    1.00x [0.99, 1.01]  tied (equivalent)",
        "adaptive_x    0              -                -                -              -      -"
        "                     -  tied",
        "fixed_5       2    290.0 ±10.0                -                -              -      -"
        "    1.10x [1.05, 1.15]  eliminated (dropped after round 2)",
        "",
        "arm        phase         n          tok/s          mean ms",
        "fixed_3    steady        4    330.0 ±10.0       190.0 ±5.0",
        "fixed_3    load          4    310.0 ±10.0                -",
        "",
        "decision: decisive after 4 rounds; 40 requests (32 measured, 8 settle) in 62 s",
        "speculation (fixed_3): 2.00x [1.88, 2.12] faster than nospec",
        "recommendation: use K = 2 (tied with the fastest, fixed_3, within 2%: the smallest K "
        'among the tied drafts least for the same speed); request body: "speculative": '
        '{"n_max": 2, "n_min": 0, "p_min": 0}',
    ]


def test_verdict_lines_sequential_undecided_with_a_drafting_nospec():
    arms = (
        _arm("a_very_long_arm_name", 1, 3, Estimate(10.0, 9.0, 11.0)),
        _arm("nospec", 0, 3, Estimate(9.0, 8.0, 10.0)),
    )
    v = _verdict(
        arms=arms, best="a_very_long_arm_name", recommended="a_very_long_arm_name",
        recommended_k=1,
        comparisons=(Comparison("nospec", Estimate(1.1, 0.9, 1.3), "tied", False),),
        # one phase only: no phase table
        phases=(_arm("nospec", 0, 3, phase="steady"), _arm("x", 1, 3, phase="steady")),
    )  # fmt: skip
    lines = verdict_lines(v, Decision(0, 6, 6, 0, None, ()), "request", 12)
    assert lines[2].startswith("arm                     n          tok/s")
    assert lines[3].startswith("a_very_long_arm_name    3      10.0 ±1.0")
    assert lines[4].endswith("1.10x [0.90, 1.30]  tied")
    assert lines[5:] == [
        "",
        "decision: not decisive; 6 requests (6 measured, 0 settle)",
        "WARNING: nospec drafted 12 tokens: speculation was not switched off",
        "recommendation: use K = 1 [not decisive: more rounds would narrow it]; "
        'request body: "speculative": {"n_max": 1, "n_min": 0, "p_min": 0}',
    ]
    # No warning when nospec drafted nothing.
    assert not any("WARNING" in x for x in verdict_lines(v, Decision(0, 6, 6, 0, None, ()), "request", 0))


def test_prompt_class_table_has_its_own_label():
    v = _verdict(classes=(_arm("a", 1, 2, phase="structured"), _arm("a", 1, 2, phase="open")))
    lines = verdict_lines(v, Decision(0, 4, 4, 0, None, ()), "request", None)
    assert lines[3:7] == [
        "",
        "arm        prompts       n          tok/s          mean ms",
        "a          structured    2              -                -",
        "a          open          2              -                -",
    ]


def test_verdict_dict_exact():
    v, d = _full()
    out = verdict_dict(v, d, "request")
    est = {"value": 320.0, "lo": 310.25, "hi": 330.5}
    assert out["arms"][0] == {
        "arm": "fixed_3", "k": 3, "phase": None, "n": 8, "tps": est,
        "mean_ms": {"value": 200.0, "lo": 195.0, "hi": 205.0}, "median_ms": None,
        "p95_ms": {"value": 210.0, "lo": 206.0, "hi": 216.0}, "score": None,
        "server_tps": {"value": 400.0, "lo": None, "hi": None}, "cv": 0.0125,
        "status": "best", "best_over_arm": None, "dropped_after_round": None,
    }  # fmt: skip
    assert [(a["arm"], a["status"], a["dropped_after_round"]) for a in out["arms"]] == [
        ("fixed_3", "best", None), ("nospec", "worse", None), ("fixed_2", "tied", None),
        ("adaptive_x", "tied", None), ("fixed_5", "eliminated", 2),
    ]  # fmt: skip
    assert out["arms"][1]["best_over_arm"] == {"value": 2.0, "lo": 1.875, "hi": 2.125}
    assert out["arms"][3]["best_over_arm"] is None
    assert out["arms"][3]["k"] is None and out["arms"][3]["tps"] is None
    assert out["phases"][1] == {
        "arm": "fixed_3", "k": 3, "phase": "load", "n": 4,
        "tps": {"value": 310.0, "lo": 300.0, "hi": 320.0}, "mean_ms": None, "median_ms": None,
        "p95_ms": None, "score": None, "server_tps": None, "cv": None,
    }  # fmt: skip
    rest = {k: v for k, v in out.items() if k not in ("arms", "phases")}
    assert rest == {
        "metric": "tokens/s",
        "confidence": 0.95,
        "resamples": 2000,
        "tolerance": 0.02,
        "best": "fixed_3",
        "decisive": True,
        "prompt_classes": [],
        "decision": {"rounds": 4, "requests": 40, "measured": 32, "settle": 8, "seconds": 61.6},
        "speculation_vs_nospec": {"value": 2.0, "lo": 1.875, "hi": 2.125},
        "speculation_arm": "fixed_3",
        "recommended": "fixed_2",
        "recommended_k": 2,
        "smallest_of_tie": True,
        "recommendation": "use K = 2 (tied with the fastest, fixed_3, within 2%: the smallest K "
        'among the tied drafts least for the same speed); request body: "speculative": '
        '{"n_max": 2, "n_min": 0, "p_min": 0}',
    }


def test_verdict_dict_median_score_and_prompt_classes():
    a = ArmStats("fixed_1", 1, 4, None, None, Estimate(150.0, 140.0, 160.0), None,
                 Estimate(300.0, 280.0, 320.0), None, None)  # fmt: skip
    c = _arm("fixed_1", 1, 2, Estimate(9.0, 8.0, 10.0), phase="open")
    out = verdict_dict(_verdict(arms=(a,), classes=(c,)), Decision(0, 4, 4, 0, None, ()), "")
    assert out["arms"][0]["median_ms"] == {"value": 150.0, "lo": 140.0, "hi": 160.0}
    assert out["arms"][0]["score"] == {"value": 300.0, "lo": 280.0, "hi": 320.0}
    assert out["arms"][0]["status"] == "-"  # no best: nothing to compare with
    assert out["prompt_classes"] == [{
        "arm": "fixed_1", "k": 1, "phase": "open", "n": 2,
        "tps": {"value": 9.0, "lo": 8.0, "hi": 10.0}, "mean_ms": None, "median_ms": None,
        "p95_ms": None, "score": None, "server_tps": None, "cv": None,
    }]  # fmt: skip


def test_a_dropped_arm_that_is_fastest_on_the_rows_reads_best():
    # Recomputed from the CSV, an arm dropped early can still come out fastest.
    v = _verdict(arms=(_arm("fixed_1", 1, 2), _arm("fixed_2", 2, 8)), best="fixed_1",
                 comparisons=(Comparison("fixed_2", Estimate(1.1, 1.05, 1.15), "worse", True),),
                 eliminated=(("fixed_1", 1),))  # fmt: skip
    d = Decision(3, 10, 10, 0, None, (("fixed_1", 1),))
    assert verdict_lines(v, d, "", None)[3].endswith("  best")
    assert verdict_dict(v, d, "")["arms"][0]["status"] == "best"
    assert verdict_dict(v, d, "")["arms"][0]["dropped_after_round"] == 1


def test_verdict_dict_of_an_empty_verdict():
    out = verdict_dict(_verdict(), Decision(0, 0, 0, 0, None, ()), "")
    assert out["best"] is None and out["arms"] == [] and out["speculation_vs_nospec"] is None
    assert out["recommendation"] == "no arm has a successful step: nothing to recommend"
