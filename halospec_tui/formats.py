"""How figures read, in one place: per-mode summary cells and per-step details.

The text and Markdown summaries, the monitor's table, its K panel and the headless
lines all format from here, so the same figure reads the same everywhere. Pure
functions of frozen records; no Textual.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from halospec_tui.events import StepRecord
from halospec_tui.stats import ArmSummary

DASH = "-"  # a figure the run does not have


def f1(v: float | None, unit: str = "") -> str:
    """One decimal, with an optional unit ("12.3 ms"); a dash when there is no figure."""
    return DASH if v is None else f"{v:.1f}{unit}"


def plus_minus(value: float, half_width: float, digits: int = 1) -> str:
    """A figure and its CI half-width, "412.3 ±8.1"; "±?" while the spread cannot be
    measured yet (one round: an infinite half-width)."""
    if not math.isfinite(half_width):
        return f"{value:.{digits}f} ±?"
    return f"{value:.{digits}f} ±{half_width:.{digits}f}"


def whole(v: int | None, unit: str = "") -> str:
    return DASH if v is None else f"{v}{unit}"


def percent(fraction: float | None, decimals: int = 1) -> str:
    """0.735 -> "73.5" (no sign: the column or the caller says it is a percentage)."""
    return DASH if fraction is None else f"{fraction * 100:.{decimals}f}"


@dataclass(frozen=True)
class SummaryCells:
    """Every per-mode figure as text. `units`: "123 ms", "45.0 tok/s" (the classic table)."""

    arm: str
    steps: str
    success: str  # percent of steps that succeeded
    failures: str
    avg: str
    median: str
    p95: str
    min: str
    max: str
    stddev: str
    throughput: str
    score: str
    acceptance: str  # percent of drafted tokens accepted
    k_changes: str  # adaptive arms only, else ""
    drafted: str
    accepted: str
    server_tps: str
    reloads: str
    reload_ms: str


def summary_cells(s: ArmSummary, *, units: bool = False, pct_decimals: int = 1) -> SummaryCells:
    ms = " ms" if units else ""
    return SummaryCells(
        arm=s.arm,
        steps=str(s.steps),
        success=percent(s.success_rate, pct_decimals),
        failures=str(s.failures),
        avg=f1(s.avg, ms),
        median=whole(s.median, ms),
        p95=whole(s.p95, ms),
        min=whole(s.min, ms),
        max=whole(s.max, ms),
        stddev=f1(s.stddev, ms),
        throughput=f1(s.throughput, " tok/s" if units else ""),
        score=f1(s.score),
        acceptance=percent(s.acceptance, pct_decimals),
        k_changes=str(s.k_changes) if s.is_adaptive else "",
        drafted=whole(s.drafted),
        accepted=whole(s.accepted),
        server_tps=f1(s.server_tps),
        reloads=str(s.reloads),
        reload_ms=str(s.reload_ms),
    )


@dataclass(frozen=True)
class StepDetails:
    """What the server said about one step, as text; None where it said nothing."""

    drafted: str | None  # "12"
    accepted: str | None  # "9"
    acceptance: str | None  # "75%"
    server_tps: str | None  # "812" tokens/s over the server's own decode time
    ema: str | None  # "431" ms (adaptive arms)
    low: str | None  # "380" ms: the threshold band of adaptive arms
    high: str | None  # "520" ms
    reload_ms: str | None  # "214" ms spent reloading for this step's K (not in latency)


def server_tps(predicted_n: int | None, predicted_ms: float | None) -> float | None:
    """Tokens per second of the server's decode; None unless it gave both figures."""
    if predicted_n is None or not predicted_ms:
        return None
    return predicted_n / (predicted_ms / 1000.0)


def step_details(r: StepRecord) -> StepDetails:
    tps = server_tps(r.predicted_n, r.predicted_ms)
    drafting = r.drafted is not None
    return StepDetails(
        drafted=str(r.drafted) if drafting else None,
        accepted=str(r.accepted) if drafting else None,
        acceptance=f"{r.acceptance * 100:.0f}%" if r.acceptance is not None else None,
        server_tps=f"{tps:.0f}" if tps is not None else None,
        ema=f"{r.ema_ms:.0f}" if r.ema_ms is not None else None,
        low=str(r.low_ms) if r.ema_ms is not None else None,
        high=str(r.high_ms) if r.ema_ms is not None else None,
        reload_ms=str(r.reload_ms) if r.reload_ms else None,
    )
