"""The cached sparkline paints exactly what Textual's Sparkline paints."""

import asyncio

import pytest
from rich.color import Color
from rich.console import Console
from rich.segment import Segment
from textual.app import App
from textual.geometry import Region
from textual.renderables.sparkline import Sparkline as SparklineRenderable
from textual.widgets import Sparkline

from halospec_tui.ui.spark import FastSparkline, spark_rows

LOW, HIGH = Color.from_rgb(10, 40, 90), Color.from_rgb(200, 120, 30)
DATA = [
    [],
    [5.0],
    [3.0, 3.0, 3.0],
    [1.0, 9.0],
    [10, 2, 30, 60, 45, 20, 7, 8, 9, 10, 50, 13, 10, 6, 5, 4, 3, 7, 20],
    [float(i * i % 17) for i in range(60)],
]


def cells_of_rows(rows):
    return [[(ch, c) for text, c in runs for ch in text] for runs in rows]


def textual_cells(data, width, height):
    """Textual's renderable, cell by cell: (character, colour or None)."""
    spark = SparklineRenderable(data, width=width, height=height, min_color=LOW, max_color=HIGH)
    console = Console(width=width)
    lines = Segment.split_lines(spark.__rich_console__(console, console.options))
    return [
        [(ch, seg.style.color if seg.style else None) for seg in line for ch in seg.text]
        for line in lines
    ]


@pytest.mark.parametrize("data", DATA, ids=lambda d: f"n{len(d)}")
@pytest.mark.parametrize(("width", "height"), [(1, 1), (7, 1), (19, 2), (40, 3), (100, 2)])
def test_rows_equal_textual_sparkline_cell_for_cell(data, width, height):
    assert cells_of_rows(spark_rows(data, width, height, LOW, HIGH)) == textual_cells(
        data, width, height
    )


def test_rows_join_runs_of_one_colour():
    rows = spark_rows([1.0, 1.0, 2.0, 2.0], 4, 1, LOW, HIGH)
    assert rows == [[("▁▁", LOW), ("██", HIGH)]]
    assert spark_rows([], 3, 2, LOW, HIGH) == [[], [("▁▁▁", LOW)]]


def test_widget_paints_as_textual_sparkline_and_follows_new_data():
    class Two(App[None]):
        def compose(self):
            yield Sparkline([], id="slow")
            yield FastSparkline([], id="fast")

        CSS = "Sparkline { height: 2; width: 50; }"

    def painted(w):
        """Each cell as the screen gets it: (character, style); a blank cell shows only
        its background (its foreground colour cannot be seen)."""
        lines = w.render_lines(Region(0, 0, w.size.width, w.size.height))
        return [
            [(ch, seg.style.bgcolor if ch == " " else seg.style) for seg in line for ch in seg.text]
            for line in lines
        ]

    async def go() -> None:
        app = Two()
        async with app.run_test(size=(60, 6)) as pilot:
            slow, fast = app.query_one("#slow", Sparkline), app.query_one("#fast", FastSparkline)
            for data in ([], [4.0, 1.0, 7.5, 3.0] * 20, [2.0, 9.0, 1.0]):
                slow.data = data
                fast.data = data
                await pilot.pause()
                shown = painted(fast)
                assert shown == painted(slow)
                assert [len(line) for line in shown] == [50, 50]
                assert "".join(ch for ch, _ in shown[1]).strip() != ""

    asyncio.run(go())
