"""Did the draft length take effect? Judged from what the server says it drafted."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable

from halospec_tui.arms import p_min_of
from halospec_tui.events import KnobVerdict
from halospec_tui.stats import StepSample

NO_EFFECT = "draft length had no effect: results compare identical configurations"
SHARE_OF_IDEAL = 0.5  # the growth we require, as a share of the growth K itself asks for


def check_knob(samples: Iterable[StepSample]) -> KnobVerdict:
    """Compare drafting at the smallest and the largest K used.

    The measure is drafted tokens per verification pass (a pass yields its accepted
    drafts plus one target token, so passes = tokens - accepted): about K when K is
    honoured, constant when it is not. Without accepted counts, drafted tokens per
    request stand in. K took effect when the measure grows by at least half of what
    the ratio of the two K would give. pmin:P arms are left out: their K (n_max) is a
    cap that the server's p_min stops short of by design, not a draft length.
    """
    per_k: dict[int, list[tuple[int, int]]] = defaultdict(list)  # K -> [(drafted, passes)]
    any_success = pmin_seen = False
    for s in samples:
        if not s.success or s.draft_length <= 0:
            continue  # K = 0 (nospec) asks for no drafting: nothing to compare
        any_success = True
        if p_min_of(s.arm) > 0:
            pmin_seen = True
            continue
        if s.drafted is None:
            continue
        passes = s.tokens - s.accepted if s.accepted is not None else 0
        per_k[s.draft_length].append((s.drafted, passes))
    if not per_k and pmin_seen:
        return KnobVerdict("unverified", "cannot confirm that K took effect: pmin arms only")
    if not per_k:
        why = "the server reports no drafted tokens" if any_success else "no successful step"
        return KnobVerdict("unverified", f"cannot confirm that K took effect: {why}")
    if all(d == 0 for v in per_k.values() for d, _ in v):
        return KnobVerdict("no-effect", NO_EFFECT + " (the server drafted no tokens at all)")
    ks = sorted(per_k)
    if len(ks) < 2:
        return KnobVerdict("unverified", f"only K={ks[0]} was measured: nothing to compare")
    by_pass = all(p > 0 for v in per_k.values() for _, p in v)
    unit = "drafted/pass" if by_pass else "drafted/request"

    def measure(k: int) -> float:
        drafted = sum(d for d, _ in per_k[k])
        return drafted / (sum(p for _, p in per_k[k]) if by_pass else len(per_k[k]))

    lo, hi = ks[0], ks[-1]
    m_lo, m_hi = measure(lo), measure(hi)
    detail = f"{unit} {m_lo:.2f} at K={lo} vs {m_hi:.2f} at K={hi}"
    needed = 1.0 + SHARE_OF_IDEAL * (hi / lo - 1.0)
    if m_hi >= needed * max(m_lo, 1e-9):
        return KnobVerdict("effective", f"K took effect: {detail}")
    return KnobVerdict("no-effect", f"{NO_EFFECT} ({detail})")
