"""The embedded server's HTTP front under hostile requests, over real sockets.

Each test runs the server in this process (its handler threads' tracebacks land on
this process's stderr, which the test reads) and talks raw HTTP/1.1 to it, so odd
headers reach the server exactly as written.
"""

from __future__ import annotations

import json
import socket
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass

import httpx
import pytest
from conftest import FAST_SIM

from halospec_tui.sim.http_base import MAX_BODY
from halospec_tui.sim.server import SimServer, make_server

MODEL = FAST_SIM.model
WAIT_S = 5.0  # an answer that should come at once; the old bugs waited for good


@dataclass
class Raw:
    """One HTTP answer read off a raw socket, and whether the server closed after it."""

    status: int | None
    headers: dict[str, str]
    body: bytes
    closed: bool

    def json(self) -> object:
        return json.loads(self.body)


@pytest.fixture
def server(capfd: pytest.CaptureFixture[str]) -> Iterator[SimServer]:
    srv, _state = make_server(FAST_SIM)
    t = threading.Thread(target=srv.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    t.start()
    try:
        yield srv
    finally:
        srv.shutdown()
        srv.server_close()
    # Nothing any test here sends may print a traceback (or anything) on stderr.
    assert capfd.readouterr().err == ""


def url(srv: SimServer) -> str:
    host, port = srv.server_address[:2]
    return f"http://{host}:{port}"


def _read_answer(s: socket.socket, deadline: float) -> Raw:
    """The first answer on the socket (status None if the connection drops first),
    then whether the server closes the connection right after it."""
    data = b""
    while b"\r\n\r\n" not in data and time.monotonic() < deadline:
        chunk = s.recv(65536)
        if not chunk:
            return Raw(None, {}, data, True)
        data += chunk
    head, _, rest = data.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    status = int(lines[0].split()[1])
    headers = {k.strip().lower(): v.strip() for k, _, v in (ln.partition(":") for ln in lines[1:])}
    length = int(headers.get("content-length", "0"))
    while len(rest) < length and time.monotonic() < deadline:
        chunk = s.recv(65536)
        if not chunk:
            break
        rest += chunk
    body, extra = rest[:length], rest[length:]
    closed = False
    s.settimeout(0.5)
    try:
        while not extra:
            chunk = s.recv(65536)
            if not chunk:
                closed = True
                break
            extra += chunk
    except TimeoutError:
        pass
    return Raw(status, headers, body, closed)


def exchange(srv: SimServer, request: bytes, then: bytes = b"") -> Raw:
    """Send `request` (head and whatever body), keep the connection open, and read
    the answer within WAIT_S; `then` is sent after the answer."""
    host, port = srv.server_address[:2]
    with socket.create_connection((str(host), int(port)), timeout=WAIT_S) as s:
        s.sendall(request)
        raw = _read_answer(s, time.monotonic() + WAIT_S)
        if then and not raw.closed:
            s.sendall(then)
    return raw


def head(method: str, path: str, length: str | None, extra: str = "") -> bytes:
    lines = [f"{method} {path} HTTP/1.1", "Host: x", "Content-Type: application/json"]
    if length is not None:
        lines.append(f"Content-Length: {length}")
    if extra:
        lines.append(extra)
    return ("\r\n".join(lines) + "\r\n\r\n").encode()


ROUTES = [
    ("POST", "/api/v1/chat/completions"),
    ("POST", "/api/v1/load"),
    ("POST", "/sim/fault"),
    ("POST", "/api/v1/nowhere"),
    ("GET", "/api/v1/health"),
]
ROUTE_IDS = [f"{m} {p}" for m, p in ROUTES]


# -- Content-Length --------------------------------------------------------------------
@pytest.mark.parametrize("route", ROUTES, ids=ROUTE_IDS)
@pytest.mark.parametrize("length", ["abc", "-1", "12abc", "1e3", "0x10", "+5", "5 5", ""])
def test_a_content_length_that_is_no_byte_count_is_a_400_at_once(server, route, length):
    # "-1" used to read until the client gave up, "abc" to drop the connection with a
    # ValueError traceback. The body's end is unknown, so the connection closes.
    method, path = route
    raw = exchange(server, head(method, path, length) + b'{"model": "x"}')
    assert raw.status == 400, raw
    assert raw.headers["connection"] == "close" and raw.closed
    err = raw.json()["error"]
    assert err["code"] == 400 and err["type"] == "invalid_request_error"
    assert "Content-Length" in err["message"]


@pytest.mark.parametrize("route", ROUTES, ids=ROUTE_IDS)
@pytest.mark.parametrize("length", ["99999999999", str(MAX_BODY + 1), "9" * 5000])
def test_a_body_over_the_limit_is_a_413_on_every_route_and_is_not_read(server, route, length):
    # 99999999999 used to raise MemoryError; MAX_BODY + 1 on a known route used to be
    # read whole. The body is never sent here: the answer must not wait for it.
    method, path = route
    raw = exchange(server, head(method, path, length))
    assert raw.status == 413, raw
    assert raw.headers["connection"] == "close" and raw.closed
    err = raw.json()["error"]
    assert err["code"] == 413 and str(MAX_BODY) in err["message"]


def test_conflicting_content_lengths_are_a_400(server):
    req = head("POST", "/api/v1/load", "2", extra="Content-Length: 3") + b"{}"
    raw = exchange(server, req)
    assert raw.status == 400 and raw.closed
    assert "Content-Length" in raw.json()["error"]["message"]


def test_a_chunked_body_is_refused_and_never_read_as_the_next_request(server):
    body = b'{"model_name": "x"}'
    chunked = f"{len(body):x}\r\n".encode() + body + b"\r\n0\r\n\r\n"
    req = head("POST", "/api/v1/load", None, extra="Transfer-Encoding: chunked") + chunked
    raw = exchange(server, req)
    assert raw.status == 411 and raw.closed
    assert "Content-Length" in raw.json()["error"]["message"]


def test_a_body_at_the_limit_is_read_and_answered_and_keep_alive_goes_on(server):
    # Exactly MAX_BODY bytes of valid JSON: read whole, answered (404: unknown model),
    # and the next request on the same connection is answered too.
    pad = MAX_BODY - len(b'{"model": "other", "messages": [], "pad": ""}')
    body = b'{"model": "other", "messages": [], "pad": "' + b"x" * pad + b'"}'
    assert len(body) == MAX_BODY
    follow = b"GET /api/v1/health HTTP/1.1\r\nHost: x\r\n\r\n"
    host, port = server.server_address[:2]
    with socket.create_connection((str(host), int(port)), timeout=WAIT_S) as s:
        s.sendall(head("POST", "/api/v1/chat/completions", str(len(body))) + body)
        first = _read_answer(s, time.monotonic() + WAIT_S)
        assert first.status == 404 and not first.closed
        s.sendall(follow)
        second = _read_answer(s, time.monotonic() + WAIT_S)
    assert second.status == 200 and second.json()["status"] == "ok"  # type: ignore[index]


def test_a_get_with_a_body_does_not_leave_it_as_the_next_request(server):
    body = b'{"x": 1}'
    follow = b"GET /v1/models HTTP/1.1\r\nHost: x\r\n\r\n"
    host, port = server.server_address[:2]
    with socket.create_connection((str(host), int(port)), timeout=WAIT_S) as s:
        s.sendall(head("GET", "/api/v1/health", str(len(body))) + body)
        first = _read_answer(s, time.monotonic() + WAIT_S)
        s.sendall(follow)
        second = _read_answer(s, time.monotonic() + WAIT_S)
    assert (first.status, second.status) == (200, 200)
    assert second.json()["data"][0]["id"] == MODEL  # type: ignore[index]


def test_a_client_that_stops_sending_its_body_is_let_go(server):
    # Declares 100 bytes, sends 10 and hangs up: no traceback, and the server goes on.
    with socket.create_connection(server.server_address[:2], timeout=WAIT_S) as s:
        s.sendall(head("POST", "/api/v1/load", "100") + b'{"model_na')
    with httpx.Client(base_url=url(server), timeout=WAIT_S) as c:
        assert c.get("/api/v1/health").status_code == 200


# -- stream --------------------------------------------------------------------------
@pytest.mark.parametrize("value", ["no", "false", 0, 1, "yes", [], {}], ids=repr)
def test_a_stream_field_that_is_not_a_boolean_is_a_400(server, value):
    body = {"model": MODEL, "messages": [{"role": "user", "content": "s"}], "max_tokens": 4,
            "stream": value}  # fmt: skip
    with httpx.Client(base_url=url(server), timeout=WAIT_S) as c:
        r = c.post("/api/v1/chat/completions", json=body)
    assert r.status_code == 400, r.text
    assert r.headers["content-type"] == "application/json"
    assert "'stream' must be a boolean" in r.json()["error"]["message"]


@pytest.mark.parametrize("value,streamed", [(True, True), (False, False), (None, False)])
def test_stream_true_streams_and_false_or_null_does_not(server, value, streamed):
    body = {"model": MODEL, "messages": [{"role": "user", "content": "s"}], "max_tokens": 4,
            "stream": value}  # fmt: skip
    with httpx.Client(base_url=url(server), timeout=WAIT_S) as c:
        r = c.post("/api/v1/chat/completions", json=body)
    assert r.status_code == 200
    assert r.headers["content-type"] == ("text/event-stream" if streamed else "application/json")


# -- /api/v1/load: llamacpp_args read as strictly as llama-server reads them ------------
def load(c: httpx.Client, args: str) -> httpx.Response:
    return c.post("/api/v1/load", json={"model_name": MODEL, "llamacpp_args": args})


def loaded(c: httpx.Client) -> tuple[int, str]:
    h = c.get("/api/v1/health").json()
    return h["sim"]["draft_n_max"], h["all_models_loaded"][0]["launch_command"]


BAD_LOADS = [
    # (llamacpp_args, the message's start); each used to load some K (or p_min 0)
    ("--spec-draft-n-max -5", "--spec-draft-n-max '-5': invalid value"),
    ("--spec-draft-n-max abc", "--spec-draft-n-max 'abc': not a whole number"),
    ("--spec-draft-n-max 3.5", "--spec-draft-n-max '3.5': not a whole number (llama-server would read it as 3)"),
    ("--spec-draft-n-max 1e3", "--spec-draft-n-max '1e3': not a whole number (llama-server would read it as 1)"),
    ("--spec-draft-n-max 12abc", "--spec-draft-n-max '12abc': not a whole number (llama-server would read it as 12)"),
    ("--spec-draft-n-max 99999999999", "--spec-draft-n-max '99999999999': out of range"),
    ("--spec-draft-n-max 17", "--spec-draft-n-max 17: the draft length must be within 0..16"),
    ("--draft 17", "--draft 17: the draft length must be within 0..16"),
    ("--spec-draft-n-max=3", "--spec-draft-n-max=3: llama-server takes no --flag=value"),
    ("--spec-draft-n-max", "--spec-draft-n-max: needs a value"),
    ("--spec-draft-n-max\t4", "--spec-draft-n-max\t4: no such llama-server argument"),
    ("--spec-draft-n-max 4 --spec-draft-p-min nan", "--spec-draft-p-min 'nan': not a plain decimal number"),
    ("--spec-draft-n-max 4 --spec-draft-p-min 1e999", "--spec-draft-p-min '1e999': out of range"),
    ("--spec-draft-n-max 4 --spec-draft-p-min 2", "--spec-draft-p-min 2: p_min must be within 0..1 (1 excluded)"),
    ("--spec-draft-n-max 4 --spec-draft-p-min -1", "--spec-draft-p-min -1: p_min must be within 0..1 (1 excluded)"),
    ("--spec-draft-n-max 4 --spec-draft-p-min 1", "--spec-draft-p-min 1: p_min must be within 0..1 (1 excluded)"),
    ("--spec-draft-n-max 4 --draft-p-min 0.5x", "--draft-p-min '0.5x': not a plain decimal number (llama-server would read it as 0.5)"),
    ("-md d.gguf", "-md may not be passed in llamacpp_args"),
    ("--model-draft=d.gguf", "--model-draft may not be passed in llamacpp_args"),
]  # fmt: skip


@pytest.mark.parametrize("args,message", BAD_LOADS, ids=[a for a, _ in BAD_LOADS])
def test_a_bad_speculative_flag_is_a_400_naming_it_and_changes_nothing(server, args, message):
    with httpx.Client(base_url=url(server), timeout=WAIT_S) as c:
        assert load(c, "--spec-type draft-simple --spec-draft-n-max 6").status_code == 200
        before = loaded(c)
        r = load(c, args)
        assert r.status_code == 400, r.text
        err = r.json()["error"]
        assert err["type"] == "invalid_request_error"
        assert err["message"].startswith("llamacpp_args: " + message), err["message"]
        assert loaded(c) == before == (6, before[1])


GOOD_LOADS = [
    # (llamacpp_args, K, p_min) as llama-server would run them
    ("--spec-type draft-simple --spec-draft-n-max 5 --spec-draft-p-min 0.5", 5, 0.5),
    ("--spec_draft_n_max 7", 7, 0.0),  # llama-server reads _ as - in a flag's name
    ("--spec-draft-n-max +4 --spec-draft-p-min .25", 4, 0.25),
    ("'--spec-draft-n-max' \"16\"", 16, 0.0),  # Lemonade drops the quotes
    ("--draft-max 2 --draft-p-min 5e-1", 2, 0.5),
    ("--spec-draft-n-max 0", 0, 0.0),
    ("--spec-type none", 0, 0.0),
    ("--ctx-size 2048", 0, 0.0),
    ("--spec-type draft-simple", 3, 0.0),  # the launch-time K (FAST_SIM's default)
]


@pytest.mark.parametrize("args,k,p_min", GOOD_LOADS, ids=[a for a, _, _ in GOOD_LOADS])
def test_a_good_load_reads_back_through_the_same_strict_reader(server, args, k, p_min):
    from halospec_tui.actuators import k_from_launch_command
    from halospec_tui.specflags import p_min_from_args

    with httpx.Client(base_url=url(server), timeout=WAIT_S) as c:
        assert load(c, "--spec-draft-n-max 9").status_code == 200
        r = load(c, args)
        assert r.status_code == 200, r.text
        assert r.json()["status"] == "success" and r.json()["model_name"] == MODEL
        got_k, cmd = loaded(c)
    assert got_k == k
    assert k_from_launch_command(cmd) == k  # what the actuator confirms
    assert p_min_from_args(cmd) == p_min


def test_answers_leave_without_waiting_for_the_ack_of_their_headers():
    # Headers and body are two writes: with Nagle's algorithm on, every answer waited
    # for the client's delayed ACK (about 40 ms), a latency no real server has.
    from halospec_tui.sim.http_base import JsonHandler
    from halospec_tui.sim.server import Handler

    assert JsonHandler.disable_nagle_algorithm is True
    assert issubclass(Handler, JsonHandler)
