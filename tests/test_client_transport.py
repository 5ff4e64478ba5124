"""The client's transport: httpcore's public pool over the deadline backend, errors
as httpx's, and no proxy from the environment slipping past the deadline. Real
sockets on 127.0.0.1 (tests/hostile.py), no mocks."""

import socket
import threading
import time

import httpx
import pytest
from hostile import HostileServer, answer, ok_doc, trickle_body, trickle_headers

from halospec_tui.client import ChatClient, DeadlineBackend, deadline_http


def closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])  # closed again when the block ends


def test_every_connection_goes_through_the_deadline_backend():
    with HostileServer(answer(ok_doc())) as srv:
        http, backend = deadline_http(srv.url, 10.0)
        seen: list[str] = []
        real_connect = DeadlineBackend.connect_tcp

        def spy(self, host, port, *a, **kw):
            seen.append(f"{host}:{port}")
            return real_connect(self, host, port, *a, **kw)

        backend.connect_tcp = spy.__get__(backend)  # type: ignore[method-assign]
        with backend.deadline(10.0):
            assert http.get("/api/v1/health").json() == {}
            assert http.get("/api/v1/health").status_code == 200  # kept alive: one connect
        http.close()
    assert seen == [srv.url.removeprefix("http://")]


@pytest.mark.parametrize("behaviour", [trickle_body, trickle_headers], ids=["body", "headers"])
def test_the_total_deadline_raises_an_httpx_timeout(behaviour):
    with HostileServer(answer({}), get=behaviour()) as srv:
        http, backend = deadline_http(srv.url, 60.0)
        t0 = time.monotonic()
        with pytest.raises(httpx.ReadTimeout), backend.deadline(0.5):  # httpx's, not httpcore's
            http.get("/api/v1/health").read()
        took = time.monotonic() - t0
        http.close()
    assert 0.5 <= took < 5.0, took


def test_a_closed_port_is_an_httpx_connect_error():
    http, backend = deadline_http(f"http://127.0.0.1:{closed_port()}", 5.0)
    with pytest.raises(httpx.ConnectError), backend.deadline(5.0):
        http.get("/api/v1/health")
    http.close()


def test_abandon_fails_a_blocked_read_and_every_later_request():
    with HostileServer(answer({}), get=trickle_body(0.25)) as srv:
        http, backend = deadline_http(srv.url, 60.0)
        timer = threading.Timer(0.5, backend.abandon)
        timer.start()
        t0 = time.monotonic()
        with pytest.raises(httpx.TransportError):
            http.get("/api/v1/health").read()
        assert time.monotonic() - t0 < 10.0
        with pytest.raises(httpx.ConnectError, match="request abandoned"):
            http.get("/api/v1/health")
        http.close()
        timer.join()
    assert srv.gets == ["/api/v1/health"]  # the second request never left


@pytest.mark.parametrize("variable", ["HTTP_PROXY", "ALL_PROXY", "http_proxy"])
def test_a_proxy_in_the_environment_is_not_used(monkeypatch, variable):
    # A proxy's transport would carry neither the total deadline nor the abandon
    # switch: httpx mounts none when given a transport, and it must stay so.
    for name in ("NO_PROXY", "no_proxy"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv(variable, f"http://127.0.0.1:{closed_port()}")
    with HostileServer(answer(ok_doc(5))) as srv:
        client = ChatClient(srv.url, "m", attempts=1, timeout_s=10.0)
        r = client.chat(client.build_body("x"))
        client.close()
    assert (r.success, r.tokens, r.error) == (True, 5, "")
    assert len(srv.posts) == 1
