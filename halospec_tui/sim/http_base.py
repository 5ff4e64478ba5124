"""The embedded server's HTTP plumbing: routes under any API prefix, JSON answers and
errors, and a request body read whole, on every route, or refused.

A body is never left unread (it would be taken for the next request on the
connection): a GET's is read and dropped. Its Content-Length must be a plain byte
count (anything else is a 400, and the connection closes: the body's end is
unknown); over MAX_BODY it is a 413, unread; a chunked body is a 411. A client that
stalls mid-body is let go after BODY_READ_TIMEOUT_S, one that hangs up is not
answered. Nothing here writes to stderr.
"""

from __future__ import annotations

import json
from http.server import BaseHTTPRequestHandler
from typing import Any

MAX_BODY = 1 << 20  # a larger request body is refused (413) unread, on every route
BODY_READ_TIMEOUT_S = 30.0  # a client that stalls in the middle of its body is let go


class JsonHandler(BaseHTTPRequestHandler):
    """HTTP/1.1 keep-alive, quiet, JSON in and out."""

    protocol_version = "HTTP/1.1"
    # Headers and body leave in two writes: with Nagle's algorithm the body would wait
    # for the client's delayed ACK of the headers, about 40 ms on every answer.
    disable_nagle_algorithm = True

    def log_message(self, format: str, *args: Any) -> None:  # quiet
        pass

    # -- plumbing -----------------------------------------------------------
    def _route(self) -> str:
        path = self.path.split("?", 1)[0].rstrip("/")
        for prefix in ("/api/v1", "/api/v0", "/v1", "/v0"):
            if path.startswith(prefix + "/"):
                return path[len(prefix) :]
        return path

    def _send(
        self, status: int, doc: Any, content_type: str = "application/json", close: bool = False
    ) -> None:
        body = doc if isinstance(doc, bytes) else json.dumps(doc).encode()
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        if close:
            self.send_header("Connection", "close")
            self.close_connection = True
        self.end_headers()
        self.wfile.write(body)

    def _error(self, status: int, message: str, kind: str, close: bool = False) -> None:
        doc = {"error": {"code": status, "message": message, "type": kind}}
        self._send(status, doc, close=close)

    def _take_body(self) -> bytes | None:
        """The whole request body (b"" when there is none), read on every route so
        that it is never taken for the next request on the connection; None once the
        request has been refused (the connection then closes: its body's end is
        unknown or unread)."""
        if self.headers.get("Transfer-Encoding") is not None:
            self._refuse(411, "send the request body with a Content-Length (not chunked)")
            return None
        declared = {v.strip() for v in self.headers.get_all("Content-Length") or []}
        if not declared:
            return b""
        text = declared.pop()
        if declared:
            self._refuse(400, "conflicting Content-Length headers")
            return None
        if not (text.isascii() and text.isdigit()):
            self._refuse(400, f"Content-Length {text[:40]!r} is not a byte count")
            return None
        digits = text.lstrip("0")
        if len(digits) > len(str(MAX_BODY)) or int(digits or "0") > MAX_BODY:
            self._refuse(413, f"request body over the limit of {MAX_BODY} bytes", "too_large")
            return None
        return self._read_exactly(int(digits or "0"))

    def _read_exactly(self, length: int) -> bytes | None:
        """`length` bytes of body, or None (connection closed) if the client stops
        sending them or stalls for BODY_READ_TIMEOUT_S."""
        if not length:
            return b""
        try:
            self.connection.settimeout(BODY_READ_TIMEOUT_S)
            raw = self.rfile.read(length)
            self.connection.settimeout(None)
        except OSError:
            raw = b""
        if len(raw) < length:  # the client gave up: nobody is left to answer
            self.close_connection = True
            return None
        return raw

    def _refuse(self, status: int, message: str, kind: str = "invalid_request_error") -> None:
        self._error(status, message, kind, close=True)

    def _json_body(self, raw: bytes) -> dict[str, Any] | None:
        """The body as a JSON object, or None once a 400 has been sent."""
        try:
            doc = json.loads(raw or b"null")
        except ValueError:
            self._error(400, "request body is not valid JSON", "invalid_request_error")
            return None
        if not isinstance(doc, dict):
            self._error(400, "request body must be a JSON object", "invalid_request_error")
            return None
        return doc
