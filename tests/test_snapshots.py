"""SVG snapshots of the monitor, fed recorded engine events (no server, no clock, no CPU).

Update after an intended change of the look: `pytest tests/test_snapshots.py
--snapshot-update`, then look at every changed SVG before committing it.
"""

from __future__ import annotations

import time

import pytest
from replay import NO_LOAD, Replay, make_replay_app
from ui_events import at_step, in_round, recorded_run, recorded_tune_run, upto

from halospec_tui.controls import LoadStatus
from halospec_tui.events import RunFinished

CPU = [37.5, 81.0]
LOAD_ON = LoadStatus(True, 12.0, 2)
SIZE = (150, 45)


class Clock:
    """The run's clock: 2 min 5 s after the run started, whenever the app asks."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def replay_app(events, load=NO_LOAD):
    clock = Clock()
    replay = Replay(events, load=load)
    app = make_replay_app(events, clock=clock, cpu_sampler=lambda: CPU, replay=replay)
    return app, replay, clock


def settle(app, replay, clock):
    """run_before: every event applied, the clock moved on, every pane drawn once."""

    async def run_before(pilot) -> None:
        deadline = time.monotonic() + 30
        while not (replay.played.is_set() and app.model.version >= len(replay.events)):
            assert time.monotonic() < deadline, "the replay did not arrive"
            await pilot.pause(0.02)
        if any(isinstance(e, RunFinished) for e in replay.events):
            while app.finished is None:
                assert time.monotonic() < deadline, "the run did not finish"
                await pilot.pause(0.02)
        clock.now = 1125.0
        app.redraw()
        app.redraw_plots()
        app.redraw_cpu()
        await pilot.pause()

    return run_before


def _check(snap_compare, events, size=SIZE, press=(), load=NO_LOAD):
    app, replay, clock = replay_app(events, load)
    try:
        assert snap_compare(app, terminal_size=size, press=press,
                            run_before=settle(app, replay, clock))  # fmt: skip
    finally:
        replay.stop()


def test_running(snap_compare):
    _check(snap_compare, upto(recorded_run(), at_step("fixed_5", 2)))


def test_under_load(snap_compare):
    _check(snap_compare, upto(recorded_run(), at_step("fixed_5", 4)), load=LOAD_ON)


def test_adaptive_arm_with_ema_and_bands(snap_compare):
    _check(snap_compare, upto(recorded_run(), at_step("adaptive", 7)))


def test_finished_with_the_results_table(snap_compare):
    _check(snap_compare, recorded_run())


def test_small_terminal_80x24(snap_compare):
    _check(snap_compare, upto(recorded_run(), at_step("adaptive", 7)), size=(80, 24))


def test_quit_dialog(snap_compare):
    _check(snap_compare, upto(recorded_run(), at_step("fixed_5", 2)), press=["q"])


@pytest.mark.parametrize("key,call", [("p", "pause True"), ("s", "skip"), ("l", "toggle_load"),
                                      ("d", "toggle_debug")])  # fmt: skip
def test_keys_go_through_the_control_protocol(key, call):
    import asyncio

    app, replay, clock = replay_app(upto(recorded_run(), at_step("fixed_5", 2)))

    async def go() -> None:
        async with app.run_test(size=SIZE) as pilot:
            await settle(app, replay, clock)(pilot)
            await pilot.press(key)
            await pilot.pause()
            assert replay.calls == [call]
            await pilot.press("q", "y")
            deadline = time.monotonic() + 10
            while app.finished is None:
                assert time.monotonic() < deadline
                await pilot.pause(0.02)
            assert replay.calls[-1] == "stop stopped"
            assert app.finished.reason == "stopped"

    try:
        asyncio.run(go())
    finally:
        replay.stop()


def test_tune_mid_way_with_verdict_and_controller(snap_compare):
    _check(snap_compare, upto(recorded_tune_run(), in_round(4, "adaptive:model", 1)))


def test_tune_finished_decisive(snap_compare):
    _check(snap_compare, recorded_tune_run())


def test_tune_mid_way_80x24(snap_compare):
    _check(snap_compare, upto(recorded_tune_run(), in_round(4, "adaptive:model", 1)),
           size=(80, 24))  # fmt: skip
