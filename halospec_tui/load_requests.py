"""Request load: background clients on the same server during the load window.

The contention a shared server really sees: other users' requests queue with the
benchmark's own. Each client is a thread with its own HTTP client that sends small
chat requests back to back until it is stopped, its time is up or it has sent its
quota; every request has a total deadline. `LoadGroup` runs CPU burners and request
clients as one load with the interface the runner uses.

Each client keeps when its requests ran and what their answers said they drafted
(llama.cpp `timings`, `usage`), so that a reader of the server's /metrics counters can
ask what the background did between two reads (`drafting_between`) and take it out of
its own step's figures (metrics.py).
"""

from __future__ import annotations

import json
import threading
import time
from collections import deque
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, replace
from typing import Any, Literal, Protocol

import httpx

MAX_CLIENTS = 16
MAX_REQUESTS_PER_CLIENT = 10_000
HARD_LIMIT_S = 600.0
MAX_RECORDS = 4096  # answers remembered for drafting_between (the newest ones)


@dataclass(frozen=True)
class Span:
    """A moment seen from the client: monotonic seconds from sending a request (a
    /metrics read) to having its answer."""

    start: float
    end: float


@dataclass(frozen=True)
class Answer:
    """One background request: when it was sent and ended, and what its answer said
    (None where it did not say: no `timings`, no `usage`).

    `failed`: it ended in transit (timeout, closed), so what the server did with it is
    unknown. A refused request (any HTTP status but 200) generated nothing.
    """

    sent: float
    ended: float
    drafted: int | None = None
    accepted: int | None = None
    tokens: int | None = None
    failed: bool = False

    @property
    def known(self) -> bool:
        return not self.failed and None not in (self.drafted, self.accepted, self.tokens)


@dataclass(frozen=True)
class Background:
    """The background clients' requests around two reads of the server's counters.

    `drafted`, `accepted`, `tokens`, `answers`: the requests certainly counted between
    the reads (sent after the first read had its answer, answered before the second
    was sent). `straddling`: answered requests that ran across a read, counted between
    the reads or not; `unknown`: such requests whose figures are not known (still in
    flight, failed in transit, or answered without timings or usage).
    """

    drafted: int = 0
    accepted: int = 0
    tokens: int = 0
    answers: int = 0
    straddling: tuple[Answer, ...] = ()
    unknown: int = 0

    @property
    def exact(self) -> bool:
        return not self.straddling and not self.unknown


class BackgroundClients(Protocol):
    def drafting_between(self, first: Span, second: Span) -> Background: ...


Place = Literal["in", "out", "straddling"]


def place(sent: float, ended: float | None, first: Span, second: Span) -> Place:
    """Where a request falls against two reads, from client-side times alone (a
    stamp is taken before sending and after receiving, so each rule is certain):
    out when answered before the first read was sent or sent after the second was
    answered, in when sent after the first read was answered and answered before the
    second was sent; else it ran across a read (`ended` None: still in flight)."""
    if (ended is not None and ended < first.start) or sent > second.end:
        return "out"
    if sent > first.end and ended is not None and ended < second.start:
        return "in"
    return "straddling"


def sum_between(
    answers: Iterable[Answer], in_flight: Iterable[float], first: Span, second: Span
) -> Background:
    """The background around two reads, from its answers and the send times of the
    requests still in flight."""
    drafted = accepted = tokens = n = unknown = 0
    straddling: list[Answer] = []
    for a in answers:
        where = place(a.sent, a.ended, first, second)
        if where == "out":
            continue
        if not a.known:
            unknown += 1
        elif where == "straddling":
            straddling.append(a)
        else:
            drafted += a.drafted or 0
            accepted += a.accepted or 0
            tokens += a.tokens or 0
            n += 1
    unknown += sum(1 for sent in in_flight if place(sent, None, first, second) != "out")
    return Background(drafted, accepted, tokens, n, tuple(straddling), unknown)


def combine(parts: Sequence[Background]) -> Background:
    """Several groups of background clients as one."""
    return Background(
        sum(p.drafted for p in parts),
        sum(p.accepted for p in parts),
        sum(p.tokens for p in parts),
        sum(p.answers for p in parts),
        tuple(a for p in parts for a in p.straddling),
        sum(p.unknown for p in parts),
    )


def answer_figures(text: str) -> tuple[int | None, int | None, int | None]:
    """(draft_n, draft_n_accepted, completion_tokens) from a chat answer, whole or
    streamed (the last event that carries each); None for what it does not say."""
    docs: list[Any] = []
    if text.lstrip().startswith("{"):
        docs.append(_loads(text))
    else:
        for line in text.splitlines():
            if line.startswith("data:") and line[5:].strip() != "[DONE]":
                docs.append(_loads(line[5:]))
    drafted = accepted = tokens = None
    for doc in docs:
        if not isinstance(doc, dict):
            continue
        t, u = doc.get("timings"), doc.get("usage")
        if isinstance(t, dict):
            drafted, accepted = _count(t.get("draft_n")), _count(t.get("draft_n_accepted"))
        if isinstance(u, dict):
            tokens = _count(u.get("completion_tokens"))
    return drafted, accepted, tokens


def _count(v: Any) -> int | None:
    return v if isinstance(v, int) and not isinstance(v, bool) and v >= 0 else None


def _loads(text: str) -> Any:
    try:
        return json.loads(text)
    except ValueError:
        return None

class Load(Protocol):
    workers: int

    def start(self, duration_s: float) -> None: ...

    def stop(self) -> None: ...

    @property
    def active(self) -> bool: ...

    def seconds_left(self) -> float | None: ...


class RequestLoad:
    """`clients` threads posting `body` to `base_url + path` for the load window."""

    def __init__(
        self,
        base_url: str,
        path: str,
        body: dict[str, Any],
        clients: int = 2,
        headers: dict[str, str] | None = None,
        timeout_s: float = 30.0,
        max_requests: int = MAX_REQUESTS_PER_CLIENT,
    ) -> None:
        if not 1 <= clients <= MAX_CLIENTS:
            raise ValueError(f"request load clients must be 1..{MAX_CLIENTS} (got {clients})")
        self.workers = clients
        self.base_url = base_url
        self.path = path
        self.body = body
        self.headers = headers or {}
        self.timeout_s = timeout_s
        self.max_requests = max_requests
        self.sent = 0  # requests answered (any status), for tests and the log
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []
        self._clients: list[httpx.Client] = []
        self._lock = threading.Lock()
        self._ends_at: float | None = None
        self._answers: deque[Answer] = deque(maxlen=MAX_RECORDS)
        self._in_flight: dict[int, float] = {}  # thread id -> when its request was sent
        self._forgotten_until = -float("inf")  # the latest end among answers let go

    def start(self, duration_s: float) -> None:
        with self._lock:
            if any(t.is_alive() for t in self._threads):
                return
            self._stop.clear()
            self._threads = []
            self._clients = []
            self._ends_at = time.monotonic() + min(duration_s, HARD_LIMIT_S)
            for i in range(self.workers):
                c = httpx.Client(
                    base_url=self.base_url, headers=self.headers, timeout=self.timeout_s
                )
                self._clients.append(c)
                t = threading.Thread(
                    target=self._loop, args=(c,), name=f"halospec-reqload-{i}", daemon=True
                )
                self._threads.append(t)
                t.start()

    def _loop(self, client: httpx.Client) -> None:
        n = 0
        while not self._stop.is_set() and n < self.max_requests:
            if self._ends_at is not None and time.monotonic() >= self._ends_at:
                return
            sent = time.monotonic()
            with self._lock:
                self._in_flight[threading.get_ident()] = sent
            try:
                r = client.post(self.path, json=self.body)
            except (httpx.HTTPError, RuntimeError):
                self._record(Answer(sent, time.monotonic(), failed=True))
                if self._stop.wait(0.2):  # unreachable or closed: back off, stay bounded
                    return
            else:
                ended = time.monotonic()
                figures = answer_figures(r.text) if r.status_code == 200 else (0, 0, 0)
                self._record(Answer(sent, ended, *figures))
            n += 1
            with self._lock:
                self.sent += 1

    def _record(self, answer: Answer) -> None:
        with self._lock:
            self._in_flight.pop(threading.get_ident(), None)
            if len(self._answers) == self._answers.maxlen:
                self._forgotten_until = max(self._forgotten_until, self._answers[0].ended)
            self._answers.append(answer)

    def drafting_between(self, first: Span, second: Span) -> Background:
        """These clients' requests around two reads of the server's counters."""
        with self._lock:
            answers, in_flight = list(self._answers), list(self._in_flight.values())
            forgotten = self._forgotten_until
        bg = sum_between(answers, in_flight, first, second)
        if forgotten >= first.start:  # answers let go may have counted between the reads
            return replace(bg, unknown=bg.unknown + 1)
        return bg

    @property
    def active(self) -> bool:
        with self._lock:
            if self._ends_at is not None and time.monotonic() >= self._ends_at:
                return False
            return any(t.is_alive() for t in self._threads)

    def seconds_left(self) -> float | None:
        if not self.active or self._ends_at is None:
            return None
        return max(0.0, self._ends_at - time.monotonic())

    def stop(self) -> None:
        self._stop.set()
        with self._lock:
            clients, threads = self._clients, self._threads
            self._clients, self._threads = [], []
        for c in clients:
            c.close()  # a request in flight fails at once
        for t in threads:
            t.join(timeout=self.timeout_s + 1)


class LoadGroup:
    """Several loads started and stopped together (CPU burners and request clients)."""

    def __init__(self, loads: Sequence[Load]) -> None:
        self.loads = tuple(loads)
        self.workers = sum(x.workers for x in self.loads)

    def start(self, duration_s: float) -> None:
        for x in self.loads:
            x.start(duration_s)

    def stop(self) -> None:
        for x in self.loads:
            x.stop()

    @property
    def active(self) -> bool:
        return any(x.active for x in self.loads)

    def seconds_left(self) -> float | None:
        left = [s for x in self.loads if (s := x.seconds_left()) is not None]
        return max(left) if left else None

    def pids(self) -> tuple[int, ...]:
        return tuple(p for x in self.loads for p in getattr(x, "pids", lambda: ())())

    def drafting_between(self, first: Span, second: Span) -> Background:
        """The request clients among these loads, around two reads of the counters."""
        clients = [x for x in self.loads if isinstance(x, RequestLoad)]
        return combine([c.drafting_between(first, second) for c in clients])


def background_of(load: object) -> BackgroundClients | None:
    """The request clients in a load, to ask what they drafted; None for CPU load only."""
    if isinstance(load, RequestLoad):
        return load
    if isinstance(load, LoadGroup) and any(isinstance(x, RequestLoad) for x in load.loads):
        return load
    return None
