"""How often does the tune plan's verdict recommend a K that is too slow? Synthetic runs.

Each trial is a tune run with known true speeds: up to 12 interleaved rounds, each
remaining arm one block of measured steps after one settle request, the order
shuffled per round (schedule.round_order), blocks growing as arms are dropped
(schedule.grown_block), drops from round 3 and a decisive stop from round 4 (the
tune plan's defaults). Noise: per step, independent per arm, lognormal with the
scenario's CV; per round, a factor shared by every arm (CV 3%); optionally a slow
drift (the machine slows by 1% per round, continuously in time, so an arm's place in
the round's order matters) and a load phase (rounds 2-3: every arm 30% slower,
speculating arms another 5% plus 0.4% per drafted token, CV x1.5). The same prompts
serve every arm in a round (tokens per step shared by position).

Arms: nospec and fixed_1..8 with tokens/s from the speculative-decoding model
1000 E(K) / (t0 (1 + c K)), E(K) = (1 - a^(K+1)) / (1 - a):
  realistic a = 0.72, c = 0.19: best K = 3, K = 4 1.6% behind, K = 2 2.5% behind;
  close     a = 0.60, c = 0.2029: best K = 2, runner-up K = 3 3.0% behind;
  clear     a = 0.35, c = 0.50: speculation does not pay, K = 1 10% behind nospec;
  null      every arm at the same speed (draft counters from a = 0.72).
Rules, on the same scenarios:
  today          verdict.decide / newly_worse / stop_reason on StepSample rows, exactly
                 as the runner's round loop calls them, and the report's final verdict;
  pairs          race.Race (anytime-valid confidence sequences), fed per-round block
                 sums, each pair's variance from its own rounds: RaceConfig(pooled=False);
  pooled         race.Race as configured by default: one noise variance for all arms;
  screen(+pooled) two rounds of nospec, fixed_4, fixed_8, then screen.screen() picks the
                 arms (all of them when the model misses the middle arm), then the race.
"Wrong" = decisive, and the recommended arm's true tokens/s more than the tolerance
(2%) below the fastest arm's (steady speeds). A second table checks the coverage of
the reported 95% interval of fixed_3/fixed_4 after a fixed number of rounds.

    python benchmarks/decision_quality.py --jobs 2     # about 10 minutes on 2 idle cores
    python benchmarks/decision_quality.py --trials 300 --today-trials 30 --only moderate
    python benchmarks/decision_quality.py --only clear --rules pooled --block 8
"""

from __future__ import annotations

import argparse
import datetime as dt
import functools
import math
import multiprocessing
import os
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bootstrap_rule import decide, newly_worse, ratio, stop_reason  # noqa: E402

from halospec_tui.confseq import t_radius  # noqa: E402
from halospec_tui.controllers.model import tokens_per_pass  # noqa: E402
from halospec_tui.race import Figures, Race, RaceConfig, pair_table  # noqa: E402
from halospec_tui.schedule import grown_block, round_order, round_phase  # noqa: E402
from halospec_tui.screen import Counts, screen  # noqa: E402
from halospec_tui.stats import StepSample  # noqa: E402

ARMS = ["nospec"] + [f"fixed_{k}" for k in range(1, 9)]
K_OF = {a: (0 if a == "nospec" else int(a.split("_")[1])) for a in ARMS}
ROUNDS, BLOCK, SETTLE = 12, 4, 1  # the tune plan
MIN_ROUNDS, DROP_FROM = 4, 3
LOAD_ROUND, LOAD_ROUNDS = 2, 2
TOLERANCE = 0.02
T0_MS = 40.0  # nospec: ms per token
SCREEN_ARMS = ["nospec", "fixed_4", "fixed_8"]
SCREEN_ROUNDS = 2


@dataclass(frozen=True)
class Scenario:
    name: str
    cv: float  # per-step noise of tokens/s
    acceptance: float = 0.72
    cost: float = 0.19
    trend: float = 0.0  # per round
    load: bool = False
    flat: bool = False  # every arm the same speed
    round_cv: float = 0.03
    uneven: float = 0.0  # per-step CV x (1 - u + 2 u K / 8): nospec calmer, K = 8 noisier

    def speeds(self) -> np.ndarray:
        model = np.array(
            [
                1000.0 * tokens_per_pass(self.acceptance, k) / (T0_MS * (1.0 + self.cost * k))
                for k in range(9)
            ]  # fmt: skip
        )
        return np.full(9, model.max()) if self.flat else model


SCENARIOS = [
    Scenario("calm (CV 6%)", 0.06),
    Scenario("quiet", 0.12),
    Scenario("moderate", 0.15),
    Scenario("noisy", 0.20),
    Scenario("quiet drift -1%/round", 0.12, trend=-0.01),
    Scenario("moderate drift -1%/round", 0.15, trend=-0.01),
    Scenario("moderate load", 0.15, load=True),
    Scenario("moderate uneven +-30%", 0.15, uneven=0.3),
    Scenario("moderate uneven +-50%", 0.15, uneven=0.5),
    Scenario("null (all equal)", 0.15, flat=True),
    Scenario("clear (10% gap)", 0.15, acceptance=0.35, cost=0.50),
    Scenario("clear noisy", 0.20, acceptance=0.35, cost=0.50),
    Scenario("close (3% gap)", 0.15, acceptance=0.60, cost=0.2029),
]


# -- the synthetic server -------------------------------------------------------------------
@dataclass
class Block:
    tokens: np.ndarray
    ms: np.ndarray
    drafted: np.ndarray
    accepted: np.ndarray


def run_round(
    rng: np.random.Generator, sc: Scenario, rnd: int, order: Sequence[str], block: int
) -> dict[str, Block]:
    """One round: each arm in `order` runs SETTLE + block requests in turn."""
    speeds = sc.speeds()
    phase = round_phase(rnd, LOAD_ROUND if sc.load else None, LOAD_ROUNDS)
    cv = sc.cv * (1.5 if phase == "load" else 1.0)
    round_factor = math.exp(rng.normal(0.0, math.sqrt(math.log1p(sc.round_cv**2))))
    prompt_tokens = rng.integers(48, 129, size=block)  # the round's prompts, every arm
    per_arm = SETTLE + block
    slots = len(order) * per_arm
    out: dict[str, Block] = {}
    for pos, arm in enumerate(order):
        k = K_OF[arm]
        speed = speeds[k] * round_factor
        if phase == "load":
            speed *= 0.70 * ((0.95 - 0.004 * k) if k else 1.0)
        t = (rnd - 1) + (pos * per_arm + SETTLE + np.arange(block)) / slots
        drift = np.exp(math.log1p(sc.trend) * t)
        arm_cv = cv * (1.0 - sc.uneven + 2.0 * sc.uneven * k / 8.0)
        sigma = math.sqrt(math.log1p(arm_cv * arm_cv))
        # Noise on the time per token, mean one: an arm's long-run tokens/s is its speed.
        per_token_ms = (
            1000.0 / (speed * drift) * np.exp(rng.normal(-sigma * sigma / 2, sigma, block))
        )
        tokens = prompt_tokens.astype(float)
        a_step = np.clip(sc.acceptance + rng.normal(0.0, 0.05, size=block), 0.05, 0.98)
        if k:
            per_pass = (1.0 - a_step ** (k + 1)) / (1.0 - a_step)  # E(K) at each step's a
            passes = np.maximum(1.0, np.round(tokens / per_pass))
        else:
            passes = tokens
        out[arm] = Block(tokens, np.round(tokens * per_token_ms), passes * k, tokens - passes)
    return out


@dataclass
class Outcome:
    decisive: bool
    recommended: str | None
    rounds: int
    requests: int
    dropped: tuple[str, ...] = ()
    epsilon: float = math.nan  # race: the recommended arm certified epsilon-good at the end
    cs_miss: bool = False  # race: a sequence of a pair with the fastest arm ever missed
    fit_ok: bool | None = None


# -- the rules -----------------------------------------------------------------------------
def run_today(sc: Scenario, trial: int, seed: int) -> Outcome:
    """verdict.decide / newly_worse / stop_reason as the runner's round loop calls them."""
    rng = np.random.default_rng([seed, trial, 1])
    remaining, dropped = list(ARMS), list[tuple[str, int]]()
    samples: list[StepSample] = []
    load_round = LOAD_ROUND if sc.load else None
    first_stop = max(MIN_ROUNDS, LOAD_ROUND + LOAD_ROUNDS if load_round else 0)
    requests, rnd = 0, 0
    for rnd in range(1, ROUNDS + 1):
        size = grown_block(BLOCK, len(ARMS), len(remaining))
        order = round_order(remaining, trial, rnd)
        phase = round_phase(rnd, load_round, LOAD_ROUNDS)
        for arm, b in run_round(rng, sc, rnd, order, size).items():
            samples += [StepSample(arm, K_OF[arm], True, int(ms), int(tok), phase=phase, round=rnd)
                        for tok, ms in zip(b.tokens, b.ms, strict=True)]  # fmt: skip
        requests += len(order) * (SETTLE + size)
        verdict = decide(samples, tolerance=TOLERANCE, eliminated=dropped, with_phases=False)
        if rnd >= DROP_FROM:
            for arm in newly_worse(verdict):
                if arm in remaining and len(remaining) > 1:
                    remaining.remove(arm)
                    dropped.append((arm, rnd))
        reason = stop_reason(verdict, rnd, min_rounds=first_stop, max_rounds=ROUNDS,
                             elapsed_s=0.0, max_time_s=None)  # fmt: skip
        if reason is not None:
            break
    # The report's verdict: an arm dropped after the last round still ran in it.
    final = decide(samples, tolerance=TOLERANCE, eliminated=[d for d in dropped if d[1] < rnd],
                   with_phases=False)  # fmt: skip
    return Outcome(final.decisive, final.recommended, rnd, requests, tuple(a for a, _ in dropped))


def run_race(sc: Scenario, trial: int, seed: int, screened: bool, pooled: bool) -> Outcome:
    """race.Race, optionally after screen.screen(): the stop and drops the runner will use."""
    rng = np.random.default_rng([seed, trial, 2 if screened else 3])
    speeds = sc.speeds()
    first_stop = max(MIN_ROUNDS, LOAD_ROUND + LOAD_ROUNDS if sc.load else 0)
    config = RaceConfig(tolerance=TOLERANCE, min_rounds=first_stop, drop_from=DROP_FROM,
                        pooled=pooled)  # fmt: skip
    history: list[dict[str, Block]] = []
    requests, fit_ok, miss = 0, None, False
    alive = list(SCREEN_ARMS if screened else ARMS)
    race: Race | None = None
    for rnd in range(1, ROUNDS + 1):
        size = grown_block(BLOCK, len(ARMS), len(alive))
        data = run_round(rng, sc, rnd, round_order(alive, trial, rnd), size)
        requests += len(alive) * (SETTLE + size)
        history.append(data)
        if race is None and (not screened or rnd == SCREEN_ROUNDS):
            race_arms = ARMS
            if screened:
                counts = [{K_OF[a]: Counts(b.tokens.sum(), b.ms.sum(), b.drafted.sum(),
                                           b.accepted.sum()) for a, b in h.items()}
                          for h in history]  # fmt: skip
                sc_out = screen(counts, range(9), TOLERANCE)
                fit_ok = sc_out.fit_ok
                race_arms = [a for a in ARMS if K_OF[a] in sc_out.race]
            race = Race({a: K_OF[a] for a in race_arms}, config)
            for r, h in enumerate(history[:-1], start=1):
                race.add_round(r, _figures(h))
                miss = miss or _cs_missed(race, speeds)
        if race is None:
            continue
        status = race.add_round(rnd, _figures(data))
        miss = miss or _cs_missed(race, speeds)
        alive = list(status.survivors)
        if status.decisive:
            break
    assert race is not None
    st = race.status
    return Outcome(st.decisive, st.recommended, rnd, requests, tuple(d.arm for d in st.dropped),
                   st.epsilon_of(st.recommended or ""), miss, fit_ok)  # fmt: skip


RACE_RULES = ("pairs", "pooled", "screen", "screen+pooled")
DEFAULT_RULES = "today,pairs,pooled,screen+pooled"


def _race_rule(name: str) -> Callable[[Scenario, int, int], Outcome]:
    # a partial of a module-level function: it pickles, for --jobs
    return functools.partial(run_race, screened="screen" in name, pooled="pooled" in name)


def _figures(data: dict[str, Block]) -> dict[str, Figures]:
    return {
        a: Figures(float(b.tokens.sum()), float(b.ms.sum()), len(b.ms)) for a, b in data.items()
    }


def _cs_missed(race: Race, speeds: np.ndarray) -> bool:
    """Does a sequence of a pair with the fastest arm (the one the guarantee rests on)
    exclude the steady truth at this round?"""
    best = ARMS[int(np.argmax(speeds))]
    table = race.last_table
    if table is None or best not in race.names:
        return False
    radius = table.radius(race.alpha_pair, race.config.prior)
    b = race.names.index(best)
    for j, arm in enumerate(race.names):
        truth = math.log(speeds.max() / speeds[K_OF[arm]])
        if j != b and table.df[b, j] >= 1 and abs(table.mean[b, j] - truth) > radius[b, j]:
            return True
    return False


# -- coverage of the reported intervals at a fixed number of rounds ------------------------------
def coverage(
    sc: Scenario, trials: int, seed: int, rounds: Sequence[int]
) -> dict[int, tuple[float, float]]:
    """fixed_3 / fixed_4 tokens/s after n rounds (every arm every round, no stop): how often
    today's bootstrap interval (verdict.ratio) and the race's Student-t interval hold the
    truth (the mean over those rounds of the true log ratio, load rounds included)."""
    pair = ("fixed_3", "fixed_4")
    hits = {n: [0, 0] for n in rounds}
    for t in range(trials):
        rng = np.random.default_rng([seed, t, 4])
        data = [run_round(rng, sc, r, round_order(list(pair), t, r), BLOCK)
                for r in range(1, max(rounds) + 1)]  # fmt: skip
        for n in rounds:
            truth = float(np.mean([_true_log_ratio(sc, r, *pair) for r in range(1, n + 1)]))
            rows = {a: [StepSample(a, K_OF[a], True, int(ms), int(tok), round=r,
                                   phase=round_phase(r, LOAD_ROUND if sc.load else None, LOAD_ROUNDS))
                        for r in range(1, n + 1)
                        for tok, ms in zip(data[r - 1][a].tokens, data[r - 1][a].ms, strict=True)]
                    for a in pair}  # fmt: skip
            est = ratio(rows[pair[0]], rows[pair[1]], seed, "coverage")
            hits[n][0] += est is not None and est.lo <= math.exp(truth) <= est.hi
            x = np.log([[float(d[a].tokens.sum()) * 1000 / float(d[a].ms.sum()) for a in pair]
                        for d in data[:n]])  # fmt: skip
            m = pair_table(x, np.full(x.shape, float(BLOCK))).of(0, 1)
            hits[n][1] += abs(m.mean - truth) <= t_radius(m)
    return {n: (h[0] / trials, h[1] / trials) for n, h in hits.items()}


def _true_log_ratio(sc: Scenario, rnd: int, a: str, b: str) -> float:
    speeds = sc.speeds()
    load = round_phase(rnd, LOAD_ROUND if sc.load else None, LOAD_ROUNDS) == "load"

    def factor(k: int) -> float:
        return (0.95 - 0.004 * k) if (load and k) else 1.0

    return math.log(speeds[K_OF[a]] * factor(K_OF[a]) / (speeds[K_OF[b]] * factor(K_OF[b])))


# -- the table ------------------------------------------------------------------------------
@dataclass
class Tally:
    outcomes: list[Outcome] = field(default_factory=list)
    seconds: float = 0.0

    def row(self, sc: Scenario) -> dict[str, float]:
        speeds = sc.speeds()
        top = speeds.max()
        n = len(self.outcomes)

        def slower(arm: str | None) -> float:  # log(fastest / arm)
            return math.inf if arm is None else math.log(top / speeds[K_OF[arm]])

        tol = math.log1p(TOLERANCE)
        dec = [o for o in self.outcomes if o.decisive]
        wrong = [o for o in dec if slower(o.recommended) > tol]
        undecided = [o for o in self.outcomes if not o.decisive]
        eps = [o.epsilon for o in undecided if math.isfinite(o.epsilon)]
        # Undecided runs still state "K is within eps of the fastest": how often is that false?
        false_claims = [o for o in undecided if o.recommended and math.isfinite(o.epsilon)
                        and math.expm1(slower(o.recommended)) > o.epsilon + 1e-12]  # fmt: skip
        bad_drops = [o for o in self.outcomes if any(slower(a) <= tol for a in o.dropped)]
        fits = [o.fit_ok for o in self.outcomes if o.fit_ok is not None]
        return {
            "n": n,
            "decisive": len(dec) / n,
            "wrong": len(wrong) / n,
            "wrong_hi": wilson_upper(len(wrong), n),
            "wrong_dec": len(wrong) / len(dec) if dec else math.nan,
            "bad_drop": len(bad_drops) / n,
            "rounds_dec": float(np.mean([o.rounds for o in dec])) if dec else math.nan,
            "req_dec": float(np.mean([o.requests for o in dec])) if dec else math.nan,
            "req_all": float(np.mean([o.requests for o in self.outcomes])),
            "eps_median": float(np.median(eps)) if eps else math.nan,
            "false_claims": len(false_claims) / n,
            "cs_miss": sum(o.cs_miss for o in self.outcomes) / n,
            "fit_ok": sum(fits) / len(fits) if fits else math.nan,
            "ms_per_trial": 1000.0 * self.seconds / n,  # wall clock (with --jobs: shared)
        }  # fmt: skip


def wilson_upper(k: int, n: int, z: float = 1.96) -> float:
    p = k / n
    centre = p + z * z / (2 * n)
    spread = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n))
    return (centre + spread) / (1 + z * z / n)


def run(
    rule: Callable[[Scenario, int, int], Outcome], sc: Scenario, trials: int, seed: int, jobs: int
) -> Tally:
    tally = Tally()
    start = time.perf_counter()
    if jobs > 1:  # forked workers see the settings main() set
        with multiprocessing.get_context("fork").Pool(jobs) as pool:
            args = [(sc, t, seed) for t in range(trials)]
            tally.outcomes = pool.starmap(rule, args, chunksize=max(1, trials // (8 * jobs)))
    else:
        tally.outcomes = [rule(sc, t, seed) for t in range(trials)]
    tally.seconds = time.perf_counter() - start
    return tally


def fmt(v: float, pct: bool = False, digits: int = 1) -> str:
    if math.isnan(v):
        return "-"
    return f"{v * 100:.{digits}f}%" if pct else f"{v:.{digits}f}"


COLUMNS = [  # (title, key, width, percent, digits)
    ("decisive", "decisive", 8, True, 1), ("wrong", "wrong", 6, True, 1),
    ("<=95%", "wrong_hi", 6, True, 1), ("wr/dec", "wrong_dec", 6, True, 0),
    ("baddrop", "bad_drop", 7, True, 1), ("rounds", "rounds_dec", 6, False, 1),
    ("req/dec", "req_dec", 7, False, 0), ("req/run", "req_all", 7, False, 0),
    ("eps med", "eps_median", 7, True, 1), ("false", "false_claims", 5, True, 1),
    ("CSmiss", "cs_miss", 6, True, 1), ("fit ok", "fit_ok", 6, True, 0),
    ("ms/tr", "ms_per_trial", 6, False, 0),
]  # fmt: skip
HEADER = f"{'scenario':<25} {'rule':<13} {'trials':>6} " + " ".join(
    f"{c[0]:>{c[2]}}" for c in COLUMNS
)


def line(sc: Scenario, rule: str, r: dict[str, float]) -> str:
    cells = " ".join(f"{fmt(r[key], pct, d):>{w}}" for _, key, w, pct, d in COLUMNS)
    return f"{sc.name:<25} {rule:<13} {int(r['n']):>6} {cells}"


def print_header(seed: int) -> None:
    load = os.getloadavg()
    print(f"# decision quality, {dt.datetime.now().isoformat(timespec='seconds')}, "
          f"load {load[0]:.2f} {load[1]:.2f} {load[2]:.2f} on {os.cpu_count()} cores, seed {seed}")  # fmt: skip
    print(f"# tolerance {TOLERANCE * 100:g}%, alpha 5%, {ROUNDS} rounds max, block {BLOCK} "
          f"(grown as arms drop), settle {SETTLE}, drops from round {DROP_FROM}, stop from "
          f"round {MIN_ROUNDS}")  # fmt: skip
    print(
        "# wrong: decisive and the recommended arm more than the tolerance slower than the "
        "fastest, share of trials; <=95%: its Wilson upper bound; wr/dec: share of decisive runs"
    )
    print(
        "# baddrop: runs that dropped an arm within the tolerance of the fastest; rounds, "
        "req/dec: mean over decisive runs; req/run: mean over all runs"
    )
    print(
        "# eps med: undecided runs' certified epsilon (median); false: undecided runs whose "
        "epsilon claim is false; CSmiss: a sequence with the fastest arm ever excluded the truth"
    )


def main(argv: Sequence[str] | None = None) -> None:
    global DROP_FROM, BLOCK, TOLERANCE
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument(
        "--trials", type=int, default=1000, help="trials of the race rules per scenario"
    )
    ap.add_argument("--today-trials", type=int, default=100, help="trials of today's (slow) rule")
    ap.add_argument("--coverage-trials", type=int, default=300, help="0: skip the coverage table")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--jobs", type=int, default=1, help="worker processes (the machine is shared)")
    ap.add_argument("--only", default="", help="scenarios whose name contains this")
    ap.add_argument(
        "--rules", default=DEFAULT_RULES, help="comma-separated, of: today," + ",".join(RACE_RULES)
    )
    ap.add_argument("--drop-from", type=int, default=DROP_FROM, help="first round that may drop")
    ap.add_argument("--block", type=int, default=BLOCK, help="measured steps per arm per round")
    ap.add_argument(
        "--tolerance", type=float, default=TOLERANCE, help="of the decision (0.02: 2%%)"
    )
    args = ap.parse_args(argv)
    DROP_FROM, BLOCK, TOLERANCE = args.drop_from, args.block, args.tolerance
    began = time.perf_counter()
    print_header(args.seed)
    print(HEADER)
    rules: list[tuple[str, Callable[[Scenario, int, int], Outcome], int]] = [
        ("today", run_today, args.today_trials),
        *((name, _race_rule(name), args.trials) for name in RACE_RULES),
    ]
    chosen = set(args.rules.split(","))
    for sc in SCENARIOS:
        if args.only and args.only not in sc.name:
            continue
        for name, rule, trials in rules:
            if trials > 0 and name in chosen:
                tally = run(rule, sc, trials, args.seed, args.jobs)
                print(line(sc, name, tally.row(sc)), flush=True)
    if args.coverage_trials > 0:
        print(
            f"\n# coverage of the reported 95% interval of fixed_3/fixed_4 after n rounds, "
            f"{args.coverage_trials} trials: today's bootstrap / the race's Student-t"
        )
        for sc in (
            next(s for s in SCENARIOS if s.name == "moderate"),
            next(s for s in SCENARIOS if s.load),
        ):
            cov = coverage(sc, args.coverage_trials, args.seed, (3, 4, 8, 12))
            print(f"{sc.name:<25} " + "  ".join(f"n={n}: {b * 100:.0f}% / {t * 100:.0f}%"
                                               for n, (b, t) in cov.items()), flush=True)  # fmt: skip
    print(f"# {time.perf_counter() - began:.0f} s")


if __name__ == "__main__":
    main()
