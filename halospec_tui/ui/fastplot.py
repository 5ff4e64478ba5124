"""Plotext plots drawn straight from plotext's character matrix.

`PlotextPlot.render` has plotext write its matrix out as ANSI text, then has Rich
parse that text back into styles: two passes over every cell, more than half of
the monitor's CPU. Here each run of cells with the same colours becomes one piece
of a `Text`, and each colour combination is parsed once. The result is the same
Text, cell for cell (tests/test_fastplot.py checks it against the slow path).

Plotext's time grows with the pixels its line series light, one Python call per
pixel: 5-10 ms a plot for a short run, hundreds of milliseconds for a long noisy
one, once a second. Here plotext draws only the frame and the series are drawn into
its canvas by `braille` (numpy), pixel for pixel the same (tests/test_fastplot.py
checks whole pictures cell for cell against plotext drawing everything).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
from numpy.typing import ArrayLike
from plotext import _utility as ut
from rich.ansi import AnsiDecoder
from rich.style import Style
from rich.text import Text
from textual.app import RenderResult
from textual.strip import Strip
from textual_plotext import PlotextPlot

from halospec_tui.ui import braille
from halospec_tui.ui.strips import KeptStrips, strips_on

_STYLES: dict[tuple[Any, Any, Any], Style] = {}
_DECODER = AnsiDecoder()


def _style(fg: Any, style: Any, bg: Any) -> Style:
    # plotext's colours are names, numbers or RGB tuples: hashable as they are
    key: tuple[Any, Any, Any] = (fg, style, bg)
    try:
        found = _STYLES.get(key)
    except TypeError:  # a list somewhere: key by its text
        key = (repr(fg), repr(style), repr(bg))
        found = _STYLES.get(key)
    if found is None:
        ansi = ut.colors_to_ansi(fg, style, bg)
        sample = _DECODER.decode_line(ansi + "x")
        found = sample.get_style_at_offset(_console(), 0) if sample.spans else Style.null()
        _STYLES[key] = found
    return found


def _console() -> Any:
    from rich.console import Console

    global _CONSOLE
    if _CONSOLE is None:
        _CONSOLE = Console()
    return _CONSOLE


_CONSOLE: Any = None


def _runs(matrix: Any) -> list[list[tuple[str, Style]]]:
    """Each row of a plotext matrix, top row first, as runs of (characters, style)."""
    out = []
    for row in list(matrix.Rows)[::-1]:
        markers = matrix.marker[row]
        keys = list(zip(matrix.fullground[row], matrix.style[row], matrix.background[row], strict=True))
        ends = [i for i in range(1, len(keys)) if keys[i] != keys[i - 1]] + [len(keys)] * bool(keys)
        runs, start = [], 0
        for end in ends:
            runs.append(("".join(markers[start:end]), _style(*keys[start])))
            start = end
        out.append(runs)
    return out


def matrix_text(matrix: Any) -> Text:
    """A plotext matrix as Rich text: one line per row, top row first."""
    text = Text()
    rows = _runs(matrix)
    for i, runs in enumerate(rows):
        for chars, style in runs:
            text.append(chars, style)
        if i < len(rows) - 1:
            text.append("\n")
    return text


@dataclass(frozen=True)
class Line:
    """A series drawn as braille lines: its points, and plotext's colour and style."""

    xs: np.ndarray
    ys: np.ndarray
    color: Any
    style: Any


def _build_with_lines(plot: Any, lines: list[Line]) -> None:
    """Plotext builds the frame; the lines go into its canvas before its first text.

    Plotext takes an axis' limits, and whether the axis is used at all, from its
    series and texts; it has no series here, so the limits it would take are set
    explicitly (unless the plot set them) and an empty text keeps the axes in use.
    """
    # Kept whole (63 lines): the closures share plotext's canvas and the axis limits.
    monitor = plot.monitor
    lower = monitor.default.xside[0]
    if None in monitor.xlim[0]:  # get_lim needs only each series' least and most
        xs = [float(f(ln.xs)) for ln in lines for f in (np.min, np.max)]
        tx = [x for x, side in zip(monitor.tx, monitor.txside, strict=True) if side == lower]
        monitor.set_xlim(*ut.get_lim(xs + monitor.vcoord[0] + tx))
    if None in monitor.ylim[0]:
        ys = [float(f(ln.ys)) for ln in lines for f in (np.min, np.max)]
        left = monitor.default.yside[0]
        ty = [y for y, side in zip(monitor.ty, monitor.tyside, strict=True) if side == left]
        monitor.set_ylim(*ut.get_lim(ys + monitor.hcoord[0] + ty))
    (x0, x1), (y0, y1) = monitor.xlim[0], monitor.ylim[0]
    monitor.draw_text("", x0, y0, color="default")
    matrix = monitor.matrix
    drawn = False

    def draw_lines() -> None:
        nonlocal drawn
        drawn = True
        cols, rows = len(matrix.Cols_canvas), len(matrix.Rows_canvas)
        left, bottom = matrix.Cols_canvas.start, matrix.Rows_canvas.start
        width, height = cols * braille.DOTS_X, rows * braille.DOTS_Y
        if width <= 0 or height <= 0:
            return
        for ln in lines:
            px = braille.matrix_data(ln.xs, x0, x1, width)
            py = braille.matrix_data(ln.ys, y0, y1, height)
            px, py = braille.line_pixels(*braille.decimate(px, py))
            # as matrix.insert_element, whose checks the cells pass (inside the canvas)
            marker, colour, style = matrix.marker, matrix.fullground, matrix.style
            for col, row, dots in braille.braille_cells(px, py, cols, rows):
                x, y = col + left, row + bottom
                marker[y][x] = ut.get_hd_marker(dots)
                colour[y][x] = ln.color
                if ln.style is not None:
                    style[y][x] = ln.style

    def before(name: str) -> Any:
        plotext_draws = getattr(matrix, name)

        def first_draw_lines(*args: Any, **kwargs: Any) -> Any:
            if not drawn:
                draw_lines()
            return plotext_draws(*args, **kwargs)

        return first_draw_lines

    # The texts are plotext's last step: each goes through one of these two.
    matrix.add_multiple_horizontal_strings = before("add_multiple_horizontal_strings")
    matrix.add_multiple_vertical_strings = before("add_multiple_vertical_strings")
    try:
        plot._build_matrix()
    finally:
        del matrix.add_multiple_horizontal_strings, matrix.add_multiple_vertical_strings
    if not drawn:
        draw_lines()


class FastPlotextPlot(KeptStrips, PlotextPlot):
    """A PlotextPlot drawn line by line from a cache of strips, rebuilt on refresh.

    Going through `render()` would make Textual convert a many-span Text to its own
    content on every paint; strips of Rich segments skip that. Subclasses give the
    figure in `figure()`, called at each build, and their series with `line()`
    rather than `plt.plot()`: plotext draws the frame (axes, ticks, labels, vertical
    lines, texts) and the series are drawn into its canvas from `braille`, at the
    point where plotext would draw them (after the vertical lines, before the texts),
    within the limits plotext would take from them.
    """

    # True: series go to plotext itself (plt.plot), the slow reference the fast path
    # is checked against (tests/test_fastplot.py) and timed against (plot_cost.py).
    plotext_lines = False
    _lines: list[Line]

    def figure(self) -> None:
        """Issue the plot's commands to `self.plt` (cleared before)."""

    def line(self, xs: ArrayLike, ys: ArrayLike, color: Any = None) -> None:
        """A braille line series, as `plt.plot(xs, ys, marker="braille", color=color)`."""
        if self.plotext_lines:
            kw: dict[str, Any] = {"color": color} if color else {}
            self.plt.plot(np.asarray(xs).tolist(), np.asarray(ys).tolist(), marker="braille", **kw)
            return
        plot: Any = self._plot  # plotext's figure: its monitor is not in the stubs
        monitor = plot.monitor
        color = monitor.check_color(color)  # as plotext's add_colors: now, not at build
        if color not in monitor.past_colors:
            monitor.past_colors = [*monitor.past_colors, color]
        x, y = np.asarray(xs, dtype=float), np.asarray(ys, dtype=float)
        self._lines.append(Line(x, y, color, monitor.check_style(None)))

    def _build(self) -> list[Strip]:
        width, height = self.size.width, self.size.height
        self.plt.clear_figure()
        plot: Any = self._plot  # plotext's figure: its build steps are not in the stubs
        self._lines = []
        self.figure()
        # As PlotextPlot.render: size twice (see textual-plotext issue 5), theme.
        plot.plotsize(width, height)
        plot._set_size(width, height)
        plot.theme(self._get_plotext_theme_name(self.app.theme))
        # As plot.build(), without writing the matrix out as ANSI text.
        plot._set_sizes()
        lines = [ln for ln in self._lines if len(ln.xs)]
        if lines:
            _build_with_lines(plot, lines)
        else:
            plot._build_matrix()
        return strips_on(_runs(plot.monitor.matrix), width, self.rich_style, lambda s: s)

    def render(self) -> RenderResult:
        """The slow path, kept for comparison: the same picture as one Text."""
        self._build()
        plot: Any = self._plot
        return matrix_text(plot.monitor.matrix)
