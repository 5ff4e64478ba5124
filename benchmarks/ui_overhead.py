#!/usr/bin/env python3
"""Does the live monitor disturb what it measures? Same quick plan, with and without UI.

Runs alternate headless (events to a list) and the Textual app (headless driver, real
rendering at its clock), on the same embedded server, and compare mean step latency.
The UI's CPU share is this process's CPU time per wall second in each arm.
Target: latency ratio below 1.03.

    python benchmarks/ui_overhead.py [--rounds 3]
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import tempfile
import time
from pathlib import Path

import psutil
from _common import describe

from halospec_tui.events import ListSink, LogRouter
from halospec_tui.load import LoadInjector
from halospec_tui.plan import customise, named_plan
from halospec_tui.results import read_runs
from halospec_tui.runner import RunConfig, Runner
from halospec_tui.session import SessionOptions, open_session
from halospec_tui.sim.physics import SimParams
from halospec_tui.ui.app import make_app


def mean_latency(csv: Path) -> float:
    return statistics.fmean(s.latency_ms for s in read_runs(csv)[-1].samples if s.success)


async def with_ui(app) -> None:
    # Waits without the pilot: `pilot.pause` waits for the app to be idle at each
    # call, which polled ten times a second costs 1-2% of a core, counted as the UI's.
    async with app.run_test(size=(150, 45)):
        while app.finished is None:
            await asyncio.sleep(0.25)


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--rounds", type=int, default=3)
    a = ap.parse_args()
    me = psutil.Process()
    lat = {"headless": [], "ui": []}
    cpu = {"headless": [], "ui": []}
    opts = SessionOptions(backend="sim", sim=SimParams(target_ms=1.5, reload_ms=50))
    with tempfile.TemporaryDirectory() as d, open_session(opts, LogRouter()) as session:
        plan = customise(named_plan("quick"), cooldown_s=0.05, warmup_sleep_s=0.05)
        for r in range(a.rounds):
            for arm in ("headless", "ui"):
                csv = Path(d) / f"{arm}{r}.csv"
                config = RunConfig(
                    plan, str(csv), write_summary_files=False, server_pid=session.server_pid
                )
                load = LoadInjector(1)
                c0, t0 = me.cpu_times(), time.perf_counter()
                if arm == "headless":
                    Runner(config, session.client, session.actuator, ListSink(), load).run()
                else:
                    asyncio.run(with_ui(make_app(config, session, load)))
                c1, t1 = me.cpu_times(), time.perf_counter()
                cpu[arm].append(((c1.user + c1.system) - (c0.user + c0.system)) / (t1 - t0) * 100)
                lat[arm].append(mean_latency(csv))
    for arm in lat:
        print(describe(f"{arm}: mean step latency", lat[arm]))
        print(describe(f"{arm}: harness CPU", cpu[arm], "%"))
    ratio = statistics.median(lat["ui"]) / statistics.median(lat["headless"])
    share = statistics.median(cpu["ui"]) - statistics.median(cpu["headless"])
    print(f"latency ratio ui/headless: {ratio:.3f}  (target < 1.03)")
    print(f"UI's CPU share: {share:.1f}% of one core above headless")
    return 0 if ratio < 1.03 else 1


if __name__ == "__main__":
    sys.exit(main())
