"""The launch command of `--actuator launch`, as the user writes it: a template with
placeholders, checked once, resolved for each K, and pasted back by the verdict.

Rules (the README says the same):
- `{k}` (the draft length), `{port}` (a free port the harness picks), `{p_min}`
  (the draft-confidence cutoff of a `pmin:P` arm, else 0) and `{threads}` (the thread
  count of an `@tN` arm; an arm without one cannot run a template that has it, nor
  an arm with one a template without it) are replaced wherever they appear. Every other brace is kept as written, so JSON (vLLM's
  `--speculative-config '{"model": "D", "num_speculative_tokens": {k}}'`) and Jinja
  need no escaping.
- Any other `{word}` is refused as an unknown placeholder (a typo such as `{K}` or
  `{pmin}`), unless it sits in double braces, `{{word}}`, as Jinja writes a variable.
- The command is split as a POSIX shell would split it (shlex) and run without a
  shell: quotes group words, but there is no `~`, `$VAR`, pipe or redirection.
  Leading `NAME=value` words set the server's environment, as in a shell
  (`CUDA_VISIBLE_DEVICES=0 vllm serve ...`).
- `--launch` must hold `{k}` and both templates `{port}`; `--launch-nospec` starts the
  server without speculation (K 0), since which words of a command are the
  speculative ones cannot be guessed.

The rows name the actuator `launch:TEMPLATE` (with ` | nospec: TEMPLATE` when a
nospec template was given), API keys masked, so that `report` can paste the launch
command for the recommended K from the CSV alone. Pure functions; no I/O but
looking the command up on PATH.
"""

from __future__ import annotations

import os
import re
import shlex
import shutil
from dataclasses import dataclass

from halospec_tui.arms import Arm
from halospec_tui.errors import HalospecError
from halospec_tui.redact import MASK, redact_text

PLACEHOLDERS = ("k", "port", "p_min", "threads")
ZERO_K_CONTROLLERS = ("model", "bandit")  # adaptive arms whose controller may choose K 0
PREFIX = "launch:"
SEPARATOR = " | nospec: "  # between the two templates in the actuator's name
_BRACED = re.compile(r"\{([A-Za-z_][A-Za-z0-9_-]*)\}")
_ASSIGNMENT = re.compile(r"[A-Za-z_][A-Za-z0-9_]*=")
_API_KEY = re.compile(r"(--api-key(?:=|\s+))(\"[^\"]*\"|'[^']*'|\S+)")


class TemplateError(HalospecError, ValueError):
    """A launch template the harness cannot run (exit 2)."""


def fill(text: str, values: dict[str, str]) -> str:
    """`text` with each placeholder named in `values` replaced; the rest as written."""
    return _BRACED.sub(lambda m: values.get(m.group(1), m.group(0)), text)


def values_for(
    k: int, port: int | None, p_min: float = 0.0, threads: int | None = None
) -> dict[str, str]:
    """The placeholders' values (without `port` or `threads` when None: left as written)."""
    out = {"k": str(k), "p_min": f"{p_min:g}"}
    if port is not None:
        out["port"] = str(port)
    if threads is not None:
        out["threads"] = str(threads)
    return out


def used(text: str) -> set[str]:
    """The known placeholders a template uses."""
    return {m.group(1) for m in _BRACED.finditer(text) if m.group(1) in PLACEHOLDERS}


def split_env(words: list[str]) -> tuple[dict[str, str], list[str]]:
    """Leading `NAME=value` words (the server's environment), and the command."""
    env: dict[str, str] = {}
    i = 0
    while i < len(words) and _ASSIGNMENT.match(words[i]):
        name, _, value = words[i].partition("=")
        env[name] = value
        i += 1
    return env, words[i:]


def _unknown(text: str) -> str | None:
    for m in _BRACED.finditer(text):
        if m.group(1) in PLACEHOLDERS:
            continue
        if text[m.start() - 1 : m.start()] == "{" and text[m.end() : m.end() + 1] == "}":
            continue  # {{word}}: a Jinja variable, kept as written
        return m.group(0)
    return None


def _found(program: str, flag: str) -> None:
    """The program exists and may be run (looked up on PATH without a slash)."""
    if "/" in program:
        if not os.path.isfile(program):
            raise TemplateError(f"{flag}: command {program!r} not found")
        if not os.access(program, os.X_OK):
            raise TemplateError(f"{flag}: {program!r} is not executable")
    elif shutil.which(program) is None:
        raise TemplateError(f"{flag}: command {program!r} not found on PATH")


def check_template(text: str, flag: str, needs_k: bool = False) -> None:
    """TemplateError naming `flag` when the template cannot be run as a server."""
    bad = _unknown(text)
    if bad is not None:
        raise TemplateError(
            f"{flag}: unknown placeholder {bad} (only {{k}}, {{port}}, {{p_min}} and "
            "{threads} are replaced; other braces are kept as written)"
        )
    if needs_k and "k" not in used(text):
        raise TemplateError(
            f"{flag} has no {{k}}: the harness sets the draft length through it "
            '(e.g. --spec-draft-n-max {k}, or "num_speculative_tokens": {k})'
        )
    if "port" not in used(text):
        raise TemplateError(
            f"{flag} has no {{port}}: the harness picks a free port and the server "
            "must listen on it (e.g. --port {port})"
        )
    if SEPARATOR.strip() in text:
        raise TemplateError(f"{flag} may not contain {SEPARATOR.strip()!r}")
    try:
        words = shlex.split(fill(text, values_for(1, 1, threads=1)))
    except ValueError as e:  # an unbalanced quote, or a trailing backslash
        raise TemplateError(f"{flag} cannot be split into words: {e}") from None
    _, argv = split_env(words)
    if not argv:
        raise TemplateError(f"{flag} holds no command")
    _found(argv[0], flag)


@dataclass(frozen=True)
class LaunchTemplates:
    """The launch command with speculation (`spec`, holds `{k}`) and without (`nospec`).

    Made by `parse_templates` (checked) or `templates_of` (read back from a row)."""

    spec: str
    nospec: str | None = None

    def template(self, k: int) -> str:
        """The template that runs K: --launch-nospec for K 0 when given, else --launch."""
        return self.spec if k != 0 or self.nospec is None else self.nospec

    def text(self, k: int, port: int | None, p_min: float = 0.0, threads: int | None = None) -> str:
        """The template for K, resolved (`{port}` kept when `port` is None)."""
        return fill(self.template(k), values_for(k, port, p_min, threads))

    def command(
        self, k: int, port: int, p_min: float = 0.0, threads: int | None = None
    ) -> tuple[dict[str, str], list[str]]:
        """The environment additions and the argv that start the server for K; a
        thread count needs a template with {threads} (and one without needs none)."""
        if k == 0 and self.nospec is None:
            raise TemplateError("K 0 (no speculation) needs --launch-nospec")
        has = "threads" in used(self.template(k))
        if has != (threads is not None):
            raise TemplateError(_threads_mismatch(threads, f"the template for K {k}"))
        return split_env(shlex.split(self.text(k, port, p_min, threads)))

    def actuator_name(self, secrets: tuple[str, ...] = ()) -> str:
        """What the rows call the actuator: both templates, API keys masked."""
        name = PREFIX + self.spec + (SEPARATOR + self.nospec if self.nospec is not None else "")
        return redact_text(_API_KEY.sub(lambda m: m.group(1) + MASK, name), secrets)


def parse_templates(spec: str, nospec: str | None = None) -> LaunchTemplates:
    """--launch and --launch-nospec, checked; TemplateError with one line when not."""
    check_template(spec, "--launch", needs_k=True)
    if nospec is not None:
        check_template(nospec, "--launch-nospec")
    return LaunchTemplates(spec, nospec)


def arm_problem(templates: LaunchTemplates, arm: Arm) -> str | None:
    """Why the templates cannot run an arm (None when they can): K 0 needs
    --launch-nospec, p_min needs {p_min}."""
    may_choose_0 = arm.adaptive and arm.controller in ZERO_K_CONTROLLERS
    if (arm.k == 0 or may_choose_0) and templates.nospec is None:
        what = "runs K 0" if arm.k == 0 else "may choose K 0"
        return (
            f"arm {arm.name} {what} (no speculation): give --launch-nospec, the command "
            "without speculation (which words of --launch are the speculative ones "
            "cannot be guessed)"
        )
    if arm.p_min > 0 and "p_min" not in used(templates.spec):
        return (
            f"arm {arm.name} sets p_min {arm.p_min:g}: --launch needs {{p_min}} "
            "(e.g. --spec-draft-p-min {p_min})"
        )
    runs = [("--launch", templates.spec)] if arm.k != 0 or templates.nospec is None else []
    if templates.nospec is not None and (arm.k == 0 or may_choose_0):
        runs.append(("--launch-nospec", templates.nospec))
    for flag, text in runs:
        if ("threads" in used(text)) != (arm.threads is not None):
            return f"arm {arm.name}: " + _threads_mismatch(arm.threads, flag)
    return None


def _threads_mismatch(threads: int | None, what: str) -> str:
    """Why a template and a thread count do not go together."""
    if threads is not None:
        return (f"{threads} thread(s) asked, but {what} has no {{threads}} to set them "
                "(e.g. -t {threads} -td {threads})")  # fmt: skip
    return (f"{what} has {{threads}}, but no thread count is asked: give --threads or "
            "arms ending in @tN")  # fmt: skip


def templates_of(actuator: str) -> LaunchTemplates | None:
    """The templates an actuator name read from a row holds (unchecked: the command
    need not exist where a CSV is read); None when it is no launch actuator."""
    if not actuator.startswith(PREFIX):
        return None
    spec, sep, nospec = actuator[len(PREFIX) :].partition(SEPARATOR)
    return LaunchTemplates(spec, nospec if sep else None)


def paste_line(actuator: str, k: int, p_min: float = 0.0, threads: int | None = None) -> str | None:
    """The run's own launch command for K (and the thread count), `{port}` left for
    the user; None when the actuator is no launch actuator."""
    t = templates_of(actuator)
    if t is None:
        return None
    if k == 0 and t.nospec is None:
        return "launch command: yours without its speculative flags (the run had no --launch-nospec)"
    return f"launch command: {t.text(k, None, p_min, threads)}"
