"""Time a real llama-server on a model pair at several draft lengths, side by side.

One llama-server per K is started at once (K is a launch flag; the weights are
memory-mapped, so the servers share one copy of each file), and requests go to them in
rounds: each round sends the same prompt to every K, in an order shuffled per round, so
a machine that slows down or speeds up mid-run weighs on every K alike. Per request:
decode tokens/s from the server's own `timings`, end-to-end tokens/s as the client sees
it, and the server's CPU time (which a busy machine inflates far less than wall time:
a single-threaded server's CPU time is its work, whoever else runs beside it). Per K,
the speculative counters of `/metrics` (accepted drafts per draft position).

Used by `benchmarks/real_pairs.py` (the truth table of the tiny pairs) and the tests
that pin each pair's regime. The servers are started and owned through the
llama-server actuator, so they are tagged, watched and reaped like any server the
harness starts.
"""

from __future__ import annotations

import contextlib
import random
import re
import time
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from pathlib import Path

import httpx
import psutil

from halospec_tui.llama_server import LlamaServerActuator, LlamaServerConfig

REQUEST_TIMEOUT_S = 120.0
_PER_POS = re.compile(
    r'^llamacpp:spec_decode_num_accepted_tokens_per_pos_total\{position="(\d+)"\}\s+([0-9.eE+]+)',
    re.M,
)
_COUNTER = re.compile(r"^llamacpp:(spec_decode_num_[a-z_]+_total)\s+([0-9.eE+]+)", re.M)


@dataclass(frozen=True)
class Sample:
    """One answered request."""

    k: int
    prompt_n: int
    prompt_ms: float
    predicted_n: int
    predicted_ms: float
    drafted: int
    accepted: int
    wall_ms: float  # request sent to answer read, on the client
    cpu_ms: float  # the server's CPU time (user + system) over the request

    @property
    def decode_tps(self) -> float:
        return 1000.0 * self.predicted_n / self.predicted_ms

    @property
    def e2e_tps(self) -> float:
        return 1000.0 * self.predicted_n / self.wall_ms

    @property
    def cpu_tps(self) -> float:
        """Tokens per CPU second of the server, prompt processing included."""
        return 1000.0 * self.predicted_n / self.cpu_ms


@dataclass(frozen=True)
class SpecCounters:
    """llama-server's speculative counters (`/metrics`)."""

    drafts: int  # drafts verified (passes that carried a draft)
    draft_tokens: int
    accepted: int
    accepted_per_pos: tuple[int, ...]  # accepted at draft position 0, 1, ...

    def minus(self, other: SpecCounters) -> SpecCounters:
        n = max(len(self.accepted_per_pos), len(other.accepted_per_pos))
        a = self.accepted_per_pos + (0,) * (n - len(self.accepted_per_pos))
        b = other.accepted_per_pos + (0,) * (n - len(other.accepted_per_pos))
        return SpecCounters(
            self.drafts - other.drafts,
            self.draft_tokens - other.draft_tokens,
            self.accepted - other.accepted,
            tuple(x - y for x, y in zip(a, b, strict=True)),
        )


def parse_spec_counters(text: str) -> SpecCounters:
    counters = {name: int(float(v)) for name, v in _COUNTER.findall(text)}
    per_pos = {int(p): int(float(v)) for p, v in _PER_POS.findall(text)}
    n = max(per_pos) + 1 if per_pos else 0
    return SpecCounters(
        drafts=counters.get("spec_decode_num_drafts_total", 0),
        draft_tokens=counters.get("spec_decode_num_draft_tokens_total", 0),
        accepted=counters.get("spec_decode_num_accepted_tokens_total", 0),
        accepted_per_pos=tuple(per_pos.get(i, 0) for i in range(n)),
    )


def server_args(threads: int) -> str:
    """One slot, a small context, `threads` for the target and for the draft."""
    return f"-np 1 -c 1024 -t {threads} -td {threads}"


def process_cpu_s(pid: int) -> float:
    """CPU seconds of a process, all its threads: to the nanosecond from the scheduler's
    per-thread counters (/proc/PID/task/*/schedstat), else psutil's (clock ticks, 10 ms:
    too coarse for a request of a few tens of ms)."""
    total_ns = 0
    try:
        for task in Path(f"/proc/{pid}/task").iterdir():
            with contextlib.suppress(FileNotFoundError, ProcessLookupError):
                total_ns += int((task / "schedstat").read_text().split()[0])
    except OSError:
        t = psutil.Process(pid).cpu_times()
        return float(t.user + t.system)
    return total_ns / 1e9


@dataclass
class Server:
    """One llama-server of the pair at draft length k."""

    k: int
    url: str
    pid: int
    client: httpx.Client

    def cpu_s(self) -> float:
        return process_cpu_s(self.pid)

    def counters(self) -> SpecCounters:
        return parse_spec_counters(self.client.get("/metrics", timeout=10).text)


@contextmanager
def servers(
    binary: str, target: Path, draft: Path, ks: Sequence[int], threads: int = 1
) -> Iterator[dict[int, Server]]:
    """A llama-server of the pair per K (0: no draft model, `--spec-type none`),
    started concurrently; all stopped on the way out."""
    cfg = LlamaServerConfig(binary, str(target), str(draft), extra_args=server_args(threads))
    with ExitStack() as stack:
        acts = {k: LlamaServerActuator(cfg) for k in ks}
        for act in acts.values():
            stack.callback(act.close)
        with ThreadPoolExecutor(max_workers=len(acts)) as pool:
            for f in [pool.submit(act.apply, k) for k, act in acts.items()]:
                f.result()
        out: dict[int, Server] = {}
        for k, act in acts.items():
            assert act.pid is not None
            client = stack.enter_context(httpx.Client(base_url=act.base_url))
            out[k] = Server(k, act.base_url, act.pid, client)
        yield out


def ask(server: Server, prompt: str, max_tokens: int = 64) -> Sample:
    """One greedy request with the prompt cache off; raises on anything but a full answer."""
    body = {
        "model": "tiny",
        "messages": [{"role": "user", "content": prompt}],
        "max_tokens": max_tokens,
        "temperature": 0.0,
        "cache_prompt": False,
    }
    cpu0 = server.cpu_s()
    t0 = time.perf_counter()
    r = server.client.post("/v1/chat/completions", json=body, timeout=REQUEST_TIMEOUT_S)
    wall_ms = (time.perf_counter() - t0) * 1000.0
    cpu_ms = (server.cpu_s() - cpu0) * 1000.0
    r.raise_for_status()
    t = r.json()["timings"]
    return Sample(
        k=server.k,
        prompt_n=int(t["prompt_n"]),
        prompt_ms=float(t["prompt_ms"]),
        predicted_n=int(t["predicted_n"]),
        predicted_ms=float(t["predicted_ms"]),
        drafted=int(t.get("draft_n", 0)),
        accepted=int(t.get("draft_n_accepted", 0)),
        wall_ms=wall_ms,
        cpu_ms=max(cpu_ms, 1e-3),
    )


@dataclass(frozen=True)
class Rounds:
    """What `interleave` measured: per K, one sample per round, and the counters."""

    samples: dict[int, list[Sample]]
    counters: dict[int, SpecCounters]


def interleave(
    pool: dict[int, Server],
    prompts: Sequence[str],
    seed: int = 0,
    warmup: int = 1,
    max_tokens: int = 64,
    before_round: Callable[[int], object] | None = None,
) -> Rounds:
    """`warmup` unmeasured requests per server, then one round per prompt: that prompt
    to every server, in an order shuffled per round (seeded)."""
    rng = random.Random(seed)
    for i in range(warmup):
        for s in pool.values():
            ask(s, prompts[i % len(prompts)], max_tokens)
    start = {k: s.counters() for k, s in pool.items()}
    samples: dict[int, list[Sample]] = {k: [] for k in pool}
    for rnd, prompt in enumerate(prompts):
        if before_round is not None:
            before_round(rnd)
        order = list(pool)
        rng.shuffle(order)
        for k in order:
            samples[k].append(ask(pool[k], prompt, max_tokens))
    counters = {k: s.counters().minus(start[k]) for k, s in pool.items()}
    return Rounds(samples, counters)
