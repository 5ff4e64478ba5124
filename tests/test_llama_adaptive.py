"""pmin:0.75 and adaptive:model through the llama-server actuator, on the real binary and
the suite's tiny GGUF models: both take effect, as the server's own timings show."""

import json
import re
import subprocess
import sys

from adaptive_replay import replay_model
from helpers import LLAMA_SERVER, csv_rows, needs_llama

from halospec_tui.controllers.model import ModelController
from halospec_tui.specflags import k_from_args, p_min_from_args
from halospec_tui.tiny_gguf import make_models

CLI = [sys.executable, "-m", "halospec_tui"]
BINARY = LLAMA_SERVER
pytestmark = [
    *needs_llama,
]
STARTING = re.compile(r"^info: starting .*$", re.M)


def started_with(stderr: str) -> list[tuple[int, float]]:
    """(K, p_min) of each llama-server the harness started, read back from its command
    line by the project's own strict reader (K 0: no draft model, --spec-type none)."""
    out = []
    for line in STARTING.findall(stderr):
        cmd = line.removeprefix("info: starting ")
        out.append((k_from_args(cmd), p_min_from_args(cmd)))
    return out


def passes(r: dict[str, str]) -> int:
    return int(r["tokens"]) - int(r["accepted"])


def per_pass(rows: list[dict[str, str]]) -> float:
    return sum(int(r["drafted"] or 0) for r in rows) / sum(passes(r) for r in rows)


def test_pmin_and_model_take_effect_on_a_real_llama_server(tmp_path, no_leftovers):
    target, draft = make_models(tmp_path / "gguf")
    out = tmp_path / "arms.csv"
    p = subprocess.run(
        CLI + ["--no-ui", "--plan", "quick", "--modes", "fixed_16,adaptive:model,pmin:0.75",
               "--warmup", "1", "--steps", "4", "--adaptive-steps", "10", "--cooldown", "0",
               "--warmup-sleep", "0", "--actuator", "llama-server", "--llama-server", BINARY,
               "-m", str(target), "-md", str(draft), "--csv", str(out)],
        capture_output=True, text=True, timeout=600, stdin=subprocess.DEVNULL,
    )  # fmt: skip
    assert p.returncode == 0, p.stderr[-3000:]
    rows = csv_rows(out)
    assert all(r["success"] == "1" for r in rows), [r["error"] for r in rows]
    arm = {m: [r for r in rows if r["mode"] == m] for m in ("fixed_16", "adaptive:model", "pmin:0.75")}
    assert [len(v) for v in arm.values()] == [4, 10, 4]
    assert all(r["confirmed_k"] == r["draft_length"] for r in rows)

    # The harness restarted llama-server for each new (K, p_min), in run order: fixed_16
    # (p_min 0), the model arm's warmup K 4 and each K it moved to, then pmin:0.75 with
    # n_max 16 and --spec-draft-p-min 0.75 (its warmup start; its steps need no restart).
    applied = [(16, 0.0)] * 5 + [(4, 0.0)] + [(int(r["draft_length"]), 0.0) for r in arm["adaptive:model"]] \
        + [(16, 0.75)] * 5  # fmt: skip
    restarts = [a for i, a in enumerate(applied) if i == 0 or a != applied[i - 1]]
    started = started_with(p.stderr)
    assert started == restarts, p.stderr[-3000:]

    # pmin: at n_max 16 the server stopped drafting where the draft was unsure. Per
    # verification pass it drafted far below 16, and far below fixed_16 on the same
    # prompts (the same steps of the run's prompt sequence, the same server build).
    for r in arm["pmin:0.75"]:
        assert int(r["draft_length"]) == 16 and int(r["drafted"]) <= 16 * passes(r), r
    assert [r["prompt_id"] for r in arm["pmin:0.75"]] == [r["prompt_id"] for r in arm["fixed_16"]]
    assert per_pass(arm["pmin:0.75"]) < 0.5 * per_pass(arm["fixed_16"]), (
        per_pass(arm["pmin:0.75"]), per_pass(arm["fixed_16"]))  # fmt: skip
    assert per_pass(arm["pmin:0.75"]) < 8

    # model: every K it ran is what its model chose from the server's timings of the
    # steps before (replayed exactly), and the server drafted within that K
    model = arm["adaptive:model"]
    ks = [int(r["draft_length"]) for r in model]
    assert replay_model(model) == ks
    for r in model:
        assert int(r["accepted"]) <= int(r["drafted"]) <= int(r["draft_length"]) * passes(r), r
    by_k: dict[int, list[dict[str, str]]] = {}
    for r in model:
        by_k.setdefault(int(r["draft_length"]), []).append(r)
    if len(by_k) > 1:  # K moved: drafting moved with it
        lo, hi = min(by_k), max(by_k)
        assert per_pass(by_k[lo]) < per_pass(by_k[hi]), {k: per_pass(v) for k, v in by_k.items()}
    # its view after the last step, from the server's own figures (acceptance from the
    # accepted/drafted counts, cost per pass from predicted_ms): the K it holds is the
    # argmax of expected tokens/s there, unless the gain is under its 3% hysteresis or
    # the saving over 20 steps does not pay for a restart as long as those it measured
    c = ModelController()
    for r in model:
        c.observe(int(r["draft_length"]), True, int(r["latency_ms"]), _obs(r))
    view = c.view()
    assert view is not None and view.acceptance is not None and 0 < view.acceptance <= 1
    table = dict(view.expected_tps)
    assert sorted(table) == list(range(9)) and view.k == c.next_k()
    best = max(table, key=lambda k: (table[k], -k))
    now, new = table[view.k], table[best]
    saving_ms = int(model[-1]["tokens"]) * 1000.0 * (1 / now - 1 / new)
    worst_reload = max(int(r["reload_ms"] or 0) for r in model)
    assert view.k == best or new / now - 1 < 0.03 or saving_ms * 20 <= worst_reload, (
        view, worst_reload)  # fmt: skip
    summary = json.loads((tmp_path / "arms_summary.json").read_text())
    m = next(s for s in summary["modes"] if s["mode"] == "adaptive:model")
    assert m["k_changes"] == sum(a != b for a, b in zip(ks[:-1], ks[1:], strict=True))


def _obs(r: dict[str, str]):
    from halospec_tui.controllers.base import Observation

    return Observation(
        int(r["draft_length"]), True, int(r["latency_ms"]), int(r["tokens"]), int(r["drafted"]),
        int(r["accepted"]), float(r["predicted_ms"]), int(r["reload_ms"]) if r["reload_ms"] else None,
    )  # fmt: skip
