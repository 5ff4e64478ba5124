"""The summary as JSON: strict JSON (no NaN or Infinity: a figure that is not a finite
number is null), one document per run, or a list of them for a file of several runs."""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from typing import Any

from halospec_tui.paste import recommendation_line
from halospec_tui.race import Interval
from halospec_tui.results.export_policy import policy_dicts, static_dict
from halospec_tui.results.report import Report
from halospec_tui.verdict import CONFIDENCE, ArmLine, Decision, Verdict


def finite(v: Any) -> Any:
    """`v` with every float that is not finite (in dicts, lists and tuples) as None."""
    if isinstance(v, float):
        return v if math.isfinite(v) else None
    if isinstance(v, dict):
        return {k: finite(x) for k, x in v.items()}
    if isinstance(v, list | tuple):
        return [finite(x) for x in v]
    return v


def dumps(doc: Any) -> str:
    """Strict JSON, indented: `finite` leaves no NaN or Infinity to write."""
    return json.dumps(finite(doc), indent=2)


def summary_dict(report: Report, meta: dict[str, Any] | None = None) -> dict[str, Any]:
    return {
        "meta": meta or {},
        "modes": [s.to_dict() for s in report.summaries],
        "winner": report.winner,
        "winner_score": report.winner_score,
        "knob": {"status": report.knob.status, "message": report.knob.message},
        "regret": [
            {
                "phase": r.phase,
                "best_fixed": r.best_fixed,
                "best_ms": r.best_ms,
                "adaptive_ms": r.adaptive_ms,
                "regret": r.regret,
                "arm": r.arm,
            }
            for r in report.regret
        ],  # fmt: skip
        "class_regret": [
            {"prompt_class": r.phase, "best_fixed": r.best_fixed, "best_ms": r.best_ms,
             "arm_ms": r.adaptive_ms, "regret": r.regret, "arm": r.arm}
            for r in report.class_regret
        ],  # fmt: skip
        "verdict": (
            verdict_dict(report.verdict, report.decision, report.actuator, report.server_kind)
            if report.verdict is not None and report.decision is not None
            else None
        ),
        **_conditions(report),
    }


def _conditions(report: Report) -> dict[str, Any]:
    """A run with conditions: each condition's verdict, and the policy table."""
    if report.policy is None or report.decision is None:
        return {}
    return {
        "conditions": [
            {"condition": cond, "verdict": verdict_dict(v, report.decision, report.actuator,
                                                        report.server_kind)}
            for cond, v in report.conditions
        ],
        "policy": policy_dicts(report.policy),
        "policy_static": static_dict(report.policy),
    }  # fmt: skip


def summary_json(report: Report, meta: dict[str, Any] | None = None) -> str:
    return dumps(summary_dict(report, meta))


def runs_json(docs: Sequence[dict[str, Any]]) -> str:
    """Several runs' summaries as one document: a list, in the file's order."""
    return dumps(list(docs))


def _interval(e: Interval | None) -> dict[str, float | None] | None:
    """JSON has no infinity: an unknown bound is null."""
    if e is None:
        return None
    return {"value": e.value, "lo": e.lo, "hi": e.hi if math.isfinite(e.hi) else None}


def _arm_dict(a: ArmLine) -> dict[str, object]:
    return {
        "arm": a.arm,
        "k": a.k,
        "group": a.group or None,
        "n": a.n,
        "rounds": a.rounds,
        "tps": _interval(a.tps),
        "mean_ms": a.mean_ms,
        "p95_ms": a.p95_ms,
        "server_tps": a.server_tps,
        "cv": a.cv,
    }


def verdict_dict(
    v: Verdict, decision: Decision, actuator: str, server_kind: str = ""
) -> dict[str, object]:
    s = v.screen
    return {
        "metric": "decode tokens/s" if v.metric == "server" else "tokens/s",
        "confidence": CONFIDENCE,
        "interleaved": v.interleaved,
        "tolerance": v.tolerance,
        "best": v.best,
        "decisive": v.decisive,
        "statement": v.statement,
        "rounds_needed": v.rounds_needed,
        "arms": [
            {**_arm_dict(a), "status": a.status or None, "certified_within": a.epsilon,
             "best_over_arm": _interval(a.vs_best), "dropped_after_round": a.dropped_round,
             "dropped_by": a.dropped_by or None}
            for a in v.lines
        ],  # fmt: skip
        "phases": [_arm_dict(p) for p in v.phases],
        "prompt_classes": [_arm_dict(p) for p in v.classes],
        "screen": None if s is None else {
            "why": s.why, "fit_ok": s.fit_ok, "raced_k": list(s.race),
            "predicted_tps": [[k, p] for k, p in s.predicted], "miss": s.miss,
            "screened_out": list(v.screened_out),
        },  # fmt: skip
        "decision": {
            "rounds": decision.rounds,
            "requests": decision.requests,
            "measured": decision.measured,
            "settle": decision.settle,
            "seconds": decision.seconds,
        },
        "speculation_vs_nospec": _interval(v.vs_nospec),
        "speculation_arm": v.vs_nospec_arm,
        "recommended": v.recommended,
        "recommended_k": v.recommended_k,
        "smallest_of_tie": v.smallest_of_tie,
        "recommendation": recommendation_line(v, actuator, server_kind),
    }
