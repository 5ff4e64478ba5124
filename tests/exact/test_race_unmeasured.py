"""An arm that has not yet shared a round with another: their pair has no bound at all.

A pair that never ran in the same round has no mean (nan) and an unbounded sequence;
its lower bound is minus infinity. So no arm is certified against a survivor it was
never measured with, nothing is dropped by such a survivor, and neither depends on the
order in which the arms were named.
"""

import math

import pytest

from halospec_tui.race import Figures, Race, RaceConfig


def run(order: tuple[str, ...], rounds: int, pooled: bool) -> Race:
    """A and C (equal speed, +-0.1% noise) run every round; B never gets a measured block."""
    race = Race({a: k for k, a in enumerate(order, start=1)}, RaceConfig(pooled=pooled))
    for r in range(1, rounds + 1):
        s = 1 if r % 2 else -1
        race.add_round(r, {"A": Figures(100 * math.exp(0.001 * s), 1000.0, 4),
                           "B": Figures(0.0, 1000.0, 4),
                           "C": Figures(100.0, 1000.0, 4)})  # fmt: skip
    return race


@pytest.mark.parametrize("pooled", [False, True])
@pytest.mark.parametrize("order", [("A", "B", "C"), ("C", "B", "A"), ("B", "A", "C")])
def test_no_arm_is_certified_against_a_survivor_never_measured(
    order: tuple[str, ...], pooled: bool
) -> None:
    st = run(order, 8, pooled).status
    assert st.survivors == order
    assert dict(st.epsilon) == {"A": math.inf, "B": math.inf, "C": math.inf}
    assert not st.decisive
    # nothing certified at all: the recommendation is the fastest on the shared rounds
    # (A and C share every round; B has none and is left out)
    assert st.best == st.recommended


@pytest.mark.parametrize("order", [("B", "A", "J"), ("A", "B", "J"), ("J", "B", "A")])
def test_an_unmeasured_arm_does_not_shield_a_slow_arm_from_its_drop(order: tuple[str, ...]) -> None:
    """J is 30% slower than A in every round; B never runs. J goes at round 4 (own
    variances: 3 df) whatever the order of the names."""
    race = Race({a: k for k, a in enumerate(order, start=1)}, RaceConfig(pooled=False))
    for r in range(1, 5):
        s = 1 if r % 2 else -1
        st = race.add_round(r, {"A": Figures(100.0, 1000.0, 4),
                                "J": Figures(70 * math.exp(0.01 * s), 1000.0, 4)})  # fmt: skip
    assert [(d.arm, d.by, d.round) for d in st.dropped] == [("J", "A", 4)]
