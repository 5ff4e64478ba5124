"""A row read back as a sample: every field the sample holds, by each of the three
paths (the live run's `sample_from_record`, `read_runs`' rows, `iter_runs`' columns).

The expected samples are written out field by field from the records' values (no CSV
in between): the CSV spells "fixed_04" as written, and reading it gives the canonical
"fixed_4"; an empty cell or a column the file lacks reads as the field's "none".
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from halospec_tui.events import StepRecord
from halospec_tui.results.reader import iter_runs, read_runs, sample_from_record, sample_from_row
from halospec_tui.results.writer import CsvWriter
from halospec_tui.stats import StepSample

FULL = StepRecord(
    7, 3, "fixed_04", "load", 4, True, 1234, 64, timestamp="2026-03-01T10:00:00.000+00:00",
    run_id="R", actuator="request", reload_ms=250, drafted=40, accepted=31, predicted_ms=512.5,
    predicted_n=60, round=2, block_pos=1, settle=True, prompt_class="structured",
    server_kind="llama-server", condition="memory", concurrency=4, client=2, step_ms=900,
)  # fmt: skip
FULL_SAMPLE = StepSample(
    arm="fixed_4", draft_length=4, success=True, latency_ms=1234, tokens=64, drafted=40,
    accepted=31, predicted_n=60, predicted_ms=512.5, reload_ms=250, phase="load", round=2,
    settle=True, actuator="request", timestamp="2026-03-01T10:00:00.000+00:00",
    prompt_class="structured", server_kind="llama-server", condition="memory", concurrency=4,
    step_ms=900,
)  # fmt: skip
# The same step with every optional field left as "none".
BARE = StepRecord(8, 4, "nospec", "recovery", 0, False, 0, 0, run_id="R")
BARE_SAMPLE = StepSample("nospec", 0, False, 0, 0, phase="recovery")


def _written(p: Path, records: list[StepRecord]) -> Path:
    w = CsvWriter(p)
    w.open()
    for r in records:
        w.write(r)
    w.close()
    return p


def test_a_record_becomes_the_sample_of_every_field_it_holds() -> None:
    assert sample_from_record(FULL) == FULL_SAMPLE
    assert sample_from_record(BARE) == BARE_SAMPLE


def test_every_field_comes_back_from_the_file_by_rows_and_by_columns(tmp_path: Path) -> None:
    p = _written(tmp_path / "r.csv", [FULL, BARE])  # global_step 7 then 8: one run
    (run,) = read_runs(p)
    assert run.samples == [FULL_SAMPLE, BARE_SAMPLE]
    (columns,) = iter_runs(p)
    assert list(columns.samples) == [FULL_SAMPLE, BARE_SAMPLE]
    assert (columns.index, columns.run_id, columns.rows) == (1, "R", 2)


def test_a_row_of_the_original_eight_columns_reads_every_other_field_as_none(
    tmp_path: Path,
) -> None:
    p = tmp_path / "o.csv"
    p.write_text(
        "global_step,step,mode,phase,draft_length,success,latency_ms,tokens\n"
        "1,1,fixed_3,recovery,3,1,812,64\n"
        "2,2,nospec,steady,0,0,0,0\n"
    )
    expected = [
        StepSample("fixed_3", 3, True, 812, 64, phase="recovery"),
        StepSample("nospec", 0, False, 0, 0, phase="steady"),
    ]
    (run,) = read_runs(p)
    assert run.run_id == "" and run.samples == expected
    (columns,) = iter_runs(p)
    assert list(columns.samples) == expected
    assert (columns.index, columns.run_id, columns.rows) == (1, "", 2)
    view = columns.samples  # a column the file lacks: one "none" per row, no more
    for field in ("drafted", "accepted", "predicted_n", "reload_ms", "round", "concurrency",
                  "step_ms"):  # fmt: skip
        assert view.column(field).tolist() == [-1, -1], field
    assert np.isnan(view.column("predicted_ms")).tolist() == [True, True]
    assert view.column("settle").tolist() == [False, False]
    names = view.columns.names
    for field in ("actuator", "prompt_class", "server_kind", "condition"):
        assert [names[c] for c in view.column(field).tolist()] == ["", ""], field
    assert [names[c] for c in view.column("arm").tolist()] == ["fixed_3", "nospec"]
    assert [names[c] for c in view.column("phase").tolist()] == ["recovery", "steady"]


def test_sample_from_row_reads_a_row_that_leaves_optional_columns_out() -> None:
    row = {"mode": "fixed_2", "phase": "load", "draft_length": "2", "success": "1",
           "latency_ms": "90", "tokens": "8", "drafted": "6", "concurrency": "3"}  # fmt: skip
    assert sample_from_row(row) == StepSample(
        "fixed_2", 2, True, 90, 8, drafted=6, phase="load", concurrency=3
    )
    row |= {"drafted": "", "concurrency": "", "actuator": "", "predicted_ms": "0"}
    assert sample_from_row(row) == StepSample(
        "fixed_2", 2, True, 90, 8, predicted_ms=0.0, phase="load"
    )
