"""The machine's memory bandwidth, from its memory controllers' own counters where the
kernel shows them to this user; otherwise nothing, never a made-up figure.

Sources, in this order (`open_counter`):

- perf uncore PMUs, counted by `perf stat -a -x, -I 100` in a child process:
  Intel's `uncore_imc_N/cas_count_read/` and `/cas_count_write/` (the kernel gives
  them scale 6.103515625e-5 = 64 / 2^20 and unit MiB, so perf prints MiB; client parts
  without them have `uncore_imc_free_running_N/data_read/`, `/data_write/`, also in
  MiB); AMD's (Zen 4 and later) `amd_umc_N/umc_cas_cmd.rd/` and `.wr/`, counts of
  64-byte CAS commands, as perf's own `umc_mem_read_bandwidth` metric counts them.
- resctrl memory-bandwidth monitoring (Intel RDT, AMD PQoS): the `mbm_total_bytes`
  files under /sys/fs/resctrl, cumulative bytes past the last-level cache, summed
  over the root group and every control group (a group's count includes its
  monitoring subgroups).

Virtual machines usually have neither: `open_counter` then says why, and the caller
says once that the counters are unavailable.
"""

from __future__ import annotations

import contextlib
import shutil
import subprocess
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

from halospec_tui.procs import tagged_env, terminate, watch_child

PMU_DIR = Path("/sys/bus/event_source/devices")
RESCTRL_DIR = Path("/sys/fs/resctrl")
INTERVAL_MS = 100  # perf's counting interval
MAX_RUN_S = 24 * 3600.0  # perf stops by itself after this long (--interval-count)
STARTUP_S = 2.0  # the first interval must arrive within this, or the counters are refused
CAS_BYTES = 64  # one CAS command moves one 64-byte line
UNIT_BYTES = {"MiB": float(1 << 20), "MB": 1e6, "B": 1.0, "Bytes": 1.0}
LIVE_MIN_S = 0.5  # resctrl: the live rate is over at least this long


@dataclass(frozen=True)
class Reading:
    """Bytes counted since the counter was opened, as of `at` (monotonic seconds);
    `gaps`: intervals so far whose count is unknown (a window spanning one has no
    figure)."""

    at: float
    total_bytes: float
    gaps: int = 0


@dataclass(frozen=True)
class Unavailable:
    reason: str


class Counter(Protocol):
    source: str  # what is counted, for the log

    def read(self) -> Reading | None: ...

    def recent_gbps(self) -> float | None:
        """GB/s (1e9 bytes) over the latest stretch the counter has measured."""
        ...

    def close(self) -> None: ...


def gbps_between(first: Reading | None, second: Reading | None) -> float | None:
    """GB/s from one reading to a later one; None when either is missing, an unknown
    interval lies between them, or no time passed."""
    if first is None or second is None or second.gaps != first.gaps:
        return None
    if second.at <= first.at or second.total_bytes < first.total_bytes:
        return None
    return (second.total_bytes - first.total_bytes) / (second.at - first.at) / 1e9


# -- perf ---------------------------------------------------------------------------


@dataclass(frozen=True)
class PerfLine:
    """One counter line of `perf stat -x, -I`: time stamp (s since perf started),
    value (None for `<not counted>` / `<not supported>`), unit, event."""

    t: float
    value: float | None
    unit: str
    event: str


def parse_perf_line(line: str) -> PerfLine | None:
    """A counter line of `perf stat -x, -I MS` (fields: time, value, unit, event, run
    time, percentage running, then optional metric fields), or None for any other
    line (headers, errors, blank)."""
    fields = line.strip().split(",")
    if len(fields) < 4:
        return None
    try:
        t = float(fields[0])
    except ValueError:
        return None
    raw, unit, event = fields[1].strip(), fields[2].strip(), fields[3].strip()
    if not event:
        return None
    if raw.startswith("<"):
        return PerfLine(t, None, unit, event)
    try:
        value = float(raw)
    except ValueError:
        return None
    return PerfLine(t, value, unit, event)


def line_bytes(line: PerfLine, count_bytes: float) -> float | None:
    """Bytes a counter line stands for: its value in its unit, or, unitless, counts of
    `count_bytes` each; None when unknown."""
    if line.value is None:
        return None
    if not line.unit:
        return line.value * count_bytes
    per = UNIT_BYTES.get(line.unit)
    return None if per is None else line.value * per


def imc_events(pmu_dir: Path = PMU_DIR) -> tuple[list[str], float]:
    """The perf events that count this machine's memory traffic, and the bytes a
    unitless count stands for; ([], 0) when it has no memory-controller PMU."""
    names = sorted(p.name for p in pmu_dir.glob("*")) if pmu_dir.is_dir() else []
    for pair in (("cas_count_read", "cas_count_write"), ("data_read", "data_write")):
        devices = [
            n for n in names if n.startswith("uncore_imc")
            and all((pmu_dir / n / "events" / e).exists() for e in pair)
        ]  # fmt: skip
        if devices:
            return [f"{d}/{e}/" for d in devices for e in pair], float(CAS_BYTES)
    umcs = [n for n in names if n.startswith("amd_umc_")]
    if umcs:
        return [f"{d}/{e}/" for d in umcs for e in ("umc_cas_cmd.rd", "umc_cas_cmd.wr")], float(
            CAS_BYTES
        )
    return [], 0.0


class PerfTally:
    """Intervals of `perf stat -I` output added up: complete intervals only (one line
    per event), their bytes, unknown ones counted as gaps. Pure: fed lines and the
    monotonic time each arrived; perf's own time stamps give the durations, the
    earliest arrival after its stamp anchors them to our clock."""

    def __init__(self, n_events: int, count_bytes: float) -> None:
        self.n_events = n_events
        self.count_bytes = count_bytes
        self.total = 0.0
        self.gaps = 0
        self.intervals = 0
        self.last_t = 0.0  # perf's time stamp of the last complete interval
        self.last_rate: float | None = None  # bytes/s over the last complete interval
        self.offset: float | None = None  # our monotonic clock minus perf's stamps
        self._t: float | None = None
        self._lines: list[PerfLine] = []

    def add(self, line: PerfLine, arrived: float) -> None:
        if self._t is not None and line.t != self._t:  # the last interval came short
            self._close(self._t, whole=False)
        self._t = line.t
        self._lines.append(line)
        lag = arrived - line.t
        self.offset = lag if self.offset is None else min(self.offset, lag)
        if len(self._lines) == self.n_events:
            self._close(line.t)

    def _close(self, t: float, whole: bool = True) -> None:
        parts = [line_bytes(x, self.count_bytes) for x in self._lines]
        span = t - self.last_t
        if not whole or any(b is None for b in parts) or span <= 0:
            self.gaps += 1
            self.last_rate = None
        else:
            got = sum(b for b in parts if b is not None)
            self.total += got
            self.last_rate = got / span
        self.intervals += 1
        self.last_t = t
        self._lines, self._t = [], None

    def reading(self) -> Reading | None:
        if self.intervals == 0 or self.offset is None:
            return None
        return Reading(self.last_t + self.offset, self.total, self.gaps)


class PerfCounter:
    """`perf stat -a` on the memory controllers, in a tagged child that a watcher ends
    if we die; its output is tallied by a reader thread."""

    def __init__(self, perf: str, events: Sequence[str], count_bytes: float) -> None:
        self.source = f"perf {','.join(events)}"
        self.tally = PerfTally(len(events), count_bytes)
        self.said: list[str] = []  # perf's other lines (its errors), the first few
        self._lock = threading.Lock()
        self._first = threading.Event()
        count = str(int(MAX_RUN_S * 1000 / INTERVAL_MS))
        self._proc = subprocess.Popen(
            [perf, "stat", "-a", "-x", ",", "-I", str(INTERVAL_MS), "--interval-count", count,
             "-e", ",".join(events)],
            stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
            text=True, env=tagged_env(),
        )  # fmt: skip
        self._watcher = watch_child(self._proc.pid)
        self._reader = threading.Thread(target=self._read, name="halospec-perf", daemon=True)
        self._reader.start()

    def _read(self) -> None:
        assert self._proc.stderr is not None
        for text in self._proc.stderr:
            line = parse_perf_line(text)
            with self._lock:
                if line is None:
                    if len(self.said) < 5 and text.strip():
                        self.said.append(text.strip())
                    continue
                self.tally.add(line, time.monotonic())
                if self.tally.intervals:
                    self._first.set()
        self._first.set()  # perf ended: whoever waits for the first interval stops

    def wait_first(self, timeout_s: float = STARTUP_S) -> str | None:
        """None once a whole interval was counted; else why not."""
        self._first.wait(timeout_s)
        if not self._reader.is_alive():  # perf closed its output: it has ended
            with contextlib.suppress(subprocess.TimeoutExpired):
                self._proc.wait(timeout=5)
        with self._lock:
            ok = self.tally.intervals > 0 and self.tally.gaps < self.tally.intervals
            said = "; ".join(self.said[:2])
        if ok:
            return None
        if self._proc.poll() is not None:
            return f"perf stat exited ({said or 'no output'})"
        return f"perf stat counted nothing in {STARTUP_S:g} s ({said or 'no output'})"

    def read(self) -> Reading | None:
        with self._lock:
            return self.tally.reading()

    def recent_gbps(self) -> float | None:
        with self._lock:
            rate = self.tally.last_rate
        return None if rate is None else rate / 1e9

    def close(self) -> None:
        terminate(self._proc)
        terminate(self._watcher)
        if self._proc.stderr is not None:
            self._reader.join(timeout=5)
            self._proc.stderr.close()


# -- resctrl ------------------------------------------------------------------------


def mbm_files(root: Path = RESCTRL_DIR) -> list[Path]:
    """Every `mbm_total_bytes` of the root group and of each control group; not those
    of monitoring subgroups (`mon_groups/`), already counted in their parents."""
    groups = [root] + sorted(
        p for p in root.iterdir() if p.is_dir() and (p / "mon_data").is_dir()
    ) if root.is_dir() else []  # fmt: skip
    return [f for g in groups for f in sorted(g.glob("mon_data/mon_L3_*/mbm_total_bytes"))]


def read_mbm(files: Sequence[Path]) -> float | None:
    """Their sum in bytes; None when any cannot be read or says `Unavailable`/`Error`."""
    total = 0
    for f in files:
        try:
            total += int(f.read_text().strip())
        except (OSError, ValueError):
            return None
    return float(total)


class ResctrlCounter:
    def __init__(self, files: Sequence[Path]) -> None:
        self.files = list(files)
        self.source = f"resctrl mbm_total_bytes ({len(self.files)} file(s))"
        self._base = read_mbm(self.files) or 0.0
        self._live: Reading | None = None
        self._live_rate: float | None = None

    def read(self) -> Reading | None:
        total = read_mbm(self.files)
        return None if total is None else Reading(time.monotonic(), total - self._base)

    def recent_gbps(self) -> float | None:
        now = self.read()
        if self._live is None or now is None:
            self._live = now
            return self._live_rate
        if now.at - self._live.at >= LIVE_MIN_S:
            self._live_rate = gbps_between(self._live, now)
            self._live = now
        return self._live_rate

    def close(self) -> None:
        pass


# -- which ----------------------------------------------------------------------------


def open_counter(
    pmu_dir: Path = PMU_DIR, resctrl_dir: Path = RESCTRL_DIR, perf: str | None = None
) -> Counter | Unavailable:
    """The machine's memory-bandwidth counter, or why there is none."""
    why: list[str] = []
    events, count_bytes = imc_events(pmu_dir)
    if not events:
        why.append(f"no uncore_imc or amd_umc PMU in {pmu_dir}")
    else:
        exe = perf or shutil.which("perf")
        if exe is None:
            why.append("memory-controller PMUs present, but no perf binary")
        else:
            counter = PerfCounter(exe, events, count_bytes)
            failed = counter.wait_first()
            if failed is None:
                return counter
            counter.close()
            why.append(failed)
    files: list[Path] = []
    with contextlib.suppress(OSError):
        files = mbm_files(resctrl_dir)
    if files and read_mbm(files) is not None:
        return ResctrlCounter(files)
    why.append(
        f"no readable resctrl mbm_total_bytes under {resctrl_dir}"
        if resctrl_dir.is_dir()
        else f"resctrl not mounted at {resctrl_dir}"
    )
    return Unavailable("; ".join(why))
