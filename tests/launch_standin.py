"""A stand-in for a serving engine, for `--actuator launch` tests: serves on --port,
starts a worker of its own (as vLLM and SGLang start engine processes), answers
/health and /v1/models with the status codes asked for (its model `owned_by` as
asked: `vllm` makes it look like vLLM to detection, with `/version`), and answers
every chat with 8 tokens. Never looks at its parent.

    python launch_standin.py --port N [--k K] [--threads N] [--health 200] [--models 200]
                             [--owned-by NAME] [--exit CODE]
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from http.server import BaseHTTPRequestHandler, HTTPServer

p = argparse.ArgumentParser()
p.add_argument("--port", type=int, required=True)
p.add_argument("--k", default="")
p.add_argument("--threads", default="", help="taken as a server's thread count, unused")
p.add_argument("--health", type=int, default=200)
p.add_argument("--models", type=int, default=200)
p.add_argument("--owned-by", default="standin")
p.add_argument("--exit", type=int, default=None, help="say why and exit at once with this code")
ns = p.parse_args()
if ns.exit is not None:
    print(f"stand-in: refusing to start (k={ns.k})", flush=True)
    sys.exit(ns.exit)
# The worker: a grandchild of the harness, in the server's process group.
worker = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(300)"])
print(f"stand-in: worker {worker.pid}", flush=True)


MODELS = {"object": "list", "data": [{"id": "standin", "object": "model", "owned_by": ns.owned_by}]}
CHAT = {"object": "chat.completion", "choices": [{"index": 0, "finish_reason": "length",
        "message": {"role": "assistant", "content": "eight tokens of stand-in text here"}}],
        "usage": {"prompt_tokens": 5, "completion_tokens": 8, "total_tokens": 13}}  # fmt: skip


class Handler(BaseHTTPRequestHandler):
    def _answer(self, code: int, doc: object) -> None:
        body = json.dumps(doc).encode()
        self.send_response(code)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def do_GET(self) -> None:
        if self.path == "/version" and ns.owned_by == "vllm":
            return self._answer(200, {"version": "0.0.0-standin"})
        code = {"/health": ns.health, "/v1/models": ns.models}.get(self.path, 404)
        self._answer(code, MODELS if code == 200 and self.path == "/v1/models" else {})

    def do_POST(self) -> None:
        self.rfile.read(int(self.headers.get("Content-Length") or 0))
        if self.path == "/v1/chat/completions":
            return self._answer(200, CHAT)
        self._answer(404, {})

    def log_message(self, *a: object) -> None:
        pass


HTTPServer(("127.0.0.1", ns.port), Handler).serve_forever()
