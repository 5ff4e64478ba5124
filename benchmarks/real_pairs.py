"""The truth table of the tiny model pairs: tokens/s per draft length on the real
llama-server, for each regime of `halospec_tui.tiny_gguf` (loses, mid, large).

Per regime, one llama-server per K is started at once (`--spec-draft-n-max K
--spec-draft-n-min 0 --spec-draft-p-min 0`; K 0: no draft model, `--spec-type none`),
and each round sends the same prompt to every K, in an order shuffled afresh each round
(seeded), after one unmeasured request per server (pair_timing.interleave). Per K:
decode tokens/s (the server's `timings`: predicted_n / predicted_ms), end-to-end
tokens/s (tokens / client wall time, prompt processing included) and tokens per second
of the server's CPU time, each a mean over rounds with a Student-t 95% CI; the ratios
to no speculation from per-round paired log ratios (t CI, exponentiated); acceptance;
milliseconds per verification pass; and at the largest K the conditional acceptance per
draft position from `/metrics`.

    python benchmarks/real_pairs.py                           # K 0..8, 3 regimes, 8 rounds (10-20 min)
    python benchmarks/real_pairs.py --regimes mid --ks 0,2,4,8 --rounds 3
    python benchmarks/real_pairs.py --burners 2 --json out.json

Pairs come from the model cache (`cached_pair`), written on first use. Needs the
llama-server binary (LLAMA_SERVER or the cached build of scripts/build-llama-server.sh).
"""

from __future__ import annotations

import argparse
import json
import math
import os
import statistics
import sys
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from halospec_tui.load import LoadInjector  # noqa: E402
from halospec_tui.pair_timing import Sample, SpecCounters, interleave, servers  # noqa: E402
from halospec_tui.prompts import POOL  # noqa: E402
from halospec_tui.tiny_gguf import REGIMES, cached_pair  # noqa: E402

CACHED = Path.home() / ".cache/halospec-tui/llama-server-11434.0.0/llama-server"
# Student-t 0.975 quantiles by degrees of freedom (1..30); beyond, the normal's 1.96.
T975 = [12.706, 4.303, 3.182, 2.776, 2.571, 2.447, 2.365, 2.306, 2.262, 2.228, 2.201, 2.179,
        2.160, 2.145, 2.131, 2.120, 2.110, 2.101, 2.093, 2.086, 2.080, 2.074, 2.069, 2.064,
        2.060, 2.056, 2.052, 2.048, 2.045, 2.042]  # fmt: skip


def t975(df: int) -> float:
    return T975[df - 1] if 1 <= df <= len(T975) else 1.96


def mean_ci(xs: list[float]) -> tuple[float, float]:
    """Mean and the half-width of its Student-t 95% CI (nan with one value)."""
    m = statistics.fmean(xs)
    if len(xs) < 2:
        return m, math.nan
    return m, t975(len(xs) - 1) * statistics.stdev(xs) / math.sqrt(len(xs))


def ratio_ci(num: list[float], den: list[float]) -> tuple[float, float, float]:
    """Geometric mean of per-round num/den with its t 95% CI: (ratio, low, high)."""
    logs = [math.log(a / b) for a, b in zip(num, den, strict=True)]
    m, h = mean_ci(logs)
    if math.isnan(h):
        return math.exp(m), math.nan, math.nan
    return math.exp(m), math.exp(m - h), math.exp(m + h)


@dataclass
class Arm:
    """What one (regime, K) arm measured, one entry per round."""

    regime: str
    k: int
    decode: list[float] = field(default_factory=list)  # tok/s per round (timings)
    e2e: list[float] = field(default_factory=list)  # tok/s per round (client wall time)
    cpu: list[float] = field(default_factory=list)  # tok per server CPU second
    drafted: int = 0
    accepted: int = 0
    predicted_n: int = 0
    predicted_ms: float = 0.0
    prompt_n: int = 0
    prompt_ms: float = 0.0
    cpu_ms: float = 0.0  # the server's CPU time over the measured requests
    drafts: int = 0  # /metrics: verified drafts
    per_pos: list[int] = field(default_factory=list)  # /metrics: accepted per position

    def add(self, samples: list[Sample], counters: SpecCounters) -> None:
        for s in samples:
            self.decode.append(s.decode_tps)
            self.e2e.append(s.e2e_tps)
            self.cpu.append(s.cpu_tps)
            self.drafted += s.drafted
            self.accepted += s.accepted
            self.predicted_n += s.predicted_n
            self.predicted_ms += s.predicted_ms
            self.prompt_n += s.prompt_n
            self.prompt_ms += s.prompt_ms
            self.cpu_ms += s.cpu_ms
        self.drafts += counters.drafts
        self.per_pos = list(counters.accepted_per_pos)


def conditional_acceptance(per_pos: list[int], drafts: int) -> list[float]:
    """P(position i accepted | position i - 1 accepted), from accepted-per-position
    counts over `drafts` full-length drafts (position 0: over all drafts)."""
    out, prev = [], drafts
    for n in per_pos:
        out.append(n / prev if prev else math.nan)
        prev = n
    return out


def run_regime(ns: argparse.Namespace, binary: str, regime: str) -> list[Arm]:
    target, draft = cached_pair(regime)
    prompts = [POOL[i % len(POOL)][: ns.prompt_chars or None] for i in range(ns.rounds)]
    burners = LoadInjector(ns.burners) if ns.burners else None

    def before_round(rnd: int) -> None:
        if burners is not None:
            burners.start(300.0)  # a no-op while they run; they end by themselves
        if rnd and rnd % 5 == 0:
            print(f"{regime}: round {rnd}, load {os.getloadavg()[0]:.2f}", file=sys.stderr)

    try:
        with servers(binary, target, draft, ns.ks, ns.threads) as pool:
            if burners is not None:
                burners.start(300.0)
            got = interleave(pool, prompts, ns.seed, max_tokens=ns.max_tokens,
                             before_round=before_round)  # fmt: skip
    finally:
        if burners is not None:
            burners.stop()
    arms = []
    for k in ns.ks:
        arm = Arm(regime, k)
        arm.add(got.samples[k], got.counters[k])
        arms.append(arm)
    return arms


def _fmt(m: float, h: float, width: int = 6) -> str:
    return f"{m:{width}.1f} ±{h:5.1f}" if not math.isnan(h) else f"{m:{width}.1f} ±  ?  "


def _ratio(arm: list[float], base: list[float]) -> str:
    return "{:5.2f} [{:4.2f}, {:4.2f}]".format(*ratio_ci(arm, base))


def table(arms: list[Arm], regime: str) -> list[str]:
    """The regime's rows: per K, mean ± t 95% half-width over rounds, and paired ratios
    to K 0 (geometric mean of per-round ratios, t 95% CI); * marks the best e2e."""
    rows = sorted((a for a in arms if a.regime == regime), key=lambda a: a.k)
    base = next((a for a in rows if a.k == 0), None)
    best = max(rows, key=lambda a: statistics.fmean(a.e2e))
    out = [f"{regime}: {REGIMES[regime]}",
           "   K  decode tok/s    e2e tok/s     tok/CPU-s     "
           "e2e / K0 [95% CI]   CPU / K0 [95% CI]   accept  ms/pass"]  # fmt: skip
    for a in rows:
        r_e2e = r_cpu = " " * 19
        if base is not None and a is not base:
            r_e2e, r_cpu = _ratio(a.e2e, base.e2e), _ratio(a.cpu, base.cpu)
        acc = f"{a.accepted / a.drafted:6.2f}" if a.drafted else "     -"
        passes = a.predicted_n - a.accepted - len(a.decode)  # the first token: prompt pass
        out.append(f"  {a.k:2d} {_fmt(*mean_ci(a.decode))} {_fmt(*mean_ci(a.e2e))} "
                   f"{_fmt(*mean_ci(a.cpu))}  {r_e2e} {r_cpu}  {acc}  "
                   f"{a.predicted_ms / max(passes, 1):7.2f}{' *' if a is best else ''}")  # fmt: skip
    top = max(rows, key=lambda a: a.k)
    if top.per_pos:
        cond = conditional_acceptance(top.per_pos, top.drafts)
        out.append(f"  accepted per position at K {top.k} (conditional): "
                   + " ".join(f"{c:.2f}" for c in cond))  # fmt: skip
    return out


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--regimes", default=",".join(REGIMES), type=lambda s: s.split(","))
    p.add_argument(
        "--ks", default="0,1,2,3,4,5,6,7,8", type=lambda s: [int(x) for x in s.split(",")]
    )
    p.add_argument("--rounds", type=int, default=8, help="requests per K (one per round)")
    p.add_argument("--max-tokens", type=int, default=64)
    p.add_argument(
        "--prompt-chars", type=int, default=0, help="cut prompts to N bytes (tokens): decode only"
    )
    p.add_argument("--threads", type=int, default=1, help="llama-server -t and -td")
    p.add_argument("--burners", type=int, default=0, help="CPU burner processes during the run")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--json", type=Path, default=None, help="write every arm's figures here")
    ns = p.parse_args(argv)
    binary = os.environ.get("LLAMA_SERVER") or str(CACHED)
    if not os.access(binary, os.X_OK):
        raise SystemExit(f"no llama-server at {binary}: set LLAMA_SERVER")
    arms: list[Arm] = []
    for regime in ns.regimes:
        load0, t0 = os.getloadavg(), time.perf_counter()
        got = run_regime(ns, binary, regime)
        arms += got
        print(f"\n{time.strftime('%Y-%m-%d %H:%M')}  threads {ns.threads}  burners {ns.burners}  "
              f"{ns.rounds} rounds  max_tokens {ns.max_tokens}  load {load0[0]:.2f} -> "
              f"{os.getloadavg()[0]:.2f}  {time.perf_counter() - t0:.0f} s")  # fmt: skip
        print("\n".join(table(got, regime)), flush=True)
    if ns.json is not None:
        ns.json.write_text(json.dumps([asdict(a) for a in arms], indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
