#!/usr/bin/env python3
"""The tune plan and the adaptive arms against the truth, on the real llama-server.

For each regime of `halospec_tui.tiny_gguf` (loses: speculation loses; mid: the best K
small; large: the best K large) and each load (no burner, and N CPU burners beside the
server for the whole cell):

1. the truth: every K 0..8 measured side by side, one llama-server per K, the same
   prompts to every K in rounds shuffled per round (`real_pairs.run_regime`); the
   figure is client end-to-end tokens/s, what the verdict ranks; the best K and the
   set within 3% of it;
2. the tune plan, as a user runs it (`--plan tune --actuator llama-server`: every
   change of K a restart): its recommended K, and that K's regret by the truth;
3. the adaptive arms against the best static arms (nospec and the truth's best K), in
   interleaved rounds with every change of K a restart, the arms' own reloads counted
   as time (`race_rows`): each arm's tokens/s over the best static arm's, Student-t
   95% interval over rounds.

    python benchmarks/real_server.py                          # 3 regimes x {0, 1 burner}
    python benchmarks/real_server.py --regimes mid --burners 0 --rounds 6

Targets: the tune plan's K within 3% of the truth's best in every cell; the best
adaptive arm at least 0.97x the best static arm (nospec included) in every cell, and
ahead of it where load moves the best K; the original `adaptive` rule reported as is.
Needs the llama-server binary (LLAMA_SERVER or scripts/build-llama-server.sh's cache).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from real_pairs import run_regime  # noqa: E402

from halospec_tui.load import LoadInjector  # noqa: E402
from halospec_tui.race_rows import replay  # noqa: E402
from halospec_tui.results.reader import read_runs  # noqa: E402
from halospec_tui.tiny_gguf import cached_pair  # noqa: E402
from halospec_tui.verdict import race_config  # noqa: E402

CACHED = Path.home() / ".cache/halospec-tui/llama-server-11434.0.0/llama-server"
ADAPTIVE = ("adaptive:model", "adaptive:bandit", "adaptive")
LLAMA_ARGS = "-np 1 -c 1024 -t 1 -td 1"


@dataclass
class Cell:
    regime: str
    burners: int
    truth: dict[int, float]  # K -> mean end-to-end tokens/s
    best: int
    good: list[int]  # K within 3% of the best
    tune_k: int | None = None
    tune_said: str = ""
    tune_requests: int = 0
    tune_seconds: float | None = None
    arms: dict[str, tuple[float, float, float]] | None = None  # arm -> (ratio, lo, hi)
    static: str = ""


def truth(ns: argparse.Namespace, binary: str, regime: str) -> dict[int, float]:
    args = argparse.Namespace(ks=list(range(9)), rounds=ns.truth_rounds, prompt_chars=0,
                              burners=0, threads=1, seed=ns.seed, max_tokens=64)  # fmt: skip
    return {a.k: statistics.fmean(a.e2e) for a in run_regime(args, binary, regime)}


def cli(args: list[str], timeout_s: float) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "halospec_tui", "--no-ui", *args],
                          capture_output=True, text=True, timeout=timeout_s)  # fmt: skip


def tune(binary: str, pair: tuple[Path, Path], csv: Path, seed: int) -> dict[str, object]:
    target, draft = pair
    p = cli(["--plan", "tune", "--actuator", "llama-server", "--llama-server", binary,
             "-m", str(target), "-md", str(draft), "--llama-args", LLAMA_ARGS,
             "--seed", str(seed), "--csv", str(csv)], 3600)  # fmt: skip
    if p.returncode != 0:
        raise SystemExit(f"tune failed ({p.returncode}): {p.stderr[-2000:]}")
    doc: dict[str, object] = json.loads(csv.with_name(csv.stem + "_summary.json").read_text())
    return doc


def adaptive(binary: str, pair: tuple[Path, Path], csv: Path, static: list[str],
             ns: argparse.Namespace) -> dict[str, tuple[float, float, float]]:  # fmt: skip
    """Each adaptive arm's tokens/s over the best static arm's (by the run's own figures),
    paired over rounds, its reloads counted."""
    target, draft = pair
    arms = ",".join([*static, *ADAPTIVE])
    p = cli(["--plan", "tune", "--modes", arms, "--no-until-decisive", "--no-screen",
             "--rounds", str(ns.rounds), "--block", str(ns.block), "--settle", "1",
             "--seed", str(ns.seed), "--actuator", "llama-server", "--llama-server", binary,
             "-m", str(target), "-md", str(draft), "--llama-args", LLAMA_ARGS,
             "--csv", str(csv)], 7200)  # fmt: skip
    if p.returncode != 0:
        raise SystemExit(f"adaptive run failed ({p.returncode}): {p.stderr[-2000:]}")
    rows = [s for s in read_runs(csv)[0].samples if not s.settle]
    race = replay(rows, race_config(0.02)).race
    by = {a.arm: a.tps.value for a in race.status.arms}
    best_static = max(static, key=lambda a: by.get(a, 0.0))
    out = {}
    for arm in (*static, *ADAPTIVE):
        pair_t = race.pair(arm, best_static) if arm != best_static else None
        out[arm] = (1.0, 1.0, 1.0) if pair_t is None else (pair_t.t.value, pair_t.t.lo, pair_t.t.hi)
    out["_static"] = (static.index(best_static), 0.0, 0.0)
    return out


class HeldLoad:
    """CPU burners kept running for a whole cell: a burner ends by itself after
    `load.HARD_LIMIT_S`, so a watcher starts a fresh one whenever none runs (checked
    every half second) until `stop`."""

    def __init__(self, workers: int) -> None:
        self.load = LoadInjector(workers)
        self._done = threading.Event()
        self._thread = threading.Thread(target=self._hold, daemon=True)

    def _hold(self) -> None:
        while not self._done.is_set():
            if not self.load.active:
                self.load.start(590.0)
            self._done.wait(0.5)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._done.set()
        self._thread.join(timeout=5)
        self.load.stop()


def run_cell(ns: argparse.Namespace, binary: str, regime: str, burners: int, tmp: Path) -> Cell:
    pair = cached_pair(regime)
    load = HeldLoad(burners) if burners else None
    try:
        if load is not None:
            load.start()
        t = truth(ns, binary, regime)
        best = max(t, key=t.__getitem__)
        cell = Cell(regime, burners, t, best, sorted(k for k, v in t.items() if v >= 0.97 * t[best]))
        print(f"  truth: best K {best} ({t[best]:.1f} tok/s), within 3%: {cell.good}", flush=True)
        doc = tune(binary, pair, tmp / f"tune-{regime}-{burners}.csv", ns.seed)
        v = doc["verdict"]
        assert isinstance(v, dict)
        cell.tune_k = v["recommended_k"]
        cell.tune_said = str(v["statement"])
        cell.tune_requests = v["decision"]["requests"]
        cell.tune_seconds = v["decision"]["seconds"]
        print(f"  tune: K {cell.tune_k}; {cell.tune_said}", flush=True)
        static = ["nospec"] + ([f"fixed_{best}"] if best else [])
        res = adaptive(binary, pair, tmp / f"adaptive-{regime}-{burners}.csv", static, ns)
        cell.static = static[int(res.pop("_static")[0])]
        cell.arms = res
    finally:
        if load is not None:
            load.stop()
    return cell


def report(cells: list[Cell]) -> None:
    print(f"\n{time.strftime('%Y-%m-%d %H:%M')}  llama-server -t 1, every change of K a restart")
    print(f"{'regime':<7} {'load':<9} {'truth best':>12} {'tune K':>7} {'tune regret':>12} "
          f"{'requests':>9}   adaptive arms / best static arm ({'95% CI'})")  # fmt: skip
    for c in cells:
        regret = (1 - c.truth.get(c.tune_k, 0.0) / c.truth[c.best]) if c.tune_k is not None else None
        arms = c.arms or {}
        shown = "  ".join(
            f"{a.removeprefix('adaptive:') if ':' in a else 'original'} {r:.2f} [{lo:.2f}, {hi:.2f}]"
            for a, (r, lo, hi) in arms.items() if a in ADAPTIVE
        )  # fmt: skip
        print(f"{c.regime:<7} {c.burners} burner{'s' if c.burners != 1 else ' '} "
              f"{'K ' + str(c.best):>12} {str(c.tune_k):>7} "
              f"{'-' if regret is None else f'{regret * 100:+.1f}%':>12} {c.tune_requests:>9}   "
              f"vs {c.static}: {shown}")  # fmt: skip


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--regimes", default="loses,mid,large", type=lambda s: s.split(","))
    p.add_argument("--burners", default="0,1", type=lambda s: [int(x) for x in s.split(",")])
    p.add_argument("--truth-rounds", type=int, default=6)
    p.add_argument("--rounds", type=int, default=8, help="rounds of the adaptive comparison")
    p.add_argument("--block", type=int, default=4)
    p.add_argument("--seed", type=int, default=0)
    ns = p.parse_args(argv)
    binary = os.environ.get("LLAMA_SERVER") or str(CACHED)
    if not os.access(binary, os.X_OK):
        raise SystemExit(f"no llama-server at {binary}: set LLAMA_SERVER")
    cells = []
    with tempfile.TemporaryDirectory() as d:
        for regime in ns.regimes:
            for burners in ns.burners:
                print(f"{regime}, {burners} burner(s), load {os.getloadavg()[0]:.2f}", flush=True)
                cells.append(run_cell(ns, binary, regime, burners, Path(d)))
                report(cells)  # the table so far: a long run stopped early keeps its cells
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
