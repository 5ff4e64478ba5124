"""A small table of plain cells, drawn line by line from cached strips.

Textual's `DataTable` renders every cell of the table through Rich (padding,
cropping, styles) whenever any cell changes: 12-17 ms a time for the monitor's
results table. Here a cell is a string and one style, a row is one `Strip` built
once, and changing a cell rebuilds that row's strip and repaints that line only.
The header stays in the first line while the rows scroll under it.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from rich.cells import cell_len, set_cell_size
from rich.segment import Segment
from rich.style import Style
from textual.geometry import Size
from textual.scroll_view import ScrollView
from textual.strip import Strip

PAD = 1  # blank cells each side of a cell's content, as DataTable's cell padding


@dataclass(frozen=True)
class Column:
    label: str
    key: str
    width: int  # cells of content, without the padding


class LightTable(ScrollView):
    """Rows of (text, style) cells under a fixed header; fixed column widths. Focused,
    it scrolls with the arrow, page, home and end keys (as any scroll view)."""

    COMPONENT_CLASSES = {"light-table--header"}

    DEFAULT_CSS = """
    LightTable {
        background: $surface;
        color: $foreground;
        height: auto;
        max-height: 100%;
        & > .light-table--header {
            text-style: bold;
            background: $panel;
            color: $foreground;
        }
    }
    """

    def __init__(self, *, id: str | None = None) -> None:
        super().__init__(id=id)
        self._columns: tuple[Column, ...] = ()
        self._keys: list[str] = []  # row keys, top to bottom
        self._cells: dict[str, dict[str, tuple[str, str]]] = {}
        self._strips: dict[str, Strip] = {}  # row key -> its line, whole width
        self._header: Strip | None = None
        self._styles: dict[str, Style] = {}

    # -- content ------------------------------------------------------------
    @property
    def columns(self) -> tuple[Column, ...]:
        return self._columns

    @property
    def row_keys(self) -> list[str]:
        return list(self._keys)

    @property
    def row_count(self) -> int:
        return len(self._keys)

    def set_columns(self, columns: Sequence[Column]) -> None:
        """New columns: every row goes."""
        self._columns = tuple(columns)
        self._keys.clear()
        self._cells.clear()
        self._strips.clear()
        self._header = None
        self._resize()
        self.refresh()

    def set_row(self, key: str, cells: dict[str, tuple[str, str]]) -> None:
        """Adds the row `key` at the bottom, or changes the given cells of it; each cell
        is (text, Rich style). A row whose cells are unchanged repaints nothing."""
        row = self._cells.get(key)
        if row is None:
            self._keys.append(key)
            self._cells[key] = dict(cells)
            self._resize()
            self.refresh_line(self._line_of(key))
            return
        if all(row.get(k) == v for k, v in cells.items()):
            return
        row.update(cells)
        self._strips.pop(key, None)
        self.refresh_line(self._line_of(key))

    def cell(self, key: str, column: str) -> str:
        return self._cells[key].get(column, ("", ""))[0]

    def row(self, key: str) -> list[str]:
        """The row's texts, one per column."""
        return [self.cell(key, c.key) for c in self._columns]

    # -- drawing ------------------------------------------------------------
    def _line_of(self, key: str) -> int:
        """Row `key`'s line in the virtual size (0 is the header's)."""
        return self._keys.index(key) + 1

    def _resize(self) -> None:
        width = sum(c.width + 2 * PAD for c in self._columns)
        self.virtual_size = Size(width, len(self._keys) + 1)

    def _style(self, name: str) -> Style:
        found = self._styles.get(name)
        if found is None:
            found = self._styles[name] = Style.parse(name) if name else Style.null()
        return found

    def _line(self, cells: Sequence[tuple[str, str]], base: Style) -> Strip:
        segments = []
        for (text, style), column in zip(cells, self._columns, strict=True):
            content = text if cell_len(text) == column.width else set_cell_size(text, column.width)
            pad = " " * PAD
            segments.append(Segment(pad + content + pad, base + self._style(style)))
        return Strip(segments)

    def notify_style_update(self) -> None:
        super().notify_style_update()
        self._strips.clear()  # the theme or the CSS changed: every line's base style
        self._header = None

    def render_line(self, y: int) -> Strip:
        scroll_x, scroll_y = self.scroll_offset
        width = self.size.width
        base = self.rich_style
        if y == 0:
            if self._header is None:
                header = base + self.get_component_rich_style("light-table--header")
                labels = [(c.label, "") for c in self._columns]
                self._header = self._line(labels, header)
            strip = self._header
        else:
            index = scroll_y + y - 1
            if not 0 <= index < len(self._keys):
                return Strip.blank(width, base)
            strip = self._row_strip(self._keys[index], base)
        return strip.crop_extend(scroll_x, scroll_x + width, base)

    def _row_strip(self, key: str, base: Style) -> Strip:
        found = self._strips.get(key)
        if found is None:
            row = self._cells[key]
            cells = [row.get(c.key, ("", "")) for c in self._columns]
            found = self._strips[key] = self._line(cells, base)
        return found
