"""Command line: `halospec-tui [run] ...`, `halospec-tui report FILE`, `halospec-tui serve-sim`.

Bad input is one line on stderr and exit code 2, never a traceback. Textual is
imported only when the live monitor is asked for.
"""

from __future__ import annotations

import argparse
import math
import os
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, NoReturn

from halospec_tui import __version__
from halospec_tui.arms import HELP as ARM_HELP
from halospec_tui.errors import HalospecError
from halospec_tui.events import Event, FanOut, LogFile, LogLine, LogRouter, RunFinished, Sink
from halospec_tui.plan import PLANS, Plan, customise, named_plan
from halospec_tui.redact import Redactor
from halospec_tui.results.schema import DEFAULT_CSV, ResultsError
from halospec_tui.results.summary_files import summary_paths
from halospec_tui.results.writer import CsvWriter

if TYPE_CHECKING:
    from halospec_tui.client import ChatClient
    from halospec_tui.load_requests import Load
    from halospec_tui.results.report import Report
    from halospec_tui.runner import RunConfig
    from halospec_tui.session import Session, SessionOptions

if TYPE_CHECKING:
    from halospec_tui.session import LaunchOptions, SessionOptions

EXIT_OK = 0
EXIT_FAILED = 1
EXIT_USAGE = 2
EXIT_KNOB = 3
EXIT_SERVER_DOWN = 4
EXIT_INCOMPLETE = 5  # the run ended but some summary files could not be written
EXIT_INTERRUPTED = 130
EXIT_TERMINATED = 143
EXIT_FOR_REASON = {
    "completed": EXIT_OK,
    "stopped": EXIT_OK,  # quit from the UI
    "interrupted": EXIT_INTERRUPTED,
    "terminated": EXIT_TERMINATED,
    "server-down": EXIT_SERVER_DOWN,
    "auth-refused": EXIT_USAGE,  # the server keeps refusing the API key
    "failed": EXIT_FAILED,
}
LOAD_WORKERS_PER_CORE = 4
SUBCOMMANDS = ("run", "report", "serve-sim")


class UsageError(HalospecError):
    pass


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> NoReturn:  # one line, exit 2
        raise UsageError(message)


def _k_list(text: str) -> list[str]:
    return [m.strip() for m in text.split(",") if m.strip()]


def _thread_counts(text: str) -> tuple[int, ...]:
    """--threads: whole numbers, a comma list (their range is the plan's to check)."""
    words = [w.strip() for w in text.split(",")]
    bad = next((w for w in words if not (w.isascii() and w.isdigit())), None)
    if bad is not None:
        raise argparse.ArgumentTypeError(f"{bad!r} is no thread count: give whole numbers, e.g. 1,2")
    return tuple(int(w) for w in words)


def _conditions(text: str) -> tuple[str, ...]:
    from halospec_tui.conditions import ConditionError, parse_loads

    try:
        return parse_loads(text)
    except ConditionError as e:
        raise argparse.ArgumentTypeError(str(e)) from None


def _levels(text: str) -> tuple[int, ...]:
    from halospec_tui.conditions import ConditionError, parse_levels

    try:
        return parse_levels(text)
    except ConditionError as e:
        raise argparse.ArgumentTypeError(str(e)) from None


def _env_flag(name: str) -> bool:
    return os.environ.get(name, "") == "1"


def finite_float(text: str) -> float:
    """argparse type: a float that is a real number (no nan, no inf)."""
    try:
        v = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"invalid number: {text!r}") from None
    if not math.isfinite(v):
        raise argparse.ArgumentTypeError(f"{text!r} is not a finite number")
    return v


def check_finite(ns: argparse.Namespace) -> None:
    """Every float option holds a finite number (also those declared elsewhere)."""
    for name, v in vars(ns).items():
        if isinstance(v, float) and not math.isfinite(v):
            raise UsageError(f"--{name.replace('_', '-')} {v}: not a finite number")


class RedactingSink:
    """Passes events on with server-sourced log text redacted (API key, Bearer tokens)."""

    def __init__(self, sink: Sink, redact: Redactor) -> None:
        self.sink = sink
        self.redact = redact

    def emit(self, event: Event) -> None:
        if isinstance(event, LogLine):
            event = LogLine(event.level, self.redact(event.text))
        self.sink.emit(event)

    def close(self) -> None:
        close = getattr(self.sink, "close", None)
        if close is not None:
            close()


def build_run_parser() -> argparse.ArgumentParser:
    from halospec_tui.sim.process import add_sim_args

    p = _Parser(
        prog="halospec-tui",
        description="Benchmark speculative-decoding draft lengths, live. "
        "Other commands: `halospec-tui report FILE`, `halospec-tui serve-sim`.",
    )
    p.add_argument("--version", action="version", version=f"halospec-tui {__version__}")
    p.add_argument(
        "--no-ui", action="store_true", help="run headless: lines on stdout, for scripts and CI"
    )
    _plan_args(p.add_argument_group("plan"))
    _schedule_args(p.add_argument_group("schedule and verdict (plans quick and tune)"))
    _load_args(p.add_argument_group("load injection"))
    _server_args(p.add_argument_group("server"))
    _actuator_args(p.add_argument_group("how K reaches the server"))
    _output_args(p.add_argument_group("output"))
    add_sim_args(p)
    return p


def _plan_args(g: argparse._ArgumentGroup) -> None:
    g.add_argument(
        "--plan", default="classic", choices=sorted(PLANS), help="named plan (default %(default)s)"
    )
    g.add_argument("--modes", "--arms", dest="arms", type=_k_list,
                   help="arms, a comma list, e.g. nospec,fixed_4,adaptive (" + ARM_HELP
                   + "; any may end in @tN: the server runs on N threads)")  # fmt: skip
    g.add_argument("--threads", type=_thread_counts, metavar="N,N",
                   help="run every arm at each of these server thread counts (X becomes "
                   "X@t1, X@t2 ...; plans quick and tune; actuators llama-server, launch "
                   "with {threads}, lemonade-load), e.g. 1,2")  # fmt: skip
    g.add_argument("--warmup", type=int, help="warmup requests per mode")
    g.add_argument("--steps", type=int, help="measured steps per fixed mode")
    g.add_argument("--adaptive-steps", type=int, help="measured steps of the adaptive mode")
    g.add_argument("--cooldown", type=finite_float, help="sleep after each measured step, s")
    g.add_argument("--warmup-sleep", type=finite_float, help="sleep after each warmup request, s")
    g.add_argument(
        "--prompts", choices=("original", "pool"), help="the seed's one prompt, or a rotated pool"
    )
    g.add_argument("--controller", default="threshold", choices=("threshold",))


def _schedule_args(g: argparse._ArgumentGroup) -> None:
    g.add_argument("--schedule", choices=("sequential", "interleaved"),
                   help="sequential: one arm after another (classic); interleaved: rounds of "
                   "one block per arm, order shuffled each round (tune)")  # fmt: skip
    g.add_argument("--rounds", type=int, help="interleaved: rounds (the most, when deciding)")
    g.add_argument("--block", type=int, help="interleaved: measured steps per arm per round")
    g.add_argument("--settle", type=int, help="requests run unmeasured after each change of K")
    g.add_argument("--seed", type=int, help="seed of the round order (default 0)")
    g.add_argument("--until-decisive", action=argparse.BooleanOptionalAction, default=None,
                   help="drop clearly slower arms after each round and stop once the verdict "
                   "is decisive (default in the tune plan)")  # fmt: skip
    g.add_argument("--max-time", type=finite_float, help="cap on the run's wall time when deciding, s")
    g.add_argument("--tolerance", type=finite_float,
                   help="the difference the verdict resolves: an arm within this share of the "
                   "fastest is good enough (default 0.02). Rounds grow about as 1/tolerance^2: "
                   "0.05 decides in about a sixth of the rounds of 0.02")  # fmt: skip
    g.add_argument("--screen", action=argparse.BooleanOptionalAction, default=None,
                   help="first measure nospec, a middle K and the largest K, fit the server's "
                   "model, and race only the K it predicts fastest (default in the tune plan; "
                   "every K is raced when the fit misses)")  # fmt: skip
    g.add_argument("--metric", choices=("client", "server"),
                   help="what the verdict ranks: client tokens/s (default: what a user of the "
                   "server sees) or the server's decode tokens/s from its timings (less noise: "
                   "the prompt's share is left out)")  # fmt: skip
    g.add_argument("--workload", choices=("steady", "shift"),
                   help="steady: the prompt set as it is; shift: structured prompts (drafted "
                   "well) and open ones (drafted poorly) alternate")  # fmt: skip
    g.add_argument("--shift-every", type=int, help="shift: prompts of one class in a row (8)")
    g.add_argument("--conditions", type=_conditions,
                   help="race every arm under each of these conditions, one verdict each, and "
                   "give a policy table: idle (no load), cpu, memory, requests (loads as "
                   "--load-kind's, held on for the condition's blocks); e.g. idle,memory "
                   "(default: idle only)")  # fmt: skip
    g.add_argument("--concurrency", type=_levels,
                   help="race every arm at each of these levels of concurrent requests from "
                   "this tool's own clients (1..16), one verdict each: the aggregate tokens/s "
                   "decides; e.g. 1,2,4 (default 1)")  # fmt: skip
    g.add_argument("--load-round", type=int, help="interleaved: round at which load starts")
    g.add_argument("--load-rounds", type=int, help="interleaved: rounds the load lasts")


def _load_args(g: argparse._ArgumentGroup) -> None:
    g.add_argument(
        "--load", action="store_true", default=None,
        help="inject load, of --load-kind (also HALOSPEC_LOAD=1)",
    )
    g.add_argument("--load-step", type=int, help="measured step at which load starts (default 6)")
    g.add_argument("--load-duration", type=finite_float, help="seconds of load (default 30)")
    g.add_argument("--load-workers", type=int, default=None,
                   help="burner processes of each kind, CPU and memory (default: one per core)")  # fmt: skip
    g.add_argument("--load-kind", choices=("cpu", "memory", "requests", "both", "all"), default="cpu",
                   help="cpu: CPU burner processes; memory: burners that stream buffers larger "
                   "than the last-level cache (memory bandwidth, as a build or a second model "
                   "takes it); requests: background clients on the same server "
                   "(--load-clients); both: cpu and requests; all: cpu, memory and requests")  # fmt: skip
    g.add_argument("--load-clients", type=int, default=2,
                   help="background request clients during load (1..16, default 2)")  # fmt: skip
    g.add_argument("--load-arms", choices=("all", "adaptive"), default="all",
                   help="all: same load timeline in every mode; adaptive: the original's way")  # fmt: skip


def _server_args(g: argparse._ArgumentGroup) -> None:
    g.add_argument("--backend", choices=("auto", "sim", "server"), default="auto",
                   help="auto: a server at the default URLs, else the embedded one")  # fmt: skip
    g.add_argument("--base-url", help="server base URL (implies --backend server)")
    g.add_argument("--model", default="Qwen3-0.6B-GGUF")
    g.add_argument(
        "--api-key",
        default=None,
        help="Bearer token (default: $LEMONADE_API_KEY). WARNING: a key on the command line "
        "is visible to other users in `ps`; prefer --api-key-file or the environment",
    )
    g.add_argument(
        "--api-key-file", default=None, help="read the Bearer token from this file (first line)"
    )
    g.add_argument(
        "--timeout",
        type=finite_float,
        default=60.0,
        help="total time for one request, connect to last byte, streamed or not, s "
        "(default %(default)s)",
    )
    g.add_argument(
        "--stream", action="store_true", help="stream answers and record time to first token"
    )
    g.add_argument(
        "--server-down-after",
        type=finite_float,
        default=60.0,
        help="stop the run when the server stays unreachable this long, s (default 60)",
    )
    g.add_argument(
        "--debug-json",
        action="store_true",
        default=None,
        help="log every response (HALOSPEC_DEBUG_JSON=1)",
    )


def _actuator_args(g: argparse._ArgumentGroup) -> None:
    g.add_argument("--actuator", default="auto",
                   help="auto | request | lemonade-load | llama-server | launch | field[:NAME]")  # fmt: skip
    g.add_argument("--launch", metavar="TEMPLATE",
                   help="actuator launch (implied): the server's launch command, run without a "
                   "shell, with {k} (draft length) and {port} (a free port picked here), "
                   "{p_min} for pmin arms, {threads} for arms with a thread count (@tN, "
                   "--threads); every other brace is kept as written")  # fmt: skip
    g.add_argument("--launch-nospec", metavar="TEMPLATE",
                   help="actuator launch: the command without speculation, for K 0 (nospec, "
                   "adaptive:model, adaptive:bandit)")  # fmt: skip
    g.add_argument("--launch-timeout", type=finite_float, default=600.0, metavar="S",
                   help="actuator launch: seconds for the server to become healthy after "
                   "each start (default %(default)g)")  # fmt: skip
    g.add_argument("--lemonade-args", default="", help="extra llamacpp_args for lemonade-load")
    g.add_argument(
        "--llama-server", dest="llama_bin", help="llama-server binary (actuator llama-server)"
    )
    g.add_argument("-m", dest="llama_model", help="target GGUF for llama-server")
    g.add_argument("-md", dest="llama_draft", help="draft GGUF for llama-server")
    g.add_argument(
        "--llama-args", default="-np 1 -c 1024 -t 1 -td 1", help="extra llama-server flags"
    )
    g.add_argument(
        "--strict", action="store_true", help="exit 3 when K is not shown to take effect"
    )
    g.add_argument("--leave", choices=("found", "recommended"), default="found",
                   help="at the end, put a server the run reloaded (lemonade-load) back as it "
                   "was found (default), or leave it at the recommended setting")  # fmt: skip


def _output_args(g: argparse._ArgumentGroup) -> None:
    g.add_argument("--csv", default=DEFAULT_CSV, help="results CSV, appended (default %(default)s)")
    g.add_argument("-v", "--verbose", action="store_true", help="debug lines in the log")
    g.add_argument("--log-file", help="also append every log line to this file")

def plan_from_args(ns: argparse.Namespace) -> Plan:
    plan = named_plan(ns.plan)
    return customise(
        plan,
        arms=ns.arms,
        warmup=ns.warmup,
        steps=ns.steps,
        adaptive_steps=ns.adaptive_steps,
        threads=ns.threads,
        warmup_sleep_s=ns.warmup_sleep,
        cooldown_s=ns.cooldown,
        load_step=ns.load_step,
        load_duration_s=ns.load_duration,
        prompts=ns.prompts,
        schedule=ns.schedule,
        rounds=ns.rounds,
        block=ns.block,
        settle=ns.settle,
        seed=ns.seed,
        until_decisive=ns.until_decisive,
        max_time_s=ns.max_time,
        tolerance=ns.tolerance,
        load_round=ns.load_round,
        load_rounds=ns.load_rounds,
        workload=ns.workload,
        shift_every=ns.shift_every,
        screen=ns.screen,
        metric=ns.metric,
        conditions=ns.conditions,
        concurrency=ns.concurrency,
    )


def api_key_from(ns: argparse.Namespace) -> str | None:
    """--api-key-file, else --api-key, else $LEMONADE_API_KEY."""
    if ns.api_key_file:
        if ns.api_key:
            raise UsageError("give --api-key or --api-key-file, not both")
        try:
            with open(ns.api_key_file, encoding="utf-8") as fh:
                key = fh.readline().strip()
        except (OSError, UnicodeDecodeError) as e:
            why = getattr(e, "strerror", None) or str(e)
            raise UsageError(f"cannot read --api-key-file {ns.api_key_file}: {why}") from None
        if not key:
            raise UsageError(f"--api-key-file {ns.api_key_file} is empty")
        return key
    return ns.api_key or os.environ.get("LEMONADE_API_KEY") or None


def launch_options(ns: argparse.Namespace, plan: Plan) -> LaunchOptions:
    """--launch, --launch-nospec and --launch-timeout, checked against the plan's arms
    (exit 2): the server is first started with the K the run begins with."""
    from halospec_tui.launch_template import arm_problem, parse_templates
    from halospec_tui.schedule import round_order
    from halospec_tui.session import LaunchOptions

    if ns.launch is None:
        raise UsageError("--actuator launch needs --launch TEMPLATE (the server's launch command)")
    if not ns.launch_timeout > 0:
        raise UsageError("--launch-timeout must be positive")
    templates = parse_templates(ns.launch, ns.launch_nospec)
    for spec in plan.arms:
        problem = arm_problem(templates, spec.arm)
        if problem is not None:
            raise UsageError(problem)
    first = plan.arms[0]
    if plan.interleaved:
        name = round_order([a.name for a in plan.arms], plan.seed, 1)[0]
        first = next(a for a in plan.arms if a.name == name)
    return LaunchOptions(templates, ns.launch_timeout, first.warmup_k, first.p_min, first.threads)


def threads_arm(plan: Plan) -> str | None:
    """The first arm that sets the server's thread count, None when none does."""
    return next((a.name for a in plan.arms if a.threads is not None), None)


def session_options(ns: argparse.Namespace, plan: Plan | None = None) -> SessionOptions:
    from halospec_tui.llama_server import LlamaServerConfig
    from halospec_tui.session import ACTUATORS, SessionOptions, SetupError, threads_refusal
    from halospec_tui.sim.process import params_from_args

    actuator, _, field_name = ns.actuator.partition(":")
    if actuator == "auto" and ns.launch is not None:
        actuator = "launch"  # --launch says how K reaches the server
    if actuator not in ACTUATORS:
        raise UsageError(f"unknown actuator {ns.actuator!r}")
    threaded = threads_arm(plan or named_plan(ns.plan))
    if threaded is not None and actuator in ("request", "field"):
        raise UsageError(threads_refusal(ns.actuator, threaded))
    launch = None
    if actuator == "launch":
        if ns.base_url or ns.backend == "sim":
            raise UsageError(
                "--actuator launch starts its own server: drop --base-url / --backend sim"
            )
        launch = launch_options(ns, plan or named_plan(ns.plan))
    elif ns.launch is not None or ns.launch_nospec is not None:
        raise UsageError(f"--launch and --launch-nospec go with --actuator launch, not {ns.actuator}")
    llama = None
    if actuator == "llama-server":
        if not (ns.llama_bin and ns.llama_model and ns.llama_draft):
            raise SetupError(
                "--actuator llama-server needs --llama-server PATH, -m TARGET.gguf and -md DRAFT.gguf"
            )
        llama = LlamaServerConfig(ns.llama_bin, ns.llama_model, ns.llama_draft, ns.llama_args)
    backend = "server" if ns.base_url else ns.backend
    debug = ns.debug_json if ns.debug_json is not None else _env_flag("HALOSPEC_DEBUG_JSON")
    return SessionOptions(
        backend=backend,
        base_url=ns.base_url,
        model=ns.model,
        api_key=api_key_from(ns),
        actuator=actuator,
        field_name=field_name or "speculative_draft_length",
        lemonade_args=ns.lemonade_args,
        llama=llama,
        launch=launch,
        threads_arm=threaded,
        stream=ns.stream,
        timeout_s=ns.timeout,
        debug_json=debug,
        sim=params_from_args(ns),
    )


def _check_csv_target(path: str) -> str | None:
    """Fail before any server starts if the run could not append to the CSV.

    By trying: permission bits say nothing to root, nor about /proc or a read-only
    mount. A CSV that already has rows is opened as the run will open it, which also
    refuses one with another header and repairs a torn last row (what was done is
    returned, to be said).
    """
    p = Path(path)
    if p.is_dir():
        raise ResultsError(f"--csv {path} is a folder")
    if p.exists() and p.stat().st_size:
        probe = CsvWriter(p)
        probe.open()
        probe.close()
        return probe.repaired
    parent = p.resolve().parent
    if not parent.exists():
        raise ResultsError(f"cannot write {path}: folder {parent} does not exist")
    existed = p.exists()
    try:
        with p.open("a"):
            pass
    except OSError as e:
        raise ResultsError(f"cannot write {path}: {e.strerror or e}") from None
    if not existed:
        p.unlink(missing_ok=True)
    return None


def _same_file(a: str, b: str | Path) -> bool:
    return os.path.realpath(a) == os.path.realpath(b)


def check_run_args(ns: argparse.Namespace, argv: Sequence[str]) -> None:
    """Conflicts and bounds argparse cannot see; each is exit 2."""
    check_finite(ns)
    if not 1 <= ns.load_clients <= 16:
        raise UsageError(f"--load-clients must be from 1 to 16 (got {ns.load_clients})")
    if ns.load_workers is not None:
        if ns.load_workers < 1:
            raise UsageError("--load-workers must be at least 1")
        most = (os.cpu_count() or 1) * LOAD_WORKERS_PER_CORE
        if ns.load_workers > most:
            raise UsageError(
                f"--load-workers {ns.load_workers}: at most {most} "
                f"({LOAD_WORKERS_PER_CORE} per core on this machine)"
            )
    if ns.timeout <= 0:
        raise UsageError("--timeout must be positive")
    if ns.server_down_after <= 0:
        raise UsageError("--server-down-after must be positive")
    if ns.base_url:
        if ns.backend == "sim":
            raise UsageError("--base-url and --backend sim conflict: choose one server")
        sim_flags = sorted({a.split("=")[0] for a in argv if a.startswith("--sim-")})
        if sim_flags:
            raise UsageError(
                f"--base-url and {', '.join(sim_flags)} conflict: the --sim-* flags "
                "shape the embedded server, which a --base-url run does not start"
            )
    _check_conditions(ns, argv)
    if ns.log_file:
        clashes = [ns.csv, *summary_paths(ns.csv).values()]
        for target in clashes:
            if _same_file(ns.log_file, target):
                raise UsageError(
                    f"--log-file {ns.log_file} is also a results file ({target}): "
                    "log lines would break it; choose another path"
                )


def _check_conditions(ns: argparse.Namespace, argv: Sequence[str]) -> None:
    """Load conditions hold their own loads: no load timeline beside them, and a
    --load-kind given must be one of them."""
    loads = [c for c in (ns.conditions or ()) if c != "idle"]
    if not loads:
        return
    if ns.load or _env_flag("HALOSPEC_LOAD"):
        raise UsageError("--conditions holds each load on for its condition's blocks: drop "
                         "--load (and HALOSPEC_LOAD), the load timeline")  # fmt: skip
    given = any(a == "--load-kind" or a.startswith("--load-kind=") for a in argv)
    if given and ns.load_kind not in loads:
        raise UsageError(f"--load-kind {ns.load_kind} is not among --conditions "
                         f"{','.join(ns.conditions)}: name the loads in --conditions")  # fmt: skip


def condition_loads(
    ns: argparse.Namespace, plan: Plan, client: ChatClient
) -> dict[str, Load]:
    """Each load condition's own load (cpu, memory, requests), built as --load-kind
    builds that kind."""
    kinds = dict.fromkeys(c.load for c in plan.condition_list if c.load != "idle")
    return {k: build_load(k, ns.load_workers, ns.load_clients, client) for k in kinds}


def build_load(kind: str, workers: int | None, clients: int, client: ChatClient) -> Load:
    """cpu: CPU burners; memory: memory burners; requests: background clients on the
    same server; both: cpu and requests; all: the three."""
    from halospec_tui.load import LoadInjector
    from halospec_tui.load_memory import MemoryLoad
    from halospec_tui.load_requests import LoadGroup, RequestLoad
    from halospec_tui.prompts import POOL

    loads: list[Load] = []
    if kind in ("cpu", "both", "all"):
        loads.append(LoadInjector(workers))
    if kind in ("memory", "all"):
        loads.append(MemoryLoad(workers))
    if kind in ("requests", "both", "all"):
        body = client.build_body(POOL[3], max_tokens=64, cache_prompt=False)
        loads.append(
            RequestLoad(client.base_url, client.path, body, clients, client.auth_headers())
        )
    return loads[0] if len(loads) == 1 else LoadGroup(loads)


def _group(loads: list[Load]) -> Load:
    from halospec_tui.load_requests import LoadGroup

    return loads[0] if len(loads) == 1 else LoadGroup(loads)


@dataclass
class _RunInput:
    """A run's command line, checked: what cmd_run needs before anything starts."""

    ns: argparse.Namespace
    plan: Plan
    opts: SessionOptions
    repaired: str | None  # a torn CSV tail moved aside, said in the log
    redact: Redactor


def _validate(argv: Sequence[str]) -> _RunInput:
    """Parse and check everything that can be checked before a server starts (exit 2)."""
    ns = build_run_parser().parse_args(list(argv))
    check_run_args(ns, argv)
    plan = plan_from_args(ns)
    opts = session_options(ns, plan)
    repaired = _check_csv_target(ns.csv)
    redact = Redactor((opts.api_key,) if opts.api_key else ())
    if not ns.no_ui and not (sys.stdout.isatty() and sys.stdin.isatty()):
        print("halospec-tui: no terminal: running headless (as --no-ui)", file=sys.stderr)
        ns.no_ui = True
    return _RunInput(ns, plan, opts, repaired, redact)


def _log_sinks(run: _RunInput) -> tuple[LogRouter, list[RedactingSink], Sink | None]:
    """The log router, the --log-file sink, and (headless) the printer, all redacting."""
    ns = run.ns
    level = "debug" if (ns.verbose or run.opts.debug_json) else "info"
    log = LogRouter()
    extra: list[RedactingSink] = []
    if ns.log_file:
        try:
            extra.append(RedactingSink(LogFile(ns.log_file), run.redact))
        except OSError as e:
            raise UsageError(f"cannot write --log-file {ns.log_file}: {e.strerror}") from None
    printer: Sink | None = None
    if ns.no_ui:
        from halospec_tui.headless import HeadlessPrinter

        printer = FanOut(RedactingSink(HeadlessPrinter(level=level), run.redact), *extra)
        log.attach(printer)
    if run.repaired:
        log("warning", run.repaired)
    return log, extra, printer


def _run_config(run: _RunInput, session: Session) -> RunConfig:
    from halospec_tui.runner import RunConfig

    ns = run.ns
    return RunConfig(
        plan=run.plan,
        csv_path=ns.csv,
        load_enabled=bool(ns.load) or _env_flag("HALOSPEC_LOAD"),
        load_arms=ns.load_arms,
        controller=ns.controller,
        backend=session.backend,
        server_pid=session.server_pid,
        server_down_after_s=ns.server_down_after,
        meta={"actuator_reason": session.why, "server_kind": session.server.kind},
        leave=ns.leave,
        server_kind=session.server.kind,
    )


def _run_headless(
    config: RunConfig, session: Session, printer: Sink, load: Load
) -> tuple[RunFinished | None, BaseException | None]:
    from halospec_tui.headless import run_in_thread
    from halospec_tui.runner import Runner

    runner = Runner(config, session.client, session.actuator, printer, load)
    try:
        return run_in_thread(runner), None
    except Exception as e:  # the CSV and summary are already written
        return None, e


def _run_monitor(
    config: RunConfig, session: Session, load: Load, log: LogRouter, extra: list[RedactingSink]
) -> tuple[RunFinished | None, BaseException | None]:
    from halospec_tui.ui.app import make_app

    app = make_app(config, session, load, log, extra)
    app.run()
    if app.finished is not None:
        print(app.finished.summary_text)
        print(f"Run {app.finished.reason}. Files:\n  " + "\n  ".join(app.finished.files))
    return app.finished, app.error


def cmd_run(argv: Sequence[str]) -> int:
    from halospec_tui.session import ServerUnreachable, SetupError, open_session

    run = _validate(argv)
    log, extra, printer = _log_sinks(run)
    try:
        session = open_session(run.opts, log)
    except ServerUnreachable as e:
        for sink in extra:
            sink.close()
        print(f"halospec-tui: error: {e}", file=sys.stderr)
        return EXIT_SERVER_DOWN
    except SetupError as e:
        raise UsageError(str(e)) from None
    with session:
        config = _run_config(run, session)
        log("info", f"actuator {session.actuator.name}: {session.why}")
        ns = run.ns
        loads = condition_loads(ns, run.plan, session.client)
        config.condition_loads = loads
        load = (_group(list(loads.values())) if loads
                else build_load(ns.load_kind, ns.load_workers, ns.load_clients, session.client))  # fmt: skip
        try:
            if printer is not None:
                finished, error = _run_headless(config, session, printer, load)
            else:
                finished, error = _run_monitor(config, session, load, log, extra)
        finally:
            load.stop()
            for sink in extra:
                sink.close()
    if error is not None:
        print(f"halospec-tui: runner failed: {type(error).__name__}: {error}", file=sys.stderr)
        return EXIT_FAILED
    if finished is None:
        return EXIT_FAILED
    return exit_code(finished, strict=run.ns.strict)


def exit_code(finished: RunFinished, *, strict: bool = False) -> int:
    """The process's exit code for a finished run, saying why on stderr when not 0."""
    code = EXIT_FOR_REASON.get(finished.reason, EXIT_FAILED)
    if finished.reason == "auth-refused":
        print("halospec-tui: error: the server refused the API key", file=sys.stderr)
    if finished.unwritten:
        print(
            "halospec-tui: results incomplete: the summary above could not be written to:\n  "
            + "\n  ".join(finished.unwritten),
            file=sys.stderr,
        )
        if code == EXIT_OK:
            return EXIT_INCOMPLETE
    if code != EXIT_OK:
        return code
    steps = sum(s.steps for s in finished.summaries)
    if steps and all(s.failures == s.steps for s in finished.summaries):
        print(f"halospec-tui: error: every one of the {steps} steps failed", file=sys.stderr)
        return EXIT_FAILED
    if strict and finished.knob.status != "effective":
        print(f"error: --strict: {finished.knob.message}", file=sys.stderr)
        return EXIT_KNOB
    return code


def cmd_report(argv: Sequence[str]) -> int:
    """One document on stdout whatever the file holds: text (a section per run), one
    JSON document (the run's, or a list of the runs'), one Markdown document (a
    section per run). Warnings, and for JSON which runs were read, go to stderr."""
    from halospec_tui.results.reader import iter_runs
    from halospec_tui.results.report import build_report

    p = _Parser(prog="halospec-tui report", description="Summarise a results CSV.")
    p.add_argument("csv", help="results CSV (this tool's, or the original's 8 columns)")
    p.add_argument("--run", type=int, help="which run of the file (1-based); default: every run")
    p.add_argument("--format", choices=("text", "json", "md"), default="text")
    p.add_argument("--tolerance", type=finite_float, default=0.02,
                   help="the difference the verdict resolves (default %(default)s): give the "
                   "run's own to read its verdict again")  # fmt: skip
    p.add_argument("--metric", choices=("client", "server"), default="client",
                   help="what the verdict ranks: client tokens/s (default) or the server's "
                   "decode tokens/s; give the run's own to read its verdict again")  # fmt: skip
    p.add_argument("--plot", action="store_true",
                   help="draw tokens/s per arm with CIs and latency by step in the terminal")  # fmt: skip
    ns = p.parse_args(list(argv))
    if not (0 <= ns.tolerance < 1):
        raise UsageError(f"--tolerance must be at least 0 and below 1 (got {ns.tolerance})")
    if ns.plot and ns.format != "text":
        raise UsageError("--plot draws in the terminal: use it with --format text")
    ns.tolerance += 0.0  # -0 is 0: never "tied within -0%"

    def warn(text: str) -> None:
        print(f"halospec-tui: warning: {text}", file=sys.stderr)

    # One run's samples in memory at a time; only each run's report (and plots) are
    # kept, and printed once the whole file has been read and found sound.
    chosen: list[tuple[str, dict[str, object], Report, str]] = []
    count = 0
    for run in iter_runs(ns.csv, warn):
        count = run.index
        if ns.run is not None and run.index != ns.run:
            continue
        label = f"run {run.index}" + (f" ({run.run_id})" if run.run_id else "")
        report = build_report(run.samples, tolerance=ns.tolerance, metric=ns.metric)
        plots = ""
        if ns.plot:
            from halospec_tui.plots import report_plots

            plots = "\n" + report_plots(run.samples, report)
        meta: dict[str, object] = {"run": run.index, "run_id": run.run_id, "rows": run.rows}
        chosen.append((f"{label}: {run.rows} rows", meta, report, plots))
    if count == 0:
        raise ResultsError(f"{ns.csv} has a header but no rows")
    if ns.run is not None and not 1 <= ns.run <= count:
        raise UsageError(f"--run {ns.run}: the file holds {count} run(s)")
    _print_reports(ns.format, chosen, labelled=count > 1 or ns.run is not None)
    return EXIT_OK


def _print_reports(
    fmt: str, chosen: list[tuple[str, dict[str, object], Report, str]], *, labelled: bool
) -> None:
    """Each chosen run's (label, JSON meta, report, plots) as one document of `fmt`."""
    from halospec_tui.results.export_json import runs_json, summary_dict, summary_json
    from halospec_tui.results.export_md import runs_markdown, summary_markdown
    from halospec_tui.results.export_text import summary_text

    if fmt == "json":
        if labelled:  # which runs were read: for people, beside the document
            for label, *_ in chosen:
                print(label, file=sys.stderr)
        if len(chosen) == 1:
            print(summary_json(chosen[0][2], chosen[0][1]))
        else:
            print(runs_json([summary_dict(report, meta) for _, meta, report, _ in chosen]))
    elif fmt == "md":
        if len(chosen) > 1:
            print(runs_markdown([(label, report) for label, _, report, _ in chosen]))
        else:
            if labelled:
                print(f"<!-- {chosen[0][0]} -->")
            print(summary_markdown(chosen[0][2]))
    else:
        for label, _, report, plots in chosen:
            if labelled:
                print(label)
            print(summary_text(report) + plots)


def cmd_serve_sim(argv: Sequence[str]) -> int:
    from halospec_tui.sim.process import add_sim_args, params_from_args, serve

    p = _Parser(
        prog="halospec-tui serve-sim", description="Run the embedded server alone on 127.0.0.1."
    )
    p.add_argument(
        "--port", type=int, default=13305, help="port (0: any free one; default %(default)s)"
    )
    add_sim_args(p)
    ns = p.parse_args(list(argv))
    check_finite(ns)
    if not 0 <= ns.port <= 65535:
        raise UsageError(f"--port {ns.port} is not a port")
    params = params_from_args(ns)
    try:
        serve(params, ns.port, announce=lambda s: print(s, flush=True))
    except OSError as e:
        raise UsageError(f"cannot listen on 127.0.0.1:{ns.port}: {e.strerror}") from None
    return EXIT_OK


def main(argv: Sequence[str] | None = None) -> int:
    args = list(sys.argv[1:] if argv is None else argv)
    cmd = args[0] if args and args[0] in SUBCOMMANDS else "run"
    if args and args[0] in SUBCOMMANDS:
        args = args[1:]
    try:
        if cmd == "report":
            return cmd_report(args)
        if cmd == "serve-sim":
            return cmd_serve_sim(args)
        return cmd_run(args)
    except HalospecError as e:
        print(f"halospec-tui: error: {e}", file=sys.stderr)
        return EXIT_USAGE
    except KeyboardInterrupt:
        print("halospec-tui: interrupted", file=sys.stderr)
        return EXIT_INTERRUPTED
