"""Run the embedded server: in the foreground (`serve`), or as a child process we own."""

from __future__ import annotations

import argparse
import os
import signal
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, fields

from halospec_tui.procs import tagged_env, terminate
from halospec_tui.sim.physics import PROFILES, SimParams

READY_PREFIX = "HALOSPEC-SIM LISTENING "
_THREAD_ENV = ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS", "NUMEXPR_NUM_THREADS")


def add_sim_args(p: argparse.ArgumentParser) -> None:
    g = p.add_argument_group("embedded server")
    d = SimParams()
    g.add_argument(
        "--sim-model", default=d.model, help="model name it serves (default %(default)s)"
    )
    g.add_argument(
        "--sim-target-ms",
        type=float,
        default=d.target_ms,
        help="cost of one target pass, ms unloaded",
    )
    g.add_argument(
        "--sim-draft-ratio",
        type=float,
        default=d.draft_ratio,
        help="draft step cost / target pass cost",
    )
    g.add_argument(
        "--sim-acceptance", type=float, default=d.acceptance, help="mean per-token acceptance 0..1"
    )
    g.add_argument(
        "--sim-spread",
        type=float,
        default=d.acceptance_spread,
        help="acceptance spread across prompts",
    )
    g.add_argument(
        "--sim-profile", choices=PROFILES, default=d.profile, help="acceptance over time"
    )
    g.add_argument("--sim-seed", type=int, default=d.seed)
    g.add_argument(
        "--sim-draft-n-max", type=int, default=d.draft_n_max, help="draft length at launch"
    )
    g.add_argument(
        "--sim-honor-request",
        action="store_true",
        help="honour per-request speculative.n_max (old llama-server)",
    )
    g.add_argument(
        "--sim-reload-ms", type=float, default=d.reload_ms, help="pause of a reload that changes K"
    )
    g.add_argument("--sim-fault", default="", help="injected faults, e.g. 500:0.1,reset:0.05")
    g.add_argument(
        "--sim-no-timings",
        action="store_true",
        help="answer without llama.cpp timings (drafting only in /metrics)",
    )


def params_from_args(ns: argparse.Namespace) -> SimParams:
    for name in ("sim_target_ms", "sim_draft_ratio", "sim_reload_ms"):
        if getattr(ns, name) < 0:
            raise ValueError(f"--{name.replace('_', '-')} must not be negative")
    if not 0.0 <= ns.sim_acceptance <= 1.0:
        raise ValueError("--sim-acceptance must be within 0..1")
    from halospec_tui.sim.faults import parse_faults

    parse_faults(ns.sim_fault)  # validate early
    return SimParams(
        model=ns.sim_model,
        target_ms=ns.sim_target_ms,
        draft_ratio=ns.sim_draft_ratio,
        acceptance=ns.sim_acceptance,
        acceptance_spread=ns.sim_spread,
        profile=ns.sim_profile,
        seed=ns.sim_seed,
        draft_n_max=ns.sim_draft_n_max,
        honor_request_draft=ns.sim_honor_request,
        reload_ms=ns.sim_reload_ms,
        fault=ns.sim_fault,
        report_timings=not ns.sim_no_timings,
    )


def params_to_argv(params: SimParams) -> list[str]:
    names = {
        "model": "--sim-model",
        "target_ms": "--sim-target-ms",
        "draft_ratio": "--sim-draft-ratio",
        "acceptance": "--sim-acceptance",
        "acceptance_spread": "--sim-spread",
        "profile": "--sim-profile",
        "seed": "--sim-seed",
        "draft_n_max": "--sim-draft-n-max",
        "reload_ms": "--sim-reload-ms",
        "fault": "--sim-fault",
    }
    argv: list[str] = []
    for f in fields(params):
        if f.name in names:
            argv += [names[f.name], str(getattr(params, f.name))]
    if params.honor_request_draft:
        argv.append("--sim-honor-request")
    if not params.report_timings:
        argv.append("--sim-no-timings")
    return argv


def _watch_parent(parent_pid: int) -> None:
    while True:
        time.sleep(0.5)
        if os.getppid() != parent_pid:
            os._exit(0)


def serve(params: SimParams, port: int, parent_pid: int | None = None, announce=print) -> None:
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


class SimStartError(RuntimeError):
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
                err = (proc.stderr.read() if proc.stderr else "").strip().splitlines()[-1:]
            terminate(proc)
            raise SimStartError(f"embedded server did not start: {line.strip() or err}")
        addr = line[len(READY_PREFIX) :].split()[0]
        host, port = addr.rsplit(":", 1)
        # Drain stderr in the background so the child never blocks on a full pipe.
        threading.Thread(target=_drain, args=(proc,), daemon=True).start()
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


def _drain(proc: subprocess.Popen[str]) -> None:
    for stream in (proc.stdout, proc.stderr):
        if stream is None:
            continue
        try:
            for _ in stream:
                pass
        except (OSError, ValueError):
            return
