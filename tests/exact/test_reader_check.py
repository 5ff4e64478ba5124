"""check_row: what a results row may hold, and the exact words for what it may not.

The bounds are the module's (reader.py): global_step and step at most 1,000,000,000,
round at most MAX_ROUNDS = 1000, a condition one of conditions.LOADS.
"""

from __future__ import annotations

import pytest

from halospec_tui.results.reader import check_row
from halospec_tui.results.schema import COLUMNS

# A sound row of every column: 8 original cells, the rest empty.
ROW = dict(zip(COLUMNS, ["1", "1", "fixed_1", "steady", "1", "1", "101", "64"]
               + [""] * (len(COLUMNS) - 8), strict=True))  # fmt: skip


def _message(change: dict[str, str | None]) -> str:
    """check_row's message for ROW with `change` made (None: the column left out)."""
    row = {k: v for k, v in {**ROW, **change}.items() if v is not None}
    with pytest.raises(ValueError) as e:
        check_row(row)
    return str(e.value)


def test_a_huge_step_is_shown_cut_to_40_digits() -> None:
    forty, fortyone = "9" * 40, "9" * 41
    assert _message({"global_step": forty}) == f"global_step={forty} is above 1000000000"
    assert _message({"global_step": fortyone}) == f"global_step={forty}... is above 1000000000"
    assert _message({"step": "1" * 45}) == f"step={'1' * 40}... is above 1000000000"


def test_a_whole_number_one_past_its_bound_is_named_with_the_bound() -> None:
    check_row({**ROW, "step": "1000000000", "global_step": "1000000000"})
    assert _message({"step": "1000000001"}) == "step=1000000001 is above 1000000000"
    assert _message({"draft_length": "17"}) == "draft_length=17 is above 16"


def test_success_left_out_is_shown_empty() -> None:
    assert _message({"success": None}) == "success='' must be 0 or 1"
    assert _message({"success": "yes"}) == "success='yes' must be 0 or 1"


def test_settle_may_be_empty_0_1_or_left_out_and_nothing_else() -> None:
    for settle in ("", "0", "1", None):
        check_row({k: v for k, v in {**ROW, "settle": settle}.items() if v is not None})
    assert _message({"settle": "true"}) == "settle='true' must be 0 or 1"


def test_a_condition_must_be_a_load_or_nothing() -> None:
    for condition in ("", "idle", "cpu", "memory", "requests", None):
        check_row({k: v for k, v in {**ROW, "condition": condition}.items() if v is not None})
    assert _message({"condition": "heavy"}) == (
        "condition='heavy' is not one of idle, cpu, memory, requests"
    )
    assert _message({"condition": "cpu@2"}) == (
        "condition='cpu@2' is not one of idle, cpu, memory, requests"
    )


def test_an_optional_number_may_reach_its_bound_but_not_pass_it() -> None:
    check_row({**ROW, "round": "1000", "concurrency": "16", "predicted_ms": "86400000"})
    assert _message({"round": "1001"}) == "round='1001' is above 1000"
    assert _message({"concurrency": "17"}) == "concurrency='17' is above 16"
    assert _message({"predicted_ms": "86400000.5"}) == "predicted_ms='86400000.5' is above 86400000"


def test_a_count_must_be_whole_but_a_predicted_time_need_not() -> None:
    check_row({**ROW, "predicted_ms": "12.75", "drafted": "3.0"})
    assert _message({"drafted": "2.5"}) == "drafted='2.5' is not a whole number"
    assert _message({"step_ms": "0.1"}) == "step_ms='0.1' is not a whole number"
