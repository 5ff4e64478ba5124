"""A file split into runs, and the warning when one run id's rows are split.

Rows are (global_step, run_id); row i of a plan is on line i + 2 (line 1: the header)
and has latency 100 + i, so each run's rows can be named by their latencies. A run
starts where global_step does not grow or run_id changes; the expected splits below
are worked out by hand from the plans. Every case is read in chunks of 1, 2, 3 rows
and of the default size: where the chunks fall must change nothing.
"""

from __future__ import annotations

from pathlib import Path

import pytest

import halospec_tui.results.reader as reader
from halospec_tui.events import StepRecord
from halospec_tui.results.reader import iter_rows, iter_runs, read_runs
from halospec_tui.results.writer import CsvWriter

CHUNKS = [1, 2, 3, 1024]


def _file(p: Path, plan: list[tuple[int, str]]) -> Path:
    w = CsvWriter(p)
    w.open()
    for i, (g, rid) in enumerate(plan):
        w.write(StepRecord(g, g, "fixed_1", "steady", 1, True, 100 + i, 64, run_id=rid))
    w.close()
    return p


def _runs(p: Path) -> tuple[list[tuple[int, str, list[int]]], list[str]]:
    """(index, run id, latencies) of each run by read_runs, and the warnings; iter_runs
    must find the same runs and warn the same."""
    said: list[str] = []
    runs = [(r.index, r.run_id, [s.latency_ms for s in r.samples]) for r in read_runs(p, said.append)]
    said_too: list[str] = []
    by_columns = [
        (r.index, r.run_id, r.samples.column("latency_ms").tolist())
        for r in iter_runs(p, said_too.append)
    ]
    assert by_columns == runs and said_too == said
    assert [r.rows for r in iter_runs(p)] == [len(lat) for _, _, lat in runs]
    return runs, said


@pytest.fixture(params=CHUNKS)
def chunk_rows(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> int:
    monkeypatch.setattr(reader, "CHUNK_ROWS", request.param)
    return int(request.param)


def test_a_step_that_does_not_grow_within_a_run_splits_it_with_one_warning(
    tmp_path: Path, chunk_rows: int
) -> None:
    p = _file(tmp_path / "a.csv", [(1, "A"), (2, "A"), (5, "A"), (3, "A"), (4, "A"), (2, "A")])
    runs, said = _runs(p)
    assert runs == [(1, "A", [100, 101, 102]), (2, "A", [103, 104]), (3, "A", [105])]
    assert said == [  # line 5: 3 after 5; line 7 (2 after 4) is A's second split: no warning
        f"{p}:5: rows out of order: global_step 3 follows 5 within run A; "
        "read as another run from here"
    ]


def test_an_equal_step_starts_a_run_too(tmp_path: Path, chunk_rows: int) -> None:
    p = _file(tmp_path / "e.csv", [(1, "A"), (1, "A"), (2, "A")])
    runs, said = _runs(p)
    assert runs == [(1, "A", [100]), (2, "A", [101, 102])]
    assert said == [
        f"{p}:3: rows out of order: global_step 1 follows 1 within run A; "
        "read as another run from here"
    ]


def test_a_run_id_that_comes_back_is_named_with_where_it_was_first_seen(
    tmp_path: Path, chunk_rows: int
) -> None:
    p = _file(tmp_path / "b.csv", [(1, "A"), (2, "A"), (3, "B"), (4, "A"), (5, "B"), (6, "A")])
    runs, said = _runs(p)
    assert runs == [
        (1, "A", [100, 101]), (2, "B", [102]), (3, "A", [103]), (4, "B", [104]), (5, "A", [105])
    ]  # fmt: skip
    assert said == [
        f"{p}:5: rows out of order: run A (first seen at line 2) comes back after run B; "
        "read as another run from here",
        f"{p}:6: rows out of order: run B (first seen at line 4) comes back after run A; "
        "read as another run from here",
    ]


def test_a_run_that_comes_back_after_rows_of_no_run_id_names_that_run_as_a_question_mark(
    tmp_path: Path, chunk_rows: int
) -> None:
    p = _file(tmp_path / "q.csv", [(1, ""), (1, "A"), (2, ""), (1, ""), (2, "A")])
    runs, said = _runs(p)
    assert runs == [(1, "", [100]), (2, "A", [101]), (3, "", [102]), (4, "", [103]), (5, "A", [104])]
    assert said == [  # rows of no run id restart freely (the original's CSV): no warning
        f"{p}:6: rows out of order: run A (first seen at line 3) comes back after run ?; "
        "read as another run from here"
    ]


def test_runs_in_order_split_where_the_id_changes_or_the_step_restarts_without_a_warning(
    tmp_path: Path, chunk_rows: int
) -> None:
    plan = [(1, "A"), (2, "A"), (3, "A"), (1, "B"), (5, "C"), (6, "C"), (7, "D"), (1, ""), (2, "")]
    p = _file(tmp_path / "o.csv", plan)
    runs, said = _runs(p)
    assert runs == [
        (1, "A", [100, 101, 102]), (2, "B", [103]), (3, "C", [104, 105]), (4, "D", [106]),
        (5, "", [107, 108]),
    ]  # fmt: skip
    assert said == []


def test_out_of_order_rows_are_read_as_runs_without_a_warning_when_none_is_asked(
    tmp_path: Path, chunk_rows: int
) -> None:
    p = _file(tmp_path / "n.csv", [(1, "A"), (2, "B"), (3, "A"), (2, "A")])
    assert [(r.index, r.run_id, len(r.rows)) for r in read_runs(p)] == [
        (1, "A", 1), (2, "B", 1), (3, "A", 1), (4, "A", 1)
    ]  # fmt: skip
    assert [(r.index, r.run_id, r.rows) for r in iter_runs(p)] == [
        (1, "A", 1), (2, "B", 1), (3, "A", 1), (4, "A", 1)
    ]  # fmt: skip
    assert [(n, row["run_id"], row["global_step"]) for n, row in iter_rows(p)] == [
        (2, "A", "1"), (3, "B", "2"), (4, "A", "3"), (5, "A", "2")
    ]  # fmt: skip
