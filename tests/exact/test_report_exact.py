"""The report's figures from rows: the typical reload, rows by condition, each
condition's verdict and the policy they make, and what build_report passes on."""

from __future__ import annotations

from dataclasses import replace

from halospec_tui.results.report import (
    build_report,
    condition_groups,
    conditions_policy,
    median_reload_ms,
)
from halospec_tui.stats import StepSample as S

RELOAD_NOTE = "(a reload took 250 ms in this run)"


def test_the_typical_reload_is_the_median_of_the_rows_that_paid_one() -> None:
    def rows(*ms: int | None) -> list[S]:
        return [S("fixed_2", 2, True, 100, 64, reload_ms=m) for m in ms]

    assert median_reload_ms(rows(None, 0, 300, 100, 250)) == 250.0  # of 100, 250, 300
    assert median_reload_ms(rows(100, 0, 300)) == 200.0  # of 100 and 300: their mean
    assert isinstance(median_reload_ms(rows(7)), float)
    assert median_reload_ms(rows(None, 0)) is None
    assert median_reload_ms([]) is None


def test_rows_by_condition_in_canonical_order_idle_first() -> None:
    a = S("fixed_2", 2, True, 100, 64, condition="cpu", concurrency=2)
    b = S("fixed_2", 2, True, 110, 64, condition="idle")  # no concurrency: one request
    c = S("fixed_4", 4, True, 120, 64)  # no condition
    d = S("fixed_4", 4, True, 130, 64, condition="cpu", concurrency=2)
    e = S("fixed_4", 4, True, 140, 64, condition="idle", concurrency=4)
    assert condition_groups([a, b, c, d, e]) == [
        ("idle@1", [b]), ("idle@4", [e]), ("cpu@2", [a, d]),
    ]  # fmt: skip
    assert condition_groups([c]) == []


def _two_conditions(**extra: object) -> list[S]:
    """fixed_1 is fast when idle, fixed_4 under cpu load; reloads of 100, 100, 400 and
    400 ms (median 250), the rest none."""
    rows = []
    for rnd in (1, 2, 3):
        for cond, (a, b) in (("idle", (100, 300)), ("cpu", (300, 100))):
            rows.append(S("fixed_1", 1, True, a + rnd, 64, round=rnd, condition=cond,
                          concurrency=1, reload_ms=100 if rnd == 1 else None,
                          actuator="llama-server", **extra))  # type: ignore[arg-type]  # fmt: skip
            rows.append(S("fixed_4", 4, True, b + rnd, 64, round=rnd, condition=cond,
                          concurrency=1, reload_ms=400 if rnd == 2 else 0,
                          actuator="llama-server", **extra))  # type: ignore[arg-type]  # fmt: skip
    return rows


def test_each_condition_gets_its_verdict_and_the_policy_names_the_typical_reload() -> None:
    rows = _two_conditions()
    # a settle row of a third condition is no measurement: no condition of its own
    rows.append(S("fixed_1", 1, True, 90, 64, settle=True, condition="memory", concurrency=1,
                  reload_ms=9000))  # fmt: skip
    verdicts, policy = conditions_policy(rows, tolerance=0.1, metric="client")
    assert [k for k, _ in verdicts] == ["idle@1", "cpu@1"]
    assert [v.best for _, v in verdicts] == ["fixed_1", "fixed_4"]
    assert all(v.tolerance == 0.1 and v.phases == () for _, v in verdicts)
    assert policy is not None
    assert [(r.condition, r.recommended) for r in policy.rows] == [
        ("idle@1", "fixed_1"), ("cpu@1", "fixed_4"),
    ]  # fmt: skip
    # the settle row's reload counts (a reload is paid whether the step is measured or
    # not): the median of 100, 100, 400, 400 and 9000
    assert "(a reload took 400 ms in this run)" in policy.advice
    assert policy.advice.startswith("llama-server takes K at launch")
    assert policy.tolerance == 0.1
    assert conditions_policy([S("fixed_1", 1, True, 90, 64)]) == ((), None)


def test_the_policy_advice_quotes_the_median_reload_and_the_server() -> None:
    verdicts, policy = conditions_policy(_two_conditions(server_kind="sglang"))
    assert policy is not None and RELOAD_NOTE in policy.advice
    assert policy.advice.startswith("SGLang takes K at launch")
    assert policy.tolerance == 0.02  # the default


def test_a_server_metric_reaches_every_conditions_verdict() -> None:
    rows = _two_conditions()
    verdicts, _ = conditions_policy(rows, metric="server")
    assert {v.metric for _, v in verdicts} == {"server"}
    r = build_report(rows, metric="server", tolerance=0.07)
    assert [v.metric for _, v in r.conditions] == ["server", "server"]
    assert [v.tolerance for _, v in r.conditions] == [0.07, 0.07]


def test_several_conditions_have_no_verdict_of_the_whole_run_one_has() -> None:
    two = build_report(_two_conditions())
    assert two.verdict is None and len(two.conditions) == 2 and two.policy is not None
    assert two.actuator == "llama-server" and RELOAD_NOTE in two.policy.advice
    one = build_report([s for s in _two_conditions() if s.condition == "idle"], tolerance=0.04,
                       metric="server")  # fmt: skip
    assert one.verdict is not None and [k for k, _ in one.conditions] == ["idle@1"]
    assert one.verdict.tolerance == 0.04 and one.verdict.metric == "server"
    assert one.policy is not None and one.decision is not None and one.decision.rounds == 3


def test_a_report_of_no_measured_rows_has_no_winner_verdict_or_regret() -> None:
    r = build_report([S("fixed_1", 1, True, 100, 64, settle=True, server_kind="vllm")])
    assert r.summaries == () and r.winner is None and r.winner_score is None
    assert r.verdict is None and r.regret == () and r.class_regret == ()
    assert r.server_kind == "vllm" and r.decision is not None and r.decision.settle == 1
    assert r.conditions == () and r.policy is None and r.nospec_drafted is None


def test_the_winner_and_its_score_and_class_regret_only_across_classes() -> None:
    rows = [
        S("fixed_1", 1, True, 100, 64, prompt_class="open"),
        S("adaptive", 2, True, 200, 64, prompt_class="open"),
    ]
    r = build_report(rows)
    # score = avg + 0.5 p95 + 0.2 stddev: 100 + 50 + 0 for fixed_1, 300 for adaptive
    assert r.winner == "fixed_1" and r.winner_score == 150.0
    assert r.class_regret == () and len(r.regret) == 1
    r2 = build_report([*rows, S("fixed_1", 1, True, 100, 64, prompt_class="structured"),
                       S("adaptive", 2, True, 100, 64, prompt_class="structured")])  # fmt: skip
    assert [(c.phase, c.best_ms, c.adaptive_ms) for c in r2.class_regret] == [
        ("structured", 100.0, 100.0), ("open", 100.0, 200.0),
    ]  # fmt: skip
    untagged = build_report([*rows, S("fixed_1", 1, True, 100, 64)])
    assert untagged.class_regret == ()  # "" is no class: one class only


def test_the_client_metric_is_the_default_of_the_report_and_of_each_condition() -> None:
    rows = _two_conditions()
    verdicts, _ = conditions_policy(rows)
    assert [v.metric for _, v in verdicts] == ["client", "client"]
    assert [v.metric for _, v in build_report(rows).conditions] == ["client", "client"]
    one = build_report([s for s in rows if s.condition == "idle"])
    assert one.verdict is not None and one.verdict.metric == "client"


def test_a_conditions_verdict_has_no_phase_or_prompt_tables_the_whole_runs_has() -> None:
    def phased(s: S) -> S:
        return replace(s, phase="load" if s.round == 1 else "steady",
                       prompt_class="open" if s.round == 2 else "structured")  # fmt: skip

    rows = [phased(s) for s in _two_conditions()]
    verdicts, _ = conditions_policy(rows)
    assert [(v.phases, v.classes) for _, v in verdicts] == [((), ()), ((), ())]
    idle = [s for s in rows if s.condition == "idle"]
    one = build_report(idle)
    assert one.verdict is not None
    assert [(p.arm, p.group, p.n) for p in one.verdict.phases] == [
        ("fixed_1", "steady", 2), ("fixed_1", "load", 1), ("fixed_4", "steady", 2),
        ("fixed_4", "load", 1),
    ]  # fmt: skip
    assert [(p.arm, p.group) for p in one.verdict.classes] == [
        ("fixed_1", "structured"), ("fixed_1", "open"), ("fixed_4", "structured"),
        ("fixed_4", "open"),
    ]  # fmt: skip
    assert [(v.phases, v.classes) for _, v in one.conditions] == [((), ())]
