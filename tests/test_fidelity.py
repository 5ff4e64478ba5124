"""The classic plan against a scripted server, checked against a line-by-line
transliteration of the original Rust `run_mode` (src/main.rs)."""

import math

from helpers import FakeClientBase, csv_rows

from halospec_tui.actuators import FieldActuator
from halospec_tui.client import Reply
from halospec_tui.events import ListSink
from halospec_tui.plan import customise, named_plan
from halospec_tui.results import build_report, read_runs
from halospec_tui.results.export_text import classic_table
from halospec_tui.runner import RunConfig, Runner


class ScriptedClient(FakeClientBase):
    """Answers with scripted latencies (None: a failed step) and records the K it was sent."""

    base_url = "http://scripted"
    model = "Qwen3-0.6B-GGUF"

    def __init__(self, script):
        self.script = list(script)
        self.sent_k = []

    def chat(self, body):
        self.sent_k.append(body["speculative_draft_length"])
        lat = self.script.pop(0)
        if lat is None:
            return Reply(False, 0, 0, attempts=3, error="HTTP 500: scripted")
        return Reply(True, lat, 64)



def original_run_mode(warm, steps, fixed):
    """Transliteration of the original's adaptive/fixed loop: returns [(K, ok, latency)]."""
    ok_warm = [x for x in warm if x is not None]
    low, high = 9000, 22000
    if fixed is None and ok_warm:
        v = sorted(ok_warm)
        n = len(v)
        pct = lambda p: v[min(max(math.ceil(p / 100 * n) - 1, 0), n - 1)]  # noqa: E731
        low, high = int(pct(50) * 0.85), int(pct(95) * 1.05)
    last, ema, draft = None, None, fixed or 4
    out = []
    for lat in steps:
        if fixed is not None:
            chosen = fixed
        elif last is None:
            chosen = draft
        elif last < low:
            chosen = min(draft + 1, 8)
        elif last > high:
            chosen = min(max(draft - 2, 1), 8)
        else:
            chosen = draft + 1 if draft < 6 else draft
        if lat is not None:
            ema = lat if ema is None else 0.4 * lat + 0.6 * ema
            last = int(ema)
            draft = chosen
        else:
            draft = 1
        out.append((chosen, lat is not None, lat or 0))
    return out


WARM_FIXED = [900, 950, 1000, 1050, 1100]
WARM_ADAPTIVE = [1000, None, 1176, 1300, 1905]  # one failed warmup: p50 1176, p95 1905
FIXED_STEPS = [1000, 1010, None, 990, 1200, 1000, 1005, 995, 1002, 998]
ADAPTIVE_STEPS = [
    800,
    700,
    1500,
    2600,
    2600,
    None,
    900,
    800,
    1000,
    1950,
    1950,
    2100,
    1000,
    1000,
    1000,
]


def test_classic_plan_reproduces_the_original_step_for_step(tmp_path):
    plan = customise(
        named_plan("classic"), arms=["fixed_3", "adaptive"], warmup_sleep_s=0, cooldown_s=0
    )
    assert [(m.warmup_steps, m.measured_steps) for m in plan.arms] == [(5, 10), (5, 15)]
    client = ScriptedClient(WARM_FIXED + FIXED_STEPS + WARM_ADAPTIVE + ADAPTIVE_STEPS)
    csv = tmp_path / "results_phase0.csv"
    Runner(RunConfig(plan, str(csv)), client, FieldActuator(), ListSink()).run()

    expected = [("fixed_3", t) for t in original_run_mode(WARM_FIXED, FIXED_STEPS, 3)]
    expected += [("adaptive", t) for t in original_run_mode(WARM_ADAPTIVE, ADAPTIVE_STEPS, None)]
    rows = csv_rows(csv)
    got = [
        [
            r["global_step"],
            r["step"],
            r["mode"],
            r["phase"],
            r["draft_length"],
            r["success"],
            r["latency_ms"],
            r["tokens"],
        ]
        for r in rows
    ]
    want = []
    for g, (mode, (k, ok, lat)) in enumerate(expected, start=1):
        step = g if mode == "fixed_3" else g - 10
        want.append(
            [
                str(g),
                str(step),
                mode,
                "steady",
                str(k),
                "1" if ok else "0",
                str(lat),
                "64" if ok else "0",
            ]
        )
    assert got == want
    # warmups are sent at the mode's K (4 for adaptive) and never logged
    assert client.sent_k[:5] == [3] * 5 and client.sent_k[15:20] == [4] * 5
    adaptive_ks = [int(r["draft_length"]) for r in rows if r["mode"] == "adaptive"]
    # the trace by hand (low 999, high 2000): EMA 1056 keeps K=6 at step 4, 2044 > high
    # cuts it to 4, the failure resets to 1 and the next rule cuts again (1 - 2 -> 1)
    assert adaptive_ks == [4, 5, 6, 6, 6, 4, 1, 2, 3, 4, 5, 6, 6, 6, 6]
    assert (rows[-1]["low_ms"], rows[-1]["high_ms"]) == ("999", "2000")

    text = classic_table(build_report(read_runs(csv)[0].samples))
    assert "[Adaptive Behavior] draft_length changes=9 | no convergence within run (k=5)" in text
    assert text.splitlines()[6].startswith("fixed_3        10     90.0%         1")
