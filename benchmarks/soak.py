#!/usr/bin/env python3
"""Soak the embedded server: 2,000 requests from 8 clients on loopback, bounded.

Checks that every request is answered and that the server's memory stays within a
bound (RSS growth after warm-up). Stops by itself (request count and a deadline).

    python benchmarks/soak.py [--requests 2000] [--clients 8] [--rss-bound-mib 40]
"""

from __future__ import annotations

import argparse
import sys
import threading
import time

import httpx
import psutil
from _common import body

from halospec_tui.sim.physics import SimParams
from halospec_tui.sim.process import SimProcess


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--requests", type=int, default=2000)
    ap.add_argument("--clients", type=int, default=8)
    ap.add_argument("--deadline-s", type=float, default=600)
    ap.add_argument("--rss-bound-mib", type=float, default=40.0)
    a = ap.parse_args()
    sim = SimProcess.start(SimParams(target_ms=0.3))
    proc = psutil.Process(sim.pid)
    ok = [0] * a.clients
    bad: list[str] = []
    latencies: list[float] = []
    lock = threading.Lock()
    stop_at = time.monotonic() + a.deadline_s
    per_client = a.requests // a.clients
    try:
        with httpx.Client(base_url=sim.base_url, timeout=60) as c:
            for i in range(20):
                c.post("/api/v1/chat/completions", json=body(f"warm {i}", max_tokens=16)).json()
        rss0 = proc.memory_info().rss

        def client(n: int) -> None:
            with httpx.Client(base_url=sim.base_url, timeout=60) as c:
                for i in range(per_client):
                    if time.monotonic() > stop_at:
                        return
                    t = time.perf_counter()
                    try:
                        r = c.post(
                            "/api/v1/chat/completions", json=body(f"soak {n}-{i}", max_tokens=16)
                        )
                        doc = r.json()
                        if r.status_code == 200 and doc["usage"]["completion_tokens"] == 16:
                            ok[n] += 1
                        else:
                            bad.append(f"{r.status_code}")
                    except (httpx.HTTPError, ValueError, KeyError) as e:
                        with lock:
                            bad.append(repr(e))
                    with lock:
                        latencies.append((time.perf_counter() - t) * 1000)

        t0 = time.perf_counter()
        threads = [threading.Thread(target=client, args=(n,)) for n in range(a.clients)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        wall = time.perf_counter() - t0
        rss1 = proc.memory_info().rss
    finally:
        sim.stop()
    sent = per_client * a.clients
    growth = (rss1 - rss0) / 2**20
    latencies.sort()
    print(f"requests {sent}, answered {sum(ok)}, failed {len(bad)} in {wall:.1f} s "
          f"({sum(ok) / wall:.0f} req/s with {a.clients} clients, one server slot)")  # fmt: skip
    print(
        f"latency p50 {latencies[len(latencies) // 2]:.1f} ms, p99 {latencies[int(len(latencies) * 0.99)]:.1f} ms"
    )
    print(
        f"server RSS {rss0 / 2**20:.1f} -> {rss1 / 2**20:.1f} MiB (growth {growth:+.1f} MiB, bound {a.rss_bound_mib} MiB)"
    )
    good = sum(ok) == sent and not bad and growth < a.rss_bound_mib
    print("PASS" if good else "FAIL")
    return 0 if good else 1


if __name__ == "__main__":
    sys.exit(main())
