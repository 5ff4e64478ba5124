"""HTTP front of the embedded server: the Lemonade / llama-server protocol on 127.0.0.1.

Routes (each also without the /api/v1 prefix and under /v1): POST chat/completions,
GET health, GET models, POST load, GET /metrics, POST /sim/fault (tests).
One decoding slot, like llama-server's default: requests queue on a lock.
"""

from __future__ import annotations

import contextlib
import json
import shlex
import socket
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import numpy as np

from halospec_tui import __version__
from halospec_tui.sim.faults import FaultSpec, FaultSpecError, parse_faults
from halospec_tui.sim.physics import Engine, Generation, SimParams, generate, reload_pause_ms
from halospec_tui.specflags import NO_SPECULATION, k_from_args, p_min_from_args, spec_text

HOST = "127.0.0.1"
TIMEOUT_STALL_S = 90.0
MAX_K = 64
MAX_BODY = 1 << 20  # larger bodies of unknown routes are not read: the connection closes


class SimState:
    """Everything the handlers share; guarded by locks."""

    def __init__(self, params: SimParams) -> None:
        self.params = params
        self.engine = Engine(params)
        self.k = params.draft_n_max
        self.p_min = 0.0  # --spec-draft-p-min of the last load
        self.llamacpp_args = ""
        self.faults: FaultSpec = parse_faults(params.fault)
        self.fault_rng = np.random.default_rng(params.seed + 7)
        self.slot = threading.Lock()
        self.meta = threading.Lock()
        self.requests = 0
        self.drafted_total = 0
        self.accepted_total = 0
        self.tokens_total = 0
        self.last_prompt: str | None = None

    def launch_command(self) -> str:
        """What Lemonade would show: K = 0 runs without a draft model, `--spec-type none`."""
        draft = " -md sim-draft.gguf" if self.k != NO_SPECULATION else ""
        return f"llama-server -m sim-target.gguf{draft} {spec_text(self.k)}"

    def health(self) -> dict[str, Any]:
        p = self.params
        return {
            "status": "ok",
            "version": f"sim-{__version__}",
            "model_loaded": p.model,
            "all_models_loaded": [
                {
                    "model_name": p.model,
                    "checkpoint": "halospec-sim",
                    "type": "llm",
                    "device": "cpu",
                    "recipe": "llamacpp",
                    "launch_command": self.launch_command(),
                }
            ],
            "sim": {
                **p.to_dict(),
                "draft_n_max": self.k,
                "fault": str(self.faults),
                "unit_ms": self.engine.unit_ms,
                "requests_served": self.requests,
            },
        }


@dataclass
class _ChatRequest:
    model: str
    prompt: str
    max_tokens: int
    k: int | None  # per-request K (honoured only when configured), else the loaded K
    p_min: float | None  # per-request p_min (likewise), else the loaded one
    stream: bool
    cache_prompt: bool
    fault: str | None = None  # drawn once per request


@dataclass(frozen=True)
class _Decoded:
    gen: Generation
    request_no: int
    cached: int  # prompt tokens served from the cache


class Handler(BaseHTTPRequestHandler):
    server_version = "halospec-sim"
    protocol_version = "HTTP/1.1"
    state: SimState  # set on the subclass made by make_server

    def log_message(self, format: str, *args: Any) -> None:  # quiet
        pass

    # -- plumbing -----------------------------------------------------------
    def _route(self) -> str:
        path = self.path.split("?", 1)[0].rstrip("/")
        for prefix in ("/api/v1", "/api/v0", "/v1", "/v0"):
            if path.startswith(prefix + "/"):
                return path[len(prefix) :]
        return path

    def _send(self, status: int, doc: Any, content_type: str = "application/json") -> None:
        body = doc if isinstance(doc, bytes) else json.dumps(doc).encode()
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def _error(self, status: int, message: str, kind: str) -> None:
        self._send(status, {"error": {"code": status, "message": message, "type": kind}})

    def _model_ok(self, name: object) -> bool:
        """The served model, or a 404 as a real server answers."""
        if name == self.state.params.model:
            return True
        self._error(404, f"model {name!r} not found", "not_found_error")
        return False

    def _body(self) -> dict[str, Any] | None:
        length = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(length) if length else b""
        try:
            doc = json.loads(raw or b"null")
        except ValueError:
            self._error(400, "request body is not valid JSON", "invalid_request_error")
            return None
        if not isinstance(doc, dict):
            self._error(400, "request body must be a JSON object", "invalid_request_error")
            return None
        return doc

    # -- GET ----------------------------------------------------------------
    def do_GET(self) -> None:
        route = self._route()
        s = self.state
        if route == "/health":
            self._send(200, s.health())
        elif route == "/models":
            self._send(
                200,
                {
                    "object": "list",
                    "data": [{"id": s.params.model, "object": "model", "owned_by": "halospec-sim"}],
                },
            )
        elif route == "/metrics":
            text = (
                "# TYPE llamacpp:spec_decode_num_draft_tokens_total counter\n"
                f"llamacpp:spec_decode_num_draft_tokens_total {s.drafted_total}\n"
                "# TYPE llamacpp:spec_decode_num_accepted_tokens_total counter\n"
                f"llamacpp:spec_decode_num_accepted_tokens_total {s.accepted_total}\n"
                f"llamacpp:tokens_predicted_total {s.tokens_total}\n"
                "llamacpp:requests_processing 0\n"
            )
            self._send(200, text.encode(), "text/plain; version=0.0.4")
        else:
            self._error(404, f"no route {self.path}", "not_found_error")

    # -- POST ---------------------------------------------------------------
    def do_POST(self) -> None:
        route = self._route()
        if route == "/chat/completions":
            self._chat()
        elif route == "/load":
            self._load()
        elif route == "/sim/fault":
            self._set_fault()
        else:
            # The body must go, or it would be read as the next request on this connection.
            if self._discard_body():
                self._error(404, f"no route {self.path}", "not_found_error")

    def _discard_body(self) -> bool:
        """Read and drop the request body; False (and the connection closed) if it cannot."""
        try:
            length = int(self.headers.get("Content-Length") or 0)
        except ValueError:
            length = -1
        if self.headers.get("Transfer-Encoding") or length < 0 or length > MAX_BODY:
            self.close_connection = True
            self._error(404, f"no route {self.path}", "not_found_error")
            return False
        if length:
            self.rfile.read(length)
        return True

    def _model_body(self, key: str) -> dict[str, Any] | None:
        """The JSON body, when it is an object naming the served model under `key`."""
        doc = self._body()
        if doc is None or not self._model_ok(doc.get(key)):
            return None
        return doc

    def _set_fault(self) -> None:
        doc = self._body()
        if doc is None:
            return
        try:
            self.state.faults = parse_faults(str(doc.get("fault", "")))
        except FaultSpecError as e:
            self._error(400, str(e), "invalid_request_error")
            return
        self._send(200, {"fault": str(self.state.faults)})

    def _load(self) -> None:
        doc = self._model_body("model_name")
        if doc is None:
            return
        s = self.state
        args = str(doc.get("llamacpp_args") or "")
        try:
            tokens = shlex.split(args)
        except ValueError:
            self._error(400, "llamacpp_args cannot be parsed", "invalid_request_error")
            return
        if "-md" in tokens or "--model-draft" in tokens:
            self._error(
                400, "-md/--model-draft may not be passed in llamacpp_args", "invalid_request_error"
            )
            return
        # No speculative flag (or --spec-type none) loads without speculation: K = 0.
        new_k = k_from_args(args, default=s.params.draft_n_max)
        assert new_k is not None
        if not 0 <= new_k <= MAX_K:
            self._error(400, f"draft length {new_k} out of range", "invalid_request_error")
            return
        with s.slot:  # a reload waits for the request in flight, then blocks the slot
            if args != s.llamacpp_args or new_k != s.k:
                time.sleep(reload_pause_ms(s.params) / 1000.0)
                s.k = new_k
                s.p_min = p_min_from_args(args)
                s.llamacpp_args = args
                s.last_prompt = None  # a reload empties the prompt cache
        self._send(200, {"status": "success", "message": f"Loaded model: {doc['model_name']}"})

    # -- chat: parse, faults, decode, then a whole or a streamed answer -------
    def _chat(self) -> None:
        req = self._chat_request()
        if req is None or self._injected_fault(req):
            return
        if req.stream:
            self._streamed_answer(req)
        else:
            self._whole_answer(req)

    def _chat_request(self) -> _ChatRequest | None:
        """The request's fields, or None once a 4xx has been sent."""
        doc = self._model_body("model")
        if doc is None:
            return None
        msgs = doc.get("messages")
        if not isinstance(msgs, list) or not msgs or not all(isinstance(m, dict) for m in msgs):
            self._error(
                400, "'messages' must be a non-empty list of objects", "invalid_request_error"
            )
            return None
        max_tokens = doc.get("max_tokens", 64)
        if (
            not isinstance(max_tokens, int)
            or isinstance(max_tokens, bool)
            or not 1 <= max_tokens <= 4096
        ):
            self._error(400, "'max_tokens' must be an integer in 1..4096", "invalid_request_error")
            return None
        spec = doc.get("speculative")
        n_max = spec.get("n_max") if isinstance(spec, dict) else None
        k = None
        p_min = None
        if self.state.params.honor_request_draft and isinstance(n_max, int):
            k = max(0, min(n_max, MAX_K))
            p = spec.get("p_min") if isinstance(spec, dict) else None
            if isinstance(p, (int, float)) and not isinstance(p, bool) and 0 <= p < 1:
                p_min = float(p)
        return _ChatRequest(
            model=str(doc.get("model")),
            prompt="\n".join(str(m.get("content", "")) for m in msgs),
            max_tokens=max_tokens,
            k=k,
            p_min=p_min,
            stream=bool(doc.get("stream")),
            cache_prompt=doc.get("cache_prompt", True) is not False,
        )

    def _injected_fault(self, req: _ChatRequest) -> bool:
        """Draw a fault for this request; True when it has been answered (or dropped)."""
        s = self.state
        with s.meta:
            req.fault = s.faults.pick(float(s.fault_rng.random())) if s.faults.weights else None
        if req.fault == "503":
            self._error(503, "Loading model", "unavailable_error")
        elif req.fault == "500":
            self._error(500, "internal error (injected)", "server_error")
        elif req.fault == "reset":
            self._reset()
        elif req.fault == "timeout":
            time.sleep(TIMEOUT_STALL_S)
            self._error(504, "stalled (injected)", "server_error")
        else:
            return False
        return True

    def _decode(self, req: _ChatRequest, on_pass: Callable[[str], None] | None) -> _Decoded:
        """Generate on the one slot, counting what the /metrics counters add up."""
        s = self.state
        with s.slot:
            with s.meta:
                request_no = s.requests
                s.requests += 1
            k = s.k if req.k is None else req.k
            p_min = s.p_min if req.p_min is None else req.p_min
            cached = 0
            if req.cache_prompt and s.last_prompt == req.prompt:
                cached = max(1, len(req.prompt) // 4)
            s.last_prompt = req.prompt
            if on_pass is not None:
                self._stream_headers()
            gen = generate(
                s.engine, req.prompt, req.max_tokens, k, request_no, cached, on_pass=on_pass,
                p_min=p_min,
            )  # fmt: skip
            with s.meta:
                s.drafted_total += gen.drafted
                s.accepted_total += gen.accepted
                s.tokens_total += gen.tokens
        return _Decoded(gen, request_no, cached)

    def _figures(self, req: _ChatRequest, d: _Decoded) -> dict[str, Any]:
        """usage and timings: what ends both the streamed and the whole answer."""
        gen = d.gen
        prompt_tokens = max(1, len(req.prompt) // 4)
        figures: dict[str, Any] = {
            "usage": {
                "prompt_tokens": prompt_tokens,
                "completion_tokens": gen.tokens,
                "total_tokens": prompt_tokens + gen.tokens,
            }
        }
        if self.state.params.report_timings:
            figures["timings"] = {
                "cache_n": d.cached,
                "prompt_n": prompt_tokens - d.cached,
                "prompt_ms": round(gen.prompt_ms, 3),
                "predicted_n": gen.tokens,
                "predicted_ms": round(gen.predicted_ms, 3),
                "predicted_per_second": round(gen.tokens / (gen.predicted_ms / 1000.0), 3)
                if gen.predicted_ms
                else 0.0,
                "draft_n": gen.drafted,
                "draft_n_accepted": gen.accepted,
            }
        return figures

    def _streamed_answer(self, req: _ChatRequest) -> None:
        created = int(time.time())
        d = self._decode(req, lambda piece: self._chunk(_delta(req.model, created, piece)))
        final = {"id": f"chatcmpl-sim-{d.request_no}", "object": "chat.completion.chunk", "created": created,
                 "model": req.model, "choices": [{"index": 0, "delta": {}, "finish_reason": "length"}],
                 **self._figures(req, d)}  # fmt: skip
        self._chunk(final)
        self._chunk_raw(b"data: [DONE]\n\n")
        self._chunk_raw(b"")

    def _whole_answer(self, req: _ChatRequest) -> None:
        created = int(time.time())
        d = self._decode(req, None)
        answer: dict[str, Any] = {
            "id": f"chatcmpl-sim-{d.request_no}",
            "object": "chat.completion",
            "created": created,
            "model": req.model,
            "choices": [
                {
                    "index": 0,
                    "message": {"role": "assistant", "content": "".join(d.gen.pieces).strip()},
                    "finish_reason": "length",
                }
            ],
            **self._figures(req, d),
        }
        if req.fault == "no-usage":
            del answer["usage"]
        if req.fault == "no-choices":
            del answer["choices"]
        body = json.dumps(answer).encode()
        if req.fault == "malformed":
            body = b"{not json" + body[:40]
        if req.fault == "truncated":
            body = body[: len(body) // 2]
        self._send(200, body)

    # -- streaming ------------------------------------------------------------
    def _stream_headers(self) -> None:
        self.send_response(200)
        self.send_header("Content-Type", "text/event-stream")
        self.send_header("Cache-Control", "no-cache")
        self.send_header("Transfer-Encoding", "chunked")
        self.end_headers()

    def _chunk_raw(self, data: bytes) -> None:
        self.wfile.write(f"{len(data):x}\r\n".encode() + data + b"\r\n")
        self.wfile.flush()

    def _chunk(self, doc: dict[str, Any]) -> None:
        self._chunk_raw(b"data: " + json.dumps(doc).encode() + b"\n\n")

    def _reset(self) -> None:
        with contextlib.suppress(OSError):
            self.connection.setsockopt(
                socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\x00\x00\x00\x00\x00\x00\x00"
            )
        self.close_connection = True
        self.connection.close()


def _delta(model: str, created: int, piece: str) -> dict[str, Any]:
    return {
        "object": "chat.completion.chunk",
        "created": created,
        "model": model,
        "choices": [{"index": 0, "delta": {"content": piece}, "finish_reason": None}],
    }


class SimServer(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True


def make_server(params: SimParams, port: int = 0) -> tuple[SimServer, SimState]:
    state = SimState(params)
    handler = type("BoundHandler", (Handler,), {"state": state})
    server = SimServer((HOST, port), handler)
    return server, state
