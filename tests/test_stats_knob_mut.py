"""Exact values for the newer parts of stats and knob: which arms adapt, what an arm's
own reloads cost, regret per prompt class and for pmin / nospec arms, and the knob check
with pmin and nospec arms in the run. Worked out by hand; found by mutation testing
(scripts/mutation.sh)."""

from __future__ import annotations

import pytest

from halospec_tui.arms import is_adaptive
from halospec_tui.knob import check_knob
from halospec_tui.stats import (
    PhaseRegret,
    StepSample,
    adapting_reload_ms,
    adaptive_regret,
    summarize_arm,
)


def test_which_arms_adapt():
    assert is_adaptive("adaptive") and is_adaptive("adaptive:model")
    assert is_adaptive("adaptive:bandit")
    for fixed in ("fixed_1", "nospec", "pmin:0.75", "adaptiveX", "Adaptive:model", "ADAPTIVE:"):
        assert not is_adaptive(fixed)


def _k(mode: str, k: int, reload_ms: int | None, ok: bool = True, latency_ms: int = 1000):
    return StepSample(mode, k, ok, latency_ms if ok else 0, 64 if ok else 0, reload_ms=reload_ms)


def test_an_arm_pays_only_for_its_own_changes_of_k():
    rows = [
        _k("adaptive", 2, 500),  # first step: the reload set the arm's K, not a change of it
        _k("adaptive", 2, 300),  # same K as before: undid another arm's K (interleaving)
        _k("adaptive", 3, 700),  # its own change: 700
        _k("adaptive", 3, None),
        _k("adaptive", 4, None),  # a change without a reload reported: 0
        _k("adaptive", 2, 250),  # a change: 250
    ]
    assert adapting_reload_ms(rows) == [0, 0, 700, 0, 0, 250]
    assert adapting_reload_ms([]) == []
    assert adapting_reload_ms([_k("adaptive", 0, 900)]) == [0]
    assert adapting_reload_ms([_k("a", 0, 90), _k("a", 1, 80), _k("a", 0, 70)]) == [0, 80, 70]


def test_summary_charges_own_reloads_of_successful_steps():
    rows = [
        _k("adaptive", 2, 500),
        _k("adaptive", 3, 700),
        _k("adaptive", 4, 400, ok=False),  # failed: its reload is not charged
        _k("adaptive", 2, 300),
    ]
    m = summarize_arm("adaptive", rows)
    assert (m.reloads, m.reload_ms, m.adapting_ms) == (4, 1900, 1000)
    # 3 successes: 192 tokens in 3000 ms, or in 3000 + 1000 ms with the arm's own reloads
    assert m.throughput == pytest.approx(64.0) and m.throughput_incl == pytest.approx(48.0)
    none = summarize_arm("adaptive", [_k("adaptive", 2, 500, ok=False)])
    assert (none.adapting_ms, none.throughput, none.throughput_incl) == (0, None, None)


def _row(mode: str, k: int, ms: int, phase: str = "steady", cls: str = "") -> StepSample:
    return StepSample(mode, k, True, ms, 64, phase=phase, prompt_class=cls)


def test_regret_of_pmin_and_named_adaptive_arms_against_nospec():
    rows = [
        _row("nospec", 0, 100),
        _row("fixed_3", 3, 120),
        _row("pmin:0.5", 16, 110),
        _row("adaptive:bandit", 4, 150),
        _row("NOSPEC", 0, 50),  # not an arm name: neither fixed nor adaptive
    ]
    assert adaptive_regret(rows) == [
        PhaseRegret("steady", "nospec", 100.0, 110.0, "pmin:0.5"),
        PhaseRegret("steady", "nospec", 100.0, 150.0, "adaptive:bandit"),
    ]


def test_regret_per_prompt_class():
    rows = [
        _row("fixed_2", 2, 100, cls="structured"),
        _row("fixed_2", 2, 300, cls="open"),
        _row("fixed_5", 5, 80, cls="structured"),
        _row("fixed_5", 5, 400, cls="open"),
        _row("adaptive", 4, 90, phase="load", cls="structured"),
        _row("adaptive", 3, 330, phase="load", cls="open"),
    ]
    assert adaptive_regret(rows, key="prompt_class") == [
        PhaseRegret("structured", "fixed_5", 80.0, 90.0, "adaptive"),
        PhaseRegret("open", "fixed_2", 300.0, 330.0, "adaptive"),
    ]
    # by phase, the adaptive arm ran under load only, where no fixed arm did
    assert adaptive_regret(rows) == []


# -- the knob check with pmin and nospec arms ----------------------------------------
def _d(mode: str, k: int, drafted: int, accepted: int, ok: bool = True) -> StepSample:
    return StepSample(mode, k, ok, 100, 64, drafted=drafted, accepted=accepted)


PMIN_ONLY = "cannot confirm that K took effect: pmin arms only"


def test_pmin_arms_alone_cannot_confirm_k():
    v = check_knob([_d("pmin:0.5", 16, 30, 20), _d("pmin:0.8", 16, 10, 8)])
    assert (v.status, v.message) == ("unverified", PMIN_ONLY)
    # a failed pmin step is not seen at all
    v = check_knob([_d("pmin:0.5", 16, 30, 20, ok=False)])
    assert v.message == "cannot confirm that K took effect: no successful step"


def test_pmin_and_nospec_arms_are_left_out_of_the_comparison():
    # fixed_2: 40 drafted, 44 accepted -> 20 passes, 2.00 per pass; fixed_4: 48 drafted,
    # 52 accepted -> 12 passes, 4.00 per pass. The pmin arm (n_max 16, 3 per pass) and
    # nospec (K 0) come first and must neither end the scan nor enter it.
    rows = [
        _d("pmin:0.5", 16, 60, 44),
        _d("nospec", 0, 0, 0),
        _d("fixed_2", 2, 40, 44),
        _d("fixed_4", 4, 48, 52),
    ]
    v = check_knob(rows)
    assert (v.status, v.message) == ("effective", "K took effect: drafted/pass 2.00 at K=2 vs 4.00 at K=4")
    # with only one fixed K besides them: nothing to compare
    assert check_knob(rows[:3]).message == "only K=2 was measured: nothing to compare"
