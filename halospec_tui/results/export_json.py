"""The summary as JSON: strict JSON (no NaN or Infinity: a figure that is not a finite
number is null), one document per run, or a list of them for a file of several runs."""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from typing import Any

from halospec_tui.results.export_text import recommendation_line, status_text
from halospec_tui.results.report import Report
from halospec_tui.verdict import CONFIDENCE, RESAMPLES, ArmStats, Decision, Estimate, Verdict


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
    """Strict JSON, indented."""
    return json.dumps(finite(doc), indent=2, allow_nan=False)


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
    }


def summary_json(report: Report, meta: dict[str, Any] | None = None) -> str:
    return dumps(summary_dict(report, meta))


def runs_json(docs: Sequence[dict[str, Any]]) -> str:
    """Several runs' summaries as one document: a list, in the file's order."""
    return dumps(list(docs))


def _est_dict(e: Estimate | None) -> dict[str, float | None] | None:
    """JSON has no infinity: an unknown bound is null."""
    if e is None:
        return None
    return {
        "value": e.value,
        "lo": e.lo if math.isfinite(e.lo) else None,
        "hi": e.hi if math.isfinite(e.hi) else None,
    }


def _arm_dict(a: ArmStats) -> dict[str, object]:
    return {
        "arm": a.arm,
        "k": a.k,
        "phase": a.phase or None,
        "n": a.n,
        "tps": _est_dict(a.tps),
        "mean_ms": _est_dict(a.mean_ms),
        "median_ms": _est_dict(a.median_ms),
        "p95_ms": _est_dict(a.p95_ms),
        "score": _est_dict(a.score),
        "server_tps": _est_dict(a.server_tps),
        "cv": a.cv,
    }


def verdict_dict(
    v: Verdict, decision: Decision, actuator: str, server_kind: str = ""
) -> dict[str, object]:
    dropped = dict(decision.dropped)
    return {
        "metric": "tokens/s",
        "confidence": CONFIDENCE,
        "resamples": RESAMPLES,
        "tolerance": v.tolerance,
        "best": v.best,
        "decisive": v.decisive,
        "arms": [
            {**_arm_dict(a), "status": status_text(v, a.arm, dropped).split(" ")[0],
             "best_over_arm": _est_dict(c.ratio) if (c := v.comparison(a.arm)) else None,
             "dropped_after_round": dropped.get(a.arm)}
            for a in v.arms
        ],  # fmt: skip
        "phases": [_arm_dict(p) for p in v.phases],
        "prompt_classes": [_arm_dict(p) for p in v.classes],
        "decision": {
            "rounds": decision.rounds,
            "requests": decision.requests,
            "measured": decision.measured,
            "settle": decision.settle,
            "seconds": decision.seconds,
        },
        "speculation_vs_nospec": _est_dict(v.vs_nospec),
        "speculation_arm": v.vs_nospec_arm,
        "recommended": v.recommended,
        "recommended_k": v.recommended_k,
        "smallest_of_tie": v.smallest_of_tie,
        "recommendation": recommendation_line(v, actuator, server_kind),
    }
