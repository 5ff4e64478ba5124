"""The K in large type, each value's picture made once.

Textual's `Digits` renders its value through Rich at every change: 0.5-0.9 ms, and K
changes at every block of an interleaved plan (several times a second on a fast
server) while taking only a few values. Here each (value, size) keeps its lines until
the styles change.
"""

from __future__ import annotations

from textual.geometry import Size
from textual.strip import Strip
from textual.widgets import Digits

MOST_KEPT = 64  # pictures kept; K takes far fewer values in a run


class FastDigits(Digits):
    """Textual's `Digits` (same picture, CSS and API), painted from kept lines."""

    def __init__(self, value: str = "", *, id: str | None = None) -> None:
        super().__init__(value, id=id)
        self._kept: dict[tuple[str, Size], list[Strip]] = {}

    def notify_style_update(self) -> None:
        super().notify_style_update()
        self._kept.clear()  # colours or theme changed: every picture

    def render_line(self, y: int) -> Strip:
        key = (self.value, self.size)
        lines = self._kept.get(key)
        if lines is None:
            if len(self._kept) >= MOST_KEPT:
                self._kept.clear()
            draw = super().render_line
            lines = self._kept[key] = [draw(i) for i in range(self.size.height)]
        if 0 <= y < len(lines):
            return lines[y]
        return super().render_line(y)
