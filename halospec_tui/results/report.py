"""The report's figures: everything the summaries say, computed from rows alone.

The same code path for a live run (a list of samples) and for a CSV read back (a
`Samples` view of numpy columns, split into per-arm views without copying).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from halospec_tui.arms import NOSPEC
from halospec_tui.events import KnobVerdict
from halospec_tui.knob import check_knob
from halospec_tui.race_rows import Metric
from halospec_tui.results.samples import Samples
from halospec_tui.stats import (
    ArmSummary,
    PhaseRegret,
    StepSample,
    adaptive_regret,
    summarize_arm,
    winner,
)
from halospec_tui.verdict import (
    DEFAULT_TOLERANCE,
    Decision,
    Verdict,
    by_arm,
    decide,
    decision_of,
    main_actuator,
    main_server_kind,
)


@dataclass(frozen=True)
class Report:
    summaries: tuple[ArmSummary, ...]
    winner: str | None
    winner_score: float | None
    knob: KnobVerdict
    regret: tuple[PhaseRegret, ...] = ()
    class_regret: tuple[PhaseRegret, ...] = ()  # per prompt class, when classes vary
    verdict: Verdict | None = None
    decision: Decision | None = None
    actuator: str = ""
    nospec_drafted: int | None = None
    server_kind: str = ""  # what most rows say the server was (vllm, sglang, ...)


def build_report(
    samples: Sequence[StepSample],
    *,
    tolerance: float = DEFAULT_TOLERANCE,
    metric: Metric = "client",
) -> Report:
    """Everything the summaries say, from rows alone (settle rows are not measurements)."""
    rows: Sequence[StepSample]
    if isinstance(samples, Samples):  # a run read back: views, not copies
        rows = samples.measured()
    else:
        rows = [s for s in samples if not s.settle]
    groups = by_arm(rows)  # a Samples view splits itself into per-arm views
    # As stats.summarize (arms in order of appearance), one arm's samples at a time.
    summaries = tuple(summarize_arm(m, list(g)) for m, g in groups.items())
    best = winner(summaries)
    nospec = [s.drafted for s in rows if s.arm == NOSPEC and s.success and s.drafted]
    decision = decision_of(samples)
    return Report(
        summaries=summaries,
        winner=best.arm if best else None,
        winner_score=best.score if best else None,
        knob=check_knob(rows),
        regret=tuple(adaptive_regret(rows)),
        class_regret=(
            tuple(adaptive_regret(rows, key="prompt_class"))
            if len({s.prompt_class for s in rows if s.prompt_class}) > 1
            else ()
        ),
        verdict=decide(rows, tolerance=tolerance, metric=metric) if rows else None,
        decision=decision,
        actuator=main_actuator(samples),
        server_kind=main_server_kind(samples),
        nospec_drafted=sum(nospec) if nospec else None,
    )
