"""Decoding physics of the embedded server.

Every draft step and every target verification pass is real numpy work, sized from a
calibration at start-up, so CPU contention slows it exactly as it slows a CPU server.
Acceptance is a seeded stochastic process: the drafted token at position i of a pass
(0 first) is accepted with probability a_i = a * acceptance_decay^i until the first
rejection, and the target adds one token per pass (Leviathan et al., 2023, when the
decay is 1). `a` depends on the prompt and may drift over requests.

A pass with d drafted tokens costs, in unloaded milliseconds,

    d * draft_ratio * T  +  T * (1 + verify_per_token * d + verify_quadratic * d^2)
    + pass_overhead_ms  +  spec_overhead_ms (when it drafted)

with T = target_ms: d draft steps, the target verifying d + 1 tokens (growing faster
than linearly in d when verify_quadratic > 0), a fixed cost per pass (sampling,
scheduling) and a fixed cost of running the draft at all. A reload pauses
reload_ms + model_mb * load_ms_per_mb. The adaptive model controller assumes none of
this: i.i.d. acceptance and a pass cost t0 + t1 * d.

The new parameters' defaults are fitted to the real llama-server pairs of
`halospec_tui.tiny_gguf` (FIT below); with acceptance_decay 1 and verify_quadratic,
pass_overhead_ms, spec_overhead_ms and model_mb at 0 the physics is exactly the
earlier one. REAL_PAIRS holds one SimParams per pair that reproduces its regime.

FIT (2026-12-06; the suite's llama-server 11434 built at -O1, -t 1 -td 1, 2-core
Xeon shared with other work, load 2.2-4.7; benchmarks/real_pairs.py --rounds 10
--max-tokens 128 --prompt-chars 8, then benchmarks/fit_sim.py; pass cost from the
timings, predicted_ms per pass, against d drafted tokens per pass, K 0..8):
- acceptance per draft position (/metrics accepted-per-position counters, every K):
  a_i = a decay^i with decay 1.000 (loses, a 0.965), 1.000 (large, a 0.963) and
  1.03 (mid, a 0.67; above 1 only because prompts that draft well survive to later
  positions). No decay: acceptance_decay 1.
- pass cost T + s [d > 0] + b d + w d^2: loses T 0.39 ms, s 0.17 ms, b 0.56 ms
  (1.4 T), w -0.02 ms; mid T 27.6 ms, s -0.5 ms, b 8.2 ms (0.30 T), w -0.08 ms;
  large T 27.2 ms, s 0.6 ms, b 7.5 ms (0.28 T), w 0.005 ms (rmse 0.13, 1.2, 1.4 ms;
  the server's CPU time per pass gives b within 20%, the same signs). No quadratic term:
  verify_quadratic 0. A fixed cost per pass, of which the 1.6 MB pair's whole pass
  (0.39 ms) is an upper bound: pass_overhead_ms 0.35; a fixed cost of drafting at all,
  clear on the small pair (0.17-0.27 ms, 0.4-0.7 of its pass) and lost in the noise
  on the wide ones: spec_overhead_ms 0.2. On the wide pairs verifying 3 tokens costs
  more than the line says (K 1 -> 2 adds 11.8 ms where the other steps add 5-8.5 ms), a
  step the physics does not model.
- restart of llama-server with the files in the page cache: 100 ms for the 1.6 MB
  pair, 331 ms for the 286 MB ones (medians of 4, load 4-6): load_ms_per_mb 0.8
  (model_mb stays 0, so reload_ms alone is the pause unless a size is given).
"""

from __future__ import annotations

import hashlib
import math
import re
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field

import numpy as np

PROFILES = ("steady", "shift", "drift")
WORDS = [
    "speculative",
    "decoding",
    "drafts",
    "several",
    "tokens",
    "with",
    "a",
    "small",
    "model",
    "and",
    "the",
    "large",
    "model",
    "verifies",
    "them",
    "in",
    "one",
    "pass",
    "keeping",
    "every",
    "token",
    "it",
    "agrees",
    "with",
    "so",
    "the",
    "answer",
    "stays",
    "exactly",
    "the",
    "same",
    "while",
    "fewer",
    "expensive",
    "passes",
    "are",
    "needed",
    "on",
    "the",
    "critical",
    "path",
]


@dataclass(frozen=True)
class SimParams:
    model: str = "Qwen3-0.6B-GGUF"
    target_ms: float = 6.0  # one target pass over one token, unloaded
    draft_ratio: float = 0.15  # c: one draft step relative to one target pass
    verify_per_token: float = 0.04  # extra target cost per drafted token verified
    prompt_ms_per_token: float = 0.05  # prompt processing per prompt token
    acceptance: float = 0.72  # mean per-token acceptance
    acceptance_spread: float = 0.15  # +- per prompt
    profile: str = "steady"  # steady | shift | drift
    shift_every: int = 40  # requests between workload shifts (shift, drift)
    seed: int = 0
    draft_n_max: int = 3  # K at launch (llama-server's default is 3)
    honor_request_draft: bool = False  # per-request speculative.n_max (old llama-server)
    reload_ms: float = 400.0  # pause of a /load that changes settings
    fault: str = ""  # e.g. "500:0.1,timeout:0.05" (see faults.py)
    report_timings: bool = True  # llama.cpp `timings` in answers (else only /metrics)
    nature_shift: float = 0.2  # acceptance + for structured prompts, - for open ones
    confidence_kappa: float = 6.0  # draft confidence ~ Beta(a kappa, (1 - a) kappa)
    acceptance_decay: float = 1.0  # a_i = a * decay^i at draft position i (0 first)
    verify_quadratic: float = 0.0  # extra target cost per drafted token squared
    pass_overhead_ms: float = 0.35  # fixed cost of every pass (sampling, scheduling)
    spec_overhead_ms: float = 0.2  # fixed cost of a pass that drafts (running the draft)
    model_mb: float = 0.0  # size of the model files a reload loads
    load_ms_per_mb: float = 0.8  # reload time per MB, on top of reload_ms

    def to_dict(self) -> dict[str, object]:
        return asdict(self)


# The tiny pairs' regimes in the embedded server (FIT above), at the default target_ms:
# the same acceptance and the same costs relative to a pass (the real passes take 0.39
# and 27 ms). Their random weights draft no prompt better for its words: no nature shift.
REAL_PAIRS: dict[str, SimParams] = {
    # b 1.4 T (draft steps 0.6, verification 0.8), drafting at all 0.5 T
    "loses": SimParams(acceptance=0.965, acceptance_spread=0.01, nature_shift=0.0,
                       draft_ratio=0.6, verify_per_token=0.8, pass_overhead_ms=0.0,
                       spec_overhead_ms=3.0),
    # b 0.30 T: a 1-layer draft of a 9-layer target (0.11) and verification (0.19)
    "mid": SimParams(acceptance=0.7, acceptance_spread=0.05, nature_shift=0.0,
                     draft_ratio=0.11, verify_per_token=0.19, pass_overhead_ms=0.0,
                     spec_overhead_ms=0.0),
    "large": SimParams(acceptance=0.965, acceptance_spread=0.01, nature_shift=0.0,
                       draft_ratio=0.11, verify_per_token=0.17, pass_overhead_ms=0.0,
                       spec_overhead_ms=0.0),
}  # fmt: skip


def prompt_hash(text: str) -> int:
    return int.from_bytes(hashlib.blake2b(text.encode(), digest_size=8).digest(), "big")


_STRUCTURED = re.compile(
    r"\b(list|count|counts|python|sql|json|yaml|function|multiplied|comma|commas|numbers)\b", re.I
)
_OPEN = re.compile(r"\b(haiku|limerick|poem|story|email|apology|describe|summarise|why)\b", re.I)


def prompt_nature(prompt: str) -> str:
    """structured (lists, code, counting: drafted well on real models), open (creative
    prose: drafted poorly) or neutral, from the prompt's words."""
    if _STRUCTURED.search(prompt):
        return "structured"
    if _OPEN.search(prompt):
        return "open"
    return "neutral"


def acceptance_for(params: SimParams, prompt: str, request_no: int) -> float:
    """Per-token acceptance for one request: the prompt's nature and difficulty, plus
    workload drift."""
    u = (prompt_hash(prompt) % 10_000) / 9_999.0
    a = params.acceptance + params.acceptance_spread * (2.0 * u - 1.0)
    nature = prompt_nature(prompt)
    if nature != "neutral":
        a += params.nature_shift if nature == "structured" else -params.nature_shift
    if params.profile == "shift":
        a += 0.12 if (request_no // max(params.shift_every, 1)) % 2 == 0 else -0.2
    elif params.profile == "drift":
        a += 0.15 * math.sin(2 * math.pi * request_no / max(3 * params.shift_every, 1))
    return min(max(a, 0.02), 0.98)


def position_acceptance(params: SimParams, a: float, k: int) -> list[float]:
    """a_i = a * acceptance_decay^i for the draft positions i = 0 .. k - 1."""
    return [a * params.acceptance_decay**i for i in range(k)]


def pass_cost_ms(params: SimParams, drafted: int, attempted: int | None = None) -> float:
    """Unloaded ms of one pass that verifies `drafted` tokens after `attempted` draft
    steps (default: as many; with p_min the last step may be dropped)."""
    steps = drafted if attempted is None else attempted
    t = params.target_ms
    verify = t * (1.0 + params.verify_per_token * drafted + params.verify_quadratic * drafted**2)
    spec = params.spec_overhead_ms if steps > 0 else 0.0
    return t * params.draft_ratio * steps + verify + params.pass_overhead_ms + spec


def _expected(acc: Sequence[float], tokens: int, cost: Sequence[float]) -> float:
    """Expected total of cost[d] over the passes that produce `tokens`, when a pass
    drafts d = min(K, tokens left - 1) (K = len(acc)) and accepts its first j drafts
    with probability acc[0] ... acc[j-1] (1 - acc[j]) (exact, by recursion over the
    tokens left)."""
    e = [0.0] * (tokens + 1)
    for left in range(1, tokens + 1):
        d = min(len(acc), left - 1)
        total = cost[d]
        reach = 1.0  # P(the first j drafts accepted)
        for j in range(d + 1):
            p = reach * ((1.0 - acc[j]) if j < d else 1.0)
            total += p * e[left - (j + 1)]
            if j < d:
                reach *= acc[j]
        e[left] = total
    return e[tokens]


def expected_passes(a: float, k: int, tokens: int) -> float:
    """Expected verification passes to produce `tokens`, drafts capped at the tokens left
    (exact, by recursion over the tokens left; i.i.d. acceptance a)."""
    return _expected([a] * k, tokens, [1.0] * (k + 1))


def expected_request_ms(params: SimParams, a: float, k: int, tokens: int = 64) -> float:
    """Expected decode time of one request at acceptance a and draft length k (p_min 0),
    in unloaded ms: the cost of each pass, drafts capped at the tokens left."""
    cost = [pass_cost_ms(params, d) for d in range(k + 1)]
    return _expected(position_acceptance(params, a, k), tokens, cost)


def expected_decode_ms(
    params: SimParams, k: int, prompts: Sequence[str], tokens: int = 64
) -> float:
    """Mean decode time of a request over `prompts` at draft length k (p_min 0), in
    unloaded milliseconds."""
    total = 0.0
    for i, prompt in enumerate(prompts):
        total += expected_request_ms(params, acceptance_for(params, prompt, i), k, tokens)
    return total / max(len(prompts), 1)


def expected_speedup(
    a: float,
    c: float,
    k: int,
    v: float = 0.0,
    decay: float = 1.0,
    w: float = 0.0,
    spec_overhead: float = 0.0,
    pass_overhead: float = 0.0,
) -> float:
    """Tokens per unit of time relative to plain decoding, drafts never capped: tokens
    per pass 1 + sum_j prod_{i<j} a_i over cost per pass 1 + (c + v) k + w k^2 (+ the
    overheads, relative to a target pass: `spec_overhead` when k > 0, `pass_overhead`
    on every pass, plain decoding too)."""
    tokens, reach = 1.0, 1.0
    for i in range(k):
        reach *= a * decay**i
        tokens += reach
    cost = 1.0 + (c + v) * k + w * k * k + pass_overhead + (spec_overhead if k > 0 else 0.0)
    return tokens * (1.0 + pass_overhead) / cost


def reload_pause_ms(params: SimParams) -> float:
    """How long a reload that changes settings pauses the server."""
    return params.reload_ms + params.model_mb * params.load_ms_per_mb


class Engine:
    """Real work: float32 matvec chains whose size is calibrated to milliseconds."""

    DIM = 192

    def __init__(self, params: SimParams) -> None:
        self.params = params
        rng = np.random.default_rng(1234)
        self._w = (rng.standard_normal((self.DIM, self.DIM)) / math.sqrt(self.DIM)).astype(
            np.float32
        )
        self._x = rng.standard_normal(self.DIM).astype(np.float32)
        self.unit_ms = self._calibrate()

    def _spin(self, units: int) -> float:
        x = self._x
        w = self._w
        for _ in range(units):
            x = np.tanh(w @ x)
        return float(x[0])

    def _calibrate(self) -> float:
        self._spin(200)
        best = math.inf
        for _ in range(5):
            t = time.perf_counter()
            self._spin(400)
            best = min(best, (time.perf_counter() - t) * 1000.0 / 400)
        return best

    def work_ms(self, ms: float) -> None:
        """Do `ms` milliseconds' worth (unloaded) of compute."""
        units = max(1, round(ms / self.unit_ms))
        self._spin(units)


@dataclass
class Generation:
    tokens: int = 0
    drafted: int = 0
    accepted: int = 0
    passes: int = 0
    prompt_ms: float = 0.0
    predicted_ms: float = 0.0
    pieces: list[str] = field(default_factory=list)


def _one_pass(
    engine: Engine, rng: np.random.Generator, acc: Sequence[float], d: int, p_min: float
) -> tuple[int, int]:
    """Draft up to d tokens and verify them, doing the work; (drafted, accepted)."""
    p = engine.params
    kappa = max(p.confidence_kappa, 1e-3)
    conf: list[float] = []  # with p_min: the draft's confidence in each kept token
    steps = d
    if p_min > 0:
        for i in range(d):
            engine.work_ms(p.target_ms * p.draft_ratio)
            q = float(rng.beta(acc[i] * kappa, (1.0 - acc[i]) * kappa))
            if q < p_min:
                steps = i + 1
                break
            conf.append(q)
        d = len(conf)
    else:
        for _ in range(d):
            engine.work_ms(p.target_ms * p.draft_ratio)
    engine.work_ms(pass_cost_ms(p, d, steps) - p.target_ms * p.draft_ratio * steps)
    ok = 0
    if p_min > 0:
        while ok < d and rng.random() < conf[ok]:
            ok += 1
    while p_min <= 0 and ok < d and rng.random() < acc[ok]:
        ok += 1
    return d, ok


def generate(
    engine: Engine,
    prompt: str,
    max_tokens: int,
    k: int,
    request_no: int,
    cached_prompt_tokens: int = 0,
    on_pass: object = None,
    p_min: float = 0.0,
) -> Generation:
    """Decode `max_tokens` tokens with draft length k, doing the real work as it goes.

    With p_min > 0 (llama.cpp's --spec-draft-p-min), each drafted token carries the
    draft's confidence, drawn around its position's acceptance a_i; drafting stops at
    the first token whose confidence is below p_min (its draft step is paid, the token
    dropped), and each kept token is accepted with its own confidence as probability.
    """
    p = engine.params
    g = Generation()
    prompt_tokens = max(1, len(prompt) // 4)
    t0 = time.perf_counter()
    engine.work_ms(p.prompt_ms_per_token * max(prompt_tokens - cached_prompt_tokens, 0) + 0.01)
    g.prompt_ms = (time.perf_counter() - t0) * 1000.0
    acc = position_acceptance(p, acceptance_for(p, prompt, request_no), k)
    rng = np.random.default_rng([p.seed, prompt_hash(prompt) % (2**32), request_no])
    word_rng = np.random.default_rng(prompt_hash(prompt) % (2**32))
    t1 = time.perf_counter()
    while g.tokens < max_tokens:
        d, ok = _one_pass(engine, rng, acc, min(k, max_tokens - g.tokens - 1), p_min)
        new = ok + 1
        g.drafted += d
        g.accepted += ok
        g.passes += 1
        g.tokens += new
        piece = "".join(WORDS[int(i)] + " " for i in word_rng.integers(0, len(WORDS), new))
        g.pieces.append(piece)
        if callable(on_pass):
            on_pass(piece)
    g.predicted_ms = (time.perf_counter() - t1) * 1000.0
    return g
