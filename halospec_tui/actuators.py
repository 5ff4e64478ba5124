"""How a draft length K reaches the server.

The original sent `"speculative_draft_length": K`, a field no server reads. Each
actuator here is one real way (or, for `field`, the original's way) to set K; the
knob check (`knob.py`) then proves from the server's own figures whether it worked.
"""

from __future__ import annotations

import re
import time
from dataclasses import dataclass
from typing import Any, Protocol

import httpx

from halospec_tui.client import ChatClient, LogFn

SPEC_ARGS_NEW = (
    "--spec-type draft-simple --spec-draft-n-max {k} --spec-draft-n-min 0 --spec-draft-p-min 0"
)
_K_IN_CMD = re.compile(r"--(?:spec-draft-n-max|draft-max|draft)\s+(\d+)")


@dataclass(frozen=True)
class Actuation:
    confirmed_k: int | None = None  # K the server says it runs with, when it says
    reload_ms: int | None = None  # time spent reloading for this K, never in a latency


class Actuator(Protocol):
    name: str

    def describe(self) -> str: ...

    def apply(self, k: int) -> Actuation: ...

    def body_fields(self, k: int) -> dict[str, Any]: ...

    def close(self) -> None: ...


class FieldActuator:
    """K in an arbitrary body field. `field speculative_draft_length` is the original."""

    def __init__(self, field_name: str = "speculative_draft_length") -> None:
        self.field_name = field_name
        self.name = f"field:{field_name}"

    def describe(self) -> str:
        return f"body field {self.field_name!r} (servers that do not read it ignore K)"

    def apply(self, k: int) -> Actuation:
        return Actuation()

    def body_fields(self, k: int) -> dict[str, Any]:
        return {self.field_name: k}

    def close(self) -> None:
        pass


class RequestActuator:
    """Per-request `speculative` object, honoured by llama-server up to about b8941."""

    name = "request"

    def describe(self) -> str:
        return 'per-request "speculative": {"n_max": K, "n_min": 0, "p_min": 0}'

    def apply(self, k: int) -> Actuation:
        return Actuation()

    def body_fields(self, k: int) -> dict[str, Any]:
        return {"speculative": {"n_max": k, "n_min": 0, "p_min": 0}}

    def close(self) -> None:
        pass


def k_from_launch_command(cmd: str) -> int | None:
    found = _K_IN_CMD.findall(cmd or "")
    return int(found[-1]) if found else None


class LemonadeLoadActuator:
    """Lemonade (v10.3+): reload the model with `llamacpp_args` carrying K.

    A reload happens only when K changes; its time is returned as reload_ms and kept
    out of every latency. After it, /api/v1/health's launch_command must carry K.
    """

    name = "lemonade-load"

    def __init__(
        self, client: ChatClient, model: str, base_args: str = "", log: LogFn | None = None
    ) -> None:
        self.client = client
        self.model = model
        self.base_args = base_args.strip()
        self.current: int | None = None
        self.confirmed: int | None = None
        self._log = log or (lambda level, text: None)

    def describe(self) -> str:
        return "POST /api/v1/load with llamacpp_args '--spec-draft-n-max K', confirmed in /api/v1/health"

    def llamacpp_args(self, k: int) -> str:
        spec = SPEC_ARGS_NEW.format(k=k) if k > 0 else ""  # K = 0: no speculation
        return f"{self.base_args} {spec}".strip()

    def apply(self, k: int) -> Actuation:
        if k == self.current:
            return Actuation(confirmed_k=self.confirmed)
        body = {"model_name": self.model, "llamacpp_args": self.llamacpp_args(k)}
        start = time.perf_counter()
        status, doc = self.client.post_json("/api/v1/load", body)
        reload_ms = int((time.perf_counter() - start) * 1000)
        if not 200 <= status < 300:
            detail = doc.get("error") if isinstance(doc, dict) else doc
            raise ActuatorError(f"load with K={k} failed: HTTP {status} {detail}")
        self.current = k
        self.confirmed = self._confirm()
        if self.confirmed != k:
            self._log(
                "warning",
                f"server launch_command shows K={self.confirmed} after loading K={k}",
            )
        self._log("info", f"reloaded model with K={k} in {reload_ms} ms")
        return Actuation(confirmed_k=self.confirmed, reload_ms=reload_ms)

    def _confirm(self) -> int | None:
        try:
            status, doc = self.client.get_json("/api/v1/health")
        except httpx.HTTPError:
            return None
        if status != 200 or not isinstance(doc, dict):
            return None
        for m in doc.get("all_models_loaded") or []:
            if isinstance(m, dict) and m.get("model_name") == self.model:
                cmd = str(m.get("launch_command", ""))
                k = k_from_launch_command(cmd)
                if k is None and cmd and "--spec-type" not in cmd:
                    return 0  # launched without speculation
                return k
        return None

    def body_fields(self, k: int) -> dict[str, Any]:
        return {}

    def close(self) -> None:
        pass


class ActuatorError(RuntimeError):
    pass


@dataclass(frozen=True)
class ServerInfo:
    kind: str  # lemonade | llama-server | sim | openai | unknown
    version: str = ""
    detail: str = ""


def detect_server(client: ChatClient) -> ServerInfo:
    """What answers at the base URL: Lemonade, llama-server, the embedded server, other."""
    try:
        status, doc = client.get_json("/api/v1/health")
    except httpx.HTTPError:
        status, doc = 0, None
    if status == 200 and isinstance(doc, dict):
        if isinstance(doc.get("sim"), dict):
            return ServerInfo("sim", str(doc.get("version", "")), "embedded simulation server")
        if "all_models_loaded" in doc or "model_loaded" in doc:
            return ServerInfo("lemonade", str(doc.get("version", "")), "Lemonade health")
    try:
        status, doc = client.get_json("/props")
    except httpx.HTTPError:
        status, doc = 0, None
    if status == 200 and isinstance(doc, dict) and "default_generation_settings" in doc:
        return ServerInfo("llama-server", str(doc.get("build_info", "")), "llama-server /props")
    try:
        status, _ = client.get_json("/v1/models")
    except httpx.HTTPError:
        status = 0
    if status == 200:
        return ServerInfo("openai", "", "answers /v1/models")
    return ServerInfo("unknown")


def _version_tuple(v: str) -> tuple[int, ...]:
    nums = re.findall(r"\d+", v)
    return tuple(int(n) for n in nums[:3])


def choose_actuator(
    info: ServerInfo, client: ChatClient, model: str, log: LogFn
) -> tuple[Actuator, str]:
    """`auto`: pick an actuator from what the server is, and say why."""
    if info.kind == "sim":
        return LemonadeLoadActuator(client, model, log=log), (
            "embedded server emulates Lemonade: K set by reloading with --spec-draft-n-max"
        )
    if info.kind == "lemonade":
        ver = _version_tuple(info.version)
        if ver and ver < (10, 3):
            return RequestActuator(), (
                f"Lemonade {info.version} has no llamacpp_args reload; its bundled "
                "llama-server honours the per-request speculative field"
            )
        return LemonadeLoadActuator(client, model, log=log), (
            f"Lemonade {info.version or '(version unknown)'}: reload with llamacpp_args"
        )
    if info.kind == "llama-server":
        return RequestActuator(), (
            "llama-server: per-request speculative.n_max (ignored after ~b8941; the knob "
            "check will tell; use --actuator llama-server to let the harness restart it)"
        )
    return RequestActuator(), f"server kind {info.kind}: trying per-request speculative.n_max"
