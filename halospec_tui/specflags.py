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

Values are read strictly (`read_spec_flags`), never more loosely than llama-server:
it parses a whole number with std::stoi and a probability with std::stof, which take
the longest leading number and ignore the rest ("3.5", "1e3", "12abc" and "0x10"
run as K 3, 1, 12 and 0), and take inf, nan, hex floats and any sign. Only what it
reads exactly as written is accepted here: `[+-]digits` within a C int (a negative
draft length is refused, as llama-server does), and a plain decimal within a float's
normal range (llama-server refuses 1e999 and 1e-40: out of range). `--flag=value` is
refused too: llama-server takes no such argument. Anything else is a SpecFlagError
naming the flag, and `k_from_args` reads no K from such a command.

Threads: `-t N -td N` (`thread_args`) runs the target and the draft on N threads.
`without_thread_flags` removes the thread flags a command already has (`-t`,
`--threads`, `-td`, `--threads-draft`, `--spec-draft-threads`, with their values), so
that an arm's own count replaces them; `threads_from_args` reads the count back (the
last `-t`/`--threads`, None when there is none).
"""

from __future__ import annotations

import math
import re
import shlex
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Literal

from halospec_tui.errors import HalospecError

NO_SPECULATION = 0
Spelling = Literal["new", "old"]


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


_THREAD_FLAGS = frozenset({"-t", "--threads"})
_DRAFT_THREAD_FLAGS = frozenset({"-td", "--threads-draft", "--spec-draft-threads"})


def thread_args(threads: int | None) -> list[str]:
    """The flags that run the target and the draft on `threads` threads (None: none,
    the server's own count)."""
    if threads is None:
        return []
    if threads < 1:
        raise ValueError(f"thread count {threads} is below 1")
    return ["-t", str(threads), "-td", str(threads)]


def without_thread_flags(argv: Sequence[str]) -> list[str]:
    """`argv` without its thread flags and their values (see the top of the module)."""
    out: list[str] = []
    skip = False
    for word in argv:
        if skip:
            skip = False
        elif word in _THREAD_FLAGS or word in _DRAFT_THREAD_FLAGS:
            skip = True
        else:
            out.append(word)
    return out


def threads_from_args(command: str | Sequence[str]) -> int | None:
    """The thread count a command line sets (the last -t/--threads), None when none,
    when its value is not a whole number, or when the line cannot be split."""
    try:
        argv = _tokens(command)
    except SpecFlagError:  # an unbalanced quote
        return None
    found = None
    for i, word in enumerate(argv[:-1]):
        if word in _THREAD_FLAGS:
            value = argv[i + 1]
            found = int(value) if _INT.fullmatch(value) else None
    return found


class SpecFlagError(HalospecError, ValueError):
    """A speculative flag whose value llama-server would refuse or misread."""

    def __init__(self, flag: str, value: str | None, why: str) -> None:
        self.flag = flag
        shown = f"{flag} {value!r}" if value is not None else flag
        super().__init__(f"{shown}: {why}")


@dataclass(frozen=True)
class SpecFlags:
    """The speculative settings of a command line, as llama-server reads them."""

    n_max: int | None = None  # the last explicit draft length
    p_min: float | None = None  # the last --spec-draft-p-min / --draft-p-min
    type_none: bool = False  # a --spec-type none
    drafts: bool = False  # anything that makes a server draft: model, type, any spec flag
    n_max_flag: str = field(default="", compare=False)  # as written, for messages
    p_min_flag: str = field(default="", compare=False)


_K_FLAGS = frozenset({"--spec-draft-n-max", "--draft-max", "--draft", "--draft-n"})
_N_MIN_FLAGS = frozenset({"--spec-draft-n-min", "--draft-min", "--draft-n-min"})
_P_MIN_FLAGS = frozenset({"--spec-draft-p-min", "--draft-p-min"})
_DRAFT_MODEL = frozenset({"-md", "--model-draft", "--spec-draft-model", "-hfd", "-hfrd",
                          "--hf-repo-draft"})  # fmt: skip
_VALUED = _K_FLAGS | _N_MIN_FLAGS | _P_MIN_FLAGS | _DRAFT_MODEL | {"--spec-type"}
_FLAG_NAME = re.compile(r"--[a-z0-9-]+")
_INT = re.compile(r"[+-]?[0-9]+")
_DECIMAL = re.compile(r"[+-]?(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+)(?:[eE][+-]?[0-9]+)?")
_STOF_OTHER = re.compile(r"\s*[+-]?(?:0x|inf|nan)", re.IGNORECASE)  # hex, inf, nan to stof
_INT_MAX = 2**31 - 1  # std::stoi reads into a C int
_FLT_MAX = 3.4028234663852886e38  # std::stof: beyond a float's range is out_of_range,
_FLT_MIN = 1.1754943508222875e-38  # and so is a non-zero value below its normal range


def _whole_number(flag: str, value: str) -> int:
    if not _INT.fullmatch(value):
        lead = re.match(r"\s*[+-]?[0-9]+", value)
        why = f" (llama-server would read it as {int(lead.group())})" if lead else ""
        raise SpecFlagError(flag, value, "not a whole number" + why)
    n = int(value)
    if not -_INT_MAX - 1 <= n <= _INT_MAX:
        raise SpecFlagError(flag, value, "out of range")
    return n


def _probability(flag: str, value: str) -> float:
    if not _DECIMAL.fullmatch(value):
        lead = None if _STOF_OTHER.match(value) else _DECIMAL.match(value.lstrip())
        why = f" (llama-server would read it as {float(lead.group()):g})" if lead else ""
        raise SpecFlagError(flag, value, "not a plain decimal number" + why)
    p = float(value) + 0.0  # -0 reads as 0
    if abs(p) > _FLT_MAX or 0.0 < abs(p) < _FLT_MIN:
        raise SpecFlagError(flag, value, "out of range")
    return p


def _tokens(command: str | Sequence[str]) -> list[str]:
    if not isinstance(command, str):
        return list(command)
    try:
        return shlex.split(command)
    except ValueError as e:  # an unbalanced quote
        raise SpecFlagError("command line", None, f"cannot be split: {e}") from None


def read_spec_flags(command: str | Sequence[str]) -> SpecFlags:
    """The speculative flags of a command line (one string, or its arguments as a
    list, as Lemonade's /health gives `launch_command`); SpecFlagError for a value
    llama-server would refuse or misread. `--x_y` is `--x-y`, as llama-server reads it."""
    argv = _tokens(command)
    n_max, p_min, none, drafts = None, None, False, False
    n_max_flag = p_min_flag = ""
    i = 0
    while i < len(argv):
        written = argv[i]
        name = written.replace("_", "-") if written.startswith("--") else written
        i += 1
        if name.partition("=")[0] in _VALUED and "=" in name:
            raise SpecFlagError(written, None, "llama-server takes no --flag=value: say --flag value")
        if name.startswith(("--spec", "--draft")) and not _FLAG_NAME.fullmatch(name):
            raise SpecFlagError(written, None, "no such llama-server argument")
        if name.startswith(("--spec-", "--draft")) or name in _DRAFT_MODEL:
            drafts = True
        if name not in _VALUED:
            continue
        if i >= len(argv):
            raise SpecFlagError(written, None, "needs a value")
        value = argv[i]
        i += 1
        if name in _K_FLAGS:
            n_max, n_max_flag = _whole_number(written, value), written
            if n_max < 0:
                raise SpecFlagError(written, value, "invalid value (a draft length is not negative)")
        elif name in _N_MIN_FLAGS:
            _whole_number(written, value)
        elif name in _P_MIN_FLAGS:
            p_min, p_min_flag = _probability(written, value), written
        elif name == "--spec-type":
            none = none or "none" in value.split(",")
    return SpecFlags(n_max, p_min, none, drafts, n_max_flag, p_min_flag)


def p_min_from_args(text: str | Sequence[str]) -> float:
    """The p_min a command line sets (the last one), 0 when none; SpecFlagError when
    llama-server would refuse or misread it, or it lies outside 0..1 (1 excluded)."""
    found = read_spec_flags(text).p_min
    p = 0.0 if found is None else found
    if not (math.isfinite(p) and 0.0 <= p < 1.0):
        raise SpecFlagError("--spec-draft-p-min", f"{p:g}", "outside 0..1 (1 excluded)")
    return p


def k_from_args(text: str | Sequence[str], default: int | None = None) -> int | None:
    """K a command line sets, by the rules at the top of this module; None also when
    a speculative flag's value is one llama-server would refuse or misread."""
    try:
        flags = read_spec_flags(text or "")
    except SpecFlagError:
        return None
    if flags.n_max is not None:
        return flags.n_max
    if flags.type_none:
        return NO_SPECULATION
    if not flags.drafts:
        return NO_SPECULATION
    return default
