"""The order in which arms run: sequential (the original), or interleaved rounds.

Interleaved: in every round each remaining arm runs one block of measured steps, in
an order shuffled afresh each round from the seed. Every arm's block in a round uses
the same prompts, and the load timeline is laid on rounds, so every arm meets each
phase in equal measure and drift over the run does not favour whoever ran at a
quiet moment. Pure functions: the runner asks, the schedule answers.
"""

from __future__ import annotations

import random
from collections.abc import Sequence
from dataclasses import dataclass

from halospec_tui.events import Phase

SCHEDULES = ("sequential", "interleaved")


@dataclass(frozen=True)
class Block:
    round: int  # 1-based
    position: int  # 1-based place of the arm in this round's order
    arm: str
    steps: int


def round_order(arms: Sequence[str], seed: int, round_no: int) -> list[str]:
    """The arms in a fresh order for one round, reproducible from (seed, round)."""
    order = list(arms)
    random.Random(seed * 1_000_003 + round_no).shuffle(order)
    return order


def round_blocks(arms: Sequence[str], seed: int, round_no: int, block: int) -> list[Block]:
    return [
        Block(round_no, i + 1, arm, block)
        for i, arm in enumerate(round_order(arms, seed, round_no))
    ]


def grown_block(block: int, arms_at_start: int, arms_left: int, cap: int = 4) -> int:
    """Blocks grow as arms are dropped (up to `cap` times), so a round keeps about its
    length and fewer of its seconds go to reloads and settling."""
    if arms_left <= 0:
        return block
    return block * min(cap, max(1, arms_at_start // arms_left))


def prompt_index(first: int, step_in_block: int) -> int:
    """The run's n-th prompt for a block's step (1-based), counted from the round's
    first prompt: the same for every arm in a round."""
    return first + step_in_block - 1


def settle_prompt_index(round_no: int, settle: int, step_in_settle: int) -> int:
    """The prompt of a block's settle step (1-based): out of the measured prompts' way
    (from 10,000 on), one per round and settle step."""
    return 10_000 + round_no * settle + step_in_settle


def round_phase(round_no: int, load_round: int | None, load_rounds: int) -> Phase:
    """steady before the load rounds, load during them, recovery after (no load: steady)."""
    if load_round is None or load_rounds <= 0 or round_no < load_round:
        return "steady"
    if round_no < load_round + load_rounds:
        return "load"
    return "recovery"
