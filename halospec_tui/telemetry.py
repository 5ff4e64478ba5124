"""CPU telemetry from psutil: the whole machine, and the server process when known."""

from __future__ import annotations

from collections.abc import Callable

import psutil


class Telemetry:
    """CPU % over the interval since the previous `sample()`.

    `server_pid` is asked each time, because a server the harness restarts (to change
    K) gets a new PID.
    """

    def __init__(self, server_pid: Callable[[], int | None] | None = None) -> None:
        psutil.cpu_percent(None)  # prime: the first reading is meaningless
        self._pid_fn = server_pid or (lambda: None)
        self._proc: psutil.Process | None = None

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
        """(system CPU %, server process CPU %) since the last call."""
        system = psutil.cpu_percent(None)
        server: float | None = None
        proc = self._server()
        if proc is not None:
            try:
                server = proc.cpu_percent(None)
            except psutil.Error:
                self._proc = None
        return system, server


def per_core() -> list[float]:
    return list(psutil.cpu_percent(None, percpu=True))
