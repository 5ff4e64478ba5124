"""Shared bits of the benchmark scripts (run them from the repo root)."""

from __future__ import annotations

import statistics
from collections.abc import Sequence

MODEL = "Qwen3-0.6B-GGUF"


def body(prompt: str, k: int = 3, max_tokens: int = 64) -> dict[str, object]:
    return {
        "model": MODEL,
        "messages": [{"role": "user", "content": prompt}],
        "max_tokens": max_tokens,
        "cache_prompt": False,
    }


def describe(label: str, xs: Sequence[float], unit: str = "ms") -> str:
    return (
        f"{label:<28} n={len(xs):<5} median={statistics.median(xs):8.2f} {unit} "
        f"mean={statistics.fmean(xs):8.2f} {unit}"
    )
