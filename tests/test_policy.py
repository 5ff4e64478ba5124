"""policy.py pinned with figures worked out by hand: relative rates, the single best
static K, its regret per condition (point and interval), ties, and the advice line."""

from __future__ import annotations

import math

import pytest

from halospec_tui.paste import recommendation_line
from halospec_tui.policy import (
    PolicyRow,
    Regret,
    advice,
    best_static,
    build_policy,
    cutoff,
    regret_of,
    relative_rates,
)
from halospec_tui.race import Interval
from halospec_tui.stats import StepSample
from halospec_tui.verdict import ArmLine, Verdict, decide


def line(arm: str, k: int | None, tps: float, vs: tuple[float, float, float] | None = None,
         status: str = "racing") -> ArmLine:  # fmt: skip
    return ArmLine(
        arm=arm, k=k, n=8, rounds=4, tps=Interval(tps, tps * 0.9, tps * 1.1), mean_ms=None,
        p95_ms=None, server_tps=None, cv=None,
        vs_best=Interval(*vs) if vs is not None else None, status=status,
    )  # fmt: skip


def verdict(best: str, lines: list[ArmLine], recommended: str | None = None,
            decisive: bool = True) -> Verdict:  # fmt: skip
    rec = recommended or best
    k = next(a.k for a in lines if a.arm == rec)
    return Verdict(tuple(lines), best, decisive, rec, k, 0.02, "", True)


# idle@1: fixed_4 fastest at 40 tok/s; fixed_2 at best/arm 1.25 (0.8 of it), nospec at
# 2.0 (0.5). memory@1: nospec fastest; fixed_2 at 1/0.9 (0.9 of it), fixed_4 at 2.5 (0.4).
IDLE = verdict("fixed_4", [
    line("fixed_4", 4, 40.0, status="best"),
    line("fixed_2", 2, 32.0, (1.25, 1.125, 1.5)),
    line("nospec", 0, 20.0, (2.0, 1.8, 2.2)),
])  # fmt: skip
MEMORY = verdict("nospec", [
    line("nospec", 0, 20.0, status="best"),
    line("fixed_2", 2, 18.0, (1 / 0.9, 1.0, 1.25)),
    line("fixed_4", 4, 8.0, (2.5, 2.0, math.inf)),
])  # fmt: skip


def test_relative_rates_are_one_over_the_paired_ratio():
    assert relative_rates(IDLE) == {"fixed_4": 1.0, "fixed_2": 0.8, "nospec": 0.5}
    rel = relative_rates(MEMORY)
    assert rel["nospec"] == 1.0 and rel["fixed_2"] == pytest.approx(0.9) and rel["fixed_4"] == 0.4


def test_the_single_best_static_k_maximises_the_mean_relative_rate():
    # means: nospec (0.5 + 1) / 2 = 0.75, fixed_2 (0.8 + 0.9) / 2 = 0.85, fixed_4 0.7
    assert best_static([relative_rates(IDLE), relative_rates(MEMORY)]) == "fixed_2"
    # alone, each condition's static K is its fastest
    assert best_static([relative_rates(IDLE)]) == "fixed_4"
    assert best_static([relative_rates(MEMORY)]) == "nospec"


def test_a_tie_goes_to_the_smallest_k_and_an_arm_must_have_run_everywhere():
    assert best_static([{"fixed_4": 1.0, "fixed_2": 0.5}, {"fixed_4": 0.5, "fixed_2": 1.0}]) == "fixed_2"
    assert best_static([{"fixed_8": 1.0, "nospec": 0.9}, {"nospec": 1.0}]) == "nospec"
    # adaptive arms are no static setting
    assert best_static([{"adaptive:model": 1.0, "fixed_3": 0.7}]) == "fixed_3"
    assert best_static([{"fixed_2": 1.0}, {"fixed_4": 1.0}]) is None
    assert best_static([]) is None


def test_regret_in_a_condition_maps_the_paired_interval():
    r = regret_of(IDLE, "fixed_2")
    assert r is not None
    assert r.value == pytest.approx(0.2)  # 1 - 1/1.25
    assert r.lo == pytest.approx(1 - 1 / 1.125)  # 0.1111...
    assert r.hi == pytest.approx(1 - 1 / 1.5)  # 0.3333...
    assert regret_of(IDLE, "fixed_4") == Regret(0.0, 0.0, 0.0)  # the fastest itself
    m = regret_of(MEMORY, "fixed_4")
    assert m is not None and m.value == pytest.approx(0.6) and m.hi == 1.0  # unbounded ratio
    assert regret_of(IDLE, "fixed_8") is None  # not measured there


def test_a_regret_without_a_pair_is_a_point_from_the_means():
    v = verdict("fixed_4", [line("fixed_4", 4, 40.0, status="best"), line("fixed_2", 2, 30.0)])
    assert regret_of(v, "fixed_2") == Regret(0.25)  # 1 - 30/40, no interval


def test_the_policy_table_of_two_conditions():
    p = build_policy([("idle@1", IDLE), ("memory@1", MEMORY)], "llama-server", "llama-server", 812.4)
    assert [r.condition for r in p.rows] == ["idle@1", "memory@1"]
    assert [r.recommended for r in p.rows] == ["fixed_4", "nospec"]
    assert p.static == "fixed_2" and p.static_k == 2
    regrets = [r.static_regret.value for r in p.rows if r.static_regret is not None]
    assert regrets == [pytest.approx(0.2), pytest.approx(0.1)]
    assert p.mean_regret == pytest.approx(0.15) and p.worst == "idle@1"
    assert p.rows[0].setting == recommendation_line(IDLE, "llama-server", "llama-server")
    assert p.rows[0].tps == Interval(40.0, 36.0, 44.0)
    assert p.advice == (
        "llama-server takes K at launch: nothing switches it at run time; follow the table by "
        "reloading the server with the row's setting when the condition changes (a reload took "
        "812 ms in this run), or race an adaptive arm (adaptive:model), which switches with its "
        "reload cost counted"
    )


def test_ties_are_listed_and_the_pick_is_the_verdicts():
    v = verdict("fixed_4", [line("fixed_4", 4, 40.0, status="best"),
                            line("fixed_2", 2, 39.6, (1.01, 1.0, 1.02), status="within"),
                            line("nospec", 0, 20.0, (2.0, 1.8, 2.2), status="dropped")],
                recommended="fixed_2")  # fmt: skip
    p = build_policy([("idle@1", v)], "request")
    assert p.rows[0].recommended == "fixed_2" and p.rows[0].tied == ("fixed_4", "fixed_2")


def _rows() -> list[StepSample]:
    """Three arms over four rounds: fixed_2 the fastest, nospec the slowest."""
    out = []
    for rnd in range(1, 5):
        for arm, k, ms in (("nospec", 0, 400), ("fixed_2", 2, 250 + rnd), ("fixed_4", 4, 300)):
            for i in range(2):
                out.append(StepSample(arm, k, True, ms + 3 * i, 64, round=rnd, condition="idle",
                                      concurrency=1, drafted=10 * k, accepted=5 * k))  # fmt: skip
    return out


def test_one_condition_gives_todays_recommendation():
    v = decide(_rows())
    p = build_policy([("idle@1", v)], "lemonade-load", "lemonade")
    (row,) = p.rows
    assert row.recommended == v.recommended == "fixed_2" and row.recommended_k == v.recommended_k
    assert row.setting == recommendation_line(v, "lemonade-load", "lemonade")
    assert p.static == v.best == "fixed_2"
    assert row.static_regret == Regret(0.0, 0.0, 0.0) and p.mean_regret == 0.0
    assert p.advice == "one setting serves every condition: nothing to switch"


def _row(cond: str, arm: str, k: int) -> PolicyRow:
    return PolicyRow(cond, arm, arm, k, None, (), True, None, "", None)


def test_vllm_gets_a_batch_size_cut_off_when_speculation_pays_at_low_concurrency_only():
    rows = [_row("idle@1", "fixed_4", 4), _row("idle@2", "fixed_2", 2), _row("idle@4", "nospec", 0)]
    assert cutoff(rows) == 4
    said = advice(rows, "vllm")
    assert '"disable_by_batch_size": 3' in said and "below 4 concurrent requests" in said
    # llama-server cannot: the cut-off is said, the way to follow it is a reload
    assert advice(rows, "llama-server").startswith(
        "speculation pays below 4 concurrent requests only; llama-server takes K at launch"
    )
    # not monotone (speculation again at 4): no cut-off
    assert cutoff([_row("idle@1", "nospec", 0), _row("idle@4", "fixed_2", 2)]) is None
    # loads that disagree on the level: no single cut-off
    assert cutoff([_row("idle@1", "fixed_2", 2), _row("idle@2", "nospec", 0),
                   _row("cpu@1", "fixed_2", 2), _row("cpu@2", "fixed_2", 2),
                   _row("cpu@4", "nospec", 0)]) is None  # fmt: skip


# -- the policy in the summaries and on the headless lines ----------------------------------
def test_the_policy_as_text_markdown_and_json():
    from halospec_tui.results.export_policy import policy_dicts, policy_lines, policy_markdown

    p = build_policy([("idle@1", IDLE), ("memory@1", MEMORY)], "llama-server", "llama-server")
    lines = policy_lines(p)
    assert lines[:6] == [
        "",
        "Policy (tolerance 2%; regret: 95% Student-t per condition, not joint; a bare figure is a "
        "point estimate)",
        "condition  pick             tok/s      decided   regret of fixed_2",
        "idle@1     fixed_4          40.0 ±4.0  decisive  20.0% [11.1, 33.3]",
        "memory@1   speculation off  20.0 ±2.0  decisive  10.0% [0.0, 20.0]",
        "one static setting everywhere: fixed_2, mean regret 15.0%, most 20.0% at idle@1",
    ]
    assert lines[6] == "idle@1: use K = 4; llama-server flags: -md DRAFT.gguf --spec-type " \
        "draft-simple --spec-draft-n-max 4 --spec-draft-n-min 0 --spec-draft-p-min 0"
    assert lines[7].startswith("memory@1: turn speculation off; llama-server flags: no speculation")
    assert lines[8].startswith("server: llama-server takes K at launch")
    md = policy_markdown(p)
    assert md[:4] == [
        "| condition | pick | tok/s | decided | regret of fixed\\_2 |",
        "|---|---|---|---|---|",
        "| idle@1 | fixed\\_4 | 40.0 ±4.0 | decisive | 20.0% \\[11.1, 33.3\\] |",
        "| memory@1 | speculation off | 20.0 ±2.0 | decisive | 10.0% \\[0.0, 20.0\\] |",
    ]
    (first, second) = policy_dicts(p)
    assert first["condition"] == "idle@1" and first["recommended_k"] == 4
    assert first["static"] == "fixed_2" and first["static_regret"]["value"] == pytest.approx(0.2)
    assert second["recommended"] == "nospec" and second["tied"] == []


def test_the_headless_lines_say_the_condition_and_the_policy():
    import io

    from halospec_tui.events import ConditionStarted, PolicyChanged
    from halospec_tui.headless import HeadlessPrinter

    out = io.StringIO()
    printer = HeadlessPrinter(out=out, err=io.StringIO())
    printer.emit(ConditionStarted(2, "memory@3", "memory load, 3 requests at a time", 1, 4,
                                  ("fixed_2", "nospec")))  # fmt: skip
    p = build_policy([("idle@1", IDLE), ("memory@3", MEMORY)], "request")
    printer.emit(PolicyChanged(p))
    assert out.getvalue().splitlines() == [
        "--- condition memory@3 (1/4): memory load, 3 requests at a time: fixed_2 nospec",
        "-- policy: idle@1 fixed_4, memory@3 speculation off; one static fixed_2 everywhere: "
        "mean regret 15.0%",
    ]
