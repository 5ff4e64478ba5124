"""HTTP client for OpenAI-style chat completions, with the original's retry rules.

One pooled `httpx.Client`. Latency is the wall time of the successful attempt only,
in whole milliseconds, from sending the request to having the whole answer.
"""

from __future__ import annotations

import json
import re
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import httpx

CHAT_PATH = "/api/v1/chat/completions"  # Lemonade (and the embedded server)
OPENAI_CHAT_PATH = "/v1/chat/completions"  # llama-server and other OpenAI-style servers
DEFAULT_TOKENS = 64  # the original's fallback when `usage` is missing
BACKOFF_MS = (400, 800)
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
    raw: dict[str, Any] | None = field(default=None, compare=False, repr=False)

    @property
    def acceptance(self) -> float | None:
        if self.drafted and self.accepted is not None:
            return self.accepted / self.drafted
        return None


def reply_text(doc: dict[str, Any]) -> str:
    """content, else reasoning_content, else choices[0].text (empty strings skipped)."""
    choices = doc.get("choices") or [{}]
    first = choices[0] if isinstance(choices[0], dict) else {}
    msg = first.get("message") or {}
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


def _int_or_none(v: Any) -> int | None:
    return int(v) if isinstance(v, (int, float)) and not isinstance(v, bool) else None


def _float_or_none(v: Any) -> float | None:
    return float(v) if isinstance(v, (int, float)) and not isinstance(v, bool) else None


def parse_completion(doc: dict[str, Any]) -> dict[str, Any]:
    """Tokens and llama.cpp timings from a completion document."""
    usage: Any = doc.get("usage") if isinstance(doc.get("usage"), dict) else {}
    timings: Any = doc.get("timings") if isinstance(doc.get("timings"), dict) else {}
    tokens = _int_or_none(usage.get("completion_tokens"))
    return {
        "tokens": DEFAULT_TOKENS if tokens is None else tokens,
        "drafted": _int_or_none(timings.get("draft_n")),
        "accepted": _int_or_none(timings.get("draft_n_accepted")),
        "predicted_n": _int_or_none(timings.get("predicted_n")),
        "predicted_ms": _float_or_none(timings.get("predicted_ms")),
        "prompt_ms": _float_or_none(timings.get("prompt_ms")),
        "cache_n": _int_or_none(timings.get("cache_n")),
    }


class _AttemptFailed(Exception):
    def __init__(self, message: str, *, status: int | None = None, connection: bool = False):
        super().__init__(message)
        self.status = status
        self.connection = connection


class _Loading(Exception):
    pass


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
        sleep: Callable[[float], None] = time.sleep,
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
        self._log = log or (lambda level, text: None)
        self._sleep = sleep
        headers = {"Authorization": f"Bearer {api_key}"} if api_key else {}
        self._http = httpx.Client(
            base_url=self.base_url,
            timeout=httpx.Timeout(timeout_s),
            headers=headers,
        )

    # -- plumbing -----------------------------------------------------------
    def close(self) -> None:
        self._http.close()

    def __enter__(self) -> ChatClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def get_json(self, path: str, timeout_s: float = 5.0) -> tuple[int, Any]:
        """GET a JSON document: (status, parsed body or None). Raises httpx errors."""
        r = self._http.get(path, timeout=timeout_s)
        try:
            return r.status_code, r.json()
        except ValueError:
            return r.status_code, None

    def get_text(self, path: str, timeout_s: float = 5.0) -> tuple[int, str]:
        r = self._http.get(path, timeout=timeout_s)
        return r.status_code, r.text

    def post_json(
        self, path: str, body: dict[str, Any], timeout_s: float = 300.0
    ) -> tuple[int, Any]:
        r = self._http.post(path, json=body, timeout=timeout_s)
        try:
            return r.status_code, r.json()
        except ValueError:
            return r.status_code, None

    def ping(self) -> bool:
        """True when anything answers HTTP at the base URL."""
        try:
            self._http.get("/api/v1/health", timeout=2.0)
            return True
        except httpx.HTTPError:
            return False

    # -- requests -----------------------------------------------------------
    def build_body(
        self,
        prompt: str,
        extra: dict[str, Any] | None = None,
        *,
        max_tokens: int = 64,
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
        """Send one step: up to `attempts` tries with backoff; 503 'loading' waits uncounted."""
        last: _AttemptFailed | None = None
        attempt = 0
        loading_deadline = time.monotonic() + self.loading_wait_s
        while attempt < self.attempts:
            attempt += 1
            try:
                doc, latency_ms, ttft_ms = self._attempt(body)
            except _Loading:
                if time.monotonic() < loading_deadline:
                    self._log("info", "server is loading the model; waiting (not counted)")
                    attempt -= 1
                    self._sleep(1.0)
                    continue
                last = _AttemptFailed("503 model still loading after waiting", status=503)
            except _AttemptFailed as e:
                last = e
            else:
                if self.debug_json:
                    self._log("debug", "response JSON: " + json.dumps(doc, ensure_ascii=False))
                fields = parse_completion(doc)
                if "usage" not in doc:
                    self._log(
                        "warning", "response has no usage; counting 64 tokens as the original"
                    )
                return Reply(
                    success=True,
                    latency_ms=latency_ms,
                    text=reply_text(doc),
                    attempts=attempt,
                    ttft_ms=ttft_ms,
                    raw=doc,
                    **fields,
                )
            self._log("warning", f"attempt {attempt}/{self.attempts} failed: {last}")
            if attempt < self.attempts:
                delay = self.backoff_ms[min(attempt - 1, len(self.backoff_ms) - 1)]
                self._log("info", f"backoff {delay} ms then retry")
                self._sleep(delay / 1000.0)
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
        )

    def _attempt(self, body: dict[str, Any]) -> tuple[dict[str, Any], int, float | None]:
        start = time.perf_counter()
        try:
            if self.stream:
                doc, ttft = self._stream(body, start)
                latency_ms = int((time.perf_counter() - start) * 1000)
                return doc, latency_ms, ttft
            r = self._http.post(self.path, json=body)
            latency_ms = int((time.perf_counter() - start) * 1000)
        except httpx.TimeoutException as e:
            raise _AttemptFailed(f"timeout ({type(e).__name__})", connection=True) from e
        except httpx.TransportError as e:
            raise _AttemptFailed(
                f"connection error: {e or type(e).__name__}", connection=True
            ) from e
        except RuntimeError as e:  # the client was closed to abandon the run
            raise _AttemptFailed(f"request abandoned: {e}", connection=True) from e
        _check_status(r.status_code, r.text)
        try:
            doc = r.json()
        except ValueError as e:
            raise _AttemptFailed(
                f"malformed JSON in a {r.status_code} answer", status=r.status_code
            ) from e
        _check_doc(doc, r.status_code)
        return doc, latency_ms, None

    def _stream(self, body: dict[str, Any], start: float) -> tuple[dict[str, Any], float | None]:
        ttft: float | None = None
        pieces: list[str] = []
        usage: dict[str, Any] | None = None
        timings: dict[str, Any] | None = None
        with self._http.stream("POST", self.path, json=body) as r:
            if r.status_code >= 300:
                r.read()
                _check_status(r.status_code, r.text)
            for line in r.iter_lines():
                if not line.startswith("data:"):
                    continue
                data = line[5:].strip()
                if data == "[DONE]":
                    break
                try:
                    chunk = json.loads(data)
                except ValueError as e:
                    raise _AttemptFailed(
                        "malformed JSON in a stream chunk", status=r.status_code
                    ) from e
                for ch in chunk.get("choices") or []:
                    delta = (ch.get("delta") or {}) if isinstance(ch, dict) else {}
                    piece = delta.get("content") or delta.get("reasoning_content") or ""
                    if piece:
                        if ttft is None:
                            ttft = (time.perf_counter() - start) * 1000.0
                        pieces.append(piece)
                if isinstance(chunk.get("usage"), dict):
                    usage = chunk["usage"]
                if isinstance(chunk.get("timings"), dict):
                    timings = chunk["timings"]
        doc: dict[str, Any] = {"choices": [{"message": {"content": "".join(pieces)}}]}
        if usage is not None:
            doc["usage"] = usage
        if timings is not None:
            doc["timings"] = timings
        return doc, ttft


def _check_status(status: int, text: str) -> None:
    if status == 503 and "loading" in text.lower():
        raise _Loading()
    if not 200 <= status < 300:
        snippet = " ".join(text.split())[:120]
        raise _AttemptFailed(f"HTTP {status}: {snippet}", status=status)


def _check_doc(doc: Any, status: int) -> None:
    if not isinstance(doc, dict):
        raise _AttemptFailed(f"answer is not a JSON object (HTTP {status})", status=status)
    choices = doc.get("choices")
    if not isinstance(choices, list) or not choices:
        raise _AttemptFailed(f"answer has no choices (HTTP {status})", status=status)
