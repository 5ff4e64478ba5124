"""Pilot tests of the live monitor on the embedded server."""

import asyncio
import json
import time
from pathlib import Path

import psutil
import pytest
from helpers import csv_rows
from textual.widgets import Digits

from halospec_tui.events import ArmInfo, LogRouter, RunStarted
from halospec_tui.load import LoadInjector
from halospec_tui.plan import customise, named_plan
from halospec_tui.runner import RunConfig
from halospec_tui.session import SessionOptions, open_session
from halospec_tui.stats import StepSample, summarize_arm
from halospec_tui.ui.app import ConfirmQuit, make_app
from halospec_tui.ui.lines import TextLines
from halospec_tui.ui.model import RunModel
from halospec_tui.ui.widgets import ResultsTable, int_ticks


async def wait_for(pilot, cond, timeout=60.0):
    deadline = time.monotonic() + timeout
    while not cond():
        if time.monotonic() > deadline:
            raise AssertionError("condition not met in time")
        await pilot.pause(0.05)


def build(sim, tmp_path, **plan_kw):
    session = open_session(SessionOptions(backend="server", base_url=sim.base_url), LogRouter())
    plan = customise(named_plan("quick"), **plan_kw)
    config = RunConfig(
        plan, str(tmp_path / "ui.csv"), backend=session.backend, server_pid=session.server_pid
    )
    load = LoadInjector(workers=1)
    return session, make_app(config, session, load), load


def rows(tmp_path):
    return csv_rows(tmp_path / "ui.csv")


def test_quick_run_shows_k_and_results(sim, tmp_path):
    session, app, load = build(
        sim, tmp_path, arms=["fixed_2", "fixed_5", "adaptive"], warmup=1, steps=3, adaptive_steps=5
    )

    async def go():
        async with app.run_test(size=(140, 44)) as pilot:
            await wait_for(pilot, lambda: app.finished is not None)
            last = rows(tmp_path)[-1]
            table = app.query_one("#results", ResultsTable)
            # drawn on the next redraw tick after the last event
            await wait_for(
                pilot,
                lambda: app.query_one("#k-digits", Digits).value == last["draft_length"]
                and table.row_count == 3
                and "RUN COMPLETED" in str(app.query_one("#status", TextLines).text),
            )
            assert [table.cell(m, "mode") for m in ("fixed_2", "fixed_5", "adaptive")] == [
                "fixed_2",
                "fixed_5",
                "adaptive",
            ]
            status = str(app.query_one("#status", TextLines).text)
            assert "RUN COMPLETED" in status and "plan quick" in status
            await pilot.press("q")  # finished: quits without asking
        return app.return_code

    with session:
        asyncio.run(go())
    assert len(rows(tmp_path)) == 11
    assert (tmp_path / "ui_summary.json").exists()


def test_load_key_quit_key_and_no_leftovers(sim, tmp_path, no_leftovers):
    session, app, load = build(
        sim, tmp_path, arms=["fixed_3"], warmup=0, steps=200, cooldown_s=0.05, load_duration_s=1.0
    )
    seen_pids = []

    async def go():
        async with app.run_test(size=(120, 40)) as pilot:
            await wait_for(pilot, lambda: app.model.step >= 2)
            await pilot.press("l")
            await wait_for(pilot, lambda: app.model.phase == "load")
            seen_pids.extend(load.pids())
            await wait_for(pilot, lambda: "LOAD" in str(app.query_one("#status", TextLines).text))
            await wait_for(pilot, lambda: app.model.phase == "recovery")
            await pilot.press("p")
            await wait_for(pilot, lambda: app.model.paused)
            await pilot.press("p")
            await pilot.press("q")
            await wait_for(pilot, lambda: isinstance(app.screen, ConfirmQuit))
            await pilot.press("y")
            await wait_for(pilot, lambda: app.finished is not None)
        assert app.finished.reason == "stopped"

    with session:
        asyncio.run(go())
    assert seen_pids and not any(
        psutil.pid_exists(p) and psutil.Process(p).status() != psutil.STATUS_ZOMBIE
        for p in seen_pids
    )
    got = rows(tmp_path)
    assert 4 <= len(got) < 200
    phases = [r["phase"] for r in got]
    assert phases[0] == "steady" and "load" in phases and phases[-1] == "recovery"
    assert [int(r["step"]) for r in got] == list(range(1, len(got) + 1))
    summary = (tmp_path / "ui_summary.txt").read_text()
    assert f"fixed_3       {len(got):>3}" in summary


@pytest.mark.parametrize("size", [(80, 24), (200, 60)])
def test_small_and_large_terminals(sim, tmp_path, size):
    session, app, load = build(
        sim, tmp_path, arms=["fixed_1", "adaptive"], warmup=1, steps=2, adaptive_steps=3
    )

    async def go():
        async with app.run_test(size=size) as pilot:
            await wait_for(pilot, lambda: app.finished is not None)
            assert app.screen.has_class("-small") == (size == (80, 24))
            await wait_for(pilot, lambda: app.query_one("#results", ResultsTable).row_count == 2)

    with session:
        asyncio.run(go())
    # Textual stops the app's timers after it has removed the screens: a clock tick
    # landing then (as once in CI) must draw nothing rather than raise NoMatches.
    for tick in (app.redraw, app.redraw_plots, app.redraw_cpu):
        tick()


def test_skip_moves_to_the_next_mode(sim, tmp_path):
    session, app, load = build(
        sim, tmp_path, arms=["fixed_1", "fixed_2"], warmup=0, steps=100, cooldown_s=0.05
    )

    async def go():
        async with app.run_test(size=(120, 40)) as pilot:
            await wait_for(pilot, lambda: app.model.step >= 2)
            await pilot.press("s")
            await wait_for(pilot, lambda: app.model.arm == "fixed_2" and app.model.step >= 1)
            await pilot.press("s")
            await wait_for(pilot, lambda: app.finished is not None)

    with session:
        asyncio.run(go())
    got = rows(tmp_path)
    n1 = sum(r["mode"] == "fixed_1" for r in got)
    assert 2 <= n1 < 100 and 1 <= len(got) - n1 < 100
    assert Path(tmp_path / "ui_summary.md").exists()


def test_a_knob_without_effect_is_shown_loudly(sim, tmp_path):
    session = open_session(
        SessionOptions(backend="server", base_url=sim.base_url, actuator="field"), LogRouter()
    )
    plan = customise(
        named_plan("quick"), arms=["fixed_1", "fixed_8", "fixed_2"], warmup=0, steps=2
    )
    config = RunConfig(plan, str(tmp_path / "ui.csv"))
    app = make_app(config, session, LoadInjector(workers=1))

    async def go():
        async with app.run_test(size=(140, 44)) as pilot:
            await wait_for(pilot, lambda: len(app.model.summaries) == 2)
            assert app.model.knob.status == "no-effect"
            await wait_for(
                pilot, lambda: "K HAS NO EFFECT" in str(app.query_one("#status", TextLines).text)
            )
            await wait_for(pilot, lambda: app.finished is not None)

    with session:
        asyncio.run(go())
    assert app.finished.knob.status == "no-effect"


def test_ctrl_c_stops_the_run_as_interrupted(sim, tmp_path):
    session, app, load = build(
        sim, tmp_path, arms=["fixed_4"], warmup=0, steps=100, cooldown_s=0.05
    )

    async def go():
        async with app.run_test(size=(120, 40)) as pilot:
            await wait_for(pilot, lambda: app.model.step >= 2)
            await pilot.press("ctrl+c")
            await wait_for(pilot, lambda: app.finished is not None)

    with session:
        asyncio.run(go())
    assert app.finished.reason == "interrupted"
    n = len(rows(tmp_path))
    assert 2 <= n < 100
    assert json.loads((tmp_path / "ui_summary.json").read_text())["modes"][0]["steps"] == n


def test_integer_axis_ticks():
    assert int_ticks(1, 27) == [5, 10, 15, 20, 25]
    assert int_ticks(1, 3) == [1, 2, 3]
    assert int_ticks(0, 8, most=5) == [0, 2, 4, 6, 8]
    assert int_ticks(0, 16, most=5) == [0, 5, 10, 15]
    assert int_ticks(1, 140) == [20, 40, 60, 80, 100, 120, 140]
    assert int_ticks(4, 4) == [4]


def test_time_left_and_best_mode_from_the_model():
    modes = (ArmInfo("fixed_1", 2, 4), ArmInfo("adaptive", 1, 3))
    started = RunStarted("r", "p", modes, "", "", "", "", "", "all", False, 0.25, 0.05)
    # 2 requests took 1 s: 0.5 s each; every measured step is followed by a 0.25 s cooldown
    warming = RunModel(started=started, warmup=(1, 2), requests_done=2, request_time_s=1.0)
    assert warming.remaining_s() == (1 + 4 + 1 + 3) * 0.5 + (4 + 3) * 0.25
    measuring = RunModel(started=started, step=3, requests_done=2, request_time_s=1.0)
    assert measuring.remaining_s() == (1 + 1 + 3) * 0.5 + (1 + 3) * 0.25
    assert RunModel(started=started).remaining_s() is None  # nothing measured yet

    def summary(mode, *lat):
        return summarize_arm(mode, [StepSample(mode, 1, True, ms, 64) for ms in lat])

    m = RunModel()
    assert m.best_mode is None
    m.summaries = {s.arm: s for s in (summary("fixed_1", 100, 100), summary("fixed_2", 100, 100))}
    assert m.best_mode == "fixed_1"  # a tie keeps the earlier mode, as the summary does
    m.summaries["adaptive"] = summary("adaptive", 50)
    assert m.best_mode == "adaptive"
