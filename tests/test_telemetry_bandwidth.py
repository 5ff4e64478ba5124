"""What a step's row and the monitor's pane say about memory bandwidth: the burners'
bytes over the step's window, the machine's counter, and nothing where nothing ran or
nothing counts."""

import re
import subprocess
import sys
from pathlib import Path

from helpers import csv_rows

from halospec_tui.bandwidth import Reading, Unavailable, open_counter
from halospec_tui.load_memory import MemoryLoad
from halospec_tui.load_requests import LoadGroup
from halospec_tui.telemetry import Bandwidth, Telemetry
from halospec_tui.ui.widgets import cpu_text


class Clock:
    def __init__(self) -> None:
        self.t = 100.0

    def __call__(self) -> float:
        return self.t


class Burners(MemoryLoad):
    """Memory burners whose count and state the test sets (nothing is spawned)."""

    def __init__(self) -> None:
        super().__init__(workers=1, buffer_bytes=8 << 20, cache_dir=Path("/nonexistent"))
        self.moved = 0.0
        self.running = False
        self.rate: float | None = None

    def bytes_moved(self) -> float:
        return self.moved

    @property
    def active(self) -> bool:
        return self.running

    def gbps(self) -> float | None:
        return self.rate


class Counter:
    source = "test counter"

    def __init__(self) -> None:
        self.now: Reading | None = None
        self.recent: float | None = None
        self.closed = False

    def read(self) -> Reading | None:
        return self.now

    def recent_gbps(self) -> float | None:
        return self.recent

    def close(self) -> None:
        self.closed = True


def test_a_steps_window_is_the_bytes_moved_over_its_time():
    clock, mem = Clock(), Burners()
    tel = Telemetry(load=LoadGroup([mem]), clock=clock)
    mem.running = True
    tel.sample()  # the step starts
    clock.t += 2.0
    mem.moved = 30e9
    tel.sample()  # and ends
    assert tel.take_bandwidth() == Bandwidth(15.0, None)
    assert tel.take_bandwidth() == Bandwidth()  # once: a step not sent gets none
    clock.t += 0.5  # the next step: burners ended inside it, after 5 GB more
    mem.moved, mem.running = 35e9, False
    tel.sample()
    assert tel.take_bandwidth().load_gbps == 10.0
    clock.t += 1.0
    tel.sample()  # nothing ran and nothing moved: no figure, not 0
    assert tel.take_bandwidth() == Bandwidth()


def test_burners_that_run_but_moved_nothing_yet_read_zero():
    clock, mem = Clock(), Burners()
    tel = Telemetry(load=mem, clock=clock)
    tel.sample()
    mem.running = True  # started (still spawning) inside the window
    clock.t += 1.0
    tel.sample()
    assert tel.take_bandwidth().load_gbps == 0.0


def test_without_memory_burners_the_load_column_stays_empty():
    tel = Telemetry(load=None)
    tel.sample()
    tel.sample()
    assert tel.take_bandwidth() == Bandwidth() and tel.live() == Bandwidth()


def test_the_machine_counter_over_the_window_and_live():
    counter, logs = Counter(), []
    tel = Telemetry(machine=counter, log=lambda level, text: logs.append((level, text)))
    counter.now = Reading(10.0, 0.0)
    tel.sample()
    counter.now = Reading(10.5, 4e9)
    tel.sample()
    assert tel.take_bandwidth() == Bandwidth(None, 8.0)
    counter.recent = 7.5
    tel.sample()  # no new count since the last sample: the latest interval's rate
    assert tel.take_bandwidth().machine_gbps == 7.5
    counter.now = Reading(11.0, 5e9, gaps=1)
    tel.sample()  # an unknown interval in the window: no figure
    assert tel.take_bandwidth().machine_gbps is None
    assert tel.live() == Bandwidth(None, 7.5)
    assert logs == [("info", "machine memory bandwidth from test counter")]
    tel.close()
    assert counter.closed


def test_unavailable_counters_are_said_once_and_give_no_figure():
    logs = []
    tel = Telemetry(machine=Unavailable("no PMU"), log=lambda level, text: logs.append(text))
    for _ in range(5):
        tel.sample()
    assert tel.take_bandwidth() == Bandwidth() and tel.live() == Bandwidth()
    assert logs == [
        "bandwidth counters unavailable (no PMU): the machine's memory bandwidth is not "
        "measured, column machine_gbps stays empty"
    ]
    tel.close()


def test_live_reads_the_burners_own_rates_and_their_buffers_are_said():
    mem, logs = Burners(), []
    mem.rate = 21.25
    tel = Telemetry(load=mem, log=lambda level, text: logs.append(text))
    assert tel.live() == Bandwidth(21.25, None)
    tel.sample()
    tel.sample()
    assert logs == [
        "memory load: 1 memory burner(s), two 8 MiB buffers each (last-level cache unknown)"
    ]


def test_the_pane_says_what_the_load_and_the_machine_move():
    cores = [12.0, 99.0]
    bars = "cpu0 █·········  12.0%\ncpu1 ██████████  99.0%\n"
    # no memory burner, no counters: as before
    assert cpu_text(cores, None, "", 2).plain == bars + "load off"
    assert cpu_text(cores, 12.4, "step 3", 2).plain == bars + "LOAD ON: 2 burner(s), 12 s left (step 3)"
    # memory burners running
    assert cpu_text(cores, 12.4, "step 3", 2, 23.06).plain == (
        bars + "LOAD ON: 2 burner(s), 12 s left, 23.1 GB/s (step 3)"
    )
    # the machine's counters, with load off and on
    assert cpu_text(cores, None, "", 2, None, 4.04).plain == bars + "load off; memory 4.0 GB/s"
    assert cpu_text(cores, 3.0, "", 4, 20.0, 31.96).plain == (
        bars + "LOAD ON: 4 burner(s), 3 s left, 20.0 GB/s; memory 32.0 GB/s"
    )


CLI = [sys.executable, "-m", "halospec_tui"]
FAST = ["--sim-target-ms", "1.5", "--sim-reload-ms", "20"]


def test_memory_load_in_a_run_is_in_the_csv(tmp_path, no_leftovers):
    out = tmp_path / "m.csv"
    log = tmp_path / "m.log"
    p = subprocess.run(CLI + ["--no-ui", "--plan", "quick", "--modes", "fixed_2", "--warmup", "0", "--steps", "8",
                              "--cooldown", "0.2", "--load", "--load-kind", "memory", "--load-workers", "1",
                              "--load-step", "3", "--load-duration", "3", "--backend", "sim", "--csv", str(out),
                              "--log-file", str(log), *FAST], capture_output=True, text=True, timeout=180)  # fmt: skip
    assert p.returncode == 0, p.stderr
    rows = csv_rows(out)
    before = [r for r in rows if int(r["step"]) < 3]
    loaded = [r for r in rows if r["phase"] == "load"]
    assert [r["load_gbps"] for r in before] == ["", ""]  # no memory burner ran yet
    assert loaded and all(float(r["load_gbps"]) >= 0 for r in loaded)
    assert max(float(r["load_gbps"]) for r in loaded) > 0
    said = log.read_text().count("bandwidth counters unavailable")
    counter = open_counter()
    if isinstance(counter, Unavailable):  # as on these virtual machines: said once, no figure
        assert said == 1
        assert {r["machine_gbps"] for r in rows} == {""}
    else:
        counter.close()
        assert said == 0


def test_the_monitor_shows_the_burners_gbps_live(sim, tmp_path, no_leftovers):
    import asyncio
    import time

    from halospec_tui.events import LogRouter
    from halospec_tui.plan import customise, named_plan
    from halospec_tui.runner import RunConfig
    from halospec_tui.session import SessionOptions, open_session
    from halospec_tui.ui.app import ConfirmQuit, make_app
    from halospec_tui.ui.lines import TextLines

    session = open_session(SessionOptions(backend="server", base_url=sim.base_url), LogRouter())
    plan = customise(named_plan("quick"), arms=["fixed_3"], warmup=0, steps=300,
                     cooldown_s=0.05, load_duration_s=20.0)  # fmt: skip
    config = RunConfig(plan, str(tmp_path / "ui.csv"), backend=session.backend)
    app = make_app(config, session, MemoryLoad(workers=1, buffer_bytes=16 << 20))
    seen: list[str] = []

    async def until(pilot, cond, timeout=60.0):
        deadline = time.monotonic() + timeout
        while not cond():
            assert time.monotonic() < deadline, seen[-1:] or "condition not met in time"
            await pilot.pause(0.05)

    def pane() -> str:
        seen.append(str(app.query_one("#cpu", TextLines).text))
        return seen[-1]

    async def go():
        async with app.run_test(size=(140, 44)) as pilot:
            await until(pilot, lambda: app.model.step >= 2)
            assert "GB/s" not in pane()  # no memory burner yet
            await pilot.press("l")
            # the burner's own rate, once it has measured one (every quarter second)
            await until(pilot, lambda: re.search(r"LOAD ON: 1 burner\(s\), \d+ s left, "
                                                 r"(\d+\.\d) GB/s", pane()) is not None
                        and float(re.findall(r"(\d+\.\d) GB/s", pane())[0]) > 0)  # fmt: skip
            await pilot.press("l")
            await until(pilot, lambda: "load off" in pane())
            await pilot.press("q")
            await until(pilot, lambda: isinstance(app.screen, ConfirmQuit))
            await pilot.press("y")
            await until(pilot, lambda: app.finished is not None)

    with session:
        asyncio.run(go())
    rows = csv_rows(tmp_path / "ui.csv")
    assert any(r["load_gbps"] not in ("", "0") for r in rows)
