"""What the machine did during a step: CPU from psutil (the whole machine, and the
server process when known), and memory bandwidth: the memory burners' own count of
the bytes they moved, and the memory controllers' count where the machine has one
(bandwidth.py)."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass

import psutil

from halospec_tui.bandwidth import Counter, Reading, Unavailable, gbps_between
from halospec_tui.load_memory import memory_of

LogFn = Callable[[str, str], None]  # (level, text)


@dataclass(frozen=True)
class Bandwidth:
    """GB/s (1e9 bytes a second, read plus write): the memory burners' (None when
    none ran) and the machine's memory controllers' (None without counters)."""

    load_gbps: float | None = None
    machine_gbps: float | None = None


class Telemetry:
    """CPU % and memory bandwidth over the interval since the previous `sample()`.

    `server_pid` is asked each time, because a server the harness restarts (to change
    K) gets a new PID. `load`: the run's load, whose memory burners (if any) are read.
    `machine`: the memory-controller counter (`bandwidth.open_counter()`), or why there
    is none, said once to `log` at the first sample. `clock` times the burners' bytes.
    """

    def __init__(
        self,
        server_pid: Callable[[], int | None] | None = None,
        load: object = None,
        machine: Counter | Unavailable | None = None,
        log: LogFn | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        psutil.cpu_percent(None)  # prime: the first reading is meaningless
        self._pid_fn = server_pid or (lambda: None)
        self._proc: psutil.Process | None = None
        self._memory = memory_of(load)
        self._machine = machine if not isinstance(machine, Unavailable) else None
        self._unavailable = machine.reason if isinstance(machine, Unavailable) else None
        self._log = log
        self._clock = clock
        self._said = False
        self._mem_at: tuple[float, float, bool] | None = None  # (time, bytes, burners ran)
        self._machine_at: Reading | None = None
        self._window = Bandwidth()

    def _server(self) -> psutil.Process | None:
        pid = self._pid_fn()
        if pid is None:
            return None
        if self._proc is None or self._proc.pid != pid:
            try:
                self._proc = psutil.Process(pid)
                self._proc.cpu_percent(None)
            except psutil.Error:
                self._proc = None
        return self._proc

    def sample(self) -> tuple[float | None, float | None]:
        """(system CPU %, server process CPU %) since the last call; the bandwidth over
        the same interval is kept for `take_bandwidth`."""
        self._say_once()
        system = psutil.cpu_percent(None)
        server: float | None = None
        proc = self._server()
        if proc is not None:
            try:
                server = proc.cpu_percent(None)
            except psutil.Error:
                self._proc = None
        self._window = Bandwidth(self._load_window(), self._machine_window())
        return system, server

    def take_bandwidth(self) -> Bandwidth:
        """The bandwidth between the last two samples (a step's window), once: a step
        that sampled nothing after it (it was not sent) gets none."""
        window, self._window = self._window, Bandwidth()
        return window

    def _load_window(self) -> float | None:
        mem = self._memory
        if mem is None:
            return None
        now = (self._clock(), mem.bytes_moved(), mem.active)
        before, self._mem_at = self._mem_at, now
        if before is None or now[0] <= before[0]:
            return None
        moved = now[1] - before[1]
        if moved <= 0 and not (before[2] or now[2]):
            return None  # no memory burner ran in the window
        return moved / (now[0] - before[0]) / 1e9

    def _machine_window(self) -> float | None:
        if self._machine is None:
            return None
        now = self._machine.read()
        before, self._machine_at = self._machine_at, now
        if before is not None and now is not None and now.at == before.at:
            return self._machine.recent_gbps()  # a window shorter than one count
        return gbps_between(before, now)

    def live(self) -> Bandwidth:
        """Now, for the monitor: the running memory burners' own rates, and the
        machine's over the counter's latest interval."""
        load = self._memory.gbps() if self._memory is not None else None
        machine = self._machine.recent_gbps() if self._machine is not None else None
        return Bandwidth(load, machine)

    def _say_once(self) -> None:
        if self._said or self._log is None:
            return
        self._said = True
        if self._memory is not None:
            self._log("info", f"memory load: {self._memory.describe()}")
        if self._unavailable is not None:
            self._log(
                "info",
                f"bandwidth counters unavailable ({self._unavailable}): the machine's "
                "memory bandwidth is not measured, column machine_gbps stays empty",
            )
        elif self._machine is not None:
            self._log("info", f"machine memory bandwidth from {self._machine.source}")

    def close(self) -> None:
        if self._machine is not None:
            self._machine.close()


def per_core() -> list[float]:
    return list(psutil.cpu_percent(None, percpu=True))
