#!/usr/bin/env python3
"""Memory burners against a bare copy loop: do they take the bandwidth one thread can,
and do they stop with their window?

python benchmarks/membw.py [--rounds 5] [--window 4] [--buffer-mib N]

Each round runs, in an order that alternates, (a) a bare single-threaded copy loop in
a spawned process (`np.copyto(dst, src)` over two whole buffers, again and again,
timed after one untimed pass), and (b) one memory burner (load_memory.MemoryLoad, the
same buffer size), whose rate is read from its own byte count once its first pass is
done. Both count a copy of n bytes as 2n moved. It prints each pair with the load
average, the burner's share of the copy loop's rate (target: at least 0.70), and
how long after its window's end the burner stopped moving bytes and was gone
(target: under 1 s). Then one burner per core, together, for the record.
"""

from __future__ import annotations

import argparse
import multiprocessing as mp
import os
import statistics
import sys
import time

from halospec_tui.load_memory import MemoryLoad, MiB

TARGET_SHARE = 0.70
TARGET_LAG_S = 1.0


def _copy_loop(buffer_bytes: int, seconds: float, out: mp.connection.Connection) -> None:
    import mmap

    import numpy as np

    n = buffer_bytes // 8
    src = np.frombuffer(mmap.mmap(-1, n * 8), dtype=np.float64)
    dst = np.frombuffer(mmap.mmap(-1, n * 8), dtype=np.float64)
    src[:] = 1.0
    np.copyto(dst, src)  # first touch, untimed
    moved, t0 = 0, time.perf_counter()
    while time.perf_counter() - t0 < seconds:
        np.copyto(dst, src)
        moved += 2 * n * 8
    out.send(moved / (time.perf_counter() - t0))


def copy_loop_gbps(buffer_bytes: int, seconds: float) -> float:
    ctx = mp.get_context("spawn")
    here, there = ctx.Pipe(duplex=False)
    p = ctx.Process(target=_copy_loop, args=(buffer_bytes, seconds, there), daemon=True)
    p.start()
    try:
        if not here.poll(seconds + 60):
            raise RuntimeError("the copy loop did not answer")
        rate: float = here.recv()
    finally:
        p.join(timeout=10)
        if p.is_alive():
            p.kill()
    return rate / 1e9


def burner_run(load: MemoryLoad, window: float) -> tuple[float, float, float, float]:
    """(steady GB/s once the first pass is done, whole-window GB/s, stop lag of the
    bytes, stop lag of the processes), for one window of `load`."""
    first_pass = 2 * load.buffer_bytes * load.workers  # both buffers written once
    base = load.bytes_moved()
    start = time.monotonic()
    load.start(window)
    end = start + window
    marks: list[tuple[float, float]] = []  # (time, bytes) after the first pass
    last_bytes, last_change = base, start
    while load.active and time.monotonic() < end + 30:
        now, moved = time.monotonic(), load.bytes_moved()
        if moved != last_bytes:
            last_bytes, last_change = moved, now
        if moved - base > first_pass and now < end - 0.2:
            marks.append((now, moved))
        time.sleep(0.01)
    gone = time.monotonic()
    load.stop()
    if len(marks) < 2 or marks[-1][0] - marks[0][0] < 0.5:
        raise RuntimeError("the burner never got past its first pass: lengthen --window")
    steady = (marks[-1][1] - marks[0][1]) / (marks[-1][0] - marks[0][0]) / 1e9
    whole = (last_bytes - base) / window / 1e9
    return steady, whole, last_change - end, gone - end


def load_average() -> str:
    return " ".join(f"{x:.2f}" for x in os.getloadavg())


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--window", type=float, default=4.0, help="seconds per run")
    ap.add_argument("--buffer-mib", type=int, default=None, help="default: the burners' rule")
    a = ap.parse_args()
    one = MemoryLoad(workers=1, buffer_bytes=a.buffer_mib * MiB if a.buffer_mib else None)
    print(one.describe())
    print(f"load average at start: {load_average()}  ({os.cpu_count()} cores)")
    print(f"{'round':>5} {'order':>12} {'copy loop':>10} {'burner':>8} {'share':>6} "
          f"{'whole win':>10} {'byte lag':>9} {'exit lag':>9}  load average")  # fmt: skip
    shares, byte_lags, exit_lags = [], [], []
    for r in range(a.rounds):
        ref_first = r % 2 == 0
        ref = copy_loop_gbps(one.buffer_bytes, a.window) if ref_first else None
        steady, whole, byte_lag, exit_lag = burner_run(one, a.window)
        if ref is None:
            ref = copy_loop_gbps(one.buffer_bytes, a.window)
        share = steady / ref
        shares.append(share)
        byte_lags.append(byte_lag)
        exit_lags.append(exit_lag)
        order = "loop,burner" if ref_first else "burner,loop"
        print(f"{r + 1:>5} {order:>12} {ref:>8.1f} G {steady:>6.1f} G {share:>6.2f} "
              f"{whole:>8.1f} G {byte_lag:>8.2f}s {exit_lag:>8.2f}s  {load_average()}")  # fmt: skip
    med = statistics.median(shares)
    print(f"burner / copy loop: median {med:.2f}, min {min(shares):.2f} "
          f"(target at least {TARGET_SHARE:.2f}): {'ok' if med >= TARGET_SHARE else 'MISSED'}")  # fmt: skip
    worst = max(max(byte_lags), max(exit_lags))
    print(f"stop lag after the window: bytes {max(byte_lags):.2f} s at most, processes "
          f"{max(exit_lags):.2f} s at most (target under {TARGET_LAG_S:.0f} s): "
          f"{'ok' if worst < TARGET_LAG_S else 'MISSED'}")  # fmt: skip
    every = MemoryLoad(buffer_bytes=one.buffer_bytes)
    steady, whole, byte_lag, exit_lag = burner_run(every, a.window)
    print(f"{every.workers} burners together (one per core): {steady:.1f} GB/s once past "
          f"their first pass, {whole:.1f} GB/s over the whole window; stop lag "
          f"{byte_lag:.2f} s / {exit_lag:.2f} s; load average {load_average()}")  # fmt: skip
    return 0 if med >= TARGET_SHARE and worst < TARGET_LAG_S else 1


if __name__ == "__main__":
    sys.exit(main())
