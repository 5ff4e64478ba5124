"""A sparkline drawn from strips built once per change of data or size.

Textual's `Sparkline` renders through a Rich renderable that yields one segment per
bar, each with its own blended colour, which Textual then crops and styles again
on every paint: 1-2.5 ms a time in the monitor, four times a second. `spark_rows`
computes the same bars and colours (tests/test_spark.py checks it against Textual's
renderable cell for cell), runs of equal style are joined, and the strips are kept
until the data or the size changes.
"""

from __future__ import annotations

from collections.abc import Sequence

from rich.color import Color
from rich.style import Style
from textual.strip import Strip
from textual.widgets import Sparkline

from halospec_tui.ui.strips import KeptStrips, strips_on

BARS = "▁▂▃▄▅▆▇█"


def blend(low: Color, high: Color, ratio: float) -> Color:
    """The colour `ratio` of the way from `low` to `high` in RGB (`high` if either has
    no RGB), as Textual's sparkline blends."""
    if low.triplet is None or high.triplet is None:
        return high
    (r1, g1, b1), (r2, g2, b2) = low.triplet, high.triplet
    # Color.from_rgb truncates each channel to an int; the colours of one gradient are
    # few, so each is made once (making one costs more than the rest of a bar).
    rgb = (int(r1 + (r2 - r1) * ratio), int(g1 + (g2 - g1) * ratio), int(b1 + (b2 - b1) * ratio))
    found = _BLENDS.get(rgb)
    if found is None:
        if len(_BLENDS) > 4096:
            _BLENDS.clear()
        found = _BLENDS[rgb] = Color.from_rgb(*rgb)
    return found


_BLENDS: dict[tuple[int, int, int], Color] = {}


def _buckets(data: Sequence[float], width: int) -> list[Sequence[float]]:
    """`data` cut into `width` consecutive parts (empty parts left out), as Textual does
    with `Fraction(len(data), width)`: part i starts at floor(i n / width)."""
    n = len(data)
    parts = (data[i * n // width : (i + 1) * n // width] for i in range(width))
    return [p for p in parts if p]


def spark_rows(
    data: Sequence[float], width: int, height: int, low: Color, high: Color
) -> list[list[tuple[str, Color | None]]]:
    """The sparkline's rows, top first, as runs of (bars, colour); None: no colour
    (blank). Each bar is the maximum of its part of `data`, coloured between `low`
    and `high` by its height: the picture of Textual's `Sparkline`."""
    if width <= 0 or height <= 0:
        return [[] for _ in range(max(height, 0))]
    if not data:
        return [[] for _ in range(height - 1)] + [[("▁" * width, low)]]
    if len(data) == 1:
        return [[("█" * width, high)] for _ in range(height)]
    levels = len(BARS)
    top_level = levels * height - 1
    lowest, highest = min(data), max(data)
    extent = highest - lowest or 1
    buckets = _buckets(list(data), width)
    step = len(buckets) / width
    bars = []  # (level, colour) per column
    index = 0.0
    for _ in range(width):
        ratio = (max(buckets[int(index)]) - lowest) / extent
        bars.append((int(ratio * top_level), blend(low, high, ratio)))
        index += step
    rows: list[list[tuple[str, Color | None]]] = []
    for line in reversed(range(height)):
        floor, ceiling = line * levels, (line + 1) * levels
        runs: list[tuple[str, Color | None]] = []
        for level, color in bars:
            if level < floor:
                cell, shade = " ", None
            elif level >= ceiling:
                cell, shade = "█", color
            else:
                cell, shade = BARS[level % levels], color
            if runs and runs[-1][1] == shade:
                runs[-1] = (runs[-1][0] + cell, shade)
            else:
                runs.append((cell, shade))
        rows.append(runs)
    return rows


class FastSparkline(KeptStrips, Sparkline):
    """Textual's `Sparkline` (same data, colours and component classes), painted from
    cached strips. The summary of each part is always its maximum."""

    def _build(self) -> list[Strip]:
        width, height = self.size.width, self.size.height
        base = self.rich_style
        _, background = self.background_colors
        low = background + self.get_component_styles("sparkline--min-color").color
        high = background + self.get_component_styles("sparkline--max-color").color
        rows = spark_rows(self.data or (), width, height, low.rich_color, high.rich_color)
        return strips_on(rows, width, base, lambda c: Style(color=c))
