"""The D-UCB bandit pinned exactly: its index, discount, sweep order, switching cost.

Expected values are worked out by hand in the comments (square roots and logs to 7
digits), or by a small reference D-UCB written here from the rule in the module's
docstring; found by mutation testing (scripts/mutation.sh).
"""

from __future__ import annotations

import math

import pytest

from halospec_tui.controllers import BanditController, Observation
from halospec_tui.controllers.bandit import ucb_scores
from halospec_tui.controllers.base import ControllerView

NOTE = "measured tokens/s per K"


def obs(k: int, latency_ms: int, tokens: int, reload_ms: int | None = None) -> Observation:
    return Observation(k, True, latency_ms, tokens, reload_ms=reload_ms)


def see(c: BanditController, k: int, latency_ms: int, tokens: int, reload_ms: int | None = None):
    c.observe(k, True, latency_ms, obs(k, latency_ms, tokens, reload_ms))
    return c.next_k()


# -- the index ------------------------------------------------------------------------
def test_ucb_index_by_hand():
    # n = 3; ln 3 = 1.0986123
    # arm 0: 300/2 = 150, /200 = 0.75, + sqrt(0.5 * 1.0986123 / 2) = 0.5240735 -> 1.2740735
    # arm 1: 200/1 / 200 = 1.0, + sqrt(0.5 * 1.0986123 / 1) = 0.7411519 -> 1.7411519
    # arm 2: never tried -> inf
    got = ucb_scores([2.0, 1.0, 0.0], [300.0, 200.0, 0.0], 0.5, 200.0)
    assert got[0] == pytest.approx(1.2740735, abs=1e-7)
    assert got[1] == pytest.approx(1.7411519, abs=1e-7)
    assert got[2] == math.inf


def test_ucb_index_edges():
    # a count of exactly 1e-9 is still untried; just above it is not
    assert ucb_scores([1e-9, 1.0], [5.0, 10.0], 1.0, 10.0)[0] == math.inf
    assert ucb_scores([2e-9, 1.0], [2e-8, 10.0], 0.0, 10.0) == pytest.approx([1.0, 1.0])
    # total count below 1: the log's floor 1 + 1e-9 keeps the bonus real and tiny:
    # 50 / 0.5 / 100 = 1.0, + sqrt(1 * ln(1 + 1e-9) / 0.5) = sqrt(2e-9) = 4.47214e-5
    got = ucb_scores([0.5], [50.0], 1.0, 100.0)
    assert got[0] == pytest.approx(1.0 + 4.47214e-5, abs=1e-9)
    # total count exactly 1: ln(1 + 1e-9) again, not ln 1 = 0 nor anything larger
    assert ucb_scores([1.0], [3.0], 1.0, 3.0)[0] == pytest.approx(1.0 + 3.16228e-5, abs=1e-9)
    # xi = 0: the mean alone
    assert ucb_scores([4.0, 1.0], [8.0, 3.0], 0.0, 4.0) == [0.5, 0.75]
    with pytest.raises(ValueError):
        ucb_scores([1.0, 2.0], [1.0], 0.1, 1.0)  # one sum per count, no less


# -- start, sweep, bookkeeping ------------------------------------------------------
def test_start_is_clamped_into_the_range():
    assert BanditController().next_k() == 4
    assert BanditController(k_start=12).next_k() == 8
    assert BanditController(k_start=-3, k_min=2, k_max=5).next_k() == 2
    assert BanditController(k_start=3, k_min=2, k_max=5).next_k() == 3
    c = BanditController(k_start=12)
    assert c.view() == ControllerView("bandit", 8, None, None, None, (), NOTE)
    assert (c.name, c.ema_ms) == ("bandit", None)
    assert c.notes == []  # the runner logs and clears a controller's notes: the bandit has none


def test_untried_arms_nearest_first_smaller_k_on_a_tie():
    c = BanditController(k_start=5, k_min=2, k_max=7)
    ks = [c.next_k()]
    for _ in range(5):
        ks.append(see(c, ks[-1], 1000, 64))
    # from 5: 4 and 6 are both 1 away -> 4; from 4: 3; from 3: 2; from 2: 6, then 7
    assert ks == [5, 4, 3, 2, 6, 7]


def test_rewards_and_failures_as_the_view_shows_them():
    c = BanditController(k_start=1, k_min=1, k_max=3, discount=1.0)
    c.observe(1, True, 500)  # no observation: 64 tokens -> 64 * 1000 / 500 = 128 tokens/s
    assert c.ema_ms == 500
    assert c.next_k() == 2
    c.observe(2, False, 700)  # a failure counts as a try that earned nothing
    assert c.ema_ms == 500  # only successes move the EMA
    assert c.next_k() == 3
    c.observe(3, True, 250, Observation(3, True, 250, 0))  # 0 tokens reported: 64 assumed
    assert c.ema_ms == pytest.approx(0.4 * 250 + 0.6 * 500)
    # scores (xi 0.002, n 3): 0.5 + 0.0469, 0 + 0.0469, 1 + 0.0469: K 3
    assert c.view() == ControllerView(
        "bandit", 3, None, None, None, ((1, 128.0), (2, 0.0), (3, 256.0)), NOTE
    )


def test_steps_that_earn_nothing_and_out_of_range_k():
    c = BanditController(k_start=1, k_min=1, k_max=2, discount=1.0)
    c.observe(1, True, 0, obs(1, 0, 50))  # a success with no latency: not counted
    assert c.next_k() == 1 and c.view().expected_tps == ()
    c.observe(5, True, 100, obs(5, 100, 50))  # K outside the arms: not counted
    c.observe(5, False, 100)
    assert c.next_k() == 1 and c.view().expected_tps == () and c.ema_ms is None
    c.observe(1, True, 1000, obs(1, 1000, 50))  # 50 tokens in 1 s
    assert c.next_k() == 2 and c.view().expected_tps == ((1, 50.0),)
    c.observe(2, True, 1, obs(2, 1, 3))  # 1 ms is a measurement: 3 tokens -> 3000 tokens/s
    assert c.view().expected_tps == ((1, 50.0), (2, 3000.0)) and c.notes == []


def test_each_failure_counts_once():
    # K 2 failed once, K 1 ran 20 times at 100 tokens/s (no discount, xi 1):
    # n 21, ln 21 = 3.0445224: K 1: 1 + sqrt(3.0445224 / 20) = 1.3901617,
    # K 2: 0 + sqrt(3.0445224 / 1) = 1.7448560: the failed K is tried again
    c = BanditController(k_start=1, k_min=1, k_max=2, discount=1.0, xi=1.0)
    c.observe(2, False, 0)
    for _ in range(20):
        c.observe(1, True, 1000, obs(1, 1000, 100))
    assert c.next_k() == 2
    # a second failure: n 22, ln 22 = 3.0910425: K 1: 1 + sqrt(3.0910425 / 20) = 1.3931312,
    # K 2: sqrt(3.0910425 / 2) = 1.2431899: back to K 1
    c.observe(2, False, 0)
    assert c.next_k() == 1
    assert c.view().expected_tps == ((1, 100.0), (2, 0.0))


# -- discount and exploration, by hand ----------------------------------------------
def test_discount_brings_a_neglected_arm_back():
    c = BanditController(k_start=1, k_min=1, k_max=2, discount=0.5, xi=1.0)
    assert see(c, 1, 1000, 100) == 2  # arm 1: 100 tokens/s; arm 2 untried
    # counts (0.5, 1), sums (50, 200): means 100, 200, scale 200, n 1.5, ln 1.5 = 0.4054651
    # arm 1: 0.5 + sqrt(0.4054651 / 0.5) = 1.4005166; arm 2: 1 + sqrt(0.4054651) = 1.6367614
    assert see(c, 2, 500, 100) == 2
    # counts (0.25, 1.5), sums (25, 300): n 1.75, ln 1.75 = 0.5596158
    # arm 1: 0.5 + sqrt(0.5596158 / 0.25) = 1.9961494; arm 2: 1 + sqrt(0.5596158 / 1.5)
    # = 1.6108005: the neglected arm's bonus has grown past the better arm
    assert see(c, 2, 500, 100) == 1
    assert c.view() == ControllerView("bandit", 1, None, None, None, ((1, 100.0), (2, 200.0)), NOTE)
    # without the discount: counts (1, 2), n 3: 0.5 + 1.0481471 = 1.5481471 against
    # 1 + 0.7411519 = 1.7411519: it stays
    d = BanditController(k_start=1, k_min=1, k_max=2, discount=1.0, xi=1.0)
    assert [see(d, 1, 1000, 100), see(d, 2, 500, 100), see(d, 2, 500, 100)] == [2, 2, 2]


def test_a_count_decayed_to_1e_9_is_untried_again():
    # discount 1e-9: one step turns a count of 1 into exactly 1e-9
    c = BanditController(k_start=2, k_min=1, k_max=3, discount=1e-9)
    assert see(c, 2, 1000, 64) == 1  # 1 and 3 untried, both 1 away: the smaller
    assert see(c, 1, 1000, 64) == 2  # 2's count is now 1e-9: untried, and nearest
    assert c.view().expected_tps == ((1, 64.0),)


def test_equal_scores_go_to_the_smaller_k():
    c = BanditController(k_start=1, k_min=1, k_max=2, discount=1.0, xi=0.0)
    assert see(c, 1, 1000, 100) == 2
    assert see(c, 2, 1000, 100) == 1  # scores 1.0 and 1.0: the smaller K
    assert see(c, 1, 1000, 100) == 1


def test_all_failures_tie_and_go_to_the_smaller_k():
    # a reload was seen but no success yet: no step time, so no switching cost
    c = BanditController(k_start=1, k_min=1, k_max=2, discount=1.0, xi=0.5)
    c.observe(1, False, 0, Observation(1, False, 0, reload_ms=100))
    assert c.next_k() == 2
    c.observe(2, False, 0)
    assert c.next_k() == 1  # scores 0 + equal bonus: the smaller K, at no cost
    assert c.view().expected_tps == ((1, 0.0), (2, 0.0))


# -- switching cost -----------------------------------------------------------------
def _reloaded_bandit(
    horizon: int, reload_ms: int, ms: int = 1000, tokens: tuple[int, int, int] = (100, 125, 50)
) -> BanditController:
    """Arm 1 at 100 tokens/s, then arm 2 (reached with a reload) at 125 and 50, all at
    1000 ms a step: means 100 and 87.5, scores 1.0 and 0.875, a gain of 0.125 for
    leaving the current K, against reload_ms / (horizon * 1000 ms). Other step times
    `ms` with tokens in the same ratio give the same scores."""
    c = BanditController(k_start=1, k_min=1, k_max=2, discount=1.0, xi=0.0, horizon=horizon)
    assert see(c, 1, ms, tokens[0]) == 2
    assert see(c, 2, ms, tokens[1], reload_ms=reload_ms) == 2
    c.observe(2, True, ms, obs(2, ms, tokens[2]))
    return c


def test_switching_cost_rule_at_its_boundary():
    assert _reloaded_bandit(8, 1000).next_k() == 2  # 1000 / 8000 = 0.125: not more: stays
    assert _reloaded_bandit(8, 1001).next_k() == 2
    assert _reloaded_bandit(9, 1000).next_k() == 1  # 1000 / 9000 = 0.111 < 0.125: moves
    assert _reloaded_bandit(8, 999).next_k() == 1
    assert _reloaded_bandit(1, 0).next_k() == 1  # no reload seen: no cost
    # the smallest reload and the shortest step still count: 1 / (8 * 1) = 0.125
    assert _reloaded_bandit(8, 1, ms=1).next_k() == 2
    assert _reloaded_bandit(9, 1, ms=1).next_k() == 1
    # 1 ms reload, 8 ms steps (tokens 8, 10, 4: 1000, 1250, 500 tokens/s): 1 / (1 * 8)
    assert _reloaded_bandit(1, 1, ms=8, tokens=(8, 10, 4)).next_k() == 2
    assert _reloaded_bandit(2, 1, ms=8, tokens=(8, 10, 4)).next_k() == 1


@pytest.mark.parametrize("reload_ms,stays", [(230, True), (220, False)])
def test_switching_cost_uses_the_step_time_ema(reload_ms, stays):
    # step time EMA (first latency, then 0.8 old + 0.2 new): 1000 -> 900 -> 1120
    # rewards: arm 1 100 tokens/s; arm 2 60 in 500 ms = 120, 150 in 2000 ms = 75:
    # means 100 and 97.5, scores 1.0 and 0.975, gain 0.025 against reload / (8 * 1120):
    # 230 / 8960 = 0.02567 (stays), 220 / 8960 = 0.02455 (moves)
    c = BanditController(k_start=1, k_min=1, k_max=2, discount=1.0, xi=0.0, horizon=8)
    assert see(c, 1, 1000, 100) == 2
    assert see(c, 2, 500, 60, reload_ms=reload_ms) == 2
    assert see(c, 2, 2000, 150) == (2 if stays else 1)
    assert c.ema_ms == pytest.approx(0.4 * 2000 + 0.6 * (0.4 * 500 + 0.6 * 1000))


def test_the_scale_is_the_best_mean_even_when_tiny():
    # arm 1: 1 token in 2000 ms = 0.5 tokens/s; arm 2 failed (mean 0). Scale 0.5: scores
    # 1.0 and 0.0 (+ equal bonus): the gain of 1.0 beats the cost 1500 / (1 * 2000) = 0.75
    c = BanditController(k_start=1, k_min=1, k_max=2, discount=1.0, xi=0.5, horizon=1)
    assert see(c, 1, 2000, 1) == 2
    c.observe(2, False, 0, Observation(2, False, 0, reload_ms=1500))
    assert c.next_k() == 1


# -- whole runs against a reference D-UCB -------------------------------------------
def reference_ducb(
    tps_at, steps: int, *, reload_ms: int, ks=range(9), k=4, gamma=0.97, xi=0.002, horizon=20,
    optimism=0.05, share=0.25,
) -> list[int]:
    """D-UCB from the module docstring: each K an arm, reward tokens/s, counts and sums
    fade by gamma each step, index mean / best mean + sqrt(xi ln n / count). Before any
    reload is seen, untried arms first (nearest, then smaller K). Once one is: K 0 if
    untried and 2 reloads <= share * horizon * step time EMA; an untried arm's index is
    1 + optimism + sqrt(xi ln n); a change of K must gain more than
    reload / (horizon * step time EMA). Every change of K costs reload_ms."""
    ks = list(ks)
    count = dict.fromkeys(ks, 0.0)
    total = dict.fromkeys(ks, 0.0)
    cost = step_ms = 0.0
    chosen = []
    prev = None
    for t in range(steps):
        chosen.append(k)
        reloaded = reload_ms if prev is not None and k != prev else 0
        prev = k
        latency = int(64_000 / tps_at(t, k))
        for a in ks:
            count[a] *= gamma
            total[a] *= gamma
        if reloaded:
            cost = max(cost / 2, reloaded)
        count[k] += 1
        total[k] += 64 * 1000 / latency
        step_ms = 0.8 * step_ms + 0.2 * latency if step_ms else latency
        untried = [a for a in ks if count[a] <= 1e-9]
        if untried and not cost:
            k = min(untried, key=lambda a: (abs(a - k), a))
            continue
        if 0 in untried and 2 * cost <= share * horizon * step_ms:
            k = 0
            continue
        n = sum(count.values())
        best_mean = max(total[a] / count[a] for a in ks if count[a] > 1e-9)
        index = {
            a: 1 + optimism + math.sqrt(xi * math.log(n)) if count[a] <= 1e-9
            else total[a] / count[a] / best_mean + math.sqrt(xi * math.log(n) / count[a])
            for a in ks
        }  # fmt: skip
        best = max(ks, key=lambda a: (index[a], -a))
        if best != k and cost and index[best] - index[k] <= cost / (horizon * step_ms):
            continue
        k = best
    return chosen


def run_bandit(c: BanditController, tps_at, steps: int, reload_ms: int) -> list[int]:
    chosen = []
    prev = None
    for t in range(steps):
        k = c.next_k()
        chosen.append(k)
        latency = int(64_000 / tps_at(t, k))
        reloaded = reload_ms if prev is not None and k != prev else None
        prev = k
        c.observe(k, True, latency, Observation(k, True, latency, 64, reload_ms=reloaded))
    return chosen


FAST = {0: 100, 1: 150, 2: 180, 3: 200, 4: 190, 5: 170, 6: 150, 7: 130, 8: 120}
MOVED = {0: 100, 1: 110, 2: 120, 3: 130, 4: 150, 5: 180, 6: 210, 7: 190, 8: 170}


def shifting(t: int, k: int) -> float:
    return (FAST if t < 40 else MOVED)[k]


@pytest.mark.parametrize("reload_ms", [0, 400])
def test_default_bandit_follows_the_reference_through_a_shift(reload_ms):
    want = reference_ducb(shifting, 120, reload_ms=reload_ms)
    assert run_bandit(BanditController(), shifting, 120, reload_ms) == want
    # and the reference itself behaves as promised: stay near the fastest (3, at 200
    # tokens/s; 2 and 4 within 10%), then move to the new fastest, 6
    if reload_ms == 0:  # free changes: sweep every K first
        assert want[:9] == [4, 3, 2, 1, 0, 5, 6, 7, 8]
    else:  # one free step (no reload seen yet), then K 0 once, then by the index
        assert want[:3] == [4, 3, 0]
    assert set(want[12:40]) <= {2, 3, 4} and want[12:40].count(3) >= 20
    assert want[-10:].count(6) >= 9


def test_a_reload_cost_means_fewer_changes_of_k():
    def changes(ks: list[int]) -> int:
        return sum(a != b for a, b in zip(ks, ks[1:], strict=False))

    free = run_bandit(BanditController(), shifting, 120, 0)
    dear = run_bandit(BanditController(), shifting, 120, 400)
    assert changes(dear) < changes(free)


def test_other_parameters_follow_the_reference():
    kw = dict(k=2, ks=range(1, 7), gamma=0.9, xi=0.05, horizon=5)
    want = reference_ducb(shifting, 80, reload_ms=300, **kw)
    c = BanditController(k_start=2, k_min=1, k_max=6, discount=0.9, xi=0.05, horizon=5)
    assert run_bandit(c, shifting, 80, 300) == want
    assert len(set(want[20:])) > 1  # a run where exploration and the cost both act


def test_the_plans_steps_left_weigh_a_reload():
    # a 1 s step, reloads of 3 s: two reloads within a quarter of 20 steps (5 s)? no;
    # within a quarter of the 100 steps the plan leaves (25 s)? yes: K 0 is tried
    def first_moves(steps_left):
        c = BanditController(k_start=4)
        c.observe(4, True, 1000, Observation(4, True, 1000, 64, reload_ms=3000, steps_left=steps_left))
        return c.next_k()

    assert first_moves(None) != 0 and first_moves(100) == 0
