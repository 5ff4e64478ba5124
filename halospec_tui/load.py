"""Load injection: burner processes with a bounded life, always reaped.

Burners are separate processes (spawned, not forked: the TUI runs threads), one per
core by default. Each stops by itself when its time is up or when its parent dies,
so even a killed harness leaves nothing spinning for long. `LoadInjector` runs CPU
burners (arithmetic); `load_memory.MemoryLoad` runs memory burners (bandwidth) the
same way.
"""

from __future__ import annotations

import multiprocessing as mp
import os
import threading
import time
from collections.abc import Callable
from multiprocessing import resource_tracker
from typing import Any

from halospec_tui.procs import owner_tag

HARD_LIMIT_S = 600.0  # no burner ever runs longer than this


def _burn(duration_s: float, parent_pid: int) -> None:  # runs in the child
    deadline = time.monotonic() + min(duration_s, HARD_LIMIT_S)
    x = 0
    while time.monotonic() < deadline:
        for i in range(20_000):  # a few ms: the deadline is checked far more often than 0.2 s
            x = (x + i) * 1664525 + 1013904223 & 0xFFFFFFFF
        if os.getppid() != parent_pid:
            return


class Burners:
    """Starts and stops a group of burner processes, each running `target(duration_s,
    parent_pid, *args_of(i))`. Thread-safe; `stop()` is idempotent.

    Subclasses name their target and the extra arguments of each burner.
    """

    process_name = "halospec-burner"

    def __init__(self, workers: int | None = None) -> None:
        self.workers = workers if workers and workers > 0 else (os.cpu_count() or 1)
        self._ctx = mp.get_context("spawn")
        owner_tag()  # in our environment now: the spawned burners inherit it
        # Start the resource tracker now, from the calling thread: spawning it later
        # under Textual (which replaces sys.stderr) fails with "bad value(s) in fds_to_keep".
        resource_tracker.ensure_running()
        self._procs: list[tuple[int, mp.process.BaseProcess]] = []  # (index, process)
        self._lock = threading.Lock()
        self._ends_at: float | None = None

    # -- what a kind of burner says --------------------------------------------------
    def _target(self) -> Callable[..., None]:
        raise NotImplementedError

    def _args_of(self, index: int) -> tuple[Any, ...]:
        """Extra arguments of burner `index` (after the duration and the parent's PID)."""
        return ()

    # -- the group -----------------------------------------------------------------------
    def start(self, duration_s: float) -> None:
        with self._lock:
            self._reap_locked()
            if self._procs:
                return
            for i in range(self.workers):
                p = self._ctx.Process(
                    target=self._target(),
                    args=(duration_s, os.getpid(), *self._args_of(i)),
                    daemon=True,
                    name=self.process_name,
                )
                p.start()
                self._procs.append((i, p))
            self._ends_at = time.monotonic() + min(duration_s, HARD_LIMIT_S)

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
            return tuple(p.pid for _, p in self._procs if p.pid is not None)

    def _reap_locked(self) -> None:
        alive = []
        for i, p in self._procs:
            if p.is_alive():
                alive.append((i, p))
            else:
                p.join(timeout=0)
        self._procs = alive

    def stop(self) -> None:
        with self._lock:
            for _, p in self._procs:
                if p.is_alive():
                    p.terminate()
            for _, p in self._procs:
                p.join(timeout=5)
                if p.is_alive():
                    p.kill()
                    p.join(timeout=5)
            self._procs = []


class LoadInjector(Burners):
    """CPU burners: integer arithmetic in a loop, one process per worker."""

    def _target(self) -> Callable[..., None]:
        return _burn
