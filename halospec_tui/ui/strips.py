"""Line-API widgets whose lines are made all at once and kept until they change."""

from __future__ import annotations

from collections.abc import Callable, Hashable, Iterable
from typing import TYPE_CHECKING, Any, TypeVar

from rich.segment import Segment
from rich.style import Style
from textual.geometry import Size
from textual.strip import Strip
from typing_extensions import Self

if TYPE_CHECKING:
    from textual.widget import Widget

    _Mixin = Widget
else:  # a plain mixin: as a Widget it would hide the widget's own CSS and components
    _Mixin = object


K = TypeVar("K", bound=Hashable)


def strips_on(
    rows: Iterable[Iterable[tuple[str, K]]], width: int, base: Style, style_of: Callable[[K], Style]
) -> list[Strip]:
    """Rows of (text, key) runs as strips `width` cells long, each run in `style_of(key)`
    over `base`: a picture has few styles, so each is made and put on the base once."""
    on_base: dict[K, Style] = {}
    strips = []
    for runs in rows:
        segments = []
        for text, key in runs:
            styled = on_base.get(key)
            if styled is None:
                styled = on_base[key] = base + style_of(key)
            segments.append(Segment(text, styled))
        strips.append(Strip(segments).adjust_cell_length(width, base))
    return strips


class KeptStrips(_Mixin):
    """Paints from the lines `_build()` makes, kept until a refresh (new content, or
    styles or theme changed) or a change of size. Put it before the widget class it
    speeds up: `class FastSparkline(KeptStrips, Sparkline)`."""

    _strips: list[Strip] | None = None
    _built_for: tuple[Size, Size] | None = None

    def _build(self) -> list[Strip]:
        """Every line of the widget's content, top first."""
        raise NotImplementedError

    def refresh(self, *args: Any, **kwargs: Any) -> Self:
        self._strips = None
        return super().refresh(*args, **kwargs)

    def render_line(self, y: int) -> Strip:
        sizes = (self.size, self.content_size)
        if self._strips is None or self._built_for != sizes:
            self._built_for = sizes
            self._strips = self._build()
        if 0 <= y < len(self._strips):
            return self._strips[y]
        return Strip.blank(self.content_size.width, self.rich_style)
