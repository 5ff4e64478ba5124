"""--actuator launch with the suite's real llama-server as the launched command: the
tune plan takes K to the server (drafting per pass follows K, nospec drafts nothing),
the verdict pastes the launch command for the recommended K (also from the CSV alone),
and nothing is left running after done, SIGINT, SIGTERM, or q in the monitor."""

from __future__ import annotations

import asyncio
import json
import signal
import subprocess
from pathlib import Path

import pytest
from conftest import CLI
from helpers import LLAMA_SERVER, csv_rows, needs_llama, quit_after_rows, wait_rows

from halospec_tui.events import LogRouter
from halospec_tui.launch_template import parse_templates, paste_line
from halospec_tui.load import LoadInjector
from halospec_tui.plan import customise, named_plan
from halospec_tui.runner import RunConfig
from halospec_tui.session import LaunchOptions, SessionOptions, open_session
from halospec_tui.tiny_gguf import make_models

BINARY = LLAMA_SERVER
pytestmark = [
    *needs_llama,
    pytest.mark.xdist_group("launch_llama"),
]
COMMON = "--host 127.0.0.1 --port {port} -np 1 -c 1024 -t 1 -td 1 --metrics"


@pytest.fixture(scope="module")
def templates(tmp_path_factory) -> tuple[str, str]:
    target, draft = make_models(tmp_path_factory.mktemp("gguf"))
    spec = (f"{BINARY} -m {target} -md {draft} --spec-type draft-simple --spec-draft-n-max {{k}} "
            f"--spec-draft-n-min 0 --spec-draft-p-min 0 {COMMON}")  # fmt: skip
    nospec = f"{BINARY} -m {target} --spec-type none {COMMON}"
    return spec, nospec


def _tune(tmp_path: Path, templates: tuple[str, str], *extra: str) -> list[str]:
    spec, nospec = templates
    return [*CLI, "--no-ui", "--plan", "tune", "--modes", "nospec,fixed_1,fixed_2,fixed_4",
            "--rounds", "3", "--block", "2", "--settle", "0", "--csv", str(tmp_path / "r.csv"),
            "--launch", spec, "--launch-nospec", nospec, *extra]  # fmt: skip


def _per_pass(rows: list[dict[str, str]]) -> float:
    """Tokens drafted per verification pass (passes = tokens - accepted)."""
    drafted = sum(int(r["drafted"] or 0) for r in rows)
    return drafted / sum(int(r["tokens"]) - int(r["accepted"] or 0) for r in rows)


def test_the_tune_plan_sets_k_through_the_launch_command(tmp_path, templates, no_leftovers):
    p = subprocess.run(_tune(tmp_path, templates), capture_output=True, text=True,
                       timeout=600, stdin=subprocess.DEVNULL)  # fmt: skip
    assert p.returncode == 0, p.stderr[-3000:]
    rows = csv_rows(tmp_path / "r.csv")
    assert all(r["success"] == "1" for r in rows), [r["error"] for r in rows]
    assert all(r["confirmed_k"] == r["draft_length"] for r in rows)
    name = parse_templates(*templates).actuator_name()
    assert {r["actuator"] for r in rows} == {name}
    assert {r["server_kind"] for r in rows} == {"llama-server"}
    by_k = {k: [r for r in rows if r["draft_length"] == str(k)] for k in (0, 1, 2, 4)}
    assert all(by_k.values()), {k: len(v) for k, v in by_k.items()}
    # nospec: started from --launch-nospec, the server drafted nothing
    assert all(r["mode"] == "nospec" and r["drafted"] in ("", "0") for r in by_k[0])
    # K reached the server: per verification pass it drafted more as K grew, never above K
    per_pass = [_per_pass(by_k[k]) for k in (1, 2, 4)]
    assert per_pass[0] < per_pass[1] < per_pass[2], per_pass
    assert all(x <= k for x, k in zip(per_pass, (1, 2, 4), strict=True)), per_pass
    # each start is logged resolved: the run's port and K in place of the placeholders
    started = [x for x in p.stderr.splitlines() if x.startswith("info: starting ")]
    assert started and all("{" not in x for x in started)
    assert any("--spec-draft-n-max 4 " in x for x in started)
    assert any("--spec-type none" in x and " -md " not in x for x in started)
    # the verdict pastes the launch command for the recommended K; report says the same
    verdict = json.loads((tmp_path / "r_summary.json").read_text())["verdict"]
    k = verdict["recommended_k"]
    assert k is not None
    assert verdict["recommendation"].endswith("; " + paste_line(name, k))
    line = next(x for x in p.stdout.splitlines() if x.startswith("recommendation: "))
    assert line.endswith("; " + paste_line(name, k))
    report = subprocess.run([*CLI, "report", str(tmp_path / "r.csv")], capture_output=True,
                            text=True, timeout=120)  # fmt: skip
    assert report.returncode == 0, report.stderr
    assert line in report.stdout.splitlines()


@pytest.mark.parametrize("how", ["SIGINT", "SIGTERM"])
def test_a_signal_ends_the_run_and_the_launched_server(tmp_path, templates, how, no_leftovers):
    proc = subprocess.Popen(_tune(tmp_path, templates, "--rounds", "20"), stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, stdin=subprocess.DEVNULL, text=True)  # fmt: skip
    wait_rows(tmp_path / "r.csv", 3)
    proc.send_signal(getattr(signal, how))
    out, err = proc.communicate(timeout=120)
    assert proc.returncode == {"SIGINT": 130, "SIGTERM": 143}[how], err[-3000:]
    assert "recommendation: " in out  # the summary was written on the way out


def test_q_in_the_monitor_ends_the_run_and_the_launched_server(tmp_path, templates, no_leftovers):
    from halospec_tui.ui.app import make_app

    spec, nospec = templates
    plan = customise(named_plan("tune"), arms=["nospec", "fixed_3"], rounds=20, block=1, settle=0)
    opts = SessionOptions(actuator="launch", launch=LaunchOptions(parse_templates(spec, nospec),
                          start_timeout_s=120, first_k=3))  # fmt: skip
    session = open_session(opts, LogRouter())
    server = session.server_pid()
    assert server is not None
    config = RunConfig(plan, str(tmp_path / "ui.csv"), backend=session.backend,
                       server_pid=session.server_pid)  # fmt: skip
    app = make_app(config, session, LoadInjector(workers=1))

    async def go() -> None:
        async with app.run_test(size=(120, 40)) as pilot:
            finished = await quit_after_rows(app, pilot, tmp_path / "ui.csv", 2)
            assert finished.reason == "stopped"
            assert finished.server == ""  # the harness's own server: nothing to put back

    with session:
        asyncio.run(go())
    assert session.server_pid() is None
    rows = csv_rows(tmp_path / "ui.csv")
    assert {r["draft_length"] for r in rows} <= {"0", "3"} and all(r["success"] == "1" for r in rows)
