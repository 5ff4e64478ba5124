from __future__ import annotations

import os
import sys
from collections.abc import Iterator

import psutil
import pytest
from hypothesis import settings

from halospec_tui.sim.physics import SimParams
from halospec_tui.sim.process import SimProcess

# CI explores the same examples on every run, so a landing never hangs on the luck
# of the draw; runs elsewhere draw fresh examples and keep finding new cases.
settings.register_profile("ci", derandomize=True, database=None)
if os.environ.get("CI"):
    settings.load_profile("ci")

# Small, fast embedded server for tests: ~60-120 ms per 64-token request.
FAST_SIM = SimParams(target_ms=1.5, reload_ms=20.0)
CLI = [sys.executable, "-m", "halospec_tui"]


@pytest.fixture(scope="module")
def sim() -> Iterator[SimProcess]:
    proc = SimProcess.start(FAST_SIM)
    try:
        yield proc
    finally:
        proc.stop()
    assert (
        not psutil.pid_exists(proc.pid) or psutil.Process(proc.pid).status() == psutil.STATUS_ZOMBIE
    )


def descendants() -> list[psutil.Process]:
    """Live descendants of this test process (zombies already reaped count as gone)."""
    out = []
    for p in psutil.Process(os.getpid()).children(recursive=True):
        try:
            if p.status() != psutil.STATUS_ZOMBIE:
                out.append(p)
        except psutil.NoSuchProcess:
            pass
    return out


@pytest.fixture
def no_leftovers() -> Iterator[None]:
    before = {p.pid for p in descendants()}
    yield
    left = [p for p in descendants() if p.pid not in before]
    for p in left:
        p.kill()
    assert not left, f"processes left behind: {[(p.pid, p.cmdline()) for p in left]}"
