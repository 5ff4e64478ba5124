"""Request load: background clients on the same server, bounded, stopped, counted."""

import sys
import threading
import time

import httpx
from helpers import csv_rows

from halospec_tui.load_requests import LoadGroup, RequestLoad

CLI = [sys.executable, "-m", "halospec_tui"]
FAST = ["--sim-target-ms", "1.5", "--sim-reload-ms", "20"]
BODY = {"model": "Qwen3-0.6B-GGUF", "messages": [{"role": "user", "content": "x"}],
        "max_tokens": 8, "cache_prompt": False}  # fmt: skip


def served(base_url):
    return httpx.get(base_url + "/api/v1/health").json()["sim"]["requests_served"]


def wait_for(cond, timeout=20.0):
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if cond():
            return True
        time.sleep(0.05)
    return False


def test_request_load_runs_for_its_window_and_ends_by_itself(sim):
    before = served(sim.base_url)
    load = RequestLoad(sim.base_url, "/api/v1/chat/completions", BODY, clients=2)
    load.start(1.0)
    assert load.active and load.workers == 2
    assert wait_for(lambda: not load.active, timeout=10)  # the window closes by itself
    load.stop()
    assert load.sent > 0 and served(sim.base_url) - before >= load.sent
    assert not [t for t in threading.enumerate() if t.name.startswith("halospec-reqload")]


def test_stop_ends_the_clients_at_once(sim):
    load = RequestLoad(sim.base_url, "/api/v1/chat/completions", BODY, clients=3)
    load.start(60.0)
    assert wait_for(lambda: load.sent >= 3)
    t = time.monotonic()
    load.stop()
    assert time.monotonic() - t < 5.0 and not load.active


def test_a_quota_bounds_each_client(sim):
    load = RequestLoad(sim.base_url, "/api/v1/chat/completions", BODY, clients=2, max_requests=3)
    load.start(60.0)
    assert wait_for(lambda: not load.active)
    load.stop()
    assert load.sent == 6


def test_group_is_active_while_any_part_is():
    class Fake:
        workers = 1

        def __init__(self, left):
            self.left = left
            self.started = self.stopped = 0

        def start(self, d):
            self.started += 1

        def stop(self):
            self.stopped += 1

        @property
        def active(self):
            return self.left is not None

        def seconds_left(self):
            return self.left

    a, b = Fake(None), Fake(4.0)
    g = LoadGroup([a, b])
    assert g.workers == 2 and g.active and g.seconds_left() == 4.0
    g.start(3)
    g.stop()
    assert (a.started, b.started, a.stopped, b.stopped) == (1, 1, 1, 1)


def test_request_load_in_a_run_queues_on_the_server(tmp_path, no_leftovers):
    import subprocess

    out = tmp_path / "r.csv"
    p = subprocess.run(CLI + ["--no-ui", "--plan", "quick", "--modes", "fixed_2", "--warmup", "0", "--steps", "8",
                              "--cooldown", "0", "--load", "--load-kind", "requests", "--load-clients", "3",
                              "--load-step", "3", "--load-duration", "4", "--backend", "sim", "--csv", str(out),
                              *FAST], capture_output=True, text=True, timeout=120)  # fmt: skip
    assert p.returncode == 0, p.stderr
    rows = csv_rows(out)
    phases = [r["phase"] for r in rows]
    assert phases[:2] == ["steady", "steady"] and "load" in phases
    # One decoding slot: under load a step waits behind the background clients' requests.
    # The wait is the client's latency less the server's own time (prompt and decode,
    # from its timings), so the machine's pace of the moment cancels out of it.
    def waits(phase):
        return sorted(int(r["latency_ms"]) - float(r["prompt_ms"]) - float(r["predicted_ms"])
                      for r in rows if r["phase"] == phase)  # fmt: skip

    load, steady = waits("load"), waits("steady")
    assert load[len(load) // 2] > max(steady), (load, steady)


def test_burners_say_they_end_at_the_hard_limit_when_asked_for_longer(no_leftovers):
    # a burner never runs past load.HARD_LIMIT_S (600 s), so a 2-hour window's burners
    # end within 600 s and seconds_left must say so, not 7200
    from halospec_tui.load import HARD_LIMIT_S, LoadInjector

    load = LoadInjector(1)
    load.start(7200.0)
    try:
        left = load.seconds_left()
        assert left is not None and HARD_LIMIT_S - 5.0 < left <= HARD_LIMIT_S
    finally:
        load.stop()
    assert not load.active and load.seconds_left() is None
