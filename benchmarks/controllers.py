"""Do the adaptive controllers beat the best fixed K? One interleaved run per workload.

On the embedded server (per-request K, so changing K costs no reload), two workloads,
each with CPU load in the middle rounds: `steady` (the prompt pool as it is) and
`shift` (structured prompts, drafted well, then open ones, drafted poorly, in turn).
Every arm runs in every round (interleaved, shuffled, same prompts), so all meet the
same conditions. Prints per arm tokens/s with its 95% CI and the regret against the
best fixed K (arm / best fixed - 1, paired CI); for `shift` also the oracle bound from
the physics model: the best K per prompt class against the best single K.

    python benchmarks/controllers.py             # both workloads, about 10 minutes
    python benchmarks/controllers.py --rounds 6  # shorter, wider CIs

Targets: the best of adaptive:model / adaptive:bandit within 3% of the best fixed K on
steady, and at least 3% faster than it on shift; pmin:0.75 and adaptive alongside.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from halospec_tui.prompts import ALL_PROMPTS, OPEN, STRUCTURED  # noqa: E402
from halospec_tui.race_rows import replay  # noqa: E402
from halospec_tui.results import read_runs  # noqa: E402
from halospec_tui.sim.physics import SimParams, expected_decode_ms  # noqa: E402
from halospec_tui.sim.process import SimProcess  # noqa: E402
from halospec_tui.verdict import by_arm, decide, measured, race_config  # noqa: E402

FIXED = [f"fixed_{k}" for k in (1, 2, 3, 4, 5, 6, 8)]
ADAPTIVE = ["adaptive", "adaptive:model", "adaptive:bandit", "pmin:0.75"]


def oracle_bound(params: SimParams, ks: list[int]) -> float:
    """Speed of the best K per class over the best single K, from the physics model."""
    structured = [ALL_PROMPTS[i] for i in STRUCTURED]
    open_ = [ALL_PROMPTS[i] for i in OPEN]
    t_s = {k: expected_decode_ms(params, k, structured) for k in ks}
    t_o = {k: expected_decode_ms(params, k, open_) for k in ks}
    single = min(t_s[k] + t_o[k] for k in ks)
    oracle = min(t_s.values()) + min(t_o.values())
    return single / oracle - 1.0


def run(workload: str, rounds: int, block: int, seed: int) -> None:
    params = SimParams(honor_request_draft=True, seed=seed)
    sim = SimProcess.start(params)
    try:
        with tempfile.TemporaryDirectory() as tmp:
            csv = Path(tmp) / "c.csv"
            cmd = [sys.executable, "-m", "halospec_tui", "--no-ui", "--plan", "tune",
                   "--no-until-decisive", "--rounds", str(rounds), "--block", str(block),
                   "--settle", "0", "--seed", str(seed), "--workload", workload,
                   "--shift-every", str(2 * block), "--actuator", "request",
                   "--load", "--load-workers", "1", "--load-round", str(rounds // 3 + 1),
                   "--load-rounds", str(max(rounds // 3, 1)), "--base-url", sim.base_url,
                   "--modes", ",".join(FIXED + ADAPTIVE), "--csv", str(csv)]  # fmt: skip
            p = subprocess.run(cmd, capture_output=True, text=True, timeout=3600)
            if p.returncode != 0:
                raise SystemExit(f"{workload}: exit {p.returncode}\n{p.stderr[-2000:]}")
            samples = read_runs(csv)[0].samples
    finally:
        sim.stop()
    rows = [s for s in samples if not s.settle]
    v = decide(rows, with_groups=False)
    race = replay(rows, race_config(0.02)).race
    groups = by_arm(rows)
    fixed = [a for a in v.lines if a.arm in FIXED and a.tps]
    best = max(fixed, key=lambda a: a.tps.value if a.tps else 0.0)
    print(f"\nworkload {workload}: {rounds} rounds of {block} steps per arm, CPU load in the "
          f"middle rounds; best fixed {best.arm}")  # fmt: skip
    print(f"{'arm':<16} {'tok/s':>8} {'95% CI':>17} {'vs best fixed':>14} {'95% CI':>17} {'K changes':>9}")
    for a in v.lines:
        if a.tps is None:
            continue
        pair = race.pair(a.arm, best.arm) if a.arm != best.arm else None
        r = None if pair is None else pair.t
        ks = [s.draft_length for s in measured(groups[a.arm])]
        changes = sum(1 for x, y in zip(ks, ks[1:], strict=False) if x != y)
        vs = "-" if r is None else f"{(r.value - 1) * 100:+.1f}%"
        ci = "-" if r is None else f"[{(r.lo - 1) * 100:+.1f}, {(r.hi - 1) * 100:+.1f}]"
        print(f"{a.arm:<16} {a.tps.value:>8.1f} [{a.tps.lo:>7.1f}, {a.tps.hi:>7.1f}] "
              f"{vs:>14} {ci:>17} {changes:>9}")  # fmt: skip
    if workload == "shift":
        bound = oracle_bound(params, [0, 1, 2, 3, 4, 5, 6, 8])
        print(f"oracle bound (best K per prompt class vs best single K, physics): {bound * 100:+.1f}%")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--rounds", type=int, default=9)
    ap.add_argument("--block", type=int, default=8)
    ap.add_argument("--seed", type=int, default=3)
    ap.add_argument("--workload", choices=("steady", "shift", "both"), default="both")
    ns = ap.parse_args()
    for w in ("steady", "shift") if ns.workload == "both" else (ns.workload,):
        run(w, ns.rounds, ns.block, ns.seed)


if __name__ == "__main__":
    main()
