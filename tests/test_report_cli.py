"""`halospec-tui report` on the files a hostile user (or a crash, or a shuffle) leaves.

Each test goes through the command line, as a user runs it. CSVs are written from
StepRecords by the package's own row format, then edited where a test needs a cell
no run writes.
"""

import csv
import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from helpers import FakeClientBase

from halospec_tui.actuators import FieldActuator
from halospec_tui.cli import main
from halospec_tui.client import Reply
from halospec_tui.events import ListSink, StepRecord
from halospec_tui.plan import customise, named_plan
from halospec_tui.results import COLUMNS, ORIGINAL_COLUMNS, record_cells, summary_paths
from halospec_tui.runner import RunConfig, Runner

CLI = [sys.executable, "-m", "halospec_tui"]
DATA = Path(__file__).parent / "data"


def cli(args, cwd, timeout=120):
    return subprocess.run(CLI + [str(a) for a in args], capture_output=True, text=True,
                          timeout=timeout, stdin=subprocess.DEVNULL, cwd=cwd)  # fmt: skip


def rec(g, arm="fixed_2", run_id="R", lat=None, rnd=None, **kw):
    k = 0 if arm == "nospec" else int(arm.split("_")[1])
    return StepRecord(g, g, arm, "steady", k, True, lat or 100 + g, 64, run_id=run_id,
                      round=rnd, **kw)  # fmt: skip


def write(p, records, original=False):
    with open(p, "w", newline="") as fh:
        w = csv.writer(fh, lineterminator="\n")
        w.writerow(ORIGINAL_COLUMNS if original else COLUMNS)
        for r in records:
            cells = record_cells(r)
            w.writerow(cells[: len(ORIGINAL_COLUMNS)] if original else cells)
    return p


def rounds_of(rounds, arms=("nospec", "fixed_2"), per_block=2, run_id="R"):
    """An interleaved run: each round a block of `per_block` steps per arm."""
    out = []
    for rnd in rounds:
        for arm in arms:
            for j in range(per_block):
                lat = (150 if arm == "nospec" else 100) + rnd + 3 * j
                out.append(rec(len(out) + 1, arm, run_id, lat=lat, rnd=rnd))
    return out


def edit(p, line, column, value):
    """Set one cell of a CSV (line 2 is the first row): a value the writer never writes."""
    rows = list(csv.reader(p.open()))
    rows[line - 1][COLUMNS.index(column)] = value
    with p.open("w", newline="") as fh:
        csv.writer(fh, lineterminator="\n").writerows(rows)
    return p


def strict(text):
    """JSON as a strict parser reads it: NaN, Infinity and -Infinity are refused."""

    def refuse(token):
        raise ValueError(f"not JSON: {token}")

    return json.loads(text, parse_constant=refuse)


# -- --plot with too little data for a CI ------------------------------------------------
@pytest.mark.parametrize(
    "records,note",
    [
        ([rec(1)], "no CI bar for fixed_2: not enough rounds"),  # a one-row CSV
        (rounds_of([1]), "no CI bar for nospec, fixed_2: not enough rounds"),  # --rounds 1
        # a run stopped early: fixed_2 measured twice, fixed_4 once
        ([rec(1), rec(2), rec(3, "fixed_4")], "no CI bar for fixed_4: not enough rounds"),
    ],
)
def test_plot_draws_an_arm_without_a_ci_as_a_point_and_says_so(tmp_path, records, note):
    p = write(tmp_path / "short.csv", records)
    r = cli(["report", p, "--plot"], tmp_path)
    assert r.returncode == 0, r.stderr
    assert "Traceback" not in r.stderr and r.stderr == ""
    assert "tokens/s per arm (95% CI)" in r.stdout and "latency by step (ms)" in r.stdout
    assert note in r.stdout.splitlines()
    assert "nan" not in r.stdout.lower()


def test_plot_goes_with_text_only(tmp_path):
    p = write(tmp_path / "r.csv", rounds_of([1, 2]))
    for fmt in ("json", "md"):
        r = cli(["report", p, "--plot", "--format", fmt], tmp_path)
        assert r.returncode == 2 and r.stdout == ""
        assert r.stderr == "halospec-tui: error: --plot draws in the terminal: use it with --format text\n"


# -- one document per report -----------------------------------------------------------------
def two_runs(tmp_path):
    return write(tmp_path / "two.csv", [rec(1, run_id="r1"), rec(2, run_id="r1"),
                                        rec(1, "fixed_4", run_id="r2")])  # fmt: skip


def test_json_of_a_file_of_several_runs_is_one_document(tmp_path):
    p = two_runs(tmp_path)
    r = cli(["report", p, "--format", "json"], tmp_path)
    assert r.returncode == 0, r.stderr
    docs = strict(r.stdout)
    assert [d["meta"] for d in docs] == [
        {"run": 1, "run_id": "r1", "rows": 2}, {"run": 2, "run_id": "r2", "rows": 1},
    ]  # fmt: skip
    assert [[m["mode"] for m in d["modes"]] for d in docs] == [["fixed_2"], ["fixed_4"]]
    assert r.stderr == "run 1 (r1): 2 rows\nrun 2 (r2): 1 rows\n"  # progress: not in the document
    one = cli(["report", p, "--format", "json", "--run", "2"], tmp_path)
    assert one.returncode == 0 and one.stderr == "run 2 (r2): 1 rows\n"
    assert strict(one.stdout) == docs[1]


def test_markdown_of_a_file_of_several_runs_is_one_document_with_a_section_per_run(tmp_path):
    p = two_runs(tmp_path)
    r = cli(["report", p, "--format", "md"], tmp_path)
    assert r.returncode == 0 and r.stderr == ""
    sections = []
    for n, label in ((1, "run 1 (r1): 2 rows"), (2, "run 2 (r2): 1 rows")):
        alone = cli(["report", p, "--format", "md", "--run", n], tmp_path).stdout
        first, title, body = alone.split("\n", 2)
        assert (first, title) == (f"<!-- {label} -->", "# HaloSpec benchmark summary")
        body = body.removesuffix("\n")  # print's
        sections.append(f"## {label}\n" + body.replace("\n## Verdict\n", "\n### Verdict\n"))
    assert r.stdout == "# HaloSpec benchmark summary\n\n" + "\n".join(sections) + "\n"
    assert [x for x in r.stdout.splitlines() if x.startswith("#")] == [
        "# HaloSpec benchmark summary", "## run 1 (r1): 2 rows", "### Verdict",
        "## run 2 (r2): 1 rows", "### Verdict",
    ]  # fmt: skip


# -- strict JSON from every CSV the suite holds or writes ----------------------------------
def suite_csvs(tmp_path):
    """tests/data's CSVs, and CSVs as the tests write them: one row, appended runs of
    the original's format, rounds, a torn last row, server times that make a server
    tokens/s too large for a float, failures only, settle rows only."""
    written = {
        "one_row": [rec(1)],
        "rounds": rounds_of([1, 2, 3, 4]),
        "tiny_server_time": [rec(g, drafted=4, accepted=2, predicted_n=64, predicted_ms=812.5)
                             for g in (1, 2)],
        "failures_only": [StepRecord(1, 1, "fixed_2", "steady", 2, False, 0, 0, run_id="R")],
        "settle_only": [rec(1, settle=True, rnd=1)],
        "zero_latency": [rec(1, lat=0), rec(2, "nospec", lat=0)],
    }
    paths = [write(tmp_path / f"{name}.csv", rows) for name, rows in written.items()]
    for line in (2, 3):  # 64 tokens in 1e-323 s: more tokens/s than a float holds
        edit(tmp_path / "tiny_server_time.csv", line, "predicted_ms", "1e-320")
    paths.append(write(tmp_path / "original.csv", [rec(1), rec(2), rec(1, lat=90)], original=True))
    torn = write(tmp_path / "torn.csv", [rec(1), rec(2)])
    torn.write_text(torn.read_text() + "3,3,fixed_2,ste")
    paths.append(torn)
    return sorted(DATA.glob("*.csv")) + paths


def test_report_json_is_strict_json_for_every_csv_of_the_suite(tmp_path, capsys):
    csvs = suite_csvs(tmp_path)
    assert DATA / "golden.csv" in csvs
    for p in csvs:
        assert main(["report", str(p), "--format", "json"]) == 0, p
        out = capsys.readouterr().out
        doc = strict(out)  # one document, every number finite
        runs = doc if isinstance(doc, list) else [doc]
        for n in range(1, len(runs) + 1):
            assert main(["report", str(p), "--format", "json", "--run", str(n)]) == 0
            assert strict(capsys.readouterr().out) == runs[n - 1]
    tiny = strict(cli(["report", tmp_path / "tiny_server_time.csv", "--format", "json"], tmp_path).stdout)
    assert tiny["modes"][0]["server_tps"] is None  # no finite figure


# -- absurd cells: bounded, named by file and line, exit 2 -------------------------------------
@pytest.mark.parametrize(
    "cell,value,reason",
    [
        ("round", str(10**30), "round='1000000000000000000000000000000' is above 1000"),
        ("round", "1001", "round='1001' is above 1000"),
        ("round", "2.5", "round='2.5' is not a whole number"),
        ("block_pos", "1000", "block_pos='1000' is above 999"),
        ("reload_ms", "1e308", "reload_ms='1e308' is above 86400000"),
        ("predicted_ms", "86400000.5", "predicted_ms='86400000.5' is above 86400000"),
        ("latency_ms", "86400001", "latency_ms=86400001 is above 86400000"),
        ("tokens", "10000001", "tokens=10000001 is above 10000000"),
        ("drafted", "10000001", "drafted='10000001' is above 10000000"),
        ("step", "1000000001", "step=1000000001 is above 1000000000"),
        ("global_step", str(10**60), "global_step=1000000000000000000000000000000000000000... is above 1000000000"),
        ("draft_length", "17", "draft_length=17 is above 16"),
    ],
)
def test_report_refuses_a_cell_no_run_writes(tmp_path, capsys, cell, value, reason):
    p = edit(write(tmp_path / "absurd.csv", rounds_of([1, 2])), 4, cell, value)
    assert main(["report", str(p)]) == 2
    out, err = capsys.readouterr()
    assert out == "" and err == f"halospec-tui: error: {p}:4: not a results row ({reason})\n"


def test_decision_counts_the_rounds_that_ran_not_the_largest_number(tmp_path):
    # rounds numbered 1, 3, 7, 20; fixed_4 ran in the first three only
    records = rounds_of([1, 3, 7, 20])
    extra = [rec(len(records) + i + 1, "fixed_4", lat=130, rnd=r) for i, r in enumerate((1, 3, 7))]
    p = write(tmp_path / "gaps.csv", records + extra)
    r = cli(["report", p], tmp_path)
    assert r.returncode == 0, r.stderr
    took = [x for x in r.stdout.splitlines() if x.startswith("took: ")]
    assert took == ["took: after 4 rounds; 19 requests (19 measured, 0 settle)"]
    doc = strict(cli(["report", p, "--format", "json"], tmp_path).stdout)
    assert doc["verdict"]["decision"]["rounds"] == 4
    fixed_4 = next(a for a in doc["verdict"]["arms"] if a["arm"] == "fixed_4")
    # slower (130 ms a step) in its three rounds: the race drops it at round 7, by number
    assert (fixed_4["dropped_after_round"], fixed_4["rounds"]) == (7, 3)


# -- rows out of order ----------------------------------------------------------------------
def test_rows_of_one_run_out_of_order_are_named_on_stderr(tmp_path):
    rows = [rec(g) for g in (1, 2, 5, 3, 4, 6)]  # global_step goes back at line 5
    p = write(tmp_path / "shuffled.csv", rows)
    r = cli(["report", p], tmp_path)
    assert r.returncode == 0, r.stderr
    assert r.stderr == (
        f"halospec-tui: warning: {p}:5: rows out of order: global_step 3 follows 5 within "
        "run R; read as another run from here\n"
    )
    assert "run 1 (R): 3 rows" in r.stdout and "run 2 (R): 3 rows" in r.stdout


def test_shuffled_rows_of_one_run_warn_once_not_once_per_split(tmp_path):
    order = [7, 2, 9, 1, 4, 3, 10, 5, 8, 6]
    p = write(tmp_path / "shuffled.csv", [rec(g) for g in order])
    r = cli(["report", p, "--format", "json"], tmp_path)
    assert r.returncode == 0
    warnings = [x for x in r.stderr.splitlines() if "warning" in x]
    assert warnings == [
        f"halospec-tui: warning: {p}:3: rows out of order: global_step 2 follows 7 within "
        "run R; read as another run from here"
    ]
    assert len(strict(r.stdout)) == 6  # 7 | 2 9 | 1 4 | 3 10 | 5 8 | 6


def test_a_run_id_that_comes_back_after_another_run_is_named(tmp_path):
    rows = [rec(1, run_id="A"), rec(2, run_id="A"), rec(1, run_id="B"), rec(3, run_id="A")]
    p = write(tmp_path / "mixed.csv", rows)
    r = cli(["report", p], tmp_path)
    assert r.returncode == 0
    assert r.stderr == (
        f"halospec-tui: warning: {p}:5: rows out of order: run A (first seen at line 2) "
        "comes back after run B; read as another run from here\n"
    )


def test_appended_runs_of_the_original_format_are_in_order(tmp_path):
    p = write(tmp_path / "orig.csv", [rec(1), rec(2), rec(1), rec(2), rec(3)], original=True)
    r = cli(["report", p], tmp_path)
    assert r.returncode == 0 and r.stderr == ""
    assert "run 1: 2 rows" in r.stdout and "run 2: 3 rows" in r.stdout


# -- a run's own summary files and `report` on its CSV ---------------------------------------
class TimedClient(FakeClientBase):
    """Answers with server timings, a little slower each request."""

    base_url = "http://scripted"

    def __init__(self) -> None:
        self.n = 0

    def chat(self, body):
        self.n += 1
        k = body.get("speculative_draft_length") or 0
        return Reply(True, 900 - 20 * k + 10 * self.n, 64, drafted=16 * k, accepted=30 if k else 0,
                     predicted_n=64, predicted_ms=812.25 + self.n / 8, prompt_ms=3.125)  # fmt: skip


def test_summary_files_of_each_run_equal_report_of_that_run_of_an_appended_csv(tmp_path):
    out = tmp_path / "two_runs.csv"
    quick = customise(named_plan("quick"), arms=["fixed_1", "fixed_3"], steps=3, warmup=1,
                      warmup_sleep_s=0, cooldown_s=0)  # fmt: skip
    tune = customise(named_plan("tune"), arms=["nospec", "fixed_2"], rounds=3, block=2,
                     until_decisive=False)  # fmt: skip
    files = []
    for n, plan in enumerate((quick, tune), start=1):
        runner = Runner(RunConfig(plan, str(out)), TimedClient(), FieldActuator(), ListSink())
        runner.run()
        kept = {}
        for kind, path in summary_paths(out).items():
            kept[kind] = shutil.copy(path, tmp_path / f"run{n}.{kind}")
        files.append((runner.config.run_id, len(runner.records), kept))
    labels = [f"run {n} ({rid}): {rows} rows" for n, (rid, rows, _) in enumerate(files, start=1)]
    for n, (_, _, kept) in enumerate(files, start=1):
        txt = Path(kept["txt"]).read_text()
        md = Path(kept["md"]).read_text()
        text = cli(["report", out, "--run", n], tmp_path)
        assert text.returncode == 0, text.stderr
        assert text.stdout == f"{labels[n - 1]}\n{txt}\n"
        assert cli(["report", out, "--run", n, "--format", "md"], tmp_path).stdout == (
            f"<!-- {labels[n - 1]} -->\n{md}\n"
        )
        doc = strict(cli(["report", out, "--run", n, "--format", "json"], tmp_path).stdout)
        written = strict(Path(kept["json"]).read_text())
        assert {**doc, "meta": None} == {**written, "meta": None}
        assert doc["meta"]["run_id"] == written["meta"]["run_id"]
    every = cli(["report", out], tmp_path).stdout
    assert every == "".join(
        f"{label}\n{Path(kept['txt']).read_text()}\n" for label, (_, _, kept) in zip(labels, files, strict=True)
    )
    docs = strict(cli(["report", out, "--format", "json"], tmp_path).stdout)
    assert [{**d, "meta": None} for d in docs] == [
        {**strict(Path(kept["json"]).read_text()), "meta": None} for _, _, kept in files
    ]


def test_no_bound_that_is_not_a_finite_number_reaches_plotext():
    from halospec_tui.plots import tps_plot
    from halospec_tui.race import Interval
    from halospec_tui.verdict import ArmLine, Verdict

    def arm(name, tps):
        return ArmLine(name, 2, 4, 2, tps, None, None, None, None)

    nan, inf = float("nan"), float("inf")
    arms = (arm("fixed_1", Interval(300.0, 290.0, 310.0)), arm("fixed_2", Interval(280.0, nan, nan)),
            arm("fixed_3", Interval(250.0, -inf, inf)), arm("fixed_4", Interval(240.0, 230.0, inf)),
            arm("fixed_5", None), arm("fixed_6", Interval(nan, nan, nan)))  # fmt: skip
    v = Verdict(arms, "fixed_1", False, "fixed_1", 1, 0.02, "", True)
    text = tps_plot(v, 80)
    assert text.splitlines()[-1] == "no CI bar for fixed_2, fixed_3, fixed_4: not enough rounds"
    assert "fixed_5" not in text and "fixed_6" not in text  # no figure: not drawn
