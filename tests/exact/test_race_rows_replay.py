"""The race replayed from rows (race_rows.py): the screen, who races, the race's status.

The screen's rounds are built from a model with a known answer: acceptance a = 0.5,
t0 = 10 ms per target pass, a pass with K drafts costing t0 (1 + 0.25 K). Then a
pass yields (1 - a^(K+1)) / (1 - a) tokens, and per 16 passes (256 for K = 8):
  nospec: 100 tokens in 1000 ms (100 tok/s);
  K = 2: 28 tokens (12 accepted of 32 drafted) in 16 x 15 ms = 240 ms;
  K = 8: 511 tokens (255 accepted of 2048 drafted) in 256 x 30 ms = 7680 ms.
The model then predicts, per K: 100, 120, 116.7, 107.1, 96.9, ... tok/s, and the
middle K (2) is met exactly, so the screen keeps nospec and the three fastest
predicted K (1, 2, 4) and leaves K = 8 out.

The race's status is checked against a `Race` fed by hand with each round's figures
(tokens, ms and steps summed from the rows written out here).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import pytest

from halospec_tui.arms import fixed_k
from halospec_tui.race import Figures, Race, RaceConfig, RaceStatus
from halospec_tui.race_rows import Block, replay, screen_of
from halospec_tui.screen import Screen
from halospec_tui.stats import StepSample

CONFIG = RaceConfig(tolerance=0.1, drop_from=6)  # no arm dropped in these 5 rounds
ARMS = ["nospec", "fixed_1", "fixed_2", "fixed_4", "fixed_8", "adaptive"]
RACED = ("nospec", "fixed_1", "fixed_2", "fixed_4", "adaptive")  # the screen leaves fixed_8 out
# (tokens, ms, drafted, accepted) of one step
TRIO = {"nospec": (100, 1000, 0, 0), "fixed_2": (28, 240, 32, 12), "fixed_8": (511, 7680, 2048, 255)}
# rounds after the screen: arm -> its steps (tokens, ms); fixed_1 runs two steps in round 4
LATER: dict[int, dict[str, list[tuple[int, int]]]] = {
    3: {"nospec": [(100, 1010)], "fixed_1": [(120, 990)], "fixed_2": [(117, 1000)],
        "fixed_4": [(97, 1000)], "adaptive": [(110, 1000)]},
    4: {"nospec": [(100, 990)], "fixed_1": [(60, 500), (60, 520)], "fixed_2": [(116, 995)],
        "fixed_4": [(98, 1010)], "adaptive": [(112, 1000)]},
    5: {"nospec": [(101, 1000)], "fixed_1": [(121, 1000)], "fixed_2": [(118, 1010)],
        "fixed_4": [(96, 990)], "adaptive": [(109, 1000)]},
}  # fmt: skip


def model_tps(k: int) -> float:
    """The model's tokens/s at K (a = 0.5, t0 = 10 ms, pass cost 1 + 0.25 K)."""
    return 1000.0 * (1 - 0.5 ** (k + 1)) / 0.5 / (10.0 * (1 + 0.25 * k))


def step(arm: str, rnd: int, tokens: int, ms: int, **kw: Any) -> StepSample:
    return StepSample(arm=arm, draft_length=fixed_k(arm) or 0, success=True, latency_ms=ms,
                      tokens=tokens, round=rnd, **kw)  # fmt: skip


def trio_rows(rnd: int, trio: Mapping[str, tuple[int, int, int, int]] = TRIO) -> list[StepSample]:
    return [step(a, rnd, t, ms, drafted=d, accepted=acc) for a, (t, ms, d, acc) in trio.items()]


def later_rows(rounds: Sequence[int] = (3, 4, 5)) -> list[StepSample]:
    return [step(a, r, t, ms) for r in rounds for a, steps in LATER[r].items() for t, ms in steps]


def reference(arms: Sequence[str], rounds: Sequence[int], config: RaceConfig = CONFIG) -> RaceStatus:
    """The race over `arms`, fed by hand: a block is its steps' tokens, ms and count."""
    race = Race({a: fixed_k(a) for a in arms}, config)
    status = race.status
    for r in rounds:
        if r in LATER:
            figs = {a: Figures(sum(t for t, _ in s), sum(ms for _, ms in s), len(s))
                    for a, s in LATER[r].items() if a in arms}  # fmt: skip
        else:
            figs = {a: Figures(t, ms, 1) for a, (t, ms, _, _) in TRIO.items() if a in arms}
        status = race.add_round(r, figs)
    return status


# -- the screen's model ----------------------------------------------------------------
def _blocks(scale: float) -> dict[str, Block]:
    return {a: Block(t * scale, ms * scale, 1, d * scale, acc * scale) for a, (t, ms, d, acc) in TRIO.items()}


def test_the_screen_fits_the_model_and_predicts_every_k_up_to_the_largest() -> None:
    # fixed_3@t4 races whatever the model says: its K is no candidate of the screen
    out = screen_of([_blocks(1.0), _blocks(2.0)], [*ARMS, "fixed_3@t4"], 0.02)
    assert out.race == (0, 1, 2, 4) and out.fit_ok
    assert out.fit is not None
    assert (out.fit.acceptance, out.fit.t0_ms, out.fit.cost_ratio) == pytest.approx((0.5, 10.0, 0.25))
    assert [k for k, _ in out.predicted] == list(range(9))
    assert [tps for _, tps in out.predicted] == pytest.approx([model_tps(k) for k in range(9)])
    assert out.miss == pytest.approx(0.0, abs=1e-12)


def test_the_screen_reads_only_the_arms_it_covers() -> None:
    # a thread variant of K = 2, ten times slower, is no figure of K = 2
    slow = {**_blocks(1.0), "fixed_2@t4": Block(28, 2400, 1, 32, 12)}
    out = screen_of([slow, {**_blocks(2.0), "fixed_2@t4": Block(56, 4800, 1, 64, 24)}], ARMS, 0.02)
    assert out.race == (0, 1, 2, 4) and out.fit_ok


def test_the_screen_without_draft_counters_races_every_k() -> None:
    bare = {a: Block(b.tokens, b.ms, 1, 0.0, 0.0) for a, b in _blocks(1.0).items()}
    assert screen_of([bare, bare], ARMS, 0.02) == Screen(
        (0, 1, 2, 4, 8), (), False, "no draft counters to fit acceptance from")


# -- the replay ---------------------------------------------------------------------------
def test_a_screen_is_recognised_from_the_rows_alone() -> None:
    rows = [*trio_rows(1), *trio_rows(2), *later_rows()]
    rep = replay(rows, CONFIG)
    assert rep.screen is not None and rep.screen.race == (0, 1, 2, 4) and rep.screen.fit_ok
    assert [k for k, _ in rep.screen.predicted] == list(range(9))
    assert rep.screened_out == ("fixed_8",)
    assert rep.race.names == RACED
    assert rep.status == reference(RACED, [1, 2, 3, 4, 5])
    assert rep.status == rep.race.status


def test_the_race_runs_with_the_callers_config() -> None:
    rows = [*trio_rows(1), *trio_rows(2), *later_rows()]
    # CONFIG drops nothing before round 6; the default drops the arms some 20% slower
    # than fixed_1 (nospec, fixed_4) by round 5
    assert replay(rows, CONFIG).status.survivors == RACED
    default = replay(rows, RaceConfig()).status
    assert default.survivors == ("fixed_1", "fixed_2", "adaptive")
    assert default == reference(RACED, [1, 2, 3, 4, 5], RaceConfig())


def test_a_live_run_screens_after_its_second_round() -> None:
    rows = [*trio_rows(1), *trio_rows(2)]
    rep = replay(rows, CONFIG, arms=ARMS, screened=True)
    assert rep.screen is not None and rep.screen.race == (0, 1, 2, 4)
    assert rep.race.names == RACED and rep.screened_out == ("fixed_8",)
    assert rep.status == reference(RACED, [1, 2])
    # the same two rounds from a file: no later round shows the screen ended, no screen
    unknown = replay(rows, CONFIG, arms=ARMS)
    assert unknown.screen is None and unknown.screened_out == ()
    assert unknown.race.names == ("nospec", "fixed_1", "fixed_2", "fixed_4", "fixed_8", "adaptive")


def test_a_live_run_races_every_arm_during_its_first_round() -> None:
    rep = replay(trio_rows(1), CONFIG, arms=ARMS, screened=True)
    assert rep.screen is None and rep.screened_out == ()
    assert rep.race.names == ("nospec", "fixed_1", "fixed_2", "fixed_4", "fixed_8", "adaptive")
    every = ("nospec", "fixed_1", "fixed_2", "fixed_4", "fixed_8", "adaptive")
    assert rep.status == reference(every, [1])


def test_a_run_without_a_screen_races_every_arm_whatever_its_rows_look_like() -> None:
    rows = [*trio_rows(1), *trio_rows(2), *later_rows()]
    rep = replay(rows, CONFIG, screened=False)
    every = ("nospec", "fixed_1", "fixed_2", "fixed_4", "fixed_8", "adaptive")
    assert rep.screen is None and rep.screened_out == () and rep.race.names == every
    assert rep.status == reference(every, [1, 2, 3, 4, 5])


def test_the_run_s_arms_race_even_without_rows() -> None:
    rep = replay(later_rows([3]), CONFIG, arms=[*RACED, "fixed_16"], screened=False)
    assert rep.race.names == ("nospec", "fixed_1", "fixed_2", "fixed_4", "fixed_16", "adaptive")
    empty = replay([], CONFIG, arms=["fixed_2", "nospec"])
    assert empty.status == RaceStatus(0, ("nospec", "fixed_2"), (), False, None, None, None, ())
    assert empty.screen is None and empty.screened_out == ()


@pytest.mark.parametrize(
    "lead",
    [
        {**TRIO, "fixed_4": (97, 1000, 40, 20)},  # four arms lead
        {"fixed_1": (120, 1000, 16, 8), "fixed_2": TRIO["fixed_2"], "fixed_8": TRIO["fixed_8"]},
        {"nospec": TRIO["nospec"], "fixed_2": TRIO["fixed_2"], "fixed_8@t4": TRIO["fixed_8"]},
    ],
    ids=["four-arms", "no-nospec", "a-thread-variant"],
)
def test_leading_rounds_that_are_no_screen_trio_show_no_screen(
    lead: dict[str, tuple[int, int, int, int]],
) -> None:
    rows = [*trio_rows(1, lead), *trio_rows(2, lead), *later_rows()]
    rep = replay(rows, CONFIG)
    assert rep.screen is None and rep.screened_out == ()
    assert set(rep.race.names) == {s.arm for s in rows}


def test_leading_rounds_that_differ_show_no_screen() -> None:
    other = {**TRIO, "fixed_4": (97, 1000, 40, 20)}
    del other["fixed_8"]
    rows = [*trio_rows(1), *trio_rows(2, other), *later_rows()]
    rep = replay(rows, CONFIG)
    assert rep.screen is None and rep.screened_out == ()
    assert rep.race.names == ("nospec", "fixed_1", "fixed_2", "fixed_4", "fixed_8", "adaptive")


def test_a_trio_that_keeps_running_alone_is_no_screen() -> None:
    rows = [*trio_rows(1), *trio_rows(2), *trio_rows(3)]
    rep = replay(rows, CONFIG)
    assert rep.screen is None and rep.race.names == ("nospec", "fixed_2", "fixed_8")


def test_concurrent_requests_race_as_one_step_of_their_wall_time() -> None:
    # nospec: two requests at once, 1000 ms for both; fixed_2: one at a time
    rows = [
        step("nospec", 1, 50, 900, concurrency=2, step_ms=1000, predicted_n=50, predicted_ms=400.0),
        step("nospec", 1, 50, 950, concurrency=2, step_ms=1000, predicted_n=50, predicted_ms=450.0),
        step("fixed_2", 1, 120, 1000, predicted_n=120, predicted_ms=600.0),
        step("nospec", 2, 50, 920, concurrency=2, step_ms=1020, predicted_n=50, predicted_ms=410.0),
        step("nospec", 2, 50, 930, concurrency=2, step_ms=1020, predicted_n=50, predicted_ms=420.0),
        step("fixed_2", 2, 118, 1000, predicted_n=118, predicted_ms=590.0),
    ]
    client = Race({"nospec": 0, "fixed_2": 2}, CONFIG)
    client.add_round(1, {"nospec": Figures(100, 1000, 1), "fixed_2": Figures(120, 1000, 1)})
    client.add_round(2, {"nospec": Figures(100, 1020, 1), "fixed_2": Figures(118, 1000, 1)})
    assert replay(rows, CONFIG).status == client.status
    server = Race({"nospec": 0, "fixed_2": 2}, CONFIG)
    server.add_round(1, {"nospec": Figures(100, 850, 2), "fixed_2": Figures(120, 600, 1)})
    server.add_round(2, {"nospec": Figures(100, 830, 2), "fixed_2": Figures(118, 590, 1)})
    assert replay(rows, CONFIG, "server").status == server.status
    assert client.status != server.status
