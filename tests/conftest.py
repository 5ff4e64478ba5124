from __future__ import annotations

import contextlib
import os
import secrets
import sys
import time
from collections.abc import Callable, Iterator
from multiprocessing import resource_tracker
from pathlib import Path

import psutil
import pytest
from hypothesis import settings

from halospec_tui.procs import OWNER_ENV
from halospec_tui.sim.physics import SimParams
from halospec_tui.sim.process import SimProcess

# CI explores the same examples on every run, so a landing never hangs on the luck
# of the draw; runs elsewhere draw fresh examples and keep finding new cases.
settings.register_profile("ci", derandomize=True, database=None)
if os.environ.get("CI"):
    settings.load_profile("ci")

# The multiprocessing resource tracker lives as long as pytest: start it before any
# test's owner tag is set, so the leftover check never mistakes it for an orphan.
resource_tracker.ensure_running()

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


@pytest.fixture(scope="session")
def model_pair() -> Callable[[str], tuple[Path, Path]]:
    """(target, draft) of a tiny GGUF pair by regime (tiny_gguf.REGIMES: loses, mid,
    large), from the model cache: written once (deterministic by seed, in a folder keyed
    by a hash of its parameters) and reused across runs and workers.
    HALOSPEC_MODEL_CACHE moves the cache (default ~/.cache/halospec-tui/models)."""
    from halospec_tui.tiny_gguf import cached_pair

    root = os.environ.get("HALOSPEC_MODEL_CACHE") or None
    return lambda regime: cached_pair(regime, root=root)


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


def tagged(tag: str) -> list[psutil.Process]:
    """Live processes anywhere on the machine whose environment carries our owner tag."""
    out = []
    for p in psutil.process_iter():
        if p.pid == os.getpid():
            continue
        try:
            if p.environ().get(OWNER_ENV) == tag and p.status() != psutil.STATUS_ZOMBIE:
                out.append(p)
        except (psutil.NoSuchProcess, psutil.AccessDenied):
            pass
    return out


def wait_until_gone(tag: str, deadline_s: float = 10.0) -> list[psutil.Process]:
    """Tagged processes still alive after `deadline_s` (a process may take a moment to
    notice that its parent has gone: the watches poll every 0.25-0.5 s)."""
    deadline = time.monotonic() + deadline_s
    while True:
        left = tagged(tag)
        if not left or time.monotonic() > deadline:
            return left
        time.sleep(0.1)


def _describe(procs: list[psutil.Process]) -> list[tuple[int, str]]:
    out = []
    for p in procs:
        with contextlib.suppress(psutil.NoSuchProcess):
            out.append((p.pid, " ".join(p.cmdline())[:120]))
    return out


# Under pytest-xdist (scripts/test.sh) every worker is its own process: `descendants`
# are that worker's, owner tags carry its PID and a random part, servers bind port 0
# or a port just found free, and files go to tmp_path. A module whose tests share
# one expensive module fixture marks itself `xdist_group` so it runs once.


@pytest.fixture
def owner_tag(monkeypatch: pytest.MonkeyPatch) -> str:
    """A fresh owner tag for this test: every process the app starts from now on (in
    this process or in a CLI subprocess) carries it in its environment."""
    tag = f"test-{os.getpid()}-{secrets.token_hex(4)}"
    monkeypatch.setenv(OWNER_ENV, tag)
    return tag


@pytest.fixture
def no_leftovers(owner_tag: str) -> Iterator[str]:
    """Fails the test if a process it started outlives it: our descendants, and any
    process on the machine with the test's owner tag (orphans re-parented to PID 1)."""
    before = {p.pid for p in descendants()}
    yield owner_tag
    left = [p for p in descendants() if p.pid not in before]
    orphans = wait_until_gone(owner_tag)
    left += [p for p in orphans if p.pid not in {q.pid for q in left}]
    described = _describe(left)
    for p in left:
        with contextlib.suppress(psutil.NoSuchProcess):
            p.kill()  # started by this test: tagged with its own tag, or our child
    assert not described, f"processes left behind: {described}"
