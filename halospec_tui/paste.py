"""What to paste: the server setting for a K, in the form the server in use takes it,
and the recommendation line that carries it (the summaries, the policy table)."""

from __future__ import annotations

from halospec_tui import engines
from halospec_tui.arms import p_min_of
from halospec_tui.launch_template import paste_line
from halospec_tui.specflags import spec_text
from halospec_tui.verdict import Verdict


def paste_setting(k: int, actuator: str, p_min: float = 0.0, server_kind: str = "") -> str:
    """The server setting for K (and p_min), in the form the server in use takes it:
    the run's own launch command (--actuator launch), vLLM's or SGLang's flags on those
    servers, else the actuator's form."""
    launch = paste_line(actuator, k, p_min)
    if launch is not None:
        return launch
    engine = engines.paste_setting(server_kind, k, p_min)
    if engine is not None and not actuator.startswith("field"):
        return engine
    if actuator == "llama-server":
        if k == 0:
            return f"llama-server flags: no speculation (no -md; {spec_text(0)})"
        return f"llama-server flags: -md DRAFT.gguf {spec_text(k, p_min=p_min)}"
    if actuator == "lemonade-load":
        return f'Lemonade /api/v1/load: {{"llamacpp_args": "{spec_text(k, p_min=p_min)}"}}'
    if actuator == "request":
        return f'request body: "speculative": {{"n_max": {k}, "n_min": 0, "p_min": {p_min:g}}}'
    return f"K never reached the server through actuator {actuator or '?'}: nothing to paste"


def recommendation_line(v: Verdict, actuator: str, server_kind: str = "") -> str:
    if v.recommended is None:
        return "no arm has a successful step: nothing to recommend"
    if v.recommended_k is None:
        return f"fastest: {v.recommended} (an adaptive arm: no fixed setting to paste)"
    k = v.recommended_k
    p = p_min_of(v.recommended)
    what = "turn speculation off" if k == 0 else f"use K = {k}" + (f" with p_min {p:g}" if p else "")
    why = ""
    if v.smallest_of_tie:
        why = (
            f" (within {v.tolerance * 100:g}% of the fastest, {v.best}: the smallest K"
            " certified so drafts least for the same speed)"
        )
    hedge = ""
    if not v.decisive:
        line = v.line(v.recommended)
        eps = line.epsilon if line is not None else None
        hedge = (" [not decisive: a sequential run decides nothing]" if not v.interleaved
                 else f" [not decisive: certified within {eps * 100:.1f}% of the fastest]"
                 if eps is not None else " [not decisive: nothing certified yet]")  # fmt: skip
    return f"{what}{why}{hedge}; {paste_setting(k, actuator, p, server_kind)}"
