"""Memory burners: buffer sizing from the cache, the chunk rule, a real burner's count
of the bytes it moves, its deadline, its tag, and the load kinds of the command line."""

import sys
import time

import psutil
import pytest

from halospec_tui.cli import build_load
from halospec_tui.client import ChatClient
from halospec_tui.load import LoadInjector
from halospec_tui.load_memory import (
    MAX_BUFFER_BYTES,
    MemoryLoad,
    MiB,
    buffer_size,
    largest_chunk,
    llc_bytes,
    memory_of,
    next_chunk,
    parse_cache_size,
)
from halospec_tui.load_requests import LoadGroup, RequestLoad

CLI = [sys.executable, "-m", "halospec_tui"]
FAST = ["--sim-target-ms", "1.5", "--sim-reload-ms", "20"]


def _cache(tmp_path, levels):
    """A sysfs cache folder: one index per (level, type, size)."""
    for i, (level, kind, size) in enumerate(levels):
        d = tmp_path / f"index{i}"
        d.mkdir()
        (d / "level").write_text(f"{level}\n")
        (d / "type").write_text(f"{kind}\n")
        (d / "size").write_text(f"{size}\n")
    return tmp_path


# Live burners share a worker with the timing tests of tests/test_real_pairs.py.
pytestmark = pytest.mark.xdist_group("memory_traffic")


def test_cache_sizes_read_as_the_kernel_writes_them():
    assert parse_cache_size("491520K\n") == 491520 * 1024  # this machine's L3, as sysfs says
    assert parse_cache_size("48K") == 49152
    assert parse_cache_size("32M") == 32 * 1024 * 1024
    assert parse_cache_size("1G") == 1 << 30
    assert parse_cache_size("4096") == 4096


def test_the_last_level_cache_is_the_level_3_one(tmp_path):
    # the layout of /sys/devices/system/cpu/cpu0/cache on these machines
    d = _cache(tmp_path, [(1, "Data", "48K"), (1, "Instruction", "64K"),
                          (2, "Unified", "2048K"), (3, "Unified", "491520K")])  # fmt: skip
    assert llc_bytes(d) == 480 * MiB


def test_no_level_3_cache_is_none(tmp_path):
    d = _cache(tmp_path, [(1, "Data", "32K"), (2, "Unified", "1024K")])
    assert llc_bytes(d) is None
    assert llc_bytes(tmp_path / "absent") is None


def test_buffers_stream_past_the_cache_within_the_memory_share():
    # two caches' worth each, whole MiB
    assert buffer_size(32 * MiB, 2, None) == 64 * MiB
    assert buffer_size(48 * MiB + 512, 1, None) == 96 * MiB  # 2 x (48 MiB + 512 B), cut to whole MiB
    # unknown cache: 32 MiB assumed
    assert buffer_size(None, 1, None) == 64 * MiB
    # a huge (host) L3 is capped: fresh memory is slow to touch inside the window
    assert buffer_size(480 * MiB, 2, None) == MAX_BUFFER_BYTES == 256 * MiB
    # 4 burners x 2 buffers within a quarter of 1 GiB: 32 MiB each
    assert buffer_size(32 * MiB, 4, 1 << 30) == 32 * MiB
    # never under the smallest chunk
    assert buffer_size(32 * MiB, 8, 10 * MiB) == 4 * MiB


def test_chunks_start_at_a_cache_and_follow_their_time():
    assert largest_chunk(32 * MiB, 64 * MiB) == 32 * MiB
    assert largest_chunk(480 * MiB, 256 * MiB) == 256 * MiB  # at most the buffer
    assert largest_chunk(None, 256 * MiB) == 32 * MiB
    assert largest_chunk(1 * MiB, 64 * MiB) == 4 * MiB  # at least the smallest chunk
    assert next_chunk(64 * MiB, 0.15, 256 * MiB) == 32 * MiB  # slow: halved
    assert next_chunk(4 * MiB, 0.5, 256 * MiB) == 4 * MiB  # not under the smallest
    assert next_chunk(64 * MiB, 0.01, 256 * MiB) == 128 * MiB  # fast: doubled
    assert next_chunk(256 * MiB, 0.01, 256 * MiB) == 256 * MiB  # not over the largest
    assert next_chunk(64 * MiB, 0.07, 256 * MiB) == 64 * MiB  # in between: kept


def test_a_burner_counts_what_it_moves_and_stops_with_its_window(no_leftovers):
    load = MemoryLoad(workers=1, buffer_bytes=32 * MiB)
    # The window holds the interpreter's start and numpy's import, which take seconds on
    # a loaded machine: long enough that the burner runs past them and reports its rate.
    window = 4.0
    start = time.monotonic()
    load.start(window)
    try:
        (pid,) = load.pids()
        owner = _owner(pid)
        rates, last_bytes, last_change = [], 0.0, start
        while load.active and time.monotonic() - start < window + 10:
            moved = load.bytes_moved()
            if moved != last_bytes:
                last_bytes, last_change = moved, time.monotonic()
            rate = load.gbps()
            if rate is not None:
                rates.append(rate)
            time.sleep(0.02)
        ended = time.monotonic()
    finally:
        load.stop()
    assert owner == no_leftovers  # tagged as ours
    # the first pass writes both buffers whole: at least 2 x 32 MiB moved, counted in
    # 16-byte steps (a float64 read and written, or two written)
    assert last_bytes >= 64 * MiB and last_bytes % 16 == 0
    assert max(rates) > 0  # it measured its own rate while it ran
    # it stops moving bytes within 1 s of its window's end (spawning is inside the window)
    assert last_change - start < window + 1.0, last_change - start
    assert ended - start < window + 10
    assert load.gbps() is None and not load.active and load.pids() == ()


def test_bytes_keep_counting_across_starts(no_leftovers):
    load = MemoryLoad(workers=1, buffer_bytes=8 * MiB)
    try:
        load.start(0.8)
        _wait(lambda: not load.active)
        first = load.bytes_moved()
        load.start(0.8)
        _wait(lambda: not load.active)
        assert load.bytes_moved() > first > 0
    finally:
        load.stop()


def _owner(pid, timeout_s=10.0):
    """The owner tag in a process's environment once it has exec'd (just after the
    fork, /proc shows the environment its parent started with)."""
    end = time.monotonic() + timeout_s
    while True:
        env = psutil.Process(pid).environ()
        if "HALOSPEC_TUI_OWNER" in env or time.monotonic() > end:
            return env.get("HALOSPEC_TUI_OWNER")
        time.sleep(0.02)


def _wait(cond, timeout_s=20.0):
    end = time.monotonic() + timeout_s
    while not cond():
        assert time.monotonic() < end
        time.sleep(0.05)


def test_stop_ends_memory_burners_at_once(no_leftovers):
    load = MemoryLoad(workers=2, buffer_bytes=8 * MiB)
    load.start(60.0)
    pids = load.pids()
    assert len(pids) == 2
    t = time.monotonic()
    load.stop()
    assert time.monotonic() - t < 5.0
    assert not any(psutil.pid_exists(p) and psutil.Process(p).status() != "zombie" for p in pids)


def test_memory_of_finds_the_burners_alone_or_in_a_group():
    mem = MemoryLoad(workers=1, buffer_bytes=8 * MiB)
    cpu = LoadInjector(workers=1)
    assert memory_of(mem) is mem
    assert memory_of(LoadGroup([cpu, mem])) is mem
    assert memory_of(cpu) is None and memory_of(LoadGroup([cpu])) is None and memory_of(None) is None


def test_load_kinds_build_what_they_say():
    client = ChatClient("http://127.0.0.1:9", "m")
    try:
        kinds = {}
        for kind in ("cpu", "memory", "requests", "both", "all"):
            load = build_load(kind, 1, 2, client)
            parts = load.loads if isinstance(load, LoadGroup) else (load,)
            kinds[kind] = [type(x) for x in parts]
            assert all(x.workers == (2 if isinstance(x, RequestLoad) else 1) for x in parts)
    finally:
        client.close()
    assert kinds == {
        "cpu": [LoadInjector],
        "memory": [MemoryLoad],
        "requests": [RequestLoad],
        "both": [LoadInjector, RequestLoad],  # as before: CPU burners and request clients
        "all": [LoadInjector, MemoryLoad, RequestLoad],
    }
