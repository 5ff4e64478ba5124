"""A llama-server the harness starts and owns, restarted with a new K when K changes."""

from __future__ import annotations

import os
import shlex
import socket
import subprocess
import threading
import time
from collections import deque
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx

from halospec_tui.actuators import Actuation, ActuatorError, Setting
from halospec_tui.client import LogFn
from halospec_tui.procs import tagged_env, terminate, watch_child
from halospec_tui.specflags import NO_SPECULATION, SpecSyntax, spec_args, syntax_from_help

HOST = "127.0.0.1"


def free_port() -> int:
    with socket.socket() as s:
        s.bind((HOST, 0))
        return int(s.getsockname()[1])


def spec_syntax(binary: str) -> SpecSyntax:
    """The speculative flags the binary understands, from its --help."""
    try:
        out = subprocess.run(
            [binary, "--help"],
            capture_output=True,
            text=True,
            timeout=30,
            stdin=subprocess.DEVNULL,
            env=tagged_env(),
        )
    except (OSError, subprocess.TimeoutExpired) as e:
        raise ActuatorError(f"cannot run {binary} --help: {e}") from e
    syntax = syntax_from_help(out.stdout + out.stderr)
    if syntax is None:
        raise ActuatorError(f"{binary} --help mentions no draft-length flag")
    return syntax


def spec_spelling(binary: str) -> str:
    """'new' (--spec-draft-n-max, --spec-type) or 'old' (--draft-max), from --help."""
    return spec_syntax(binary).spelling


def spec_flags(spelling: str, k: int) -> list[str]:
    return spec_args(k, SpecSyntax("new" if spelling == "new" else "old"))


@dataclass(frozen=True)
class LlamaServerConfig:
    binary: str
    model: str
    draft: str
    extra_args: str = "-np 1 -c 1024 -t 1 -td 1"
    start_timeout_s: float = 120.0


class LlamaServerActuator:
    """Owns a llama-server process; `apply(k)` restarts it when K changes."""

    name = "llama-server"

    def __init__(self, cfg: LlamaServerConfig, log: LogFn | None = None) -> None:
        for label, path in (("llama-server", cfg.binary), ("-m", cfg.model), ("-md", cfg.draft)):
            if not path or not Path(path).exists():
                raise ActuatorError(f"{label} {path!r}: no such file")
        if not os.access(cfg.binary, os.X_OK):
            raise ActuatorError(f"{cfg.binary} is not executable")
        self.cfg = cfg
        self.syntax = spec_syntax(cfg.binary)
        self.spelling = self.syntax.spelling
        self.port = free_port()
        self.base_url = f"http://{HOST}:{self.port}"
        self._proc: subprocess.Popen[bytes] | None = None
        self._watcher: subprocess.Popen[bytes] | None = None  # kills it if we die
        self._k: tuple[int, float] | None = None  # (K, p_min) it runs with
        self._log = log or (lambda level, text: None)
        self._tail: deque[str] = deque(maxlen=20)

    @property
    def pid(self) -> int | None:
        return self._proc.pid if self._proc is not None and self._proc.poll() is None else None

    def command(self, k: int, p_min: float = 0.0) -> list[str]:
        return [
            self.cfg.binary, "-m", self.cfg.model,
            # K = 0: no draft model either, so nothing can speculate.
            *(["-md", self.cfg.draft] if k != NO_SPECULATION else []),
            *spec_args(k, self.syntax, p_min),
            "--host", HOST, "--port", str(self.port), "--metrics",
            *shlex.split(self.cfg.extra_args),
        ]  # fmt: skip

    def apply(self, k: int, p_min: float = 0.0) -> Actuation:
        if (k, p_min) == self._k and self.pid is not None:
            return Actuation(confirmed_k=k)
        start = time.perf_counter()
        self._stop()
        cmd = self.command(k, p_min)
        self._log("info", "starting " + " ".join(shlex.quote(c) for c in cmd))
        try:
            self._proc = subprocess.Popen(
                cmd,
                stdout=subprocess.PIPE,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                env=tagged_env(),
            )
        except OSError as e:
            raise ActuatorError(f"cannot start {self.cfg.binary}: {e.strerror or e}") from e
        self._watcher = watch_child(self._proc.pid)
        threading.Thread(target=self._drain, args=(self._proc,), daemon=True).start()
        self._wait_healthy()
        self._k = (k, p_min)
        reload_ms = int((time.perf_counter() - start) * 1000)
        return Actuation(confirmed_k=k, reload_ms=reload_ms)

    def _drain(self, proc: subprocess.Popen[bytes]) -> None:
        assert proc.stdout is not None
        for line in proc.stdout:
            self._tail.append(line.decode(errors="replace").rstrip())

    def _wait_healthy(self) -> None:
        deadline = time.monotonic() + self.cfg.start_timeout_s
        with httpx.Client(base_url=self.base_url, timeout=2.0) as c:
            while time.monotonic() < deadline:
                if self._proc is None or self._proc.poll() is not None:
                    tail = " | ".join(list(self._tail)[-3:])
                    raise ActuatorError(f"llama-server exited during start-up: {tail}")
                try:
                    if c.get("/health").status_code == 200:
                        return
                except httpx.HTTPError:
                    pass
                time.sleep(0.1)
        self._stop()
        raise ActuatorError(f"llama-server not healthy after {self.cfg.start_timeout_s:g} s")

    def body_fields(self, k: int, p_min: float = 0.0) -> dict[str, Any]:
        return {}

    def _stop(self) -> None:
        proc, self._proc = self._proc, None
        watcher, self._watcher = self._watcher, None
        try:
            if proc is not None:
                terminate(proc, timeout_s=10)
        finally:
            if watcher is not None:
                terminate(watcher)

    def leave(self, setting: Setting | None = None) -> str | None:
        return None  # the harness's own server: stopped at close, nothing of the user's

    def close(self) -> None:
        self._stop()
