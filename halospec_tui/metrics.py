"""Draft counters from Prometheus `/metrics`, for servers whose answers carry no
`timings` (llama-server with --metrics; Lemonade re-exports them as lemonade_llamacpp_*)."""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import replace
from typing import Protocol

import httpx

from halospec_tui.client import Reply

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


class TextSource(Protocol):
    def get_text(self, path: str, timeout_s: float = 5.0) -> tuple[int, str]: ...


class MetricsProbe:
    """Reads the server's draft counters; read before and after a request, the
    difference is its drafting (see `DraftCounter`)."""

    def __init__(self, client: TextSource, path: str = "/metrics") -> None:
        self.client = client
        self.path = path

    def read(self) -> tuple[int, int] | None:
        try:
            status, text = self.client.get_text(self.path, timeout_s=5.0)
        except httpx.HTTPError:
            return None
        return parse_draft_counters(text) if status == 200 else None


class DraftCounter:
    """Where a step's drafting figures come from: the answer's timings, else /metrics
    deltas read around the step, else nowhere.

    The source is settled at the first successful step that asked for drafting:
    timings when the answer has them; else /metrics counters, read around every later
    step (so servers with timings never see an extra request); else none.
    """

    def __init__(self, probe: MetricsProbe, log: Callable[[str, str], None]) -> None:
        self.probe = probe
        self.source = "unknown"  # timings | metrics | none, once known
        self._log = log

    def before(self) -> tuple[int, int] | None:
        """Counters to read before a step (only once /metrics is the source)."""
        return self.probe.read() if self.source == "metrics" else None

    def after(self, reply: Reply, before: tuple[int, int] | None, k: int) -> Reply:
        """The reply with drafted/accepted filled in from the settled source."""
        if not reply.success or self.source in ("timings", "none"):
            return reply
        if k == 0 and self.source == "unknown":
            return reply  # no drafting asked for: no timings expected, settle nothing yet
        if reply.drafted is not None:
            self.source = "timings"
            return reply
        if self.source == "unknown":
            if self.probe.read() is None:
                self.source = "none"
            else:
                self._log("info", "answers carry no draft timings: reading drafting from /metrics")
                self.source = "metrics"
            return reply
        after = self.probe.read()
        if before is None or after is None:
            return reply
        return replace(reply, drafted=after[0] - before[0], accepted=after[1] - before[1])
