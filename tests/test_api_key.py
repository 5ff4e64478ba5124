"""The API key reaches the server, and nothing else: not the CSV, the summaries, the
--log-file, stdout/stderr, nor the monitor's log pane; from --api-key and from
LEMONADE_API_KEY.

A recording proxy on 127.0.0.1 in front of the embedded server sees every request's
Authorization header, so the test first proves the key arrived.
"""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import httpx
import pytest
from textual.widgets import RichLog

from halospec_tui.events import LogRouter
from halospec_tui.load import LoadInjector
from halospec_tui.plan import customise, named_plan
from halospec_tui.runner import RunConfig
from halospec_tui.session import SessionOptions, open_session
from halospec_tui.ui.app import make_app

CLI = [sys.executable, "-m", "halospec_tui"]
SECRET = "sk-SECRET-7f3a9c"


class Recorder(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, upstream: str) -> None:
        super().__init__(("127.0.0.1", 0), _Forward)
        self.upstream = upstream
        self.seen: list[tuple[str, str, str | None]] = []  # (method, path, Authorization)
        self.lock = threading.Lock()

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}"


class _Forward(BaseHTTPRequestHandler):
    server: Recorder

    def _forward(self, method: str) -> None:
        body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        with self.server.lock:
            self.server.seen.append((method, self.path, self.headers.get("Authorization")))
        headers = {"Content-Type": self.headers.get("Content-Type", "application/json")}
        try:
            r = httpx.request(
                method, self.server.upstream + self.path, content=body, headers=headers, timeout=60
            )
        except httpx.HTTPError:
            self.send_error(502)
            return
        self.send_response(r.status_code)
        self.send_header("Content-Type", r.headers.get("Content-Type", "application/json"))
        self.send_header("Content-Length", str(len(r.content)))
        self.end_headers()
        self.wfile.write(r.content)

    def do_GET(self) -> None:
        self._forward("GET")

    def do_POST(self) -> None:
        self._forward("POST")

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def recorder(sim) -> Iterator[Recorder]:
    server = Recorder(sim.base_url)
    t = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.1}, daemon=True)
    t.start()
    try:
        yield server
    finally:
        server.shutdown()
        server.server_close()
        t.join(timeout=10)


def chat_auth(rec: Recorder) -> list[str | None]:
    return [auth for method, path, auth in rec.seen if path.endswith("/chat/completions")]


def files_text(folder: Path) -> dict[str, str]:
    return {p.name: p.read_text(errors="replace") for p in folder.iterdir() if p.is_file()}


def _cli_run(tmp_path: Path, rec: Recorder, key_args: list[str], env: dict[str, str]):
    out = tmp_path / "key.csv"
    p = subprocess.run(
        CLI + ["--no-ui", "--plan", "quick", "--modes", "fixed_1,fixed_3", "--steps", "2", "--warmup", "1",
               "--base-url", rec.base_url, "--debug-json", "-v", "--log-file", str(tmp_path / "run.log"),
               "--csv", str(out), *key_args],
        capture_output=True, text=True, timeout=180, stdin=subprocess.DEVNULL, env=env,
    )  # fmt: skip
    return p, out


@pytest.mark.parametrize("source", ["--api-key", "LEMONADE_API_KEY"])
def test_api_key_arrives_and_is_written_nowhere(tmp_path, recorder, no_leftovers, source):
    env = {k: v for k, v in os.environ.items() if k != "LEMONADE_API_KEY"}
    if source == "--api-key":
        p, out = _cli_run(tmp_path, recorder, ["--api-key", SECRET], env)
    else:
        p, out = _cli_run(tmp_path, recorder, [], {**env, "LEMONADE_API_KEY": SECRET})
    assert p.returncode == 0, p.stderr
    # it arrived: every chat request (2 modes x (1 warmup + 2 steps)) carried the token
    assert chat_auth(recorder) == [f"Bearer {SECRET}"] * 6
    # ... and the run really logged everything it could
    assert "debug: response JSON: " in p.stderr
    files = files_text(tmp_path)
    assert set(files) == {"key.csv", "key_summary.txt", "key_summary.json", "key_summary.md", "run.log"}
    assert "response JSON" in files["run.log"]
    for name, text in {"stdout": p.stdout, "stderr": p.stderr, **files}.items():
        assert SECRET not in text, name
        assert "SECRET" not in text, name  # not even a part of it


def test_without_a_key_no_authorization_is_sent(tmp_path, recorder, no_leftovers):
    env = {k: v for k, v in os.environ.items() if k != "LEMONADE_API_KEY"}
    p, _ = _cli_run(tmp_path, recorder, [], env)
    assert p.returncode == 0, p.stderr
    assert chat_auth(recorder) == [None] * 6


def test_api_key_stays_out_of_the_monitor_log_pane(tmp_path, recorder, no_leftovers):
    log = LogRouter()
    session = open_session(
        SessionOptions(
            backend="server", base_url=recorder.base_url, api_key=SECRET, debug_json=True
        ),
        log,
    )
    plan = customise(named_plan("quick"), arms=["fixed_2"], warmup=1, steps=2)
    config = RunConfig(plan, str(tmp_path / "ui.csv"), backend=session.backend)
    app = make_app(config, session, LoadInjector(workers=1), log)
    pane: list[str] = []

    async def go() -> None:
        async with app.run_test(size=(140, 44)) as pilot:
            deadline = time.monotonic() + 120
            while True:
                lines = [strip.text for strip in app.query_one("#log", RichLog).lines]
                if app.finished is not None and sum("response JSON" in x for x in lines) >= 3:
                    break
                assert time.monotonic() < deadline, "the log pane never showed the responses"
                await pilot.pause(0.05)
            pane.extend(lines)
            await pilot.press("q")

    with session:
        asyncio.run(go())
    assert chat_auth(recorder) == [f"Bearer {SECRET}"] * 3
    joined = "".join(pane)  # the pane wraps long lines: look across the breaks too
    assert "response JSON" in joined
    assert SECRET not in joined and "SECRET" not in joined
    for name, text in files_text(tmp_path).items():
        assert "SECRET" not in text, name
