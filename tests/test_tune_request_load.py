"""--load-kind requests in the tune plan: the background clients' requests reach the
server during the load round, as the embedded server's own request count shows."""

import subprocess
import sys
import threading

import httpx
from helpers import csv_rows

CLI = [sys.executable, "-m", "halospec_tui"]
CLIENTS = 2
MODES = ("fixed_1", "fixed_4")
WARMUP = 1


def served(base_url: str) -> int:
    return int(httpx.get(base_url + "/api/v1/health", timeout=10).json()["sim"]["requests_served"])


def tune(base_url: str, csv, load: bool, on_line=None) -> tuple[int, str]:
    args = ["--no-ui", "--plan", "tune", "--modes", ",".join(MODES), "--rounds", "3",
            "--no-until-decisive", "--block", "3", "--settle", "1", "--warmup", str(WARMUP),
            "--cooldown", "0", "--warmup-sleep", "0", "--base-url", base_url, "--csv", str(csv)]  # fmt: skip
    if load:
        args += ["--load", "--load-kind", "requests", "--load-clients", str(CLIENTS),
                 "--load-round", "2", "--load-rounds", "1"]  # fmt: skip
    p = subprocess.Popen(CLI + args, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                         stdin=subprocess.DEVNULL)  # fmt: skip
    err: list[str] = []
    reader = threading.Thread(target=lambda: err.append(p.stderr.read()), daemon=True)
    reader.start()
    out = []
    try:
        for line in p.stdout:
            out.append(line)
            if on_line is not None:
                on_line(line)
        rc = p.wait(timeout=300)
    finally:
        if p.poll() is None:
            p.kill()
            p.wait(timeout=10)
    reader.join(timeout=10)
    assert rc == 0, "".join(err)[-3000:]
    return rc, "".join(out)


def own_requests(rows) -> int:
    """The harness's own chat requests: every CSV row (settle rows too) and the warmups."""
    return len(rows) + WARMUP * len(MODES)


def test_request_load_reaches_the_server_in_the_load_round_only(sim, tmp_path, no_leftovers):
    # Without load, the server serves exactly the harness's own requests.
    before = served(sim.base_url)
    tune(sim.base_url, tmp_path / "quiet.csv", load=False)
    quiet = csv_rows(tmp_path / "quiet.csv")
    assert served(sim.base_url) - before == own_requests(quiet)

    # With request load on round 2, the server serves the background clients' requests
    # on top. They stop when round 3 (recovery) starts: after the ROUND 3 line, the
    # server serves at most round 3's own requests plus one in flight per client.
    at_round_3: list[int] = []

    def watch(line: str) -> None:
        if line.startswith("=== ROUND 3/3"):
            at_round_3.append(served(sim.base_url))

    before = served(sim.base_url)
    _, stdout = tune(sim.base_url, tmp_path / "load.csv", load=True, on_line=watch)
    after = served(sim.base_url)
    rows = csv_rows(tmp_path / "load.csv")
    background = after - before - own_requests(rows)
    assert background > 0, (after - before, own_requests(rows))
    assert len(at_round_3) == 1
    round_3 = [r for r in rows if r["round"] == "3"]
    assert after - at_round_3[0] <= len(round_3) + CLIENTS, (after - at_round_3[0], len(round_3))
    # the load is laid on round 2 for every arm, and the rows say so
    phases = {(r["round"], r["mode"]): set() for r in rows}
    for r in rows:
        if r["settle"] != "1":
            phases[(r["round"], r["mode"])].add(r["phase"])
    assert phases == {(str(n), m): {ph} for n, ph in ((1, "steady"), (2, "load"), (3, "recovery"))
                      for m in MODES}  # fmt: skip
    assert "-- load ON: round 2 (load timeline)" in stdout
    assert "-- load off: round 3: load timeline over" in stdout
    assert all(r["success"] == "1" for r in rows)
