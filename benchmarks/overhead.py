#!/usr/bin/env python3
"""Per-request overhead of the harness against a bare httpx loop, same server, one run.

Blocks of N requests alternate between a bare `httpx.Client.post` loop and the
harness's full step (Runner: body, ChatClient with retries, parsing, controller-free
fixed mode, telemetry, CSV row flushed and fsynced, events), both sending the same
bytes. A step is timed from the arm's start to its last step's event: the run's
start and its end (summary, verdict) are one-off costs, reported apart. Wall time
and this thread's CPU time per request are compared; target: ratio below 1.05.

--split also times each part of a step (the request as the client timed it, the
client's own work around it, telemetry, the CSV row, events, the rest) through the
engine's public seams, and adds a third arm, harness-nofsync: the harness with the
CSV's fsync skipped (a probe, never a setting), for the cost of syncing side by side.

    python benchmarks/overhead.py [--rounds 6] [--n 30] [--split]
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from collections import defaultdict
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx
from _common import MODEL, describe

from halospec_tui import results
from halospec_tui.actuators import LemonadeLoadActuator
from halospec_tui.client import ChatClient, Reply
from halospec_tui.events import ArmStarted, Event, ListSink, StepDone
from halospec_tui.plan import Plan, customise, named_plan
from halospec_tui.prompts import prompt_for
from halospec_tui.runner import RunConfig, Runner
from halospec_tui.sim.physics import SimParams
from halospec_tui.sim.process import SimProcess
from halospec_tui.telemetry import Telemetry

PATH = "/api/v1/chat/completions"


class Parts(ListSink):
    """Times the steps (arm start to last StepDone), and what each seam took."""

    def __init__(self) -> None:
        super().__init__()
        self.spent: dict[str, float] = defaultdict(float)  # seconds, over the run
        self.t0 = self.t1 = self.c0 = self.c1 = 0.0

    def emit(self, event: Event) -> None:
        t = time.perf_counter()
        super().emit(event)
        if isinstance(event, ArmStarted):
            self.t0, self.c0 = t, time.thread_time()
        elif isinstance(event, StepDone):
            self.t1, self.c1 = time.perf_counter(), time.thread_time()
        self.spent["events"] += time.perf_counter() - t

    def timed(self, name: str, fn: Callable[..., Any]) -> Callable[..., Any]:
        def run(*a: Any, **kw: Any) -> Any:
            t = time.perf_counter()
            try:
                return fn(*a, **kw)
            finally:
                self.spent[name] += time.perf_counter() - t

        return run


@contextmanager
def no_fsync() -> Iterator[None]:
    """The probe arm: the CSV's syncs skipped (os is shared: only around that run)."""
    saved = os.fsync, os.fdatasync
    os.fsync = os.fdatasync = lambda fd: None  # type: ignore[assignment]
    try:
        yield
    finally:
        os.fsync, os.fdatasync = saved  # type: ignore[assignment]


def harness(sim: SimProcess, plan: Plan, csv: Path, split: bool) -> Parts:
    client = ChatClient(sim.base_url, MODEL)
    parts = Parts()
    runner = Runner(RunConfig(plan, str(csv), write_summary_files=False), client,
                    LemonadeLoadActuator(client, MODEL), parts)  # fmt: skip
    runner.actuator.apply(3)  # the reload is not a request: keep it out
    if split:
        chat = client.chat

        def timed_chat(body: dict[str, Any]) -> Reply:
            t = time.perf_counter()
            reply = chat(body)
            parts.spent["client"] += time.perf_counter() - t - reply.latency_ms / 1000
            parts.spent["request"] += reply.latency_ms / 1000
            return reply

        client.chat = timed_chat  # type: ignore[method-assign]
    # the runner makes its Telemetry when the run starts: time the class's methods
    sample, take = Telemetry.sample, Telemetry.take_bandwidth
    if split:
        Telemetry.sample = parts.timed("telemetry", sample)  # type: ignore[method-assign]
        Telemetry.take_bandwidth = parts.timed("telemetry", take)  # type: ignore[method-assign]
    write = results.CsvWriter.write
    results.CsvWriter.write = parts.timed("csv row", write)  # type: ignore[method-assign]
    try:
        t = time.perf_counter()
        runner.run()
        parts.spent["run start"] = parts.t0 - t
        parts.spent["run end"] = time.perf_counter() - parts.t1
    finally:
        results.CsvWriter.write = write  # type: ignore[method-assign]
        Telemetry.sample, Telemetry.take_bandwidth = sample, take  # type: ignore[method-assign]
        client.close()
    return parts


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--rounds", type=int, default=6)
    ap.add_argument("--n", type=int, default=30)
    ap.add_argument("--target-ms", type=float, default=1.5)
    ap.add_argument("--split", action="store_true", help="time each part of a step too")
    a = ap.parse_args()
    sim = SimProcess.start(SimParams(target_ms=a.target_ms, reload_ms=0))
    arms = ["bare", "harness"] + (["harness-nofsync"] if a.split else [])
    wall: dict[str, list[float]] = {arm: [] for arm in arms}
    cpu: dict[str, list[float]] = {arm: [] for arm in arms}
    spent: list[dict[str, float]] = []
    plan = customise(named_plan("quick"), arms=["fixed_3"], warmup=0, steps=a.n, cooldown_s=0,
                     prompts="pool")  # fmt: skip
    try:
        with (
            httpx.Client(base_url=sim.base_url, timeout=60) as http,
            ChatClient(sim.base_url, MODEL) as bodies,
            tempfile.TemporaryDirectory() as d,
        ):
            # the very bodies the harness sends, in the same order
            sent = [bodies.build_body(prompt_for(i, "pool")[1], max_tokens=plan.max_tokens,
                                      cache_prompt=False) for i in range(a.n)]  # fmt: skip
            for _ in range(3):  # warm the server and the connection
                http.post(PATH, json=sent[0]).json()
            for r in range(a.rounds):
                for arm in arms:
                    if arm == "bare":
                        t, c = time.perf_counter(), time.thread_time()
                        for b in sent:
                            http.post(PATH, json=b).json()
                        wall[arm].append((time.perf_counter() - t) * 1000 / a.n)
                        cpu[arm].append((time.thread_time() - c) * 1000 / a.n)
                        continue
                    csv = Path(d) / f"o{r}-{arms.index(arm)}.csv"
                    if arm == "harness":
                        parts = harness(sim, plan, csv, a.split)
                        spent.append(parts.spent)
                    else:
                        with no_fsync():
                            parts = harness(sim, plan, csv, False)
                    wall[arm].append((parts.t1 - parts.t0) * 1000 / a.n)
                    cpu[arm].append((parts.c1 - parts.c0) * 1000 / a.n)
    finally:
        sim.stop()
    report(a, arms, wall, cpu, spent)
    ratio = statistics.median(wall["harness"]) / statistics.median(wall["bare"])
    return 0 if ratio < 1.05 else 1


def report(
    a: argparse.Namespace,
    arms: list[str],
    wall: dict[str, list[float]],
    cpu: dict[str, list[float]],
    spent: list[dict[str, float]],
) -> None:
    with open("/proc/loadavg") as fh:
        print(f"load average: {fh.read().split()[0]} (cores: {os.cpu_count()})")
    for arm in arms:
        print(describe(f"{arm}, ms/req", wall[arm]))
        print(describe(f"{arm}, CPU ms/req", cpu[arm]))
    bare = statistics.median(wall["bare"])
    for arm in arms[1:]:
        ratio = statistics.median(wall[arm]) / bare
        print(f"ratio {arm}/bare (median of {a.rounds} interleaved rounds): {ratio:.3f}"
              + ("  (target < 1.05)" if arm == "harness" else ""))  # fmt: skip
    once = {k: statistics.median(s[k] * 1000 for s in spent) for k in ("run start", "run end")}
    print(f"once a run: start {once['run start']:.1f} ms, end (summary, verdict) "
          f"{once['run end']:.1f} ms: {sum(once.values()) / a.n:.2f} ms a request over {a.n}")  # fmt: skip
    if not a.split:
        return
    step = statistics.median(wall["harness"])
    print(f"\na harness step ({step:.2f} ms), part by part (median over rounds, ms a step):")
    named = ["request", "client", "telemetry", "csv row", "events"]
    shown = 0.0
    for name in named:
        ms = statistics.median(s[name] * 1000 / a.n for s in spent)
        shown += ms
        print(f"  {name:<10} {ms:8.3f}")
    print(f"  {'the rest':<10} {step - shown:8.3f}   (actuator, prompt, record, controller, log)")
    print("  request: latency as the client took it (whole ms); client: its own time around")
    print("  that window (parsing, redaction, the latency's rounding down: 0.5 ms on average)")


if __name__ == "__main__":
    sys.exit(main())
