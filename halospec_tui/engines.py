"""vLLM and SGLang: how they answer detection, and their speculative-decoding flags,
written and read in one place (llama.cpp's are in specflags.py).

vLLM takes a draft model and K at launch as one JSON flag, `--speculative-config
'{"model": DRAFT, "num_speculative_tokens": K}'` (newer builds also take
`--speculative-config.num_speculative_tokens K`). SGLang takes
`--speculative-algorithm STANDALONE --speculative-draft-model-path DRAFT
--speculative-num-steps K --speculative-eagle-topk 1 --speculative-num-draft-tokens
K+1`: num-steps is the draft length (one token per step in a chain: top-k 1), and
num-draft-tokens counts the tokens a verification pass checks, the draft plus the
token it starts from (SGLang sets it to num-steps + 1 itself when top-k is 1).
K = 0 means no speculation: no speculative flag at all.

Detection: vLLM answers `GET /version` with `{"version": "..."}` and lists its models
with `"owned_by": "vllm"`; SGLang lists them with `"owned_by": "sglang"` and answers
`GET /server_info` (older: `/get_server_info`) with its launch arguments,
`internal_states` and `version`, and `GET /model_info` (older: `/get_model_info`)
with `model_path` and `is_generation`.
"""

from __future__ import annotations

import json
import re
import shlex
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

NO_SPECULATION = 0
DRAFT = "DRAFT"  # the placeholder a pasted line carries for the draft model
KINDS = ("vllm", "sglang")
NAMES = {"vllm": "vLLM", "sglang": "SGLang"}


# -- writing ------------------------------------------------------------------------
def _check(k: int) -> None:
    if k < 0:
        raise ValueError(f"draft length {k} is negative")


def vllm_spec_args(k: int, draft: str = DRAFT) -> list[str]:
    """vLLM's flags for drafting up to K tokens with the model `draft`."""
    _check(k)
    if k == NO_SPECULATION:
        return []
    return ["--speculative-config", json.dumps({"model": draft, "num_speculative_tokens": k})]


def sglang_spec_args(k: int, draft: str = DRAFT) -> list[str]:
    """SGLang's flags for drafting K tokens per pass with the model `draft`."""
    _check(k)
    if k == NO_SPECULATION:
        return []
    return ["--speculative-algorithm", "STANDALONE", "--speculative-draft-model-path", draft,
            "--speculative-num-steps", str(k), "--speculative-eagle-topk", "1",
            "--speculative-num-draft-tokens", str(k + 1)]  # fmt: skip


def spec_args(kind: str, k: int, draft: str = DRAFT) -> list[str]:
    if kind == "vllm":
        return vllm_spec_args(k, draft)
    if kind == "sglang":
        return sglang_spec_args(k, draft)
    raise ValueError(f"no flags for server kind {kind!r} here (choose from {', '.join(KINDS)})")


def paste_setting(kind: str, k: int, p_min: float = 0.0) -> str | None:
    """The launch flags for K in the engine's own syntax, as a line to paste; None for
    a kind this module does not write."""
    if kind not in KINDS:
        return None
    name = NAMES[kind]
    if k == NO_SPECULATION:
        what = "--speculative-config" if kind == "vllm" else "--speculative-* flag"
        line = f"{name} flags: no speculation (no {what})"
    else:
        line = f"{name} flags: {shlex.join(spec_args(kind, k))}"
    if p_min > 0 and k != NO_SPECULATION:
        line += f" ({name} has no draft-confidence cutoff like p_min {p_min:g})"
    return line


# -- reading ------------------------------------------------------------------------
def _words(text: str) -> list[str] | None:
    try:
        return shlex.split(text or "")
    except ValueError:  # unbalanced quotes
        return None


def _flag_values(words: list[str], flag: str) -> list[str]:
    """Every value given to `flag` (as `flag VALUE` or `flag=VALUE`), in order."""
    out = []
    for i, w in enumerate(words):
        if w == flag and i + 1 < len(words):
            out.append(words[i + 1])
        elif w.startswith(flag + "="):
            out.append(w[len(flag) + 1 :])
    return out


def _positive(v: Any) -> int | None:
    if isinstance(v, int) and not isinstance(v, bool) and v > 0:
        return v
    if isinstance(v, str) and re.fullmatch(r"\d+", v) and int(v) > 0:
        return int(v)
    return None


def k_from_vllm_args(text: str) -> int | None:
    """K a vLLM command line sets: the last --speculative-config's
    num_speculative_tokens (or --speculative-config.num_speculative_tokens); 0 with
    no speculative config; None when unreadable or left to the draft's own config."""
    words = _words(text)
    if words is None:
        return None
    dotted = _flag_values(words, "--speculative-config.num_speculative_tokens")
    configs = _flag_values(words, "--speculative-config")
    if dotted:
        return _positive(dotted[-1])
    if not configs:
        return NO_SPECULATION
    try:
        cfg = json.loads(configs[-1])
    except ValueError:
        return None
    return _positive(cfg.get("num_speculative_tokens")) if isinstance(cfg, dict) else None


def _sglang_k(algorithm: Any, steps: Any, topk: Any) -> int | None:
    if algorithm in (None, "", "None"):
        return NO_SPECULATION
    if topk not in (None, 1, "1"):
        return None  # a tree of drafts: no single draft length
    return _positive(steps)


def k_from_sglang_args(text: str) -> int | None:
    """K an SGLang command line sets: --speculative-num-steps with top-k 1; 0 with no
    --speculative-algorithm; None when unreadable, left to SGLang, or a tree (top-k > 1)."""
    words = _words(text)
    if words is None:
        return None

    def last(flag: str) -> str | None:
        values = _flag_values(words, flag)
        return values[-1] if values else None

    return _sglang_k(
        last("--speculative-algorithm"),
        last("--speculative-num-steps"),
        last("--speculative-eagle-topk"),
    )


def k_from_sglang_server_info(doc: Any) -> int | None:
    """K an SGLang server runs with, from its /server_info launch arguments."""
    if not isinstance(doc, dict):
        return None
    return _sglang_k(doc.get("speculative_algorithm"), doc.get("speculative_num_steps"),
                     doc.get("speculative_eagle_topk"))  # fmt: skip


# -- detection ----------------------------------------------------------------------
@dataclass(frozen=True)
class Detected:
    kind: str  # vllm | sglang
    version: str
    detail: str


Get = Callable[[str], tuple[int, Any]]  # GET a path: (status, JSON document or None)


def model_owners(doc: Any) -> set[str]:
    """The `owned_by` of every model a /v1/models answer lists."""
    data = doc.get("data") if isinstance(doc, dict) else None
    if not isinstance(data, list):
        return set()
    return {str(m["owned_by"]) for m in data if isinstance(m, dict) and "owned_by" in m}


def _vllm_version(get: Get) -> str | None:
    status, doc = get("/version")
    if status == 200 and isinstance(doc, dict) and set(doc) == {"version"}:
        return str(doc["version"])
    return None


def _sglang_server_info(get: Get) -> tuple[str, dict[str, Any]] | None:
    for path in ("/server_info", "/get_server_info"):
        status, doc = get(path)
        if status == 200 and isinstance(doc, dict) and isinstance(doc.get("internal_states"), list):
            return path, doc
    return None


def _sglang_model_info(get: Get) -> str | None:
    for path in ("/model_info", "/get_model_info"):
        status, doc = get(path)
        if status == 200 and isinstance(doc, dict) and {"model_path", "is_generation"} <= set(doc):
            return path
    return None


def _sglang(get: Get, because: str) -> Detected | None:
    found = _sglang_server_info(get)
    if found is None:
        path = _sglang_model_info(get)
        return Detected("sglang", "", f"SGLang {path}") if path else None
    path, doc = found
    k = k_from_sglang_server_info(doc)
    spec = "" if k is None else f"; launched with K={k}"
    return Detected("sglang", str(doc.get("version", "")), f"SGLang {because or path}{spec}")


def _until_silent(get: Get) -> Get:
    """`get`, answering (0, None) without asking once a request got no answer (status
    0): a server that stalls costs one timeout here, not one per endpoint."""
    silent = False

    def ask(path: str) -> tuple[int, Any]:
        nonlocal silent
        if silent:
            return 0, None
        status, doc = get(path)
        silent = status == 0
        return status, doc

    return ask


def detect_engine(get: Get, models: Any) -> Detected | None:
    """vLLM or SGLang, from the /v1/models answer (`models`, None when there was
    none) and, when that names no owner, their own endpoints."""
    get = _until_silent(get)
    owners = model_owners(models)
    if "vllm" in owners:
        return Detected("vllm", _vllm_version(get) or "", "vLLM /v1/models owned_by")
    if "sglang" in owners:
        return _sglang(get, "/v1/models owned_by") or Detected(
            "sglang", "", "SGLang /v1/models owned_by"
        )
    if owners:  # another server named itself
        return None
    sglang = _sglang(get, "")
    if sglang is not None:
        return sglang
    version = _vllm_version(get)
    return Detected("vllm", version, "vLLM /version") if version is not None else None
