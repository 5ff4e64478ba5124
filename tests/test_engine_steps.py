"""The engine's shared step, on an injected clock: a K the server did not take is never
measured, --max-time caps a run before every request, and the server-down watch reads
the run's clock.
"""

from __future__ import annotations

from dataclasses import replace

from helpers import FakeClientBase, FakeClock, FakeLoad, csv_rows

from halospec_tui.actuators import Actuation, ActuatorError, ActuatorUnreachable
from halospec_tui.client import Reply
from halospec_tui.events import ListSink, RoundFinished, StepDone
from halospec_tui.plan import customise, named_plan
from halospec_tui.results import build_report, iter_runs
from halospec_tui.runner import RunConfig, Runner


class KClient(FakeClientBase):
    """Answers in `latency_s` of fake time; records the K each request was sent at."""

    def __init__(self, clock: FakeClock, latency_s: float = 0.5, fail: bool = False) -> None:
        self.clock = clock
        self.latency_s = latency_s
        self.fail = fail
        self.sent: list[int] = []

    def chat(self, body):
        self.sent.append(body["k"])
        self.clock.now += self.latency_s
        if self.fail:
            return Reply(False, 0, 0, error="connect: refused", connection_error=True)
        return Reply(True, int(self.latency_s * 1000), 64, drafted=body["k"], accepted=0)

    def ping(self):
        return not self.fail


class ReloadingActuator:
    """K reaches the server by a reload; `refuse` K fail to load, `wrong` K load as
    another K (the server confirms what it really runs)."""

    name = "lemonade-load"

    def __init__(self, refuse=(), wrong=None, unreachable=False) -> None:
        self.refuse = set(refuse)
        self.wrong = wrong or {}
        self.unreachable = unreachable
        self.current: int | None = None

    def apply(self, k: int, p_min: float = 0.0, threads: int | None = None) -> Actuation:
        if k == self.current:
            return Actuation(confirmed_k=k)
        if k in self.refuse:
            kind = ActuatorUnreachable if self.unreachable else ActuatorError
            raise kind(f"load with K={k} failed: HTTP 500 no")
        self.current = self.wrong.get(k, k)
        return Actuation(confirmed_k=self.current, reload_ms=100)

    def body_fields(self, k: int, p_min: float = 0.0):
        return {"k": self.current if self.current is not None else k}

    def leave(self, setting=None):
        return None

    def close(self) -> None:
        pass


def _run(plan, tmp_path, actuator, client=None, down_after_s=60.0):
    clock = FakeClock()
    client = client or KClient(clock)
    client.clock = clock
    sink = ListSink()
    cfg = RunConfig(
        plan, str(tmp_path / "r.csv"), server_down_after_s=down_after_s, write_summary_files=False
    )
    runner = Runner(cfg, client, actuator, sink, FakeLoad(clock), clock=clock, sleep=clock.sleep)
    return runner.run(), client, sink, clock


def _plan(arms, **kw):
    return customise(named_plan("quick"), arms=arms, **{"warmup": 0, "steps": 3, "cooldown_s": 0.0, **kw})


def test_a_k_that_could_not_be_loaded_is_never_measured(tmp_path):
    done, client, sink, _ = _run(_plan(["fixed_2", "fixed_5", "fixed_3"]), tmp_path,
                                 ReloadingActuator(refuse={5}))  # fmt: skip
    assert done.reason == "completed"
    # no request went out while the server still ran K = 2
    assert client.sent == [2, 2, 2, 3, 3, 3]
    rows = csv_rows(tmp_path / "r.csv")
    assert [(r["mode"], r["draft_length"], r["success"], r["attempts"]) for r in rows] == [
        ("fixed_2", "2", "1", "1")] * 3 + [("fixed_5", "5", "0", "0")] * 3 + [
        ("fixed_3", "3", "1", "1")] * 3  # fmt: skip
    assert {r["error"] for r in rows[3:6]} == {"K not set: load with K=5 failed: HTTP 500 no"}
    # every measured row carries the K the server confirmed
    assert all(r["confirmed_k"] == r["draft_length"] for r in rows if r["success"] == "1")
    report = build_report(next(iter_runs(tmp_path / "r.csv")).samples)
    assert [(s.arm, s.successes, s.failures) for s in report.summaries] == [
        ("fixed_2", 3, 0), ("fixed_5", 0, 3), ("fixed_3", 3, 0),
    ]  # fmt: skip
    assert report.verdict is not None and {a.arm for a in report.verdict.lines if a.n} == {
        "fixed_2", "fixed_3"
    }


def test_a_k_the_server_confirms_otherwise_is_never_measured(tmp_path):
    done, client, _, _ = _run(_plan(["fixed_2", "fixed_6"]), tmp_path,
                              ReloadingActuator(wrong={6: 4}))  # fmt: skip
    assert client.sent == [2, 2, 2]
    rows = csv_rows(tmp_path / "r.csv")
    assert [(r["draft_length"], r["confirmed_k"], r["success"]) for r in rows[3:]] == [
        ("6", "4", "0")] * 3  # fmt: skip
    assert rows[3]["error"] == "K not set: asked for K=6, the server runs K=4"


def test_an_unreachable_reload_counts_toward_server_down_on_the_run_clock(tmp_path):
    # every reload fails to connect; 3 steps of 0 s each would never reach 10 s of real
    # time, but the fake clock's cooldowns (4 s each) do
    plan = _plan(["fixed_2", "fixed_5"], steps=20, cooldown_s=4.0)
    done, client, sink, clock = _run(
        plan, tmp_path, ReloadingActuator(refuse={2, 5}, unreachable=True),
        client=KClient(FakeClock(), fail=True), down_after_s=10.0,
    )  # fmt: skip
    assert done.reason == "server-down"
    assert client.sent == []
    # down from the first step's time; stopped at the step at least 10 s after it
    assert len(sink.of(StepDone)) == 4 and clock.now - 1000.0 == 12.0


def test_the_server_down_watch_reads_the_run_clock(tmp_path):
    plan = _plan(["fixed_2"], steps=50)
    done, client, sink, _ = _run(plan, tmp_path, ReloadingActuator(),
                                 client=KClient(FakeClock(), latency_s=2.0, fail=True),
                                 down_after_s=10.0)  # fmt: skip
    assert done.reason == "server-down"
    # 2 s of fake time per failed request: down for 10 s at the 6th
    assert len(client.sent) == 6 and len(sink.of(StepDone)) == 6


def test_max_time_caps_a_run_before_every_request_settle_ones_too(tmp_path):
    plan = customise(named_plan("tune"), arms=["nospec", "fixed_2", "fixed_4"], settle=100,
                     max_time_s=5.0)  # fmt: skip
    done, client, sink, clock = _run(plan, tmp_path, ReloadingActuator(), client=KClient(
        FakeClock(), latency_s=1.0))  # fmt: skip
    assert done.reason == "completed"
    # one request a second: the sixth would start at 5 s, at the deadline
    assert len(client.sent) == 5 and clock.now - 1000.0 == 5.0
    rounds = sink.of(RoundFinished)
    assert [(r.round, r.stop) for r in rounds] == [(1, "time")]


class NoUsageClient(KClient):
    """Answers without `usage` every other step: the token count is max_tokens, assumed."""

    def chat(self, body):
        reply = super().chat(body)
        return replace(reply, tokens_reported=len(self.sent) % 2 == 0)


def test_rows_say_whether_the_server_counted_the_tokens_and_what_it_is(tmp_path):
    clock = FakeClock()
    cfg = RunConfig(_plan(["fixed_2"], steps=4), str(tmp_path / "r.csv"),
                    write_summary_files=False, server_kind="lemonade")  # fmt: skip
    Runner(cfg, NoUsageClient(clock), ReloadingActuator(), ListSink(), FakeLoad(clock),
           clock=clock, sleep=clock.sleep).run()  # fmt: skip
    rows = csv_rows(tmp_path / "r.csv")
    assert [(r["tokens"], r["tokens_reported"]) for r in rows] == [
        ("64", "0"), ("64", "1"), ("64", "0"), ("64", "1"),
    ]  # fmt: skip
    assert {(r["server_kind"], r["drafting_shared"]) for r in rows} == {("lemonade", "0")}
    (tmp_path / "f").mkdir()
    _run(_plan(["fixed_3"], steps=2), tmp_path / "f", ReloadingActuator(refuse={3}))
    assert [(r["success"], r["tokens_reported"]) for r in csv_rows(tmp_path / "f/r.csv")] == [
        ("0", ""), ("0", ""),
    ]  # fmt: skip


def test_a_settle_step_s_reload_is_told_to_the_controller_with_the_next_step(tmp_path, monkeypatch):
    # In rounds each block opens with a reload to the arm's K, run as a settle step that
    # feeds no controller. Its cost must still reach the controller (with the block's
    # first measured step), or a controller would think a change of K free and move
    # before it had paid for one. The rows keep each reload where it happened.
    from halospec_tui.controllers.model import ModelController

    told: list[int | None] = []
    observe = ModelController.observe

    def spy(self, k, success, latency_ms, obs=None):
        told.append(None if obs is None else obs.reload_ms)
        return observe(self, k, success, latency_ms, obs)

    monkeypatch.setattr(ModelController, "observe", spy)
    plan = customise(named_plan("tune"), arms=["fixed_2", "adaptive:model"], rounds=2, block=2,
                     settle=1, until_decisive=False, screen=False, seed=1)  # fmt: skip
    done, _, _, _ = _run(plan, tmp_path, ReloadingActuator())
    assert done.reason == "completed"
    rows = [r for r in csv_rows(tmp_path / "r.csv") if r["mode"] == "adaptive:model"]
    cells = [(r["settle"], r["reload_ms"]) for r in rows]
    # each block opens with a settle row holding the 100 ms reload to the arm's K
    assert [cells[0], cells[3]] == [("1", "100")] * 2 and len(cells) == 6
    # the block's first measured step tells that reload; a later one its own, if any
    expected = [100, int(cells[2][1] or 0) or None, 100, int(cells[5][1] or 0) or None]
    assert cells[1] == cells[4] == ("0", "") and told == expected
