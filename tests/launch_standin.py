"""A stand-in for a serving engine, for `--actuator launch` tests: serves on --port,
starts a worker of its own (as vLLM and SGLang start engine processes), and answers
/health and /v1/models with the status codes asked for. Never looks at its parent.

    python launch_standin.py --port N [--k K] [--health 200] [--models 200] [--exit CODE]
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
p.add_argument("--health", type=int, default=200)
p.add_argument("--models", type=int, default=200)
p.add_argument("--exit", type=int, default=None, help="say why and exit at once with this code")
ns = p.parse_args()
if ns.exit is not None:
    print(f"stand-in: refusing to start (k={ns.k})", flush=True)
    sys.exit(ns.exit)
# The worker: a grandchild of the harness, in the server's process group.
worker = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(300)"])
print(f"stand-in: worker {worker.pid}", flush=True)


class Handler(BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        code = {"/health": ns.health, "/v1/models": ns.models}.get(self.path, 404)
        body = json.dumps({"data": [{"id": "standin", "object": "model"}]} if code == 200 else {})
        self.send_response(code)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body.encode())

    def log_message(self, *a: object) -> None:
        pass


HTTPServer(("127.0.0.1", ns.port), Handler).serve_forever()
