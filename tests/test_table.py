"""The light table: fixed columns, a header that stays, rows redrawn only when changed."""

import asyncio

from rich.style import Style
from textual.app import App

from halospec_tui.ui.table import Column, LightTable

COLUMNS = [Column("mode", "mode", 8), Column("p50", "p50", 4)]


class OneTable(App[None]):
    CSS = "LightTable { height: 4; width: 20; }"

    def compose(self):
        yield LightTable(id="t")


def text(strip) -> str:
    return "".join(seg.text for seg in strip)


def test_rows_under_a_header_that_stays_when_scrolled():
    async def go() -> None:
        app = OneTable()
        async with app.run_test(size=(30, 8)) as pilot:
            t = app.query_one(LightTable)
            t.set_columns(COLUMNS)
            for i in range(6):
                t.set_row(f"m{i}", {"mode": (f"fixed_{i}", ""), "p50": (str(100 + i), "bold")})
            await pilot.pause()
            assert t.row_count == 6 and t.row_keys == [f"m{i}" for i in range(6)]
            assert t.virtual_size.width == 8 + 2 + 4 + 2 and t.virtual_size.height == 7
            # one blank cell each side of a cell's content; a long text is cut to its width
            assert text(t.render_line(0)).startswith(" mode      p50  ")
            assert text(t.render_line(1)).startswith(" fixed_0   100  ")
            t.set_row("m0", {"mode": ("a_much_longer_name", "")})
            assert text(t.render_line(1)).startswith(" a_much_l  100  ")
            assert t.row("m0") == ["a_much_longer_name", "100"]
            t.scroll_to(y=2, animate=False)
            await pilot.pause()
            assert text(t.render_line(0)).startswith(" mode ")  # the header stays
            assert text(t.render_line(1)).startswith(" fixed_2 ")
            assert text(t.render_line(3)).startswith(" fixed_4 ")

    asyncio.run(go())


def test_a_changed_cell_rebuilds_its_row_alone_and_an_unchanged_one_nothing():
    async def go() -> None:
        app = OneTable()
        async with app.run_test(size=(30, 8)) as pilot:
            t = app.query_one(LightTable)
            t.set_columns(COLUMNS)
            t.set_row("a", {"mode": ("a", ""), "p50": ("1", "")})
            t.set_row("b", {"mode": ("b", ""), "p50": ("2", "")})
            await pilot.pause()
            first, second = t.render_line(1), t.render_line(2)
            t.set_row("a", {"p50": ("1", "")})  # the same: the cached lines stay
            assert t.render_line(1) is first and t.render_line(2) is second
            t.set_row("a", {"p50": ("9", "bold green")})
            changed = t.render_line(1)
            assert changed is not first and t.render_line(2) is second
            seg = [s for s in changed if "9" in s.text][0]
            assert seg.style is not None and seg.style.bold and seg.style.color == Style.parse(
                "green"
            ).color

    asyncio.run(go())


def test_focused_the_table_scrolls_with_the_keys():
    """DataTable, which it replaced, scrolled with the keys when focused: so does it."""

    async def go() -> None:
        app = OneTable()
        async with app.run_test(size=(30, 8)) as pilot:
            t = app.query_one(LightTable)
            t.set_columns(COLUMNS)
            for i in range(10):
                t.set_row(f"m{i}", {"mode": (f"fixed_{i}", ""), "p50": (str(i), "")})
            await pilot.pause()
            t.focus()
            await pilot.press("down", "down")
            await pilot.pause()
            assert t.scroll_offset.y == 2
            assert text(t.render_line(1)).startswith(" fixed_2 ")
            await pilot.press("end")
            await pilot.pause()
            assert t.scroll_offset.y == 10 + 1 - 4  # the last row on the last line
            assert text(t.render_line(3)).startswith(" fixed_9 ")

    asyncio.run(go())


def test_the_mode_column_is_as_wide_as_the_widest_name_in_cells():
    from halospec_tui.events import ArmInfo, RunStarted
    from halospec_tui.ui.model import RunModel
    from halospec_tui.ui.widgets import ResultsTable

    class One(App[None]):
        def compose(self):
            yield ResultsTable()

    m = RunModel(clock=lambda: 0.0)
    m.apply(RunStarted(
        run_id="r", plan="p", arms=(ArmInfo("速度模式", 0, 4), ArmInfo("fixed_1", 0, 4)),
        base_url="", model="m", actuator="a", backend="b", csv_path="", load_arms="",
        load_enabled=False, cooldown_s=0.0, warmup_sleep_s=0.0,
    ))  # fmt: skip

    async def go() -> None:
        app = One()
        async with app.run_test(size=(100, 8)) as pilot:
            t = app.query_one(ResultsTable)
            t.draw(m)
            await pilot.pause()
            assert t.columns[0].width == 8  # four wide characters: 8 cells, not 4
            assert text(t.render_line(1)).startswith(" 速度模式 ")

    asyncio.run(go())
