"""Widgets of the monitor. Each draws from a `RunModel` snapshot when asked."""

from __future__ import annotations

import math

import numpy as np
from rich.cells import cell_len
from rich.text import Text
from textual.app import ComposeResult
from textual.containers import Horizontal, Vertical
from textual.strip import Strip
from textual.widgets import Label

from halospec_tui.controllers.base import ControllerView
from halospec_tui.events import RoundFinished
from halospec_tui.formats import plus_minus, step_details, summary_cells
from halospec_tui.results.export_policy import row_cells, static_line
from halospec_tui.stats import ArmSummary
from halospec_tui.ui.digits import FastDigits
from halospec_tui.ui.fastplot import FastPlotextPlot
from halospec_tui.ui.lines import TextLines
from halospec_tui.ui.model import RunModel
from halospec_tui.ui.table import Column, LightTable

PHASE_STYLE = {"steady": "green", "load": "bold red", "recovery": "yellow"}


def fmt_duration(s: float | None) -> str:
    if s is None:
        return "--:--"
    s = max(0, int(s))
    h, rem = divmod(s, 3600)
    m, sec = divmod(rem, 60)
    return f"{h}:{m:02d}:{sec:02d}" if h else f"{m:02d}:{sec:02d}"


def int_ticks(lo: int, hi: int, most: int = 7) -> list[int]:
    """Integer axis ticks: multiples of the smallest 1/2/5 x 10^n step giving at most `most`."""
    if hi < lo:
        lo, hi = hi, lo
    step = 1
    while True:
        for mult in (1, 2, 5):
            s = step * mult
            first = -(-lo // s) * s  # lowest multiple of s >= lo
            if (hi - first) // s + 1 <= most:
                return list(range(first, hi + 1, s))
        step *= 10


def _ticks(ticks: list[int]) -> list[float]:
    """Integer ticks where plotext's stubs say floats (the values stay ints: "5", not "5.0")."""
    return [t for t in ticks]


def status_text(m: RunModel) -> Text:
    t = Text()
    st = m.started
    if st is None:
        return Text("starting…")
    t.append(f"{st.backend}", "bold")
    t.append(f" · model {st.model} · actuator {st.actuator} · plan {st.plan}\n")
    rnd = m.round
    if rnd is not None:  # interleaved: a block of every arm per round, modes repeat
        order = rnd.order
        pos = order.index(m.arm) + 1 if m.arm in order else 0
        t.append(f"round {rnd.round}/{rnd.rounds} · ")
        c = m.condition
        if c is not None and c.round == rnd.round:  # a run with conditions: which one runs
            t.append(f"{c.condition}", "bold cyan")
            t.append(f" ({c.index}/{c.total}) · ")
            order = c.order
            pos = order.index(m.arm) + 1 if m.arm in order else 0
        t.append(f"{m.arm or '-'} ({pos}/{len(order)}) ")
    else:
        t.append(f"mode {m.arm or '-'} ({m.arm_index + 1}/{m.total_arms}) ")
    if m.warmup is not None:
        what = "settle" if m.settling else "warmup"
        t.append(f"{what} {m.warmup[0]}/{m.warmup[1]} ")
    elif rnd is not None:
        t.append(f"block {m.block_step}/{m.measured_steps} ")
    else:
        t.append(f"step {m.step}/{m.measured_steps} ")
    t.append("· phase ")
    t.append(m.phase.upper(), PHASE_STYLE.get(m.phase, ""))
    left = "at most " if rnd is not None else "~"
    t.append(f" · elapsed {fmt_duration(m.elapsed_s)} · left {left}{fmt_duration(m.remaining_s())}")
    if m.knob is not None and m.knob.status == "no-effect":
        t.append("  K HAS NO EFFECT", "bold reverse red")
    elif m.knob is not None and m.knob.status == "effective":
        t.append("  K verified", "green")
    if m.paused:
        t.append("  PAUSED", "bold reverse yellow")
    if m.finished is not None:
        t.append(f"  RUN {m.finished.reason.upper()}", "bold reverse green")
    return t


def fmt_seconds(s: float) -> str:
    return f"{s:.0f} s" if s < 120 else f"{s / 60:.0f} min"


def verdict_text(m: RunModel) -> Text:
    """Where the interleaved plan's verdict stands: deciding, decisive, or not decisive."""
    rnd, v = m.round, m.verdict
    if rnd is None:
        return Text("")
    if v is None:
        if m.finished is not None:
            return Text(f"run {m.finished.reason} before the first verdict", "bold red")
        n = len(rnd.order)
        return Text(f"{n} arm{'' if n == 1 else 's'} racing, first verdict after round 1", "yellow")
    said = v.statement or ("decisive" if v.decisive else "not decisive")
    if v.condition:  # a run with conditions: this is the running condition's race
        said = f"[{v.condition}] {said}"
    if v.decisive:  # the race's own words, whether it stopped the run or not
        return Text(said, "bold green")
    if v.stop is not None or m.finished is not None:
        return Text(said, "bold red")
    n = len(v.remaining)
    left = "" if v.left_s is None else f", at most {fmt_seconds(v.left_s)} left"
    return Text(f"{n} arm{'' if n == 1 else 's'} racing{left}; {said}", "yellow")


def policy_text(m: RunModel) -> Text:
    """The policy table (a run with conditions), as the summaries give it: per condition
    the pick, its tokens/s, how far decided, the regret of one static K everywhere."""
    p = m.policy
    if p is None:
        return Text("")
    cells = [row_cells(r) for r in p.rows]
    regret = f"regret of {p.static}" if p.static else "regret"
    rows = [("condition", "pick", "tok/s", "decided", regret),
            *((c.condition, c.pick, c.tps, c.decided, c.regret) for c in cells)]  # fmt: skip
    widths = [max(cell_len(r[i]) for r in rows) for i in range(5)]
    t = Text(no_wrap=True, overflow="ellipsis")
    for i, r in enumerate(rows):
        style = "bold" if i == 0 else ""
        t.append("  ".join(f"{x:<{w}}" for x, w in zip(r, widths, strict=True)).rstrip(), style)
        t.append("\n")
    t.append(static_line(p), "cyan")
    return t


BARS = "▁▂▃▄▅▆▇█"


def controller_text(mode: str, view: ControllerView, running: bool) -> Text:
    """An adaptive arm's reasoning in four short lines: which arm, its acceptance, the
    cost of a pass, and expected tokens/s per K as a bar row with the chosen K marked."""
    t = Text(no_wrap=True, overflow="ellipsis")
    t.append(mode, "bold magenta" if running else "magenta")
    t.append(f" {view.note}\n" if view.note else "\n", "dim")
    acc = "-" if view.acceptance is None else f"{view.acceptance:.2f}"
    t.append(f"acc {acc}\n")
    if view.pass_ms is None:
        t.append("pass -\n")
    else:
        draft = "" if view.draft_ms is None else f"+{view.draft_ms:.1f}/K"
        t.append(f"pass {view.pass_ms:.1f}{draft} ms\n")
    table = view.expected_tps
    if table:
        top = max(v for _, v in table)
        low = min(v for _, v in table)
        span = top - low
        t.append(f"{table[0][0]}", "dim")
        for k, v in table:
            level = round((v - low) / span * (len(BARS) - 1)) if span > 0 else len(BARS) - 1
            t.append(BARS[level], "bold magenta" if k == view.k else "cyan")  # the chosen K
        t.append(f"{table[-1][0]}", "dim")
        chosen = dict(table).get(view.k)
        t.append(f" K={view.k}")
        if chosen is not None:
            t.append(f" {chosen:.0f}/s", "dim")
    else:
        t.append(f"K={view.k}")
    return t


def _series(xs: np.ndarray, ys: list[float]) -> tuple[np.ndarray, np.ndarray]:
    """The points of a series with a value (nan: none), in order."""
    y = np.asarray(ys, dtype=float)
    has = ~np.isnan(y)
    return xs[has], y[has]


class RunPlot(FastPlotextPlot):
    """A plot of the run model, drawn from it at the next build."""

    _model: RunModel | None = None

    def draw(self, m: RunModel) -> None:
        self._model = m
        self.refresh()


class LatencyPlot(RunPlot):
    """Latency per step with the EMA, the threshold band, and phase/mode markers."""

    def figure(self) -> None:
        plt, m = self.plt, self._model
        plt.title("latency per step (ms)")
        if m is None or not m.steps:
            return
        xs = m.steps
        steps = np.asarray(xs)
        lat, ema, low, high = (_series(steps, ys) for ys in (m.latency, m.ema, m.low, m.high))
        # The series are named in the title, not in a legend: a legend would sit in
        # the top-left corner, over the first mode's name.
        series = [
            (points, label, color)
            for points, label, color in (
                (lat, "latency", None),
                (ema, "EMA (cyan)", "cyan"),
                (low, "low (green)", "green"),
                (high, "high (red)", "red"),
            )
            if len(points[0])
        ]
        # The series first: a colour plotext does not know ("yellow") takes the next one
        # the series have not taken, as when they were plotted with plt.plot.
        for (sx, sy), _, shade in series:
            self.line(sx, sy, shade)
        # modes: a line where each begins, its name centred along the top of its
        # section (clear of the legend in the top-left corner unless very narrow)
        bottom = float(lat[1].min()) if len(lat[1]) else 0.0
        both = np.concatenate([lat[1], high[1]])
        top = float(both.max()) if len(both) else 0.0
        marks = [(x, mode) for x, mode in m.arm_marks if x <= xs[-1]]
        for i, (x, mode) in enumerate(marks):
            end = marks[i + 1][0] - 1 if i + 1 < len(marks) else xs[-1]
            if x > xs[0]:
                plt.vline(x - 0.5, "gray")
            plt.text(mode, x=(max(x, xs[0]) + end) / 2, y=top, color="gray", alignment="center")
        # phase changes: red where load starts, yellow where recovery starts, labelled
        # labels along the bottom, clear of the legend in the top-left corner
        for x, phase in m.phase_marks:
            if phase != "steady" and x <= xs[-1]:
                color = "red" if phase == "load" else "yellow"
                plt.vline(x, color)
                plt.text(phase, x=x, y=bottom, color=color)
        plt.title(" · ".join(["latency per step (ms)", *(label for _, label, _ in series[1:])]))
        plt.xticks(_ticks(int_ticks(xs[0], xs[-1])))
        plt.xlabel("global step")


class KPlot(RunPlot):
    MIN_ROWS = 5  # fewer rows would show axes without a plot: the pane is left blank

    def _build(self) -> list[Strip]:
        width, height = self.size.width, self.size.height
        if height < self.MIN_ROWS:
            return [Strip.blank(width, self.rich_style) for _ in range(height)]
        return super()._build()

    def figure(self) -> None:
        plt, m = self.plt, self._model
        plt.title("draft length K")
        if m is not None and m.steps:
            top = max(max(m.ks), 8)
            self.line(m.steps, m.ks, "magenta")
            plt.ylim(0, top + 1)
            plt.yticks(_ticks(int_ticks(0, top, most=5)))
            plt.xticks(_ticks(int_ticks(m.steps[0], m.steps[-1], most=4)))


class KPanel(Vertical):
    """The current K in large type, with the server's drafting figures."""

    def compose(self) -> ComposeResult:
        with Horizontal(id="k-row"):
            with Vertical(id="k-left"):
                yield Label("K", id="k-label")
                yield FastDigits("-", id="k-digits")
            yield TextLines("", id="controller")
        yield TextLines("", id="k-detail")

    _controller: tuple[str, ControllerView, bool] | None = None

    def draw(self, m: RunModel) -> None:
        """Updates only the parts whose content changed (the text panes skip an
        unchanged text themselves; the controller's text is not even built)."""
        digits = self.query_one("#k-digits", FastDigits)
        k = "-" if m.k is None else str(m.k)
        if digits.value != k:  # an update repaints (or lays out) even when K is the same
            digits.update(k)
        r = m.last
        lines = []
        if r is not None:
            d = step_details(r)
            if d.drafted is not None:
                # short enough for the narrowest pane (26 cells): each line is cut, not wrapped
                lines.append(f"accepted {d.accepted} of {d.drafted} ({d.acceptance or '-'})")
            if d.server_tps is not None:
                lines.append(f"server {d.server_tps} tok/s")
            if d.ema is not None and r.arm not in m.views:  # the threshold rule's alone
                lines.append(f"EMA {d.ema} ms, band {d.low}-{d.high}")
            if d.reload_ms is not None:
                lines.append(f"reload {d.reload_ms} ms (not in latency)")
        self.query_one("#k-detail", TextLines).update("\n".join(lines))
        view = m.view
        if view is not None and m.view_arm is not None:
            shown = (m.view_arm, view, m.view_arm == m.arm)
            if shown != self._controller:
                self._controller = shown
                self.query_one("#controller", TextLines).update(controller_text(*shown))


def cpu_text(
    per_core: list[float],
    load_left_s: float | None,
    load_reason: str,
    workers: int,
    load_gbps: float | None = None,
    machine_gbps: float | None = None,
) -> Text:
    """One bar per core, then the load's state on one line: what the memory burners
    move (`load_gbps`) and the machine's memory traffic from its memory controllers
    (`machine_gbps`), each where known, so the pane keeps its height."""
    t = Text()
    for i, pct in enumerate(per_core):
        n = round(pct / 10)
        style = "red" if pct > 80 else "yellow" if pct > 50 else "green"
        t.append(f"cpu{i} ")
        t.append("█" * n, style)
        t.append("·" * (10 - n), "dim")
        t.append(f" {pct:5.1f}%\n")
    if load_left_s is not None:
        t.append(f"LOAD ON: {workers} burner(s), {load_left_s:.0f} s left", "bold red")
        if load_gbps is not None:
            t.append(f", {load_gbps:.1f} GB/s", "bold red")
        t.append(f" ({load_reason})" if load_reason else "")
    else:
        t.append("load off", "dim")
    if machine_gbps is not None:
        t.append(f"; memory {machine_gbps:.1f} GB/s", "cyan")
    return t


RESULT_COLUMNS = (  # label, key, width (fixed, see ResultsTable)
    ("mode", "mode", 0), ("steps", "steps", 5), ("ok%", "ok", 4), ("avg ms", "avg", 7),
    ("p50", "p50", 5), ("p95", "p95", 5), ("sd", "sd", 6), ("tok/s", "tps", 6),
    ("score", "score", 8), ("acc%", "acc", 4), ("K chg", "kchg", 5),
)  # fmt: skip
PENDING = "·"


# Interleaved plans: the verdict's mark and tokens/s with its CI half-width come right
# after the mode, where a narrow terminal still shows them; tok/s moves there.
ROUND_COLUMNS = (
    RESULT_COLUMNS[:1] + (("verdict", "verdict", 14), ("tok/s ±95%", "tps", 12))
    + tuple(c for c in RESULT_COLUMNS[1:] if c[1] != "tps")
)  # fmt: skip
STATUS_STYLE = {"best": "bold green", "within": "green", "racing": "yellow", "dropped": "dim",
                "screened": "dim"}  # fmt: skip


class ResultsTable(LightTable):
    """One row per mode of the plan, from the start, filled in place as modes finish;
    the best score highlighted. In rounds, each arm's tokens/s with its CI half-width
    and its standing (best, within, racing, dropped, screened out) from the last round.

    Every row exists from the start and every column has a fixed width, so the
    table's size never changes during the run: a change of size would lay out the
    whole screen again. (Once only, when the first round starts, the columns are
    laid anew for the verdict.) A cell whose text and style are unchanged costs
    nothing; a changed one repaints its row's line only.
    """

    _rounds = False

    def draw(self, m: RunModel) -> None:
        if m.started is None:
            return
        if m.interleaved and not self._rounds:
            self._rounds = True
            self.set_columns(())
        columns = ROUND_COLUMNS if self._rounds else RESULT_COLUMNS
        if not self.columns:
            names = [mode.name for mode in m.started.arms]
            self.set_columns(
                [Column(label, key, width or max(map(cell_len, names + [label])))
                 for label, key, width in columns]
            )  # fmt: skip
            pending = {key: (PENDING, "dim") for _, key, _ in columns[1:]}
            for name in names:
                self.set_row(name, {"mode": (name, "dim"), **pending})
        best = m.best_mode
        v = m.verdict
        status = dict(v.status) if v is not None else {}
        tps = {arm: (value, hw) for arm, value, hw in v.half_width} if v is not None else {}
        for s in m.summaries.values():
            mark = round_status(s.arm, status, v)
            style = "bold green" if s.arm == best else "dim" if mark == "dropped" else ""
            row = table_cells(s)
            if self._rounds:
                row["verdict"] = verdict_cell(s.arm, mark, v)
                if s.arm in tps:
                    value, hw = tps[s.arm]
                    row["tps"] = plus_minus(value, hw)  # as the summary writes it
            self.set_row(
                s.arm,
                {key: (row[key], STATUS_STYLE.get(mark, style) if key == "verdict" else style)
                 for _, key, _ in columns},
            )  # fmt: skip


def round_status(arm: str, status: dict[str, str], v: RoundFinished | None) -> str:
    """The race's word for an arm: best, within, racing, dropped, screened out, or "·"."""
    if v is not None and any(a == arm for a, _ in v.dropped):
        return "dropped"
    word = status.get(arm) or PENDING
    return "screened" if word == "screened out" else word


def verdict_cell(arm: str, mark: str, v: RoundFinished | None) -> str:
    """The standing with what it rests on: the bound certified so far for an arm still
    racing or within ("racing ≤6.2%": certified at most 6.2% slower than the fastest),
    the round after which a dropped arm left."""
    if v is None:
        return mark
    if mark in ("racing", "within"):
        eps = dict(v.epsilon).get(arm)
        if eps is not None and math.isfinite(eps):
            return f"{mark} ≤{eps * 100:.1f}%" if eps < 1.0 else f"{mark} >100%"
    if mark == "dropped":
        after = dict(v.dropped).get(arm)
        if after is not None:
            return f"dropped r{after}"
    return mark


def table_cells(s: ArmSummary) -> dict[str, str]:
    """The results table's row: the summaries' own cells, whole percentages."""
    c = summary_cells(s, pct_decimals=0)
    return {
        "mode": c.arm, "steps": c.steps, "ok": c.success, "avg": c.avg, "p50": c.median,
        "p95": c.p95, "sd": c.stddev, "tps": c.throughput, "score": c.score,
        "acc": c.acceptance, "kchg": c.k_changes,
    }  # fmt: skip


__all__ = [
    "LatencyPlot", "KPlot", "KPanel", "ResultsTable", "status_text", "cpu_text", "verdict_text",
    "controller_text", "policy_text",
]  # fmt: skip
