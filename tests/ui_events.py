"""A recorded run, built deterministically from real engine events, for the app tests.

`recorded_run()` is the whole run; `upto(events, pred)` cuts it where a snapshot wants
the monitor to be. Values are fixed so every rendering is the same.
"""

from __future__ import annotations

from collections.abc import Callable

from halospec_tui.events import (
    Calibrated,
    Event,
    KnobVerdict,
    LoadChanged,
    LogLine,
    ModeFinished,
    ModeInfo,
    ModeStarted,
    PhaseChanged,
    RunFinished,
    RunStarted,
    StepDone,
    StepRecord,
    WarmupStep,
)
from halospec_tui.results import build_report, sample_from_record, summary_text
from halospec_tui.stats import summarize_mode

MODES = (("fixed_2", 2, 6), ("fixed_5", 5, 6), ("adaptive", 4, 10))
WARMUP = 2
LONG_LOG = (
    "no server at http://localhost:13305 or http://localhost:8080 answered in time; "
    "this line is long on purpose so the log pane has to wrap it rather than cut it"
)


def _latency(mode: str, step: int, phase: str) -> int:
    base = {"fixed_2": 420, "fixed_5": 360, "adaptive": 380}[mode]
    wobble = (step * 37) % 50
    return base + wobble + (260 if phase == "load" else 40 if phase == "recovery" else 0)


def recorded_run() -> list[Event]:
    ev: list[Event] = [
        RunStarted(
            run_id="20260101T120000-abcd", plan="quick",
            modes=tuple(ModeInfo(m, WARMUP, n) for m, _, n in MODES),
            base_url="http://127.0.0.1:13305", model="Qwen3-0.6B-GGUF",
            actuator="lemonade-load", backend="embedded server", csv_path="/tmp/run.csv",
            load_arms="all", load_enabled=True, cooldown_s=0.2, warmup_sleep_s=0.1,
        ),  # fmt: skip
        LogLine("info", "actuator lemonade-load: embedded server emulates Lemonade"),
        LogLine("warning", LONG_LOG),
    ]
    records: list[StepRecord] = []
    g = 0
    phase = "steady"
    for index, (mode, k0, steps) in enumerate(MODES):
        adaptive = mode == "adaptive"
        ev.append(ModeStarted(mode, index, len(MODES), WARMUP, steps))
        for w in range(1, WARMUP + 1):
            ev.append(WarmupStep(mode, w, WARMUP, k0, True, 400 + 10 * w))
        if adaptive:
            ev.append(Calibrated(mode, 350, 470, 410, 460))
        ema = 400.0
        k = k0
        for step in range(1, steps + 1):
            new_phase = phase
            if mode == "fixed_5" and step == 3:
                new_phase = "load"
                ev.append(LoadChanged(True, 2, "fixed_5 step 3"))
            elif mode == "fixed_5" and step == 5:
                new_phase = "recovery"
                ev.append(LoadChanged(False, 2, "burners finished"))
            if new_phase != phase:
                phase = new_phase
                ev.append(PhaseChanged(mode, step, phase))
            g += 1
            lat = _latency(mode, step, phase)
            if adaptive:
                ema = 0.3 * lat + 0.7 * ema
                k = max(1, min(8, k + (1 if ema < 400 else -1)))
            ok = not (mode == "fixed_2" and step == 4)  # one failed step
            r = StepRecord(
                global_step=g, step=step, mode=mode, phase=phase, draft_length=k,
                success=ok, latency_ms=lat if ok else 0, tokens=64 if ok else 0,
                ema_ms=ema if adaptive else None,
                low_ms=350 if adaptive else None, high_ms=470 if adaptive else None,
                actuator="lemonade-load", confirmed_k=k,
                reload_ms=180 if step == 1 else None,
                drafted=6 * k if ok else None, accepted=(4 * k) if ok else None,
                acceptance=(4 / 6) if ok else None,
                predicted_ms=lat * 0.9 if ok else None,
                # a server that gives predicted_ms without predicted_n (must not crash)
                predicted_n=None if mode == "fixed_5" else (64 if ok else None),
                attempts=1 if ok else 3, error="" if ok else "HTTP 500: injected",
            )  # fmt: skip
            records.append(r)
            ev.append(StepDone(r, steps))
            if not ok:
                ev.append(LogLine("error", f"{mode} step {step}: failed after 3 attempts"))
        mine = [sample_from_record(r) for r in records if r.mode == mode]
        ev.append(ModeFinished(summarize_mode(mode, mine)))
        if index == 1:
            ev.append(KnobVerdict("effective", "K took effect: drafted/pass 2.0 vs 5.0"))
    report = build_report([sample_from_record(r) for r in records])
    ev.append(
        RunFinished("completed", report.summaries, report.winner, report.knob,
                    ("/tmp/run.csv", "/tmp/run_summary.txt"), summary_text(report))
    )  # fmt: skip
    return ev


def upto(events: list[Event], stop: Callable[[Event], bool]) -> list[Event]:
    """The events before the first one `stop` picks."""
    for i, e in enumerate(events):
        if stop(e):
            return events[:i]
    return list(events)


def at_step(mode: str, step: int) -> Callable[[Event], bool]:
    """Stop just after `mode` step `step` is done."""
    seen = {"done": False}

    def stop(e: Event) -> bool:
        if seen["done"]:
            return True
        if isinstance(e, StepDone) and e.record.mode == mode and e.record.step == step:
            seen["done"] = True
        return False

    return stop
