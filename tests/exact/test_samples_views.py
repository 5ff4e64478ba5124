"""A run's samples as columns, and views of them: positions, arms, settle rows.

The run below is 7 rows written by hand; which positions each view holds is read off
the plan (position i is row i, latency 100 + i).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest

import halospec_tui.results.samples as samples_module
from halospec_tui.events import StepRecord
from halospec_tui.results.reader import iter_runs
from halospec_tui.results.samples import Samples
from halospec_tui.results.writer import CsvWriter
from halospec_tui.stats import StepSample

# (arm, K, settle) of each row.
PLAN = [
    ("fixed_2", 2, True), ("fixed_2", 2, False), ("nospec", 0, False), ("fixed_2", 2, False),
    ("adaptive", 3, True), ("adaptive", 3, False), ("nospec", 0, False),
]  # fmt: skip


def _expected(i: int) -> StepSample:
    arm, k, settle = PLAN[i]
    return StepSample(arm, k, True, 100 + i, 64, drafted=None if k == 0 else 8 + i,
                      phase="steady", settle=settle, timestamp=f"t{i}")  # fmt: skip


def _run(tmp_path: Path) -> Samples:
    p = tmp_path / "s.csv"
    w = CsvWriter(p)
    w.open()
    for i, (arm, k, settle) in enumerate(PLAN):
        w.write(StepRecord(i + 1, i + 1, arm, "steady", k, True, 100 + i, 64, timestamp=f"t{i}",
                           drafted=None if k == 0 else 8 + i, settle=settle))  # fmt: skip
    w.close()
    (run,) = iter_runs(p)
    return run.samples


@pytest.mark.parametrize("build_rows", [1, 2, 3, 4096])
def test_every_sample_is_built_whatever_the_slice_it_is_built_in(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, build_rows: int
) -> None:
    monkeypatch.setattr(samples_module, "BUILD_ROWS", build_rows)
    run = _run(tmp_path)
    assert len(run) == 7 and run.at is None
    assert list(run) == [_expected(i) for i in range(7)]
    assert run[6] == _expected(6) and run[2:4] == [_expected(2), _expected(3)]


def test_the_measured_view_holds_the_rows_that_are_not_settle_rows(tmp_path: Path) -> None:
    run = _run(tmp_path)
    measured = run.measured()
    assert measured.at is not None and measured.at.tolist() == [1, 2, 3, 5, 6]
    assert list(measured) == [_expected(i) for i in (1, 2, 3, 5, 6)]
    assert len(measured) == 5
    assert measured.column("latency_ms").tolist() == [101, 102, 103, 105, 106]
    assert measured.column("drafted").tolist() == [9, -1, 11, 13, -1]  # -1: none


def test_views_by_arm_in_first_seen_order_and_their_measured_rows(tmp_path: Path) -> None:
    run = _run(tmp_path)
    groups = run.by_arm_views()
    assert list(groups) == ["fixed_2", "nospec", "adaptive"]
    assert {a: v.at.tolist() for a, v in groups.items() if v.at is not None} == {
        "fixed_2": [0, 1, 3], "nospec": [2, 6], "adaptive": [4, 5]
    }  # fmt: skip
    settled = groups["adaptive"].measured()  # a view's measured rows: positions in the run
    assert settled.at is not None and settled.at.tolist() == [5]
    assert list(settled) == [_expected(5)]
    again = run.measured().by_arm_views()
    assert {a: v.at.tolist() for a, v in again.items() if v.at is not None} == {
        "fixed_2": [1, 3], "nospec": [2, 6], "adaptive": [5]
    }  # fmt: skip


def test_a_view_keeps_its_positions_as_32_bit_ints_as_the_columns_keep_theirs(
    tmp_path: Path,
) -> None:
    """Positions are the views' memory, one per row held (samples.py: 32-bit columns)."""
    run = _run(tmp_path)
    measured = run.measured()
    assert measured.at is not None and measured.at.dtype == np.int32
    for view in (*run.by_arm_views().values(), *measured.by_arm_views().values()):
        assert view.at is not None and view.at.dtype == np.int32
    assert run.column("latency_ms").dtype == np.int32


def test_each_sample_is_built_once_whatever_the_slices(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """7 rows built in slices of 2: 7 samples built, none twice."""
    run = _run(tmp_path)
    built: list[StepSample] = []

    def counted(*args: Any) -> StepSample:
        built.append(StepSample(*args))
        return built[-1]

    monkeypatch.setattr(samples_module, "BUILD_ROWS", 2)
    monkeypatch.setattr(samples_module, "StepSample", counted)
    assert list(run) == [_expected(i) for i in range(7)]
    assert built == [_expected(i) for i in range(7)]


def test_equal_whole_numbers_of_a_slice_share_one_int_object(tmp_path: Path) -> None:
    """samples.py: one int object per value in the slice, not one per row (memory)."""
    p = tmp_path / "same.csv"
    w = CsvWriter(p)
    w.open()
    for g in (1, 2, 3):
        w.write(StepRecord(g, g, "fixed_2", "steady", 2, True, 5000, 640, drafted=1000))
    w.close()
    (run,) = iter_runs(p)
    a, b, c = run.samples
    assert a.latency_ms == 5000 and a.latency_ms is b.latency_ms is c.latency_ms
    assert a.tokens is b.tokens is c.tokens and a.drafted is b.drafted is c.drafted
