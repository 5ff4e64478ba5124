"""The policy table (policy.py) in words: text lines, a Markdown table, a JSON list.

One cell formatter for all three, so the summaries, `report` and the monitor say the
same thing: per condition the pick, its tokens/s, how far it is decided, and the
regret of the one static K everywhere; then the static K, what to paste per
condition, and how the server in use can follow the table.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from halospec_tui.formats import plus_minus
from halospec_tui.policy import Policy, PolicyRow, Regret, pick_text

HEADER = ("condition", "pick", "tok/s", "decided")
REGRET_NOTE = "95% Student-t per condition, not joint; a bare figure is a point estimate"


@dataclass(frozen=True)
class RowCells:
    condition: str
    pick: str
    tps: str
    decided: str
    regret: str


def regret_text(r: Regret | None) -> str:
    """"4.1% [1.2, 7.0]"; "4.1% (point)" without an interval; "-" when not measured."""
    if r is None:
        return "-"
    text = f"{r.value * 100:.1f}%"
    if r.lo is None or r.hi is None:
        return text + " (point)"
    if r.lo == r.hi == r.value:
        return text
    lo = f"{r.lo * 100:.1f}"  # an unbounded lower end prints as "-inf"
    hi = "?" if not math.isfinite(r.hi) else f"{r.hi * 100:.1f}"
    return f"{text} [{lo}, {hi}]"


def decided_text(r: PolicyRow) -> str:
    """decisive; within X% (not decisive); not yet; with the arms tied, if any."""
    if r.decisive:
        text = "decisive"
    elif r.epsilon is not None:
        text = f"within {r.epsilon * 100:.1f}%"
    else:
        text = "not yet"
    if r.tied:
        text += " (tie: " + " ".join(r.tied) + ")"
    return text


def row_cells(r: PolicyRow) -> RowCells:
    tps = "-" if r.tps is None else plus_minus(r.tps.value, (r.tps.hi - r.tps.lo) / 2)
    return RowCells(r.condition, pick_text(r), tps, decided_text(r), regret_text(r.static_regret))


def static_line(p: Policy) -> str:
    if p.static is None:
        return "one static setting everywhere: no fixed arm was measured in every condition"
    mean = "-" if p.mean_regret is None else f"{p.mean_regret * 100:.1f}%"
    worst = next((r for r in p.rows if r.condition == p.worst), None)
    most = ""
    if worst is not None and worst.static_regret is not None:
        most = f", most {worst.static_regret.value * 100:.1f}% at {worst.condition}"
    return f"one static setting everywhere: {p.static}, mean regret {mean}{most}"


def policy_lines(p: Policy) -> list[str]:
    """The policy as text, after the verdicts."""
    cells = [row_cells(r) for r in p.rows]
    regret_head = f"regret of {p.static}" if p.static else "regret"
    head = (*HEADER, regret_head)
    table = [head, *((c.condition, c.pick, c.tps, c.decided, c.regret) for c in cells)]
    widths = [max(len(row[i]) for row in table) for i in range(len(head))]
    out = ["", f"Policy (tolerance {p.tolerance * 100:g}%; regret: {REGRET_NOTE})"]
    for row in table:
        out.append("  ".join(x.ljust(widths[i]) for i, x in enumerate(row)).rstrip())
    out.append(static_line(p))
    out += [f"{r.condition}: {r.setting}" for r in p.rows]
    out.append(f"server: {p.advice}")
    return out


def policy_markdown(p: Policy) -> list[str]:
    """The policy as a Markdown table (cells made inert by `md_escape`)."""
    from halospec_tui.results.export_md import md_escape  # export_md imports this module

    regret_head = f"regret of {md_escape(p.static)}" if p.static else "regret"
    out = [f"| condition | pick | tok/s | decided | {regret_head} |", "|---|---|---|---|---|"]
    for r in p.rows:
        c = row_cells(r)
        out.append("| " + " | ".join(md_escape(x) for x in (c.condition, c.pick, c.tps, c.decided,
                                                             c.regret)) + " |")  # fmt: skip
    out += ["", f"Regret: {REGRET_NOTE}.", "", f"- {md_escape(static_line(p))}"]
    out += [f"- {md_escape(r.condition)}: {md_escape(r.setting)}" for r in p.rows]
    out.append(f"- server: {md_escape(p.advice)}")
    return out


def _regret_dict(r: Regret | None) -> dict[str, float | None] | None:
    if r is None:
        return None
    return {"value": r.value, "lo": r.lo, "hi": r.hi}


def policy_dicts(p: Policy) -> list[dict[str, object]]:
    """One JSON object per condition (the JSON summary's "policy")."""
    return [
        {
            "condition": r.condition, "best": r.best, "recommended": r.recommended,
            "recommended_k": r.recommended_k,
            "tps": None if r.tps is None else {"value": r.tps.value, "lo": r.tps.lo, "hi": r.tps.hi},
            "tied": list(r.tied), "decisive": r.decisive, "certified_within": r.epsilon,
            "setting": r.setting, "static": p.static,
            "static_regret": _regret_dict(r.static_regret),
        }
        for r in p.rows
    ]  # fmt: skip


def static_dict(p: Policy) -> dict[str, object]:
    """The JSON summary's "policy_static": the one K everywhere, and the advice."""
    return {"arm": p.static, "k": p.static_k, "mean_regret": p.mean_regret, "worst": p.worst,
            "advice": p.advice, "tolerance": p.tolerance}  # fmt: skip
