"""The text panes: lines cut (with "…") or wrapped as a Static shows them, cached."""

import asyncio

from rich.segment import Segment
from rich.style import Style
from rich.text import Text
from textual.app import App
from textual.geometry import Region
from textual.widgets import Static

from halospec_tui.ui.lines import TextLines, cut

BASE = Style(color="white")
RED = Style(color="red")


def test_cut_pads_short_lines_and_ends_long_ones_in_an_ellipsis():
    line = [Segment("abc", RED), Segment("defg", BASE)]
    assert cut(line, 9, True, BASE) == [Segment("abc", RED), Segment("defg", BASE), Segment("  ", BASE)]
    assert cut(line, 5, True, BASE) == [Segment("abc", RED), Segment("d", BASE), Segment("…", BASE)]
    assert cut(line, 3, True, BASE) == [Segment("ab", RED), Segment("…", RED)]
    assert cut(line, 5, False, BASE) == [Segment("abc", RED), Segment("de", BASE)]


class Panes(App[None]):
    CSS = """
    #cut { height: 2; width: 20; text-wrap: nowrap; text-overflow: ellipsis; }
    #wrap, #static { height: 3; width: 20; }
    """

    def compose(self):
        yield TextLines("", id="cut")
        yield TextLines("", id="wrap")
        yield Static("", id="static")


def shown(widget) -> list[str]:
    lines = widget.render_lines(Region(0, 0, widget.size.width, widget.size.height))
    return ["".join(seg.text for seg in line) for line in lines]


def test_panes_cut_or_wrap_as_a_static_and_repaint_only_on_change():
    async def go() -> None:
        app = Panes()
        async with app.run_test(size=(40, 10)) as pilot:
            cut_pane, wrap, static = (app.query_one(f"#{i}") for i in ("cut", "wrap", "static"))
            cut_pane.update(Text("mode fixed_2 (2/9) step 3/4 · phase LOAD\nsecond"))
            long = "drafted 120 · accepted 80 (67%)\nserver 140 tok/s"
            wrap.update(long)
            static.update(long)
            await pilot.pause()
            assert shown(cut_pane) == ["mode fixed_2 (2/9) …", "second".ljust(20)]
            assert shown(wrap) == shown(static)
            assert shown(wrap)[0].rstrip() == "drafted 120 ·"  # wrapped at a word
            strips = [cut_pane.render_line(y) for y in range(2)]
            cut_pane.update(Text("mode fixed_2 (2/9) step 3/4 · phase LOAD\nsecond"))
            again = [cut_pane.render_line(y) for y in range(2)]
            assert all(a is b for a, b in zip(strips, again, strict=True))  # not rebuilt
            # Text.__eq__ ignores the base style: a change of colour alone must repaint
            cut_pane.update(Text("mode fixed_2 (2/9) step 3/4 · phase LOAD\nsecond", "red"))
            recoloured = cut_pane.render_line(0)
            assert recoloured is not strips[0]
            first = list(recoloured)[0]
            assert first.style is not None and first.style.color == RED.color
            wrap.update("short\nlines")  # every line fits: no wrapping needed, same look
            static.update("short\nlines")
            await pilot.pause()
            assert shown(wrap) == shown(static)

    asyncio.run(go())
