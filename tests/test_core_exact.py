"""Exact values for the rest of the pure core (stats, plan, summaries), chosen where a
small change to the code gives a different answer: found by mutation testing
(scripts/mutation.sh) and each pinned by hand."""

from __future__ import annotations

import json

import pytest

from halospec_tui.arms import parse_arm
from halospec_tui.events import StepRecord
from halospec_tui.knob import NO_EFFECT, check_knob
from halospec_tui.plan import (
    ArmSpec,
    Plan,
    PlanError,
    arm_specs,
    classic,
    customise,
    named_plan,
    quick,
)
from halospec_tui.results import (
    ORIGINAL_COLUMNS,
    CsvWriter,
    ResultsError,
    build_report,
    read_runs,
    summary_json,
    summary_markdown,
)
from halospec_tui.results.export_md import md_escape
from halospec_tui.results.export_text import extras_table
from halospec_tui.stats import (
    StepSample,
    convergence_step,
    k_changes,
    percentile_nearest_rank,
    population_stddev,
    slo_score,
    summarize,
    summarize_arm,
    throughput,
    winner,
)


# -- percentiles ----------------------------------------------------------------------
def test_nearest_rank_where_the_rank_is_just_above_an_integer():
    # 0.95 x 39 = 37.05 -> rank 38 (a divisor of 101 would give 36.68 -> 37)
    assert percentile_nearest_rank(list(range(1, 40)), 95) == 38
    # 0.5 x 201 = 100.5 -> rank 101
    assert percentile_nearest_rank(list(range(1, 202)), 50) == 101


def test_nearest_rank_clamps_above_one_hundred_percent():
    assert percentile_nearest_rank([1, 2], 150) == 2
    assert percentile_nearest_rank([9, 3, 5], 100) == 9
    assert percentile_nearest_rank([9, 3, 5], -10) == 3


# -- spread, score, throughput ------------------------------------------------------------
def test_stddev_of_two_samples_is_computed():
    assert population_stddev([1, 3]) == 1.0  # not the 0.0 reserved for one sample
    assert population_stddev([5]) == 0.0
    assert population_stddev([]) is None


def test_score_needs_every_figure():
    assert slo_score(1.0, 2, None) is None
    assert slo_score(1.0, None, 0.0) is None
    assert slo_score(None, 2, 0.0) is None
    assert slo_score(100.0, 200, 10.0) == 100.0 + 100.0 + 2.0


def test_throughput_edges():
    assert throughput([], []) is None
    assert throughput([64], [0]) is None
    assert throughput([64, 64], [500, 1500]) == 64.0


# -- K changes and convergence ---------------------------------------------------------
def test_convergence_needs_the_whole_window():
    # three equal K are not five: converged only at step 8
    assert convergence_step([1, 1, 1, 2, 2, 2, 2, 2]) == 8
    assert convergence_step([1, 2], window=0) is None
    assert convergence_step([7, 7], window=2) == 2
    assert convergence_step([4, 5], window=1) == 1  # one step is a window of one
    assert k_changes([1, 1, 2, 2, 1]) == 2


# -- winner and summaries -------------------------------------------------------------
def _s(mode: str, k: int, ok: bool, lat: int, tok: int = 64, **kw) -> StepSample:
    return StepSample(mode, k, ok, lat if ok else 0, tok if ok else 0, **kw)


def test_winner_skips_a_mode_without_a_score():
    sums = summarize([_s("fixed_1", 1, False, 0), _s("fixed_2", 2, True, 100)])
    assert sums[0].score is None
    assert winner(sums).arm == "fixed_2"  # type: ignore[union-attr]
    assert winner(summarize([_s("a", 1, False, 0)])) is None


def test_summary_figures_at_their_rank_boundaries():
    lat = list(range(100, 2100, 100))  # 20 values: p95 is the 19th, not the 20th
    s = summarize_arm("m", [_s("m", 1, True, x) for x in lat])
    assert (s.median, s.p95) == (1000, 1900)
    two = summarize_arm("m", [_s("m", 1, True, 10), _s("m", 1, True, 20)])
    assert two.median == 10  # ceil(0.5 x 2) = 1: the first


def test_summary_of_no_steps_and_zero_drafting():
    empty = summarize_arm("m", [])
    assert (empty.steps, empty.success_rate, empty.avg, empty.acceptance) == (0, 0.0, None, None)
    zero = summarize_arm("m", [_s("m", 1, True, 10, drafted=0, accepted=0)])
    assert (zero.drafted, zero.accepted, zero.acceptance) == (0, 0, None)
    no_tokens = summarize_arm("m", [_s("m", 1, True, 10, predicted_n=0, predicted_ms=10.0)])
    assert no_tokens.server_tps == 0.0
    reloads = summarize_arm(
        "m", [_s("m", 1, True, 10, reload_ms=0), _s("m", 1, True, 10, reload_ms=250)]
    )
    assert (reloads.reloads, reloads.reload_ms) == (1, 250)
    d = summarize_arm("m", [_s("m", 3, True, 10), _s("m", 4, True, 10)]).to_dict()
    assert d["draft_lengths"] == [3, 4] and d["mode"] == "m" and d["k_changes"] == 1


# -- plans ------------------------------------------------------------------------------
def test_arm_specs_limits_and_messages():
    assert arm_specs(["fixed_16", "adaptive"], 1, 2, 3) == (
        ArmSpec(parse_arm("fixed_16"), 1, 2), ArmSpec(parse_arm("adaptive"), 1, 3),
    )  # fmt: skip
    with pytest.raises(PlanError) as e:
        arm_specs(["fixed_17"], 1, 2, 3)
    assert str(e.value) == "draft length 17 in 'fixed_17' is outside 1..16"
    with pytest.raises(PlanError) as e:
        arm_specs(["fast"], 1, 2, 3)
    assert str(e.value) == (
        "unknown arm 'fast': use nospec, fixed_K (K in 1..16), pmin:P (0 < P < 1), adaptive, "
        "adaptive:model or adaptive:bandit"
    )
    with pytest.raises(PlanError) as e:
        named_plan("slow")
    assert str(e.value) == "unknown plan 'slow' (choose from classic, quick, tune)"


@pytest.mark.parametrize(
    "kw,message",
    [
        ({"warmup": -1}, "--warmup must not be negative (got -1)"),
        ({"steps": -2}, "--steps must not be negative (got -2)"),
        ({"adaptive_steps": -3}, "--adaptive-steps must not be negative (got -3)"),
        ({"warmup_sleep_s": -0.5}, "--warmup-sleep must not be negative (got -0.5)"),
        ({"cooldown_s": -1.0}, "--cooldown must not be negative (got -1.0)"),
        ({"load_duration_s": -2.0}, "--load-duration must not be negative (got -2.0)"),
        ({"load_step": 0}, "--load-step must be at least 1 (got 0)"),
        ({"prompts": "mine"}, "unknown prompt set 'mine' (choose original or pool)"),
        ({"arms": []}, "a plan needs at least one arm"),
        ({"arms": ["fixed_1", "fixed_1"]}, "'fixed_1' is the same arm, fixed_1: list each arm once"),
    ],
)
def test_customise_refuses_with_one_clear_message(kw, message):
    with pytest.raises(PlanError) as e:
        customise(classic(), **kw)
    assert str(e.value) == message


def test_customise_accepts_the_edges_and_sets_every_number():
    p = customise(
        classic(),
        arms=["fixed_2", "adaptive"],
        warmup=0,
        steps=0,
        adaptive_steps=7,
        warmup_sleep_s=0.0,
        cooldown_s=0.25,
        load_step=1,
        load_duration_s=0.0,
        prompts="pool",
    )
    assert p == Plan(
        "classic",
        (ArmSpec(parse_arm("fixed_2"), 0, 0), ArmSpec(parse_arm("adaptive"), 0, 7)),
        warmup_sleep_s=0.0,
        cooldown_s=0.25,
        load_step=1,
        load_duration_s=0.0,
        prompts="pool",
    )
    assert customise(quick(), prompts="original").prompts == "original"
    assert customise(classic()) == classic()  # nothing given: nothing changes


def test_customise_defaults_come_from_the_plan():
    mixed = Plan(
        "mine",
        (ArmSpec(parse_arm("fixed_1"), 3, 6), ArmSpec(parse_arm("fixed_2"), 7, 6)),
        warmup_sleep_s=0.5,
        cooldown_s=0.75,
        load_step=4,
        load_duration_s=9.0,
        prompts="pool",
    )
    p = customise(mixed, arms=["fixed_2", "fixed_5", "adaptive"])
    # a mode of the plan keeps its warmup; a new one takes the first mode's; fixed steps
    # come from the plan's fixed modes; adaptive steps, absent here, default to 15
    assert p.arms == (
        ArmSpec(parse_arm("fixed_2"), 7, 6),
        ArmSpec(parse_arm("fixed_5"), 3, 6),
        ArmSpec(parse_arm("adaptive"), 3, 15),
    )
    assert (p.warmup_sleep_s, p.cooldown_s, p.load_step, p.load_duration_s, p.prompts) == (
        0.5, 0.75, 4, 9.0, "pool",
    )  # fmt: skip
    only_adaptive = Plan("a", (ArmSpec(parse_arm("adaptive"), 2, 9),))
    q = customise(only_adaptive, arms=["fixed_3", "adaptive"])
    assert q.arms == (ArmSpec(parse_arm("fixed_3"), 2, 10), ArmSpec(parse_arm("adaptive"), 2, 9))


# -- the CSV writer and reader ------------------------------------------------------
def test_csv_lines_end_in_a_bare_newline(tmp_path):
    p = tmp_path / "n.csv"
    w = CsvWriter(p)
    w.open()
    w.write(StepRecord(1, 1, "fixed_1", "steady", 1, True, 5, 64, error="x"))
    w.close()
    raw = p.read_bytes()
    assert b"\r" not in raw and raw.count(b"\n") == 2 and raw.endswith(b",1,x,,,0,,,0,,,,,,,\n")


def test_csv_writer_use_and_refusals(tmp_path):
    w = CsvWriter(tmp_path / "u.csv")
    with pytest.raises(AssertionError) as e:
        w.write(StepRecord(1, 1, "m", "steady", 1, True, 5, 64))
    assert str(e.value) == "open() first"
    w.open()
    w.close()
    w.close()  # twice is fine
    with pytest.raises(AssertionError, match=r"open\(\) first"):
        w.write(StepRecord(1, 1, "m", "steady", 1, True, 5, 64))
    one_byte = tmp_path / "one.csv"
    one_byte.write_text("x")
    with pytest.raises(ResultsError) as e:
        CsvWriter(one_byte).open()
    assert str(e.value) == (
        f"refusing to append to {one_byte}: its header differs; choose another --csv path"
    )
    orig = tmp_path / "orig.csv"
    orig.write_text(",".join(ORIGINAL_COLUMNS) + "\n")
    with pytest.raises(ResultsError) as e:
        CsvWriter(orig).open()
    assert str(e.value) == (
        f"refusing to append to {orig}: it was written by the original harness (8 columns); "
        "choose another --csv path"
    )
    a_file = tmp_path / "file"
    a_file.write_text("")
    with pytest.raises(ResultsError) as e:
        CsvWriter(a_file / "x.csv").open()
    assert str(e.value) == f"cannot write {a_file / 'x.csv'}: Not a directory"


def test_read_runs_messages_and_run_ids(tmp_path):
    bad = tmp_path / "bad.csv"
    bad.write_text("a,b\n1,2\n")
    with pytest.raises(ResultsError) as e:
        read_runs(bad)
    assert str(e.value) == (
        f"{bad} is not a results CSV: its header must start with "
        "global_step,step,mode,phase,draft_length,success,latency_ms,tokens"
    )
    orig = tmp_path / "orig.csv"
    orig.write_text(",".join(ORIGINAL_COLUMNS) + "\n1,1,fixed_1,steady,1,1,100,64\n")
    (run,) = read_runs(orig)
    assert (run.index, run.run_id, len(run.rows)) == (1, "", 1)


# -- the summaries ----------------------------------------------------------------------
def _report(*samples: StepSample):
    return build_report(list(samples))


def test_extras_table_markers_per_verdict():
    no_effect = _report(
        _s("fixed_1", 1, True, 10, drafted=0, accepted=0),
        _s("fixed_8", 8, True, 10, drafted=0, accepted=0),
    )
    # the knob line closes the drafting section; the verdict follows it
    assert (
        "\n[WARNING] draft length had no effect: results compare identical configurations "
        "(the server drafted no tokens at all)\n\nVerdict (" in extras_table(no_effect)
    )
    ok = _report(
        _s("fixed_1", 1, True, 10, drafted=32, accepted=32),
        _s("fixed_4", 4, True, 10, drafted=128, accepted=32),
    )
    assert (
        "\n[OK] K took effect: drafted/pass 1.00 at K=1 vs 4.00 at K=4\n\nVerdict ("
        in extras_table(ok)
    )


def test_summary_json_layout_exactly():
    rep = _report(_s("fixed_2", 2, True, 100, drafted=10, accepted=5))
    text = summary_json(rep, {"run_id": "r"})
    doc = json.loads(text)
    assert text.startswith('{\n  "meta": {\n    "run_id": "r"\n  },\n  "modes": [\n    {\n')
    assert list(doc) == [
        "meta", "modes", "winner", "winner_score", "knob", "regret", "class_regret", "verdict",
    ]  # fmt: skip
    assert doc["winner"] == "fixed_2" and doc["winner_score"] == 100.0 + 50.0
    assert doc["knob"] == {
        "status": "unverified",
        "message": "only K=2 was measured: nothing to compare",
    }
    assert json.loads(summary_json(rep))["meta"] == {}


@pytest.mark.parametrize(
    "text,escaped",
    [
        ("a\\b", "a\\\\b"),
        ("a|b", "a\\|b"),
        ("a\nb\rc", "a b c"),
        ("`*_[]<>#!", "\\`\\*\\_\\[\\]\\<\\>\\#\\!"),
        ("=1+1", "'=1+1"),
        ("+cmd", "'+cmd"),
        ("-cmd", "'-cmd"),
        ("@cmd", "'@cmd"),
        ("-", "-"),  # the tables' "none": a lone sign is no formula
        ("=", "="),
        ("=1", "'=1"),  # the shortest formula
        ("-5", "-5"),  # a number stays a number
        ("+2.5", "+2.5"),
        ("plain", "plain"),
        ("XYZ", "XYZ"),  # only the listed characters are escaped
    ],
)
def test_md_escape_exactly(text, escaped):
    assert md_escape(text) == escaped


def test_markdown_rows_without_figures_and_with_acceptance():
    rep = _report(
        _s("fixed_1", 1, False, 0),
        _s("fixed_2", 2, True, 100, drafted=8, accepted=3),
        _s("adaptive", 4, True, 100),
        _s("adaptive", 5, True, 100),
    )
    md = summary_markdown(rep).splitlines()
    assert md[4] == "| fixed\\_1 | 1 | 0.0 | 1 | - | - | - | - | - | - | - | - | - |"
    assert md[5] == (
        "| **fixed\\_2** | 1 | 100.0 | 0 | 100.0 | 100 | 100 | 100 | 100 | 0.0 | 640.0 | 150.0 | 37.5 |"
    )
    assert "Adaptive: 1 K changes, converged at step none (k=5)." in md


# -- the knob verdict, order of samples -----------------------------------------------
def test_knob_reads_past_failed_and_undrafted_steps():
    steps = [
        _s("m", 8, False, 0),  # a failure first
        _s("m", 8, True, 10),  # a step without drafting counts
        _s("m", 1, True, 10, drafted=32, accepted=32),
        _s("m", 4, True, 10, drafted=128, accepted=32),
    ]
    assert check_knob(steps).message == "K took effect: drafted/pass 1.00 at K=1 vs 4.00 at K=4"


def test_knob_counts_a_single_pass_as_a_pass():
    # 5 tokens, 4 accepted: one pass, per pass still (not per request)
    steps = [_s("m", 1, True, 10, tok=5, drafted=2, accepted=4), _s("m", 2, True, 10, tok=5, drafted=3, accepted=4)]
    assert check_knob(steps).message == "K took effect: drafted/pass 2.00 at K=1 vs 3.00 at K=2"
    assert NO_EFFECT not in check_knob(steps).message
