"""Run the embedded server: in the foreground (`serve`), or as a child process we own."""

from __future__ import annotations

import argparse
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import Field, dataclass, fields
from typing import IO, Any

from halospec_tui.errors import HalospecError
from halospec_tui.procs import tagged_env, terminate
from halospec_tui.sim.physics import PROFILES, SimParams

READY_PREFIX = "HALOSPEC-SIM LISTENING "
_THREAD_ENV = ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS", "NUMEXPR_NUM_THREADS")


@dataclass(frozen=True)
class _Option:
    """How one SimParams field appears on the command line."""

    flag: str = ""  # default: --sim-<field name with dashes>
    help: str | None = None
    choices: tuple[str, ...] | None = None
    minimum: float | None = None  # a smaller value is bad input
    maximum: float | None = None


# Only what cannot be derived from the field itself; every field gets an option.
_OPTIONS: dict[str, _Option] = {
    "model": _Option(help="model name it serves (default %(default)s)"),
    "target_ms": _Option(help="cost of one target pass, ms unloaded", minimum=0.0),
    "draft_ratio": _Option(help="draft step cost / target pass cost", minimum=0.0),
    "verify_per_token": _Option(
        help="extra target cost per drafted token verified, relative", minimum=0.0
    ),
    "prompt_ms_per_token": _Option(help="prompt processing per prompt token, ms", minimum=0.0),
    "acceptance": _Option(help="mean per-token acceptance 0..1", minimum=0.0, maximum=1.0),
    "acceptance_spread": _Option("--sim-spread", help="acceptance spread across prompts"),
    "profile": _Option(help="acceptance over time", choices=PROFILES),
    "shift_every": _Option(help="requests between workload shifts (shift, drift)", minimum=1),
    "draft_n_max": _Option(help="draft length at launch (0: no speculation)", minimum=0),
    "honor_request_draft": _Option(
        "--sim-honor-request", help="honour per-request speculative.n_max (old llama-server)"
    ),
    "reload_ms": _Option(help="pause of a reload that changes K", minimum=0.0),
    "fault": _Option(help="injected faults, e.g. 500:0.1,reset:0.05"),
    "report_timings": _Option(
        "--sim-no-timings", help="answer without llama.cpp timings (drafting only in /metrics)"
    ),
    "nature_shift": _Option(
        help="acceptance + for structured prompts, - for open ones", minimum=0.0, maximum=1.0
    ),
    "confidence_kappa": _Option(
        help="spread of per-token draft confidence (p_min): Beta(a k, (1-a) k)", minimum=0.001
    ),
    "acceptance_decay": _Option(
        help="acceptance at draft position i is a * decay^i", minimum=0.0, maximum=1.0
    ),
    "verify_quadratic": _Option(
        help="extra target cost per drafted token squared, relative", minimum=0.0
    ),
    "pass_overhead_ms": _Option(help="fixed cost of every pass, ms unloaded", minimum=0.0),
    "spec_overhead_ms": _Option(help="fixed cost of a pass that drafts, ms unloaded", minimum=0.0),
    "model_mb": _Option(help="size of the model files a reload loads, MB", minimum=0.0),
    "load_ms_per_mb": _Option(
        help="reload time per MB of model, on top of --sim-reload-ms", minimum=0.0
    ),
}


def _flag(f: Field[Any]) -> str:
    return _OPTIONS.get(f.name, _Option()).flag or "--sim-" + f.name.replace("_", "-")


def _dest(f: Field[Any]) -> str:
    return "sim_" + f.name


def add_sim_args(p: argparse.ArgumentParser) -> None:
    """One option per SimParams field, typed and defaulted from the field."""
    g = p.add_argument_group("embedded server")
    for f in fields(SimParams):
        opt = _OPTIONS.get(f.name, _Option())
        default = f.default
        if isinstance(default, bool):
            # A flag that changes the default: store_true for False, store_false for True.
            action = "store_false" if default else "store_true"
            g.add_argument(_flag(f), dest=_dest(f), action=action, help=opt.help)
            continue
        g.add_argument(
            _flag(f),
            dest=_dest(f),
            type=type(default),
            default=default,
            choices=opt.choices,
            help=opt.help,
        )


class SimParamsError(HalospecError, ValueError):
    pass


def params_from_args(ns: argparse.Namespace) -> SimParams:
    values: dict[str, Any] = {}
    for f in fields(SimParams):
        v = getattr(ns, _dest(f))
        opt = _OPTIONS.get(f.name, _Option())
        low, high = opt.minimum, opt.maximum
        if (low is not None and v < low) or (high is not None and v > high):
            if high is not None:
                raise SimParamsError(f"{_flag(f)} must be within {low:g}..{high:g}")
            if low == 0:
                raise SimParamsError(f"{_flag(f)} must not be negative")
            raise SimParamsError(f"{_flag(f)} must be at least {low:g}")
        values[f.name] = v
    from halospec_tui.sim.faults import parse_faults

    parse_faults(values["fault"])  # validate early
    return SimParams(**values)


def params_to_argv(params: SimParams) -> list[str]:
    """The options that make `params_from_args` give `params` back, every field."""
    argv: list[str] = []
    for f in fields(SimParams):
        v = getattr(params, f.name)
        if isinstance(f.default, bool):
            if v != f.default:
                argv.append(_flag(f))
        else:
            argv += [_flag(f), repr(v) if isinstance(v, float) else str(v)]
    return argv


def _watch_parent(parent_pid: int) -> None:
    while True:
        time.sleep(0.5)
        if os.getppid() != parent_pid:
            os._exit(0)


def serve(
    params: SimParams,
    port: int,
    parent_pid: int | None = None,
    announce: Callable[[str], object] = print,
) -> None:
    """Serve until interrupted (or until the parent process is gone)."""
    from halospec_tui.sim.server import HOST, make_server

    server, state = make_server(params, port)
    if parent_pid:
        threading.Thread(target=_watch_parent, args=(parent_pid,), daemon=True).start()
    signal.signal(signal.SIGTERM, lambda *_: (_ for _ in ()).throw(KeyboardInterrupt()))
    announce(f"{READY_PREFIX}{HOST}:{server.server_address[1]} unit_ms={state.engine.unit_ms:.5f}")
    try:
        server.serve_forever(poll_interval=0.2)
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()


class SimStartError(HalospecError, RuntimeError):
    pass


@dataclass
class SimProcess:
    """The embedded server as a child process we own; `stop()` reaps it by PID."""

    proc: subprocess.Popen[str]
    host: str
    port: int

    @property
    def pid(self) -> int:
        return self.proc.pid

    @property
    def base_url(self) -> str:
        return f"http://{self.host}:{self.port}"

    @classmethod
    def start(cls, params: SimParams, timeout_s: float = 60.0) -> SimProcess:
        env = tagged_env()
        for k in _THREAD_ENV:
            env[k] = "1"
        argv = [
            sys.executable,
            "-m",
            "halospec_tui.sim",
            "--port",
            "0",
            "--parent-pid",
            str(os.getpid()),
        ]
        proc = subprocess.Popen(
            argv + params_to_argv(params),
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            stdin=subprocess.DEVNULL,
            text=True,
            env=env,
        )
        line = _read_line(proc, timeout_s)
        if not line.startswith(READY_PREFIX):
            err = ""
            if proc.poll() is not None:
                lines = (proc.stderr.read() if proc.stderr else "").strip().splitlines()
                err = lines[-1] if lines else ""  # the error, not the list around it
            terminate(proc)
            raise SimStartError(f"embedded server did not start: {line.strip() or err}")
        addr = line[len(READY_PREFIX) :].split()[0]
        host, port = addr.rsplit(":", 1)
        # One drain per pipe: a thread reading stdout to its end first would leave
        # stderr to fill up, and the server's threads would block writing to it.
        for stream in (proc.stdout, proc.stderr):
            threading.Thread(target=_drain, args=(stream,), daemon=True).start()
        return cls(proc, host, int(port))

    def alive(self) -> bool:
        return self.proc.poll() is None

    def stop(self) -> None:
        terminate(self.proc)


def _read_line(proc: subprocess.Popen[str], timeout_s: float) -> str:
    out: list[str] = []

    def reader() -> None:
        assert proc.stdout is not None
        out.append(proc.stdout.readline())

    t = threading.Thread(target=reader, daemon=True)
    t.start()
    t.join(timeout_s)
    return out[0] if out else ""


def _drain(stream: IO[str] | None) -> None:
    """Read one pipe to its end, so the child never blocks writing to it."""
    if stream is None:
        return
    try:
        for _ in stream:
            pass
    except (OSError, ValueError):
        return
