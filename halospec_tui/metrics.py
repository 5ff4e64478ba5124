"""Draft counters from Prometheus `/metrics`, for servers whose answers carry no
`timings`: llama-server with --metrics (`llamacpp:spec_decode_num_draft_tokens_total`;
Lemonade re-exports it as `lemonade_llamacpp_...`) and vLLM
(`vllm:spec_decode_num_draft_tokens_total{model_name="...",engine="0"}`).

The text is read by prometheus_client's parser, so labels, timestamps, escapes and
the `_total` suffix are handled as the exposition format defines them. A counter is
summed over its label sets (several engines, several positions of a re-export),
except that when some series carry a `model_name` (or `model`) label equal to the
run's model, only those count. SGLang exports no drafted/accepted counters (only
`sglang:spec_accept_length` and `sglang:spec_accept_rate` gauges): it reads as none.

This tool's own background clients (--load-kind requests) draft on the same server:
`DraftCounter` takes out what they drafted between its two reads (`own_share`).
"""

from __future__ import annotations

import itertools
import math
import re
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, replace
from typing import Protocol

import httpx
from prometheus_client.metrics_core import Metric
from prometheus_client.parser import text_string_to_metric_families

from halospec_tui.client import Reply
from halospec_tui.load_requests import Background, BackgroundClients, Span

# (drafted, accepted) counter names without `_total`, current llama.cpp / vLLM names
# first, then older llama.cpp builds; matched at the end of the name so that prefixed
# ones (llamacpp:, vllm:, lemonade_llamacpp_) count too.
PAIRS = (
    ("spec_decode_num_draft_tokens", "spec_decode_num_accepted_tokens"),
    ("n_drafted", "n_drafted_accepted"),
)
DRAFTED = tuple(f"{d}_total" for d, _ in PAIRS)  # as servers write them
ACCEPTED = tuple(f"{a}_total" for _, a in PAIRS)
# llama.cpp's generated-token counter, added at the same moment as its draft counters
# (a request's end; measured on llama-server) and equal to the answers' usage
# completion_tokens: it tells which of the background's requests were counted.
TOKENS = "tokens_predicted"
MODEL_LABELS = ("model_name", "model")
MAX_STRADDLING = 10  # background requests across a read told apart by their tokens
# Only lines naming a counter used here reach the parser: a vLLM scrape is mostly
# histograms, and a line the parser rejects elsewhere cannot hide these.
_WANTED = re.compile("|".join(re.escape(n) for pair in PAIRS for n in pair) + "|" + TOKENS)
_SKIPPED_TYPES = ("histogram", "summary", "gaugehistogram", "info", "stateset")


@dataclass(frozen=True)
class DraftCounts:
    """Drafted and accepted token totals, and the counter they were read from."""

    drafted: int
    accepted: int
    family: str  # the drafted counter's name without `_total`, as the server writes it
    tokens: int | None = None  # llama.cpp's tokens_predicted beside them, when written

    @property
    def counts_at_end(self) -> bool:
        """llama.cpp adds a request's drafting when it finishes (measured on
        llama-server: the counters stay still while a request generates); vLLM adds it
        at every engine step, while the request runs."""
        return "llamacpp" in self.family


def _base(name: str) -> str:
    return name[: -len("_total")] if name.endswith("_total") else name


def _families(text: str) -> Iterator[Metric]:
    lines = [ln for ln in text.splitlines() if _WANTED.search(ln)]
    try:
        yield from list(text_string_to_metric_families("\n".join(lines) + "\n"))
        return
    except ValueError:
        pass
    for ln in lines:  # one bad line: keep the others, as a scraper would not
        try:
            yield from list(text_string_to_metric_families(ln + "\n"))
        except ValueError:
            continue


def _series(text: str) -> dict[str, list[tuple[dict[str, str], float]]]:
    """Counter name (without `_total`) -> [(labels, value)], in the order of the text."""
    out: dict[str, list[tuple[dict[str, str], float]]] = {}
    for family in _families(text):
        if family.type in _SKIPPED_TYPES:
            continue
        for s in family.samples:
            if s.name.endswith("_created"):  # a counter's start time, not a count
                continue
            out.setdefault(_base(s.name), []).append((dict(s.labels), float(s.value)))
    return out


def _total(series: list[tuple[dict[str, str], float]], model: str | None) -> int | None:
    """The sum over label sets, or over the run's model's sets where labels name it;
    None when a value is not a finite non-negative count."""
    if model:
        own = [(lb, v) for lb, v in series if any(lb.get(k) == model for k in MODEL_LABELS)]
        series = own or series
    values = [v for _, v in series]
    if not all(math.isfinite(v) and v >= 0 for v in values):
        return None
    return int(sum(values))


def read_draft_counts(text: str, model: str | None = None) -> DraftCounts | None:
    """Drafted/accepted totals from Prometheus text, or None when absent or unreadable.

    Both come from one server's pair of counters (never llama.cpp's drafted with
    another prefix's accepted).
    """
    series = _series(text)
    for drafted_name, accepted_name in PAIRS:
        for name in series:
            if not name.endswith(drafted_name):
                continue
            prefix = name[: -len(drafted_name)]
            if prefix + accepted_name not in series:
                continue
            drafted = _total(series[name], model)
            accepted = _total(series[prefix + accepted_name], model)
            if drafted is None or accepted is None:
                return None
            tokens = series.get(prefix + TOKENS)
            return DraftCounts(drafted, accepted, name, _total(tokens, model) if tokens else None)
    return None


def parse_draft_counters(text: str, model: str | None = None) -> tuple[int, int] | None:
    """(drafted, accepted) totals from Prometheus text, or None when absent."""
    counts = read_draft_counts(text, model)
    return None if counts is None else (counts.drafted, counts.accepted)


@dataclass(frozen=True)
class Growth:
    """What the counters grew by between two reads."""

    drafted: int
    accepted: int
    tokens: int | None

    @staticmethod
    def between(before: DraftCounts, after: DraftCounts) -> Growth:
        tokens = None
        if before.tokens is not None and after.tokens is not None:
            tokens = after.tokens - before.tokens
        return Growth(after.drafted - before.drafted, after.accepted - before.accepted, tokens)

    @property
    def went_down(self) -> bool:
        return min(self.drafted, self.accepted, self.tokens or 0) < 0


@dataclass(frozen=True)
class Share:
    """A step's own drafting, and whether it is exactly its own."""

    drafted: int | None
    accepted: int | None
    exact: bool
    why: str = ""  # why not exact


def own_share(growth: Growth, own_tokens: int, bg: Background, counts_at_end: bool) -> Share:
    """The step's drafting: the counters' growth less the background's.

    The background requests certainly counted between the reads come off. Those that
    ran across a read may or may not have been counted: where the server adds a
    request's tokens and drafting together (llama.cpp), the tokens counted beyond the
    step's own and the certain ones tell which, when one choice of them fits alone.
    Else the figures keep them and are not exact. The token count also checks an
    exact figure: tokens from anyone else make it shared too.
    """
    drafted, accepted = growth.drafted - bg.drafted, growth.accepted - bg.accepted
    rest = None if growth.tokens is None else growth.tokens - own_tokens - bg.tokens
    if drafted < 0 or accepted < 0:
        return Share(None, None, False, "the background's answers say more than the counters grew")
    if rest is not None and rest < 0:
        return Share(drafted, accepted, False, "fewer tokens counted than answered")
    if bg.exact and (rest is None or rest == 0):
        return Share(drafted, accepted, True)
    if rest == 0 and counts_at_end:
        return Share(drafted, accepted, True)  # none of those across a read was counted
    if rest is None or not counts_at_end or bg.unknown or len(bg.straddling) > MAX_STRADDLING:
        return Share(drafted, accepted, False, _why(bg, rest))
    fits = {
        (sum(a.drafted or 0 for a in s), sum(a.accepted or 0 for a in s))
        for n in range(1, len(bg.straddling) + 1)
        for s in itertools.combinations(bg.straddling, n)
        if sum(a.tokens or 0 for a in s) == rest
    }
    if len(fits) == 1:
        (d, a) = fits.pop()
        if d <= drafted and a <= accepted:
            return Share(drafted - d, accepted - a, True)
    return Share(drafted, accepted, False, _why(bg, rest))


def _why(bg: Background, rest: int | None) -> str:
    if bg.exact:
        return f"{rest} tokens counted from other requests"
    parts = []
    if bg.straddling:
        parts.append(f"{len(bg.straddling)} ran across a read")
    if bg.unknown:
        parts.append(f"{bg.unknown} with unknown figures")
    return "background requests: " + ", ".join(parts)


@dataclass(frozen=True)
class Reading:
    """Counters read at one moment: what the server said, and when it was asked
    (monotonic seconds, from sending the request to having the answer)."""

    counts: DraftCounts
    span: Span


class TextSource(Protocol):
    def get_text(self, path: str, timeout_s: float = 5.0) -> tuple[int, str]: ...


class MetricsProbe:
    """Reads the server's draft counters; read before and after a request, the
    difference is its drafting (see `DraftCounter`). The run's model (the client's,
    unless given) selects among series labelled with a model name."""

    def __init__(
        self, client: TextSource, path: str = "/metrics", model: str | None = None
    ) -> None:
        self.client = client
        self.path = path
        self.model = model if model is not None else getattr(client, "model", None)

    def read(self) -> DraftCounts | None:
        reading = self.reading()
        return None if reading is None else reading.counts

    def reading(self) -> Reading | None:
        start = time.monotonic()
        try:
            status, text = self.client.get_text(self.path, timeout_s=5.0)
        except httpx.HTTPError:
            return None
        end = time.monotonic()
        counts = read_draft_counts(text, self.model) if status == 200 else None
        return None if counts is None else Reading(counts, Span(start, end))


class DraftCounter:
    """Where a step's drafting figures come from: the answer's timings, else /metrics
    deltas read around the step, else nowhere.

    The source is settled at the first successful step that asked for drafting:
    timings when the answer has them; else /metrics counters, read around every later
    step (so servers with timings never see an extra request); else none.

    With background clients of this tool on the same server (`background`), their
    drafting between the two reads is subtracted where it can be told apart; where it
    cannot, the step's counts are marked shared (`last_shared`) and the log says so.
    """

    def __init__(
        self,
        probe: MetricsProbe,
        log: Callable[[str, str], None],
        background: BackgroundClients | None = None,
    ) -> None:
        self.probe = probe
        self.source = "unknown"  # timings | metrics | none, once known
        self.background = background
        self.last_shared = False  # the last step's counts include other clients' drafting
        self.last_background: Background | None = None  # what was taken out of the last step
        self.shared_steps = 0
        self._log = log
        self._warned_reset = False

    def before(self) -> Reading | None:
        """Counters to read before a step (only once /metrics is the source)."""
        return self.probe.reading() if self.source == "metrics" else None

    def after(self, reply: Reply, before: Reading | None, k: int) -> Reply:
        """The reply with drafted/accepted filled in from the settled source."""
        self.last_shared, self.last_background = False, None
        if not reply.success or self.source in ("timings", "none"):
            return reply
        if k == 0 and self.source == "unknown":
            return reply  # no drafting asked for: no timings expected, settle nothing yet
        if reply.drafted is not None:
            self.source = "timings"
            return reply
        if self.source == "unknown":
            if self.probe.reading() is None:
                self.source = "none"
            else:
                self._log("info", "answers carry no draft timings: reading drafting from /metrics")
                self.source = "metrics"
            return reply
        after = self.probe.reading()
        if before is None or after is None:
            return reply
        if Growth.between(before.counts, after.counts).went_down:
            self._note_reset()
            return reply
        return self._own(reply, before, after)

    def _own(self, reply: Reply, before: Reading, after: Reading) -> Reply:
        """The step's own drafting: the counters' growth less the background clients'."""
        growth = Growth.between(before.counts, after.counts)
        if self.background is None:
            return replace(reply, drafted=growth.drafted, accepted=growth.accepted)
        bg = self.background.drafting_between(before.span, after.span)
        self.last_background = bg
        share = own_share(growth, reply.tokens, bg, after.counts.counts_at_end)
        if not share.exact:
            self._mark_shared(share.why)
        return replace(reply, drafted=share.drafted, accepted=share.accepted)

    def _mark_shared(self, why: str) -> None:
        self.last_shared = True
        self.shared_steps += 1
        if self.shared_steps == 1:
            self._log(
                "warning",
                "drafting read from /metrics includes other requests' on some steps "
                f"({why}): those steps' counts are marked shared",
            )

    def _note_reset(self) -> None:
        if not self._warned_reset:
            self._warned_reset = True
            self._log("warning", "the /metrics draft counters went down (server restarted?): "
                      "that step's drafting is unknown")  # fmt: skip
