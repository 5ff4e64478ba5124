"""Request load: background clients on the same server during the load window.

The contention a shared server really sees: other users' requests queue with the
benchmark's own. Each client is a thread with its own HTTP client that sends small
chat requests back to back until it is stopped, its time is up or it has sent its
quota; every request has a total deadline. `LoadGroup` runs CPU burners and request
clients as one load with the interface the runner uses.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Sequence
from typing import Any, Protocol

import httpx

MAX_CLIENTS = 16
MAX_REQUESTS_PER_CLIENT = 10_000
HARD_LIMIT_S = 600.0


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
            try:
                client.post(self.path, json=self.body)
            except (httpx.HTTPError, RuntimeError):
                if self._stop.wait(0.2):  # unreachable or closed: back off, stay bounded
                    return
            n += 1
            with self._lock:
                self.sent += 1

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
