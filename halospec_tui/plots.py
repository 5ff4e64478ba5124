"""`report --plot`: the verdict drawn in the terminal with plotext (text, no UI)."""

from __future__ import annotations

from collections.abc import Sequence

import plotext as plt

from halospec_tui.results.report import Report
from halospec_tui.stats import StepSample

PHASE_COLORS = {"load": "red", "recovery": "orange"}


def report_plots(samples: Sequence[StepSample], report: Report, width: int = 100) -> str:
    """Tokens/s per arm with 95% CI whiskers, then latency by step coloured by arm."""
    out = []
    v = report.verdict
    if v is not None:
        arms = [a for a in v.arms if a.tps is not None]
        plt.clf()
        plt.plotsize(width, 20)
        xs = list(range(1, len(arms) + 1))
        vals = [a.tps.value for a in arms if a.tps]
        plt.scatter(xs, vals, marker="dot", color="cyan")
        for x, a in zip(xs, arms, strict=True):
            if a.tps:
                plt.plot([x, x], [a.tps.lo, a.tps.hi], marker="braille", color="white")
        plt.xticks(xs, [a.arm for a in arms])
        plt.title("tokens/s per arm (95% CI)" + (f"; best {v.best}" if v.best else ""))
        plt.theme("clear")
        out.append(plt.build())
    rows = [s for s in samples if not s.settle and s.success]
    if rows:
        plt.clf()
        plt.plotsize(width, 20)
        steps = list(range(1, len(rows) + 1))
        spans: list[tuple[str, int, int]] = []
        for i, s in enumerate(rows, start=1):
            if spans and spans[-1][0] == s.phase:
                spans[-1] = (s.phase, spans[-1][1], i)
            else:
                spans.append((s.phase, i, i))
        top = max(s.latency_ms for s in rows)
        for phase, first, last in spans:
            if phase in PHASE_COLORS:
                plt.plot([first, last], [top, top], color=PHASE_COLORS[phase], marker="hd",
                         label=phase)  # fmt: skip
        for arm in dict.fromkeys(s.arm for s in rows):
            pts = [(i, s.latency_ms) for i, s in zip(steps, rows, strict=True) if s.arm == arm]
            plt.scatter([p[0] for p in pts], [p[1] for p in pts], label=arm, marker="dot")
        plt.title("latency by step (ms), coloured by arm; phase bands on top")
        plt.theme("clear")
        out.append(plt.build())
    return "\n".join(out)
