"""Fit the embedded server's physics to what the real llama-server did on a tiny pair.

Reads the JSON that `benchmarks/real_pairs.py --json FILE` writes and, per regime:
- acceptance per draft position, a_i = a * decay^i, by least squares on the accepted
  tokens per draft position of every K arm (`/metrics`:
  llamacpp:spec_decode_num_accepted_tokens_per_pos_total{position="i"} over the drafts
  verified): the fraction of drafts whose first i + 1 tokens were all accepted is
  a_0 a_1 ... a_i;
- the cost of a pass with d drafted tokens, T + s [d > 0] + b d + w d^2 (ms), by least
  squares over the K arms from the timings (predicted_ms over passes, a pass per token
  not accepted from a draft, less the first token of each answer, which the prompt
  pass yields; d = drafted tokens per pass);
then the SimParams fields that follow (relative to T: draft_ratio + verify_per_token =
b / T, verify_quadratic = w / T; spec_overhead_ms = s, in the pair's own ms).

    python benchmarks/fit_sim.py truth.json
"""

from __future__ import annotations

import json
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np


@dataclass(frozen=True)
class Fit:
    regime: str
    a: float
    decay: float
    acc_rmse: float  # of the fitted fractions per position
    t_ms: float  # T: a pass without a draft
    spec_ms: float  # s: the fixed extra of a pass with a draft
    per_draft_ms: float  # b
    per_draft2_ms: float  # w
    cost_rmse_ms: float


def passes(arm: dict[str, Any]) -> float:
    return float(arm["predicted_n"] - arm["accepted"] - len(arm["decode"]))


def fit_acceptance(arms: list[dict[str, Any]]) -> tuple[float, float, float]:
    """(a, decay, rmse) over a grid fine enough for two decimals, weighted by drafts."""
    rows = []
    for arm in arms:
        if arm["drafts"] > 0:
            for i, n in enumerate(arm["per_pos"][: arm["k"]]):
                rows.append((i, n / arm["drafts"], arm["drafts"]))
    idx = np.array([r[0] for r in rows])
    frac = np.array([r[1] for r in rows])
    w = np.array([r[2] for r in rows], dtype=float)
    best = (np.inf, 0.0, 0.0)
    for a in np.arange(0.30, 1.0001, 0.0025):
        for decay in np.arange(0.70, 1.0501, 0.0025):
            # prod_{j<=i} a decay^j = a^(i+1) decay^(i(i+1)/2)
            model = a ** (idx + 1) * decay ** (idx * (idx + 1) / 2)
            err = float(np.sum(w * (frac - model) ** 2) / np.sum(w))
            if err < best[0]:
                best = (err, float(a), float(decay))
    return best[1], best[2], best[0] ** 0.5


def fit_cost(arms: list[dict[str, Any]], cpu: bool = False) -> tuple[np.ndarray, float]:
    """[T, s, b, w] and the rmse, from ms per pass against drafted tokens per pass: the
    timings' predicted_ms, or (cpu) the server's CPU time, prompt included (run with
    short prompts: real_pairs.py --prompt-chars)."""
    xs, ys = [], []
    for arm in arms:
        n = passes(arm)
        d = arm["drafted"] / n
        xs.append([1.0, 1.0 if arm["k"] > 0 else 0.0, d, d * d])
        ys.append((arm["cpu_ms"] if cpu else arm["predicted_ms"]) / n)
    x, y = np.array(xs), np.array(ys)
    coef, *_ = np.linalg.lstsq(x, y, rcond=None)
    rmse = float(np.sqrt(np.mean((x @ coef - y) ** 2)))
    return coef, rmse


def fit_regime(regime: str, arms: list[dict[str, Any]], cpu: bool = False) -> Fit:
    a, decay, acc_rmse = fit_acceptance(arms)
    (t, s, b, w), cost_rmse = fit_cost(arms, cpu)
    return Fit(regime, a, decay, acc_rmse, t, s, b, w, cost_rmse)


def describe(f: Fit) -> str:
    return (
        f"{f.regime}: a {f.a:.3f}, decay {f.decay:.4f} (rmse {f.acc_rmse:.3f}); pass "
        f"{f.t_ms:.2f} ms + {f.spec_ms:.2f} ms if drafting + {f.per_draft_ms:.2f} ms d + "
        f"{f.per_draft2_ms:.3f} ms d^2 (rmse {f.cost_rmse_ms:.2f} ms)\n"
        f"  SimParams: draft_ratio + verify_per_token {f.per_draft_ms / f.t_ms:.3f}, "
        f"verify_quadratic {f.per_draft2_ms / f.t_ms:.4f}, spec_overhead "
        f"{f.spec_ms / f.t_ms:.3f} T"
    )


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    if len(args) != 1:
        raise SystemExit(__doc__)
    doc = json.loads(Path(args[0]).read_text())
    for regime in dict.fromkeys(a["regime"] for a in doc):
        arms = sorted((a for a in doc if a["regime"] == regime), key=lambda a: a["k"])
        print("wall (timings)", describe(fit_regime(regime, arms)))
        if all(a.get("cpu_ms") for a in arms):
            print("server CPU    ", describe(fit_regime(regime, arms, cpu=True)))
        print("  ms per pass: " + ", ".join(
            f"K {a['k']} d {a['drafted'] / passes(a):.2f}: {a['predicted_ms'] / passes(a):.2f}"
            + (f" / {a['cpu_ms'] / passes(a):.2f} CPU" if a.get("cpu_ms") else "")
            for a in arms
        ))  # fmt: skip
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
