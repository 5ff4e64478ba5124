"""Write vllm_*.txt and sglang.txt: /metrics text as vLLM and SGLang expose it.

Both servers build their /metrics with prometheus_client, so the same library, given
their metric definitions (name, help text, label names and values, as in their
source; see SOURCES.md), writes the text they serve. The counts are made up but
consistent (accepted + drafts = tokens of each step); the tests name them.

Run from the repository root: `python tests/data/metrics/render_engines.py`.
"""

from __future__ import annotations

from pathlib import Path

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest

HERE = Path(__file__).parent
MODEL = "Qwen/Qwen3-8B"
K = 3  # num_speculative_tokens: one per-position series each

# vLLM: per engine (data-parallel rank) (drafts, draft tokens, accepted, accepted per position)
VLLM_SNAPSHOTS = {
    "vllm_0.txt": {"0": (40, 120, 70, (30, 24, 16)), "1": (10, 30, 12, (6, 4, 2))},
    # one 64-token step on engine 0: 20 drafts, 60 drafted, 44 accepted
    "vllm_1.txt": {"0": (60, 180, 114, (50, 38, 26)), "1": (10, 30, 12, (6, 4, 2))},
    # one 64-token step on engine 1: 25 drafts, 75 drafted, 39 accepted
    "vllm_2.txt": {"0": (60, 180, 114, (50, 38, 26)), "1": (35, 105, 51, (23, 17, 11))},
}


def render_vllm(engines: dict[str, tuple[int, int, int, tuple[int, ...]]]) -> bytes:
    reg = CollectorRegistry()
    labelnames = ["model_name", "engine"]  # vllm/v1/metrics/loggers.py
    running = Gauge("vllm:num_requests_running", "Number of requests in model execution batches.",
                    labelnames=labelnames, registry=reg)  # fmt: skip
    drafts = Counter("vllm:spec_decode_num_drafts", "Number of spec decoding drafts.",
                     labelnames=labelnames, registry=reg)  # fmt: skip
    draft_tokens = Counter("vllm:spec_decode_num_draft_tokens", "Number of draft tokens.",
                           labelnames=labelnames, registry=reg)  # fmt: skip
    accepted = Counter("vllm:spec_decode_num_accepted_tokens", "Number of accepted tokens.",
                       labelnames=labelnames, registry=reg)  # fmt: skip
    per_pos = Counter("vllm:spec_decode_num_accepted_tokens_per_pos",
                      "Accepted tokens per draft position.",
                      labelnames=[*labelnames, "position"], registry=reg)  # fmt: skip
    for engine, (n_drafts, n_drafted, n_accepted, by_pos) in engines.items():
        running.labels(MODEL, engine).set(0)
        drafts.labels(MODEL, engine).inc(n_drafts)
        draft_tokens.labels(MODEL, engine).inc(n_drafted)
        accepted.labels(MODEL, engine).inc(n_accepted)
        for pos in range(K):
            per_pos.labels(MODEL, engine, str(pos)).inc(by_pos[pos])
    return generate_latest(reg)


def render_sglang() -> bytes:
    reg = CollectorRegistry()
    # python/sglang/srt/managers/scheduler_metrics_mixin.py: the scheduler's labels
    labels = {"model_name": MODEL, "engine_type": "unified", "tp_rank": "0", "pp_rank": "0",
              "moe_ep_rank": "0"}  # fmt: skip
    names = list(labels)
    # python/sglang/srt/metrics/collector.py: speculative decoding is two gauges
    length = Gauge("sglang:spec_accept_length",
                   "The average acceptance length of speculative decoding.",
                   labelnames=names, registry=reg)  # fmt: skip
    rate = Gauge("sglang:spec_accept_rate",
                 "The average acceptance rate of speculative decoding (`accepted tokens / "
                 "total draft tokens` in batch).", labelnames=names, registry=reg)  # fmt: skip
    queue = Histogram("sglang:queue_time_seconds", "Histogram of queueing time in seconds.",
                      labelnames=names, buckets=[0.0, 0.1, 0.2, 0.5, 1, 2], registry=reg)  # fmt: skip
    generated = Counter("sglang:generation_tokens_total", "Number of generation tokens processed.",
                        labelnames=["model_name"], registry=reg)  # fmt: skip
    length.labels(**labels).set(2.6)
    rate.labels(**labels).set(0.53)
    queue.labels(**labels).observe(0.05)
    generated.labels(MODEL).inc(128)
    return generate_latest(reg)


if __name__ == "__main__":
    for name, engines in VLLM_SNAPSHOTS.items():
        (HERE / name).write_bytes(render_vllm(engines))
    (HERE / "sglang.txt").write_bytes(render_sglang())
