#!/usr/bin/env python3
"""What writing a results row costs the step that wrote it: a sync per row against the
sync in the background, side by side in one run.

Blocks of N rows alternate between the way rows were written before (a buffered text
file: write, flush, fsync, every row) and `CsvWriter.write` (one write of the whole
line, the fsync in a background thread at most every 0.5 s). Rows go to a CSV in
`--dir` (default: the current folder, where `results_phase0.csv` goes; a tmpfs
folder makes every sync free and the comparison moot). Prints the time per row of
each, as medians over the blocks, and the load average around the run.

    python benchmarks/csv_write.py [--rounds 8] [--n 200] [--dir .]
"""

from __future__ import annotations

import argparse
import csv
import io
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

from halospec_tui.events import StepRecord
from halospec_tui.results.schema import COLUMNS, record_cells
from halospec_tui.results.writer import CsvWriter


def record(g: int) -> StepRecord:
    return StepRecord(
        g, g, "fixed_4", "steady", 4, True, 812, 64, timestamp="2026-01-01T00:00:00.900+00:00",
        run_id="bench", actuator="lemonade-load", confirmed_k=4, drafted=48, accepted=30,
        acceptance=0.625, predicted_ms=700.125, predicted_n=64, cpu_percent=42.5, prompt_id=3,
    )  # fmt: skip


def sync_every_row(path: Path, n: int) -> float:
    """Seconds per row, written as before: buffered text file, flush and fsync per row."""
    with path.open("a", newline="") as fh:
        t = time.perf_counter()
        for g in range(n):
            line = io.StringIO()
            csv.writer(line, lineterminator="\n").writerow(record_cells(record(g)))
            fh.flush()
            os.lseek(fh.fileno(), 0, os.SEEK_END)
            fh.write(line.getvalue())
            fh.flush()
            os.fsync(fh.fileno())
        return (time.perf_counter() - t) / n


def sync_in_background(path: Path, n: int) -> float:
    """Seconds per row of CsvWriter.write (its close, the last sync, not counted: a run
    pays it once)."""
    w = CsvWriter(path)
    w.open()
    t = time.perf_counter()
    for g in range(n):
        w.write(record(g))
    seconds = (time.perf_counter() - t) / n
    w.close()
    return seconds


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rounds", type=int, default=8)
    ap.add_argument("--n", type=int, default=200, help="rows per block (default %(default)s)")
    ap.add_argument("--dir", type=Path, default=Path("."), help="folder of the CSV")
    a = ap.parse_args()
    before = os.getloadavg()
    per_row: dict[str, list[float]] = {"fsync per row (before)": [], "background sync": []}
    with tempfile.TemporaryDirectory(dir=a.dir) as d:
        path = Path(d) / "rows.csv"
        path.write_text(",".join(COLUMNS) + "\n")
        for _ in range(a.rounds):  # alternating, so drift hits both alike
            per_row["fsync per row (before)"].append(sync_every_row(path, a.n))
            per_row["background sync"].append(sync_in_background(path, a.n))
    after = os.getloadavg()
    print(f"{a.rounds} rounds of {a.n} rows each, in {a.dir.resolve()}; "
          f"load average {before[0]:.2f} before, {after[0]:.2f} after")  # fmt: skip
    medians = {k: statistics.median(v) for k, v in per_row.items()}
    for label, m in medians.items():
        spread = f"{min(per_row[label]) * 1e6:.0f}..{max(per_row[label]) * 1e6:.0f}"
        print(f"{label:<24} {m * 1e6:9.1f} us/row (blocks {spread})")
    saved = medians["fsync per row (before)"] - medians["background sync"]
    print(f"saved per row: {saved * 1e3:.3f} ms")
    return 0


if __name__ == "__main__":
    sys.exit(main())
