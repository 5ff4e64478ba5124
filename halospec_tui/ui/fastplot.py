"""Plotext plots drawn straight from plotext's character matrix.

`PlotextPlot.render` has plotext write its matrix out as ANSI text, then has Rich
parse that text back into styles: two passes over every cell, more than half of
the monitor's CPU. Here each run of cells with the same colours becomes one piece
of a `Text`, and each colour combination is parsed once. The result is the same
Text, cell for cell (tests/test_fastplot.py checks it against the slow path).
"""

from __future__ import annotations

from typing import Any

from plotext import _utility as plotext_utility
from rich.ansi import AnsiDecoder
from rich.segment import Segment
from rich.style import Style
from rich.text import Text
from textual.app import RenderResult
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
        ansi = plotext_utility.colors_to_ansi(fg, style, bg)
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


class FastPlotextPlot(PlotextPlot):
    """A PlotextPlot drawn line by line from a cache of strips, rebuilt on refresh.

    Going through `render()` would make Textual convert a many-span Text to its own
    content on every paint; strips of Rich segments skip that.
    """

    _strips: list[Strip] | None = None

    def refresh(self, *args: Any, **kwargs: Any) -> Self:
        self._strips = None  # whatever asked for a repaint may have changed the plot
        return super().refresh(*args, **kwargs)

    def _build(self) -> list[Strip]:
        plot: Any = self._plot  # plotext's figure: its build steps are not in the stubs
        width, height = self.size.width, self.size.height
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
        if self._strips is None or len(self._strips) != self.size.height:
            self._strips = self._build()
        if 0 <= y < len(self._strips):
            return self._strips[y]
        return Strip.blank(self.size.width, self.rich_style)
