"""HTTP client for OpenAI-style chat completions, with the original's retry rules.

One pooled `httpx.Client`. Latency is the wall time of the successful attempt only,
in whole milliseconds, from sending the request to having the whole answer.

Every request has a total deadline (connect to last byte, streamed or not): httpx's
timeouts bound each read, so a server that trickles a byte a second would never trip
them. The client's network backend bounds every connect, read and write by what is
left of the request's deadline instead. `abandon()` shuts the sockets down under a
blocked read, from any thread, and no attempt follows.

Everything a server sends back passes through the redactor (API key, `Bearer
<token>`) before it is parsed, logged or stored.
"""

from __future__ import annotations

import contextlib
import email.utils
import json
import math
import re
import socket
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from typing import Any

import httpcore
import httpx

from halospec_tui.redact import Redactor

CHAT_PATH = "/api/v1/chat/completions"  # Lemonade (and the embedded server)
OPENAI_CHAT_PATH = "/v1/chat/completions"  # llama-server and other OpenAI-style servers
# The original's max_tokens, and so its token count for an answer without `usage`
# (it assumes the whole budget was spent); a request with its own max_tokens counts that.
MAX_TOKENS = 64
BACKOFF_MS = (400, 800)
LOADING_WAIT_S = 1.0  # between tries while a server loads its model, unless it asks more
PROBE_TOTAL_S = 3.0  # total deadline of a start-up probe
LogFn = Callable[[str, str], None]


@dataclass(frozen=True)
class Reply:
    success: bool
    latency_ms: int
    tokens: int
    text: str = ""
    attempts: int = 1
    error: str = ""
    connection_error: bool = False  # the last failure was transport-level
    status: int | None = None
    drafted: int | None = None
    accepted: int | None = None
    predicted_n: int | None = None
    predicted_ms: float | None = None
    prompt_ms: float | None = None
    cache_n: int | None = None
    ttft_ms: float | None = None
    # False when the answer had no usage.completion_tokens: `tokens` is then the
    # request's max_tokens, the original's assumption, not a count (and 0 on a failure)
    tokens_reported: bool = True

    @property
    def acceptance(self) -> float | None:
        if self.drafted and self.accepted is not None:
            return self.accepted / self.drafted
        return None


# -- total deadline ------------------------------------------------------------
class _DeadlineStream(httpcore.NetworkStream):
    """A socket stream whose every operation is bounded by the request's deadline."""

    def __init__(self, inner: httpcore.NetworkStream, backend: DeadlineBackend) -> None:
        self._inner = inner
        self._backend = backend
        backend._track(self)

    def read(self, max_bytes: int, timeout: float | None = None) -> bytes:
        return self._inner.read(max_bytes, self._backend.bound(timeout, httpcore.ReadTimeout))

    def write(self, buffer: bytes, timeout: float | None = None) -> None:
        self._inner.write(buffer, self._backend.bound(timeout, httpcore.WriteTimeout))

    def close(self) -> None:
        self._backend._forget(self)
        self._inner.close()

    def start_tls(
        self, ssl_context: Any, server_hostname: str | None = None, timeout: float | None = None
    ) -> httpcore.NetworkStream:
        self._backend._forget(self)
        bounded = self._backend.bound(timeout, httpcore.ConnectTimeout)
        return _DeadlineStream(
            self._inner.start_tls(ssl_context, server_hostname, bounded), self._backend
        )

    def get_extra_info(self, info: str) -> Any:
        return self._inner.get_extra_info(info)

    def shutdown(self) -> None:
        sock = self._inner.get_extra_info("socket")
        if sock is not None:
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)  # wakes a read blocked in another thread


class DeadlineBackend(httpcore.NetworkBackend):
    """httpcore's sync backend with a per-thread total deadline and an abandon switch."""

    def __init__(self) -> None:
        self._inner = httpcore.SyncBackend()
        self._local = threading.local()
        self._lock = threading.Lock()
        self._streams: set[_DeadlineStream] = set()
        self.abandoned = False

    @contextlib.contextmanager
    def deadline(self, seconds: float) -> Iterator[None]:
        """Bound everything this thread sends or receives inside the block to `seconds`."""
        prev = getattr(self._local, "deadline", None)
        mine = time.monotonic() + seconds
        self._local.deadline = mine if prev is None else min(prev, mine)
        try:
            yield
        finally:
            self._local.deadline = prev

    def bound(self, timeout: float | None, exc: type[Exception]) -> float | None:
        if self.abandoned:
            raise httpcore.ConnectError("request abandoned")
        deadline: float | None = getattr(self._local, "deadline", None)
        if deadline is None:
            return timeout
        left = deadline - time.monotonic()
        if left <= 0:
            raise exc("total deadline passed")
        return left if timeout is None else min(timeout, left)

    def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,
        local_address: str | None = None,
        socket_options: Any = None,
    ) -> httpcore.NetworkStream:
        bounded = self.bound(timeout, httpcore.ConnectTimeout)
        stream = self._inner.connect_tcp(host, port, bounded, local_address, socket_options)
        return _DeadlineStream(stream, self)

    def connect_unix_socket(
        self, path: str, timeout: float | None = None, socket_options: Any = None
    ) -> httpcore.NetworkStream:
        bounded = self.bound(timeout, httpcore.ConnectTimeout)
        return _DeadlineStream(self._inner.connect_unix_socket(path, bounded, socket_options), self)

    def sleep(self, seconds: float) -> None:
        self._inner.sleep(seconds)

    def abandon(self) -> None:
        """Fail every request in flight now, and every later one at once."""
        self.abandoned = True
        with self._lock:
            streams = list(self._streams)
        for s in streams:
            s.shutdown()

    def _track(self, s: _DeadlineStream) -> None:
        with self._lock:
            self._streams.add(s)

    def _forget(self, s: _DeadlineStream) -> None:
        with self._lock:
            self._streams.discard(s)


class DeadlineTransport(httpx.BaseTransport):
    """httpx's transport over an httpcore pool that connects through a `DeadlineBackend`.

    httpx takes any transport; httpcore's pool takes any network backend: both public.
    Keep-alive limits are httpx's defaults (100 connections, 20 kept 5 s).
    """

    def __init__(self, backend: DeadlineBackend) -> None:
        self._pool = httpcore.ConnectionPool(
            ssl_context=httpx.create_ssl_context(),
            max_connections=100,
            max_keepalive_connections=20,
            keepalive_expiry=5.0,
            network_backend=backend,
        )

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        assert isinstance(request.stream, httpx.SyncByteStream)
        url = request.url
        req = httpcore.Request(
            request.method,
            httpcore.URL(scheme=url.raw_scheme, host=url.raw_host, port=url.port,
                         target=url.raw_path),
            headers=request.headers.raw,
            content=request.stream,
            extensions=request.extensions,
        )  # fmt: skip
        with _httpx_errors():
            resp = self._pool.handle_request(req)
        assert isinstance(resp.stream, Iterable)
        return httpx.Response(
            resp.status,
            headers=resp.headers,
            stream=_Body(resp.stream),
            extensions=resp.extensions,
        )

    def close(self) -> None:
        self._pool.close()


class _Body(httpx.SyncByteStream):
    def __init__(self, inner: Iterable[bytes]) -> None:
        self._inner = inner

    def __iter__(self) -> Iterator[bytes]:
        with _httpx_errors():
            yield from self._inner

    def close(self) -> None:
        close = getattr(self._inner, "close", None)
        if close is not None:
            close()


# httpcore's errors as the httpx errors of the same name; the most derived one wins.
_HTTPX_ERROR: dict[type[Exception], type[httpx.HTTPError]] = {
    httpcore.ConnectTimeout: httpx.ConnectTimeout,
    httpcore.ReadTimeout: httpx.ReadTimeout,
    httpcore.WriteTimeout: httpx.WriteTimeout,
    httpcore.PoolTimeout: httpx.PoolTimeout,
    httpcore.TimeoutException: httpx.TimeoutException,
    httpcore.ConnectError: httpx.ConnectError,
    httpcore.ReadError: httpx.ReadError,
    httpcore.WriteError: httpx.WriteError,
    httpcore.NetworkError: httpx.NetworkError,
    httpcore.ProxyError: httpx.ProxyError,
    httpcore.UnsupportedProtocol: httpx.UnsupportedProtocol,
    httpcore.LocalProtocolError: httpx.LocalProtocolError,
    httpcore.RemoteProtocolError: httpx.RemoteProtocolError,
    httpcore.ProtocolError: httpx.ProtocolError,
}


@contextlib.contextmanager
def _httpx_errors() -> Iterator[None]:
    try:
        yield
    except Exception as e:
        mapped = next((_HTTPX_ERROR[t] for t in type(e).__mro__ if t in _HTTPX_ERROR), None)
        if mapped is None:
            raise
        raise mapped(str(e)) from e


def deadline_http(
    base_url: str = "", timeout_s: float = 60.0, headers: dict[str, str] | None = None
) -> tuple[httpx.Client, DeadlineBackend]:
    """An httpx client whose requests can be given a total deadline (see `DeadlineBackend`).

    Given a transport, httpx mounts no proxy from the environment: every request
    goes through this one, so none escapes the deadline.
    """
    backend = DeadlineBackend()
    client = httpx.Client(
        base_url=base_url, timeout=httpx.Timeout(timeout_s), headers=headers or {},
        transport=DeadlineTransport(backend),
    )  # fmt: skip
    return client, backend


def probe(url: str, total_s: float = PROBE_TOTAL_S) -> bool:
    """True when anything answers HTTP at `url` within `total_s` (connect to last byte)."""
    http, backend = deadline_http(timeout_s=total_s)
    try:
        with backend.deadline(total_s):
            http.get(url + "/api/v1/health")
        return True
    except httpx.HTTPError:
        return False
    finally:
        http.close()


# -- answers -------------------------------------------------------------------
def reply_text(doc: dict[str, Any]) -> str:
    """content, else reasoning_content, else choices[0].text (empty strings skipped)."""
    choices = doc.get("choices") or [{}]
    first = choices[0] if isinstance(choices[0], dict) else {}
    msg = first.get("message") or {}
    if not isinstance(msg, dict):
        msg = {}
    for candidate in (msg.get("content"), msg.get("reasoning_content"), first.get("text")):
        if isinstance(candidate, str) and candidate.strip():
            return candidate.strip()
    return "[EMPTY RESPONSE]"


def preview(text: str, limit: int = 140) -> str:
    """Text after </think>, its last sentence when there are several, cut to `limit` chars."""
    t = text.strip()
    end = t.find("</think>")
    s = t[end + len("</think>") :].strip() if end >= 0 else t
    parts = [p.strip() for p in re.split(r"[.!?]", s) if p.strip()]
    if len(parts) >= 2:
        s = parts[-1] + "."
    return s[:limit]


class MalformedAnswer(ValueError):
    """A parsable answer whose fields do not hold what they must."""


def _is_number(v: Any) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool)


def _finite(v: Any, name: str) -> float | None:
    """A number field: None when absent (or not a number); non-finite is malformed."""
    if not _is_number(v):
        return None
    if not math.isfinite(v):
        raise MalformedAnswer(f"{name} is not a finite number ({v!r})")
    return float(v)


def _count(v: Any, name: str) -> int | None:
    """A count: a finite non-negative integer, else None (treated as missing)."""
    f = _finite(v, name)
    if f is None or f < 0 or not f.is_integer():
        return None
    return int(f)


def _ms(v: Any, name: str) -> float | None:
    f = _finite(v, name)
    return f if f is not None and f >= 0 else None


def parse_completion(doc: dict[str, Any], missing_tokens: int = MAX_TOKENS) -> dict[str, Any]:
    """Tokens and llama.cpp timings from a completion document.

    Without `usage.completion_tokens`, tokens are `missing_tokens` (the request's
    max_tokens, as the original counts) and `tokens_reported` is False.

    Raises `MalformedAnswer` for a value no honest server sends (a non-finite number,
    a token count that is not a non-negative integer, `usage`/`timings` that are not
    objects). Negative or fractional draft counts, or more accepted than drafted,
    are treated as missing.
    """
    usage = doc.get("usage")
    timings = doc.get("timings")
    if usage is not None and not isinstance(usage, dict):
        raise MalformedAnswer("usage is not an object")
    if timings is not None and not isinstance(timings, dict):
        raise MalformedAnswer("timings is not an object")
    usage, timings = usage or {}, timings or {}
    raw_tokens = usage.get("completion_tokens")
    tokens = _count(raw_tokens, "completion_tokens")
    if raw_tokens is not None and (tokens is None or isinstance(raw_tokens, bool)):
        raise MalformedAnswer(f"completion_tokens is not a count ({raw_tokens!r})")
    drafted = _count(timings.get("draft_n"), "draft_n")
    accepted = _count(timings.get("draft_n_accepted"), "draft_n_accepted")
    if drafted is None or accepted is None or accepted > drafted:
        drafted = accepted = None
    return {
        "tokens": missing_tokens if tokens is None else tokens,
        "tokens_reported": tokens is not None,
        "drafted": drafted,
        "accepted": accepted,
        "predicted_n": _count(timings.get("predicted_n"), "predicted_n"),
        "predicted_ms": _ms(timings.get("predicted_ms"), "predicted_ms"),
        "prompt_ms": _ms(timings.get("prompt_ms"), "prompt_ms"),
        "cache_n": _count(timings.get("cache_n"), "cache_n"),
    }


def retry_after_s(value: str | None, now: float | None = None) -> float | None:
    """Seconds asked for by a Retry-After header (delta-seconds or an HTTP date)."""
    if not value:
        return None
    v = value.strip()
    try:
        secs = float(v)
    except ValueError:
        try:  # raises on a date it cannot parse (Python 3.10+)
            when = email.utils.parsedate_to_datetime(v)
        except (TypeError, ValueError):
            return None
        secs = when.timestamp() - (time.time() if now is None else now)
    if not math.isfinite(secs):
        return None
    return max(0.0, secs)


class _AttemptFailed(Exception):
    def __init__(
        self,
        message: str,
        *,
        status: int | None = None,
        connection: bool = False,
        retry_after: float | None = None,
    ):
        super().__init__(message)
        self.status = status
        self.connection = connection
        self.retry_after = retry_after


class _Loading(Exception):
    def __init__(self, retry_after: float | None = None) -> None:
        super().__init__("loading")
        self.retry_after = retry_after


class ChatClient:
    def __init__(
        self,
        base_url: str,
        model: str,
        *,
        api_key: str | None = None,
        timeout_s: float = 60.0,
        attempts: int = 3,
        backoff_ms: tuple[int, ...] = BACKOFF_MS,
        stream: bool = False,
        loading_wait_s: float = 120.0,
        debug_json: bool = False,
        log: LogFn | None = None,
        sleep: Callable[[float], None] | None = None,
        path: str = CHAT_PATH,
    ) -> None:
        self.base_url = base_url.rstrip("/")
        self.model = model
        self.attempts = attempts
        self.backoff_ms = backoff_ms
        self.stream = stream
        self.loading_wait_s = loading_wait_s
        self.debug_json = debug_json
        self.path = path
        self.timeout_s = timeout_s
        self.redact = Redactor((api_key,) if api_key else ())
        self.auth_refusals = 0  # consecutive replies refused with 401/403
        self.retrying = True  # False once the run is stopping: no new attempts
        self._log = log or (lambda level, text: None)
        self._abandoned = threading.Event()
        self._sleep = sleep or (lambda s: self._abandoned.wait(s) and None)
        headers = {"Authorization": f"Bearer {api_key}"} if api_key else {}
        self._headers = headers
        self._http, self._net = deadline_http(self.base_url, timeout_s, headers)

    # -- plumbing -----------------------------------------------------------
    def auth_headers(self) -> dict[str, str]:
        """The headers every request carries (for other clients of the same server)."""
        return dict(self._headers)

    def close(self) -> None:
        self._http.close()

    def stop_retrying(self) -> None:
        """From any thread: the attempt in flight is the last one (the run is stopping)."""
        self.retrying = False

    def abandon(self) -> None:
        """From any thread: fail the request in flight now; no retry, no later request."""
        self._abandoned.set()
        self._net.abandon()

    @property
    def abandoned(self) -> bool:
        """Abandoned, or closed: either way no attempt can succeed any more."""
        return self._abandoned.is_set() or self._http.is_closed

    def __enter__(self) -> ChatClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _get(self, path: str, timeout_s: float) -> httpx.Response:
        with self._net.deadline(timeout_s):
            return self._http.get(path, timeout=timeout_s)

    @staticmethod
    def _json(text: str) -> Any:
        try:
            return json.loads(text)
        except ValueError:
            return None

    def get_json(self, path: str, timeout_s: float = 5.0) -> tuple[int, Any]:
        """GET a JSON document: (status, parsed body or None). Raises httpx errors.

        `timeout_s` bounds the whole request.
        """
        r = self._get(path, timeout_s)
        return r.status_code, self._json(self.redact(r.text))

    def get_text(self, path: str, timeout_s: float = 5.0) -> tuple[int, str]:
        r = self._get(path, timeout_s)
        return r.status_code, self.redact(r.text)

    def post_json(
        self, path: str, body: dict[str, Any], timeout_s: float = 300.0
    ) -> tuple[int, Any]:
        with self._net.deadline(timeout_s):
            r = self._http.post(path, json=body, timeout=timeout_s)
        return r.status_code, self._json(self.redact(r.text))

    def ping(self) -> bool:
        """True when anything answers HTTP at the base URL (within 2 s in all)."""
        try:
            self._get("/api/v1/health", 2.0)
            return True
        except (httpx.HTTPError, RuntimeError):
            return False

    # -- requests -----------------------------------------------------------
    def build_body(
        self,
        prompt: str,
        extra: dict[str, Any] | None = None,
        *,
        max_tokens: int = MAX_TOKENS,
        cache_prompt: bool | None = None,
    ) -> dict[str, Any]:
        """The original's body, field for field, then the actuator's fields."""
        body: dict[str, Any] = {
            "model": self.model,
            "messages": [{"role": "user", "content": prompt}],
            "stream": self.stream,
            "max_tokens": max_tokens,
            "temperature": 0.0,
            "top_p": 1.0,
            "stop": ["</think>"],
        }
        if self.stream:
            body["stream_options"] = {"include_usage": True}
        if cache_prompt is not None:
            body["cache_prompt"] = cache_prompt
        body.update(extra or {})
        return body

    def chat(self, body: dict[str, Any]) -> Reply:
        """Send one step: up to `attempts` tries with backoff; 503 'loading' waits uncounted.

        A 429 or 503 with Retry-After waits what it asks, at most `timeout_s`.
        """
        reply = self._chat(body)
        if reply.success or reply.status not in (401, 403):
            self.auth_refusals = 0
        else:
            self.auth_refusals += 1
        return reply

    def _gave_up(self) -> bool:
        return self.abandoned

    def _chat(self, body: dict[str, Any]) -> Reply:
        # One loop kept whole (66 lines): loading waits, retries, backoff and abandon
        # decide together, attempt by attempt.
        last: _AttemptFailed | None = None
        attempt = 0
        loading_deadline = time.monotonic() + self.loading_wait_s
        while attempt < self.attempts:
            if self.abandoned:
                last = _AttemptFailed("request abandoned", connection=True)
                break
            attempt += 1
            try:
                doc, latency_ms, ttft_ms, fields = self._attempt(body)
            except _Loading as e:
                left = loading_deadline - time.monotonic()
                if left > 0 and self.retrying:
                    self._log("info", "server is loading the model; waiting (not counted)")
                    attempt -= 1
                    # Retry-After 0 gets the retry path's floor, not a busy loop
                    floor = self.backoff_ms[0] / 1000.0
                    wait = LOADING_WAIT_S if e.retry_after is None else max(e.retry_after, floor)
                    self._sleep(min(wait, left, self.timeout_s))
                    continue
                last = _AttemptFailed("503 model still loading after waiting", status=503)
            except _AttemptFailed as e:
                last = e
            else:
                if self.debug_json:
                    self._log("debug", "response JSON: " + json.dumps(doc, ensure_ascii=False))
                if not fields["tokens_reported"]:
                    self._log(
                        "warning",
                        f"response has no usage; counting {fields['tokens']} tokens (the "
                        "request's max_tokens) as the original",
                    )
                return Reply(
                    success=True,
                    latency_ms=latency_ms,
                    text=reply_text(doc),
                    attempts=attempt,
                    ttft_ms=ttft_ms,
                    **fields,
                )
            if self._gave_up():  # abandoned from another thread while in flight
                last = _AttemptFailed("request abandoned", connection=True)
                break
            self._log("warning", f"attempt {attempt}/{self.attempts} failed: {last}")
            if not self.retrying:
                self._log("info", "not retrying: the run is stopping")
                break
            if attempt < self.attempts:
                delay = self.backoff_ms[min(attempt - 1, len(self.backoff_ms) - 1)] / 1000.0
                if last.retry_after is not None:
                    delay = min(max(delay, last.retry_after), self.timeout_s)
                self._log("info", f"backoff {delay * 1000:.0f} ms then retry")
                self._sleep(delay)
        assert last is not None
        return Reply(
            success=False,
            latency_ms=0,
            tokens=0,
            text="FAILED",
            attempts=attempt,
            error=str(last),
            connection_error=last.connection,
            status=last.status,
            tokens_reported=False,
        )

    def _attempt(
        self, body: dict[str, Any]
    ) -> tuple[dict[str, Any], int, float | None, dict[str, Any]]:
        start = time.perf_counter()
        try:
            with self._net.deadline(self.timeout_s):
                if self.stream:
                    doc, ttft = self._stream(body, start)
                    latency_ms = int((time.perf_counter() - start) * 1000)
                else:
                    r = self._http.post(self.path, json=body)
                    latency_ms = int((time.perf_counter() - start) * 1000)
                    ttft = None
        except httpx.TimeoutException as e:
            if self.abandoned:
                raise _AttemptFailed("request abandoned", connection=True) from e
            raise _AttemptFailed(
                f"timeout ({type(e).__name__}; limit {self.timeout_s:g} s for the whole answer)",
                connection=True,
            ) from e
        except httpx.TransportError as e:
            if self.abandoned:
                raise _AttemptFailed("request abandoned", connection=True) from e
            raise _AttemptFailed(
                f"connection error: {self.redact(str(e)) or type(e).__name__}", connection=True
            ) from e
        except RuntimeError as e:
            if self.abandoned:  # httpx refuses a closed client: closed to abandon the run
                raise _AttemptFailed("request abandoned", connection=True) from e
            raise _AttemptFailed(f"{type(e).__name__}: {self.redact(str(e))}") from e
        if not self.stream:
            text = self.redact(r.text)
            _check_status(r.status_code, text, r.headers.get("retry-after"))
            try:
                doc = json.loads(text)
            except ValueError as e:
                raise _AttemptFailed(
                    f"malformed JSON in a {r.status_code} answer", status=r.status_code
                ) from e
            status = r.status_code
        else:
            status = 200
        _check_doc(doc, status)
        try:
            fields = parse_completion(doc, _max_tokens(body))
        except MalformedAnswer as e:
            raise _AttemptFailed(f"malformed answer: {e}", status=status) from e
        return doc, latency_ms, ttft, fields

    def _stream(self, body: dict[str, Any], start: float) -> tuple[dict[str, Any], float | None]:
        ttft: float | None = None
        pieces: list[str] = []
        usage: dict[str, Any] | None = None
        timings: dict[str, Any] | None = None
        with self._http.stream("POST", self.path, json=body) as r:
            if r.status_code >= 300:
                r.read()
                _check_status(r.status_code, self.redact(r.text), r.headers.get("retry-after"))
            for line in r.iter_lines():
                if not line.startswith("data:"):
                    continue
                data = self.redact(line[5:].strip())
                if data == "[DONE]":
                    break
                try:
                    chunk = json.loads(data)
                except ValueError as e:
                    raise _AttemptFailed(
                        "malformed JSON in a stream chunk", status=r.status_code
                    ) from e
                if not isinstance(chunk, dict):
                    raise _AttemptFailed(
                        "malformed answer: a stream chunk is not a JSON object",
                        status=r.status_code,
                    )
                choices = chunk.get("choices") or []
                if not isinstance(choices, list):
                    raise _AttemptFailed(
                        "malformed answer: choices is not a list", status=r.status_code
                    )
                for ch in choices:
                    delta = (ch.get("delta") or {}) if isinstance(ch, dict) else {}
                    if not isinstance(delta, dict):
                        raise _AttemptFailed(
                            "malformed answer: delta is not an object", status=r.status_code
                        )
                    piece = delta.get("content") or delta.get("reasoning_content") or ""
                    if piece and isinstance(piece, str):
                        if ttft is None:
                            ttft = (time.perf_counter() - start) * 1000.0
                        pieces.append(piece)
                if chunk.get("usage") is not None:
                    usage = chunk["usage"]
                if chunk.get("timings") is not None:
                    timings = chunk["timings"]
        doc: dict[str, Any] = {"choices": [{"message": {"content": "".join(pieces)}}]}
        if usage is not None:
            doc["usage"] = usage
        if timings is not None:
            doc["timings"] = timings
        return doc, ttft


def _max_tokens(body: dict[str, Any]) -> int:
    """The request's max_tokens (the original's 64 when the body has no valid one)."""
    n = body.get("max_tokens")
    return n if isinstance(n, int) and not isinstance(n, bool) and n > 0 else MAX_TOKENS


def _check_status(status: int, text: str, retry_after: str | None = None) -> None:
    wait = retry_after_s(retry_after) if status in (429, 503) else None
    if status == 503 and "loading" in text.lower():
        raise _Loading(wait)
    if not 200 <= status < 300:
        snippet = " ".join(text.split())[:120]
        raise _AttemptFailed(f"HTTP {status}: {snippet}", status=status, retry_after=wait)


def _check_doc(doc: Any, status: int) -> None:
    if not isinstance(doc, dict):
        raise _AttemptFailed(f"answer is not a JSON object (HTTP {status})", status=status)
    choices = doc.get("choices")
    if not isinstance(choices, list) or not choices:
        raise _AttemptFailed(f"answer has no choices (HTTP {status})", status=status)
    first = choices[0]
    if not isinstance(first, dict):
        raise _AttemptFailed("malformed answer: choices[0] is not an object", status=status)
    msg = first.get("message")
    if msg is not None and not isinstance(msg, dict):
        raise _AttemptFailed("malformed answer: message is not an object", status=status)
    for key in ("content", "reasoning_content"):
        v = (msg or {}).get(key)
        if v is not None and not isinstance(v, str):
            raise _AttemptFailed(f"malformed answer: message.{key} is not text", status=status)
