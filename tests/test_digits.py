"""The K digits: Textual's picture, each value's made once."""

import asyncio

from textual.app import App
from textual.geometry import Region
from textual.widgets import Digits

from halospec_tui.ui.digits import FastDigits


def test_fast_digits_paint_as_digits_and_render_each_value_once(monkeypatch):
    class Two(App[None]):
        CSS = "Digits { width: 12; }"

        def compose(self):
            yield Digits("-", id="slow")
            yield FastDigits("-", id="fast")

    def painted(w):
        lines = w.render_lines(Region(0, 0, w.size.width, w.size.height))
        return [[(seg.text, seg.style) for seg in line] for line in lines]

    renders: list[str] = []
    real = Digits.render

    def counted(self):
        if isinstance(self, FastDigits):
            renders.append(self.value)
        return real(self)

    monkeypatch.setattr(Digits, "render", counted)

    async def go() -> None:
        app = Two()
        async with app.run_test(size=(30, 8)) as pilot:
            slow, fast = app.query_one("#slow", Digits), app.query_one("#fast", FastDigits)
            for value in ("3", "12", "3", "0", "12", "3"):
                slow.update(value)
                fast.update(value)
                await pilot.pause()
                assert painted(fast) == painted(slow)
                assert "".join(t for line in painted(fast) for t, _ in line).strip()

    asyncio.run(go())
    assert renders.count("3") == 1 and renders.count("12") == 1 and renders.count("0") == 1
