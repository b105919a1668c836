"""``server/http_protocol.py``: a response's head goes out with its first body bytes, and nothing waits or is lost."""

from __future__ import annotations

import asyncio
import socket
import threading
import time
from collections.abc import Iterator
from typing import Any

import pytest

pytest.importorskip("httptools")

from llm_manager.cli.serve import http_protocol
from llm_manager.server.asgi import read_body
from llm_manager.server.http_protocol import JoinedHttpToolsProtocol, _HeadWithBody

HEAD = b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\n"


class Recorder:
    """A transport that records each write (one write is one segment on a TCP_NODELAY socket)."""

    def __init__(self) -> None:
        self.writes: list[bytes] = []
        self.closing = False

    def write(self, data: bytes) -> None:
        self.writes.append(data)

    def is_closing(self) -> bool:
        return self.closing

    def get_extra_info(self, name: str) -> Any:
        return f"extra:{name}"


async def test_head_and_first_body_bytes_are_one_write() -> None:
    rec = Recorder()
    wire = _HeadWithBody(rec, asyncio.get_running_loop())  # type: ignore[arg-type]
    wire.write(HEAD)
    wire.write(b"ok")
    wire.write(b"more")
    await asyncio.sleep(0)
    assert rec.writes == [HEAD + b"ok", b"more"]
    assert wire.get_extra_info("peername") == "extra:peername"  # the rest is the transport's


async def test_a_head_alone_goes_out_at_the_end_of_the_turn() -> None:
    rec = Recorder()
    wire = _HeadWithBody(rec, asyncio.get_running_loop())  # type: ignore[arg-type]
    wire.write(HEAD)
    assert rec.writes == []
    await asyncio.sleep(0)
    assert rec.writes == [HEAD]
    wire.write(b"ok")  # the body, later: written as it comes
    assert rec.writes == [HEAD, b"ok"]


async def test_100_continue_is_not_held_and_a_closed_connection_gets_nothing() -> None:
    rec = Recorder()
    wire = _HeadWithBody(rec, asyncio.get_running_loop())  # type: ignore[arg-type]
    wire.write(b"HTTP/1.1 100 Continue\r\n\r\n")
    assert rec.writes == [b"HTTP/1.1 100 Continue\r\n\r\n"]
    wire.write(HEAD)
    rec.closing = True  # the connection went away before the end of the turn
    await asyncio.sleep(0)
    assert rec.writes == [b"HTTP/1.1 100 Continue\r\n\r\n"]


def test_serve_picks_it_for_httptools_only() -> None:
    assert http_protocol("auto") is JoinedHttpToolsProtocol
    assert http_protocol("httptools") is JoinedHttpToolsProtocol
    from uvicorn.protocols.http.h11_impl import H11Protocol

    assert http_protocol("h11") is H11Protocol


# -- over a real connection ---------------------------------------------------------------------------------------


async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
    assert scope["type"] == "http"
    body = await read_body(receive, limit=1 << 20, timeout_s=5)
    if scope["path"] == "/late":  # the head now, the body later
        await send({"type": "http.response.start", "status": 200, "headers": [(b"content-length", b"4")]})
        await asyncio.sleep(0.3)
        await send({"type": "http.response.body", "body": b"late"})
    elif scope["path"] == "/stream":
        await send({"type": "http.response.start", "status": 200, "headers": []})
        for part in (b"a", b"b", b"c"):
            await send({"type": "http.response.body", "body": part, "more_body": True})
        await send({"type": "http.response.body", "body": b""})
    else:
        await send({"type": "http.response.start", "status": 200, "headers": [(b"content-length", b"%d" % len(body))]})
        await send({"type": "http.response.body", "body": body})


@pytest.fixture(scope="module")
def port() -> Iterator[int]:
    import uvicorn

    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    sock.bind(("127.0.0.1", 0))
    config = uvicorn.Config(app, log_level="warning", lifespan="off", http=JoinedHttpToolsProtocol)
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started and time.monotonic() < deadline:
        time.sleep(0.01)
    assert server.started
    yield sock.getsockname()[1]
    server.should_exit = True
    thread.join(10)
    sock.close()


def _connect(port: int) -> socket.socket:
    conn = socket.create_connection(("127.0.0.1", port), timeout=5)
    conn.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    return conn


def _read_until(conn: socket.socket, end: bytes) -> bytes:
    data = b""
    while not data.endswith(end):
        part = conn.recv(65536)
        assert part, f"connection closed after {data!r}"
        data += part
    return data


def test_keep_alive_requests_are_answered_in_full(port: int) -> None:
    with _connect(port) as conn:
        for body in (b"one", b"second"):
            conn.sendall(b"POST /echo HTTP/1.1\r\nhost: x\r\ncontent-length: %d\r\n\r\n%s" % (len(body), body))
            reply = _read_until(conn, body)
            assert reply.startswith(b"HTTP/1.1 200 OK\r\n") and b"content-length: %d" % len(body) in reply
        conn.sendall(b"POST /stream HTTP/1.1\r\nhost: x\r\ncontent-length: 0\r\n\r\n")
        reply = _read_until(conn, b"0\r\n\r\n")
        assert b"transfer-encoding: chunked" in reply and reply.endswith(b"1\r\na\r\n1\r\nb\r\n1\r\nc\r\n0\r\n\r\n")


def test_a_head_sent_before_a_late_body_is_not_held_back(port: int) -> None:
    with _connect(port) as conn:
        conn.sendall(b"POST /late HTTP/1.1\r\nhost: x\r\ncontent-length: 0\r\n\r\n")
        t0 = time.monotonic()
        head = _read_until(conn, b"\r\n\r\n")
        assert time.monotonic() - t0 < 0.25, "the head waited for the body"
        assert head.startswith(b"HTTP/1.1 200 OK\r\n")
        assert _read_until(conn, b"late").endswith(b"late")


def test_expect_100_continue(port: int) -> None:
    with _connect(port) as conn:
        conn.sendall(b"POST /echo HTTP/1.1\r\nhost: x\r\nexpect: 100-continue\r\ncontent-length: 2\r\n\r\n")
        assert _read_until(conn, b"\r\n\r\n") == b"HTTP/1.1 100 Continue\r\n\r\n"
        conn.sendall(b"hi")
        assert _read_until(conn, b"hi").startswith(b"HTTP/1.1 200 OK\r\n")


def test_a_head_only_response_on_a_closing_connection_is_sent_before_the_close(port: int) -> None:
    # HEAD: uvicorn writes no body, then closes the connection at once (connection: close).
    with _connect(port) as conn:
        conn.sendall(b"HEAD /echo HTTP/1.1\r\nhost: x\r\nconnection: close\r\n\r\n")
        head = _read_until(conn, b"\r\n\r\n")
        assert head.startswith(b"HTTP/1.1 200 OK\r\n") and b"connection: close" in head
        assert conn.recv(1024) == b""  # then the close, nothing else
