"""The results CSV's columns and a record's cells, exactly.

The header is the file format: files written before carry it, and CsvWriter refuses
to append to a file whose header differs. So it is written out here in full, not
derived: the original's 8 columns, then StepRecord's further fields in their order,
`arm` spelled `mode` as the original spells it.
"""

from __future__ import annotations

import math

from halospec_tui.events import StepRecord
from halospec_tui.results.schema import (
    COLUMNS,
    ORIGINAL_COLUMNS,
    _cell,
    one_line,
    record_cells,
    record_row,
)

HEADER = (
    "global_step,step,mode,phase,draft_length,success,latency_ms,tokens,"
    "timestamp,run_id,ema_ms,low_ms,high_ms,actuator,confirmed_k,reload_ms,drafted,accepted,"
    "acceptance,ttft_ms,prompt_ms,predicted_ms,predicted_n,cpu_percent,server_cpu_percent,"
    "prompt_id,attempts,error,round,block_pos,settle,prompt_class,tokens_reported,"
    "drafting_shared,server_kind,load_gbps,machine_gbps,condition,concurrency,client,step_ms"
)


def test_the_header_is_the_original_eight_then_every_further_field() -> None:
    assert ",".join(COLUMNS) == HEADER
    assert tuple(HEADER.split(",")[:8]) == ORIGINAL_COLUMNS


def test_line_breaks_become_one_space_each() -> None:
    assert one_line("a\r\nb\rc\nd") == "a b c d"
    assert one_line("\r\n\r\n") == "  "
    assert one_line("plain, \"quoted\"") == "plain, \"quoted\""


def test_a_float_cell_has_at_most_three_decimals_and_no_trailing_zeros() -> None:
    assert [_cell(v) for v in (0.7, 2.5, 1.23456, 100.0, 0.0, -0.0, 10.05, 1234.5678)] == [
        "0.7", "2.5", "1.235", "100", "0", "-0", "10.05", "1234.568"
    ]  # fmt: skip
    assert _cell(math.nan) == ""  # no value, as None


def test_cells_of_other_kinds() -> None:
    assert [_cell(v) for v in (None, True, False, 0, 17, "a\nb", "")] == [
        "", "1", "0", "0", "17", "a b", ""
    ]  # fmt: skip


def test_a_record_is_its_cells_in_the_header_order() -> None:
    r = StepRecord(
        12, 3, "fixed_4", "load", 4, False, 0, 0, timestamp="t", run_id="R", ema_ms=812.25,
        low_ms=700, high_ms=900, actuator="request", confirmed_k=4, reload_ms=120, drafted=40,
        accepted=31, acceptance=0.775, ttft_ms=50.5, prompt_ms=12.0, predicted_ms=512.125,
        predicted_n=60, cpu_percent=33.3333, server_cpu_percent=0.0, prompt_id=9, attempts=2,
        error="HTTP 500:\nboom", round=2, block_pos=1, settle=True, prompt_class="open",
        tokens_reported=False, drafting_shared=True, server_kind="sim", load_gbps=1.5,
        machine_gbps=math.nan, condition="cpu", concurrency=4, client=2, step_ms=950,
    )  # fmt: skip
    cells = [
        "12", "3", "fixed_4", "load", "4", "0", "0", "0", "t", "R", "812.25", "700", "900",
        "request", "4", "120", "40", "31", "0.775", "50.5", "12", "512.125", "60", "33.333",
        "0", "9", "2", "HTTP 500: boom", "2", "1", "1", "open", "0", "1", "sim", "1.5", "",
        "cpu", "4", "2", "950",
    ]  # fmt: skip
    assert record_cells(r) == cells


def test_a_record_row_is_its_cells_by_column() -> None:
    r = StepRecord(5, 2, "nospec", "steady", 0, True, 812, 64, run_id="R", ema_ms=1.25)
    row = record_row(r)
    assert list(row) == HEADER.split(",")
    assert [row[c] for c in ("global_step", "step", "mode", "draft_length", "run_id", "ema_ms")] == [
        "5", "2", "nospec", "0", "R", "1.25"
    ]  # fmt: skip
    assert row["error"] == "" and row["attempts"] == "1" and row["settle"] == "0"
