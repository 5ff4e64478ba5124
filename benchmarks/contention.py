#!/usr/bin/env python3
"""The embedded server feels CPU contention: latency steady vs under burners vs after.

python benchmarks/contention.py [--n 15]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time

import httpx
import psutil
from _common import body, describe

from halospec_tui.load import LoadInjector
from halospec_tui.sim.physics import SimParams
from halospec_tui.sim.process import SimProcess


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--n", type=int, default=15)
    a = ap.parse_args()
    sim = SimProcess.start(SimParams(target_ms=3.0))
    try:
        with httpx.Client(base_url=sim.base_url, timeout=60) as c:

            def block() -> list[float]:
                out = []
                for i in range(a.n):
                    t = time.perf_counter()
                    c.post("/api/v1/chat/completions", json=body(f"contention {i}")).json()
                    out.append((time.perf_counter() - t) * 1000)
                return out

            steady = block()
            load = LoadInjector(workers=psutil.cpu_count() or 1)
            load.start(120)
            try:
                time.sleep(0.5)
                loaded = block()
            finally:
                load.stop()
            after = block()
    finally:
        sim.stop()
    for label, xs in (("steady", steady), ("load (1 burner/core)", loaded), ("recovery", after)):
        print(describe(label, xs))
    up = statistics.median(loaded) / statistics.median(steady)
    down = statistics.median(after) / statistics.median(steady)
    print(f"ratio load/steady: {up:.2f}   recovery/steady: {down:.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
