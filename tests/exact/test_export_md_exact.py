"""The Markdown summary, exactly: the table, the winner, adaptive arms, the regret and
knob lines, the verdict and policy sections at the heading's level below, and several
runs as one document; every value read from a CSV made inert."""

from __future__ import annotations

from halospec_tui.events import KnobVerdict
from halospec_tui.policy import Policy
from halospec_tui.results.export_md import md_escape, runs_markdown, summary_markdown
from halospec_tui.results.export_policy import policy_markdown
from halospec_tui.results.export_text import verdict_lines
from halospec_tui.results.report import Report
from halospec_tui.stats import ArmSummary, PhaseRegret
from halospec_tui.verdict import Decision, Verdict

FIXED = ArmSummary("fixed_2", 4, 3, 1, 0.75, 200.0, 190, 300, 100, 310, 81.6, 320.0, 366.3, 0,
                   None, drafted=30, accepted=24, acceptance=0.8)  # fmt: skip
ADAPTIVE = ArmSummary("adaptive", 6, 6, 0, 1.0, 50.0, 50, 50, 50, 50, 0.0, 1280.0, 75.0, 1, 6,
                      adapting_ms=120, throughput_incl=1200.0)  # fmt: skip
MODEL = ArmSummary("adaptive:model", 2, 0, 2, 0.0, None, None, None, None, None, None, None,
                   None, 0, None)  # fmt: skip
HEAD = [
    "| mode | steps | success % | fail | avg ms | median ms | p95 ms | min ms | max ms "
    "| stddev ms | tok/s | score | accept % |",
    "|---|---|---|---|---|---|---|---|---|---|---|---|---|",
]
DECISION = Decision(rounds=2, requests=8, measured=8, settle=0, seconds=None, dropped=())
VERDICT = Verdict((), best=None, decisive=False, recommended=None, recommended_k=None,
                  tolerance=0.05, statement="nothing yet", interleaved=True)  # fmt: skip
POLICY = Policy(rows=(), static="fixed_2", static_k=2, mean_regret=None, worst=None,
                advice="set K per condition", tolerance=0.05)  # fmt: skip


def test_one_run_as_markdown_line_by_line() -> None:
    r = Report(
        (FIXED, ADAPTIVE, MODEL), "fixed_2", 366.3, KnobVerdict("effective", "K took *effect*"),
        regret=(PhaseRegret("steady", "fixed_2", 200.0, 50.0),),
    )  # fmt: skip
    assert summary_markdown(r).split("\n") == [
        "# HaloSpec benchmark summary",
        "",
        *HEAD,
        "| **fixed\\_2** | 4 | 75.0 | 1 | 200.0 | 190 | 300 | 100 | 310 | 81.6 | 320.0 | 366.3"
        " | 80.0 |",
        "| adaptive | 6 | 100.0 | 0 | 50.0 | 50 | 50 | 50 | 50 | 0.0 | 1280.0 | 75.0 | - |",
        "| adaptive:model | 2 | 0.0 | 2 | - | - | - | - | - | - | - | - | - |",
        "",
        "Winner (lowest SLO-aware score): **fixed\\_2**",
        "",
        "Adaptive: 1 K changes, converged at step 6 (k=5).",
        "",
        "adaptive:model: 0 K changes, converged at step none (k=5).",
        "",
        "- adaptive: 1 K changes, 120 ms reloading for them; 1280.0 tok/s without, 1200.0 tok/s"
        " with them",
        "- adaptive:model: 0 K changes, 0 ms reloading for them; - tok/s without, - tok/s with"
        " them",
        "",
        "- adaptive vs best fixed in steady: 50.0 ms vs 200.0 ms (fixed\\_2), regret -75.0%",
        "",
        "Knob check: **effective**: K took \\*effect\\*",
        "",
    ]


def test_a_run_without_winner_adaptive_arms_or_regret_has_only_table_and_knob() -> None:
    r = Report((FIXED,), None, None, KnobVerdict("unverified", "no drafting figures"))
    assert summary_markdown(r, heading="## b").split("\n") == [
        "## b",
        "",
        *HEAD,
        "| fixed\\_2 | 4 | 75.0 | 1 | 200.0 | 190 | 300 | 100 | 310 | 81.6 | 320.0 | 366.3 | 80.0 |",
        "",
        "Knob check: **unverified**: no drafting figures",
        "",
    ]
    empty = Report((), "", None, KnobVerdict("unverified", "x"))  # an empty winner: none
    assert summary_markdown(empty).split("\n") == [
        "# HaloSpec benchmark summary", "", *HEAD, "", "Knob check: **unverified**: x", "",
    ]  # fmt: skip


def test_the_class_regret_alone_is_listed() -> None:
    r = Report((), None, None, KnobVerdict("unverified", "x"),
               class_regret=(PhaseRegret("code", "fixed_1", 100.0, 150.0),))  # fmt: skip
    assert summary_markdown(r).split("\n")[4:7] == [
        "",
        "- adaptive vs best fixed on code prompts: 150.0 ms vs 100.0 ms (fixed\\_1), regret"
        " +50.0%",
        "",
    ]


def test_the_verdict_and_the_policy_are_sections_one_level_below_the_heading() -> None:
    r = Report((), None, None, KnobVerdict("unverified", "x"), verdict=VERDICT,
               decision=DECISION, policy=POLICY)  # fmt: skip
    text = verdict_lines(VERDICT, DECISION, "", None)
    tail = ["", "Knob check: **unverified**: x", ""]
    assert summary_markdown(r, heading="## run").split("\n") == [
        "## run", "", *HEAD, *tail, "### Verdict", "", "```text", *text[1:], "```", "",
        "### Policy", "", *policy_markdown(POLICY), "",
    ]  # fmt: skip
    alone = Report((), None, None, KnobVerdict("unverified", "x"), verdict=VERDICT,
                   decision=DECISION)  # fmt: skip
    assert summary_markdown(alone).split("\n") == [
        "# HaloSpec benchmark summary", "", *HEAD, *tail, "## Verdict", "", "```text",
        *text[1:], "```", "",
    ]  # fmt: skip
    undecided = Report((), None, None, KnobVerdict("unverified", "x"), policy=POLICY)
    assert summary_markdown(undecided, heading="### c").split("\n") == [
        "### c", "", *HEAD, *tail, "#### Policy", "", *policy_markdown(POLICY), "",
    ]  # fmt: skip


def test_several_runs_are_one_document_with_a_section_per_run() -> None:
    a = Report((FIXED,), None, None, KnobVerdict("unverified", "x"))
    b = Report((), None, None, KnobVerdict("no-effect", "y"))
    assert runs_markdown([("run *1*", a), ("b", b)]) == "\n".join([
        "# HaloSpec benchmark summary",
        "",
        summary_markdown(a, heading="## run \\*1\\*"),
        summary_markdown(b, heading="## b"),
    ])  # fmt: skip
    assert runs_markdown([]) == "# HaloSpec benchmark summary\n"


def test_md_escape_makes_markup_and_formulas_inert() -> None:
    assert md_escape("a\\b|c") == "a\\\\b\\|c"
    assert md_escape("two\nlines\rhere") == "two lines here"
    for ch in "`*_[]<>#!":
        assert md_escape(f"x{ch}y") == f"x\\{ch}y"
    assert md_escape("=1+1") == "'=1+1"
    assert md_escape("+cmd") == "'+cmd"
    assert md_escape("-cmd") == "'-cmd"
    assert md_escape("@SUM(A1)") == "'@SUM(A1)"
    assert md_escape("+5") == "+5" and md_escape("-0.25") == "-0.25"
    assert md_escape("a=b") == "a=b" and md_escape("") == ""
    assert md_escape("MAX X|x") == "MAX X\\|x"  # only the markup characters change
    assert md_escape(42) == "42"  # type: ignore[arg-type]
