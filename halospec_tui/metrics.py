"""Draft counters from Prometheus `/metrics`, for servers whose answers carry no
`timings` (llama-server with --metrics; Lemonade re-exports them as lemonade_llamacpp_*)."""

from __future__ import annotations

import re

import httpx

from halospec_tui.client import ChatClient

# llama-server names (current, then older builds), matched at the end of the metric
# name so that prefixed re-exports (lemonade_llamacpp_..., llamacpp:...) count too.
DRAFTED = ("spec_decode_num_draft_tokens_total", "n_drafted_total")
ACCEPTED = ("spec_decode_num_accepted_tokens_total", "n_drafted_accepted_total")
_LINE = re.compile(r"^([A-Za-z_:][A-Za-z0-9_:]*)(\{[^}]*\})?\s+([-+0-9.eE]+|NaN)\s*$")


def parse_draft_counters(text: str) -> tuple[int, int] | None:
    """(drafted, accepted) totals from Prometheus text, or None when absent."""
    drafted = accepted = None
    for line in text.splitlines():
        m = _LINE.match(line.strip())
        if not m or m.group(2):  # skip comments and labelled series (per-position)
            continue
        name, value = m.group(1), m.group(3)
        try:
            v = int(float(value))
        except ValueError:
            continue
        if name.endswith(DRAFTED):
            drafted = v
        elif name.endswith(ACCEPTED):
            accepted = v
    if drafted is None or accepted is None:
        return None
    return drafted, accepted


class MetricsProbe:
    """Reads the server's draft counters; read before and after a request, the
    difference is its drafting (see `Runner._drafting`)."""

    def __init__(self, client: ChatClient, path: str = "/metrics") -> None:
        self.client = client
        self.path = path

    def read(self) -> tuple[int, int] | None:
        try:
            status, text = self.client.get_text(self.path, timeout_s=5.0)
        except httpx.HTTPError:
            return None
        return parse_draft_counters(text) if status == 200 else None
