"""The serving protocol sends a response's head with its first body bytes, and never holds anything back."""

from __future__ import annotations

import asyncio
import socket
from typing import Any

from llm_manager.server.http_protocol import _HeadHolding
from tests.server.conftest import Gateway


class _Recorder:
    def __init__(self) -> None:
        self.writes: list[bytes] = []
        self.closed = False
        self.aborted = False

    def write(self, data: bytes) -> None:
        self.writes.append(bytes(data))

    def is_closing(self) -> bool:
        return self.closed or self.aborted

    def close(self) -> None:
        self.closed = True

    def abort(self) -> None:
        self.aborted = True

    def get_extra_info(self, name: str) -> Any:
        return f"info:{name}"


def _holding() -> tuple[_HeadHolding, _Recorder]:
    rec = _Recorder()
    return _HeadHolding(rec, asyncio.get_running_loop()), rec  # type: ignore[arg-type]


async def test_the_head_goes_out_with_the_first_body_bytes_and_the_rest_straight_through() -> None:
    t, rec = _holding()
    t.armed = True
    t.write(b"HEAD")
    assert rec.writes == []
    t.write(b"body1")
    t.write(b"body2")
    assert rec.writes == [b"HEADbody1", b"body2"]
    await asyncio.sleep(0)  # the fallback flush finds nothing left to send
    assert rec.writes == [b"HEADbody1", b"body2"]


async def test_a_head_without_a_body_behind_it_is_sent_within_the_loop_iteration() -> None:
    t, rec = _holding()
    t.armed = True
    t.write(b"HEAD")
    await asyncio.sleep(0)
    assert rec.writes == [b"HEAD"]
    t.write(b"later")  # not armed again: passes straight through
    assert rec.writes == [b"HEAD", b"later"]


async def test_close_sends_a_held_head_first_and_abort_drops_it() -> None:
    t, rec = _holding()
    t.armed = True
    t.write(b"400 head")
    t.close()
    assert rec.writes == [b"400 head"] and rec.closed
    t2, rec2 = _holding()
    t2.armed = True
    t2.write(b"head")
    t2.abort()
    await asyncio.sleep(0)
    assert rec2.writes == [] and rec2.aborted
    assert t2.get_extra_info("peername") == "info:peername"  # the rest is the real transport's


def _read_responses(sock: socket.socket, count: int) -> list[bytes]:
    """``count`` whole responses (each with a content-length) from ``sock``."""
    buf = b""
    out: list[bytes] = []
    while len(out) < count:
        chunk = sock.recv(65536)
        assert chunk, f"connection closed after {len(out)} responses"
        buf += chunk
        while True:
            head_end = buf.find(b"\r\n\r\n")
            if head_end < 0:
                break
            head = buf[:head_end].lower()
            length = int(head.split(b"content-length: ", 1)[1].split(b"\r\n", 1)[0])
            end = head_end + 4 + length
            if len(buf) < end:
                break
            out.append(buf[:end])
            buf = buf[end:]
    return out


def test_pipelined_requests_get_whole_responses_in_order(gateway: Gateway) -> None:
    host, port = gateway.url.removeprefix("http://").split(":")
    body = b'{"model":"fast","messages":[{"role":"user","content":"hi"}]}'
    chat = (
        b"POST /v1/chat/completions HTTP/1.1\r\nhost: x\r\ncontent-type: application/json\r\n"
        b"content-length: %d\r\n\r\n%s" % (len(body), body)
    )
    health = b"GET /health HTTP/1.1\r\nhost: x\r\n\r\n"
    with socket.create_connection((host, int(port)), timeout=10) as sock:
        sock.sendall(chat + health + chat)
        first, second, third = _read_responses(sock, 3)
    assert first.startswith(b"HTTP/1.1 200") and b'"chat.completion"' in first
    assert second.startswith(b"HTTP/1.1 200") and second.endswith(b'{"status":"ok"}')
    assert third.startswith(b"HTTP/1.1 200") and b'"chat.completion"' in third
