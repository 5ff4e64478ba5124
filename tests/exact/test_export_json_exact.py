"""The JSON summary, exactly: strict JSON (a figure that is not finite is null), the
verdict's every key, the regret tables and a run with conditions, from hand-made reports
whose every value is set here."""

from __future__ import annotations

import json
import math

from halospec_tui.events import KnobVerdict
from halospec_tui.policy import Policy
from halospec_tui.race import Interval
from halospec_tui.results.export_json import (
    dumps,
    finite,
    runs_json,
    summary_dict,
    summary_json,
    verdict_dict,
)
from halospec_tui.results.export_policy import policy_dicts, static_dict
from halospec_tui.results.report import Report
from halospec_tui.screen import Screen
from halospec_tui.stats import PhaseRegret
from halospec_tui.verdict import ArmLine, Decision, Verdict

KNOB = KnobVerdict("unverified", "no drafting figures")
DECISION = Decision(rounds=3, requests=20, measured=18, settle=2, seconds=7.5, dropped=())


def test_finite_turns_every_non_finite_float_into_null_at_any_depth() -> None:
    doc = {"a": math.inf, "b": [1.5, -math.inf, (math.nan, 2)], "c": {"d": math.nan},
           "e": "inf", "f": 3, "g": None, "h": True}  # fmt: skip
    assert finite(doc) == {"a": None, "b": [1.5, None, [None, 2]], "c": {"d": None},
                           "e": "inf", "f": 3, "g": None, "h": True}  # fmt: skip
    assert finite(math.inf) is None and finite(0.25) == 0.25
    assert finite((1.0, math.nan)) == [1.0, None]


def test_dumps_is_strict_json_indented_by_two() -> None:
    assert dumps({"x": [math.nan, 1.0]}) == '{\n  "x": [\n    null,\n    1.0\n  ]\n}'


def test_several_runs_are_one_list_in_the_files_order() -> None:
    assert runs_json([{"run": "b"}, {"run": "a", "tps": math.inf}]) == (
        '[\n  {\n    "run": "b"\n  },\n  {\n    "run": "a",\n    "tps": null\n  }\n]'
    )
    assert runs_json(({"run": "c"},)) == '[\n  {\n    "run": "c"\n  }\n]'
    assert runs_json([]) == "[]"


def _arm(arm: str, k: int | None, **kw: object) -> ArmLine:
    base: dict[str, object] = {"n": 6, "rounds": 3, "tps": None, "mean_ms": 500.0,
                               "p95_ms": 610.0, "server_tps": 140.5, "cv": 0.04}  # fmt: skip
    base.update(kw)
    return ArmLine(arm, k, **base)  # type: ignore[arg-type]


def test_the_verdict_as_json_carries_every_figure_and_nulls_for_the_unknown() -> None:
    best = _arm("fixed_2", 2, tps=Interval(120.0, 110.0, 130.0), status="best")
    slow = _arm("fixed_6", 6, tps=Interval(100.0, 90.0, math.inf), vs_best=Interval(1.2, 1.05, math.inf),
                status="dropped", dropped_round=2, dropped_by="fixed_2", epsilon=0.3)  # fmt: skip
    phase = _arm("fixed_2", 2, n=3, group="load", tps=Interval(118.0, 100.0, 136.0))
    klass = _arm("fixed_2", 2, n=2, group="code", cv=None)
    screen = Screen(race=(0, 2, 6), predicted=((0, 80.0), (2, 121.0)), fit_ok=True,
                    why="fitted", miss=-0.05)  # fmt: skip
    v = Verdict(
        (best, slow), best="fixed_2", decisive=True, recommended="adaptive", recommended_k=None,
        tolerance=0.03, statement="fixed_2 wins", interleaved=True, metric="server",
        vs_nospec=Interval(1.5, 1.4, 1.6), vs_nospec_arm="fixed_2", vs_nospec_ref="nospec",
        screen=screen, screened_out=("fixed_4",), rounds_needed=5, phases=(phase,),
        classes=(klass,),
    )  # fmt: skip
    common = {"n": 6, "rounds": 3, "mean_ms": 500.0, "p95_ms": 610.0, "server_tps": 140.5,
              "cv": 0.04}  # fmt: skip
    assert verdict_dict(v, DECISION, "llama-server", "vllm") == {
        "metric": "decode tokens/s",
        "confidence": 0.95,
        "interleaved": True,
        "tolerance": 0.03,
        "best": "fixed_2",
        "decisive": True,
        "statement": "fixed_2 wins",
        "rounds_needed": 5,
        "arms": [
            {"arm": "fixed_2", "k": 2, "group": None, **common,
             "tps": {"value": 120.0, "lo": 110.0, "hi": 130.0}, "status": "best",
             "certified_within": None, "best_over_arm": None, "dropped_after_round": None,
             "dropped_by": None},
            {"arm": "fixed_6", "k": 6, "group": None, **common,
             "tps": {"value": 100.0, "lo": 90.0, "hi": None}, "status": "dropped",
             "certified_within": 0.3, "best_over_arm": {"value": 1.2, "lo": 1.05, "hi": None},
             "dropped_after_round": 2, "dropped_by": "fixed_2"},
        ],
        "phases": [{"arm": "fixed_2", "k": 2, "group": "load", **common, "n": 3,
                    "tps": {"value": 118.0, "lo": 100.0, "hi": 136.0}}],
        "prompt_classes": [{"arm": "fixed_2", "k": 2, "group": "code", **common, "n": 2,
                            "cv": None, "tps": None}],
        "screen": {"why": "fitted", "fit_ok": True, "raced_k": [0, 2, 6],
                   "predicted_tps": [[0, 80.0], [2, 121.0]], "miss": -0.05,
                   "screened_out": ["fixed_4"]},
        "decision": {"rounds": 3, "requests": 20, "measured": 18, "settle": 2, "seconds": 7.5},
        "speculation_vs_nospec": {"value": 1.5, "lo": 1.4, "hi": 1.6},
        "speculation_arm": "fixed_2",
        "recommended": "adaptive",
        "recommended_k": None,
        "smallest_of_tie": True,  # recommended (adaptive) is not the best (fixed_2)
        "recommendation": "fastest: adaptive (an adaptive arm: no fixed setting to paste)",
    }  # fmt: skip
    plain = Verdict((), best=None, decisive=False, recommended=None, recommended_k=None,
                    tolerance=0.02, statement="-", interleaved=False)  # fmt: skip
    d = verdict_dict(plain, DECISION, "")
    assert d["metric"] == "tokens/s" and d["screen"] is None and d["smallest_of_tie"] is False
    assert d["speculation_vs_nospec"] is None and d["speculation_arm"] is None
    assert d["recommendation"] == "no arm has a successful step: nothing to recommend"


def _report(**kw: object) -> Report:
    return Report((), None, None, KNOB, **kw)  # type: ignore[arg-type]


def test_the_summary_carries_meta_winner_knob_and_both_regret_tables() -> None:
    r = Report(
        (), "fixed_2", 412.5, KnobVerdict("no-effect", "K did nothing"),
        regret=(PhaseRegret("load", "fixed_4", 160.0, 176.0, "adaptive:model"),),
        class_regret=(PhaseRegret("code", "fixed_1", 200.0, 150.0),),
    )  # fmt: skip
    assert summary_dict(r, {"run_id": "r7"}) == {
        "meta": {"run_id": "r7"},
        "modes": [],
        "winner": "fixed_2",
        "winner_score": 412.5,
        "knob": {"status": "no-effect", "message": "K did nothing"},
        "regret": [{"phase": "load", "best_fixed": "fixed_4", "best_ms": 160.0,
                    "adaptive_ms": 176.0, "regret": 176.0 / 160.0 - 1, "arm": "adaptive:model"}],
        "class_regret": [{"prompt_class": "code", "best_fixed": "fixed_1", "best_ms": 200.0,
                          "arm_ms": 150.0, "regret": -0.25, "arm": "adaptive"}],
        "verdict": None,
    }  # fmt: skip
    assert summary_dict(_report())["meta"] == {}
    assert json.loads(summary_json(_report(), {"a": math.nan}))["meta"] == {"a": None}
    assert summary_json(_report()) == dumps(summary_dict(_report()))


def test_a_verdict_is_written_only_with_its_decision() -> None:
    v = Verdict((), best="fixed_2", decisive=True, recommended="fixed_2", recommended_k=2,
                tolerance=0.02, statement="-", interleaved=False)  # fmt: skip
    with_both = summary_dict(_report(verdict=v, decision=DECISION, actuator="lemonade-load",
                                     server_kind="sglang"))  # fmt: skip
    assert with_both["verdict"] == verdict_dict(v, DECISION, "lemonade-load", "sglang")
    # on SGLang the setting to paste is SGLang's own flag, not Lemonade's load call
    assert "SGLang" in with_both["verdict"]["recommendation"]
    assert "SGLang" not in str(verdict_dict(v, DECISION, "lemonade-load", "")["recommendation"])
    assert summary_dict(_report(verdict=v))["verdict"] is None
    assert summary_dict(_report(decision=DECISION))["verdict"] is None


def test_a_run_with_conditions_lists_each_verdict_and_the_policy() -> None:
    v1 = Verdict((), best=None, decisive=False, recommended="fixed_2", recommended_k=2,
                 tolerance=0.02, statement="a", interleaved=True)  # fmt: skip
    v2 = Verdict((), best=None, decisive=True, recommended=None, recommended_k=None,
                 tolerance=0.02, statement="b", interleaved=True)  # fmt: skip
    policy = Policy(rows=(), static="fixed_2", static_k=2, mean_regret=0.01, worst="load@4",
                    advice="restart per condition", tolerance=0.02)  # fmt: skip
    r = _report(decision=DECISION, conditions=(("steady@1", v1), ("load@4", v2)), policy=policy,
                actuator="llama-server", server_kind="vllm")  # fmt: skip
    d = summary_dict(r)
    assert d["verdict"] is None
    assert d["conditions"] == [
        {"condition": "steady@1", "verdict": verdict_dict(v1, DECISION, "llama-server", "vllm")},
        {"condition": "load@4", "verdict": verdict_dict(v2, DECISION, "llama-server", "vllm")},
    ]
    # the run's server tells: vLLM's own flags, not llama-server's
    said = d["conditions"][0]["verdict"]["recommendation"]
    assert "vLLM" in said
    assert "vLLM" not in str(verdict_dict(v1, DECISION, "llama-server", "")["recommendation"])
    assert d["policy"] == policy_dicts(policy) and d["policy_static"] == static_dict(policy)
    assert d["policy_static"]["advice"] == "restart per condition"
    assert list(d)[-3:] == ["conditions", "policy", "policy_static"]
    assert "conditions" not in summary_dict(_report(conditions=(("steady@1", v1),), policy=policy))
    assert "policy" not in summary_dict(_report(decision=DECISION))
