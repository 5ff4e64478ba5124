"""The llama-server flags that set speculative decoding, written and read in one place.

Two spellings exist: the current one (`--spec-type draft-simple --spec-draft-n-max K
--spec-draft-n-min 0 --spec-draft-p-min 0`) and the old one (`--draft-max K
--draft-min 0 --draft-p-min 0`). K = 0 means no speculation: no draft flags at all,
plus `--spec-type none` where the binary lists that type (it also stops llama-server
from picking a speculative type on its own).

Reading K back from a command line (`k_from_args`):
- an explicit draft length (`--spec-draft-n-max`, `--draft-max`, `--draft`) wins,
  the last one when repeated;
- else `--spec-type none` reads as 0;
- else, with no speculative flag and no draft model at all, as 0: nothing can draft;
- else (a draft model or a speculative type without a length) the binary's own
  default applies, which the command does not show: `None`, or the caller's default.
"""

from __future__ import annotations

import re
import shlex
from dataclasses import dataclass
from typing import Literal

NO_SPECULATION = 0
Spelling = Literal["new", "old"]

_K_FLAG = re.compile(r"--(?:spec-draft-n-max|draft-max|draft)(?:\s+|=)(\d+)")
_SPEC_TYPE_NONE = re.compile(r"--spec-type(?:\s+|=)none(?:\s|$)")
# Anything that makes a server draft: a draft model, a type, a draft-length flag.
_SPEC_ANY = re.compile(
    r"(?:^|\s)(?:-md|--model-draft|--spec-draft-model|-hfd|-hfrd|--hf-repo-draft|"
    r"--spec-[a-z-]+|--draft[a-z-]*)(?:\s|=|$)"
)
@dataclass(frozen=True)
class SpecSyntax:
    """What a llama-server binary understands, read from its --help."""

    spelling: Spelling = "new"
    type_none: bool = True  # `--spec-type none` is listed


def syntax_from_help(text: str) -> SpecSyntax | None:
    """The spelling a binary's --help shows, or None when it mentions no draft length."""
    if "--spec-draft-n-max" in text:
        none = False
        for line in text.splitlines():
            if "--spec-type" in line:
                none = re.search(r"\bnone\b", line) is not None
                break
        return SpecSyntax("new", none)
    if "--draft-max" in text:
        return SpecSyntax("old", False)
    return None


def spec_args(k: int, syntax: SpecSyntax = SpecSyntax(), p_min: float = 0.0) -> list[str]:
    """The flags that make a server draft up to K tokens, stopping early where the
    draft's confidence falls below p_min (0: never); K = 0 turns speculation off."""
    if k < 0:
        raise ValueError(f"draft length {k} is negative")
    if not 0.0 <= p_min < 1.0:
        raise ValueError(f"p_min {p_min} is outside 0..1")
    if k == NO_SPECULATION:
        return ["--spec-type", "none"] if syntax.spelling == "new" and syntax.type_none else []
    p = f"{p_min:g}"
    if syntax.spelling == "new":
        return ["--spec-type", "draft-simple", "--spec-draft-n-max", str(k),
                "--spec-draft-n-min", "0", "--spec-draft-p-min", p]  # fmt: skip
    return ["--draft-max", str(k), "--draft-min", "0", "--draft-p-min", p]


def spec_text(k: int, syntax: SpecSyntax = SpecSyntax(), p_min: float = 0.0) -> str:
    """`spec_args` as one shell-quoted string (Lemonade's llamacpp_args)."""
    return shlex.join(spec_args(k, syntax, p_min))


_P_MIN_FLAG = re.compile(r"--(?:spec-draft-p-min|draft-p-min)(?:\s+|=)([0-9.eE+-]+)")


def p_min_from_args(text: str) -> float:
    """The p_min a command line sets (the last one), 0 when none or unreadable."""
    found = _P_MIN_FLAG.findall(text or "")
    try:
        p = float(found[-1]) if found else 0.0
    except ValueError:
        return 0.0
    return p if 0.0 <= p < 1.0 else 0.0


def k_from_args(text: str, default: int | None = None) -> int | None:
    """K a command line sets, by the rules at the top of this module."""
    text = text or ""
    found = _K_FLAG.findall(text)
    if found:
        return int(found[-1])
    if _SPEC_TYPE_NONE.search(text):
        return NO_SPECULATION
    if not _SPEC_ANY.search(text):
        return NO_SPECULATION
    return default
