"""One formatter for summary cells and one for step details, shared by every output."""

from halospec_tui.events import StepDone, StepRecord
from halospec_tui.formats import server_tps, step_details, summary_cells
from halospec_tui.headless import step_line
from halospec_tui.stats import StepSample, summarize_arm
from halospec_tui.ui.lines import TextLines
from halospec_tui.ui.model import RunModel
from halospec_tui.ui.widgets import table_cells


def _rec(**kw):
    base = dict(global_step=1, step=1, arm="fixed_3", phase="steady", draft_length=3,
                success=True, latency_ms=400, tokens=64)  # fmt: skip
    return StepRecord(**{**base, **kw})


def test_predicted_ms_without_predicted_n_has_no_server_rate():
    r = _rec(predicted_ms=80.0, predicted_n=None, drafted=12, accepted=9, acceptance=0.75)
    d = step_details(r)
    assert d.server_tps is None
    assert (d.drafted, d.accepted, d.acceptance) == ("12", "9", "75%")
    assert step_line(StepDone(r, 4)) == (
        "[fixed_3 1/4] steady   K=3 400 ms 64 tok drafted=12 accepted=9 (75%)"
    )
    assert server_tps(None, 80.0) is None and server_tps(64, 0.0) is None
    assert server_tps(64, 80.0) == 800.0


def test_kpanel_draws_a_reply_with_predicted_ms_but_no_predicted_n():
    """It divided by predicted_n without a None check, and the redraw crashed."""
    import asyncio

    from textual.app import App

    from halospec_tui.ui.widgets import KPanel

    m = RunModel()
    m.last = _rec(predicted_ms=80.0, predicted_n=None, ema_ms=431.4, low_ms=380, high_ms=520,
                  reload_ms=214)  # fmt: skip

    class One(App[None]):
        def compose(self):
            yield KPanel()

    async def go():
        app = One()
        async with app.run_test(size=(60, 12)) as pilot:
            app.query_one(KPanel).draw(m)
            await pilot.pause()
            text = str(app.query_one("#k-detail", TextLines).text)
            assert text == "EMA 431 ms, band 380-520\nreload 214 ms (not in latency)"

    asyncio.run(go())


def test_step_line_with_every_detail():
    r = _rec(drafted=12, accepted=9, acceptance=0.75, predicted_n=64, predicted_ms=80.0,
             ema_ms=431.6, low_ms=380, high_ms=520, reload_ms=214)  # fmt: skip
    assert step_line(StepDone(r, 4)) == (
        "[fixed_3 1/4] steady   K=3 400 ms 64 tok drafted=12 accepted=9 (75%) srv=800 tok/s "
        "ema=432 band=[380,520] reload=214 ms"
    )


def test_summary_cells_with_and_without_units():
    s = summarize_arm(
        "adaptive",
        [StepSample("adaptive", 3, True, 400, 64, drafted=10, accepted=5),
         StepSample("adaptive", 4, True, 500, 64), StepSample("adaptive", 4, False, 0, 0)],
    )  # fmt: skip
    c = summary_cells(s, units=True)
    assert (c.success, c.avg, c.median, c.throughput) == ("66.7", "450.0 ms", "400 ms", c.throughput)
    assert c.throughput.endswith(" tok/s")
    plain = summary_cells(s)
    assert (plain.avg, plain.median, plain.acceptance, plain.k_changes) == ("450.0", "400", "50.0", "1")
    row = table_cells(s)
    assert (row["ok"], row["acc"], row["kchg"]) == ("67", "50", "1")
    empty = summary_cells(summarize_arm("fixed_1", []))
    assert (empty.avg, empty.median, empty.acceptance, empty.k_changes) == ("-", "-", "-", "")


def test_headless_steps_in_rounds_count_within_the_block():
    """In rounds a record's step counts the arm's steps over every round: printed
    against the block's size it read "[fixed_3 5/4]" in round 2."""
    import io

    from ui_events import recorded_tune_run

    from halospec_tui.headless import HeadlessPrinter

    out = io.StringIO()
    printer = HeadlessPrinter(out=out, err=io.StringIO())
    for e in recorded_tune_run():
        printer.emit(e)
    steps = [line.split("]")[0] + "]" for line in out.getvalue().splitlines()
             if line.startswith("[fixed_3 ") and "warmup" not in line]  # fmt: skip
    assert steps[:4] == ["[fixed_3 r1 1/2]", "[fixed_3 r1 2/2]", "[fixed_3 r2 1/2]", "[fixed_3 r2 2/2]"]
    assert all(int(s.split()[-1][:-1].split("/")[0]) <= 2 for s in steps)
