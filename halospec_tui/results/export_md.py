"""The summary as Markdown: one document per run, or one with a section per run.

Every value read from a CSV is made inert (`md_escape`): no markup, no links, no
spreadsheet formulas."""

from __future__ import annotations

from collections.abc import Sequence

from halospec_tui.formats import summary_cells
from halospec_tui.results.export_policy import policy_lines, policy_markdown
from halospec_tui.results.export_text import adapting_lines, regret_lines, verdict_section
from halospec_tui.results.report import Report

TITLE = "HaloSpec benchmark summary"


def md_escape(text: str) -> str:
    """Make a CSV-sourced value inert in Markdown (and in a spreadsheet it is pasted into)."""
    t = str(text).replace("\\", "\\\\").replace("|", "\\|").replace("\n", " ").replace("\r", " ")
    for ch in "`*_[]<>#!":
        t = t.replace(ch, "\\" + ch)
    # A lone sign is the tables' "none" placeholder, not a formula: it stays as it is.
    if t[:1] in ("=", "+", "-", "@") and len(t) > 1 and not _is_number(t):
        t = "'" + t
    return t


def _is_number(t: str) -> bool:
    try:
        float(t)
        return True
    except ValueError:
        return False


def summary_markdown(report: Report, heading: str = f"# {TITLE}") -> str:
    """One run's summary under `heading`; its verdict is a heading one level below."""
    head = [
        "mode", "steps", "success %", "fail", "avg ms", "median ms", "p95 ms", "min ms",
        "max ms", "stddev ms", "tok/s", "score", "accept %",
    ]  # fmt: skip
    lines = [heading, "", "| " + " | ".join(head) + " |"]
    lines.append("|" + "---|" * len(head))
    for s in report.summaries:
        c = summary_cells(s)
        name = md_escape(s.arm)
        if s.arm == report.winner:
            name = f"**{name}**"
        cells = [
            name, c.steps, c.success, c.failures, c.avg, c.median, c.p95, c.min, c.max,
            c.stddev, c.throughput, c.score, c.acceptance,
        ]  # fmt: skip
        lines.append("| " + " | ".join(cells) + " |")
    if report.winner:
        lines += ["", f"Winner (lowest SLO-aware score): **{md_escape(report.winner)}**"]
    for s in report.summaries:
        if s.is_adaptive:
            conv = s.convergence_step if s.convergence_step is not None else "none"
            label = "Adaptive" if s.arm == "adaptive" else md_escape(s.arm)
            lines.append(f"\n{label}: {s.k_changes} K changes, converged at step {conv} (k=5).")
    adapting = adapting_lines(report)
    if adapting:
        lines += [""] + [f"- {md_escape(line)}" for line in adapting]
    if report.regret or report.class_regret:
        lines += [""] + [f"- {md_escape(line)}" for line in regret_lines(report)]
    lines += ["", f"Knob check: **{report.knob.status}**: {md_escape(report.knob.message)}", ""]
    verdict = verdict_section(report)
    level = "#" * (len(heading) - len(heading.lstrip("#")) + 1)
    if verdict and report.policy is not None:
        verdict = verdict[: len(verdict) - len(policy_lines(report.policy))]
    if verdict:
        lines += [f"{level} Verdict", "", "```text", *verdict[1:], "```", ""]
    if report.policy is not None:
        lines += [f"{level} Policy", "", *policy_markdown(report.policy), ""]
    return "\n".join(lines)


def runs_markdown(sections: Sequence[tuple[str, Report]]) -> str:
    """Several runs as one document: a section per run, titled by its label."""
    parts = [f"# {TITLE}", ""]
    for label, report in sections:
        parts.append(summary_markdown(report, heading=f"## {md_escape(label)}"))
    return "\n".join(parts)
