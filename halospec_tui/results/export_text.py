"""The summary as text: the original's table character for character, then drafting
figures, the knob check, regret, and the verdict with what to paste."""

from __future__ import annotations

import math
from collections.abc import Sequence

from halospec_tui.formats import plus_minus, summary_cells
from halospec_tui.paste import paste_setting as paste_setting  # their home; kept here too
from halospec_tui.paste import recommendation_line as recommendation_line
from halospec_tui.race import Interval
from halospec_tui.race_rows import screenable
from halospec_tui.results.export_policy import policy_lines
from halospec_tui.results.report import Report
from halospec_tui.verdict import CONFIDENCE, ArmLine, Decision, Verdict


def _row(cols: Sequence[str]) -> str:
    # The original's format string: {:<10} {:>6} {:>8.1}% {:>9} {:>12} {:>12} {:>12}
    # {:>10} {:>10} {:>12} {:>14} {:>10}
    widths = (6, 8, 9, 12, 12, 12, 10, 10, 12, 14, 10)
    out = f"{cols[0]:<10}"
    for i, (c, w) in enumerate(zip(cols[1:], widths, strict=True)):
        out += f" {c:>{w}}"
        if i == 1:
            out += "%"
    return out


def classic_table(report: Report) -> str:
    """The original's summary, character for character.

    Its header prints "s%" for the success column: Rust's `{:>8.1}` truncates the
    string "success" to one character. Kept so output diffs cleanly against it.
    """
    lines = [
        "",
        "==============================",
        "HaloSpec Benchmark Summary",
        "==============================",
        "",
        _row(
            [
                "mode",
                "steps",
                "s",
                "fail",
                "avg",
                "median",
                "p95",
                "min",
                "max",
                "stddev",
                "throughput",
                "score",
            ]
        ),
    ]
    for s in report.summaries:
        c = summary_cells(s, units=True)
        lines.append(
            _row(
                [
                    c.arm, c.steps, c.success, c.failures, c.avg, c.median, c.p95, c.min,
                    c.max, c.stddev, c.throughput, c.score,
                ]  # fmt: skip
            )
        )
    for s in report.summaries:
        if s.is_adaptive:
            if s.convergence_step is not None:
                lines.append(
                    f"\n[Adaptive Behavior] draft_length changes={s.k_changes} | "
                    f"converged_at_step={s.convergence_step} (k=5)"
                )
            else:
                lines.append(
                    f"\n[Adaptive Behavior] draft_length changes={s.k_changes} | "
                    "no convergence within run (k=5)"
                )
    if report.winner is not None and report.winner_score is not None:
        lines.append(
            f"\nWinner (lowest SLO-aware score): {report.winner} at {report.winner_score:.1f}"
        )
    return "\n".join(lines)


def extras_table(report: Report) -> str:
    """What the server said about drafting, per mode, and the knob verdict."""
    w = max([10, *(len(s.arm) for s in report.summaries)])
    lines = [
        "",
        f"{'mode':<{w}} {'drafted':>9} {'accepted':>9} {'accept%':>8} {'srv tok/s':>10} "
        f"{'reloads':>8} {'reload ms':>10}",
    ]
    for s in report.summaries:
        c = summary_cells(s)
        lines.append(
            f"{c.arm:<{w}} {c.drafted:>9} {c.accepted:>9} {c.acceptance:>8} "
            f"{c.server_tps:>10} {c.reloads:>8} {c.reload_ms:>10}"
        )
    adapting = adapting_lines(report)
    if adapting:
        lines += ["", *adapting]
    if report.regret or report.class_regret:
        lines.append("")
        lines += regret_lines(report)
    marker = {"effective": "OK", "no-effect": "WARNING", "unverified": "NOTE"}[report.knob.status]
    lines.append(f"\n[{marker}] {report.knob.message}")
    lines += verdict_section(report)
    return "\n".join(lines)


def adapting_lines(report: Report) -> list[str]:
    """What adapting cost each adaptive arm: its K changes and their reloads, and its
    tokens/s without and with them (the verdict ranks on the latter)."""
    out = []
    for s in report.summaries:
        if not s.is_adaptive:
            continue
        tps = "-" if s.throughput is None else f"{s.throughput:.1f}"
        incl = "-" if s.throughput_incl is None else f"{s.throughput_incl:.1f}"
        out.append(
            f"{s.arm}: {s.k_changes} K changes, {s.adapting_ms} ms reloading for them; "
            f"{tps} tok/s without, {incl} tok/s with them"
        )
    return out


def regret_lines(report: Report) -> list[str]:
    return [
        f"{r.arm} vs best fixed in {r.phase}: {r.adaptive_ms:.1f} ms vs {r.best_ms:.1f} ms "
        f"({r.best_fixed}), regret {_percent(r.regret)}"
        for r in report.regret
    ] + [
        f"{r.arm} vs best fixed on {r.phase} prompts: {r.adaptive_ms:.1f} ms vs "
        f"{r.best_ms:.1f} ms ({r.best_fixed}), regret {_percent(r.regret)}"
        for r in report.class_regret
    ]


def _percent(v: float | None) -> str:
    return "n/a" if v is None else f"{v * 100:+.1f}%"


def summary_text(report: Report) -> str:
    return classic_table(report) + "\n" + extras_table(report) + "\n"


# -- the verdict ----------------------------------------------------------------------
def verdict_section(report: Report) -> list[str]:
    """The verdict (a run with several conditions: one per condition), then the policy."""
    if report.decision is None:
        return []
    out: list[str] = []
    if report.verdict is not None:
        out = verdict_lines(report.verdict, report.decision, report.actuator,
                            report.nospec_drafted, report.server_kind)  # fmt: skip
    else:
        for cond, v in report.conditions:
            out += verdict_lines(v, report.decision, report.actuator, report.nospec_drafted,
                                 report.server_kind, at=cond)  # fmt: skip
    if report.policy is not None:
        out += policy_lines(report.policy)
    return out


def fmt_tps(e: Interval | None, digits: int = 1) -> str:
    """tokens/s with its interval's half-width ("±?" while it cannot be measured)."""
    return "-" if e is None else plus_minus(e.value, (e.hi - e.lo) / 2, digits)


def fmt_ratio(e: Interval | None) -> str:
    if e is None:
        return "-"
    hi = "?" if not math.isfinite(e.hi) else f"{e.hi:.2f}"
    return f"{e.value:.2f}x [{e.lo:.2f}, {hi}]"


def nospec_line(v: Verdict) -> str | None:
    e = v.vs_nospec
    if e is None:
        return None
    if e.lo > 1.0:
        how = "faster than"
    elif e.hi < 1.0:
        how = "slower than"
    else:
        how = "not distinguishable from"
    return f"speculation ({v.vs_nospec_arm}): {fmt_ratio(e)} {how} {v.vs_nospec_ref or 'nospec'}"


def status_text(a: ArmLine) -> str:
    """An arm's standing in words: best; within the tolerance (certified); racing
    (certified within what so far); dropped after which round, by whom; screened out."""
    if a.status == "dropped" and a.dropped_round is not None:
        return f"dropped after round {a.dropped_round} (slower than {a.dropped_by})"
    if a.status in ("within", "racing") and a.epsilon is not None:
        return f"{a.status} (certified within {a.epsilon * 100:.1f}%)"
    return a.status or "-"


def verdict_lines(
    v: Verdict, decision: Decision, actuator: str, nospec_drafted: int | None, server_kind: str = "",
    at: str = "",
) -> list[str]:  # fmt: skip
    """The verdict as text: per-arm table with intervals, phases and prompt classes, the
    screen, the decision in the race's own words, nospec, the recommendation. `at`: the
    condition this verdict is of (a run with several)."""
    w = max([10, *(len(a.arm) for a in v.lines)])
    unit = "decode tokens/s (server timings)" if v.metric == "server" else "tokens/s"
    how = ("Student-t over rounds; one confidence sequence per pair decides, valid at any stop"
           if v.interleaved else "Student-t over steps; a sequential run decides nothing")  # fmt: skip
    lines = [
        "",
        f"Verdict{' at ' + at if at else ''} ({unit}, {CONFIDENCE * 100:g}% intervals, {how}; "
        f"tolerance {v.tolerance * 100:g}%)",
        f"{'arm':<{w}} {'n':>4} {'rnd':>4} {'tok/s':>14} {'mean ms':>9} {'p95 ms':>8} "
        f"{'srv tok/s':>10} {'CV':>6} {'best/arm':>21}  status",
    ]
    for a in v.lines:
        lines.append(
            f"{a.arm:<{w}} {a.n:>4} {a.rounds:>4} {fmt_tps(a.tps):>14} {_num(a.mean_ms):>9} "
            f"{_num(a.p95_ms, 0):>8} {_num(a.server_tps):>10} {_num(a.cv, 3):>6} "
            f"{fmt_ratio(a.vs_best):>21}  {status_text(a)}"
        )
    for label, table in (("phase", v.phases), ("prompts", v.classes)):
        if len({p.group for p in table}) > 1:
            lines += ["", f"{'arm':<{w}} {label:<10} {'n':>4} {'tok/s':>14} {'mean ms':>9}"]
            for p in table:
                lines.append(
                    f"{p.arm:<{w}} {p.group:<10} {p.n:>4} {fmt_tps(p.tps):>14} {_num(p.mean_ms):>9}"
                )
    lines += screen_lines(v)
    lines.append("")
    took = f"{decision.requests} requests ({decision.measured} measured, {decision.settle} settle)"
    if decision.seconds is not None:
        took += f" in {decision.seconds:.0f} s"
    where = f" after {decision.rounds} rounds" if decision.rounds else ""
    lines.append(f"decision: {v.statement}")
    lines.append(f"took:{where}; {took}")
    ns = nospec_line(v)
    if ns:
        lines.append(ns)
    if nospec_drafted:
        lines.append(
            f"WARNING: nospec drafted {nospec_drafted} tokens: speculation was not switched off"
        )
    lines.append(f"recommendation: {recommendation_line(v, actuator, server_kind)}")
    return lines


def screen_lines(v: Verdict) -> list[str]:
    """What the screen fitted and kept: its reason, and predicted vs measured per K."""
    s = v.screen
    if s is None:
        return []
    out = ["", f"screen: {s.why}"]
    if v.screened_out:
        out.append(f"screened out: {', '.join(v.screened_out)}")
    if s.predicted:
        measured = {a.k: a.tps.value for a in v.lines if a.k is not None and a.tps is not None
                    and screenable(a.arm)}  # fmt: skip
        cells = [f"K {k}: {p:.1f}" + (f" ({measured[k]:.1f})" if k in measured else "")
                 for k, p in s.predicted]  # fmt: skip
        out.append("model tok/s by K (measured): " + ", ".join(cells))
    return out


def _num(x: float | int | None, digits: int = 1) -> str:
    return "-" if x is None or (isinstance(x, float) and not math.isfinite(x)) else f"{x:.{digits}f}"
