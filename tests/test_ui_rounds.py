"""The monitor in an interleaved (`tune`) run, fed recorded events: the verdict line, the
table's CI half-widths and standings, round progress, the adaptive arm's reasoning."""

from __future__ import annotations

import asyncio
import math
from dataclasses import replace

from test_snapshots import CPU, SIZE, replay_app, settle
from ui_events import (
    TUNE_ROUNDS,
    controller_view,
    in_round,
    recorded_run,
    recorded_tune_run,
    upto,
)

from halospec_tui.events import (
    ControllerState,
    KnobVerdict,
    RoundFinished,
    RoundStarted,
    RunFinished,
    RunStarted,
)
from halospec_tui.ui.lines import TextLines
from halospec_tui.ui.model import RunModel
from halospec_tui.ui.widgets import (
    ResultsTable,
    controller_text,
    round_status,
    verdict_cell,
    verdict_text,
)


def drive(events, body, size=SIZE):
    """Replay `events` into the app at `size`, let every pane draw them, then run
    `await body(app, pilot)`; the replay is stopped either way. Returns the replay."""
    app, replay, clock = replay_app(events)

    async def go() -> None:
        async with app.run_test(size=size) as pilot:
            await settle(app, replay, clock)(pilot)
            await body(app, pilot)

    try:
        asyncio.run(go())
    finally:
        replay.stop()
    return replay


def screen_of(events, size=SIZE):
    """Replay `events` into the app; return what the panes show once all are drawn."""
    shown: dict[str, object] = {}

    async def look(app, pilot) -> None:
        table = app.query_one("#results", ResultsTable)
        shown["status"] = str(app.query_one("#status", TextLines).text)
        shown["verdict"] = str(app.query_one("#verdict", TextLines).text)
        shown["verdict_shown"] = app.query_one("#verdict", TextLines).display
        shown["controller"] = str(app.query_one("#controller", TextLines).text)
        shown["columns"] = [c.label for c in table.columns]
        shown["rows"] = {key: table.row(key) for key in table.row_keys}

    drive(events, look, size)
    return shown


def model_of(events) -> RunModel:
    m = RunModel(clock=lambda: 0.0)
    for e in events:
        m.apply(e)
    return m


def test_mid_way_the_table_shows_half_widths_and_standings():
    shown = screen_of(upto(recorded_tune_run(), in_round(4, "adaptive:model", 1)))
    assert shown["verdict_shown"] is True
    assert shown["verdict"] == (
        "3 arms racing, at most 24 s left; not decisive: K = 3 is within 4.6% of the fastest "
        "(95%); about 2 more rounds would certify 2% at this noise"
    )
    assert shown["columns"][:3] == ["mode", "verdict", "tok/s ±95%"]
    rows = shown["rows"]
    assert rows["fixed_3"][:3] == ["fixed_3", "best", "412.3 ±8.1"]
    # racing with the bound certified so far (round 3's sequences), dropped with its round
    assert rows["fixed_1"][:3] == ["fixed_1", "racing ≤15.8%", "366.0 ±7.4"]
    assert rows["adaptive:model"][:3] == ["adaptive:model", "racing ≤7.1%", "404.6 ±9.3"]
    assert rows["nospec"][:3] == ["nospec", "dropped r3", "298.7 ±6.5"]
    assert shown["status"].splitlines()[1].startswith(
        "round 4/5 · adaptive:model (3/3) block 1/2 · phase STEADY"
    )
    assert shown["status"].splitlines()[1].endswith("left at most 00:24")
    # the controller's reasoning, beside K: the last ControllerState (acceptance 0.77)
    lines = shown["controller"].splitlines()
    assert lines[:3] == ["adaptive:model", "acc 0.77", "pass 4.1+0.9/K ms"]
    assert lines[3].startswith("0") and lines[3][10:] == "8 K=3 415/s"  # expected_tps(0.77, 4.1, 0.9, 3) = 414.6


def test_finished_the_verdict_is_decisive():
    shown = screen_of(recorded_tune_run())
    assert shown["verdict"] == (
        "decisive: K = 3 is within 2% of the fastest (95%, valid at any stop)"
    )
    rows = shown["rows"]
    assert [rows[a][1] for a in ("nospec", "fixed_1", "fixed_3", "adaptive:model")] == [
        "dropped r3", "dropped", "best", "racing ≤5.1%"
    ]  # fmt: skip
    assert rows["fixed_3"][2] == "413.0 ±5.2"
    assert "RUN COMPLETED" in shown["status"]


def test_before_the_first_round_finishes_the_table_is_as_today():
    events = recorded_tune_run()
    first = next(i for i, e in enumerate(events) if isinstance(e, RoundFinished))
    shown = screen_of(events[:first])
    assert shown["verdict"] == "4 arms racing, first verdict after round 1"
    rows = shown["rows"]
    # no verdict yet: no standing, tokens/s as the summary has it, without a half-width
    assert rows["fixed_3"][1] == "·" and "±" not in rows["fixed_3"][2]
    assert rows["fixed_3"][2] == "403.8"  # 2 x 64 tokens in 155 + 162 ms
    assert shown["status"].splitlines()[1].endswith("left at most --:--")


def test_a_sequential_plan_shows_no_verdict_line_and_the_usual_columns():
    shown = screen_of(recorded_run())
    assert shown["verdict_shown"] is False and shown["verdict"] == ""
    assert shown["columns"][:3] == ["mode", "steps", "ok%"]
    assert shown["controller"] == ""  # the original adaptive rule sends no ControllerState


DECISIVE = "decisive: no speculation (K = 0) is within 2% of the fastest (95%, valid at any stop)"
OPEN = "not decisive: K = 3 is within 6.1% of the fastest (95%); about 4 more rounds would certify 2% at this noise"


def _verdict(**kw) -> RoundFinished:
    base = RoundFinished(
        round=5, rounds=TUNE_ROUNDS, best="nospec", decisive=True, remaining=("nospec",),
        dropped=(), recommended_k=0, stop="decisive", elapsed_s=50.0, left_s=None,
        status=(("nospec", "best"),), half_width=(("nospec", 300.0, 3.0),), statement=DECISIVE,
    )  # fmt: skip
    return replace(base, **kw)


def test_a_standing_carries_what_it_rests_on():
    v = _verdict(
        status=(("nospec", "best"), ("fixed_2", "within"), ("fixed_4", "racing"),
                ("fixed_6", "racing"), ("fixed_8", "racing"), ("fixed_1", "dropped")),
        epsilon=(("nospec", 0.0), ("fixed_2", 0.0149), ("fixed_4", 0.0625),
                 ("fixed_6", 1.5), ("fixed_8", math.inf)),
        dropped=(("fixed_1", 4),),
    )  # fmt: skip
    status = dict(v.status)
    cells = {a: verdict_cell(a, round_status(a, status, v), v) for a, _ in v.status}
    assert cells == {
        "nospec": "best", "fixed_2": "within ≤1.5%", "fixed_4": "racing ≤6.2%",
        "fixed_6": "racing >100%", "fixed_8": "racing", "fixed_1": "dropped r4",
    }  # fmt: skip
    assert verdict_cell("fixed_4", "racing", None) == "racing"  # before the first round


def test_every_verdict_wording():
    """The verdict pane says what the race says, whatever stopped the run."""
    start = [e for e in recorded_tune_run() if isinstance(e, RoundStarted)][:1]
    m = model_of(recorded_tune_run()[:1] + start)
    assert str(verdict_text(m)) == "4 arms racing, first verdict after round 1"
    m.apply(_verdict())
    assert (str(verdict_text(m)), verdict_text(m).style) == (DECISIVE, "bold green")
    for stop in ("rounds", "time"):
        m.apply(_verdict(stop=stop, decisive=False, recommended_k=3, best="fixed_3", statement=OPEN))
        assert (str(verdict_text(m)), verdict_text(m).style) == (OPEN, "bold red")
    # --rounds below the first stop: the race may be decisive all the same, and says so
    m.apply(_verdict(stop="rounds", decisive=True))
    assert (str(verdict_text(m)), verdict_text(m).style) == (DECISIVE, "bold green")
    m.apply(_verdict(round=2, stop=None, decisive=False, left_s=150.0, statement=OPEN,
                     remaining=("fixed_1", "fixed_3")))  # fmt: skip
    assert str(verdict_text(m)) == f"2 arms racing, at most 2 min left; {OPEN}"
    m.apply(_verdict(round=2, stop=None, decisive=False, left_s=None, statement=OPEN,
                     remaining=("fixed_3",)))  # fmt: skip
    assert str(verdict_text(m)) == f"1 arm racing; {OPEN}"
    # quit by the user between rounds: not decisive, in red
    m.apply(RunFinished("stopped", (), None, KnobVerdict("unverified", ""), (), ""))
    assert (str(verdict_text(m)), verdict_text(m).style) == (OPEN, "bold red")


def test_the_controller_pane_follows_the_running_adaptive_arm_or_the_last_one():
    m = model_of(upto(recorded_tune_run(), in_round(4, "fixed_3", 1)))
    # fixed_3 runs; the pane keeps the last adaptive arm seen, not bold (not running)
    assert m.arm == "fixed_3" and m.view_arm == "adaptive:model"
    assert m.view is not None and m.view.acceptance == 0.76  # 3 rounds x 2 steps: 0.70 + 0.06
    text = controller_text("adaptive:model", m.view, running=False)
    assert text.plain.splitlines()[1] == "acc 0.76"
    # a bandit view: no acceptance nor pass cost, scores per K
    bandit = replace(controller_view(2, 0.5, 4.0, 1.0), acceptance=None, pass_ms=None,
                     draft_ms=None, name="bandit")  # fmt: skip
    m.apply(ControllerState("adaptive:bandit", bandit))
    assert m.view_arm == "adaptive:bandit"
    lines = controller_text("adaptive:bandit", bandit, running=True).plain.splitlines()
    assert lines[1:3] == ["acc -", "pass -"]
    assert lines[3].endswith("8 K=2 " + f"{dict(bandit.expected_tps)[2]:.0f}/s")


def test_an_arm_that_explains_itself_draws_no_threshold_band():
    import math

    m = model_of(recorded_tune_run())  # adaptive:model's records carry a 9000-22000 band
    assert len(m.low) == 30 and all(math.isnan(v) for v in m.low + m.high + m.ema)
    # the original rule (no ControllerState) keeps its EMA and band
    seq = model_of(recorded_run())
    assert [v for v in seq.low if not math.isnan(v)] == [350.0] * 10


def test_skip_in_rounds_names_the_block():
    events = upto(recorded_tune_run(), in_round(4, "adaptive:model", 1))
    seen: list[str] = []

    async def skip(app, pilot) -> None:
        await pilot.press("s")
        await pilot.pause()
        seen.extend(n.message for n in app._notifications)  # what notify() queued

    replay = drive(events, skip)
    assert replay.calls[0] == "skip"
    assert "skipping the rest of adaptive:model's block in round 4" in seen


def test_on_80_columns_a_long_server_line_leaves_the_round_line_in_sight():
    events = upto(recorded_tune_run(), in_round(4, "adaptive:model", 1))
    first = events[0]
    assert isinstance(first, RunStarted)
    long_backend = "embedded server (pid 27815) at http://127.0.0.1:43749"
    events = [replace(first, backend=long_backend), *events[1:]]
    lines: list[str] = []

    async def read_status(app, pilot) -> None:
        status = app.query_one("#status", TextLines)
        lines.extend(
            "".join(seg.text for seg in strip).rstrip()
            for strip in status.render_lines(status.region.reset_offset)
        )

    drive(events, read_status, (80, 24))
    assert lines[0].startswith(" embedded server (pid 27815) at http://127.0.0.1:43749 · mod")
    assert lines[0].endswith("…")
    assert lines[1].startswith(" round 4/5 · adaptive:model (3/3) block 1/2 · phase STEADY")


def test_the_app_freezes_its_startup_objects_for_the_collector_and_thaws_on_exit():
    """Frozen, the objects made before the first frame are not scanned at each full
    collection while the monitor draws; the process gets its collector back on exit."""
    import gc

    events = upto(recorded_tune_run(), in_round(2, "adaptive:model", 1))
    frozen: list[int] = []

    async def count(app, pilot) -> None:
        frozen.append(gc.get_freeze_count())

    before = gc.get_freeze_count()
    drive(events, count)
    assert frozen[0] > before + 10_000  # the modules, widgets, styles of a running monitor
    assert gc.get_freeze_count() == 0


def test_a_half_width_not_yet_measurable_reads_as_the_summary_writes_it():
    """After one round a CI has no spread to measure: the table showed "±inf"."""
    events = recorded_tune_run()
    first = next(i for i, e in enumerate(events) if isinstance(e, RoundFinished))
    v = events[first]
    hw = tuple((arm, tps, float("inf") if arm == "fixed_3" else w) for arm, tps, w in v.half_width)
    rows = screen_of([*events[:first], replace(v, half_width=hw)])["rows"]
    tps = dict((arm, t) for arm, t, _ in v.half_width)["fixed_3"]
    assert rows["fixed_3"][2] == f"{tps:.1f} ±?"
    assert all("inf" not in cell for row in rows.values() for cell in row)


def test_the_small_layout_follows_each_resize_at_once():
    """It took the app's size before Textual had stored the new one: one resize late."""
    events = upto(recorded_tune_run(), in_round(2, "adaptive:model", 1))
    seen: list[bool] = []

    async def resize(app, pilot) -> None:
        for size in ((80, 24), SIZE, (99, 40), (120, 29), SIZE):
            await pilot.resize_terminal(*size)
            await pilot.pause()
            seen.append(app.screen.has_class("-small"))

    drive(events, resize)
    assert seen == [True, False, True, True, False]


def test_on_a_short_terminal_the_k_plot_gives_way_to_the_cpu_pane():
    """At 100x30 to 100x34 the right column had 15 to 19 rows for 20: the CPU pane
    was pushed out of sight under the results."""
    events = upto(recorded_tune_run(), in_round(2, "adaptive:model", 1))
    seen: list[tuple[int, int, int, bool]] = []

    async def resize(app, pilot) -> None:
        for size in ((100, 31), (100, 34), SIZE):
            await pilot.resize_terminal(*size)
            await pilot.pause()
            cpu, bottom = app.query_one("#cpu").region, app.query_one("#bottom").region
            plot = app.query_one("#k-plot")
            drawn = "".join(seg.text for y in range(plot.size.height) for seg in plot.render_line(y))
            seen.append((cpu.height, cpu.bottom - bottom.y, plot.size.height, bool(drawn.strip())))

    drive(events, resize)
    cores = len(CPU)  # the replay's CPU sampler
    for height, overlap, _, _ in seen:
        assert height == cores + 3 and overlap <= 0  # whole, and above the bottom panes
    # the plot's rows left, and whether it draws in them (not in fewer than 5)
    assert [(s[2], s[3]) for s in seen] == [(1, False), (4, False), (15, True)]
