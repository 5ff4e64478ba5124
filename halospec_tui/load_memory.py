"""Memory-bandwidth load: burners that stream large buffers and count what they move.

Token generation on a CPU, or on an APU whose GPU shares the memory, is bound by
memory bandwidth, and what a machine runs beside inference (a build, a browser, a
second model) takes bandwidth, not only cores. A memory burner copies one buffer into
another, both several times the size of the last-level cache, so that its work is
memory traffic rather than arithmetic. It counts the bytes it moves (read and write:
a copy of n bytes moves 2n) into shared memory after every chunk, and its own rate
over the last quarter second, so the parent can tell what the load really did
(`bytes_moved`, `gbps`).

The burners are bounded, reaped and tagged like the CPU burners (load.py): spawned,
stopped by their deadline (checked after every chunk, a chunk being kept under 0.1 s)
or by their parent's death, never past load.HARD_LIMIT_S.
"""

from __future__ import annotations

import ctypes
import mmap
import os
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from halospec_tui.load import HARD_LIMIT_S, Burners

MiB = 1 << 20
CACHE_DIR = Path("/sys/devices/system/cpu/cpu0/cache")
DEFAULT_LLC_BYTES = 32 * MiB  # assumed when sysfs does not give a level-3 cache: a large desktop L3
BUFFER_PER_LLC = 2  # each of the two buffers: the footprint is 4 caches, never served from one
# A buffer is at most this big: fresh memory is slow to touch the first time (in the
# kernel; on some virtual machines about 1 GB/s, in the host too), and that time is
# spent inside the load window. 2 x 256 MiB streams past any desktop or APU cache.
MAX_BUFFER_BYTES = 256 * MiB
MEMORY_SHARE = 0.25  # all burners' buffers together: at most this share of the available memory
MIN_CHUNK_BYTES = 4 * MiB
CHUNK_SLOW_S = 0.1  # a slower chunk is halved: the deadline is checked about this often
CHUNK_FAST_S = 0.05  # a faster one is doubled, up to the largest chunk
START_CHUNK_BYTES = 64 * MiB  # the first chunks: pages are touched for the first time
RATE_EVERY_S = 0.25  # a burner's own GB/s is over about this long
PARENT_EVERY_S = 0.1  # how often a burner checks that its parent lives


def parse_cache_size(text: str) -> int:
    """Bytes from a sysfs cache `size` ("491520K"; "32M", "1G" and plain bytes too)."""
    t = text.strip().upper()
    units = {"K": 1 << 10, "M": 1 << 20, "G": 1 << 30}
    if t and t[-1] in units:
        return int(t[:-1]) * units[t[-1]]
    return int(t)


def llc_bytes(cache_dir: Path = CACHE_DIR) -> int | None:
    """The largest level-3 cache that cpu0 sees (sysfs `index*/level` 3), or None."""
    best: int | None = None
    for index in sorted(cache_dir.glob("index*")):
        try:
            if (index / "level").read_text().strip() != "3":
                continue
            if (index / "type").read_text().strip() == "Instruction":
                continue
            size = parse_cache_size((index / "size").read_text())
        except (OSError, ValueError):
            continue
        best = size if best is None else max(best, size)
    return best


def buffer_size(llc: int | None, workers: int, available: int | None) -> int:
    """Bytes of each of a burner's two buffers: BUFFER_PER_LLC last-level caches
    (DEFAULT_LLC_BYTES when unknown), so that no sweep is served from the cache, up to
    MAX_BUFFER_BYTES; and all `workers` burners' buffers together at most MEMORY_SHARE
    of the `available` memory. A whole number of MiB, at least MIN_CHUNK_BYTES."""
    want = min(MAX_BUFFER_BYTES, BUFFER_PER_LLC * (llc or DEFAULT_LLC_BYTES))
    if available is not None:
        want = min(want, int(available * MEMORY_SHARE) // (2 * max(1, workers)))
    return max(MIN_CHUNK_BYTES, want // MiB * MiB)


def largest_chunk(llc: int | None, buffer_bytes: int) -> int:
    """The most bytes a burner copies at once: a whole cache's worth (so that a C
    library that streams large copies past the cache, as glibc does above 3/4 of it,
    does so), at most the buffer."""
    return min(buffer_bytes, max(MIN_CHUNK_BYTES, llc or DEFAULT_LLC_BYTES))


def next_chunk(chunk: int, took_s: float, largest: int) -> int:
    """The next chunk: halved after a slow one (over CHUNK_SLOW_S), doubled after a
    fast one (under CHUNK_FAST_S), within MIN_CHUNK_BYTES..largest."""
    if took_s > CHUNK_SLOW_S:
        return max(MIN_CHUNK_BYTES, chunk // 2)
    if took_s < CHUNK_FAST_S:
        return min(largest, chunk * 2)
    return chunk


def _stream(  # runs in the child
    duration_s: float,
    parent_pid: int,
    started_wall: float,
    buffer_bytes: int,
    chunk_bytes: int,
    moved: ctypes.c_double,
    rate: ctypes.c_double,
) -> None:
    import numpy as np

    # The window began when the parent started us: the interpreter's start is part of it.
    left = min(duration_s, HARD_LIMIT_S) - max(0.0, time.time() - started_wall)
    now = time.monotonic()
    deadline = now + left
    n = buffer_bytes // 8  # float64 elements
    # Plain anonymous mappings: numpy asks for transparent huge pages on large arrays,
    # whose first touch can stall for seconds in the kernel's compaction.
    src = np.frombuffer(mmap.mmap(-1, n * 8), dtype=np.float64)
    dst = np.frombuffer(mmap.mmap(-1, n * 8), dtype=np.float64)
    most = chunk_bytes // 8
    step = min(most, START_CHUNK_BYTES // 8)
    lo, filled = 0, False
    last_rate_t, last_rate_bytes, last_parent_t = now, moved.value, now
    while now < deadline:
        hi = min(n, lo + step)
        if not filled:  # first touch: a page never written reads as the one zero page
            src[lo:hi] = 1.0
            dst[lo:hi] = 0.0
        else:
            np.copyto(dst[lo:hi], src[lo:hi])
        moved.value += 16 * (hi - lo)  # fill: two writes; copy: a read and a write
        filled = filled or hi == n
        lo = 0 if hi == n else hi
        t = time.monotonic()
        step = next_chunk(step * 8, t - now, most * 8) // 8
        now = t
        if now - last_rate_t >= RATE_EVERY_S:
            rate.value = (moved.value - last_rate_bytes) / (now - last_rate_t)
            last_rate_t, last_rate_bytes = now, moved.value
        if now - last_parent_t >= PARENT_EVERY_S:
            last_parent_t = now
            if os.getppid() != parent_pid:
                break
    rate.value = 0.0


class MemoryLoad(Burners):
    """Memory burners, one per worker: each streams its buffers until its window ends.

    `bytes_moved()` is what all of them have moved since this object was made (read
    plus write; it only grows, across starts); `gbps()` their summed rates, as each
    measured its own over its last quarter second (None when none runs).
    """

    process_name = "halospec-memburner"

    def __init__(
        self,
        workers: int | None = None,
        buffer_bytes: int | None = None,
        cache_dir: Path = CACHE_DIR,
        available: Callable[[], int | None] | None = None,
    ) -> None:
        super().__init__(workers)
        self.llc_bytes = llc_bytes(cache_dir)
        free = (available or _available_bytes)()
        self.buffer_bytes = buffer_bytes or buffer_size(self.llc_bytes, self.workers, free)
        self.chunk_bytes = largest_chunk(self.llc_bytes, self.buffer_bytes)
        self._moved = [self._ctx.RawValue("d", 0.0) for _ in range(self.workers)]
        self._rate = [self._ctx.RawValue("d", 0.0) for _ in range(self.workers)]

    def _target(self) -> Callable[..., None]:
        return _stream

    def _args_of(self, index: int) -> tuple[Any, ...]:
        self._rate[index].value = 0.0
        return (time.time(), self.buffer_bytes, self.chunk_bytes, self._moved[index],
                self._rate[index])  # fmt: skip

    def bytes_moved(self) -> float:
        return float(sum(v.value for v in self._moved))

    def gbps(self) -> float | None:
        """The running burners' own rates, summed, in GB/s (1e9 bytes); None when none runs."""
        with self._lock:
            self._reap_locked()
            running = [i for i, _ in self._procs]
        if not running:
            return None
        return float(sum(self._rate[i].value for i in running)) / 1e9

    def describe(self) -> str:
        llc = "unknown" if self.llc_bytes is None else f"{self.llc_bytes // MiB} MiB"
        return (
            f"{self.workers} memory burner(s), two {self.buffer_bytes // MiB} MiB buffers "
            f"each (last-level cache {llc})"
        )


def _available_bytes() -> int | None:
    try:
        import psutil

        return int(psutil.virtual_memory().available)
    except (ImportError, OSError):
        return None


def memory_of(load: object) -> MemoryLoad | None:
    """The memory burners in a load (alone, or among a group's `loads`), or None."""
    if isinstance(load, MemoryLoad):
        return load
    parts: Sequence[object] = getattr(load, "loads", ())
    return next((x for x in parts if isinstance(x, MemoryLoad)), None)
