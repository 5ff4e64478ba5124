"""Did the draft length take effect? Judged from what the server says it drafted."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable

from halospec_tui.events import KnobVerdict
from halospec_tui.stats import StepSample

NO_EFFECT = "draft length had no effect: results compare identical configurations"
MIN_RATIO = 1.25  # drafted tokens at the largest K must exceed the smallest K's by this


def check_knob(samples: Iterable[StepSample]) -> KnobVerdict:
    """Compare mean drafted tokens per request at the smallest and largest K used.

    effective: drafting grows with K. no-effect: the server drafted the same at every K,
    or never drafted at all. unverified: the server reports no draft figures, or only
    one K was used.
    """
    drafted_by_k: dict[int, list[int]] = defaultdict(list)
    any_success = False
    for s in samples:
        if not s.success:
            continue
        any_success = True
        if s.drafted is not None:
            drafted_by_k[s.draft_length].append(s.drafted)
    if not drafted_by_k:
        why = "the server reports no drafted tokens" if any_success else "no successful step"
        return KnobVerdict("unverified", f"cannot confirm that K took effect: {why}")
    ks = sorted(drafted_by_k)
    means = {k: sum(v) / len(v) for k, v in drafted_by_k.items()}
    if all(m == 0 for m in means.values()):
        return KnobVerdict("no-effect", NO_EFFECT + " (the server drafted no tokens at all)")
    if len(ks) < 2:
        return KnobVerdict("unverified", f"only K={ks[0]} was measured: nothing to compare")
    lo, hi = ks[0], ks[-1]
    detail = f"drafted/request {means[lo]:.1f} at K={lo} vs {means[hi]:.1f} at K={hi}"
    if means[hi] >= MIN_RATIO * max(means[lo], 1e-9):
        return KnobVerdict("effective", f"K took effect: {detail}")
    return KnobVerdict("no-effect", f"{NO_EFFECT} ({detail})")
