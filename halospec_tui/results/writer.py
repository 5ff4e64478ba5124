"""Writing a results CSV: rows appended whole or not at all, torn last rows moved aside,
the durability sync off the request path."""

from __future__ import annotations

import contextlib
import csv
import io
import os
import threading
from collections.abc import Sequence
from pathlib import Path
from typing import Any

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
        whole = fh.read() == b"\n"
        start = _tail_start(fh, size - 1)  # a last byte that is b"\n" ends the last row
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


SYNC_EVERY_S = 0.5  # the background sync runs at most this often while rows come
STOP_WAIT_S = 5.0  # how long close() waits for a sync in flight


class CsvWriter:
    """Appends rows to a results CSV, writing the header only for a new file.

    A row goes to the file in one write of its whole line, straight to the kernel (no
    buffer in this process): once `write` returns, the row survives the process
    ending in any way (Ctrl-C, SIGTERM, SIGKILL, a crash). Making it durable against a
    power cut (fsync) is left to a background thread, which syncs at most every
    `sync_every_s` seconds while rows come, and to `close`, which syncs once more. A
    sync costs a few milliseconds on a disk, paid before on every row between the
    request and the next one; the tradeoff is that a power cut may lose the rows of
    the last `sync_every_s` seconds (a row cut in half by it is moved aside by
    `repair_torn_tail` on the next run).

    A row is written whole or not at all: when the write fails (a full disk, a size
    limit), the file is cut back to where the row began and the error raised. A sync
    that failed in the background is raised by the next `write` (and kept in
    `sync_error`, which `close` sets too but does not raise: the rows are written).
    A torn last row left by a crash is moved aside first (see `repair_torn_tail`);
    `repaired` then says so.
    """

    def __init__(self, path: str | os.PathLike[str], sync_every_s: float = SYNC_EVERY_S) -> None:
        self.path = Path(path)
        self.sync_every_s = sync_every_s
        self._fd: int | None = None
        self._syncer: _Syncer  # started by open() with the file
        self.repaired: str | None = None
        self.sync_error: OSError | None = None

    def open(self) -> None:
        exists = self.path.exists() and self.path.stat().st_size > 0
        if exists:
            with self.path.open("rb") as fh:  # bytes: a first line that is no text differs too
                header = fh.readline().strip()
            if header != ",".join(COLUMNS).encode():
                if header == ",".join(ORIGINAL_COLUMNS).encode():
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
        if not self.path.parent.exists():
            raise ResultsError(
                f"cannot write {self.path}: folder {self.path.parent} does not exist"
            )
        try:
            self._fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o666)
        except OSError as e:
            raise ResultsError(f"cannot write {self.path}: {e.strerror}") from e
        self._syncer = _Syncer(self._fd, self.sync_every_s)
        if not exists:
            self._append(_line(COLUMNS))

    def write(self, r: StepRecord) -> None:
        """Append one row whole, or not at all: when the write fails (a full disk, a
        size limit), the file is cut back to where the row began and the error raised."""
        assert self._fd is not None, "open() first"
        if self._syncer.error is not None:
            self.sync_error = self._syncer.error
            raise self._syncer.error
        self._append(_line(record_cells(r)))
        self._syncer.wake()

    def _append(self, data: bytes) -> None:
        assert self._fd is not None
        start = os.lseek(self._fd, 0, os.SEEK_END)
        try:
            view = memoryview(data)
            while view:  # a regular file takes it in one write unless it is full
                view = view[os.write(self._fd, view) :]
        except OSError:
            self._drop_partial(start)
            raise

    def _drop_partial(self, start: int) -> None:
        """Cut the file back to `start` (best effort) and close it."""
        assert self._fd is not None
        with contextlib.suppress(OSError):  # may fail again
            os.ftruncate(self._fd, start)
        self.close(sync=False)

    def close(self, sync: bool = True) -> None:
        """Stop the background sync, sync once more (unless told not to), close."""
        if self._fd is None:
            return
        fd, self._fd = self._fd, None
        stopped = self._syncer.stop(STOP_WAIT_S)
        if self._syncer.error is not None:
            self.sync_error = self._syncer.error
        if sync and stopped:
            try:
                os.fsync(fd)
            except OSError as e:
                self.sync_error = e
        with contextlib.suppress(OSError):
            os.close(fd)


def _line(cells: Sequence[str]) -> bytes:
    out = io.StringIO()
    csv.writer(out, lineterminator="\n").writerow(cells)
    return out.getvalue().encode(errors="backslashreplace")  # UTF-8


class _Syncer:
    """fsync of one file in a daemon thread, woken by each row written; at most one
    sync per `every_s` seconds. The queue is one flag: rows written while a sync runs
    are covered by the next, so nothing piles up however fast rows come."""

    def __init__(self, fd: int, every_s: float) -> None:
        self._fd = fd
        self._every_s = every_s
        self._wake = threading.Event()
        self._stopping = threading.Event()
        self.error: OSError | None = None
        self._thread = threading.Thread(target=self._run, name="csv-sync", daemon=True)
        self._thread.start()

    def wake(self) -> None:
        self._wake.set()

    def _run(self) -> None:
        while True:
            self._wake.wait()
            if self._stopping.is_set():
                return
            self._wake.clear()
            try:
                os.fsync(self._fd)
            except OSError as e:
                self.error = e
                return
            self._stopping.wait(self._every_s)

    def stop(self, timeout_s: float) -> bool:
        """Stop the thread; False when a sync in flight did not end within the time."""
        self._stopping.set()
        self._wake.set()
        self._thread.join(timeout_s)
        return not self._thread.is_alive()
