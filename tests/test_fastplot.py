"""The plots drawn from plotext's matrix look exactly as plotext's own ANSI output."""

import asyncio

import numpy as np
from rich.console import Console
from rich.segment import Segment
from rich.text import Text
from textual.app import App
from ui_events import recorded_run

from halospec_tui.ui.fastplot import decimate, matrix_text, pixel_columns
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


# -- fitting long series to the canvas -------------------------------------------


def test_decimate_keeps_first_lowest_highest_last_of_each_column_in_order():
    xs = [1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12]
    ys = [5.0, 9.0, 1.0, 4.0, 4.0, 4.0, 2.0, 2.0, 8.0, 3.0, 6.0, 7.0]
    cols = np.array([0, 0, 0, 0, 0, 0, 1, 1, 1, 1, 1, 1])
    # column 0: first 5 (x1), high 9 (x2), low 1 (x3), last 4 (x6); column 1: first 2
    # (x7, also the lowest: the first of equal lows), high 8 (x9), last 7 (x12)
    assert decimate(xs, ys, cols) == ([1, 2, 3, 6, 7, 9, 12], [5.0, 9.0, 1.0, 4.0, 2.0, 8.0, 7.0])


def test_decimate_leaves_series_it_cannot_shorten():
    assert decimate([1, 2, 3], [3.0, 1.0, 2.0], np.array([0, 0, 0])) == ([1, 2, 3], [3.0, 1.0, 2.0])
    xs, ys = list(range(10)), [float(i % 3) for i in range(10)]
    # 4 points a column or fewer on average: nothing to gain, given back whole
    assert decimate(xs, ys, np.array([0, 0, 0, 1, 1, 1, 2, 2, 3, 3])) == (xs, ys)


def test_pixel_columns_are_plotexts_own():
    from plotext import _utility as ut

    xs = [i / 4 for i in range(-40, 4001)] + [0.1 + 0.2, 1 / 3, 2 / 3, 999.9999999999]
    for lo, hi, pixels in ((0.5, 1000.0, 241), (-10.0, 1000.0, 100), (1.0, 7.0, 296)):
        assert pixel_columns(xs, lo, hi, pixels).tolist() == ut.get_matrix_data(xs, [lo, hi], pixels)


def long_model(n: int, seed: int) -> RunModel:
    """A run of `n` steps over ten modes: noisy latency with failed steps (nan), the
    threshold rule's EMA and band in the last mode, load in the middle third."""
    rng = np.random.default_rng(seed)
    m = RunModel(clock=lambda: 0.0)
    m.steps = list(range(1, n + 1))
    lat = 60 + 40 * rng.random(n) + 300 * (rng.random(n) < 0.01)
    lat[rng.random(n) < 0.02] = np.nan
    m.latency = lat.tolist()
    rule = np.arange(n) >= 9 * n // 10
    m.ema = np.where(rule, 75 + 5 * np.sin(np.arange(n) / 9), np.nan).tolist()
    m.low = np.where(rule, 65.0, np.nan).tolist()
    m.high = np.where(rule, 90.0, np.nan).tolist()
    m.ks = rng.integers(1, 9, n).tolist()
    m.mode_marks = [(1 + i * n // 10, f"fixed_{i + 1}") for i in range(10)]
    m.phase_marks = [(n // 3, "load"), (2 * n // 3, "recovery")]
    return m


def test_a_long_run_is_drawn_from_few_points_and_looks_the_same(monkeypatch):
    """3,000 steps: each plot, at several sizes, is given a few points a pixel column,
    and its picture is the picture of every point, cell for cell."""
    import halospec_tui.ui.widgets as widgets

    class Plots(App[None]):
        def compose(self):
            yield LatencyPlot(id="lat")
            yield KPlot(id="k")

    given: list[int] = []

    def counting(plot):
        real = plot.plt.plot

        def plot_and_count(xs, ys, **kw):
            given.append(len(xs))
            return real(xs, ys, **kw)

        monkeypatch.setattr(plot.plt, "plot", plot_and_count)

    async def go() -> None:
        for size, seed in (((120, 40), 1), ((97, 31), 2), ((150, 45), 3)):
            m = long_model(3000, seed)
            app = Plots()
            async with app.run_test(size=size) as pilot:
                for plot in (app.query_one(LatencyPlot), app.query_one(KPlot)):
                    plot.draw(m)
                    await pilot.pause()
                    counting(plot)
                    given.clear()
                    fitted = plot._build()
                    assert given and max(given) <= 4 * 2 * plot.size.width
                    with monkeypatch.context() as mp:
                        mp.setattr(widgets, "fit", lambda series, xlim, pixels: series)
                        given.clear()
                        whole = plot._build()
                        assert max(given) > 2000  # every point, this time
                    assert len(fitted) == plot.size.height
                    assert [cells_of_strip(s) for s in fitted] == [cells_of_strip(s) for s in whole]

    asyncio.run(go())


def cells_of_strip(strip):
    return [(ch, seg.style) for seg in strip for ch in seg.text]
