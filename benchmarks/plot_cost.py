#!/usr/bin/env python3
"""What the monitor's two plots cost to build, as a run grows: as drawn now (plotext
draws the frame, numpy the series) against plotext drawing every point of every series
(the way it was). Both pictures are the same cell for cell (tests/test_fastplot.py).

The monitor rebuilds both plots once a second while steps arrive, so a build of N ms
costs N/10 % of a core. Noisy latency is the hard case: every pixel column is lit
from its lowest to its highest point.

    python benchmarks/plot_cost.py [--steps 100 1000 5000 20000] [--size 150x45]
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import time
from pathlib import Path

from textual.app import App

from halospec_tui.ui.fastplot import FastPlotextPlot
from halospec_tui.ui.widgets import KPlot, LatencyPlot

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))  # the recorded-run replay
from replay import long_run_model  # noqa: E402


def build_ms(plots: list[FastPlotextPlot], repeats: int) -> float:
    """Median time to build both plots."""
    times = []
    for _ in range(repeats):
        t = time.perf_counter()
        for p in plots:
            p._build()
        times.append((time.perf_counter() - t) * 1000)
    return statistics.median(times)


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--steps", type=int, nargs="+", default=[100, 1000, 5000, 20000])
    ap.add_argument("--size", default="150x45")
    a = ap.parse_args()
    width, height = (int(v) for v in a.size.split("x"))

    class Plots(App[None]):
        def compose(self):
            yield LatencyPlot()
            yield KPlot()

    rows: list[tuple[int, float, float]] = []

    async def go() -> None:
        app = Plots()
        async with app.run_test(size=(width, height)) as pilot:
            plots: list[FastPlotextPlot] = [app.query_one(LatencyPlot), app.query_one(KPlot)]
            for n in a.steps:
                m = long_run_model(n, seed=1)
                for p in plots:
                    p.draw(m)
                await pilot.pause()
                repeats = 7 if n <= 5000 else 3
                now = build_ms(plots, repeats)
                FastPlotextPlot.plotext_lines = True
                try:
                    before = build_ms(plots, repeats)
                finally:
                    FastPlotextPlot.plotext_lines = False
                rows.append((n, now, before))

    asyncio.run(go())
    print(f"both plots at {width}x{height}, median build time")
    print(f"{'steps':>7} {'now ms':>9} {'plotext ms':>11} {'ratio':>7}")
    for n, now, before in rows:
        print(f"{n:>7} {now:>9.1f} {before:>11.1f} {before / now:>7.1f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
