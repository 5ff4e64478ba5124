#!/usr/bin/env python3
"""Per-request overhead of the harness against a bare httpx loop, same server, one run.

Blocks of N requests alternate between a bare `httpx.Client.post` loop and the
harness's full step (Runner: body, ChatClient with retries, parsing, controller-free
fixed mode, telemetry, CSV row flushed and fsynced, events). Wall time per request is
compared; target: ratio below 1.05.

    python benchmarks/overhead.py [--rounds 6] [--n 30]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

import httpx
from _common import body, describe

from halospec_tui.actuators import LemonadeLoadActuator
from halospec_tui.client import ChatClient
from halospec_tui.events import ListSink
from halospec_tui.plan import customise, named_plan
from halospec_tui.prompts import prompt_for
from halospec_tui.runner import RunConfig, Runner
from halospec_tui.sim.physics import SimParams
from halospec_tui.sim.process import SimProcess


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--rounds", type=int, default=6)
    ap.add_argument("--n", type=int, default=30)
    ap.add_argument("--target-ms", type=float, default=1.5)
    a = ap.parse_args()
    sim = SimProcess.start(SimParams(target_ms=a.target_ms, reload_ms=0))
    bare, harness = [], []
    try:
        with (
            httpx.Client(base_url=sim.base_url, timeout=60) as http,
            tempfile.TemporaryDirectory() as d,
        ):
            # the very prompts the harness sends, in the same order
            prompts = [prompt_for(i, "pool")[1] for i in range(a.n)]
            for _ in range(3):  # warm the server and the connection
                http.post("/api/v1/chat/completions", json=body(prompts[0])).json()
            for r in range(a.rounds):
                t = time.perf_counter()
                for p in prompts:
                    http.post("/api/v1/chat/completions", json=body(p)).json()
                bare.append((time.perf_counter() - t) * 1000 / a.n)

                client = ChatClient(sim.base_url, "Qwen3-0.6B-GGUF")
                plan = customise(named_plan("quick"), arms=["fixed_3"], warmup=0, steps=a.n,
                                 cooldown_s=0, prompts="pool")  # fmt: skip
                runner = Runner(RunConfig(plan, str(Path(d) / f"o{r}.csv"), write_summary_files=False),
                                client, LemonadeLoadActuator(client, "Qwen3-0.6B-GGUF"), ListSink())  # fmt: skip
                runner.actuator.apply(3)  # the reload is not a request: keep it out
                t = time.perf_counter()
                runner.run()
                harness.append((time.perf_counter() - t) * 1000 / a.n)
                client.close()
    finally:
        sim.stop()
    print(describe("bare httpx, ms/request", bare))
    print(describe("harness step, ms/request", harness))
    ratio = statistics.median(harness) / statistics.median(bare)
    print(
        f"ratio harness/bare (median of {a.rounds} interleaved rounds): {ratio:.3f}  (target < 1.05)"
    )
    return 0 if ratio < 1.05 else 1


if __name__ == "__main__":
    sys.exit(main())
