"""Peak memory and time of `halospec-tui report` on a long results CSV.

Writes a 200,000-row CSV shaped like a tune run (several arms, interleaved rounds with
settle rows, load phases, two prompt classes) into a temporary folder, runs
`python -m halospec_tui report` on it in a child process, and prints the child's peak
RSS and wall time next to the targets. `--kind classic` writes one long sequential run
instead (no rounds); `--keep DIR` writes the CSV there and keeps it. `--before REF`
runs the package as it was at a git commit too, alternating with this one (`--repeat`
times each), so both are measured side by side on the same machine load.

    .venv/bin/python benchmarks/report_memory.py
    .venv/bin/python benchmarks/report_memory.py --kind classic --before ec15f9a --repeat 3
"""

from __future__ import annotations

import argparse
import csv
import datetime as dt
import os
import random
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from halospec_tui.events import StepRecord
from halospec_tui.results.schema import COLUMNS, record_cells

TARGET_MB = 150.0
TARGET_S = 5.0
TUNE_ARMS = ("nospec", "fixed_1", "fixed_2", "fixed_4", "fixed_8", "adaptive")
CLASSIC_ARMS = ("fixed_1", "fixed_2", "fixed_4", "fixed_8", "adaptive")


def _k(arm: str, rng: random.Random) -> int:
    if arm == "nospec":
        return 0
    if arm.startswith("fixed_"):
        return int(arm.split("_")[1])
    return rng.choice((2, 3, 4, 5))


def _record(
    g: int, step: int, arm: str, phase: str, rng: random.Random, clock: dt.datetime, **kw: object
) -> StepRecord:
    k = _k(arm, rng)
    ok = rng.random() > 0.01
    tokens = 64 if ok else 0
    latency = int(rng.gauss(900 - 40 * min(k, 4), 60)) if ok else 0
    drafted = 64 * k // 2 if ok and k else None
    return StepRecord(
        global_step=g,
        step=step,
        arm=arm,
        phase=phase,
        draft_length=k,
        success=ok,
        latency_ms=max(latency, 1) if ok else 0,
        tokens=tokens,
        timestamp=clock.isoformat(timespec="milliseconds"),
        run_id="bench-run",
        actuator="request",
        drafted=drafted,
        accepted=drafted // 2 if drafted else None,
        acceptance=0.5 if drafted else None,
        predicted_ms=round(rng.uniform(500.0, 800.0), 3) if ok else None,
        predicted_n=tokens if ok else None,
        reload_ms=rng.choice((0, 0, 0, 120)) if arm == "adaptive" else None,
        prompt_id=g % 12,
        cpu_percent=round(rng.uniform(0.0, 100.0), 1),
        **kw,  # type: ignore[arg-type]
    )


def write_tune(path: Path, rows: int, seed: int = 0) -> int:
    """Interleaved rounds: each round one block per arm (shuffled), 2 settle rows then
    measured ones; phases steady, load, recovery; prompt classes alternate."""
    rng = random.Random(seed)
    block = 64
    per_round = len(TUNE_ARMS) * (block + 2)
    rounds = max(1, rows // per_round)
    clock = dt.datetime(2026, 1, 1, tzinfo=dt.timezone.utc)
    g = 0
    with path.open("w", newline="") as fh:
        out = csv.writer(fh, lineterminator="\n")
        out.writerow(COLUMNS)
        for rnd in range(1, rounds + 1):
            phase = "steady" if rnd <= rounds * 2 // 5 else "load" if rnd <= rounds * 3 // 5 else "recovery"
            order = list(TUNE_ARMS)
            rng.shuffle(order)
            for pos, arm in enumerate(order):
                for i in range(block + 2):
                    g += 1
                    clock += dt.timedelta(milliseconds=900)
                    rec = _record(
                        g, g, arm, phase, rng, clock, round=rnd, block_pos=pos,
                        settle=i < 2, prompt_class="structured" if (g // 8) % 2 else "open",
                    )  # fmt: skip
                    out.writerow(record_cells(rec))
    return g


def write_classic(path: Path, rows: int, seed: int = 0) -> int:
    """One sequential run: each arm's steps one after another, load in the middle."""
    rng = random.Random(seed)
    per_arm = rows // len(CLASSIC_ARMS)
    clock = dt.datetime(2026, 1, 1, tzinfo=dt.timezone.utc)
    g = 0
    with path.open("w", newline="") as fh:
        out = csv.writer(fh, lineterminator="\n")
        out.writerow(COLUMNS)
        for arm in CLASSIC_ARMS:
            for step in range(1, per_arm + 1):
                g += 1
                clock += dt.timedelta(milliseconds=900)
                phase = "load" if per_arm // 3 < step <= per_arm // 2 else "steady"
                out.writerow(record_cells(_record(g, step, arm, phase, rng, clock)))
    return g


def measure(csv_path: Path, fmt: str = "text", code: Path | None = None) -> tuple[float, float, int]:
    """(peak RSS in MB, wall seconds, exit code) of one `report` child process; `code`:
    a folder holding another `halospec_tui` package to run instead of this one."""
    cmd = [sys.executable, "-m", "halospec_tui", "report", str(csv_path), "--format", fmt]
    env = dict(os.environ)
    if code is not None:  # first on the path, and not shadowed by the working folder
        env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(code), env.get("PYTHONPATH")]))
    t0 = time.perf_counter()
    proc = subprocess.Popen(
        cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, env=env, cwd=csv_path.parent
    )
    _, status, usage = os.wait4(proc.pid, 0)  # this child's own rusage
    seconds = time.perf_counter() - t0
    proc.returncode = os.waitstatus_to_exitcode(status)
    if proc.stderr is not None:
        err = proc.stderr.read().decode(errors="replace").strip()
        proc.stderr.close()
        if err:
            print(err, file=sys.stderr)
    peak_mb = usage.ru_maxrss / 1024.0  # kilobytes on Linux
    return peak_mb, seconds, proc.returncode


def checkout(ref: str, folder: Path) -> Path:
    """The `halospec_tui` package as it was at git `ref`, written into `folder`."""
    root = Path(__file__).resolve().parent.parent
    tar = subprocess.run(["git", "-C", str(root), "archive", ref, "halospec_tui"],
                         check=True, capture_output=True).stdout  # fmt: skip
    subprocess.run(["tar", "-x", "-C", str(folder)], input=tar, check=True)
    return folder


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rows", type=int, default=200_000)
    ap.add_argument("--kind", choices=("tune", "classic"), default="tune")
    ap.add_argument("--format", choices=("text", "json", "md"), default="text")
    ap.add_argument("--keep", type=Path, help="write the CSV in this folder and keep it")
    ap.add_argument("--before", metavar="REF",
                    help="also run `report` as it was at this git commit, alternating")  # fmt: skip
    ap.add_argument("--repeat", type=int, default=1, help="runs of each (default %(default)s)")
    ns = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        folder = ns.keep or Path(tmp)
        folder.mkdir(parents=True, exist_ok=True)
        path = folder / f"report_memory_{ns.kind}_{ns.rows}.csv"
        write = write_tune if ns.kind == "tune" else write_classic
        n = write(path, ns.rows)
        size_mb = path.stat().st_size / 1e6
        codes: dict[str, Path | None] = {"now": None}
        if ns.before:
            (Path(tmp) / "before").mkdir()
            codes = {f"at {ns.before}": checkout(ns.before, Path(tmp) / "before"), **codes}
        print(f"{ns.kind} CSV: {n} rows, {size_mb:.1f} MB; load average before: {_load()}")
        results: dict[str, list[tuple[float, float, int]]] = {k: [] for k in codes}
        for _ in range(ns.repeat):
            for label, code in codes.items():  # side by side, alternating
                results[label].append(measure(path, ns.format, code))
    print(f"load average after: {_load()}")
    ok = True
    for label, runs in results.items():
        peak = max(r[0] for r in runs)
        secs = sorted(r[1] for r in runs)
        codes_seen = sorted({r[2] for r in runs})
        within = peak <= TARGET_MB and secs[len(secs) // 2] <= TARGET_S
        print(
            f"report --format {ns.format} ({label}): exit {codes_seen}, peak RSS {peak:.1f} MB, "
            f"{'/'.join(f'{x:.1f}' for x in secs)} s "
            f"(targets <= {TARGET_MB:.0f} MB, <= {TARGET_S:.0f} s: {'within' if within else 'OVER'})"
        )
        if label == "now":
            ok = within and codes_seen == [0]
    return 0 if ok else 1


def _load() -> str:
    with open("/proc/loadavg") as fh:
        return " ".join(fh.read().split()[:3])


if __name__ == "__main__":
    sys.exit(main())
