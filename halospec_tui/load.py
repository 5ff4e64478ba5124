"""CPU load injection: burner processes with a bounded life, always reaped.

Burners are separate processes (spawned, not forked: the TUI runs threads), one per
core by default. Each stops by itself when its time is up or when its parent dies,
so even a killed harness leaves nothing spinning for long.
"""

from __future__ import annotations

import multiprocessing as mp
import os
import threading
import time
from multiprocessing import resource_tracker

from halospec_tui.procs import owner_tag

HARD_LIMIT_S = 600.0  # no burner ever runs longer than this


def _burn(duration_s: float, parent_pid: int) -> None:  # runs in the child
    deadline = time.monotonic() + min(duration_s, HARD_LIMIT_S)
    x = 0
    while time.monotonic() < deadline:
        for i in range(20_000):
            x = (x + i) * 1664525 + 1013904223 & 0xFFFFFFFF
        if os.getppid() != parent_pid:
            return


class LoadInjector:
    """Starts and stops a group of burners. Thread-safe; `stop()` is idempotent."""

    def __init__(self, workers: int | None = None) -> None:
        self.workers = workers if workers and workers > 0 else (os.cpu_count() or 1)
        self._ctx = mp.get_context("spawn")
        owner_tag()  # in our environment now: the spawned burners inherit it
        # Start the resource tracker now, from the calling thread: spawning it later
        # under Textual (which replaces sys.stderr) fails with "bad value(s) in fds_to_keep".
        resource_tracker.ensure_running()
        self._procs: list[mp.process.BaseProcess] = []
        self._lock = threading.Lock()
        self._ends_at: float | None = None

    def start(self, duration_s: float) -> None:
        with self._lock:
            self._reap_locked()
            if self._procs:
                return
            for _ in range(self.workers):
                p = self._ctx.Process(
                    target=_burn,
                    args=(duration_s, os.getpid()),
                    daemon=True,
                    name="halospec-burner",
                )
                p.start()
                self._procs.append(p)
            self._ends_at = time.monotonic() + duration_s

    @property
    def active(self) -> bool:
        with self._lock:
            self._reap_locked()
            return bool(self._procs)

    def seconds_left(self) -> float | None:
        """Seconds until the burners end by themselves, or None when none run."""
        with self._lock:
            self._reap_locked()
            if not self._procs or self._ends_at is None:
                return None
            return max(0.0, self._ends_at - time.monotonic())

    def pids(self) -> tuple[int, ...]:
        with self._lock:
            return tuple(p.pid for p in self._procs if p.pid is not None)

    def _reap_locked(self) -> None:
        alive = []
        for p in self._procs:
            if p.is_alive():
                alive.append(p)
            else:
                p.join(timeout=0)
        self._procs = alive

    def stop(self) -> None:
        with self._lock:
            for p in self._procs:
                if p.is_alive():
                    p.terminate()
            for p in self._procs:
                p.join(timeout=5)
                if p.is_alive():
                    p.kill()
                    p.join(timeout=5)
            self._procs = []
