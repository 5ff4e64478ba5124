#!/usr/bin/env python3
"""Regenerate screenshots/*.svg from real runs of the monitor on the embedded server.

    python scripts/screenshots.py

A quick plan with load in every arm runs for real; the screen is saved once while
load is on (after a few arms have finished) and once at the end. Then a tune plan
runs for real: saved once the screen has picked the K to race and a few rounds have
been decided, and once at its verdict.
"""

from __future__ import annotations

import asyncio
import sys
import tempfile
import time
from pathlib import Path

from halospec_tui.events import LogRouter
from halospec_tui.load import LoadInjector
from halospec_tui.plan import customise, named_plan
from halospec_tui.runner import RunConfig
from halospec_tui.session import SessionOptions, open_session
from halospec_tui.sim.physics import SimParams
from halospec_tui.ui.app import make_app

OUT = Path(__file__).resolve().parent.parent / "screenshots"
SIZE = (150, 45)


async def capture(app, tmp: Path) -> None:
    async with app.run_test(size=SIZE) as pilot:
        deadline = time.monotonic() + 600
        while not (len(app.model.summaries) >= 4 and app.model.phase == "load"):
            assert time.monotonic() < deadline, "no load phase seen"
            await pilot.pause(0.05)
        await pilot.pause(1.0)
        app.save_screenshot("running-load.svg", str(OUT))
        while app.finished is None:
            assert time.monotonic() < deadline, "run did not finish"
            await pilot.pause(0.1)
        await pilot.pause(0.6)
        app.save_screenshot("finished.svg", str(OUT))


async def capture_tune(app, tmp: Path) -> None:
    async with app.run_test(size=SIZE) as pilot:
        deadline = time.monotonic() + 900
        while not (app.model.verdict is not None and app.model.verdict.round >= 4):
            assert time.monotonic() < deadline, "no fourth round"
            await pilot.pause(0.05)
        await pilot.pause(1.0)
        app.save_screenshot("tune-racing.svg", str(OUT))
        while app.finished is None:
            assert time.monotonic() < deadline, "run did not finish"
            await pilot.pause(0.1)
        await pilot.pause(0.6)
        app.save_screenshot("tune-verdict.svg", str(OUT))


def tune_run() -> None:
    log = LogRouter()
    opts = SessionOptions(backend="sim", sim=SimParams(target_ms=4.0, reload_ms=150.0))
    with tempfile.TemporaryDirectory() as d, open_session(opts, log) as session:
        plan = customise(named_plan("tune"), rounds=10, max_time_s=600.0)
        config = RunConfig(plan, str(Path(d) / "tune.csv"), backend=session.backend,
                           server_pid=session.server_pid)  # fmt: skip
        load = LoadInjector()
        try:
            asyncio.run(capture_tune(make_app(config, session, load, log), Path(d)))
        finally:
            load.stop()


def main() -> int:
    OUT.mkdir(exist_ok=True)
    tune_run()
    log = LogRouter()
    opts = SessionOptions(backend="sim", sim=SimParams(target_ms=4.0, reload_ms=150.0))
    with tempfile.TemporaryDirectory() as d, open_session(opts, log) as session:
        plan = customise(
            named_plan("quick"),
            steps=6,
            adaptive_steps=12,
            load_step=3,
            load_duration_s=2.5,
            cooldown_s=0.2,
        )
        config = RunConfig(plan, str(Path(d) / "shot.csv"), load_enabled=True, backend=session.backend,
                           server_pid=session.server_pid)  # fmt: skip
        load = LoadInjector()
        try:
            app = make_app(config, session, load, log)
            asyncio.run(capture(app, Path(d)))
        finally:
            load.stop()
    print("wrote", *sorted(p.name for p in OUT.glob("*.svg")))
    return 0


if __name__ == "__main__":
    sys.exit(main())
