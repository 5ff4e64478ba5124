"""Random-weight llama-architecture GGUF pairs for a real llama-server with no download:
a draft, and a target derived from it so that drafts are accepted.

    python -m halospec_tui.tiny_gguf DIR                  # DIR/target.gguf, DIR/draft.gguf
    python -m halospec_tui.tiny_gguf DIR --regime large   # a pair where K = 8 pays best

Three regimes, by what speculation does on the suite's CPU llama-server (-t 1):
- `loses` (default, 1.6 MB): width 64, overhead-bound; no speculation is about 1.5x
  faster than any K.
- `mid` (286 MB): width 768, F32, a 1-layer draft; the target is that layer (same
  embeddings and output) plus 8 layers whose output projections write small residuals
  (scale 0.12). The target decodes memory-bound enough that verifying a few tokens
  costs far less than decoding them one by one; acceptance is about 0.76 per token, so
  K 1..4 pay about 1.2-1.3x and K 8 about no speculation's speed.
- `large` (286 MB): the same with scale 0.01: acceptance about 0.98, and tokens/s rise
  with K up to 8 (about 1.7-2x no speculation).
F16 (`wtype="f16"`) halves the files, but this build's F16 matrix products are
compute-bound: no speculation then wins (73 vs 73 tok/s at K 4 with one thread, 133 vs
83 with two). Q8_0 likewise gains little (1.1-1.3x at best). See
benchmarks/real_pairs.py for the measured tables.

Generation is deterministic by seed. `cached_pair(regime)` writes a pair once into a
cache folder keyed by a hash of its parameters (default ~/.cache/halospec-tui/models/)
and reuses it across runs and processes. Needs the `gguf` package (the `test` extra).
Byte-level vocabulary: <unk>, <s>, </s> and the 256 <0xNN> byte tokens.
"""

from __future__ import annotations

import argparse
import contextlib
import fcntl
import hashlib
import json
import os
import shutil
import tempfile
import time
from collections.abc import Iterator
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np

N_CTX = 1024
N_VOCAB = 259
CHAT_TEMPLATE = "{% for m in messages %}{{ m['content'] }}\n{% endfor %}"
GENERATOR_VERSION = 1  # bump when the same parameters would write different files
CACHE_ROOT = Path.home() / ".cache" / "halospec-tui" / "models"
LOCK_WAIT_S = 300.0  # another process writing the same pair: wait at most this long
WTYPES = ("f32", "f16", "q8_0")


@dataclass(frozen=True)
class PairSpec:
    """Everything that decides the bytes of a pair (the cache key hashes it)."""

    n_embd: int = 64
    n_head: int = 4
    n_ff: int = 128
    draft_layers: int = 2
    target_layers: int = 6  # the draft's layers, then target_layers - draft_layers more
    scale: float = 0.02  # output projections of the target's extra layers
    wtype: str = "f32"  # 2-D weights: f32, f16 or q8_0 (embeddings and norms stay F32)
    seed: int = 0

    def __post_init__(self) -> None:
        if self.wtype not in WTYPES:
            raise ValueError(f"weight type {self.wtype!r}: one of {', '.join(WTYPES)}")

    def key(self) -> str:
        doc = json.dumps({**asdict(self), "v": GENERATOR_VERSION}, sort_keys=True)
        return hashlib.sha256(doc.encode()).hexdigest()[:16]


# Width 768, F32: the target (256 MB) decodes memory-bound enough that verifying a few
# tokens costs far less than decoding them one by one; the draft is 30 MB.
_WIDE = PairSpec(n_embd=768, n_head=12, n_ff=2048, draft_layers=1, target_layers=9)
REGIMES: dict[str, PairSpec] = {
    "loses": PairSpec(),
    "mid": replace(_WIDE, scale=0.12),
    "large": replace(_WIDE, scale=0.01),
}


def _vocab() -> tuple[list[bytes], list[float], list[int]]:
    tokens = [b"<unk>", b"<s>", b"</s>"] + [f"<0x{i:02X}>".encode() for i in range(256)]
    scores = [0.0] * len(tokens)
    types = [2, 3, 3] + [6] * 256  # unknown, control, control, bytes
    return tokens, scores, types


def _layer(
    spec: PairSpec, rng: np.random.Generator, scale_out: float = 1.0
) -> dict[str, np.ndarray]:
    e, f = spec.n_embd, spec.n_ff

    def w(rows: int, cols: int, s: float = 1.0) -> np.ndarray:
        out: np.ndarray = (rng.standard_normal((rows, cols)) * s / np.sqrt(cols)).astype(np.float32)
        return out

    return {
        "attn_norm": np.ones(e, dtype=np.float32),
        "attn_q": w(e, e),
        "attn_k": w(e, e),
        "attn_v": w(e, e),
        "attn_output": w(e, e, scale_out),
        "ffn_norm": np.ones(e, dtype=np.float32),
        "ffn_gate": w(f, e),
        "ffn_up": w(f, e),
        "ffn_down": w(e, f, scale_out),
    }


def _add(wr: Any, spec: PairSpec, name: str, arr: np.ndarray) -> None:
    """Add one tensor in the pair's weight type; the token embeddings and 1-D tensors
    (norms) stay F32, as llama.cpp's converters keep them."""
    import gguf
    from gguf.quants import quantize

    if arr.ndim != 2 or name == "token_embd.weight" or spec.wtype == "f32":
        wr.add_tensor(name, arr)
    elif spec.wtype == "f16":
        wr.add_tensor(name, arr.astype(np.float16))
    else:
        q8 = gguf.GGMLQuantizationType.Q8_0
        wr.add_tensor(name, quantize(arr, q8), raw_dtype=q8)


def _write(
    spec: PairSpec,
    path: Path,
    name: str,
    embd: np.ndarray,
    out: np.ndarray,
    layers: list[dict[str, np.ndarray]],
) -> None:
    import gguf

    tokens, scores, types = _vocab()
    wr = gguf.GGUFWriter(str(path), "llama")
    wr.add_name(name)
    wr.add_context_length(N_CTX)
    wr.add_embedding_length(spec.n_embd)
    wr.add_block_count(len(layers))
    wr.add_feed_forward_length(spec.n_ff)
    wr.add_head_count(spec.n_head)
    wr.add_head_count_kv(spec.n_head)
    wr.add_rope_dimension_count(spec.n_embd // spec.n_head)
    wr.add_layer_norm_rms_eps(1e-5)
    ftype = {"f32": "ALL_F32", "f16": "MOSTLY_F16", "q8_0": "MOSTLY_Q8_0"}[spec.wtype]
    wr.add_file_type(gguf.LlamaFileType[ftype])
    wr.add_tokenizer_model("llama")
    wr.add_token_list(tokens)
    wr.add_token_scores(scores)
    wr.add_token_types(types)
    wr.add_bos_token_id(1)
    wr.add_eos_token_id(2)
    wr.add_unk_token_id(0)
    wr.add_add_bos_token(True)
    wr.add_add_eos_token(False)
    wr.add_chat_template(CHAT_TEMPLATE)
    _add(wr, spec, "token_embd.weight", embd)
    _add(wr, spec, "output_norm.weight", np.ones(spec.n_embd, dtype=np.float32))
    _add(wr, spec, "output.weight", out)
    for i, layer in enumerate(layers):
        for key, arr in layer.items():
            _add(wr, spec, f"blk.{i}.{key}.weight", arr)
    wr.write_header_to_file()
    wr.write_kv_data_to_file()
    wr.write_tensors_to_file()
    wr.close()


def write_pair(folder: str | Path, spec: PairSpec) -> tuple[Path, Path]:
    """Write target.gguf and draft.gguf for `spec` into `folder`; returns their paths."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(spec.seed)
    embd = rng.standard_normal((N_VOCAB, spec.n_embd)).astype(np.float32)
    out = (rng.standard_normal((N_VOCAB, spec.n_embd)) * 2.0).astype(np.float32)
    out[:3] = 0.0  # never emit <unk>, <s>, </s>: answers run to max_tokens
    draft_layers = [_layer(spec, rng) for _ in range(spec.draft_layers)]
    # The target: the draft's layers, then extra layers that barely move the residual
    # stream, so greedy tokens mostly agree while each target token costs more.
    n_extra = spec.target_layers - spec.draft_layers
    extra = [_layer(spec, rng, scale_out=spec.scale) for _ in range(n_extra)]
    draft = folder / "draft.gguf"
    target = folder / "target.gguf"
    _write(spec, draft, "halospec-tiny-draft", embd, out, draft_layers)
    _write(spec, target, "halospec-tiny-target", embd, out, draft_layers + extra)
    return target, draft


def make_models(folder: str | Path, seed: int = 0, regime: str = "loses") -> tuple[Path, Path]:
    """Write the `regime` pair (see REGIMES) into `folder`; returns (target, draft)."""
    if regime not in REGIMES:
        raise ValueError(f"unknown regime {regime!r}: one of {', '.join(REGIMES)}")
    return write_pair(folder, replace(REGIMES[regime], seed=seed))


@contextlib.contextmanager
def _locked(path: Path, wait_s: float) -> Iterator[None]:
    """An exclusive lock on `path`, waited for at most `wait_s` seconds."""
    with open(path, "a+b") as fh:
        deadline = time.monotonic() + wait_s
        while True:
            try:
                fcntl.flock(fh, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if time.monotonic() > deadline:
                    raise TimeoutError(f"{path} still locked after {wait_s:g} s") from None
                time.sleep(0.2)
        try:
            yield
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)


def cached_pair(
    regime: str = "loses", seed: int = 0, root: str | Path | None = None
) -> tuple[Path, Path]:
    """The `regime` pair from the cache, written there first if missing. Safe when
    several processes ask at once: one writes (into a temporary folder, then renamed),
    the others wait for it."""
    if regime not in REGIMES:
        raise ValueError(f"unknown regime {regime!r}: one of {', '.join(REGIMES)}")
    spec = replace(REGIMES[regime], seed=seed)
    base = Path(root) if root is not None else CACHE_ROOT
    base.mkdir(parents=True, exist_ok=True)
    final = base / f"{regime}-{spec.key()}"
    with _locked(base / f".{final.name}.lock", LOCK_WAIT_S):
        if not (final / "target.gguf").exists():
            tmp = Path(tempfile.mkdtemp(prefix=f".{final.name}-", dir=base))
            try:
                write_pair(tmp, spec)
                tmp.chmod(0o755)  # mkdtemp made it private
                (tmp / "spec.json").write_text(json.dumps(asdict(spec), indent=1) + "\n")
                shutil.rmtree(final, ignore_errors=True)  # a folder left half-made
                os.replace(tmp, final)
            finally:
                shutil.rmtree(tmp, ignore_errors=True)
    return final / "target.gguf", final / "draft.gguf"


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m halospec_tui.tiny_gguf")
    p.add_argument("folder", nargs="?", default=".")
    p.add_argument("--regime", choices=list(REGIMES), default="loses")
    p.add_argument("--seed", type=int, default=0)
    ns = p.parse_args(argv)
    t, d = make_models(ns.folder, ns.seed, ns.regime)
    print(t, d)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
