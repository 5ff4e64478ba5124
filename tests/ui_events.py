"""A recorded run, built deterministically from real engine events, for the app tests.

`recorded_run()` is the whole run; `upto(events, pred)` cuts it where a snapshot wants
the monitor to be. Values are fixed so every rendering is the same.
"""

from __future__ import annotations

import math
from collections.abc import Callable

from halospec_tui.controllers.base import ControllerView
from halospec_tui.controllers.model import expected_tps
from halospec_tui.events import (
    ArmFinished,
    ArmInfo,
    ArmStarted,
    Calibrated,
    ControllerState,
    Event,
    KnobVerdict,
    LoadChanged,
    LogLine,
    PhaseChanged,
    RoundFinished,
    RoundStarted,
    RunFinished,
    RunStarted,
    StepDone,
    StepRecord,
    WarmupStep,
)
from halospec_tui.results import build_report, sample_from_record, summary_text
from halospec_tui.stats import summarize_arm

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
            arms=tuple(ArmInfo(m, WARMUP, n) for m, _, n in MODES),
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
        ev.append(ArmStarted(mode, index, len(MODES), WARMUP, steps))
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
                global_step=g, step=step, arm=mode, phase=phase, draft_length=k,
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
        mine = [sample_from_record(r) for r in records if r.arm == mode]
        ev.append(ArmFinished(summarize_arm(mode, mine)))
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
        if isinstance(e, StepDone) and e.record.arm == mode and e.record.step == step:
            seen["done"] = True
        return False

    return stop


# -- a recorded `tune` run: interleaved rounds, a verdict after each, an adaptive arm --
TUNE_ARMS = (("nospec", 0), ("fixed_1", 1), ("fixed_3", 3), ("adaptive:model", 3))
TUNE_ROUNDS = 5
TUNE_ORDERS = (
    ("fixed_3", "nospec", "adaptive:model", "fixed_1"),
    ("nospec", "fixed_1", "fixed_3", "adaptive:model"),
    ("adaptive:model", "fixed_3", "fixed_1", "nospec"),
    ("fixed_1", "fixed_3", "adaptive:model"),  # nospec dropped after round 3
)
# After each round: (best, decisive, stop, recommended K, left_s, status, (arm, tok/s, ±))
TUNE_VERDICTS = (
    ("fixed_3", False, None, None, 40.0,
     (("fixed_3", "best"), ("adaptive:model", "racing"), ("fixed_1", "racing"),
      ("nospec", "racing")),
     (("fixed_3", 405.2, 31.7), ("adaptive:model", 398.0, 35.2), ("fixed_1", 371.9, 28.4),
      ("nospec", 301.4, 22.6)),
     "not decisive: too few rounds to certify any arm (95% sequences still open); about 9 "
     "more rounds would certify 2% at this noise"),
    ("fixed_3", False, None, None, 30.0,
     (("fixed_3", "best"), ("adaptive:model", "racing"), ("fixed_1", "racing"),
      ("nospec", "racing")),
     (("fixed_3", 410.8, 14.9), ("adaptive:model", 401.3, 17.0), ("fixed_1", 368.5, 12.2),
      ("nospec", 299.0, 9.8)),
     "not decisive: K = 3 is within 14.2% of the fastest (95%); about 5 more rounds would "
     "certify 2% at this noise"),
    ("fixed_3", False, None, None, 24.0,
     (("fixed_3", "best"), ("adaptive:model", "racing"), ("fixed_1", "racing"),
      ("nospec", "dropped")),
     (("fixed_3", 412.3, 8.1), ("adaptive:model", 404.6, 9.3), ("fixed_1", 366.0, 7.4),
      ("nospec", 298.7, 6.5)),
     "not decisive: K = 3 is within 4.6% of the fastest (95%); about 2 more rounds would "
     "certify 2% at this noise"),
    ("fixed_3", True, "decisive", 3, None,
     (("fixed_3", "best"), ("adaptive:model", "racing"), ("fixed_1", "dropped"),
      ("nospec", "dropped")),
     (("fixed_3", 413.0, 5.2), ("adaptive:model", 399.1, 6.0), ("fixed_1", 365.2, 4.9),
      ("nospec", 298.7, 6.5)),
     "decisive: K = 3 is within 2% of the fastest (95%, valid at any stop)"),
)  # fmt: skip
# what each round certifies per survivor (the statements above quote fixed_3's)
TUNE_EPSILONS = (
    (("fixed_3", math.inf), ("adaptive:model", math.inf), ("fixed_1", math.inf),
     ("nospec", math.inf)),
    (("fixed_3", 0.142), ("adaptive:model", 0.19), ("fixed_1", 0.31), ("nospec", 0.52)),
    (("fixed_3", 0.046), ("adaptive:model", 0.071), ("fixed_1", 0.158)),
    (("fixed_3", 0.02), ("adaptive:model", 0.051)),
)  # fmt: skip
TUNE_BLOCK = 2


def _tune_latency(arm: str, rnd: int, i: int) -> int:
    base = {"nospec": 210, "fixed_1": 175, "fixed_3": 155, "adaptive:model": 160}[arm]
    return base + (rnd * 13 + i * 7) % 20


def controller_view(k: int, a: float, t0: float, t1: float) -> ControllerView:
    """What `adaptive:model` reports: acceptance, pass cost, expected tokens/s per K 0..8."""
    table = tuple((kk, expected_tps(a, t0, t1, kk)) for kk in range(9))
    return ControllerView("model", k, a, t0, t1, table)


def recorded_tune_run() -> list[Event]:
    arms = [a for a, _ in TUNE_ARMS]
    ev: list[Event] = [
        RunStarted(
            run_id="20260101T130000-tune", plan="tune",
            arms=tuple(ArmInfo(a, 0, 4) for a in arms),
            base_url="http://127.0.0.1:13305", model="Qwen3-0.6B-GGUF",
            actuator="lemonade-load", backend="embedded server", csv_path="/tmp/tune.csv",
            load_arms="all", load_enabled=False, cooldown_s=0.0, warmup_sleep_s=0.0,
        ),  # fmt: skip
        LogLine("info", "actuator lemonade-load: embedded server emulates Lemonade"),
    ]
    ks = dict(TUNE_ARMS)
    records: list[StepRecord] = []
    done = {a: 0 for a in arms}
    dropped: list[tuple[str, int]] = []
    g = 0
    acc = 0.70
    for rnd, order in enumerate(TUNE_ORDERS, start=1):
        ev.append(RoundStarted(rnd, TUNE_ROUNDS, order, "steady"))
        for arm in order:
            ev.append(ArmStarted(arm, arms.index(arm), len(arms), 0, TUNE_BLOCK))
            k = ks[arm]
            ev.append(WarmupStep(arm, 1, 1, k, True, _tune_latency(arm, rnd, 0)))  # settle
            for i in range(1, TUNE_BLOCK + 1):
                g += 1
                done[arm] += 1
                lat = _tune_latency(arm, rnd, i)
                drafted = 8 * k
                r = StepRecord(
                    global_step=g, step=done[arm], arm=arm, phase="steady", draft_length=k,
                    success=True, latency_ms=lat, tokens=64, actuator="lemonade-load",
                    confirmed_k=k, drafted=drafted or None, accepted=(drafted * 3 // 4) or None,
                    acceptance=0.75 if drafted else None, predicted_ms=lat * 0.9,
                    predicted_n=64, round=rnd, block_pos=order.index(arm) + 1,
                    # as the engine records it: the model controller's uncalibrated band
                    ema_ms=float(lat) if arm == "adaptive:model" else None,
                    low_ms=9000 if arm == "adaptive:model" else None,
                    high_ms=22000 if arm == "adaptive:model" else None,
                )  # fmt: skip
                records.append(r)
                if arm == "adaptive:model":  # the engine sends the view before the step
                    acc = round(acc + 0.01, 2)
                    view = controller_view(3, acc, 4.1, 0.9)
                    ks[arm] = view.k
                    ev.append(ControllerState(arm, view))
                ev.append(StepDone(r, TUNE_BLOCK))
            mine = [sample_from_record(r) for r in records if r.arm == arm]
            ev.append(ArmFinished(summarize_arm(arm, mine)))
        best, decisive, stop, rec_k, left, status, hw, said = TUNE_VERDICTS[rnd - 1]
        if rnd == 3:
            dropped.append(("nospec", 3))
        remaining = tuple(a for a in arms if a not in dict(dropped))
        ev.append(
            RoundFinished(
                round=rnd, rounds=TUNE_ROUNDS, best=best, decisive=decisive,
                remaining=remaining, dropped=tuple(dropped), recommended_k=rec_k, stop=stop,
                elapsed_s=10.0 * rnd, left_s=left, status=status, half_width=hw,
                statement=said, epsilon=TUNE_EPSILONS[rnd - 1],
            )
        )  # fmt: skip
        if rnd == 3:
            ev.append(LogLine("info", "round 3: nospec is clearly slower than fixed_3: dropped"))
    report = build_report([sample_from_record(r) for r in records])
    ev.append(
        RunFinished("completed", report.summaries, report.winner, report.knob,
                    ("/tmp/tune.csv", "/tmp/tune_summary.txt"), summary_text(report))
    )  # fmt: skip
    return ev


def in_round(rnd: int, arm: str, step: int) -> Callable[[Event], bool]:
    """Stop just after `arm`'s block step `step` in round `rnd`."""
    state = {"round": 0, "arm": "", "n": 0, "done": False}

    def stop(e: Event) -> bool:
        if state["done"]:
            return True
        if isinstance(e, RoundStarted):
            state["round"] = e.round
        elif isinstance(e, ArmStarted):
            state["arm"], state["n"] = e.arm, 0
        elif isinstance(e, StepDone):
            state["n"] = int(state["n"]) + 1
            if (state["round"], state["arm"], state["n"]) == (rnd, arm, step):
                state["done"] = True
        return False

    return stop
