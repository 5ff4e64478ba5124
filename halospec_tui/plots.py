"""`report --plot`: the verdict drawn in the terminal with plotext (text, no UI).

Only finite numbers reach plotext: an arm whose CI is unknown (one round, one step)
is drawn as a point without a bar, and named under the plot.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import plotext as plt

from halospec_tui.race_rows import screenable
from halospec_tui.results.report import Report
from halospec_tui.stats import StepSample
from halospec_tui.verdict import ArmLine, Verdict

PHASE_COLORS = {"load": "red", "recovery": "orange"}


def report_plots(samples: Sequence[StepSample], report: Report, width: int = 100) -> str:
    """Tokens/s per arm with 95% CI whiskers, then latency by step coloured by arm."""
    out = []
    if report.verdict is not None:
        out.append(tps_plot(report.verdict, width))
        if report.verdict.screen is not None and report.verdict.screen.predicted:
            out.append(model_plot(report.verdict, width))
    rows = [s for s in samples if not s.settle and s.success]
    if rows:
        out.append(latency_plot(rows, width))
    return "\n".join(out)


def tps_plot(v: Verdict, width: int) -> str:
    """A point per arm with a tokens/s figure, a bar for its CI where it has one."""
    arms = [a for a in v.lines if a.tps is not None and math.isfinite(a.tps.value)]
    plt.clf()
    plt.plotsize(width, 20)
    xs = list(range(1, len(arms) + 1))
    plt.scatter(xs, [_tps(a) for a in arms], marker="dot", color="cyan")
    unknown = []
    for x, a in zip(xs, arms, strict=True):
        lo, hi = (a.tps.lo, a.tps.hi) if a.tps else (math.nan, math.nan)
        if math.isfinite(lo) and math.isfinite(hi):
            plt.plot([x, x], [lo, hi], marker="braille", color="white")
        else:
            unknown.append(a.arm)
    plt.xticks(xs, [a.arm for a in arms])
    plt.title("tokens/s per arm (95% CI)" + (f"; best {v.best}" if v.best else ""))
    plt.theme("clear")
    text: str = plt.build()
    if unknown:
        text += f"\nno CI bar for {', '.join(unknown)}: not enough rounds"
    return text


def model_plot(v: Verdict, width: int) -> str:
    """The screen's fitted model, tokens/s by K, with the K measured as points."""
    assert v.screen is not None
    ks = [k for k, _ in v.screen.predicted]
    plt.clf()
    plt.plotsize(width, 16)
    plt.plot(ks, [p for _, p in v.screen.predicted], marker="braille", color="white",
             label="model")  # fmt: skip
    seen = [(a.k, a.tps.value) for a in v.lines
            if a.k is not None and a.tps is not None and screenable(a.arm)]  # fmt: skip
    if seen:
        plt.scatter([k for k, _ in seen], [t for _, t in seen], marker="dot", color="cyan",
                    label="measured")  # fmt: skip
    plt.title("tokens/s by K: the screen's model and what was measured")
    plt.theme("clear")
    text: str = plt.build()
    return text


def _tps(a: ArmLine) -> float:
    return a.tps.value if a.tps is not None else math.nan


def latency_plot(rows: Sequence[StepSample], width: int) -> str:
    """Latency by measured step, one colour per arm; load and recovery as bands on top."""
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
    text: str = plt.build()
    return text
