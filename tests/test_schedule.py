"""The schedule's prompts for settle steps, pinned with numbers worked out by hand."""

from __future__ import annotations

from halospec_tui.schedule import prompt_index, settle_prompt_index


def test_settle_prompts_are_one_per_round_and_settle_step_from_10000_on():
    # 10,000 + round * settle + step: with 2 settle steps, round 1 takes 10,003 and
    # 10,004, round 2 10,005 and 10,006, round 3 10,007 and 10,008
    got = [settle_prompt_index(r, 2, i) for r in (1, 2, 3) for i in (1, 2)]
    assert got == [10_003, 10_004, 10_005, 10_006, 10_007, 10_008]
    assert [settle_prompt_index(r, 1, 1) for r in (1, 5, 12)] == [10_002, 10_006, 10_013]
    assert settle_prompt_index(4, 3, 3) == 10_015
    # out of the measured prompts' way: a round's first measured prompt is far below
    assert settle_prompt_index(1, 1, 1) > prompt_index(9_000, 1_000)
