"""Reading a results file: what is a row, what is torn, what is no results file, with
the exact words (`file:line: reason`) and line numbers counted from the header's 1."""

from __future__ import annotations

from pathlib import Path

import pytest

import halospec_tui.results.reader as reader
from halospec_tui.results.reader import iter_rows, iter_runs, read_runs
from halospec_tui.results.schema import ORIGINAL_COLUMNS, ResultsError

HEAD = ",".join(ORIGINAL_COLUMNS) + "\n"
ROW = "{0},{0},fixed_1,steady,1,1,10{0},64\n".format


def _lines(p: Path) -> list[tuple[int, str]]:
    return [(n, row["latency_ms"]) for n, row in iter_rows(p)]


def _error(p: Path) -> str:
    with pytest.raises(ResultsError) as e:
        list(iter_rows(p))
    with pytest.raises(ResultsError) as again:
        read_runs(p)
    with pytest.raises(ResultsError) as too:
        list(iter_runs(p))
    assert str(again.value) == str(too.value) == str(e.value)
    return str(e.value)


def test_blank_lines_are_no_rows_anywhere(tmp_path: Path) -> None:
    p = tmp_path / "b.csv"
    p.write_text(HEAD + "\n" + ROW(1) + "\n\n" + ROW(2) + "\n")
    assert _lines(p) == [(3, "101"), (6, "102")]


def test_a_header_alone_is_a_file_of_no_runs(tmp_path: Path) -> None:
    p = tmp_path / "h.csv"
    p.write_text(HEAD)
    assert _lines(p) == [] and read_runs(p) == [] and list(iter_runs(p)) == []


def test_a_torn_last_row_is_skipped_and_said_only_to_whoever_asks(tmp_path: Path) -> None:
    p = tmp_path / "t.csv"
    p.write_text(HEAD + ROW(1) + ROW(2)[:-1])  # the last row lacks its newline
    assert _lines(p) == [(2, "101")]
    said: list[str] = []
    assert [len(r.rows) for r in read_runs(p, said.append)] == [1]
    assert said == [f"{p}:3: skipped a torn last row (cut short by a crash or a full disk)"]
    p.write_text(HEAD + ROW(1) + "2,2,fixed_1\n")  # whole line, too few fields
    assert [r.rows for r in iter_runs(p, said.append)] == [1] and len(said) == 2
    assert said[1] == f"{p}:3: skipped a torn last row (cut short by a crash or a full disk)"


def test_a_lone_row_without_its_newline_is_torn_too(tmp_path: Path) -> None:
    p = tmp_path / "o.csv"
    p.write_text(HEAD + ROW(1)[:-1])
    assert _lines(p) == [] and read_runs(p) == []


def test_no_such_file(tmp_path: Path) -> None:
    p = tmp_path / "none.csv"
    assert _error(p) == f"{p}: no such file"


def test_a_header_that_does_not_start_with_the_original_columns(tmp_path: Path) -> None:
    p = tmp_path / "x.csv"
    p.write_text("global_step,step,mode\n1,1,fixed_1\n")
    assert _error(p) == (
        f"{p} is not a results CSV: its header must start with "
        "global_step,step,mode,phase,draft_length,success,latency_ms,tokens"
    )


def test_bytes_that_are_no_utf_8_are_named_with_their_line(tmp_path: Path) -> None:
    p = tmp_path / "u.csv"
    p.write_bytes(b"global_step\xff\n")  # read in one go: the header line is the first
    assert _error(p) == f"{p}:1: not text (invalid start byte)"


def test_a_short_row_before_the_last_is_an_error_with_its_field_count(tmp_path: Path) -> None:
    p = tmp_path / "s.csv"
    p.write_text(HEAD + ROW(1) + "2,2,fixed_1\n" + ROW(3))
    assert _error(p) == f"{p}:3: not a results row (3 fields, the header has 8)"
    p.write_text(HEAD + ROW(1) + ROW(2)[:-1] + ",9\n" + ROW(3))
    assert _error(p) == f"{p}:3: not a results row (9 fields, the header has 8)"


@pytest.mark.parametrize("chunk", [1, 2, 1024])
def test_the_first_bad_row_is_named_whichever_chunk_holds_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, chunk: int
) -> None:
    monkeypatch.setattr(reader, "CHUNK_ROWS", chunk)
    p = tmp_path / "c.csv"
    p.write_text(HEAD + ROW(1) + ROW(2) + ROW(3).replace(",1,10", ",2,10") + ROW(4).replace(",64", ",6x"))
    assert _error(p) == f"{p}:4: not a results row (success='2' must be 0 or 1)"


def test_a_quoted_cell_keeps_its_line_break_exactly(tmp_path: Path) -> None:
    p = tmp_path / "q.csv"
    p.write_bytes(HEAD[:-1].encode() + b",error\r\n1,1,fixed_1,steady,1,1,101,64,\"x\r\ny\"\r\n")
    ((n, row),) = iter_rows(p)
    assert n == 3 and row["error"] == "x\r\ny"  # the row began on line 2, ends on line 3


@pytest.mark.parametrize("chunk", [2, 3])
def test_rows_are_read_a_chunk_of_chunk_rows_at_a_time(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, chunk: int
) -> None:
    monkeypatch.setattr(reader, "CHUNK_ROWS", chunk)
    p = tmp_path / "k.csv"
    p.write_text(HEAD + "".join(ROW(g) for g in range(1, 6)))
    sizes = [len(c.rows) for c in reader._Reader(p, None).chunks()]
    assert sizes == {2: [2, 2, 1], 3: [3, 2]}[chunk]


def test_k_0_of_a_fixed_arm_is_refused_in_a_file_whatever_its_chunk_holds(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    p = tmp_path / "k0.csv"
    bad = "2,2,fixed_2,steady,0,1,102,64\n"
    for rows in ([bad], [ROW(1), bad], [bad, "3,3,nospec,steady,0,1,103,64\n"]):
        p.write_text(HEAD + "".join(rows))
        line = 2 + rows.index(bad)
        assert _error(p) == (
            f"{p}:{line}: not a results row "
            "(draft_length=0 belongs to nospec or an adaptive arm, not 'fixed_2')"
        )


def test_a_condition_that_is_no_load_is_refused_in_a_file(tmp_path: Path) -> None:
    p = tmp_path / "c.csv"
    p.write_text(HEAD[:-1] + ",condition\n" + ROW(1)[:-1] + ",cpu\n" + ROW(2)[:-1] + ",heavy\n"
                 + ROW(3)[:-1] + ",\n")  # fmt: skip
    assert _error(p) == (
        f"{p}:3: not a results row (condition='heavy' is not one of idle, cpu, memory, requests)"
    )
    p.write_text(HEAD[:-1] + ",condition\n" + ROW(1)[:-1] + ",cpu\n" + ROW(3)[:-1] + ",\n")
    assert [row["condition"] for _, row in iter_rows(p)] == ["cpu", ""]
