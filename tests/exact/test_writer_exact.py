"""CsvWriter: the exact bytes it writes, the exact words it refuses with, and when it
syncs (fsync is watched through the module's `os`)."""

from __future__ import annotations

import os
import threading
from pathlib import Path
from typing import Any

import pytest

import halospec_tui.results.writer as writer
from halospec_tui.events import StepRecord
from halospec_tui.results.schema import COLUMNS, ResultsError
from halospec_tui.results.writer import CsvWriter

HEADER = ",".join(COLUMNS) + "\n"
# The cells after the original 8 of a record that sets none of its further fields: all
# empty but attempts (1), settle (0) and drafting_shared (0), the record's defaults.
EMPTY_TAIL = ["" for _ in COLUMNS[8:]]
EMPTY_TAIL[COLUMNS.index("attempts") - 8] = "1"
EMPTY_TAIL[COLUMNS.index("settle") - 8] = "0"
EMPTY_TAIL[COLUMNS.index("drafting_shared") - 8] = "0"


def _rec(g: int, **kw: Any) -> StepRecord:
    return StepRecord(g, g, "fixed_1", "steady", 1, True, 100 + g, 64, **kw)


def _tail(**cells: str) -> str:
    tail = list(EMPTY_TAIL)
    for c, v in cells.items():
        tail[COLUMNS.index(c) - 8] = v
    return ",".join(tail)


def test_a_new_file_gets_the_header_then_each_row_as_one_csv_line(tmp_path: Path) -> None:
    p = tmp_path / "w.csv"
    w = CsvWriter(p)
    w.open()
    w.write(_rec(1))
    w.write(_rec(2, error='HTTP 500: "x", y', run_id="R"))
    w.close()
    assert p.read_bytes() == (
        HEADER
        + "1,1,fixed_1,steady,1,1,101,64," + _tail() + "\n"
        + "2,2,fixed_1,steady,1,1,102,64," + _tail(run_id="R", error='"HTTP 500: ""x"", y"') + "\n"
    ).encode()  # fmt: skip


def test_text_that_is_no_utf_8_is_written_escaped_not_refused(tmp_path: Path) -> None:
    p = tmp_path / "w.csv"
    w = CsvWriter(p)
    w.open()
    w.write(_rec(1, error="bad \udcff byte é"))  # a lone surrogate, as from a bad decode
    w.close()
    row = p.read_bytes().splitlines()[1]
    assert row.split(b",")[COLUMNS.index("error")] == "bad \\udcff byte é".encode()


def test_an_empty_file_is_a_new_file(tmp_path: Path) -> None:
    p = tmp_path / "w.csv"
    p.write_bytes(b"")
    w = CsvWriter(p)
    w.open()
    w.close()
    assert p.read_text() == HEADER and w.repaired is None


def test_appending_writes_no_second_header_and_repairs_nothing_whole(tmp_path: Path) -> None:
    p = tmp_path / "w.csv"
    for g in (1, 2):
        w = CsvWriter(p)
        w.open()
        w.write(_rec(g))
        w.close()
        assert w.repaired is None
    assert p.read_text().count("global_step") == 1 and len(p.read_text().splitlines()) == 3


def test_the_words_it_refuses_with(tmp_path: Path) -> None:
    # (the original harness's header and a path under a file: tests/test_core_exact.py)
    other = tmp_path / "other.csv"
    other.write_text(HEADER[:-1] + ",extra\n")
    with pytest.raises(ResultsError) as e:
        CsvWriter(other).open()
    assert str(e.value) == (
        f"refusing to append to {other}: its header differs; choose another --csv path"
    )
    nowhere = tmp_path / "gone" / "w.csv"
    with pytest.raises(ResultsError) as e:
        CsvWriter(nowhere).open()
    assert str(e.value) == f"cannot write {nowhere}: folder {tmp_path / 'gone'} does not exist"


def test_a_header_cut_before_its_newline_is_appended_to_on_a_line_of_its_own(
    tmp_path: Path,
) -> None:
    p = tmp_path / "w.csv"
    p.write_text(HEADER[:-1])
    w = CsvWriter(p)
    w.open()
    w.write(_rec(1))
    w.close()
    assert p.read_text().splitlines()[0] + "\n" == HEADER and len(p.read_text().splitlines()) == 2


def _watch_fsync(monkeypatch: pytest.MonkeyPatch, fail: bool = False) -> list[str]:
    """The threads that called fsync, in order; each call fails when `fail`."""
    calls: list[str] = []
    real = os.fsync

    def watched(fd: int) -> None:
        calls.append(threading.current_thread().name)
        if fail:
            raise OSError(5, "Input/output error")
        real(fd)

    monkeypatch.setattr(os, "fsync", watched)
    return calls


def test_a_failed_row_write_closes_the_file_without_a_sync(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The disk just refused the row: its error is what the caller gets, not a sync's."""
    p = tmp_path / "w.csv"
    w = CsvWriter(p)
    w.open()
    calls = _watch_fsync(monkeypatch, fail=True)

    def full(fd: int, data: object) -> int:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(os, "write", full)
    with pytest.raises(OSError, match="No space left"):
        w.write(_rec(1))
    assert calls == [] and w.sync_error is None and w._fd is None
    assert p.read_text() == HEADER


def test_close_syncs_once_in_the_caller_and_keeps_a_failed_sync_without_raising(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    p = tmp_path / "w.csv"
    calls = _watch_fsync(monkeypatch, fail=True)
    w = CsvWriter(p)
    w.open()
    w.close()  # no row was written: the background thread never synced
    assert calls == [threading.current_thread().name]
    assert str(w.sync_error) == "[Errno 5] Input/output error"
    w.close()  # closed already: nothing more
    assert len(calls) == 1
    w = CsvWriter(p)
    w.open()
    w.close(sync=False)
    assert len(calls) == 1 and w.sync_error is None


def test_close_does_not_sync_again_while_a_sync_in_flight_has_not_ended(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    began, release = threading.Event(), threading.Event()
    calls: list[str] = []

    def held(fd: int) -> None:
        calls.append(threading.current_thread().name)
        began.set()
        assert release.wait(10)

    monkeypatch.setattr(os, "fsync", held)
    monkeypatch.setattr(writer, "STOP_WAIT_S", 0.05)
    p = tmp_path / "w.csv"
    w = CsvWriter(p)
    w.open()
    w.write(_rec(1))
    assert began.wait(10)  # the background sync has begun (and is held)
    w.close()  # waits 0.05 s for it, then closes without a sync of its own
    assert calls == ["csv-sync"] and w._fd is None
    release.set()


def test_rows_that_keep_coming_are_synced_again_after_the_interval(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    synced = threading.Semaphore(0)
    calls: list[str] = []
    real = os.fsync

    def counted(fd: int) -> None:
        calls.append(threading.current_thread().name)
        real(fd)
        synced.release()

    monkeypatch.setattr(os, "fsync", counted)
    p = tmp_path / "w.csv"
    w = CsvWriter(p, sync_every_s=0.0)
    w.open()
    assert w._syncer is not None and w._syncer._thread.daemon  # never holds the exit up
    w.write(_rec(1))
    assert synced.acquire(timeout=10)
    w.write(_rec(2))  # after the interval (0 s): a second background sync
    assert synced.acquire(timeout=10)
    w.close()
    assert calls == ["csv-sync", "csv-sync", threading.current_thread().name]


def test_a_new_file_is_readable_and_writable_as_the_umask_allows_and_never_executable(
    tmp_path: Path,
) -> None:
    p = tmp_path / "w.csv"
    old = os.umask(0o002)
    try:
        w = CsvWriter(p)
        w.open()
        w.close()
    finally:
        os.umask(old)
    assert p.stat().st_mode & 0o777 == 0o664


def test_a_writer_not_yet_open_writes_nothing_and_closes_as_a_no_op(tmp_path: Path) -> None:
    p = tmp_path / "w.csv"
    w = CsvWriter(p)
    assert (w.repaired, w.sync_error) == (None, None)
    w.close()  # never opened: nothing to stop, sync or close
    with pytest.raises(AssertionError, match=r"^open\(\) first$"):
        w.write(_rec(1))
    assert not p.exists()


def test_a_close_that_fails_is_not_raised(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The rows are written and synced: an error of the last close(2) (EIO on a network
    disk) is no reason to fail the run."""
    p = tmp_path / "w.csv"
    w = CsvWriter(p)
    w.open()
    w.write(_rec(1))
    fd = w._fd
    assert fd is not None
    real_close = os.close

    def failing(n: int) -> None:
        real_close(n)
        raise OSError(5, "Input/output error")

    monkeypatch.setattr(os, "close", failing)
    w.close()
    assert w._fd is None and w.sync_error is None
    assert len(p.read_text().splitlines()) == 2


def test_a_background_sync_that_failed_is_kept_by_close_without_a_write_after_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    real = os.fsync

    def failing_in_background(fd: int) -> None:
        if threading.current_thread().name == "csv-sync":
            raise OSError(5, "Input/output error")
        real(fd)

    monkeypatch.setattr(os, "fsync", failing_in_background)
    p = tmp_path / "w.csv"
    w = CsvWriter(p)
    w.open()
    w.write(_rec(1))
    assert w._syncer is not None
    w._syncer._thread.join(10)  # the sync failed: the thread has ended
    assert w.sync_error is None  # no write since to raise it
    w.close()  # its own sync succeeds; the failed one is kept
    assert str(w.sync_error) == "[Errno 5] Input/output error"


def test_a_file_whose_first_line_is_not_text_is_refused_as_another_header(tmp_path: Path) -> None:
    """Not a UnicodeDecodeError out of open(): `--csv` on such a file said nothing else."""
    p = tmp_path / "bin.csv"
    p.write_bytes(b"\xff\xfe\x00binary\n")
    with pytest.raises(ResultsError) as e:
        CsvWriter(p).open()
    assert str(e.value) == f"refusing to append to {p}: its header differs; choose another --csv path"
    assert p.read_bytes() == b"\xff\xfe\x00binary\n"


def test_a_one_byte_file_is_an_existing_file_with_another_header(tmp_path: Path) -> None:
    p = tmp_path / "one.csv"
    p.write_bytes(b"\n")
    with pytest.raises(ResultsError, match=r"its header differs; choose another --csv path$"):
        CsvWriter(p).open()
    assert p.read_bytes() == b"\n"
