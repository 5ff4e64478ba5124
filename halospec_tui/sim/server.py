"""HTTP front of the embedded server: the Lemonade / llama-server protocol on 127.0.0.1.

Routes (each also without the /api/v1 prefix and under /v1): POST chat/completions,
GET health, GET models, GET stats, POST load, POST unload, GET /metrics, POST
/sim/fault (tests).
One decoding slot, like llama-server's default: requests queue on a lock.
"""

from __future__ import annotations

import contextlib
import json
import socket
import time
from collections.abc import Callable
from dataclasses import dataclass
from http.server import ThreadingHTTPServer
from typing import Any

from halospec_tui.plan import K_LIMIT
from halospec_tui.sim.faults import FaultSpecError, parse_faults
from halospec_tui.sim.http_base import JsonHandler
from halospec_tui.sim.lemonade import reserved_flag, split_llamacpp_args
from halospec_tui.sim.physics import Generation, SimParams, generate
from halospec_tui.sim.state import CHECKPOINT, SimState
from halospec_tui.specflags import (
    SpecFlagError,
    k_from_args,
    read_spec_flags,
)

HOST = "127.0.0.1"
TIMEOUT_STALL_S = 90.0
MAX_K = 64  # a per-request n_max (when honoured) is clamped to this; a load takes 0..K_LIMIT


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


class Handler(JsonHandler):
    server_version = "halospec-sim"
    state: SimState  # set on the subclass made by make_server

    def _model_ok(self, name: object) -> bool:
        """The served model, or a 404 as a real server answers."""
        if name == self.state.params.model:
            return True
        self._error(404, f"model {name!r} not found", "not_found_error")
        return False

    # -- GET ----------------------------------------------------------------
    def do_GET(self) -> None:
        if self._take_body() is None:  # a GET's body is read and dropped
            return
        route = self._route()
        s = self.state
        if route == "/health":
            self._send(200, s.health())
        elif route == "/stats":
            with s.meta:
                self._send(200, s.stats.to_json())
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
        raw = self._take_body()
        if raw is None:
            return
        route = self._route()
        if route == "/chat/completions":
            self._chat(raw)
        elif route == "/load":
            self._load(raw)
        elif route == "/unload":
            self._unload(raw)
        elif route == "/sim/fault":
            self._set_fault(raw)
        else:
            self._error(404, f"no route {self.path}", "not_found_error")

    def _model_body(self, raw: bytes, key: str) -> dict[str, Any] | None:
        """The JSON body, when it is an object naming the served model under `key`."""
        doc = self._json_body(raw)
        if doc is None or not self._model_ok(doc.get(key)):
            return None
        return doc

    def _set_fault(self, raw: bytes) -> None:
        doc = self._json_body(raw)
        if doc is None:
            return
        try:
            self.state.faults = parse_faults(str(doc.get("fault", "")))
        except FaultSpecError as e:
            self._error(400, str(e), "invalid_request_error")
            return
        self._send(200, {"fault": str(self.state.faults)})

    def _load(self, raw: bytes) -> None:
        doc = self._model_body(raw, "model_name")
        if doc is None:
            return
        s = self.state
        args = doc.get("llamacpp_args") or ""
        if not isinstance(args, str):
            self._error(400, "'llamacpp_args' must be a string", "invalid_request_error")
            return
        settings = self._load_settings(args)
        if settings is None:
            return
        new_k, p_min = settings
        with s.slot:  # a reload waits for the request in flight, then blocks the slot
            if not s.loaded or args != s.llamacpp_args or new_k != s.k:
                s.load(new_k, p_min, args)
        name = doc["model_name"]
        self._send(200, {"status": "success", "message": f"Loaded model: {name}",
                         "model_name": name, "checkpoint": CHECKPOINT, "recipe": "llamacpp"})  # fmt: skip

    def _unload(self, raw: bytes) -> None:
        """Lemonade's /unload: the model named by `model_name` (or `model`), else every
        model; a body that is no JSON object names none. 404 when it is not loaded."""
        try:
            doc = json.loads(raw) if raw else {}
        except ValueError:
            doc = {}
        doc = doc if isinstance(doc, dict) else {}
        name = next((v for k in ("model_name", "model") if isinstance(v := doc.get(k), str)), "")
        s = self.state
        with s.slot:  # after the request in flight, as Lemonade waits for it
            missing = bool(name) and (name != s.params.model or not s.loaded)
            if not missing:
                s.unload()
        if missing:
            self._send(404, {"error": f"Model not loaded: {name}"})
        elif not name:
            self._send(200, {"status": "success", "message": "All models unloaded successfully"})
        else:
            self._send(200, {"status": "success", "message": "Model unloaded successfully",
                             "model_name": name})  # fmt: skip

    def _load_settings(self, args: str) -> tuple[int, float] | None:
        """(K, p_min) that `llamacpp_args` sets, read as strictly as llama-server reads
        them (specflags); None once a 400 naming the bad flag has been sent."""
        tokens = split_llamacpp_args(args)
        why = ""
        if (flag := reserved_flag(tokens)) is not None:
            why = f"{flag} may not be passed in llamacpp_args (-md/--model-draft)"
        else:
            try:
                flags = read_spec_flags(tokens)
            except SpecFlagError as e:
                why = str(e)
            else:
                # No speculative flag (or --spec-type none) loads without speculation.
                k = k_from_args(tokens, default=self.state.params.draft_n_max)
                p = 0.0 if flags.p_min is None else flags.p_min
                if flags.n_max is not None and not 0 <= flags.n_max <= K_LIMIT:
                    why = f"{flags.n_max_flag} {flags.n_max}: the draft length must be within 0..{K_LIMIT}"
                elif not 0.0 <= p < 1.0:
                    why = f"{flags.p_min_flag} {p:g}: p_min must be within 0..1 (1 excluded)"
                elif k is not None:
                    return k, p
        self._error(400, f"llamacpp_args: {why}", "invalid_request_error")
        return None

    # -- chat: parse, faults, decode, then a whole or a streamed answer -------
    def _chat(self, raw: bytes) -> None:
        req = self._chat_request(raw)
        if req is None or self._injected_fault(req):
            return
        if req.stream:
            self._streamed_answer(req)
        else:
            self._whole_answer(req)

    def _chat_request(self, raw: bytes) -> _ChatRequest | None:
        """The request's fields, or None once a 4xx has been sent."""
        doc = self._model_body(raw, "model")
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
        stream = doc.get("stream")  # null: the default, as llama-server takes it
        if stream is not None and not isinstance(stream, bool):
            self._error(400, "'stream' must be a boolean", "invalid_request_error")
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
            stream=stream is True,
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
        """Count the request in flight, then generate on the one slot."""
        s = self.state
        with s.meta:
            s.in_flight += 1
            s.most_in_flight = max(s.most_in_flight, s.in_flight)
        try:
            return self._decode_on_slot(req, on_pass)
        finally:
            with s.meta:
                s.in_flight -= 1

    def _decode_on_slot(self, req: _ChatRequest, on_pass: Callable[[str], None] | None) -> _Decoded:
        s = self.state
        with s.slot:
            if not s.loaded:  # as Lemonade: a request loads the model, with its defaults
                s.load(s.params.draft_n_max, 0.0, s.launch_args)
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
        start = time.perf_counter()
        first: list[float] = []  # when the first chunk went out

        def on_pass(piece: str) -> None:
            self._chunk(_delta(req.model, created, piece))
            first[:] = first or [time.perf_counter() - start]

        d = self._decode(req, on_pass)
        final = {"id": f"chatcmpl-sim-{d.request_no}", "object": "chat.completion.chunk", "created": created,
                 "model": req.model, "choices": [{"index": 0, "delta": {}, "finish_reason": "length"}],
                 **self._figures(req, d)}  # fmt: skip
        self._record(final, True, first[0] if first else 0.0, time.perf_counter() - start)
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
        if req.fault not in ("malformed", "truncated"):  # Lemonade could not read those
            self._record(answer, False, 0.0, 0.0)
        body = json.dumps(answer).encode()
        if req.fault == "malformed":
            body = b"{not json" + body[:40]
        if req.fault == "truncated":
            body = body[: len(body) // 2]
        self._send(200, body)

    def _record(self, answer: dict[str, Any], streamed: bool, ttft_s: float, total_s: float) -> None:
        """/stats takes the answer before the client has its end, so it is there to read
        as soon as the client is done."""
        with self.state.meta:
            self.state.stats.record(answer, streamed, ttft_s, total_s)

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
