"""The thread count of each arm reaches a real llama-server: `--threads 1,2` through
`--actuator llama-server`, checked from what the server itself prints as it starts
(this build gives no thread count in /props; its start-up log says
`llama threadpool init, n_threads = N`)."""

from __future__ import annotations

import re
import shlex
import stat
import subprocess
import sys
from pathlib import Path

from helpers import LLAMA_SERVER, csv_rows, needs_llama

CLI = [sys.executable, "-m", "halospec_tui"]
pytestmark = [*needs_llama]
THREADPOOL = re.compile(r"llama threadpool init, n_threads = (\d+)")


def _recording(binary: str, log: Path, at: Path) -> Path:
    """The real llama-server behind a script that appends each start's arguments and
    everything the server prints to `log` (--help answers as it is, for the harness)."""
    script = at / "llama-server"
    real, out = shlex.quote(binary), shlex.quote(str(log))
    script.write_text(
        "#!/bin/sh\n"
        f'if [ "$1" = --help ]; then exec {real} --help; fi\n'
        f'echo "ARGV $*" >> {out}\n'
        f'exec {real} "$@" >> {out} 2>&1\n'
    )
    script.chmod(script.stat().st_mode | stat.S_IXUSR)
    return script


def _starts(log: Path) -> list[tuple[list[str], list[int]]]:
    """Each start: its arguments, and the thread counts the server said it runs with."""
    out: list[tuple[list[str], list[int]]] = []
    for line in log.read_text(errors="replace").splitlines():
        if line.startswith("ARGV "):
            out.append((line[5:].split(), []))
        elif out and (m := THREADPOOL.search(line)):
            out[-1][1].append(int(m.group(1)))
    return out


def test_each_arm_runs_the_real_server_with_its_thread_count(model_pair, tmp_path, no_leftovers):
    assert LLAMA_SERVER is not None
    target, draft = model_pair("loses")
    log = tmp_path / "server.log"
    binary = _recording(LLAMA_SERVER, log, tmp_path)
    out = tmp_path / "t.csv"
    p = subprocess.run(
        [*CLI, "--no-ui", "--plan", "quick", "--modes", "nospec", "--threads", "1,2",
         "--warmup", "0", "--steps", "2", "--actuator", "llama-server",
         "--llama-server", str(binary), "-m", str(target), "-md", str(draft),
         "--csv", str(out)],
        capture_output=True, text=True, timeout=300, stdin=subprocess.DEVNULL,
    )  # fmt: skip
    assert p.returncode == 0, p.stderr[-2000:]
    rows = csv_rows(out)
    assert [r["mode"] for r in rows] == ["nospec@t1"] * 2 + ["nospec@t2"] * 2
    assert all(r["success"] == "1" and r["draft_length"] == "0" for r in rows)
    # each arm starts its own server, the restart counted on its first step
    assert [r["reload_ms"] != "" for r in rows] == [True, False, True, False]
    starts = _starts(log)
    assert len(starts) == 2, log.read_text()[-2000:]
    for (argv, said), n in zip(starts, (1, 2), strict=True):
        # -t/-td of --llama-args (its default: -t 1 -td 1) replaced by the arm's
        assert [argv[i + 1] for i, a in enumerate(argv) if a == "-t"] == [str(n)]
        assert [argv[i + 1] for i, a in enumerate(argv) if a == "-td"] == [str(n)]
        assert "-md" not in argv  # nospec: no draft model
        assert said == [n], log.read_text()[-2000:]  # the server's own word
    said = [x for x in p.stdout.splitlines() if x.startswith("recommendation: ")]
    flags = "llama-server flags: no speculation (no -md; --spec-type none)"
    seq = "[not decisive: a sequential run decides nothing]"
    assert said in (  # the faster of the two (a sequential run: either may be)
        [f"recommendation: turn speculation off and use 1 thread {seq}; {flags} -t 1 -td 1"],
        [f"recommendation: turn speculation off and use 2 threads {seq}; {flags} -t 2 -td 2"],
    ), said
