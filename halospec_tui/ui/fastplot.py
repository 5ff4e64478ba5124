"""Plotext plots drawn straight from plotext's character matrix.

`PlotextPlot.render` has plotext write its matrix out as ANSI text, then has Rich
parse that text back into styles: two passes over every cell, more than half of
the monitor's CPU. Here each run of cells with the same colours becomes one piece
of a `Text`, and each colour combination is parsed once. The result is the same
Text, cell for cell (tests/test_fastplot.py checks it against the slow path).

Plotext's time grows with the points it is given (about 0.1 ms a point for a line
plot): a whole run's series of thousands of steps would cost the monitor a large
share of a core once a second. A braille canvas has only so many pixel columns, so
`decimate` keeps, of the points falling in each column, the first, the lowest, the
highest and the last: the lines drawn through them light the same pixels as the lines
through every point (tests/test_fastplot.py checks the picture cell for cell).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np
from plotext import _utility as ut
from rich.ansi import AnsiDecoder
from rich.segment import Segment
from rich.style import Style
from rich.text import Text
from textual.app import RenderResult
from textual.geometry import Size
from textual.strip import Strip
from textual_plotext import PlotextPlot
from typing_extensions import Self

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
    cols = matrix.cols
    for row in list(matrix.Rows)[::-1]:
        markers = matrix.marker[row]
        fg, st, bg = matrix.fullground[row], matrix.style[row], matrix.background[row]
        runs = []
        start = 0
        for col in range(1, cols + 1):
            if col == cols or fg[col] != fg[start] or st[col] != st[start] or bg[col] != bg[start]:
                runs.append(("".join(markers[start:col]), _style(fg[start], st[start], bg[start])))
                start = col
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


BRAILLE_COLUMNS = 2  # pixel columns per cell of a braille canvas
FRAME_COLUMNS = 2  # plotext's left and right y axes, one cell each
Y_TICKS = 7  # plotext's number of y ticks when none are given


def pixel_columns(xs: Sequence[float], lo: float, hi: float, pixels: int) -> np.ndarray:
    """The canvas pixel column of each x, as plotext places it (`get_matrix_data`):
    floor(round(0.5 + (pixels - 1) (x - lo) / (hi - lo), 8))."""
    x = np.asarray(xs, dtype=float)
    change = 0.5 + (pixels - 1) * (x - lo) / (hi - lo)
    cols = np.floor(np.round(change, 8))
    # numpy rounds by scaling, Python's round exactly: they can part within a hair
    # of a whole number, where the floor decides the column. Those few go Python's way.
    near = np.flatnonzero(np.abs(change - np.rint(change)) < 1e-6)
    for i in near:
        cols[i] = math.floor(round(float(change[i]), 8))
    return cols.astype(np.int64)


def decimate(
    xs: Sequence[float], ys: Sequence[float], columns: np.ndarray
) -> tuple[list[float], list[float]]:
    """Of each run of points in the same pixel column (`columns`, ascending), the
    first, the lowest, the highest and the last, in their order: the lines through
    them cover, in every column, the pixels the lines through all the points cover."""
    n = len(xs)
    if n <= 4:
        return list(xs), list(ys)
    y = np.asarray(ys, dtype=float)
    starts = np.flatnonzero(np.r_[True, columns[1:] != columns[:-1]])
    if len(starts) * 4 >= n:  # too few points per column to gain anything
        return list(xs), list(ys)
    ends = np.r_[starts[1:], n] - 1
    lengths = np.diff(np.r_[starts, n])
    run = np.repeat(np.arange(len(starts)), lengths)
    index = np.arange(n)
    low = np.minimum.reduceat(y, starts)
    high = np.maximum.reduceat(y, starts)
    first_low = np.minimum.reduceat(np.where(y == low[run], index, n), starts)
    first_high = np.minimum.reduceat(np.where(y == high[run], index, n), starts)
    keep = np.unique(np.concatenate([starts, ends, first_low, first_high]))
    return [xs[i] for i in keep], [ys[i] for i in keep]


def canvas_pixels(width: int, ylim: tuple[float, float], yticks: Sequence[float] | None) -> int:
    """Pixel columns of a one-plot braille canvas `width` cells wide: the width less
    the two y axes and the widest y label (plotext's labels for `yticks`, or for its
    own seven ticks across `ylim`)."""
    ticks = list(yticks) if yticks is not None else ut.linspace(*ylim, Y_TICKS)
    label_width = ut.max_length(ut.get_labels(ticks)) if ticks else 0
    return (width - FRAME_COLUMNS - label_width) * BRAILLE_COLUMNS


def data_lim(values: Sequence[float]) -> tuple[float, float]:
    """An axis' limits as plotext takes them from its data (`get_lim`)."""
    lo, hi = ut.get_lim(list(values))
    return float(lo), float(hi)


class FastPlotextPlot(PlotextPlot):
    """A PlotextPlot drawn line by line from a cache of strips, rebuilt on refresh.

    Going through `render()` would make Textual convert a many-span Text to its own
    content on every paint; strips of Rich segments skip that. Subclasses give the
    figure in `figure(width)`, called at each build with the width it is built at, so
    that they can fit their data to the canvas.
    """

    _strips: list[Strip] | None = None
    _built_size: Size | None = None

    def refresh(self, *args: Any, **kwargs: Any) -> Self:
        self._strips = None  # whatever asked for a repaint may have changed the plot
        return super().refresh(*args, **kwargs)

    def figure(self, width: int) -> None:
        """Issue the plot's commands to `self.plt` (cleared before) for `width` cells."""

    def _build(self) -> list[Strip]:
        plot: Any = self._plot  # plotext's figure: its build steps are not in the stubs
        width, height = self.size.width, self.size.height
        self.plt.clear_figure()
        self.figure(width)
        # As PlotextPlot.render: size twice (see textual-plotext issue 5), theme.
        plot.plotsize(width, height)
        plot._set_size(width, height)
        plot.theme(self._get_plotext_theme_name(self.app.theme))
        # As plot.build(), without writing the matrix out as ANSI text.
        plot._set_sizes()
        plot._build_matrix()
        base = self.rich_style
        strips = []
        for runs in _runs(plot.monitor.matrix):
            segments = [Segment(chars, base + style) for chars, style in runs]
            strips.append(Strip(segments).adjust_cell_length(width, base))
        return strips

    def render(self) -> RenderResult:
        """The slow path, kept for comparison: the same picture as one Text."""
        self._build()
        plot: Any = self._plot
        return matrix_text(plot.monitor.matrix)

    def render_line(self, y: int) -> Strip:
        if self._strips is None or self._built_size != self.size:
            self._built_size = self.size
            self._strips = self._build()
        if 0 <= y < len(self._strips):
            return self._strips[y]
        return Strip.blank(self.size.width, self.rich_style)
