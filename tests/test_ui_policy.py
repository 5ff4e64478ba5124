"""The monitor in a run with conditions, fed recorded events: the running condition in
the status line and on the verdict line, and the policy table below the results."""

from __future__ import annotations

from dataclasses import replace

from test_policy import IDLE, MEMORY
from test_ui_rounds import drive
from ui_events import recorded_tune_run

from halospec_tui.events import ConditionStarted, PolicyChanged, RoundFinished, RoundStarted
from halospec_tui.policy import build_policy
from halospec_tui.ui.lines import TextLines

POLICY = build_policy([("idle@1", IDLE), ("memory@3", MEMORY)], "llama-server", "llama-server")


def with_conditions(events):
    """The recorded tune run as the memory@3 condition of a run with conditions, the
    policy told after every round."""
    out = []
    for e in events:
        if isinstance(e, RoundFinished):
            out += [replace(e, condition="memory@3"), PolicyChanged(POLICY)]
            continue
        out.append(e)
        if isinstance(e, RoundStarted):
            out.append(ConditionStarted(e.round, "memory@3", "memory load, 3 requests at a time",
                                        2, 2, e.order))  # fmt: skip
    return out


def test_the_monitor_shows_the_condition_and_the_policy_table():
    shown = {}

    async def look(app, pilot) -> None:
        for key in ("status", "verdict", "policy"):
            shown[key] = str(app.query_one(f"#{key}", TextLines).text)
        shown["policy_shown"] = app.query_one("#policy", TextLines).display

    drive(with_conditions(recorded_tune_run()), look)
    assert "memory@3 (2/2)" in shown["status"]
    assert shown["verdict"].startswith("[memory@3] ")
    assert shown["policy_shown"] is True
    assert shown["policy"].splitlines() == [
        "condition  pick             tok/s      decided   regret of fixed_2",
        "idle@1     fixed_4          40.0 ±4.0  decisive  20.0% [11.1, 33.3]",
        "memory@3   speculation off  20.0 ±2.0  decisive  10.0% [0.0, 20.0]",
        "one static setting everywhere: fixed_2, mean regret 15.0%, most 20.0% at idle@1",
    ]


def test_without_conditions_there_is_no_policy_pane():
    shown = {}

    async def look(app, pilot) -> None:
        shown["policy_shown"] = app.query_one("#policy", TextLines).display
        shown["status"] = str(app.query_one("#status", TextLines).text)

    drive(recorded_tune_run(), look)
    assert shown["policy_shown"] is False and "@" not in shown["status"].splitlines()[1]
