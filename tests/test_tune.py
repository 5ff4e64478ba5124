"""The tune plan end to end on the embedded server: interleaved rounds, settle rows,
a no-speculation arm that really does not draft, and one verdict everywhere."""

import json
import subprocess
import sys

from helpers import csv_rows

CLI = [sys.executable, "-m", "halospec_tui"]
FAST = ["--sim-target-ms", "1.5", "--sim-reload-ms", "20"]


def run(args, timeout=300):
    return subprocess.run(
        CLI + args, capture_output=True, text=True, timeout=timeout, stdin=subprocess.DEVNULL
    )


def test_tune_plan_interleaves_settles_and_decides(tmp_path, no_leftovers):
    out = tmp_path / "tune.csv"
    p = run(["--no-ui", "--plan", "tune", "--modes", "nospec,fixed_1,fixed_4", "--rounds", "3",
             "--block", "2", "--settle", "1", "--seed", "11", "--backend", "sim", "--csv", str(out),
             *FAST])  # fmt: skip
    assert p.returncode == 0, p.stderr
    rows = csv_rows(out)
    assert [int(r["global_step"]) for r in rows] == list(range(1, len(rows) + 1))
    # Every round: each remaining arm runs a block of settle + 2 measured steps, in the
    # seeded shuffled order, with the same prompts for every arm in the round.
    from halospec_tui.schedule import round_order

    rounds = sorted({int(r["round"]) for r in rows})
    assert rounds[0] == 1 and rounds[-1] <= 3
    for rnd in rounds:
        mine = [r for r in rows if int(r["round"]) == rnd]
        arms = list(dict.fromkeys(r["mode"] for r in mine))
        assert arms == [a for a in round_order(["nospec", "fixed_1", "fixed_4"], 11, rnd) if a in arms]
        for pos, arm in enumerate(arms, start=1):
            block = [r for r in mine if r["mode"] == arm]
            assert [r["settle"] for r in block] == ["1", "0", "0"]
            assert {r["block_pos"] for r in block} == {str(pos)}
            # The reload that started the block is kept apart, on its first row (none when
            # the previous block ran the same K).
            before = rows[rows.index(block[0]) - 1] if rows.index(block[0]) else None
            changed = before is None or before["draft_length"] != block[0]["draft_length"]
            assert (block[0]["reload_ms"] != "") == changed
            assert all(r["reload_ms"] == "" for r in block[1:])
        measured_prompts = {
            arm: [r["prompt_id"] for r in mine if r["mode"] == arm and r["settle"] == "0"]
            for arm in arms
        }
        assert len({tuple(v) for v in measured_prompts.values()}) == 1
    nospec = [r for r in rows if r["mode"] == "nospec"]
    assert nospec and all(r["draft_length"] == "0" and r["drafted"] == "0" for r in nospec)
    assert all(int(r["drafted"]) > 0 for r in rows if r["mode"] == "fixed_4")

    summary = json.loads((tmp_path / "tune_summary.json").read_text())
    v = summary["verdict"]
    assert v["metric"] == "tokens/s" and v["tolerance"] == 0.02
    assert {a["arm"] for a in v["arms"]} == {"nospec", "fixed_1", "fixed_4"}
    assert v["best"] in ("nospec", "fixed_1", "fixed_4")
    for a in v["arms"]:
        assert a["tps"]["lo"] <= a["tps"]["value"] <= a["tps"]["hi"]
        assert a["n"] == sum(1 for r in rows if r["mode"] == a["arm"] and r["settle"] == "0")
    assert v["decision"]["requests"] == len(rows)
    assert v["decision"]["settle"] == sum(1 for r in rows if r["settle"] == "1")
    assert v["recommended_k"] in (0, 1, 4)
    assert v["speculation_vs_nospec"] is not None
    txt = (tmp_path / "tune_summary.txt").read_text()
    assert "Verdict (tokens/s, 95% intervals, Student-t over rounds" in txt
    assert "recommendation: " in txt and 'Lemonade /api/v1/load: {"llamacpp_args": "' in txt
    assert "speculation (" in txt and "nospec" in txt
    md = (tmp_path / "tune_summary.md").read_text()
    assert "## Verdict" in md and v["recommendation"] in md
    # The headless lines say where the verdict stands after each round.
    assert "=== ROUND 1/3 (steady):" in p.stdout and "== round 1/3: best " in p.stdout
    # report: the same verdict from the CSV alone.
    rep = run(["report", str(out)])
    assert rep.returncode == 0, rep.stderr
    assert rep.stdout.strip() == txt.strip()
    rep_json = json.loads(run(["report", str(out), "--format", "json"]).stdout)
    assert rep_json["verdict"] == v
    plot = run(["report", str(out), "--plot"])
    assert plot.returncode == 0 and "tokens/s per arm (95% CI)" in plot.stdout
    assert "latency by step (ms)" in plot.stdout


def test_tune_with_load_lays_the_timeline_on_rounds(tmp_path, no_leftovers):
    out = tmp_path / "load.csv"
    p = run(["--no-ui", "--plan", "tune", "--modes", "fixed_1,fixed_3", "--rounds", "4", "--block", "1",
             "--settle", "0", "--no-until-decisive", "--load", "--load-round", "2", "--load-rounds", "2",
             "--load-workers", "1", "--backend", "sim", "--csv", str(out), *FAST])  # fmt: skip
    assert p.returncode == 0, p.stderr
    rows = csv_rows(out)
    for arm in ("fixed_1", "fixed_3"):
        assert [(r["round"], r["phase"]) for r in rows if r["mode"] == arm] == [
            ("1", "steady"), ("2", "load"), ("3", "load"), ("4", "recovery"),
        ]  # fmt: skip
    assert "-- load ON: round 2 (load timeline)" in p.stdout
    assert "-- load off: round 4: load timeline over" in p.stdout
    txt = (tmp_path / "load_summary.txt").read_text()
    assert "fixed_1    load" in txt and "fixed_3    recovery" in txt  # per arm x phase


def test_the_last_round_line_says_what_the_summary_says(tmp_path, no_leftovers):
    """With --rounds below the first stop the run ends on rounds: its last round line
    must carry the verdict's own statement, decisive or not, never a guess of its own."""
    out = tmp_path / "short.csv"
    p = run(["--no-ui", "--plan", "tune", "--modes", "nospec,fixed_4", "--rounds", "2",
             "--block", "1", "--settle", "0", "--backend", "sim", "--csv", str(out), *FAST])  # fmt: skip
    assert p.returncode == 0, p.stderr
    last = [ln for ln in p.stdout.splitlines() if ln.startswith("== round 2/2:")]
    v = json.loads((tmp_path / "short_summary.json").read_text())["verdict"]
    assert len(last) == 1 and last[0].endswith(f"stopping (rounds used up): {v['statement']}")
    txt = (tmp_path / "short_summary.txt").read_text()
    assert f"decision: {v['statement']}" in txt
