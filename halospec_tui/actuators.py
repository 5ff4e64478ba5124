"""How a draft length K reaches the server.

The original sent `"speculative_draft_length": K`, a field no server reads. Each
actuator here is one real way (or, for `field`, the original's way) to set K; the
knob check (`knob.py`) then proves from the server's own figures whether it worked.
"""

from __future__ import annotations

import re
import shlex
import time
from dataclasses import dataclass
from typing import Any, Protocol

import httpx

from halospec_tui.client import ChatClient, LogFn
from halospec_tui.engines import detect_engine
from halospec_tui.errors import HalospecError
from halospec_tui.specflags import (
    k_from_args,
    spec_text,
    thread_args,
    threads_from_args,
    without_thread_flags,
)


@dataclass(frozen=True)
class Actuation:
    confirmed_k: int | None = None  # K the server says it runs with, when it says
    reload_ms: int | None = None  # time spent reloading for this K, never in a latency
    error: str = ""  # why K could not be set ("" when it was, or needed no setting)
    unreachable: bool = False  # it could not be set because the server did not answer

    def not_set(self, k: int) -> str | None:
        """Why the server is not running K after this actuation, or None when it is (or
        says nothing either way)."""
        if self.error:
            return self.error
        if self.confirmed_k is not None and self.confirmed_k != k:
            return f"asked for K={k}, the server runs K={self.confirmed_k}"
        return None


@dataclass(frozen=True)
class Setting:
    """A server setting to leave behind: draft length K (0: no speculation), p_min and
    the thread count (None: the server's own)."""

    k: int
    p_min: float = 0.0
    threads: int | None = None


THREADS_ACTUATORS = ("llama-server", "launch", "lemonade-load")  # start or reload the server


def threads_refused(actuator: str, threads: int | None) -> None:
    """ActuatorError when an actuator that cannot set the server's thread count is
    asked for one (K rides on each request: the server is never started or reloaded)."""
    if threads is not None:
        raise ActuatorError(
            f"actuator {actuator} cannot set the server's thread count ({threads} asked): "
            f"only {', '.join(THREADS_ACTUATORS)} start or reload the server"
        )


class Actuator(Protocol):
    """Sets K (and p_min: the draft confidence below which the server stops drafting,
    llama.cpp's --spec-draft-p-min; 0 = never; and the thread count where it starts or
    reloads the server, None: the server's own) the way its server takes them."""

    name: str
    sets_threads: bool  # can set the thread count (THREADS_ACTUATORS)

    def apply(self, k: int, p_min: float = 0.0, threads: int | None = None) -> Actuation: ...

    def body_fields(self, k: int, p_min: float = 0.0) -> dict[str, Any]: ...

    def leave(self, setting: Setting | None = None) -> str | None:
        """At the end of a run: put the server back as it was found (None), or at
        `setting`. Says what was done, or None when nothing of the server's changed.
        ActuatorError when it could not be done. Done once: later calls do nothing."""
        ...

    def close(self) -> None:
        """Release what the actuator holds; a server it changed and that was not yet
        left is put back as it was found first."""
        ...


class FieldActuator:
    """K in an arbitrary body field. `field speculative_draft_length` is the original."""

    def __init__(self, field_name: str = "speculative_draft_length") -> None:
        self.field_name = field_name
        self.name = f"field:{field_name}"

    sets_threads = False

    def apply(self, k: int, p_min: float = 0.0, threads: int | None = None) -> Actuation:
        threads_refused(self.name, threads)
        return Actuation()

    def body_fields(self, k: int, p_min: float = 0.0) -> dict[str, Any]:
        return {self.field_name: k}

    def leave(self, setting: Setting | None = None) -> str | None:
        return None  # K rode on each request: the server holds nothing of the run

    def close(self) -> None:
        pass


class RequestActuator:
    """Per-request `speculative` object, honoured by llama-server up to about b8941."""

    name = "request"
    sets_threads = False

    def apply(self, k: int, p_min: float = 0.0, threads: int | None = None) -> Actuation:
        threads_refused(self.name, threads)
        return Actuation()

    def body_fields(self, k: int, p_min: float = 0.0) -> dict[str, Any]:
        return {"speculative": {"n_max": k, "n_min": 0, "p_min": p_min}}

    def leave(self, setting: Setting | None = None) -> str | None:
        return None  # K rode on each request: the server holds nothing of the run

    def close(self) -> None:
        pass


def k_from_launch_command(cmd: str | list[str]) -> int | None:
    """K in a server's launch command; 0 when it cannot speculate (see specflags)."""
    return k_from_args(cmd)


def _closed(client: ChatClient) -> bool:
    """The client was closed (to abandon the run), so a failed request says nothing
    about the server."""
    http = getattr(client, "_http", None)
    return bool(getattr(http, "is_closed", False))


LEAVE_TIMEOUT_S = 120.0  # one reload (or unload) that puts the server back, at most


class LemonadeLoadActuator:
    """Lemonade (v10.3+): reload the model with `llamacpp_args` carrying K.

    A reload happens only when K changes; its time is returned as reload_ms and kept
    out of every latency. After it, /api/v1/health's launch_command must carry K.

    Before its first reload it notes what the server had loaded (/api/v1/health: each
    model with its `recipe_options`), so that `leave()` can put the server back as it
    was found: our model reloaded with its own options (or unloaded, if it was not
    loaded), and any model our loads pushed out loaded again.
    """

    name = "lemonade-load"
    sets_threads = True

    def __init__(
        self, client: ChatClient, model: str, base_args: str = "", log: LogFn | None = None
    ) -> None:
        self.client = client
        self.model = model
        self.base_args = base_args.strip()
        self.current: tuple[int, float, int | None] | None = None  # (K, p_min, threads) loaded
        self.confirmed: int | None = None
        self._log = log or (lambda level, text: None)
        self.found: list[dict[str, Any]] | None = None  # models loaded before the run
        self._noted = False  # `found` was asked for (None then: health did not say)
        self._left = False

    def llamacpp_args(self, k: int, p_min: float = 0.0, threads: int | None = None) -> str:
        """--lemonade-args, then the speculative flags; with a thread count, its flags
        instead of any the base arguments give."""
        spec = spec_text(k, p_min=p_min)
        if threads is None:
            return f"{self.base_args} {spec}".strip()
        try:
            base = shlex.join(without_thread_flags(shlex.split(self.base_args)))
        except ValueError as e:  # an unbalanced quote
            raise ActuatorError(f"--lemonade-args cannot be split into words: {e}") from None
        return f"{base} {spec} {shlex.join(thread_args(threads))}".strip()

    def apply(self, k: int, p_min: float = 0.0, threads: int | None = None) -> Actuation:
        if (k, p_min, threads) == self.current:
            return Actuation(confirmed_k=self.confirmed)
        if not self._noted:
            self._noted = True
            self.found = self._loaded_models()
        body = {"model_name": self.model, "llamacpp_args": self.llamacpp_args(k, p_min, threads)}
        start = time.perf_counter()
        try:
            status, doc = self.client.post_json("/api/v1/load", body)
        except httpx.TransportError as e:
            if _closed(self.client):
                raise ActuatorInterrupted(f"load with K={k} abandoned: {e}") from e
            raise ActuatorUnreachable(
                f"load with K={k}: server unreachable: {e or type(e).__name__}"
            ) from e
        except RuntimeError as e:  # the client was closed to abandon the run
            raise ActuatorInterrupted(f"load with K={k} abandoned: {e}") from e
        reload_ms = int((time.perf_counter() - start) * 1000)
        if not 200 <= status < 300:
            detail = doc.get("error") if isinstance(doc, dict) else doc
            raise ActuatorError(f"load with K={k} failed: HTTP {status} {detail}")
        self.current = (k, p_min, threads)
        self.confirmed = self._confirm(threads)
        if self.confirmed != k:
            self._log(
                "warning",
                f"server launch_command shows K={self.confirmed} after loading K={k}",
            )
        self._log("info", f"reloaded model with K={k} in {reload_ms} ms")
        return Actuation(confirmed_k=self.confirmed, reload_ms=reload_ms)

    def _loaded_models(self) -> list[dict[str, Any]] | None:
        """The models /api/v1/health lists as loaded (None when it does not answer)."""
        try:
            status, doc = self.client.get_json("/api/v1/health")
        except (httpx.HTTPError, RuntimeError):
            return None
        if status != 200 or not isinstance(doc, dict):
            return None
        models = doc.get("all_models_loaded") or []
        return [m for m in models if isinstance(m, dict) and isinstance(m.get("model_name"), str)]

    def _launch_command(self) -> str | list[str] | None:
        """Our model's launch_command in /api/v1/health: a string, or (Lemonade after
        v11) the list of its arguments; None when not said (Lemonade v10 sends none:
        K then cannot be confirmed, never guessed)."""
        for m in self._loaded_models() or []:
            if m.get("model_name") == self.model:
                cmd = m.get("launch_command")
                if isinstance(cmd, str) or (
                    isinstance(cmd, list) and all(isinstance(x, str) for x in cmd)
                ):
                    return cmd
        return None

    def _confirm(self, threads: int | None = None) -> int | None:
        """K as the server's launch_command shows it; a thread count it shows other
        than the one loaded is said in the log."""
        cmd = self._launch_command()
        if cmd is None:
            return None
        shown = threads_from_args(cmd) if threads is not None else None
        if shown is not None and shown != threads:
            self._log("warning", f"server launch_command shows -t {shown} after loading -t {threads}")
        return k_from_launch_command(cmd)

    def body_fields(self, k: int, p_min: float = 0.0) -> dict[str, Any]:
        return {}

    def leave(self, setting: Setting | None = None) -> str | None:
        if self._left or not self._noted:
            return None  # left already, or never reloaded: nothing of ours to undo
        self._left = True
        if setting is not None:
            self.apply(setting.k, setting.p_min, setting.threads)
            args = self.llamacpp_args(setting.k, setting.p_min, setting.threads)
            return f"left {self.model} at the recommendation: {args}"
        if self.found is None:
            raise ActuatorError(
                f"cannot put {self.model} back: /api/v1/health did not say what was loaded "
                f"before the run; it stays at {self.llamacpp_args(*(self.current or (0, 0.0, None)))}"
            )
        return "; ".join(self._restore(self.found))

    def _restore(self, found: list[dict[str, Any]]) -> list[str]:
        """Our model as it was (or unloaded), then models our loads pushed out."""
        said = []
        ours = next((m for m in found if m["model_name"] == self.model), None)
        if ours is None:
            self._post("/api/v1/unload", {"model_name": self.model})
            said.append(f"unloaded {self.model} (it was not loaded before the run)")
        else:
            said.append(self._reload(ours))
        now = {m["model_name"] for m in self._loaded_models() or []}
        for m in found:
            if m["model_name"] != self.model and m["model_name"] not in now:
                said.append(self._reload(m))
        return said

    def _reload(self, entry: dict[str, Any]) -> str:
        """Load a model with the options it had (`recipe_options`); its llamacpp_args
        said explicitly, so none of the run's stay behind."""
        options = entry.get("recipe_options")
        options = dict(options) if isinstance(options, dict) else {}
        args = options.get("llamacpp_args")
        options["llamacpp_args"] = args if isinstance(args, str) else ""
        self._post("/api/v1/load", {**options, "model_name": entry["model_name"]})
        return f"reloaded {entry['model_name']} as found (llamacpp_args {options['llamacpp_args']!r})"

    def _post(self, path: str, body: dict[str, Any]) -> None:
        try:
            status, doc = self.client.post_json(path, body, timeout_s=LEAVE_TIMEOUT_S)
        except (httpx.HTTPError, RuntimeError) as e:
            raise ActuatorError(f"{path}: {e or type(e).__name__}") from e
        if not 200 <= status < 300:
            detail = doc.get("error") if isinstance(doc, dict) else doc
            raise ActuatorError(f"{path}: HTTP {status} {detail}")

    def close(self) -> None:
        if self._noted and not self._left:
            try:
                said = self.leave()
            except ActuatorError as e:
                self._log("error", f"the server was not put back as found: {e}")
            else:
                self._log("info", f"server: {said}")


class ActuatorError(HalospecError, RuntimeError):
    """K could not be set. The runner logs it and measures on (see errors.py)."""


class ActuatorUnreachable(ActuatorError):
    """The server did not answer a reload: the runner's requests then fail the same way
    and its server-down watch ends the run as "server-down" (exit 4)."""


class ActuatorInterrupted(ActuatorError):
    """The client was closed under a reload to abandon the run: the run is interrupted,
    not failed."""


@dataclass(frozen=True)
class ServerInfo:
    kind: str  # lemonade | llama-server | sim | vllm | sglang | openai | unknown
    version: str = ""
    detail: str = ""


def _get(client: ChatClient, path: str) -> tuple[int, Any]:
    try:
        return client.get_json(path)
    except httpx.HTTPError:
        return 0, None


def detect_server(client: ChatClient) -> ServerInfo:
    """What answers at the base URL: Lemonade, llama-server, the embedded server, vLLM,
    SGLang (see engines.py), another OpenAI-style server, or nothing known."""
    status, doc = _get(client, "/api/v1/health")
    if status == 200 and isinstance(doc, dict):
        if isinstance(doc.get("sim"), dict):
            return ServerInfo("sim", str(doc.get("version", "")), "embedded simulation server")
        if "all_models_loaded" in doc or "model_loaded" in doc:
            return ServerInfo("lemonade", str(doc.get("version", "")), "Lemonade health")
    status, doc = _get(client, "/props")
    if status == 200 and isinstance(doc, dict) and "default_generation_settings" in doc:
        return ServerInfo("llama-server", str(doc.get("build_info", "")), "llama-server /props")
    status, models = _get(client, "/v1/models")
    if status == 0:  # no answer at all: nothing more to learn
        return ServerInfo("unknown")
    engine = detect_engine(lambda path: _get(client, path), models if status == 200 else None)
    if engine is not None:
        return ServerInfo(engine.kind, engine.version, engine.detail)
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
