"""A server the harness starts and owns, restarted with a new K when K changes.

The one way the harness owns a server process (`--actuator llama-server` and
`--actuator launch` both go through it):
- it runs in its own session and process group, so a serving engine's workers end
  with it, and a Ctrl-C at the terminal reaches the harness alone;
- its environment carries the run's owner tag (procs.tagged_env), and a watcher
  kills its group if the harness dies, even by SIGKILL (procs.watch_child);
- it is healthy once `/health` answers 200, or, where there is no `/health` (404),
  `/v1/models` answers 200; llama-server answers `/v1/models` while still loading,
  so `/health` is asked first. Every wait is bounded (`start_timeout_s`) and gives
  up at once when the run is stopping;
- a restart's time goes to `reload_ms`, never into a step;
- it is ended by its process group: SIGTERM, then SIGKILL (procs.end_group).
"""

from __future__ import annotations

import os
import shlex
import socket
import subprocess
import threading
import time
from collections import deque
from collections.abc import Callable
from typing import Any

import httpx

from halospec_tui.actuators import (
    Actuation,
    ActuatorError,
    ActuatorInterrupted,
    ActuatorUnreachable,
    Setting,
)
from halospec_tui.client import DeadlineBackend, LogFn, deadline_http
from halospec_tui.launch_template import LaunchTemplates
from halospec_tui.procs import end_group, exited, tagged_env, terminate, watch_child

HOST = "127.0.0.1"
HEALTH_REQUEST_S = 2.0  # one health request, connect to last byte
POLL_S = 0.1
STOP_TIMEOUT_S = 10.0


def free_port() -> int:
    with socket.socket() as s:
        s.bind((HOST, 0))
        return int(s.getsockname()[1])


class ServerStartError(ActuatorUnreachable):
    """The server was started but never became healthy: it exited, or did not answer
    within the start timeout. Before the run: exit 4; during it, the steps that
    needed it fail as unreachable, and the server-down watch ends a run whose
    server stays down (exit 4)."""


def _never() -> bool:
    return False


class OwnedServer:
    """One server process at a time, on one port, started and ended as above."""

    def __init__(
        self,
        label: str,
        start_timeout_s: float = 120.0,
        headers: dict[str, str] | None = None,
        log: LogFn | None = None,
        wait_longer: str = "",
    ) -> None:
        self.label = label  # how messages name it ("llama-server", "the launched server")
        self.start_timeout_s = start_timeout_s
        self.wait_longer = wait_longer  # how to give it more time, said when it runs out
        self.headers = headers or {}
        self.port = free_port()
        self.base_url = f"http://{HOST}:{self.port}"
        # Asked between health checks: the run is stopping, give up the start.
        self.interrupted: Callable[[], bool] = _never
        self._log = log or (lambda level, text: None)
        self._proc: subprocess.Popen[bytes] | None = None
        self._watcher: subprocess.Popen[bytes] | None = None  # kills it if we die
        self._tail: deque[str] = deque(maxlen=20)

    @property
    def pid(self) -> int | None:
        proc = self._proc
        return proc.pid if proc is not None and exited(proc) is None else None

    @property
    def watcher_pid(self) -> int | None:
        return self._watcher.pid if self._watcher is not None else None

    def tail(self, lines: int = 3) -> str:
        """The server's last lines of output, joined on one line."""
        return " | ".join(x for x in list(self._tail)[-lines:] if x.strip())

    def start(self, argv: list[str], env: dict[str, str] | None = None) -> None:
        """Stop what runs, start `argv`, and wait until it is healthy. ActuatorError
        when it cannot be started, ServerStartError when it never became healthy,
        ActuatorInterrupted when the run stopped meanwhile; nothing runs after any."""
        self.stop()
        shown = [f"{name}={value}" for name, value in (env or {}).items()] + argv
        self._log("info", "starting " + shlex.join(shown))
        self._tail.clear()
        try:
            self._proc = subprocess.Popen(
                argv,
                stdout=subprocess.PIPE,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                env=tagged_env({**os.environ, **(env or {})}),
                start_new_session=True,
            )
        except OSError as e:
            raise ActuatorError(f"cannot start {argv[0]}: {e.strerror or e}") from e
        try:
            self._watcher = watch_child(self._proc.pid, group=True)
            threading.Thread(target=self._drain, args=(self._proc,), daemon=True).start()
            self._wait_healthy()
        except BaseException:  # a failed start, an interrupt, Ctrl-C: nothing stays
            self.stop()
            raise

    def _drain(self, proc: subprocess.Popen[bytes]) -> None:
        assert proc.stdout is not None
        for line in proc.stdout:
            self._tail.append(line.decode(errors="replace").rstrip())

    def _wait_healthy(self) -> None:
        proc = self._proc
        assert proc is not None
        deadline = time.monotonic() + self.start_timeout_s
        http, net = deadline_http(self.base_url, HEALTH_REQUEST_S, self.headers)
        try:
            while time.monotonic() < deadline:
                code = exited(proc)
                if code is not None:
                    time.sleep(POLL_S)  # its last words may still be in the pipe
                    raise ServerStartError(
                        f"{self.label} exited during start-up (status {code}): "
                        f"{self.tail() or 'no output'}"
                    )
                if self.interrupted():
                    raise ActuatorInterrupted(f"start of {self.label} abandoned: the run is stopping")
                if _healthy(http, net):
                    return
                time.sleep(POLL_S)
        finally:
            http.close()
        raise ServerStartError(
            f"{self.label} was not healthy after {self.start_timeout_s:g} s{self.wait_longer} "
            f"(no 200 from {self.base_url}/health or /v1/models); its last output: "
            f"{self.tail() or 'none'}"
        )

    def stop(self) -> None:
        proc, self._proc = self._proc, None
        watcher, self._watcher = self._watcher, None
        try:
            if proc is not None:
                end_group(proc, timeout_s=STOP_TIMEOUT_S)
        finally:
            if watcher is not None:
                terminate(watcher)


def _healthy(http: httpx.Client, net: DeadlineBackend) -> bool:
    """`/health` answers 200; or there is no `/health` and `/v1/models` answers 200."""
    for path in ("/health", "/v1/models"):
        try:
            with net.deadline(HEALTH_REQUEST_S):
                status = http.get(path).status_code
        except httpx.HTTPError:
            return False
        if status == 200:
            return True
        if status not in (404, 405):  # 503: loading
            return False
    return False


Running = tuple[int, float, int | None]  # (K, p_min, threads) a server runs with


def needs_restart(running: Running | None, asked: Running, alive: bool) -> bool:
    """A server runs with (K, p_min, threads): a change of any of them, or a server
    that is not running, is a restart (its time goes to reload_ms)."""
    return not alive or running != asked


class RestartActuator:
    """Sets K (and p_min, and the thread count) by restarting its server with
    `command(k, p_min, threads)` when they change. The server holds nothing of the
    user's: `leave` has nothing to put back, and `close` ends it."""

    name = "restart"
    sets_threads = True

    def __init__(self, server: OwnedServer) -> None:
        self.server = server
        self._k: Running | None = None  # (K, p_min, threads) it runs with

    @property
    def pid(self) -> int | None:
        return self.server.pid

    @property
    def port(self) -> int:
        return self.server.port

    @property
    def base_url(self) -> str:
        return self.server.base_url

    def command(self, k: int, p_min: float = 0.0, threads: int | None = None) -> list[str]:
        raise NotImplementedError

    def environment(self, k: int, p_min: float = 0.0, threads: int | None = None) -> dict[str, str]:
        """What the command adds to the server's environment."""
        return {}

    def apply(self, k: int, p_min: float = 0.0, threads: int | None = None) -> Actuation:
        if not needs_restart(self._k, (k, p_min, threads), self.pid is not None):
            return Actuation(confirmed_k=k)
        start = time.perf_counter()
        self._k = None
        self.server.start(self.command(k, p_min, threads), self.environment(k, p_min, threads))
        self._k = (k, p_min, threads)
        reload_ms = int((time.perf_counter() - start) * 1000)
        return Actuation(confirmed_k=k, reload_ms=reload_ms)

    def body_fields(self, k: int, p_min: float = 0.0) -> dict[str, Any]:
        return {}

    def leave(self, setting: Setting | None = None) -> str | None:
        return None  # the harness's own server: stopped at close, nothing of the user's

    def close(self) -> None:
        self._k = None
        self.server.stop()


class LaunchActuator(RestartActuator):
    """`--actuator launch`: the user's launch command, resolved for each K."""

    def __init__(
        self,
        templates: LaunchTemplates,
        start_timeout_s: float = 600.0,
        headers: dict[str, str] | None = None,
        secrets: tuple[str, ...] = (),
        log: LogFn | None = None,
    ) -> None:
        server = OwnedServer("the launched server", start_timeout_s, headers, log,
                             wait_longer=" (--launch-timeout gives it longer)")  # fmt: skip
        super().__init__(server)
        self.templates = templates
        self.name = templates.actuator_name(secrets)

    def command(self, k: int, p_min: float = 0.0, threads: int | None = None) -> list[str]:
        return self.templates.command(k, self.port, p_min, threads)[1]

    def environment(self, k: int, p_min: float = 0.0, threads: int | None = None) -> dict[str, str]:
        return self.templates.command(k, self.port, p_min, threads)[0]
