"""What to paste: the server setting for a K, in the form the server in use takes it,
and the recommendation line that carries it (the summaries, the policy table)."""

from __future__ import annotations

import shlex

from halospec_tui import engines
from halospec_tui.arms import p_min_of, threads_of
from halospec_tui.launch_template import paste_line
from halospec_tui.specflags import spec_text, thread_args
from halospec_tui.verdict import Verdict


def paste_setting(
    k: int, actuator: str, p_min: float = 0.0, server_kind: str = "", threads: int | None = None
) -> str:
    """The server setting for K (and p_min, and the thread count), in the form the
    server in use takes it: the run's own launch command (--actuator launch), vLLM's or
    SGLang's flags on those servers, else the actuator's form."""
    launch = paste_line(actuator, k, p_min, threads)
    if launch is not None:
        return launch
    engine = engines.paste_setting(server_kind, k, p_min)
    if engine is not None and not actuator.startswith("field"):
        return engine + (f" (with {_threads(threads)})" if threads is not None else "")
    t = f" {shlex.join(thread_args(threads))}" if threads is not None else ""
    if actuator == "llama-server":
        if k == 0:
            return f"llama-server flags: no speculation (no -md; {spec_text(0)}){t}"
        return f"llama-server flags: -md DRAFT.gguf {spec_text(k, p_min=p_min)}{t}"
    if actuator == "lemonade-load":
        return f'Lemonade /api/v1/load: {{"llamacpp_args": "{spec_text(k, p_min=p_min)}{t}"}}'
    if actuator == "request":
        return f'request body: "speculative": {{"n_max": {k}, "n_min": 0, "p_min": {p_min:g}}}'
    return f"K never reached the server through actuator {actuator or '?'}: nothing to paste"


def _threads(n: int) -> str:
    return f"{n} thread" + ("" if n == 1 else "s")


def setting_words(k: int, p_min: float = 0.0, threads: int | None = None) -> str:
    """What to do, in words: "turn speculation off", "use K = 4 with p_min 0.5", and
    the thread count where the arm sets one ("use K = 4 with 1 thread")."""
    if k == 0:
        what = "turn speculation off"
        return what if threads is None else f"{what} and use {_threads(threads)}"
    parts = [f"p_min {p_min:g}"] if p_min else []
    parts += [_threads(threads)] if threads is not None else []
    return f"use K = {k}" + (f" with {' and '.join(parts)}" if parts else "")


def recommendation_line(v: Verdict, actuator: str, server_kind: str = "") -> str:
    if v.recommended is None:
        return "no arm has a successful step: nothing to recommend"
    if v.recommended_k is None:
        return f"fastest: {v.recommended} (an adaptive arm: no fixed setting to paste)"
    k = v.recommended_k
    p = p_min_of(v.recommended)
    n = threads_of(v.recommended)
    what = setting_words(k, p, n)
    why = ""
    if v.smallest_of_tie:
        best = v.line(v.best) if v.best is not None else None
        fewer = best is not None and best.k == k and threads_of(best.arm) != n
        why = (
            f" (within {v.tolerance * 100:g}% of the fastest, {v.best}: "
            + ("the same K on fewer threads" if fewer else
               "the smallest K certified so drafts least for the same speed") + ")"
        )  # fmt: skip
    hedge = ""
    if not v.decisive:
        line = v.line(v.recommended)
        eps = line.epsilon if line is not None else None
        hedge = (" [not decisive: a sequential run decides nothing]" if not v.interleaved
                 else f" [not decisive: certified within {eps * 100:.1f}% of the fastest]"
                 if eps is not None else " [not decisive: nothing certified yet]")  # fmt: skip
    return f"{what}{why}{hedge}; {paste_setting(k, actuator, p, server_kind, n)}"
