"""A Lemonade-like front over a real llama-server, for tests: the user's server.

    python tests/lemonade_front.py --llama-server BIN -m TARGET -md DRAFT \\
        --model NAME --args "LLAMACPP_ARGS"

It answers what halospec-tui uses of Lemonade (v10.3+): /api/v1/health (each loaded
model with its `recipe_options.llamacpp_args` and its `launch_command` as a list of
arguments), /api/v1/load (restarts llama-server with the `llamacpp_args` given: a
reload), /api/v1/unload, /api/v1/models and non-streamed /api/v1/chat/completions
(passed to llama-server). It prints `READY <port>` once llama-server is up, binds
127.0.0.1 only, and stops its llama-server on SIGTERM, SIGINT or when stdin closes.
"""

from __future__ import annotations

import argparse
import json
import signal
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import httpx

from halospec_tui.actuators import ActuatorError
from halospec_tui.llama_server import LlamaServerActuator, LlamaServerConfig
from halospec_tui.specflags import SpecFlagError, k_from_args, read_spec_flags, threads_from_args


class Front:
    def __init__(self, cfg: LlamaServerConfig, model: str, launch_args: str) -> None:
        self.llama = LlamaServerActuator(cfg)
        self.model = model
        self.launch_args = launch_args
        self.args = launch_args
        self.k, self.p_min = 0, 0.0
        self.threads: int | None = None  # -t of the llamacpp_args (None: the launch's)
        self.loaded = False
        self.lock = threading.Lock()  # one slot: a load waits for the chat in flight
        self.load(launch_args)

    def load(self, args: str) -> None:
        flags = read_spec_flags(args)
        k = k_from_args(args, default=3)
        if k is None:
            raise SpecFlagError("llamacpp_args", args, "no draft length")
        p = flags.p_min or 0.0
        t = threads_from_args(args)
        self.llama.apply(k, p, t)
        self.k, self.p_min, self.threads, self.args, self.loaded = k, p, t, args, True

    def unload(self) -> None:
        self.llama.close()
        self.loaded = False

    def health(self) -> dict[str, Any]:
        entry = {
            "model_name": self.model,
            "recipe": "llamacpp",
            "recipe_options": {"llamacpp_args": self.args, "ctx_size": 1024},
            "launch_command": self.llama.command(self.k, self.p_min, self.threads),
        }
        return {
            "status": "ok",
            "version": "10.3.0",
            "model_loaded": self.model if self.loaded else None,
            "all_models_loaded": [entry] if self.loaded else [],
        }


def handler_for(front: Front) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, *a: object) -> None:
            pass

        def _send(self, status: int, doc: Any) -> None:
            body = json.dumps(doc).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def _body(self) -> dict[str, Any]:
            n = int(self.headers.get("Content-Length") or 0)
            doc = json.loads(self.rfile.read(n) or b"{}")
            return doc if isinstance(doc, dict) else {}

        def do_GET(self) -> None:  # noqa: N802
            if self.path == "/api/v1/health":
                self._send(200, front.health())
            elif self.path == "/api/v1/models":
                self._send(200, {"object": "list", "data": [{"id": front.model}]})
            else:
                self._send(404, {"error": "not found"})

        def do_POST(self) -> None:  # noqa: N802
            doc = self._body()
            if self.path == "/api/v1/load":
                try:
                    with front.lock:
                        front.load(str(doc.get("llamacpp_args") or ""))
                except (SpecFlagError, ActuatorError) as e:
                    self._send(500, {"error": str(e)})
                    return
                self._send(200, {"status": "success", "model_name": front.model})
            elif self.path == "/api/v1/unload":
                with front.lock:
                    front.unload()
                self._send(200, {"status": "success"})
            elif self.path == "/api/v1/chat/completions":
                self._chat(doc)
            else:
                self._send(404, {"error": "not found"})

        def _chat(self, doc: dict[str, Any]) -> None:
            if doc.get("stream"):
                self._send(400, {"error": "this front does not stream"})
                return
            with front.lock:
                if not front.loaded:
                    front.load(front.launch_args)
                r = httpx.post(front.llama.base_url + "/v1/chat/completions", json=doc,
                               timeout=120)  # fmt: skip
            self._send(r.status_code, r.json())

    return Handler


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--llama-server", required=True)
    ap.add_argument("-m", required=True)
    ap.add_argument("-md", required=True)
    ap.add_argument("--model", default="tiny-GGUF")
    ap.add_argument("--args", default="")
    ns = ap.parse_args()
    cfg = LlamaServerConfig(ns.llama_server, ns.m, ns.md)
    front = Front(cfg, ns.model, ns.args)
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler_for(front))
    server.daemon_threads = True

    def stop(*_: object) -> None:
        threading.Thread(target=server.shutdown, daemon=True).start()

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    threading.Thread(target=lambda: (sys.stdin.read(), stop()), daemon=True).start()
    print(f"READY {server.server_address[1]}", flush=True)
    try:
        server.serve_forever(poll_interval=0.1)
    finally:
        front.llama.close()


if __name__ == "__main__":
    main()
