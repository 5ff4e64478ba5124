"""The processes we start: tagged, watched, and ended by PID, politely first.

Every process the app starts carries `HALOSPEC_TUI_OWNER=<tag>` in its environment
(the tag of the run that started it, inherited from our own environment when set),
so leftovers can be found from outside, even once re-parented to PID 1.
"""

from __future__ import annotations

import contextlib
import os
import secrets
import signal
import subprocess
import sys
import time
from typing import Any

OWNER_ENV = "HALOSPEC_TUI_OWNER"


def owner_tag() -> str:
    """This process's owner tag; set in our environment on first use so children inherit it."""
    tag = os.environ.get(OWNER_ENV)
    if not tag:
        tag = f"halospec-{os.getpid()}-{secrets.token_hex(4)}"
        os.environ[OWNER_ENV] = tag
    return tag


def tagged_env(base: dict[str, str] | None = None) -> dict[str, str]:
    """`base` (default: our environment) with the owner tag added."""
    env = dict(os.environ if base is None else base)
    env[OWNER_ENV] = owner_tag()
    return env


def terminate(proc: subprocess.Popen[Any], timeout_s: float = 5.0) -> None:
    """SIGTERM, wait, then SIGKILL; always reaps the child."""
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(timeout=timeout_s)
        except subprocess.TimeoutExpired:
            proc.kill()
    proc.wait(timeout=timeout_s)


def exited(proc: subprocess.Popen[Any]) -> int | None:
    """The exit status of a child that has ended, or None while it runs, WITHOUT
    reaping it: while it is unreaped its PID (and so its process group) cannot be
    given to another process, so signalling the group stays safe."""
    if proc.returncode is not None:
        return proc.returncode
    try:
        info = os.waitid(os.P_PID, proc.pid, os.WEXITED | os.WNOHANG | os.WNOWAIT)
    except ChildProcessError:  # reaped elsewhere
        return proc.poll()
    return None if info is None else info.si_status


def _alive(p: Any) -> bool:  # a psutil.Process
    import psutil

    try:
        return bool(p.is_running() and p.status() != psutil.STATUS_ZOMBIE)
    except psutil.NoSuchProcess:
        return False


def _signal_family(pgid: int, family: list[Any], sig: int) -> None:
    """`sig` to the process group `pgid`, and to each of `family` (psutil checks that
    a PID still names the same process), ignoring what is already gone."""
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pgid, sig)
    for p in family:
        with contextlib.suppress(Exception):
            p.send_signal(sig)


def end_group(proc: subprocess.Popen[Any], timeout_s: float = 10.0) -> None:
    """End a child started in its own session (`start_new_session=True`) and every
    process it started: SIGTERM to its process group (and to descendants that left
    the group), wait up to `timeout_s` for all of them, then SIGKILL what is left.

    The leader is reaped only at the end: until then its PID names the group, so the
    group signals cannot reach a process that merely inherited the number.
    """
    import psutil

    if proc.returncode is not None:  # reaped already: its PID may name another process
        return
    try:
        family = psutil.Process(proc.pid).children(recursive=True)
    except psutil.NoSuchProcess:
        family = []
    _signal_family(proc.pid, family, signal.SIGTERM)
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline and (
        exited(proc) is None or any(_alive(p) for p in family)
    ):
        time.sleep(0.05)
    _signal_family(proc.pid, family, signal.SIGKILL)
    proc.wait(timeout=timeout_s)


def watch_child(child_pid: int, group: bool = False) -> subprocess.Popen[bytes]:
    """A watcher process that kills `child_pid` when we die, even by SIGKILL; with
    `group`, its whole process group (a child started with `start_new_session=True`,
    whose own children, such as a serving engine's workers, must die with it).

    For children that cannot watch their parent themselves (a llama-server binary);
    the embedded server and the burners check their parent on their own. The
    watcher ends by itself when the child ends; `terminate()` it with the child.
    """
    args = [str(os.getpid()), str(child_pid), *(["group"] if group else [])]
    return subprocess.Popen(
        [sys.executable, "-m", "halospec_tui.procs", *args],
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        env=tagged_env(),
    )


def _watch(parent_pid: int, child_pid: int, group: bool = False, poll_s: float = 0.25) -> None:
    import psutil  # runs in the watcher

    try:
        child = psutil.Process(child_pid)
    except psutil.NoSuchProcess:
        return
    try:
        while child.is_running() and child.status() != psutil.STATUS_ZOMBIE:
            if os.getppid() != parent_pid:  # the harness is gone: we were re-parented
                if group:  # the child is alive (checked above): its PID names its group
                    with contextlib.suppress(ProcessLookupError, PermissionError):
                        os.killpg(child_pid, signal.SIGKILL)
                child.kill()  # psutil checks that the PID still names the same process
                return
            time.sleep(poll_s)
    except psutil.NoSuchProcess:
        return


if __name__ == "__main__":
    _watch(int(sys.argv[1]), int(sys.argv[2]), group=sys.argv[3:] == ["group"])
