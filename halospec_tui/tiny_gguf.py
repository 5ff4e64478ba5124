"""Tiny llama-architecture GGUF models with random weights, for a real llama-server
with no download: a draft, and a target derived from it so that drafts are accepted.

    python -m halospec_tui.tiny_gguf DIR     # writes DIR/target.gguf and DIR/draft.gguf

Needs the `gguf` package (the `test` extra). Byte-level vocabulary: <unk>, <s>, </s>
and the 256 <0xNN> byte tokens.
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np

N_EMBD = 64
N_HEAD = 4
N_FF = 128
N_CTX = 1024
DRAFT_LAYERS = 2
TARGET_LAYERS = 6
CHAT_TEMPLATE = "{% for m in messages %}{{ m['content'] }}\n{% endfor %}"


def _vocab() -> tuple[list[bytes], list[float], list[int]]:
    tokens = [b"<unk>", b"<s>", b"</s>"] + [f"<0x{i:02X}>".encode() for i in range(256)]
    scores = [0.0] * len(tokens)
    types = [2, 3, 3] + [6] * 256  # unknown, control, control, bytes
    return tokens, scores, types


def _layer(rng: np.random.Generator, scale_out: float = 1.0) -> dict[str, np.ndarray]:
    def w(rows: int, cols: int, s: float = 1.0) -> np.ndarray:
        out: np.ndarray = (rng.standard_normal((rows, cols)) * s / np.sqrt(cols)).astype(np.float32)
        return out

    return {
        "attn_norm": np.ones(N_EMBD, dtype=np.float32),
        "attn_q": w(N_EMBD, N_EMBD),
        "attn_k": w(N_EMBD, N_EMBD),
        "attn_v": w(N_EMBD, N_EMBD),
        "attn_output": w(N_EMBD, N_EMBD, scale_out),
        "ffn_norm": np.ones(N_EMBD, dtype=np.float32),
        "ffn_gate": w(N_FF, N_EMBD),
        "ffn_up": w(N_FF, N_EMBD),
        "ffn_down": w(N_EMBD, N_FF, scale_out),
    }


def _write(
    path: Path, name: str, embd: np.ndarray, out: np.ndarray, layers: list[dict[str, np.ndarray]]
) -> None:
    import gguf

    tokens, scores, types = _vocab()
    wr = gguf.GGUFWriter(str(path), "llama")
    wr.add_name(name)
    wr.add_context_length(N_CTX)
    wr.add_embedding_length(N_EMBD)
    wr.add_block_count(len(layers))
    wr.add_feed_forward_length(N_FF)
    wr.add_head_count(N_HEAD)
    wr.add_head_count_kv(N_HEAD)
    wr.add_rope_dimension_count(N_EMBD // N_HEAD)
    wr.add_layer_norm_rms_eps(1e-5)
    wr.add_file_type(gguf.LlamaFileType.ALL_F32)
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
    wr.add_tensor("token_embd.weight", embd)
    wr.add_tensor("output_norm.weight", np.ones(N_EMBD, dtype=np.float32))
    wr.add_tensor("output.weight", out)
    for i, layer in enumerate(layers):
        for key, arr in layer.items():
            wr.add_tensor(f"blk.{i}.{key}.weight", arr)
    wr.write_header_to_file()
    wr.write_kv_data_to_file()
    wr.write_tensors_to_file()
    wr.close()


def make_models(folder: str | Path, seed: int = 0) -> tuple[Path, Path]:
    """Write target.gguf and draft.gguf into `folder`; returns their paths."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    n_vocab = 259
    embd = rng.standard_normal((n_vocab, N_EMBD)).astype(np.float32)
    out = (rng.standard_normal((n_vocab, N_EMBD)) * 2.0).astype(np.float32)
    out[:3] = 0.0  # never emit <unk>, <s>, </s>: answers run to max_tokens
    draft_layers = [_layer(rng) for _ in range(DRAFT_LAYERS)]
    # The target: the draft's layers, then extra layers that barely move the residual
    # stream, so greedy tokens mostly agree while each target token costs more.
    extra = [_layer(rng, scale_out=0.02) for _ in range(TARGET_LAYERS - DRAFT_LAYERS)]
    draft = folder / "draft.gguf"
    target = folder / "target.gguf"
    _write(draft, "halospec-tiny-draft", embd, out, draft_layers)
    _write(target, "halospec-tiny-target", embd, out, draft_layers + extra)
    return target, draft


if __name__ == "__main__":
    t, d = make_models(sys.argv[1] if len(sys.argv) > 1 else ".")
    print(t, d)
