"""The verdict from rows: the race replayed for a run in rounds, Student-t and Welch
for a sequential one; its text and JSON; the schedule and the paste line it relies on.

Expected figures are worked out in the tests from the rows written here (geometric
means, Student-t with the quantile from a table), not read back from the code.
"""

from __future__ import annotations

import json
import math
import random
import statistics

import pytest

from halospec_tui.arms import fixed_k, p_min_of
from halospec_tui.confseq import t_quantile
from halospec_tui.race import Interval
from halospec_tui.results.export_json import verdict_dict
from halospec_tui.results.export_text import (
    fmt_ratio,
    fmt_tps,
    nospec_line,
    paste_setting,
    recommendation_line,
    status_text,
    verdict_lines,
)
from halospec_tui.schedule import grown_block, prompt_index, round_blocks, round_order, round_phase
from halospec_tui.stats import StepSample
from halospec_tui.verdict import (
    SEQUENTIAL,
    ArmLine,
    Decision,
    Verdict,
    decide,
    decision_of,
    main_actuator,
    welch_ratio,
)

T975 = {2: 4.302652730, 3: 3.182446305, 4: 2.776445105, 5: 2.570581836}  # Student-t, 97.5%


def s(arm, lat, rnd=None, tokens=64, phase="steady", **kw):
    return StepSample(arm, fixed_k(arm) or 0, True, lat, tokens, round=rnd, phase=phase, **kw)


def rounds_of(per_arm: dict[str, list[list[int]]]) -> list[StepSample]:
    """Rows of a run in rounds: per arm, per round, the latencies of its block."""
    out = []
    n = len(next(iter(per_arm.values())))
    for r in range(n):
        for arm, blocks in per_arm.items():
            out += [s(arm, lat, r + 1) for lat in blocks[r]]
    return out


def geo_t(values: list[float], df_t: float) -> tuple[float, float, float]:
    """Geometric mean of values and its Student-t interval (by hand)."""
    logs = [math.log(v) for v in values]
    m, sd = statistics.fmean(logs), statistics.stdev(logs)
    r = df_t * sd / math.sqrt(len(logs))
    return math.exp(m), math.exp(m - r), math.exp(m + r)


# -- a run in rounds: the race -------------------------------------------------------------
def test_interleaved_lines_are_student_t_over_rounds():
    # 5 rounds, 2 steps each; tokens/s of a round = 128 tokens over its two latencies
    lat = {
        "nospec": [[400, 410], [420, 400], [390, 400], [405, 415], [400, 400]],
        "fixed_2": [[200, 210], [205, 200], [220, 200], [200, 195], [210, 205]],
        "fixed_4": [[230, 220], [240, 225], [230, 230], [225, 235], [220, 240]],
    }
    v = decide(rounds_of(lat), with_groups=False)
    assert v.interleaved and v.metric == "client" and v.tolerance == 0.02
    for arm, blocks in lat.items():
        per_round = [128 * 1000.0 / sum(b) for b in blocks]
        want = geo_t(per_round, T975[4])
        line = v.line(arm)
        assert (line.n, line.rounds, line.k) == (10, 5, fixed_k(arm))
        assert (line.tps.value, line.tps.lo, line.tps.hi) == pytest.approx(want, rel=1e-9)
        steps = [x for b in blocks for x in b]
        assert line.mean_ms == pytest.approx(statistics.fmean(steps))
    assert v.best == "fixed_2"
    assert v.line("fixed_2").vs_best is None and v.line("fixed_2").status == "best"
    # best/arm: the geometric mean of the per-round ratios (equal blocks: equal weights)
    ratio = math.exp(statistics.fmean(
        math.log(sum(a) / sum(b)) for a, b in zip(lat["nospec"], lat["fixed_2"], strict=True)
    ))  # fmt: skip
    assert v.line("nospec").vs_best.value == pytest.approx(ratio, rel=1e-12)
    assert v.vs_nospec_arm == "fixed_2" and v.vs_nospec.value == pytest.approx(ratio, rel=1e-12)


def test_one_rule_for_the_label_and_the_recommendation():
    # two arms alike and clearly faster than a third, many rounds: the race certifies
    rng = random.Random(5)
    lat = {
        "fixed_1": [[round(300 * rng.uniform(0.98, 1.02)) for _ in range(4)] for _ in range(12)],
        "fixed_2": [[round(200 * rng.uniform(0.99, 1.01)) for _ in range(4)] for _ in range(12)],
        "fixed_3": [[round(200 * rng.uniform(0.99, 1.01)) for _ in range(4)] for _ in range(12)],
    }
    v = decide(rounds_of(lat), with_groups=False)
    assert v.decisive and v.statement.startswith("decisive: ")
    within = [a for a in v.lines if a.status in ("within", "best")]
    # every arm called within is certified within the tolerance, and the recommendation
    # is the smallest K among them: the label and the paste line say the same
    assert all(a.epsilon is not None and a.epsilon <= 0.02 for a in within)
    assert v.recommended == min((a.arm for a in within), key=lambda a: fixed_k(a) or 0)
    assert v.line("fixed_1").status == "dropped" and v.line("fixed_1").dropped_by in ("fixed_2", "fixed_3")


def test_an_undecided_race_says_what_it_certifies():
    lat = {
        "fixed_1": [[300, 310], [290, 330], [310, 300]],
        "fixed_2": [[305, 295], [300, 320], [290, 310]],
    }
    v = decide(rounds_of(lat), with_groups=False)
    assert not v.decisive and v.recommended in ("fixed_1", "fixed_2")
    assert v.statement.startswith("not decisive: ")
    assert "[not decisive: " in recommendation_line(v, "request")


def test_server_metric_reads_decode_tokens_over_decode_time():
    rows = [StepSample("fixed_1", 1, True, 500, 64, round=r, predicted_n=60, predicted_ms=ms)
            for r, ms in ((1, 200.0), (2, 250.0), (3, 240.0))]  # fmt: skip
    v = decide(rows, metric="server", with_groups=False)
    want = geo_t([60_000 / 200, 60_000 / 250, 60_000 / 240], T975[2])
    t = v.line("fixed_1").tps
    assert (t.value, t.lo, t.hi) == pytest.approx(want, rel=1e-9) and v.metric == "server"


def test_settle_rows_and_failures_are_not_measurements():
    rows = rounds_of({"fixed_1": [[300], [300]], "fixed_2": [[200], [210]]})
    rows.append(StepSample("fixed_1", 1, True, 10, 64, round=2, settle=True))
    rows.append(StepSample("fixed_1", 1, False, 0, 0, round=2))
    assert decide(rows, with_groups=False).line("fixed_1").n == 2


# -- a sequential run: no decision ---------------------------------------------------------
def test_sequential_lines_welch_and_no_decision():
    a = [s("fixed_1", x) for x in (300, 320, 310)]
    b = [s("fixed_2", x) for x in (200, 210, 190, 205)]
    v = decide(a + b, with_groups=False)
    assert not v.interleaved and not v.decisive and v.statement == SEQUENTIAL
    assert v.best == v.recommended == "fixed_2" and v.recommended_k == 2
    tps_a = [64_000 / x for x in (300, 320, 310)]
    tps_b = [64_000 / x for x in (200, 210, 190, 205)]
    want = geo_t(tps_b, T975[3])
    t = v.line("fixed_2").tps
    assert (t.value, t.lo, t.hi) == pytest.approx(want, rel=1e-9)
    # Welch on the logs, by hand
    la, lb = [math.log(x) for x in tps_a], [math.log(x) for x in tps_b]
    va, vb = statistics.variance(la) / 3, statistics.variance(lb) / 4
    df = (va + vb) ** 2 / (va**2 / 2 + vb**2 / 3)
    d = statistics.fmean(lb) - statistics.fmean(la)
    r = t_quantile(0.975, df) * math.sqrt(va + vb)
    got = v.line("fixed_1").vs_best
    assert (got.value, got.lo, got.hi) == pytest.approx((math.exp(d), math.exp(d - r), math.exp(d + r)))
    assert recommendation_line(v, "request").startswith(
        "use K = 2 [not decisive: a sequential run decides nothing]; request body"
    )


def test_welch_edges():
    assert welch_ratio([], [1.0]) is None
    assert welch_ratio([2.0], [1.0]) == Interval(2.0, 0.0, math.inf)  # one value: no spread
    assert welch_ratio([2.0, 2.0], [1.0, 1.0]) == Interval(2.0, 2.0, 2.0)


# -- the verdict as text and JSON -------------------------------------------------------
def _full() -> tuple[Verdict, Decision]:
    lines = (
        ArmLine("fixed_3", 3, 8, 4, Interval(320.0, 310.25, 330.5), 200.0, 216, 400.0, 0.0125,
                status="best", epsilon=0.018),
        ArmLine("nospec", 0, 8, 4, Interval(160.0, 150.0, 170.0), 400.0, 410, None, None,
                vs_best=Interval(2.0, 1.875, 2.125), status="dropped", dropped_round=3,
                dropped_by="fixed_3"),
        ArmLine("fixed_2", 2, 8, 4, Interval(318.0, 300.0, 336.0), 201.0, 215, None, None,
                vs_best=Interval(1.0, 0.99, 1.015), status="within", epsilon=0.015),
        ArmLine("fixed_5", 5, 8, 4, Interval(300.0, 280.0, 320.0), 213.0, 230, None, None,
                vs_best=Interval(1.07, 1.01, math.inf), status="racing", epsilon=0.09),
    )  # fmt: skip
    v = Verdict(
        lines, "fixed_3", True, "fixed_2", 2, 0.02,
        "decisive: K = 2 is within 2% of the fastest (95%, valid at any stop)", True,
        vs_nospec=Interval(2.0, 1.875, 2.125), vs_nospec_arm="fixed_3",
        phases=(ArmLine("fixed_3", 3, 4, 2, Interval(330.0, 320.0, 340.0), 190.0, 195, None,
                        None, group="steady"),
                ArmLine("fixed_3", 3, 4, 2, Interval(310.0, 300.0, 320.0), 210.0, 220, None,
                        None, group="load")),
    )  # fmt: skip
    return v, Decision(4, 40, 32, 8, 61.6, ())


def test_verdict_lines_exact():
    v, d = _full()
    assert verdict_lines(v, d, "request", None) == [
        "",
        "Verdict (tokens/s, 95% intervals, Student-t over rounds; one confidence sequence per "
        "pair decides, valid at any stop; tolerance 2%)",
        "arm           n  rnd          tok/s   mean ms   p95 ms  srv tok/s     CV              "
        "best/arm  status",
        "fixed_3       8    4    320.0 ±10.1     200.0      216      400.0  0.013              "
        "       -  best",
        "nospec        8    4    160.0 ±10.0     400.0      410          -      -    2.00x "
        "[1.88, 2.12]  dropped after round 3 (slower than fixed_3)",
        "fixed_2       8    4    318.0 ±18.0     201.0      215          -      -    1.00x "
        "[0.99, 1.01]  within (certified within 1.5%)",
        "fixed_5       8    4    300.0 ±20.0     213.0      230          -      -       1.07x "
        "[1.01, ?]  racing (certified within 9.0%)",
        "",
        "arm        phase         n          tok/s   mean ms",
        "fixed_3    steady        4    330.0 ±10.0     190.0",
        "fixed_3    load          4    310.0 ±10.0     210.0",
        "",
        "decision: decisive: K = 2 is within 2% of the fastest (95%, valid at any stop)",
        "took: after 4 rounds; 40 requests (32 measured, 8 settle) in 62 s",
        "speculation (fixed_3): 2.00x [1.88, 2.12] faster than nospec",
        "recommendation: use K = 2 (within 2% of the fastest, fixed_3: the smallest K certified "
        "so drafts least for the same speed); request body: \"speculative\": {\"n_max\": 2, "
        "\"n_min\": 0, \"p_min\": 0}",
    ]


def test_verdict_dict_is_strict_json_and_complete():
    v, d = _full()
    doc = json.loads(json.dumps(verdict_dict(v, d, "request")),
                     parse_constant=lambda c: (_ for _ in ()).throw(ValueError(c)))  # fmt: skip
    assert (doc["best"], doc["decisive"], doc["recommended_k"]) == ("fixed_3", True, 2)
    assert doc["statement"] == v.statement and doc["interleaved"] is True
    nospec = next(a for a in doc["arms"] if a["arm"] == "nospec")
    assert (nospec["status"], nospec["dropped_after_round"], nospec["dropped_by"]) == (
        "dropped", 3, "fixed_3",
    )  # fmt: skip
    five = next(a for a in doc["arms"] if a["arm"] == "fixed_5")
    assert five["best_over_arm"] == {"value": 1.07, "lo": 1.01, "hi": None}  # no Infinity
    assert [p["group"] for p in doc["phases"]] == ["steady", "load"]


def test_texts_at_their_edges():
    assert fmt_tps(None) == "-" and fmt_tps(Interval(12.25, 0.0, math.inf)) == "12.2 ±?"
    assert fmt_ratio(None) == "-" and fmt_ratio(Interval(1.0, 0.5, math.inf)) == "1.00x [0.50, ?]"
    v, _ = _full()
    assert nospec_line(v) == "speculation (fixed_3): 2.00x [1.88, 2.12] faster than nospec"
    for lo, hi, how in ((0.9, 0.99, "slower than"), (0.99, 1.01, "not distinguishable from")):
        w = Verdict((), "x", False, None, None, 0.02, "", True, vs_nospec=Interval(1.0, lo, hi),
                    vs_nospec_arm="fixed_1")  # fmt: skip
        assert nospec_line(w).endswith(f"{how} nospec")
    line = ArmLine("a", 1, 1, 1, None, None, None, None, None, status="racing")
    assert status_text(line) == "racing"
    assert status_text(ArmLine("a", 1, 1, 1, None, None, None, None, None)) == "-"
    empty = Verdict((), None, False, None, None, 0.02, "no arm has a successful step", False)
    assert recommendation_line(empty, "request") == "no arm has a successful step: nothing to recommend"
    adaptive = Verdict((), "adaptive:model", True, "adaptive:model", None, 0.02, "", True)
    assert recommendation_line(adaptive, "request") == (
        "fastest: adaptive:model (an adaptive arm: no fixed setting to paste)"
    )
    off = Verdict((), "nospec", True, "nospec", 0, 0.02, "", True)
    assert recommendation_line(off, "llama-server") == (
        "turn speculation off; llama-server flags: no speculation (no -md; --spec-type none)"
    )
    pmin = Verdict((ArmLine("pmin:0.75", 16, 1, 1, None, None, None, None, None, epsilon=0.03),),
                   "pmin:0.75", False, "pmin:0.75", 16, 0.02, "", True)  # fmt: skip
    assert recommendation_line(pmin, "request").startswith(
        "use K = 16 with p_min 0.75 [not decisive: certified within 3.0% of the fastest]"
    )


# -- how long the decision took; what to paste ------------------------------------------------
def _row(arm, lat, rnd, ts="", settle=False, actuator=""):
    return StepSample(arm, 0, True, lat, 64, round=rnd, settle=settle, timestamp=ts,
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


def test_main_actuator_tie_goes_to_the_first_seen():
    rows = [_row("a", 1, 1, actuator=x) for x in ("request", "llama-server", "llama-server", "request")]
    assert main_actuator(rows) == "request"
    assert main_actuator(rows[1:]) == "llama-server"
    assert main_actuator([_row("a", 1, 1, actuator=x) for x in ("request", "lemonade-load", "lemonade-load")]) == (
        "lemonade-load"
    )

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


def test_paste_setting_per_server_kind():
    assert paste_setting(5, "lemonade-load") == (
        'Lemonade /api/v1/load: {"llamacpp_args": "--spec-type draft-simple '
        '--spec-draft-n-max 5 --spec-draft-n-min 0 --spec-draft-p-min 0"}'
    )
    assert paste_setting(0, "lemonade-load") == (
        'Lemonade /api/v1/load: {"llamacpp_args": "--spec-type none"}'
    )
    assert paste_setting(16, "lemonade-load", 0.75).endswith('--spec-draft-p-min 0.75"}')
    assert paste_setting(5, "request") == (
        'request body: "speculative": {"n_max": 5, "n_min": 0, "p_min": 0}'
    )
    assert paste_setting(0, "llama-server") == (
        "llama-server flags: no speculation (no -md; --spec-type none)"
    )
    assert paste_setting(3, "field:speculative_draft_length") == (
        "K never reached the server through actuator field:speculative_draft_length: "
        "nothing to paste"
    )
    assert fixed_k("pmin:0.75") == 16 and p_min_of("pmin:0.75") == 0.75 and p_min_of("fixed_3") == 0



# -- the schedule ---------------------------------------------------------------------------
def test_round_order_is_a_reproducible_shuffle():
    arms = ["nospec", "fixed_1", "fixed_2", "fixed_3", "fixed_4"]
    orders = [round_order(arms, 7, r) for r in range(1, 6)]
    assert all(sorted(o) == sorted(arms) for o in orders)
    assert orders == [round_order(arms, 7, r) for r in range(1, 6)]
    assert len({tuple(o) for o in orders}) > 1  # fresh each round
    assert round_order(arms, 8, 1) != round_order(arms, 7, 1) or round_order(
        arms, 8, 2
    ) != round_order(arms, 7, 2)
    blocks = round_blocks(arms, 7, 2, 3)
    assert [b.arm for b in blocks] == orders[1]
    assert [(b.round, b.position, b.steps) for b in blocks] == [(2, i, 3) for i in range(1, 6)]


def test_round_phase_and_prompts():
    assert [round_phase(r, 2, 2) for r in range(1, 6)] == [
        "steady", "load", "load", "recovery", "recovery",
    ]  # fmt: skip
    assert [round_phase(r, None, 2) for r in (1, 2, 3)] == ["steady"] * 3
    assert [round_phase(r, 1, 0) for r in (1, 2)] == ["steady"] * 2
    assert [prompt_index(8, i) for i in (1, 4)] == [8, 11]


def test_blocks_grow_as_arms_are_dropped():
    assert [grown_block(4, 9, n) for n in (9, 5, 4, 3, 2, 1)] == [4, 4, 8, 12, 16, 16]
    assert grown_block(2, 3, 0) == 2


def test_round_order_is_the_documented_shuffle():
    """Round r of seed S is random.Random(S * 1_000_003 + r).shuffle of the arms: a
    recorded seed gives the same orders again, in this version and later ones."""
    arms = ["nospec", "fixed_1", "fixed_2", "fixed_3", "fixed_4", "fixed_5"]
    for seed, rnd in ((7, 1), (7, 2), (123, 9), (0, 3)):
        want = list(arms)
        random.Random(seed * 1_000_003 + rnd).shuffle(want)
        assert round_order(arms, seed, rnd) == want
    assert arms == ["nospec", "fixed_1", "fixed_2", "fixed_3", "fixed_4", "fixed_5"]  # untouched


def test_one_load_round():
    assert [round_phase(r, 2, 1) for r in (1, 2, 3)] == ["steady", "load", "recovery"]
    assert [round_phase(r, 1, -1) for r in (1, 2)] == ["steady", "steady"]
