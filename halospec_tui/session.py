"""Where the run's server comes from, and how K reaches it: set up, and torn down.

A `Session` owns every process it starts (the embedded server, a llama-server) and
`close()` reaps them by PID; it is used as a context manager on every exit path.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from urllib.parse import urlparse

from halospec_tui.actuators import (
    Actuator,
    ActuatorError,
    FieldActuator,
    LemonadeLoadActuator,
    RequestActuator,
    ServerInfo,
    choose_actuator,
    detect_server,
)
from halospec_tui.client import OPENAI_CHAT_PATH, ChatClient, LogFn, probe
from halospec_tui.errors import HalospecError
from halospec_tui.llama_server import LlamaServerActuator, LlamaServerConfig
from halospec_tui.sim.physics import SimParams
from halospec_tui.sim.process import SimProcess, SimStartError

DEFAULT_URLS = ("http://localhost:13305", "http://localhost:8000")
ACTUATORS = ("auto", "request", "lemonade-load", "llama-server", "field")


class SetupError(HalospecError, ValueError):
    """The run cannot start: say why in one line."""


class ServerUnreachable(SetupError):
    """The server given with --base-url does not answer (exit 4)."""


API_SUFFIXES = ("/api/v1", "/v1")  # the client adds the API path itself


@dataclass
class SessionOptions:
    backend: str = "auto"  # auto | sim | server
    base_url: str | None = None
    model: str = "Qwen3-0.6B-GGUF"
    api_key: str | None = None
    actuator: str = "auto"
    field_name: str = "speculative_draft_length"
    lemonade_args: str = ""
    llama: LlamaServerConfig | None = None
    stream: bool = False
    timeout_s: float = 60.0
    debug_json: bool = False
    sim: SimParams = field(default_factory=SimParams)


@dataclass
class Session:
    client: ChatClient
    actuator: Actuator
    backend: str  # what it runs on, for people
    server: ServerInfo
    why: str  # why this actuator
    sim: SimProcess | None = None
    llama: LlamaServerActuator | None = None

    def server_pid(self) -> int | None:
        if self.sim is not None and self.sim.alive():
            return self.sim.pid
        if self.llama is not None:
            return self.llama.pid
        return None

    def close(self) -> None:
        try:
            self.actuator.close()
        finally:
            try:
                self.client.close()
            finally:
                if self.sim is not None:
                    self.sim.stop()

    def __enter__(self) -> Session:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def validate_url(url: str, log: LogFn | None = None) -> str:
    """The base URL without a trailing slash, and without an API suffix (/v1,
    /api/v1) that would double the API path of every request (said in the log)."""
    u = urlparse(url)
    if u.scheme not in ("http", "https") or not u.hostname:
        raise SetupError(f"malformed base URL {url!r}: expected http://HOST:PORT")
    try:
        u.port  # noqa: B018 - raises on a bad port
    except ValueError:
        raise SetupError(f"malformed base URL {url!r}: bad port") from None
    out = url.rstrip("/")
    for suffix in API_SUFFIXES:
        if out.endswith(suffix):
            out = out[: -len(suffix)].rstrip("/")
            if log is not None:
                log(
                    "info",
                    f"base URL {url} ends in {suffix}: using {out} "
                    "(the API paths are added to it)",
                )
            break
    return out


def answers(url: str, timeout_s: float = 1.0) -> bool:
    """Anything answers HTTP at `url` within `timeout_s`, connect to last byte."""
    return probe(url, timeout_s)


def open_session(opts: SessionOptions, log: LogFn) -> Session:
    """Find or start the server, pick the actuator; raise SetupError with a clear line."""
    sim: SimProcess | None = None
    llama: LlamaServerActuator | None = None
    backend = opts.backend
    if opts.actuator == "llama-server":
        if opts.llama is None:
            raise SetupError("--actuator llama-server needs --llama-server PATH, -m and -md")
        try:
            llama = LlamaServerActuator(opts.llama, log=log)
        except ActuatorError as e:
            raise SetupError(str(e)) from None
        base_url = llama.base_url
        backend_desc = f"llama-server {opts.llama.binary} (owned by the harness)"
    elif backend == "sim" or (backend == "auto" and opts.base_url is None):
        base_url = None
        if backend == "auto":
            base_url = next((u for u in DEFAULT_URLS if answers(u)), None)
            if base_url is None:
                log(
                    "info",
                    f"no server at {' or '.join(DEFAULT_URLS)}: starting the embedded server",
                )
        if base_url is None:
            try:
                sim = SimProcess.start(opts.sim)
            except SimStartError as e:
                raise SetupError(str(e)) from None
            base_url = sim.base_url
            backend_desc = f"embedded server (pid {sim.pid}) at {base_url}"
        else:
            backend_desc = f"server at {base_url}"
    else:
        if opts.base_url is None:
            raise SetupError("--backend server needs --base-url")
        base_url = validate_url(opts.base_url, log)
        if not answers(base_url, timeout_s=3.0):
            raise ServerUnreachable(
                f"cannot reach {base_url} (no HTTP answer within 3 s): is the server running?"
            )
        backend_desc = f"server at {base_url}"

    model = opts.sim.model if sim is not None else opts.model
    assert base_url is not None  # every branch above sets it or raises
    client = ChatClient(
        base_url,
        model,
        api_key=opts.api_key,
        timeout_s=opts.timeout_s,
        stream=opts.stream,
        debug_json=opts.debug_json,
        log=log,
    )
    try:
        if llama is not None:
            info = ServerInfo("llama-server", "", "started by the harness")
            actuator: Actuator = llama
            why = "asked for: the harness restarts its llama-server with the new K"
        else:
            info = detect_server(client)
            if opts.actuator == "auto":
                actuator, why = choose_actuator(info, client, model, log)
            elif opts.actuator == "request":
                actuator, why = RequestActuator(), "asked for"
            elif opts.actuator == "lemonade-load":
                actuator = LemonadeLoadActuator(client, model, opts.lemonade_args, log=log)
                why = "asked for"
            elif opts.actuator == "field":
                actuator, why = FieldActuator(opts.field_name), "asked for (the original's way)"
            else:
                raise SetupError(
                    f"unknown actuator {opts.actuator!r} (choose from {', '.join(ACTUATORS)})"
                )
        if info.kind in ("llama-server", "openai"):
            client.path = OPENAI_CHAT_PATH  # llama-server has no /api/v1 routes
    except BaseException:
        client.close()
        if sim is not None:
            sim.stop()
        if llama is not None:
            llama.close()
        raise
    return Session(client, actuator, backend_desc, info, why, sim=sim, llama=llama)
