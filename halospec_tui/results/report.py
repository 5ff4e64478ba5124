"""The report's figures: everything the summaries say, computed from rows alone.

The same code path for a live run (a list of samples) and for a CSV read back (a
`Samples` view of numpy columns, split into per-arm views without copying).
"""

from __future__ import annotations

import statistics
from collections.abc import Sequence
from dataclasses import dataclass

from halospec_tui.arms import is_nospec
from halospec_tui.conditions import key_of, ordered_keys
from halospec_tui.events import KnobVerdict
from halospec_tui.knob import check_knob
from halospec_tui.policy import Policy, build_policy
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
    # A run with conditions: one verdict per condition (canonical order), and the policy
    # they make; `verdict` is then the one condition's, or None for several.
    conditions: tuple[tuple[str, Verdict], ...] = ()
    policy: Policy | None = None


def condition_groups(rows: Sequence[StepSample]) -> list[tuple[str, list[StepSample]]]:
    """Rows by condition (LOAD@C), in canonical order; [] when no row has one."""
    out: dict[str, list[StepSample]] = {}
    for s in rows:
        if s.condition:
            out.setdefault(key_of(s.condition, s.concurrency), []).append(s)
    return [(k, out[k]) for k in ordered_keys(out)]


def median_reload_ms(samples: Sequence[StepSample]) -> float | None:
    """The run's typical reload (a change of K), from the rows that paid one."""
    ms = [s.reload_ms for s in samples if s.reload_ms]
    return float(statistics.median(ms)) if ms else None


def conditions_policy(
    samples: Sequence[StepSample], *, tolerance: float = DEFAULT_TOLERANCE,
    metric: Metric = "client",
) -> tuple[tuple[tuple[str, Verdict], ...], Policy | None]:  # fmt: skip
    """Each condition's verdict, and the policy they make (None: no conditions), from
    rows alone: the same live (after every round) and from a CSV."""
    rows = [s for s in samples if not s.settle]
    groups = condition_groups(rows)
    if not groups:
        return (), None
    verdicts = tuple((k, decide(g, tolerance=tolerance, metric=metric, with_groups=False))
                     for k, g in groups)  # fmt: skip
    policy = build_policy(verdicts, main_actuator(samples), main_server_kind(samples),
                          median_reload_ms(samples))  # fmt: skip
    return verdicts, policy


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
    nospec = [s.drafted for s in rows if is_nospec(s.arm) and s.success and s.drafted]
    decision = decision_of(samples)
    conditions, policy = conditions_policy(samples, tolerance=tolerance, metric=metric)
    verdict = decide(rows, tolerance=tolerance, metric=metric) if rows else None
    if len(conditions) > 1:
        verdict = None  # one race per condition: no verdict of the whole run
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
        verdict=verdict,
        decision=decision,
        actuator=main_actuator(samples),
        server_kind=main_server_kind(samples),
        nospec_drafted=sum(nospec) if nospec else None,
        conditions=conditions,
        policy=policy,
    )
