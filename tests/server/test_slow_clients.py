"""Slow clients over real sockets, with both HTTP parsers ``serve`` offers: a head that trickles in (or never comes)
and a declared body that never arrives get a 408 and a closed connection; an optional cap on connections per
client address. Legitimate requests are untouched."""

from __future__ import annotations

import asyncio
import socket
import time
from collections.abc import Iterator

import httpx
import pytest

from llm_manager.server.asgi import BodyError, read_body
from tests.helpers import sim_settings
from tests.server.conftest import MODELS, Gateway, start_gateway

HEADER_S = 0.4
BODY_S = 0.4
BODY = b'{"model": "gpt", "messages": [{"role": "user", "content": "hello"}]}'
HEAD = b"POST /v1/chat/completions HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"


def _gateway(http: str, per_client: int | None = None) -> Iterator[Gateway]:
    settings = sim_settings({k: dict(v) for k, v in MODELS.items()})
    settings.gateway.header_timeout_s = HEADER_S
    settings.gateway.body_timeout_s = BODY_S
    settings.gateway.max_connections_per_client = per_client
    yield from start_gateway(settings, http=http)


@pytest.fixture(params=["httptools", "h11"])
def guarded(request: pytest.FixtureRequest) -> Iterator[Gateway]:
    yield from _gateway(request.param)


def _connect(gw: Gateway) -> socket.socket:
    host, port = gw.url.removeprefix("http://").split(":")
    sock = socket.create_connection((host, int(port)))
    sock.settimeout(0.05)
    return sock


def _read_until_closed(sock: socket.socket, limit_s: float, trickle: list[bytes] | None = None) -> tuple[bytes, float]:
    """Everything the server sends until it closes the connection (or ``limit_s`` passes), sending one piece of
    ``trickle`` every 0.1 s meanwhile. Returns the bytes and when the connection was closed (``inf``: never)."""
    got, t0, pieces = b"", time.monotonic(), list(trickle or [])
    next_send = t0
    while time.monotonic() - t0 < limit_s:
        if pieces and time.monotonic() >= next_send:
            try:
                sock.sendall(pieces.pop(0))
            except OSError:
                return got, time.monotonic() - t0
            next_send = time.monotonic() + 0.1
        try:
            chunk = sock.recv(65536)
        except TimeoutError:
            continue
        except OSError:
            return got, time.monotonic() - t0
        if not chunk:
            return got, time.monotonic() - t0
        got += chunk
    return got, float("inf")


def test_a_declared_body_that_never_comes_gets_408(guarded: Gateway) -> None:
    with _connect(guarded) as sock:
        sock.sendall(HEAD + b"Content-Length: 100\r\n\r\n")
        got, closed_after = _read_until_closed(sock, 5)
    assert got.startswith(b"HTTP/1.1 408"), got[:200]
    assert b'"code":"request_timeout"' in got and b"body did not arrive within 0.4s" in got
    assert BODY_S - 0.1 <= closed_after < BODY_S + 1  # the clock started when the head arrived, just before t0


def test_header_lines_that_trickle_in_get_408(guarded: Gateway) -> None:
    lines = [b"POST /v1/chat/completions HTTP/1.1\r\n"] + [b"x-pad-%d: y\r\n" % i for i in range(100)]
    with _connect(guarded) as sock:
        got, closed_after = _read_until_closed(sock, 5, trickle=lines)  # one line every 0.1 s, for ten seconds
    assert got.startswith(b"HTTP/1.1 408") and b"headers did not arrive within 0.4s" in got, got[:200]
    assert HEADER_S - 0.1 <= closed_after < HEADER_S + 1


def test_a_connection_that_sends_nothing_is_closed(guarded: Gateway) -> None:
    with _connect(guarded) as sock:
        got, closed_after = _read_until_closed(sock, 5)
    assert got.startswith(b"HTTP/1.1 408") and closed_after < HEADER_S + 1


def test_the_next_request_on_a_kept_alive_connection_is_timed_too(guarded: Gateway) -> None:
    with _connect(guarded) as sock:
        sock.sendall(HEAD + b"Content-Length: %d\r\n\r\n" % len(BODY) + BODY)
        first, _ = _read_until_closed(sock, 0.3)
        assert first.startswith(b"HTTP/1.1 200"), first[:200]
        lines = [b"GET /health HTTP/1.1\r\n"] + [b"x-pad-%d: y\r\n" % i for i in range(100)]
        got, closed_after = _read_until_closed(sock, 5, trickle=lines)
    assert got.startswith(b"HTTP/1.1 408") and closed_after < HEADER_S + 1


def test_a_body_sent_in_pieces_within_the_clock_is_answered(guarded: Gateway) -> None:
    with _connect(guarded) as sock:
        sock.sendall(HEAD + b"Content-Length: %d\r\n\r\n" % len(BODY))
        pieces = [BODY[:10], BODY[10:30], BODY[30:]]  # 0.1 s apart: 0.2 s in all, within the 0.4 s
        got, _ = _read_until_closed(sock, 1.0, trickle=pieces)
    assert got.startswith(b"HTTP/1.1 200"), got[:300]


def test_slow_clients_hold_nothing_up(guarded: Gateway) -> None:
    socks = [_connect(guarded) for _ in range(20)]
    try:
        for s in socks:
            s.sendall(HEAD + b"Content-Length: 100\r\n\r\n")
        t0 = time.monotonic()
        resp = httpx.post(
            f"{guarded.url}/v1/chat/completions", content=BODY, headers={"content-type": "application/json"}
        )
        assert resp.status_code == 200 and time.monotonic() - t0 < 0.3
    finally:
        for s in socks:
            s.close()


def test_connections_per_client_are_capped_when_asked() -> None:
    for gw in _gateway("httptools", per_client=2):
        held = [_connect(gw), _connect(gw)]
        try:
            with _connect(gw) as third:
                got, closed_after = _read_until_closed(third, 2)
            assert got.startswith(b"HTTP/1.1 429") and b"too_many_connections" in got and b"retry-after: 1" in got
            assert closed_after < 0.5
            held.pop().close()
            time.sleep(0.1)
            with _connect(gw) as again:  # one went away: room for another
                again.sendall(b"GET /health HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
                got, _ = _read_until_closed(again, 0.3)
            assert got.startswith(b"HTTP/1.1 200"), got[:200]
        finally:
            for s in held:
                s.close()


def test_no_cap_by_default(guarded: Gateway) -> None:
    socks = [_connect(guarded) for _ in range(30)]
    try:
        for s in socks:
            s.sendall(b"GET /health HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
        assert all(_read_until_closed(s, 0.3)[0].startswith(b"HTTP/1.1 200") for s in socks)
    finally:
        for s in socks:
            s.close()


async def test_read_body_times_the_first_message_too_under_any_server() -> None:
    """Mounted in another server (no guarding protocol): the body clock starts at the call, not the first chunk."""

    async def never() -> dict[str, object]:
        await asyncio.sleep(3600)
        return {}

    t0 = time.monotonic()
    with pytest.raises(BodyError) as err:
        await asyncio.wait_for(read_body(never, 1000, 0.2), 2)  # without its own clock it would wait for ever
    assert err.value.kind == "slow" and time.monotonic() - t0 < 1
