"""Writing a results CSV: rows appended whole or not at all, torn last rows moved aside."""

from __future__ import annotations

import contextlib
import csv
import io
import os
from pathlib import Path
from typing import Any, TextIO

from halospec_tui.events import StepRecord
from halospec_tui.results.schema import COLUMNS, ORIGINAL_COLUMNS, ResultsError, record_cells


def torn_path(csv_path: str | os.PathLike[str]) -> Path:
    """Where a torn last row is moved aside: next to the CSV, `.torn` appended."""
    return Path(f"{csv_path}.torn")


def _tail_start(fh: Any, end: int) -> int:
    """Offset just past the last b"\n" before `end` (0 when there is none)."""
    block = 65536
    for stop in range(end, 0, -block):
        start = max(0, stop - block)
        fh.seek(start)
        i: int = fh.read(stop - start).rfind(b"\n")
        if i >= 0:
            return start + i + 1
    return 0


def repair_torn_tail(path: str | os.PathLike[str], columns: int = len(COLUMNS)) -> str | None:
    """Move a torn last row (no final newline, or the wrong field count) aside.

    Called once the header line is known to be right. The fragment is appended to
    `<path>.torn` and the CSV is cut back to its last whole row, so the next row
    does not glue onto it. Returns what was done, for people, or None when the file
    was whole.
    """
    p = Path(path)
    with p.open("r+b") as fh:
        size = fh.seek(0, os.SEEK_END)
        if size == 0:
            return None
        fh.seek(size - 1)
        whole = fh.read(1) == b"\n"
        end = size - 1 if whole else size
        start = _tail_start(fh, end)
        if start == 0:  # the header is the only line (already checked by the caller)
            if not whole:
                fh.seek(size)
                fh.write(b"\n")  # so the first row does not glue onto it
            return None
        fh.seek(start)
        last = fh.read()
        if whole:
            try:
                cells = next(csv.reader([last.decode()]))
            except (UnicodeDecodeError, csv.Error):
                cells = []
            if len(cells) == columns:
                return None
        torn = torn_path(p)
        with torn.open("ab") as out:
            out.write(last if whole else last + b"\n")
            out.flush()
            os.fsync(out.fileno())
        fh.truncate(start)
        fh.flush()
        os.fsync(fh.fileno())
    return (
        f"{p}: its last row was torn (cut short by a crash or a full disk); "
        f"moved its {len(last)} bytes to {torn} and appending after the last whole row"
    )


class CsvWriter:
    """Appends rows, writing the header only for a new file; flushes every row.

    A torn last row left by a crash is moved aside first (see `repair_torn_tail`);
    `repaired` then says so.
    """

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self.path = Path(path)
        self._fh: TextIO | None = None
        self.repaired: str | None = None

    def open(self) -> None:
        exists = self.path.exists() and self.path.stat().st_size > 0
        if exists:
            with self.path.open(newline="") as fh:
                header = fh.readline().strip()
            if header != ",".join(COLUMNS):
                if header == ",".join(ORIGINAL_COLUMNS):
                    hint = "it was written by the original harness (8 columns)"
                else:
                    hint = "its header differs"
                raise ResultsError(
                    f"refusing to append to {self.path}: {hint}; choose another --csv path"
                )
            try:
                self.repaired = repair_torn_tail(self.path)
            except OSError as e:
                raise ResultsError(f"cannot repair {self.path}: {e.strerror or e}") from e
        if self.path.parent and not self.path.parent.exists():
            raise ResultsError(
                f"cannot write {self.path}: folder {self.path.parent} does not exist"
            )
        try:
            self._fh = self.path.open("a", newline="")
        except OSError as e:
            raise ResultsError(f"cannot write {self.path}: {e.strerror}") from e
        self._csv = csv.writer(self._fh, lineterminator="\n")
        if not exists:
            self._csv.writerow(COLUMNS)
            self._fh.flush()

    def write(self, r: StepRecord) -> None:
        """Append one row whole, or not at all: when the write fails (a full disk, a
        size limit), the file is cut back to where the row began and the error raised."""
        assert self._fh is not None, "open() first"
        line = io.StringIO()
        csv.writer(line, lineterminator="\n").writerow(record_cells(r))
        fd = self._fh.fileno()
        self._fh.flush()
        start = os.lseek(fd, 0, os.SEEK_END)
        try:
            self._fh.write(line.getvalue())
            self._fh.flush()
            os.fsync(fd)
        except OSError:
            self._drop_partial(start)
            raise

    def _drop_partial(self, start: int) -> None:
        """Forget what is buffered and cut the file back to `start` (best effort)."""
        assert self._fh is not None
        with contextlib.suppress(OSError):  # may fail again flushing the torn row
            self._fh.close()
        self._fh = None
        with contextlib.suppress(OSError), open(self.path, "r+b") as raw:
            raw.truncate(start)

    def close(self) -> None:
        if self._fh is not None:
            self._fh.close()
            self._fh = None
