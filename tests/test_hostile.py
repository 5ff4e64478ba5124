"""Hostile servers and impatient users: every request bounded, every odd answer a
failed step, secrets never shown, signals obeyed. The servers are stdlib ones on
127.0.0.1 (tests/hostile.py); respx only for exact protocol checks."""

import json
import os
import signal
import subprocess
import sys
import threading
import time

import httpx
import pytest
import respx
from helpers import csv_rows
from hostile import HostileServer, answer, ok_doc, trickle_body, trickle_headers, wait_for

from halospec_tui.actuators import FieldActuator
from halospec_tui.cli import EXIT_FOR_REASON, exit_code
from halospec_tui.client import ChatClient, parse_completion, probe, retry_after_s
from halospec_tui.events import ListSink, LogLine, LogRouter
from halospec_tui.plan import customise, named_plan
from halospec_tui.redact import MASK, redact_text
from halospec_tui.runner import AUTH_REFUSALS_TO_STOP, RunConfig, Runner

CLI = [sys.executable, "-m", "halospec_tui"]
BASE = "http://test.local"
URL = BASE + "/api/v1/chat/completions"
RUN = ["--no-ui", "--plan", "quick", "--modes", "fixed_1", "--warmup", "0", "--cooldown", "0",
       "--actuator", "request"]  # fmt: skip


def plan(steps=2):
    return customise(
        named_plan("quick"), arms=["fixed_1"], warmup=0, steps=steps, cooldown_s=0,
        warmup_sleep_s=0,
    )  # fmt: skip


def cli(args, timeout=120, **kw):
    return subprocess.run(
        CLI + args, capture_output=True, text=True, timeout=timeout, stdin=subprocess.DEVNULL, **kw
    )


# -- total deadline --------------------------------------------------------------
@pytest.mark.parametrize("stream", [False, True], ids=["whole", "streamed"])
@pytest.mark.parametrize("behaviour", [trickle_body, trickle_headers], ids=["body", "headers"])
def test_a_trickling_server_fails_the_request_at_its_total_deadline(behaviour, stream):
    # A byte every 0.25 s never trips a per-read timeout of 1 s; the whole answer
    # would take over 300 s. The total deadline ends the attempt at 1 s.
    with HostileServer(behaviour()) as srv:
        client = ChatClient(srv.url, "m", timeout_s=1.0, attempts=1, stream=stream)
        t0 = time.monotonic()
        reply = client.chat(client.build_body("x"))
        took = time.monotonic() - t0
        client.close()
    assert (reply.success, reply.latency_ms, reply.tokens) == (False, 0, 0)
    assert reply.connection_error and reply.error.startswith("timeout"), reply.error
    assert "1 s for the whole answer" in reply.error
    assert 1.0 <= took < 6.0, took


def test_the_start_up_probe_has_its_own_total_deadline():
    with HostileServer(answer({}), get=trickle_headers()) as srv:
        t0 = time.monotonic()
        assert probe(srv.url, 1.0) is False
        assert time.monotonic() - t0 < 6.0
    with HostileServer(answer({})) as srv:
        assert probe(srv.url, 1.0) is True


@pytest.mark.parametrize("trickle", [True, False], ids=["trickling", "closed-port"])
def test_an_unreachable_base_url_exits_4(tmp_path, trickle, no_leftovers):
    if trickle:
        with HostileServer(answer({}), get=trickle_headers()) as srv:
            t0 = time.monotonic()
            p = cli(RUN + ["--base-url", srv.url, "--csv", str(tmp_path / "u.csv")], timeout=60)
            took = time.monotonic() - t0
        assert took < 30, took  # the probe gives up at 3 s; without it: forever
    else:
        p = cli(RUN + ["--base-url", "http://127.0.0.1:9", "--csv", str(tmp_path / "u.csv")])
    assert p.returncode == 4, p.stderr
    assert "cannot reach http://127.0.0.1:" in p.stderr and "Traceback" not in p.stderr
    assert not (tmp_path / "u.csv").exists()


# -- signals ---------------------------------------------------------------------
def _trickle_after(n_ok):
    """The first `n_ok` chat requests are answered; later ones trickle forever."""
    count = {"n": 0}
    slow = trickle_body(0.25)

    def go(h):
        count["n"] += 1
        if count["n"] <= n_ok:
            h.send_json(ok_doc())
        else:
            slow(h)

    return go


class _Proc:
    """The CLI in a child process, its stdout and stderr collected by threads."""

    def __init__(self, args):
        self.p = subprocess.Popen(
            CLI + args, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
            stdin=subprocess.DEVNULL,
        )  # fmt: skip
        self.out: list[str] = []
        self.err: list[str] = []
        self._readers = [
            threading.Thread(target=self._drain, args=(f, acc), daemon=True)
            for f, acc in ((self.p.stdout, self.out), (self.p.stderr, self.err))
        ]
        for t in self._readers:
            t.start()

    @staticmethod
    def _drain(f, acc):
        for line in f:
            acc.append(line)

    def wait(self, timeout):
        code = self.p.wait(timeout)
        for t in self._readers:
            t.join(10)
        return code, "".join(self.out), "".join(self.err)

    def kill(self):
        if self.p.poll() is None:
            self.p.kill()
            self.p.wait()


def test_one_sigterm_during_a_trickled_answer_ends_the_run_by_the_deadline(tmp_path, no_leftovers):
    out = tmp_path / "t.csv"
    with HostileServer(_trickle_after(2)) as srv:
        proc = _Proc(RUN + ["--steps", "5", "--timeout", "2", "--base-url", srv.url, "--csv", str(out)])
        try:
            wait_for(lambda: len(srv.posts) >= 3, 60, "the trickled request")
            t0 = time.monotonic()
            proc.p.send_signal(signal.SIGTERM)
            code, stdout, stderr = proc.wait(60)
            took = time.monotonic() - t0
        finally:
            proc.kill()
    assert code == 143, stderr
    assert took < 2 + 10, took  # the request's own deadline, no retry after the signal
    assert len(srv.posts) == 3  # the stopping run did not try again
    assert [r["success"] for r in csv_rows(out)] == ["1", "1"]
    doc = json.loads((tmp_path / "t_summary.json").read_text())
    assert doc["meta"]["reason"] == "terminated" and doc["modes"][0]["steps"] == 2
    assert "Run terminated" in stdout


@pytest.mark.parametrize("sig,code,reason", [(signal.SIGINT, 130, "interrupted"),
                                             (signal.SIGTERM, 143, "terminated")])  # fmt: skip
def test_a_second_signal_abandons_the_request_in_flight_at_once(tmp_path, sig, code, reason,
                                                                 no_leftovers):  # fmt: skip
    out = tmp_path / "a.csv"
    with HostileServer(_trickle_after(2)) as srv:
        # --timeout 60: only abandoning can end this request in time.
        proc = _Proc(RUN + ["--steps", "5", "--timeout", "60", "--base-url", srv.url, "--csv", str(out)])
        try:
            wait_for(lambda: len(srv.posts) >= 3, 60, "the trickled request")
            proc.p.send_signal(sig)
            wait_for(lambda: "again to abandon" in "".join(proc.err), 30, "the first notice")
            t0 = time.monotonic()
            proc.p.send_signal(sig)
            got, stdout, stderr = proc.wait(30)
            took = time.monotonic() - t0
        finally:
            proc.kill()
    assert got == code, stderr
    assert took < 10, took  # within a second or two; 10 leaves room on a busy machine
    assert len(srv.posts) == 3  # no retry on the abandoned client
    rows = csv_rows(out)
    assert [r["success"] for r in rows] == ["1", "1"]  # the CSV is whole, no torn row
    assert out.read_text().endswith("\n")
    doc = json.loads((tmp_path / "a_summary.json").read_text())
    assert doc["meta"]["reason"] == reason and doc["modes"][0]["steps"] == 2
    assert f"Run {reason}" in stdout


def test_abandon_from_another_thread_fails_the_attempt_without_retry():
    with HostileServer(trickle_body(0.25)) as srv:
        client = ChatClient(srv.url, "m", timeout_s=60, attempts=3)
        timer = threading.Timer(0.5, client.abandon)
        timer.start()
        t0 = time.monotonic()
        reply = client.chat(client.build_body("x"))
        took = time.monotonic() - t0
        client.close()
    assert (reply.success, reply.attempts, reply.error) == (False, 1, "request abandoned")
    assert took < 10 and len(srv.posts) == 1
    assert client.chat({}).error == "request abandoned"  # nothing is sent any more
    assert len(srv.posts) == 1


# -- odd answers -----------------------------------------------------------------
MALFORMED = [
    ('{"choices":[{"message":{"content":"x"}}],"usage":{"completion_tokens":NaN}}',
     "completion_tokens is not a finite number"),
    ('{"choices":[{"message":{"content":"x"}}],"usage":{"completion_tokens":-5}}',
     "completion_tokens is not a count"),
    ('{"choices":[{"message":{"content":"x"}}],"timings":{"draft_n":1e400}}',
     "draft_n is not a finite number"),
    ('{"choices":[{"message":"hello"}]}', "message is not an object"),
    ('{"choices":["hello"]}', "choices[0] is not an object"),
    ('{"choices":[{"message":{"content":"x"}}],"usage":"lots"}', "usage is not an object"),
    ('{"choices":[{"message":{"content":5}}]}', "message.content is not text"),
]  # fmt: skip


@respx.mock
@pytest.mark.parametrize("text,why", MALFORMED)
def test_a_parsable_but_malformed_answer_is_a_failed_step_not_an_aborted_run(tmp_path, text, why):
    respx.get(BASE + "/metrics").mock(return_value=httpx.Response(404))
    respx.post(URL).mock(return_value=httpx.Response(200, text=text))
    client = ChatClient(BASE, "m", sleep=lambda s: None)
    done = Runner(RunConfig(plan(2), str(tmp_path / "m.csv")), client, FieldActuator(),
                  ListSink()).run()  # fmt: skip
    assert done.reason == "completed"
    rows = csv_rows(tmp_path / "m.csv")
    assert [(r["success"], r["latency_ms"], r["tokens"], r["attempts"]) for r in rows] == [
        ("0", "0", "0", "3")
    ] * 2
    assert all(r["error"].startswith(f"malformed answer: {why}") for r in rows), rows[0]["error"]
    assert exit_code(done) == 1  # and a run whose every step failed is not a success


@respx.mock
@pytest.mark.parametrize("chunk", ["5", '"text"', "[1]", '{"choices":[{"delta":"x"}]}'])
def test_a_malformed_stream_chunk_is_a_failed_step(tmp_path, chunk):
    body = f'data: {{"choices":[{{"delta":{{"content":"a"}}}}]}}\n\ndata: {chunk}\n\ndata: [DONE]\n\n'
    respx.get(BASE + "/metrics").mock(return_value=httpx.Response(404))
    respx.post(URL).mock(return_value=httpx.Response(200, text=body))
    client = ChatClient(BASE, "m", sleep=lambda s: None, stream=True)
    done = Runner(RunConfig(plan(1), str(tmp_path / "s.csv")), client, FieldActuator(),
                  ListSink()).run()  # fmt: skip
    (row,) = csv_rows(tmp_path / "s.csv")
    assert done.reason == "completed"
    assert (row["success"], row["latency_ms"], row["tokens"]) == ("0", "0", "0")
    assert row["error"].startswith("malformed answer: ")


@pytest.mark.parametrize(
    "timings",
    [
        {"draft_n": -40, "draft_n_accepted": -90},
        {"draft_n": 40.5, "draft_n_accepted": 10},
        {"draft_n": 40, "draft_n_accepted": 90},  # more accepted than drafted
        {"draft_n": "40", "draft_n_accepted": 10},
    ],
)
def test_impossible_draft_counts_are_treated_as_missing(timings):
    f = parse_completion(ok_doc(8, **timings))
    assert (f["drafted"], f["accepted"], f["tokens"]) == (None, None, 8)
    good = parse_completion(ok_doc(8, draft_n=40.0, draft_n_accepted=10))
    assert (good["drafted"], good["accepted"]) == (40, 10)


@respx.mock
def test_negative_draft_counts_give_no_acceptance_and_no_knob_verdict(tmp_path):
    respx.post(URL).mock(
        return_value=httpx.Response(200, json=ok_doc(8, draft_n=-40, draft_n_accepted=-90))
    )
    respx.get(BASE + "/metrics").mock(return_value=httpx.Response(404))
    p = customise(plan(2), arms=["fixed_1", "fixed_8"])
    done = Runner(RunConfig(p, str(tmp_path / "n.csv")), ChatClient(BASE, "m"), FieldActuator(),
                  ListSink()).run()  # fmt: skip
    rows = csv_rows(tmp_path / "n.csv")
    assert [(r["success"], r["drafted"], r["accepted"], r["acceptance"]) for r in rows] == [
        ("1", "", "", "")
    ] * 4
    assert done.knob.status == "unverified"


# -- Retry-After -------------------------------------------------------------------
@respx.mock
@pytest.mark.parametrize(
    "status,header,timeout,slept",
    [
        (429, "2", 60.0, 2.0),
        (503, "1.5", 60.0, 1.5),
        (429, "999", 5.0, 5.0),  # bounded by the request deadline
        (429, "0", 60.0, 0.4),  # never shorter than the original's backoff
        (500, "7", 60.0, 0.4),  # only 429 and 503 are asked to wait
    ],
)
def test_retry_after_is_honoured_within_the_deadline(status, header, timeout, slept):
    sleeps = []
    respx.post(URL).mock(
        side_effect=[
            httpx.Response(status, text="busy", headers={"Retry-After": header}),
            httpx.Response(200, json=ok_doc()),
        ]
    )
    r = ChatClient(BASE, "m", sleep=sleeps.append, timeout_s=timeout).chat({})
    assert (r.success, r.attempts) == (True, 2)
    assert sleeps == [slept]


@respx.mock
def test_retry_after_on_a_loading_503_sets_the_uncounted_wait():
    sleeps = []
    respx.post(URL).mock(
        side_effect=[
            httpx.Response(503, text="Loading model", headers={"Retry-After": "3"}),
            httpx.Response(200, json=ok_doc()),
        ]
    )
    r = ChatClient(BASE, "m", sleep=sleeps.append).chat({})
    assert (r.success, r.attempts, sleeps) == (True, 1, [3.0])


def test_retry_after_parses_seconds_and_http_dates():
    assert retry_after_s("12") == 12.0
    assert retry_after_s("Wed, 21 Oct 2015 07:28:10 GMT", now=1445412480.0) == 10.0
    assert retry_after_s("Wed, 21 Oct 2015 07:28:00 GMT", now=1445412490.0) == 0.0
    assert retry_after_s("soon") is None and retry_after_s("inf") is None
    assert retry_after_s(None) is None


# -- refused keys ------------------------------------------------------------------
@pytest.mark.parametrize("status", [401, 403])
def test_consecutive_refusals_stop_the_run_early_with_a_clear_message(tmp_path, status):
    with HostileServer(answer({"error": "no"}, status)) as srv:
        client = ChatClient(srv.url, "m", sleep=lambda s: None)
        sink = ListSink()
        done = Runner(RunConfig(plan(20), str(tmp_path / "a.csv")), client, FieldActuator(),
                      sink).run()  # fmt: skip
        client.close()
    assert done.reason == "auth-refused"
    rows = csv_rows(tmp_path / "a.csv")
    assert len(rows) == AUTH_REFUSALS_TO_STOP == 3
    assert all(r["error"] == f'HTTP {status}: {{"error": "no"}}' for r in rows)
    assert len(srv.posts) == 3 * 3  # three steps of three attempts, not the 20-step plan
    logs = [e.text for e in sink.of(LogLine)]
    assert any(f"refused 3 requests in a row with HTTP {status}" in t and "--api-key" in t
               for t in logs)  # fmt: skip
    assert exit_code(done) == EXIT_FOR_REASON["auth-refused"] == 2


def test_refusals_must_be_consecutive_to_stop_a_run():
    script = [401, 401, 200, 401, 401, 200]
    def go(h):
        code = script.pop(0)
        h.send_json(ok_doc() if code == 200 else {"error": "no"}, code)

    with HostileServer(go) as srv:
        client = ChatClient(srv.url, "m", attempts=1)
        counts = []
        for _ in range(6):
            client.chat({})
            counts.append(client.auth_refusals)
        client.close()
    assert counts == [1, 2, 0, 1, 2, 0]


# -- secrets -------------------------------------------------------------------------
def test_redact_masks_the_key_and_any_bearer_token():
    text = 'bad token "Bearer sk-SECRET-1=" (key sk-SECRET-1), also bearer other.tok/en+x'
    out = redact_text(text, ("sk-SECRET-1",))
    assert out == f'bad token "Bearer {MASK}" (key {MASK}), also bearer {MASK}'
    assert redact_text(out, ("sk-SECRET-1",)) == out
    assert redact_text('{"a": "Bearer xyz"}') == '{"a": "Bearer ' + MASK + '"}'
    assert json.loads(redact_text('{"a": "Bearer x\\"y"}'))  # still JSON
    assert redact_text("abc", ("ab",)) == "abc"  # too short to be a key: never masked


def _echo_the_key():
    """First answer echoes the Authorization header in its content; then errors quoting it."""
    count = {"n": 0}

    def go(h):
        count["n"] += 1
        auth = h.headers.get("Authorization", "")
        if count["n"] == 1:
            h.send_json({"choices": [{"message": {"content": f"you sent {auth}"}}],
                         "usage": {"completion_tokens": 3}})  # fmt: skip
        elif count["n"] <= 4:  # the three attempts of step 2
            h.send_json({"error": f"bad token {auth} / raw {auth.split()[-1]}"}, 500)
        else:
            h.send_json({"error": "proxy says Bearer some.other-token"}, 502)

    return go


def test_an_echoed_key_is_never_stored_nor_shown(tmp_path, no_leftovers):
    key = "sk-SECRET-4f9a81"
    (tmp_path / "key").write_text(key + "\n")
    out, log = tmp_path / "k.csv", tmp_path / "k.log"
    with HostileServer(_echo_the_key()) as srv:
        p = cli(RUN + ["--steps", "3", "--base-url", srv.url, "--api-key-file", str(tmp_path / "key"),
                       "--csv", str(out), "--log-file", str(log), "-v", "--debug-json"])  # fmt: skip
    assert p.returncode == 0, p.stderr
    assert all(h["Authorization"] == f"Bearer {key}" for _, h, _ in srv.posts)  # it was sent
    rows = csv_rows(out)
    assert [r["success"] for r in rows] == ["1", "0", "0"]
    assert rows[1]["error"] == f'HTTP 500: {{"error": "bad token Bearer {MASK} / raw {MASK}"}}'
    assert rows[2]["error"] == f'HTTP 502: {{"error": "proxy says Bearer {MASK}"}}'
    assert "response JSON" in p.stderr and f"you sent Bearer {MASK}" in p.stderr
    texts = [p.stdout, p.stderr] + [f.read_text() for f in tmp_path.iterdir() if f.name != "key"]
    assert not any("SECRET" in t for t in texts)
    assert not any("some.other-token" in t for t in texts)


def test_the_key_comes_from_the_environment_and_help_warns_about_ps(tmp_path, no_leftovers):
    with HostileServer(answer(ok_doc())) as srv:
        env = dict(os.environ, LEMONADE_API_KEY="env-key-123")
        p = cli(RUN + ["--steps", "1", "--base-url", srv.url, "--csv", str(tmp_path / "e.csv")],
                env=env)  # fmt: skip
    assert p.returncode == 0, p.stderr
    assert srv.posts[0][1]["Authorization"] == "Bearer env-key-123"
    h = cli(["--help"])
    assert "visible to other users in `ps`" in " ".join(h.stdout.split())
    assert "--api-key-file" in h.stdout


# -- smaller ones ----------------------------------------------------------------------
@pytest.mark.parametrize("suffix", ["/v1", "/api/v1", "/api/v1/"])
def test_a_base_url_ending_in_the_api_path_is_stripped_and_said(tmp_path, suffix, no_leftovers):
    with HostileServer(answer(ok_doc())) as srv:
        p = cli(RUN + ["--steps", "2", "--base-url", srv.url + suffix, "--csv", str(tmp_path / "v.csv")])
    assert p.returncode == 0, p.stderr
    assert [path for path, _, _ in srv.posts] == ["/api/v1/chat/completions"] * 2
    assert f"ends in {suffix.rstrip('/')}: using {srv.url}" in p.stderr
    assert [r["success"] for r in csv_rows(tmp_path / "v.csv")] == ["1", "1"]


def test_a_run_whose_every_step_failed_exits_non_zero(tmp_path, no_leftovers):
    with HostileServer(answer({"error": "down"}, 500)) as srv:
        p = cli(RUN + ["--steps", "2", "--base-url", srv.url, "--csv", str(tmp_path / "f.csv")])
    assert p.returncode == 1, p.stderr
    assert "every one of the 2 steps failed" in p.stderr
    assert [r["success"] for r in csv_rows(tmp_path / "f.csv")] == ["0", "0"]
    assert json.loads((tmp_path / "f_summary.json").read_text())["modes"][0]["failures"] == 2


def _bad(tmp_path):
    cores = os.cpu_count() or 1
    key = tmp_path / "key"
    key.write_text("k-1234\n")
    csv = str(tmp_path / "r.csv")
    return [
        (["--cooldown", "nan"], "not a finite number"),
        (["--timeout", "inf"], "not a finite number"),
        (["--timeout", "nan"], "not a finite number"),
        (["--warmup-sleep=-inf"], "not a finite number"),
        (["--load-duration", "nan"], "not a finite number"),
        (["--server-down-after", "inf"], "not a finite number"),
        (["--sim-target-ms", "inf"], "not a finite number"),
        (["--sim-acceptance", "nan"], "not a finite number"),
        (["--base-url", "http://127.0.0.1:9", "--backend", "sim"], "conflict"),
        (["--base-url", "http://127.0.0.1:9", "--sim-target-ms", "1"], "--sim-target-ms conflict"),
        (["--load", "--load-workers", str(cores * 4 + 1)], f"at most {cores * 4}"),
        (["--csv", csv, "--log-file", csv], "is also a results file"),
        (["--csv", csv, "--log-file", str(tmp_path / "r_summary.json")], "is also a results file"),
        (["--api-key", "a", "--api-key-file", str(key)], "not both"),
        (["--api-key-file", str(tmp_path / "nope")], "cannot read --api-key-file"),
    ]


def test_bad_options_are_refused_with_exit_2_before_anything_starts(tmp_path, no_leftovers):
    for args, message in _bad(tmp_path):
        p = cli(["--no-ui", "--backend", "sim", *args] if "--base-url" not in args
                else ["--no-ui", *args], timeout=60, cwd=tmp_path)  # fmt: skip
        assert p.returncode == 2, (args, p.returncode, p.stderr)
        assert message in p.stderr, (args, p.stderr)
        assert "Traceback" not in p.stderr and len(p.stderr.strip().splitlines()) == 1, args
        assert not (tmp_path / "r.csv").exists()


def test_serve_sim_refuses_non_finite_numbers_too():
    p = cli(["serve-sim", "--port", "0", "--sim-target-ms", "nan"], timeout=60)
    assert p.returncode == 2 and "not a finite number" in p.stderr


def test_a_closed_client_stops_the_retry_loop_at_once():
    # The runner's stop makes the attempt in flight the last one.
    sleeps = []
    with HostileServer(answer({"error": "x"}, 500)) as srv:
        client = ChatClient(srv.url, "m", sleep=sleeps.append)
        client.stop_retrying()
        r = client.chat({})
        client.close()
    assert (r.success, r.attempts, sleeps, len(srv.posts)) == (False, 1, [], 1)


def test_client_log_lines_reach_the_sink_redacted(tmp_path):
    key = "sk-LOGKEY-77"
    sink = ListSink()
    log = LogRouter()
    log.attach(sink)

    def go(h):
        h.send_json({"error": f"echo {h.headers['Authorization']}"}, 500)

    with HostileServer(go) as srv:
        client = ChatClient(srv.url, "m", api_key=key, attempts=2, sleep=lambda s: None, log=log)
        r = client.chat({})
        client.close()
    assert r.error == f'HTTP 500: {{"error": "echo Bearer {MASK}"}}'
    texts = [e.text for e in sink.of(LogLine)]
    assert any(f"Bearer {MASK}" in t for t in texts) and not any(key in t for t in texts)


def test_a_closed_client_is_not_retried():
    sleeps = []
    with HostileServer(answer(ok_doc())) as srv:
        client = ChatClient(srv.url, "m", sleep=sleeps.append)
        client.close()
        r = client.chat({})
    assert (r.success, r.attempts, sleeps, srv.posts) == (False, 0, [], [])  # nothing sent
    assert r.error.startswith("request abandoned")
