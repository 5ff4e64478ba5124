"""A pane of a few lines of Rich text, painted from strips made once per change.

`Static.update` has Textual turn the text into its own content at each update and lay
it out again at the next paint: about 0.8 ms a time for the status line, which changes
at every step. A line that is cut rather than wrapped (CSS `text-wrap: nowrap`, or a
`Text` with `no_wrap`) needs only Rich's segments, split at the newlines and cut at
the width (with "…" for `text-overflow: ellipsis` or the Text's own overflow):
about 0.06 ms. Text that wraps goes through Rich's wrapping. Either way the strips are
kept until the text, the width or the styles change.
"""

from __future__ import annotations

from rich.cells import cell_len
from rich.segment import Segment
from rich.style import Style
from rich.text import Text
from textual.geometry import Size
from textual.strip import Strip
from textual.widget import Widget

from halospec_tui.ui.strips import KeptStrips

ELLIPSIS = "…"


def cut(line: list[Segment], width: int, ellipsis: bool, base: Style) -> list[Segment]:
    """One line of segments made `width` cells: padded with `base`, or cut, its last
    cell then "…" (in the style of the cell it replaces) when `ellipsis`."""
    length = sum(cell_len(s.text) for s in line)
    if length <= width:
        return Segment.adjust_line_length(line, width, base)
    if not ellipsis or width < 1:
        return Segment.adjust_line_length(line, width, base)
    kept = Segment.adjust_line_length(line, width - 1, base)
    last = kept[-1].style if kept else base
    return [*kept, Segment(ELLIPSIS, last)]


def _drawn_as(text: Text) -> tuple[object, ...]:
    """What of a Text shows: `Text.__eq__` compares only the characters and spans,
    not the base style, wrapping or overflow."""
    return (text.plain, text.spans, text.style, text.no_wrap, text.overflow)


class TextLines(KeptStrips, Widget):
    """Rich text in lines, as a `Static` shows it; `update` changes it (the same text
    again costs nothing)."""

    DEFAULT_CSS = """
    TextLines {
        height: auto;
    }
    """

    def __init__(self, text: Text | str = "", *, id: str | None = None) -> None:
        super().__init__(id=id)
        self._text = text if isinstance(text, Text) else Text(text)

    @property
    def text(self) -> Text:
        return self._text

    def update(self, text: Text | str) -> None:
        new = text if isinstance(text, Text) else Text(text)
        if _drawn_as(new) == _drawn_as(self._text):
            return
        self._text = new
        self.refresh()

    def get_content_height(self, container: Size, viewport: Size, width: int) -> int:
        return self._text.plain.count("\n") + 1

    def _build(self) -> list[Strip]:
        width = self.content_size.width
        console = self.app.console
        base = self.rich_style
        text = self._text
        fits = all(cell_len(line) <= width for line in text.plain.split("\n"))
        if fits or text.no_wrap or self.styles.text_wrap == "nowrap":  # no line wraps
            ellipsis = text.overflow == "ellipsis" or self.styles.text_overflow == "ellipsis"
            # Text.render leaves out the base style of a text without spans
            under = base + console.get_style(text.style) if text.style else base
            segments = Segment.apply_style(text.render(console), under)
            lines = Segment.split_lines(segments)
            return [Strip(cut(line, width, ellipsis, base), width) for line in lines]
        options = console.options.update(width=width, height=None, highlight=False)
        rendered = console.render_lines(text, options, style=base, pad=True)
        return [Strip(line, width) for line in rendered]
