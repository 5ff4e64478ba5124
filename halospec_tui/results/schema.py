"""What a results row is: its columns, in order, and a StepRecord as the row's cells.

The original's 8 columns come first, in its order, then one column per further
StepRecord field. The CSV keeps the original's word for an arm: column `mode` holds
StepRecord.arm.
"""

from __future__ import annotations

from dataclasses import fields
from typing import Any

from halospec_tui.errors import HalospecError
from halospec_tui.events import StepRecord

ORIGINAL_COLUMNS = (
    "global_step",
    "step",
    "mode",
    "phase",
    "draft_length",
    "success",
    "latency_ms",
    "tokens",
)
FIELD_OF_COLUMN = {"mode": "arm"}
EXTRA_COLUMNS = tuple(
    f.name for f in fields(StepRecord) if f.name not in (*ORIGINAL_COLUMNS, *FIELD_OF_COLUMN.values())
)
COLUMNS = ORIGINAL_COLUMNS + EXTRA_COLUMNS
_FIELDS = tuple(FIELD_OF_COLUMN.get(c, c) for c in COLUMNS)  # StepRecord's field per column
_COLUMN_FIELDS = tuple(zip(COLUMNS, _FIELDS, strict=True))
DEFAULT_CSV = "results_phase0.csv"


class ResultsError(HalospecError, ValueError):
    """A file that is not (or not compatible with) a halospec results CSV."""


def one_line(text: str) -> str:
    """A text cell on one line: CR and LF become spaces (a bare CR would break the CSV)."""
    return text.replace("\r\n", " ").replace("\r", " ").replace("\n", " ")


def _cell(v: Any) -> str:
    if isinstance(v, str):
        return one_line(v)
    if v is None:
        return ""
    if isinstance(v, bool):
        return "1" if v else "0"
    if isinstance(v, float):
        return f"{v:.3f}".rstrip("0").rstrip(".") if v == v else ""
    return str(v)


def record_cells(r: StepRecord) -> list[str]:
    return [_cell(getattr(r, f)) for f in _FIELDS]


def record_row(r: StepRecord) -> dict[str, str]:
    """A record's cells by column: the row the file gives back for it."""
    return {c: _cell(getattr(r, f)) for c, f in _COLUMN_FIELDS}
