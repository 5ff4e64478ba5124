"""A llama-server the harness starts and owns, restarted with a new K when K changes
(the process itself is owned as every launched server is: see launched.py). An arm
with a thread count runs it with `-t N -td N` in place of any thread flags of
--llama-args."""

from __future__ import annotations

import os
import shlex
import subprocess
from dataclasses import dataclass
from pathlib import Path

from halospec_tui.actuators import ActuatorError
from halospec_tui.client import LogFn
from halospec_tui.launched import HOST, OwnedServer, RestartActuator, free_port
from halospec_tui.procs import tagged_env
from halospec_tui.specflags import (
    NO_SPECULATION,
    SpecSyntax,
    spec_args,
    syntax_from_help,
    thread_args,
    without_thread_flags,
)

__all__ = ["HOST", "LlamaServerActuator", "LlamaServerConfig", "free_port", "spec_flags",
           "spec_spelling", "spec_syntax"]  # fmt: skip


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


class LlamaServerActuator(RestartActuator):
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
        super().__init__(OwnedServer("llama-server", cfg.start_timeout_s, log=log))

    def command(self, k: int, p_min: float = 0.0, threads: int | None = None) -> list[str]:
        extra = shlex.split(self.cfg.extra_args)
        if threads is not None:
            extra = without_thread_flags(extra) + thread_args(threads)
        return [
            self.cfg.binary, "-m", self.cfg.model,
            # K = 0: no draft model either, so nothing can speculate.
            *(["-md", self.cfg.draft] if k != NO_SPECULATION else []),
            *spec_args(k, self.syntax, p_min),
            "--host", HOST, "--port", str(self.port), "--metrics",
            *extra,
        ]  # fmt: skip
