"""The tune plan and the model controller on the real llama-server, where every change
of K is a restart: a pair where speculation loses, and one where it wins (K 1 to 4
within about 5% of each other, K 0 and K 8 clearly slower: benchmarks/real_pairs.py).

The truth sets below come from that benchmark's tables (tests/test_real_pairs.py pins
each pair's regime); the figures compared are decode tokens/s from the server's
timings, which a busy machine moves less than wall time.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from helpers import LLAMA_SERVER, csv_rows, needs_llama

CLI = [sys.executable, "-m", "halospec_tui", "--no-ui"]
BINARY = LLAMA_SERVER
# quiet: these compare speeds across moments (a controller's moves rest on them), so
# scripts/test.sh runs them alone after the parallel pass rather than beside 3 workers
pytestmark = [*needs_llama, pytest.mark.quiet]
MID_GOOD = {1, 2, 3, 4}  # mid pair: within about 5% of the best (real_pairs.py, 2026-12-06)


def run(pair: tuple[Path, Path], csv: Path, *args: str, timeout: float = 600) -> None:
    target, draft = pair
    p = subprocess.run(
        [*CLI, *args, "--actuator", "llama-server", "--llama-server", str(BINARY),
         "-m", str(target), "-md", str(draft), "--csv", str(csv)],
        capture_output=True, text=True, timeout=timeout, stdin=subprocess.DEVNULL,
    )  # fmt: skip
    assert p.returncode == 0, p.stderr[-3000:]


def test_where_speculation_loses_the_model_arm_ends_at_k0(model_pair, tmp_path, no_leftovers):
    csv = tmp_path / "loses.csv"
    run(model_pair("loses"), csv, "--plan", "quick", "--modes", "nospec,adaptive:model",
        "--warmup", "0", "--steps", "60", "--adaptive-steps", "60", "--cooldown", "0")  # fmt: skip
    ks = [int(r["draft_length"]) for r in csv_rows(csv) if r["mode"] == "adaptive:model"]
    # it starts at K 4, measures plain decoding once (two restarts of ~0.2 s are well
    # within a quarter of its 60 steps of ~50 ms), and stays there: it never measured
    # K 0 before, and ran this pair at 0.69x nospec
    assert ks[0] == 4 and ks[1:] == [0] * 59, ks


@pytest.mark.xdist_group("mid_pair")
def test_where_speculation_wins_tune_recommends_a_k_within_the_truths_set(
    model_pair, tmp_path, no_leftovers
):
    csv = tmp_path / "mid.csv"
    run(model_pair("mid"), csv, "--plan", "tune", "--modes", "nospec,fixed_2,fixed_4,fixed_8",
        "--no-screen", "--rounds", "4", "--block", "2", "--settle", "0", "--metric", "server",
        timeout=900)  # fmt: skip
    v = json.loads(csv.with_name("mid_summary.json").read_text())["verdict"]
    assert v["recommended_k"] in MID_GOOD, v["statement"]
    assert v["metric"] == "decode tokens/s"


@pytest.mark.xdist_group("mid_pair")
def test_where_speculation_wins_the_model_arm_settles_within_the_set_and_reloads_little(
    model_pair, tmp_path, no_leftovers
):
    csv = tmp_path / "model.csv"
    run(model_pair("mid"), csv, "--plan", "tune", "--modes", "fixed_2,adaptive:model",
        "--no-until-decisive", "--no-screen", "--rounds", "5", "--block", "3", "--settle", "0",
        timeout=900)  # fmt: skip
    rows = [r for r in csv_rows(csv) if r["mode"] == "adaptive:model"]
    ks = [int(r["draft_length"]) for r in rows]
    # K 4 to start, K 0 once (the measurement of plain decoding), then within the set
    assert ks[0] == 4 and ks[1] == 0 and set(ks[2:]) <= MID_GOOD, ks
    own = [i for i in range(1, len(ks)) if ks[i] != ks[i - 1]]
    assert len(own) <= 3, ks  # the move to K 0, back, and at most one more
    reload_ms = sum(int(rows[i]["reload_ms"] or 0) for i in own)
    busy_ms = sum(int(r["latency_ms"]) for r in rows)
    assert reload_ms <= 0.05 * busy_ms, (reload_ms, busy_ms)
