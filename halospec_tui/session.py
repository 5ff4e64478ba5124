"""Where the run's server comes from, and how K reaches it: set up, and torn down.

A `Session` owns every process it starts (the embedded server, a llama-server, a
launched server) and `close()` reaps them by PID; it is used as a context manager on
every exit path.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from urllib.parse import urlparse

import httpx

from halospec_tui.actuators import (
    THREADS_ACTUATORS,
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
from halospec_tui.launch_template import LaunchTemplates
from halospec_tui.launched import LaunchActuator, RestartActuator, ServerStartError
from halospec_tui.llama_server import LlamaServerActuator, LlamaServerConfig
from halospec_tui.redact import Redactor
from halospec_tui.sim.physics import SimParams
from halospec_tui.sim.process import SimProcess, SimStartError

DEFAULT_URLS = ("http://localhost:13305", "http://localhost:8000")
ACTUATORS = ("auto", "request", "lemonade-load", "llama-server", "launch", "field")


class SetupError(HalospecError, ValueError):
    """The run cannot start: say why in one line."""


class ServerUnreachable(SetupError):
    """The server given with --base-url does not answer (exit 4)."""


API_SUFFIXES = ("/api/v1", "/v1")  # the client adds the API path itself


def threads_refusal(actuator: str, arm: str) -> str:
    """Why an actuator that sends K with each request cannot run an arm with @tN."""
    return (
        f"arm {arm} sets the server's thread count, which actuator {actuator} cannot: "
        f"only {', '.join(THREADS_ACTUATORS)} start or reload the server (drop --threads "
        "and the @tN of the arms, or choose one of those)"
    )


@dataclass(frozen=True)
class LaunchOptions:
    """`--actuator launch`: the templates, the start timeout, and the K (and p_min)
    the server is first started with, to find out that it starts (the plan's first)."""

    templates: LaunchTemplates
    start_timeout_s: float = 600.0
    first_k: int = 4
    first_p_min: float = 0.0
    first_threads: int | None = None


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
    launch: LaunchOptions | None = None
    threads_arm: str | None = None  # an arm that sets the server's thread count (@tN)
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
    owned: RestartActuator | None = None  # a server the harness restarts for each K

    def server_pid(self) -> int | None:
        if self.sim is not None and self.sim.alive():
            return self.sim.pid
        if self.owned is not None:
            return self.owned.pid
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


@dataclass
class _Server:
    """Where the run's server is, and what the harness started for it."""

    base_url: str
    describe: str
    sim: SimProcess | None = None
    owned: RestartActuator | None = None


def _launch(opts: SessionOptions, log: LogFn) -> _Server:
    """Start the user's launch command once (the plan's first K), so that a command
    that fails ends the run before it begins: ServerUnreachable (exit 4) when the
    server never became healthy, SetupError (exit 2) when it could not be started."""
    if opts.launch is None:
        raise SetupError("--actuator launch needs --launch TEMPLATE")
    cfg = opts.launch
    secrets = (opts.api_key,) if opts.api_key else ()
    redact = Redactor(secrets)
    headers = {"Authorization": f"Bearer {opts.api_key}"} if opts.api_key else {}
    act = LaunchActuator(cfg.templates, cfg.start_timeout_s, headers, secrets, log)
    try:
        act.apply(cfg.first_k, cfg.first_p_min, cfg.first_threads)
    except ServerStartError as e:
        raise ServerUnreachable(redact(str(e))) from None
    except ActuatorError as e:
        raise SetupError(redact(str(e))) from None
    return _Server(act.base_url, f"launched server (owned by the harness) at {act.base_url}",
                   owned=act)  # fmt: skip


def _served_model(client: ChatClient, log: LogFn) -> None:
    """A launched server that serves one model under another name than --model (vLLM
    serves it under its path or --served-model-name): ask for that one."""
    try:
        status, doc = client.get_json("/v1/models")
    except httpx.HTTPError:
        return
    data = doc.get("data") if isinstance(doc, dict) else None
    ids = [m["id"] for m in data or [] if isinstance(m, dict) and isinstance(m.get("id"), str)]
    if status == 200 and len(ids) == 1 and client.model not in ids:
        log("info", f"the launched server serves {ids[0]!r}, not --model {client.model!r}: "
                    f"asking for {ids[0]!r}")  # fmt: skip
        client.model = ids[0]


def find_server(opts: SessionOptions, log: LogFn) -> _Server:
    """Start the harness's llama-server, the launched server or the embedded server,
    or find the one asked for (or one at the default URLs); SetupError /
    ServerUnreachable with a clear line."""
    if opts.actuator == "launch":
        return _launch(opts, log)
    if opts.actuator == "llama-server":
        if opts.llama is None:
            raise SetupError("--actuator llama-server needs --llama-server PATH, -m and -md")
        try:
            llama = LlamaServerActuator(opts.llama, log=log)
        except ActuatorError as e:
            raise SetupError(str(e)) from None
        return _Server(
            llama.base_url, f"llama-server {opts.llama.binary} (owned by the harness)", owned=llama
        )
    backend = opts.backend
    if backend == "sim" or (backend == "auto" and opts.base_url is None):
        if backend == "auto":
            found = next((u for u in DEFAULT_URLS if answers(u)), None)
            if found is not None:
                return _Server(found, f"server at {found}")
            log("info", f"no server at {' or '.join(DEFAULT_URLS)}: starting the embedded server")
        try:
            sim = SimProcess.start(opts.sim)
        except SimStartError as e:
            raise SetupError(str(e)) from None
        return _Server(sim.base_url, f"embedded server (pid {sim.pid}) at {sim.base_url}", sim=sim)
    if opts.base_url is None:
        raise SetupError("--backend server needs --base-url")
    base_url = validate_url(opts.base_url, log)
    if not answers(base_url, timeout_s=3.0):
        raise ServerUnreachable(
            f"cannot reach {base_url} (no HTTP answer within 3 s): is the server running?"
        )
    return _Server(base_url, f"server at {base_url}")


def choose(
    opts: SessionOptions, server: _Server, client: ChatClient, model: str, log: LogFn
) -> tuple[Actuator, ServerInfo, str]:
    """The actuator asked for (or picked by `auto`), what the server is, and why."""
    if isinstance(server.owned, LlamaServerActuator):
        info = ServerInfo("llama-server", "", "started by the harness")
        return server.owned, info, "asked for: the harness restarts its llama-server with the new K"
    info = detect_server(client)
    if server.owned is not None:  # launched: what it is, as for any server
        _served_model(client, log)
        info = ServerInfo(info.kind, info.version, f"{info.detail}; launched by the harness")
        return server.owned, info, (
            f"asked for: the harness restarts the launched server ({info.kind}) with the "
            "command for each K"
        )
    if opts.actuator == "auto":
        actuator, why = choose_actuator(info, client, model, log)
        return actuator, info, why
    if opts.actuator == "request":
        return RequestActuator(), info, "asked for"
    if opts.actuator == "lemonade-load":
        return LemonadeLoadActuator(client, model, opts.lemonade_args, log=log), info, "asked for"
    if opts.actuator == "field":
        return FieldActuator(opts.field_name), info, "asked for (the original's way)"
    raise SetupError(f"unknown actuator {opts.actuator!r} (choose from {', '.join(ACTUATORS)})")


def open_session(opts: SessionOptions, log: LogFn) -> Session:
    """Find or start the server, pick the actuator; raise SetupError with a clear line."""
    server = find_server(opts, log)
    model = opts.sim.model if server.sim is not None else opts.model
    client = ChatClient(
        server.base_url,
        model,
        api_key=opts.api_key,
        timeout_s=opts.timeout_s,
        stream=opts.stream,
        debug_json=opts.debug_json,
        log=log,
    )
    if server.owned is not None:  # a restart in flight gives up when the run stops
        server.owned.server.interrupted = lambda: client.abandoned or not client.retrying
    try:
        actuator, info, why = choose(opts, server, client, model, log)
        if opts.threads_arm is not None and not actuator.sets_threads:
            raise SetupError(threads_refusal(actuator.name, opts.threads_arm) + f" ({why})")
        if info.kind in ("llama-server", "openai", "vllm", "sglang"):
            client.path = OPENAI_CHAT_PATH  # llama-server has no /api/v1 routes
    except BaseException:
        client.close()
        if server.sim is not None:
            server.sim.stop()
        if server.owned is not None:
            server.owned.close()
        raise
    return Session(
        client, actuator, server.describe, info, why, sim=server.sim, owned=server.owned
    )
