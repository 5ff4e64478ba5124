"""Conditions and concurrency: their spelling, the plan's checks, the aggregate a
concurrent step makes in the race, and the schedule on the embedded server (each
condition visited in its seeded order, its load held on for its blocks only, c
requests really in flight at once), with `report` rebuilding the run's policy."""

from __future__ import annotations

import json
import threading
from dataclasses import dataclass, field

import pytest
from conftest import FAST_SIM
from helpers import csv_rows

from halospec_tui import rounds
from halospec_tui.actuators import RequestActuator
from halospec_tui.cli import main
from halospec_tui.client import ChatClient
from halospec_tui.conditions import (
    Condition,
    ConditionError,
    condition_order,
    conditions_of,
    key_of,
    ordered_keys,
    parse_key,
    parse_levels,
    parse_loads,
)
from halospec_tui.events import ConditionStarted, ListSink, PolicyChanged, RoundFinished
from halospec_tui.plan import PlanError, customise, named_plan
from halospec_tui.race_rows import Block, blocks_by_round
from halospec_tui.runner import RunConfig, Runner
from halospec_tui.sim.server import make_server
from halospec_tui.stats import StepSample


# -- spelling ---------------------------------------------------------------------------
def test_conditions_are_spelled_load_at_level_in_one_canonical_order():
    assert parse_loads("memory, idle,CPU") == ("idle", "cpu", "memory")
    assert parse_levels("4,1,2") == (1, 2, 4)
    got = conditions_of(("memory", "idle"), (3, 1))
    assert [c.key for c in got] == ["idle@1", "idle@3", "memory@1", "memory@3"]
    assert parse_key("memory@3") == Condition("memory", 3)
    assert Condition("memory", 3).describe() == "memory load, 3 requests at a time"
    assert Condition("idle", 1).describe() == "idle, 1 request at a time"
    assert key_of("cpu", 2) == "cpu@2" and key_of("", None) == ""
    assert ordered_keys(["memory@1", "idle@4", "cpu@1", "idle@1"]) == ["idle@1", "idle@4", "cpu@1", "memory@1"]


@pytest.mark.parametrize(("text", "said"), [
    ("idle,gpu", "unknown condition 'gpu'"),
    ("idle,idle", "twice"),
    (",", "at least one"),
])  # fmt: skip
def test_bad_condition_lists_are_refused(text, said):
    with pytest.raises(ConditionError, match=said):
        parse_loads(text)


@pytest.mark.parametrize(("text", "said"), [
    ("0", "not from 1 to 16"), ("17", "not from 1 to 16"), ("1,x", "'x' is not a whole number"),
    ("2,2", "twice"), ("1.5", "not a whole number"),
])  # fmt: skip
def test_bad_levels_are_refused(text, said):
    with pytest.raises(ConditionError, match=said):
        parse_levels(text)


def test_the_plan_checks_conditions_and_keeps_runs_without_them():
    tune = named_plan("tune")
    assert tune.condition_list == ()  # no conditions: today's run
    with pytest.raises(PlanError, match="--concurrency must be at most 16"):
        customise(tune, concurrency=(1, 17))
    with pytest.raises(PlanError, match="race arms in rounds"):
        customise(named_plan("quick"), conditions=("idle", "cpu"))
    with pytest.raises(PlanError, match="unknown condition 'gpu'"):
        customise(tune, conditions=("gpu",))
    assert [c.key for c in customise(tune, concurrency=(2,)).condition_list] == ["idle@2"]


def test_the_cli_refuses_the_load_timeline_beside_load_conditions(capsys):
    assert main(["--no-ui", "--plan", "tune", "--conditions", "idle,cpu", "--load"]) == 2
    assert "drop --load" in capsys.readouterr().err
    assert main(["--no-ui", "--plan", "tune", "--conditions", "idle,cpu", "--load-kind", "memory"]) == 2
    assert "--load-kind memory is not among --conditions idle,cpu" in capsys.readouterr().err
    assert main(["--no-ui", "--plan", "tune", "--concurrency", "1,99"]) == 2
    assert "--concurrency: 99 is not from 1 to 16" in capsys.readouterr().err


def test_the_order_of_conditions_is_seeded_per_round():
    conds = list(conditions_of(("idle", "cpu", "memory"), (1, 2)))
    orders = [condition_order(conds, 3, r) for r in range(1, 6)]
    assert orders == [condition_order(conds, 3, r) for r in range(1, 6)]  # reproducible
    assert all(sorted(o) == sorted(conds) for o in orders)
    assert len({tuple(o) for o in orders}) > 1  # shuffled afresh each round


# -- the aggregate -----------------------------------------------------------------------
def test_a_concurrent_step_counts_once_with_its_wall_time():
    # three requests sent at once, answered after 100, 200 and 300 ms: 192 tokens over
    # the step's 300 ms, one step (not 192 tokens over 600 ms of latencies)
    rows = [StepSample("fixed_2", 2, True, ms, 64, round=1, condition="idle", concurrency=3,
                       step_ms=300) for ms in (100, 200, 300)]  # fmt: skip
    # and one request alone is its own latency, as without conditions
    rows += [StepSample("nospec", 0, True, 250, 50, round=1, condition="idle", concurrency=1,
                        step_ms=250)]  # fmt: skip
    got = blocks_by_round(rows)[1]
    assert got["fixed_2"] == Block(192.0, pytest.approx(300.0), 1, 0.0, 0.0)
    assert got["nospec"] == Block(50.0, 250.0, 1, 0.0, 0.0)


# -- the schedule on the embedded server --------------------------------------------------
@dataclass
class RecordingLoad:
    """A load that only says when it was on (for the rows' phase) and records it."""

    workers: int = 1
    on: bool = False
    log: list[str] = field(default_factory=list)

    def start(self, duration_s: float) -> None:
        self.on = True
        self.log.append("start")

    def stop(self) -> None:
        if self.on:
            self.log.append("stop")
        self.on = False

    @property
    def active(self) -> bool:
        return self.on

    def seconds_left(self) -> float | None:
        return 60.0 if self.on else None


@pytest.fixture
def sim_server():
    srv, state = make_server(FAST_SIM)
    t = threading.Thread(target=srv.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    t.start()
    host, port = srv.server_address[:2]
    try:
        yield f"http://{host}:{port}", state
    finally:
        srv.shutdown()
        srv.server_close()


def test_conditions_are_visited_in_order_with_their_load_and_c_requests_at_once(
    sim_server, tmp_path, monkeypatch, capsys
):
    monkeypatch.setattr(rounds, "LOAD_SETTLE_S", 0.0)
    url, state = sim_server
    plan = customise(named_plan("tune"), arms=["nospec", "fixed_2"], rounds=2, block=2, settle=1,
                     screen=False, until_decisive=False, seed=5, conditions=("idle", "cpu"),
                     concurrency=(1, 3))  # fmt: skip
    cpu = RecordingLoad()
    csv = tmp_path / "c.csv"
    cfg = RunConfig(plan, str(csv), condition_loads={"cpu": cpu}, server_kind="sim")
    sink = ListSink()
    with ChatClient(url, FAST_SIM.model, timeout_s=30) as client:
        Runner(cfg, client, RequestActuator(), sink, cpu).run()
    rows = csv_rows(csv)
    # every condition, in the round's seeded order
    conds = list(plan.condition_list)
    for rnd in (1, 2):
        seen = list(dict.fromkeys(key_of(r["condition"], int(r["concurrency"]))
                                  for r in rows if r["round"] == str(rnd)))  # fmt: skip
        assert seen == [c.key for c in condition_order(conds, 5, rnd)]
    started = [e.condition for e in sink.of(ConditionStarted)]
    assert started == [c.key for r in (1, 2) for c in condition_order(conds, 5, r)]
    # the load is on for the cpu condition's rows and off for idle's
    for r in rows:
        assert r["phase"] == ("load" if r["condition"] == "cpu" else "steady"), r
    assert cpu.log[0] == "start" and not cpu.on
    # at level 3 a step is three requests in flight at once, each its own prompt
    assert state.most_in_flight == 3
    steps3 = [r for r in rows if r["concurrency"] == "3" and r["settle"] == "0"]
    assert len(steps3) == 2 * 2 * 2 * 2 * 3  # rounds x loads x arms x steps x clients
    for i in range(0, len(steps3), 3):
        step = steps3[i : i + 3]
        assert [r["client"] for r in step] == ["1", "2", "3"]
        assert len({r["step_ms"] for r in step}) == 1 and len({r["prompt_id"] for r in step}) == 3
        assert int(step[0]["step_ms"]) >= max(int(r["latency_ms"]) for r in step)
        # the three overlap in time: each started before any of them ended
        ends = [_epoch(r["timestamp"]) for r in step]
        starts = [e - int(r["latency_ms"]) / 1000 for e, r in zip(ends, step, strict=True)]
        assert max(starts) < min(ends)
    # the same prompts for every arm of a condition in a round
    for rnd in ("1", "2"):
        for key in ("idle@3", "cpu@1"):
            by_arm = {}
            for r in rows:
                if r["round"] == rnd and r["settle"] == "0" and key_of(r["condition"], int(r["concurrency"])) == key:
                    by_arm.setdefault(r["mode"], []).append(r["prompt_id"])
            assert len({tuple(v) for v in by_arm.values()}) == 1, by_arm
    # one race (and one round line) per condition, and the policy after each round
    assert {e.condition for e in sink.of(RoundFinished)} == {c.key for c in conds}
    policies = sink.of(PolicyChanged)
    assert len(policies) == 2 and [r.condition for r in policies[-1].policy.rows] == [c.key for c in conds]
    # report rebuilds the run's policy from the CSV alone
    run_doc = json.loads(csv.with_name("c_summary.json").read_text())
    capsys.readouterr()
    assert main(["report", str(csv), "--format", "json"]) == 0
    again = json.loads(capsys.readouterr().out)
    assert again["policy"] == run_doc["policy"] and again["policy_static"] == run_doc["policy_static"]
    assert [row["condition"] for row in run_doc["policy"]] == [c.key for c in conds]


def _epoch(stamp: str) -> float:
    import datetime as dt

    return dt.datetime.fromisoformat(stamp).timestamp()
