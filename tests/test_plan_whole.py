"""The classic plan asserted whole: as data, and as a run on an injected clock.

The run never sleeps: the runner's clock and sleep are a fake that advances time, the
client answers at once (moving the fake clock by the latency it reports) and the load
is a fake whose burners end when the fake clock passes their duration.
"""

from __future__ import annotations

from dataclasses import dataclass

import pytest
from helpers import FakeClientBase, FakeClock, FakeLoad

from halospec_tui.actuators import FieldActuator
from halospec_tui.arms import parse_arm
from halospec_tui.client import Reply
from halospec_tui.events import ListSink, LoadChanged, PhaseChanged, StepDone, WarmupStep
from halospec_tui.plan import CLASSIC_ARMS, ArmSpec, Plan, classic, named_plan, quick
from halospec_tui.runner import RunConfig, Runner

FIXED = [f"fixed_{k}" for k in range(1, 9)]


def test_classic_plan_as_data():
    assert CLASSIC_ARMS == FIXED + ["adaptive"]
    want = Plan(
        name="classic",
        arms=tuple(ArmSpec(parse_arm(f"fixed_{k}"), 5, 10) for k in range(1, 9))
        + (ArmSpec(parse_arm("adaptive"), 5, 15),),
        warmup_sleep_s=1.0,
        cooldown_s=2.0,
        load_step=6,
        load_duration_s=30.0,
        prompts="original",
        max_tokens=64,
    )
    assert classic() == want == named_plan("classic")
    assert sum(m.measured_steps for m in want.arms) == 8 * 10 + 15
    assert sum(m.measured_steps + m.warmup_steps for m in want.arms) == 8 * 15 + 20
    assert [m.warmup_k for m in want.arms] == [1, 2, 3, 4, 5, 6, 7, 8, 4]
    assert [m.adaptive for m in want.arms] == [False] * 8 + [True]


def test_quick_plan_as_data():
    want = Plan(
        name="quick",
        arms=(ArmSpec(parse_arm("nospec"), 2, 4),)
        + tuple(ArmSpec(parse_arm(f"fixed_{k}"), 2, 4) for k in range(1, 9))
        + (ArmSpec(parse_arm("adaptive"), 2, 8),),
        warmup_sleep_s=0.05,
        cooldown_s=0.1,
        load_step=3,
        load_duration_s=2.0,
        prompts="pool",
        max_tokens=64,
    )
    assert quick() == want == named_plan("quick")


@dataclass
class Sent:
    at: float  # fake time the request was sent
    k: int


class FakeClient(FakeClientBase):
    """Answers every request in `latency_s` of fake time and records when and with which K."""

    base_url = "http://fake"
    model = "Qwen3-0.6B-GGUF"

    def __init__(self, clock: FakeClock, latency_s: float) -> None:
        self.clock = clock
        self.latency_s = latency_s
        self.sent: list[Sent] = []

    def chat(self, body):
        self.sent.append(Sent(self.clock.now, body["speculative_draft_length"]))
        self.clock.now += self.latency_s
        return Reply(True, int(self.latency_s * 1000), 64)



def _run(plan: Plan, tmp_path, latency_s: float, load: bool):
    clock = FakeClock()
    client = FakeClient(clock, latency_s)
    fake_load = FakeLoad(clock)
    sink = ListSink()
    cfg = RunConfig(plan, str(tmp_path / "r.csv"), load_enabled=load, write_summary_files=False)
    runner = Runner(
        cfg, client, FieldActuator(), sink, fake_load, clock=clock, sleep=clock.sleep  # type: ignore[arg-type]
    )
    finished = runner.run()
    return finished, client, fake_load, sink.events, clock


def test_classic_run_on_an_injected_clock(tmp_path):
    # 3.5 s per answer, as the original's author measured: the load then spans 5 steps
    lat = 3.5
    finished, client, load, events, clock = _run(classic(), tmp_path, lat, load=True)
    assert finished.reason == "completed"
    assert [s.arm for s in finished.summaries] == FIXED + ["adaptive"]
    assert [(s.arm, s.steps) for s in finished.summaries] == [(m, 10) for m in FIXED] + [
        ("adaptive", 15)
    ]
    warm = [e for e in events if isinstance(e, WarmupStep)]
    done = [e.record for e in events if isinstance(e, StepDone)]
    assert len(client.sent) == 140 and len(warm) == 45 and len(done) == 95
    assert [r.global_step for r in done] == list(range(1, 96))

    t = [s.at for s in client.sent]
    i = 0
    load_at = []
    for mode in FIXED + ["adaptive"]:
        measured = 15 if mode == "adaptive" else 10
        warm_k = 4 if mode == "adaptive" else int(mode[6:])
        ks = [s.k for s in client.sent[i : i + 5 + measured]]
        assert ks[:5] == [warm_k] * 5, mode  # warmups at the mode's K (adaptive: 4)
        if mode != "adaptive":
            assert ks[5:] == [warm_k] * measured
        # five warmups, each followed by a 1 s sleep
        for w in range(i + 1, i + 6):
            assert t[w] - t[w - 1] == pytest.approx(lat + 1.0, abs=1e-6), (mode, w - i)
        # measured steps, each followed by a 2 s cooldown
        for s in range(i + 6, i + 5 + measured):
            assert t[s] - t[s - 1] == pytest.approx(lat + 2.0, abs=1e-6), (mode, s - i - 5)
        load_at.append(t[i + 5 + 5])  # measured step 6 is sent when the load starts
        # the next mode starts when this mode's burners have ended: 30 s after step 6
        # (the rest of the arm took 4 x 5.5 + 3.5 + 2 = 27.5 s), polled every 0.1 s
        end = t[i + 5 + measured - 1] + lat + 2.0
        assert end == pytest.approx(load_at[-1] + 4 * 5.5 + 3.5 + 2.0 + 5.5 * (measured - 10), abs=1e-6)
        if i + 5 + measured < len(t):
            nxt = t[i + 5 + measured]
            assert load_at[-1] + 30.0 <= nxt <= load_at[-1] + 30.1 + 1e-6, mode
        i += 5 + measured
    assert i == 140
    # load: at measured step 6 of every arm, for 30 s each time
    assert load.starts == [(pytest.approx(a, abs=1e-9), 30.0) for a in load_at]
    phases = {m: [r.phase for r in done if r.arm == m] for m in FIXED + ["adaptive"]}
    for m in FIXED:
        assert phases[m] == ["steady"] * 5 + ["load"] * 5, m
    # steps 6..10 end within the 30 s; step 11 ends 31 s after the load began
    assert phases["adaptive"] == ["steady"] * 5 + ["load"] * 5 + ["recovery"] * 5
    changes = [(e.arm, e.step, e.phase) for e in events if isinstance(e, PhaseChanged)]
    assert changes[:2] == [("fixed_1", 6, "load"), ("fixed_2", 0, "steady")]
    assert changes[-2:] == [("adaptive", 6, "load"), ("adaptive", 11, "recovery")]
    loads = [(e.active, e.workers) for e in events if isinstance(e, LoadChanged)]
    assert loads == [(True, 2), (False, 2)] * 9
    # no sleep slice longer than 0.1 s; total fake time is sleeps plus answers
    assert clock.now - 1000.0 == pytest.approx(sum(clock.sleeps) + 140 * lat, abs=1e-6)


def test_classic_run_without_load_sleeps_exactly_the_plan(tmp_path):
    finished, client, load, events, clock = _run(classic(), tmp_path, 0.0, load=False)
    assert finished.reason == "completed" and load.starts == []
    # answers take no time: the run lasts its sleeps, 45 x 1 s + 95 x 2 s
    assert clock.now - 1000.0 == pytest.approx(45 * 1.0 + 95 * 2.0, abs=1e-6)
    assert {e.record.phase for e in events if isinstance(e, StepDone)} == {"steady"}


def test_quick_plan_loads_at_measured_step_three(tmp_path):
    finished, client, load, events, clock = _run(quick(), tmp_path, 0.5, load=True)
    assert finished.reason == "completed"
    assert [d for _, d in load.starts] == [2.0] * 10  # nospec, fixed_1..8, adaptive
    sent = client.sent
    i = 0
    for m in quick().arms:
        # measured step 3 is the (warmup + 3)th request of the mode
        assert load.starts.pop(0)[0] == pytest.approx(sent[i + m.warmup_steps + 2].at)
        i += m.warmup_steps + m.measured_steps
    done = [e.record for e in events if isinstance(e, StepDone)]
    assert [r.phase for r in done if r.arm == "fixed_1"] == ["steady", "steady", "load", "load"]
