"""Does the tune plan recommend the right K, and how fast does it decide?

Runs `halospec-tui --plan tune` headless against the embedded server in settings whose
best K is known from its physics (Leviathan et al.: tokens per pass
E(K) = (1 - a^(K+1)) / (1 - a); a pass costs 1 + (c + v) K target steps), and prints for
each: the recommended K, the analytic optimum among the arms offered, the throughput
regret of the recommendation against it, requests and wall time to the decision, and the
classic plan's wall time for the same arms (its sleeps plus this run's latencies).

    python benchmarks/accuracy.py            # three settings, about 5-10 minutes
    python benchmarks/accuracy.py --quick    # one setting

Targets: regret at most 3% in every setting (nospec where it wins); decision in at most
a third of the classic plan's wall time.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from dataclasses import replace
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from halospec_tui.arms import fixed_k  # noqa: E402
from halospec_tui.prompts import POOL  # noqa: E402
from halospec_tui.sim.physics import SimParams, expected_decode_ms  # noqa: E402
from halospec_tui.sim.process import SimProcess  # noqa: E402

MAX_TOKENS = 64
SETTINGS = {
    # name: (params, arms)
    "default (a 0.72, c 0.15)": (SimParams(), None),
    "speculation loses (a 0.25, c 0.6)": (
        SimParams(acceptance=0.25, acceptance_spread=0.1, draft_ratio=0.6),
        None,
    ),
    "large K (a 0.9, c 0.04)": (
        SimParams(acceptance=0.9, acceptance_spread=0.05, draft_ratio=0.04, verify_per_token=0.01),
        "nospec,fixed_2,fixed_4,fixed_6,fixed_8,fixed_10,fixed_12,fixed_14,fixed_16",
    ),
}
DEFAULT_ARMS = "nospec," + ",".join(f"fixed_{k}" for k in range(1, 9))


def expected_ms(params: SimParams, k: int) -> float:
    """Mean decode time per request over the prompt pool the tune plan rotates."""
    return expected_decode_ms(params, k, POOL, MAX_TOKENS)


def classic_wall_s(latency_ms: dict[int, float], reload_ms: float) -> float:
    """fixed_1..8 (5 warmups + 1 s, 10 steps + 2 s) then adaptive (5 + 15 at about K 4-8)."""
    total = 0.0
    for k in range(1, 9):
        lat = latency_ms.get(k, max(latency_ms.values())) / 1000.0
        total += 5 * (lat + 1.0) + 10 * (lat + 2.0) + reload_ms / 1000.0
    lat = latency_ms.get(4, max(latency_ms.values())) / 1000.0
    return total + 5 * (lat + 1.0) + 15 * (lat + 2.0)


def run_setting(name: str, params: SimParams, arms: str | None, seed: int) -> dict[str, object]:
    sim = SimProcess.start(replace(params, seed=seed))
    try:
        with tempfile.TemporaryDirectory() as tmp:
            csv = Path(tmp) / "tune.csv"
            cmd = [sys.executable, "-m", "halospec_tui", "--no-ui", "--plan", "tune",
                   "--base-url", sim.base_url, "--csv", str(csv), "--seed", str(seed),
                   "--modes", arms or DEFAULT_ARMS]  # fmt: skip
            t0 = time.perf_counter()
            p = subprocess.run(cmd, capture_output=True, text=True, timeout=900)
            wall = time.perf_counter() - t0
            if p.returncode != 0:
                raise SystemExit(f"{name}: exit {p.returncode}\n{p.stderr[-2000:]}")
            doc = json.loads(csv.with_name("tune_summary.json").read_text())
    finally:
        sim.stop()
    v = doc["verdict"]
    offered = [fixed_k(a) for a in (arms or DEFAULT_ARMS).split(",")]
    model = {k: expected_ms(params, k) for k in offered if k is not None}
    best_k = min(model, key=lambda k: model[k])
    rec = v["recommended_k"]
    regret = 1.0 - model[best_k] / model[rec] if rec is not None else float("nan")
    lat = {a["k"]: a["mean_ms"]["value"] for a in v["arms"] if a["k"] is not None and a["mean_ms"]}
    classic = classic_wall_s({k: x for k, x in lat.items() if k}, params.reload_ms)
    return {
        "setting": name,
        "recommended": rec,
        "optimum": best_k,
        "regret": regret,
        "decisive": v["decisive"],
        "requests": v["decision"]["requests"],
        "rounds": v["decision"]["rounds"],
        "wall_s": wall,
        "classic_s": classic,
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--quick", action="store_true", help="only the first setting")
    ap.add_argument("--seed", type=int, default=1)
    ns = ap.parse_args()
    settings = list(SETTINGS.items())[:1] if ns.quick else list(SETTINGS.items())
    print(f"{'setting':<36} {'rec K':>5} {'opt K':>5} {'regret':>7} {'decisive':>8} "
          f"{'requests':>8} {'rounds':>6} {'tune s':>7} {'classic s':>9} {'ratio':>6}")  # fmt: skip
    for name, (params, arms) in settings:
        r = run_setting(name, params, arms, ns.seed)
        print(
            f"{name:<36} {r['recommended']!s:>5} {r['optimum']:>5} {r['regret'] * 100:>6.1f}% "
            f"{'yes' if r['decisive'] else 'no':>8} {r['requests']:>8} {r['rounds']:>6} "
            f"{r['wall_s']:>7.0f} {r['classic_s']:>9.0f} {r['wall_s'] / r['classic_s']:>6.2f}",
            flush=True,
        )


if __name__ == "__main__":
    main()
