"""The plots drawn from plotext's matrix look exactly as plotext's own ANSI output."""

import asyncio

from rich.console import Console
from rich.segment import Segment
from rich.text import Text
from textual.app import App
from ui_events import recorded_run

from halospec_tui.ui.fastplot import matrix_text
from halospec_tui.ui.model import RunModel
from halospec_tui.ui.widgets import KPlot, LatencyPlot


def cells(text: Text, width: int) -> list[list[tuple[str, object]]]:
    """Every cell's character and what it looks like, line by line (a blank cell shows
    only its background: its foreground colour cannot be seen)."""
    console = Console(width=width, color_system="truecolor", force_terminal=True)
    lines = console.render_lines(text, console.options.update(width=width, no_wrap=True), pad=False)
    out = []
    for line in lines:
        row = []
        for seg in Segment.simplify(line):
            style = seg.style
            for ch in seg.text:
                seen = style
                if ch == " " and style is not None and not (style.underline or style.reverse):
                    seen = style.bgcolor
                row.append((ch, seen))
        out.append(row)
    while out and not out[-1]:
        out.pop()
    return out


def test_matrix_text_equals_plotext_ansi_cell_for_cell():
    m = RunModel(clock=lambda: 0.0)
    for e in recorded_run():
        m.apply(e)

    class Plots(App[None]):
        def compose(self):
            yield LatencyPlot(id="lat")
            yield KPlot(id="k")

    async def go() -> None:
        app = Plots()
        async with app.run_test(size=(120, 40)) as pilot:
            for plot in (app.query_one(LatencyPlot), app.query_one(KPlot)):
                plot.draw(m)
                await pilot.pause()
                strips = plot._build()  # the path the screen uses
                fast = matrix_text(plot._plot.monitor.matrix)
                slow = Text.from_ansi(plot._plot.build())
                width = plot.size.width
                assert len(strips) == plot.size.height
                assert fast.plain.rstrip("\n") == slow.plain.rstrip("\n")
                assert cells(fast, width) == cells(slow, width)
                assert "fixed_2" in fast.plain or plot is app.query_one(KPlot)

    asyncio.run(go())
