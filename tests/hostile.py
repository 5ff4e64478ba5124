"""A hostile HTTP server for the tests: stdlib, 127.0.0.1 only, one behaviour per test.

It answers GET /api/v1/health with `{}` (a server of unknown kind) and 404 with a
body elsewhere; every POST goes to the behaviour given, with the request recorded.
Behaviours stop by themselves when the server stops or the client hangs up.
"""

from __future__ import annotations

import http.server
import json
import threading
import time
from collections.abc import Callable
from typing import Any

Behaviour = Callable[["Handler"], None]


class Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    disable_nagle_algorithm = True  # no 40 ms wait for the ACK of the headers
    server: _Server

    def log_message(self, *args: object) -> None:
        pass

    def do_GET(self) -> None:
        self.server.owner.gets.append(self.path)
        get = self.server.owner.get
        if get is not None:
            get(self)
        elif self.path == "/api/v1/health":
            self.send_json({})
        else:
            self.send_json({"error": "not found"}, status=404)

    def do_POST(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length)
        owner = self.server.owner
        owner.posts.append((self.path, dict(self.headers), json.loads(body or b"null")))
        owner.behaviour(self)

    # -- building blocks -----------------------------------------------------
    def send_json(
        self, doc: Any, status: int = 200, headers: dict[str, str] | None = None
    ) -> None:
        data = doc if isinstance(doc, bytes) else json.dumps(doc).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        for k, v in (headers or {}).items():
            self.send_header(k, v)
        self.end_headers()
        self.wfile.write(data)

    def trickle(self, data: bytes, every_s: float) -> None:
        """Send `data` a byte at a time; stop when the peer or the server goes."""
        stopping = self.server.owner.stopping
        try:
            for i in range(len(data)):
                if stopping.wait(every_s):
                    return
                self.wfile.write(data[i : i + 1])
                self.wfile.flush()
        except OSError:
            return


class _Server(http.server.ThreadingHTTPServer):
    daemon_threads = True
    owner: HostileServer


class HostileServer:
    def __init__(self, behaviour: Behaviour, get: Behaviour | None = None) -> None:
        self.behaviour = behaviour
        self.get = get
        self.posts: list[tuple[str, dict[str, str], Any]] = []
        self.gets: list[str] = []
        self.stopping = threading.Event()
        self._server = _Server(("127.0.0.1", 0), Handler)
        self._server.owner = self
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self._server.server_address[1]}"

    def __enter__(self) -> HostileServer:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stopping.set()
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(10)


# -- behaviours ----------------------------------------------------------------
def ok_doc(tokens: int = 8, **timings: Any) -> dict[str, Any]:
    doc: dict[str, Any] = {
        "choices": [{"message": {"content": "fine."}}],
        "usage": {"completion_tokens": tokens},
    }
    if timings:
        doc["timings"] = timings
    return doc


def answer(doc: Any, status: int = 200, headers: dict[str, str] | None = None) -> Behaviour:
    return lambda h: h.send_json(doc, status, headers)


def trickle_body(every_s: float = 0.25) -> Behaviour:
    """Headers at once, promising 4000 bytes, then one byte every `every_s`."""

    def go(h: Handler) -> None:
        h.send_response(200)
        h.send_header("Content-Type", "application/json")
        h.send_header("Content-Length", "4000")
        h.end_headers()
        h.wfile.flush()
        h.trickle(b" " * 4000, every_s)

    return go


def trickle_headers(every_s: float = 0.25) -> Behaviour:
    """Even the status line and headers come a byte at a time."""

    def go(h: Handler) -> None:
        h.trickle(b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n" + b"X: y\r\n" * 200,
                  every_s)  # fmt: skip

    return go


def wait_for(cond: Callable[[], bool], timeout_s: float, what: str) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if cond():
            return
        time.sleep(0.05)
    raise AssertionError(f"timed out waiting for {what}")
