#!/usr/bin/env python3
"""Does the live monitor disturb what it measures? Same quick plan, with and without UI.

Runs alternate headless (events to a list) and the Textual app (headless driver, real
rendering at its clock), on the same embedded server, and compare mean step latency.
The UI's CPU share is this process's CPU time per wall second in each arm, counted two
ways: over the whole arm, and while running (from the first measured step to the end
of the run, so without the app's start, which a run of a few seconds would otherwise
weigh far more than a real run of minutes does). The app's start is shown on its own.
Targets: latency ratio below 1.03; CPU share while running at most 4% of a core.

    python benchmarks/ui_overhead.py [--rounds 3] [--target-ms 1.5]
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

from halospec_tui.events import (
    ArmInfo,
    FanOut,
    ListSink,
    LogRouter,
    RunFinished,
    RunStarted,
    StepDone,
)
from halospec_tui.load import LoadInjector
from halospec_tui.plan import customise, named_plan
from halospec_tui.results import read_runs
from halospec_tui.runner import RunConfig, Runner
from halospec_tui.session import SessionOptions, open_session
from halospec_tui.sim.physics import SimParams
from halospec_tui.ui.app import make_app

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))  # the recorded-run replay
from replay import Replay, make_replay_app  # noqa: E402


class Span:
    """A sink noting this process's CPU time and the wall clock at the first measured
    step and at the end of the run."""

    def __init__(self) -> None:
        self.marks: list[tuple[float, float]] = []

    def emit(self, event: object) -> None:
        first = isinstance(event, StepDone) and not self.marks
        if first or isinstance(event, RunFinished):
            c = psutil.Process().cpu_times()
            self.marks.append((c.user + c.system, time.perf_counter()))

    def share(self) -> float:
        (c0, t0), (c1, t1) = self.marks[0], self.marks[-1]
        return (c1 - c0) / (t1 - t0) * 100


def mean_latency(csv: Path) -> float:
    return statistics.fmean(s.latency_ms for s in read_runs(csv)[-1].samples if s.success)


def app_start_ms() -> float:
    """CPU time of the app's start alone: mount, first layout and frame, exit, with a
    replayed run that has only begun."""
    me = psutil.Process()
    started = RunStarted(
        run_id="start", plan="quick", arms=(ArmInfo("fixed_1", 1, 4),), base_url="",
        model="m", actuator="a", backend="sim", csv_path="", load_arms="", load_enabled=False,
        cooldown_s=0.0, warmup_sleep_s=0.0,
    )  # fmt: skip
    replay = Replay([started], hold_s=5.0)
    app = make_replay_app([], replay=replay)

    async def go() -> None:
        async with app.run_test(size=(150, 45)) as pilot:
            await pilot.pause()
            replay.stop()
            while app.finished is None:
                await asyncio.sleep(0.01)

    c0 = me.cpu_times()
    asyncio.run(go())
    c1 = me.cpu_times()
    return ((c1.user + c1.system) - (c0.user + c0.system)) * 1000


async def with_ui(app) -> None:
    # Waits without the pilot: `pilot.pause` waits for the app to be idle at each
    # call, which polled ten times a second costs 1-2% of a core, counted as the UI's.
    async with app.run_test(size=(150, 45)):
        while app.finished is None:
            await asyncio.sleep(0.25)


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument(
        "--target-ms", type=float, default=1.5,
        help="the embedded server's ms a token (1.5: about 12 steps a second, the monitor's "
        "worst case; 15: about 2 a second, as a small model on a CPU)",
    )  # fmt: skip
    a = ap.parse_args()
    me = psutil.Process()
    lat: dict[str, list[float]] = {"headless": [], "ui": []}
    cpu: dict[str, list[float]] = {"headless": [], "ui": []}
    running: dict[str, list[float]] = {"headless": [], "ui": []}
    start_ms: list[float] = []
    opts = SessionOptions(backend="sim", sim=SimParams(target_ms=a.target_ms, reload_ms=50))
    with tempfile.TemporaryDirectory() as d, open_session(opts, LogRouter()) as session:
        plan = customise(named_plan("quick"), cooldown_s=0.05, warmup_sleep_s=0.05)
        for r in range(a.rounds):
            for arm in ("headless", "ui"):
                csv = Path(d) / f"{arm}{r}.csv"
                config = RunConfig(
                    plan, str(csv), write_summary_files=False, server_pid=session.server_pid
                )
                load = LoadInjector(1)
                span = Span()
                c0, t0 = me.cpu_times(), time.perf_counter()
                if arm == "headless":
                    sink = FanOut(ListSink(), span)
                    Runner(config, session.client, session.actuator, sink, load).run()
                else:
                    asyncio.run(with_ui(make_app(config, session, load, extra_sinks=[span])))
                c1, t1 = me.cpu_times(), time.perf_counter()
                cpu[arm].append(((c1.user + c1.system) - (c0.user + c0.system)) / (t1 - t0) * 100)
                running[arm].append(span.share())
                lat[arm].append(mean_latency(csv))
            start_ms.append(app_start_ms())
    for arm in lat:
        print(describe(f"{arm}: mean step latency", lat[arm]))
        print(describe(f"{arm}: harness CPU", cpu[arm], "%"))
        print(describe(f"{arm}: harness CPU running", running[arm], "%"))
    print(describe("app start to first frame", start_ms, "ms CPU"))
    ratio = statistics.median(lat["ui"]) / statistics.median(lat["headless"])
    share = statistics.median(cpu["ui"]) - statistics.median(cpu["headless"])
    steady = statistics.median(running["ui"]) - statistics.median(running["headless"])
    print(f"latency ratio ui/headless: {ratio:.3f}  (target < 1.03)")
    print(f"UI's CPU share, whole arm: {share:.1f}% of one core above headless")
    print(f"UI's CPU share while running: {steady:.1f}% of one core above headless (target <= 4)")
    return 0 if ratio < 1.03 and steady <= 4 else 1


if __name__ == "__main__":
    sys.exit(main())
