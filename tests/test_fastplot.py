"""The plots drawn from plotext's matrix look exactly as plotext's own ANSI output."""

import asyncio

import pytest
from replay import long_run_model
from rich.console import Console
from rich.segment import Segment
from rich.text import Text
from textual.app import App
from ui_events import recorded_run, recorded_tune_run

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
                matrix = plot._plot.monitor.matrix
                matrix.set_canvas()  # plotext's own ANSI text of the same matrix
                slow = Text.from_ansi(matrix.get_canvas())
                width = plot.size.width
                assert len(strips) == plot.size.height
                assert fast.plain.rstrip("\n") == slow.plain.rstrip("\n")
                assert cells(fast, width) == cells(slow, width)
                assert "fixed_2" in fast.plain or plot is app.query_one(KPlot)

    asyncio.run(go())


# -- the series drawn by numpy into plotext's frame -------------------------------


def cells_of_strip(strip):
    return [(ch, seg.style) for seg in strip for ch in seg.text]


@pytest.mark.parametrize(
    ("steps", "size", "seed"),
    [(3000, (120, 40), 1), (3000, (97, 31), 2), (400, (150, 45), 3), (1, (120, 40), 4),
     (2, (80, 24), 5), (37, (100, 30), 6)],
)  # fmt: skip
def test_plots_look_as_plotext_drawing_every_point(monkeypatch, steps, size, seed):
    """Each plot, for short and long runs at several sizes, cell for cell as plotext
    draws it from every point of every series; the recorded runs too."""
    from halospec_tui.ui.fastplot import FastPlotextPlot

    class Plots(App[None]):
        def compose(self):
            yield LatencyPlot(id="lat")
            yield KPlot(id="k")

    models = [long_run_model(steps, seed)]
    if seed == 6:
        for events in (recorded_run(), recorded_tune_run()):
            models.append(RunModel(clock=lambda: 0.0))
            for e in events:
                models[-1].apply(e)

    async def go() -> None:
        app = Plots()
        async with app.run_test(size=size) as pilot:
            for m in models:
                for plot in (app.query_one(LatencyPlot), app.query_one(KPlot)):
                    plot.draw(m)
                    await pilot.pause()
                    fast = plot._build()
                    with monkeypatch.context() as mp:
                        mp.setattr(FastPlotextPlot, "plotext_lines", True)
                        whole = plot._build()
                    assert len(fast) == plot.size.height
                    assert [cells_of_strip(s) for s in fast] == [cells_of_strip(s) for s in whole]
                    # the series are there: braille dots in the picture
                    assert any("\u2800" < ch <= "\u28ff" for s in fast for ch, _ in cells_of_strip(s))

    asyncio.run(go())
