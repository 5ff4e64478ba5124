"""Small helpers shared by the tests."""

import csv
import os
import time
from dataclasses import dataclass, field
from pathlib import Path

import pytest


def csv_rows(path: str | Path) -> list[dict[str, str]]:
    with open(path, newline="") as fh:
        return list(csv.DictReader(fh))


def wait_rows(csv_path: Path, n: int, proc=None, timeout_s: float = 120.0) -> None:
    """Wait until the CSV holds at least n rows (and, given a process, while it runs)."""
    deadline = time.monotonic() + timeout_s
    while not (csv_path.exists() and len(csv_rows(csv_path)) >= n):
        assert proc is None or proc.poll() is None, f"exited early with {proc.returncode}"
        assert time.monotonic() < deadline, f"fewer than {n} rows in {timeout_s} s"
        time.sleep(0.05)


async def quit_after_rows(app, pilot, csv_path: Path, rows: int, deadline_s: float = 120.0):
    """In a running monitor: once the CSV holds `rows` rows, press q, confirm with y and
    wait for the run to finish; returns the RunFinished."""
    from halospec_tui.ui.app import ConfirmQuit

    deadline = time.monotonic() + deadline_s
    while not csv_path.exists() or len(csv_rows(csv_path)) < rows:
        assert time.monotonic() < deadline
        await pilot.pause(0.1)
    await pilot.press("q")
    while not isinstance(app.screen, ConfirmQuit):
        assert time.monotonic() < deadline
        await pilot.pause(0.05)
    await pilot.press("y")
    while app.finished is None:
        assert time.monotonic() < deadline
        await pilot.pause(0.1)
    return app.finished


class FakeClientBase:
    """What every fake client of the runner shares (steps.BenchClient): no /metrics,
    a server that always answers pings, no refusals; stop and abandon recorded."""

    base_url = "http://fake"
    model = "Qwen3-0.6B-GGUF"
    debug_json = False
    auth_refusals = 0
    stopped_retrying = False
    abandoned = False

    def build_body(self, prompt, extra=None, **kw):
        return dict(extra or {})

    def ping(self):
        return True

    def get_text(self, path, timeout_s=5.0):
        return 404, ""  # no /metrics: drafting stays unknown

    def stop_retrying(self):
        self.stopped_retrying = True

    def abandon(self):
        self.abandoned = True

    def close(self):
        pass


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0
        self.sleeps: list[float] = []

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        assert 0 < seconds <= 0.1 + 1e-12, seconds  # short slices: stop stays prompt
        self.sleeps.append(seconds)
        self.now += seconds


@dataclass
class FakeLoad:
    """Burners that end by themselves when the fake clock passes their duration."""

    clock: FakeClock
    workers: int = 2
    starts: list[tuple[float, float]] = field(default_factory=list)  # (at, duration)
    ends_at: float | None = None

    def start(self, duration_s: float) -> None:
        if self.active:
            return
        self.starts.append((self.clock.now, duration_s))
        self.ends_at = self.clock.now + duration_s

    @property
    def active(self) -> bool:
        return self.ends_at is not None and self.clock.now < self.ends_at

    def seconds_left(self) -> float | None:
        return max(0.0, self.ends_at - self.clock.now) if self.active else None  # type: ignore[operator]

    def pids(self) -> tuple[int, ...]:
        return ()

    def stop(self) -> None:
        self.ends_at = None


# -- the real llama-server ------------------------------------------------------------
CACHED_LLAMA = Path.home() / ".cache/halospec-tui/llama-server-11434.0.0/llama-server"


def llama_binary() -> str | None:
    """The real llama-server: $LLAMA_SERVER, else scripts/build-llama-server.sh's cache;
    None when neither is there and executable."""
    b = os.environ.get("LLAMA_SERVER") or (str(CACHED_LLAMA) if CACHED_LLAMA.exists() else None)
    return b if b and os.access(b, os.X_OK) else None


LLAMA_SERVER = llama_binary()
if LLAMA_SERVER is None and os.environ.get("CI"):
    raise RuntimeError("CI must provide a llama-server (scripts/build-llama-server.sh)")
# a test that runs the real llama-server: marked, and skipped only off CI without one
needs_llama = [
    pytest.mark.llama,
    pytest.mark.skipif(LLAMA_SERVER is None, reason="no llama-server: run scripts/build-llama-server.sh"),
]
