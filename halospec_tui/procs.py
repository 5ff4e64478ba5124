"""The processes we start: tagged, watched, and ended by PID, politely first.

Every process the app starts carries `HALOSPEC_TUI_OWNER=<tag>` in its environment
(the tag of the run that started it, inherited from our own environment when set),
so leftovers can be found from outside, even once re-parented to PID 1.
"""

from __future__ import annotations

import os
import secrets
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


def watch_child(child_pid: int) -> subprocess.Popen[bytes]:
    """A watcher process that kills `child_pid` when we die, even by SIGKILL.

    For children that cannot watch their parent themselves (a llama-server binary);
    the embedded server and the burners check their parent on their own. The
    watcher ends by itself when the child ends; `terminate()` it with the child.
    """
    return subprocess.Popen(
        [sys.executable, "-m", "halospec_tui.procs", str(os.getpid()), str(child_pid)],
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        env=tagged_env(),
    )


def _watch(parent_pid: int, child_pid: int, poll_s: float = 0.25) -> None:  # runs in the watcher
    import psutil

    try:
        child = psutil.Process(child_pid)
    except psutil.NoSuchProcess:
        return
    try:
        while child.is_running() and child.status() != psutil.STATUS_ZOMBIE:
            if os.getppid() != parent_pid:  # the harness is gone: we were re-parented
                child.kill()  # psutil checks that the PID still names the same process
                return
            time.sleep(poll_s)
    except psutil.NoSuchProcess:
        return


if __name__ == "__main__":
    _watch(int(sys.argv[1]), int(sys.argv[2]))
