"""A scriptable HTTP/1.1 upstream on 127.0.0.1 for tests and benchmarks.

Written on raw asyncio streams rather than a web framework so that every fault a real provider shows can be
produced exactly: a hang before headers, a reset mid-body, a chunked body cut without its terminator, a stall.

Usage::

    upstream = FakeUpstream()
    await upstream.start()
    upstream.push(Reply.json({"ok": True}), Reply.error(429, {...}, headers={"retry-after": "2"}))
    ... point a client at upstream.url ...
    await upstream.close()

Replies are consumed in order; when the queue is empty, ``default`` (a function of the request) answers.
"""

from __future__ import annotations

import asyncio
import json
import threading
from collections import deque
from collections.abc import Callable, Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass, field
from typing import Any

__all__ = ["FakeUpstream", "Recorded", "Reply", "serve_in_thread"]


@dataclass
class Recorded:
    """One request the fake received."""

    method: str
    path: str
    headers: dict[str, str]
    body: bytes

    @property
    def json(self) -> Any:
        return json.loads(self.body) if self.body else None


@dataclass
class Reply:
    """What the fake answers. Build with the class methods."""

    status: int = 200
    headers: dict[str, str] = field(default_factory=dict)
    body: bytes | None = None
    chunks: list[bytes] | None = None
    delay_s: float = 0.0
    """Sleep before sending anything (a large value is a hang)."""
    chunk_delay_s: float = 0.0
    """Sleep before each streamed chunk."""
    first_chunk_delay_s: float = 0.0
    """Extra sleep before the first streamed chunk, after the headers (slow first token)."""
    reset_before_headers: bool = False
    reset_after_chunks: int | None = None
    """Abort the connection (no terminator) after this many chunks."""
    stall_after_chunks: int | None = None
    """Stop sending after this many chunks but keep the connection open."""

    @classmethod
    def json(cls, obj: Any, status: int = 200, headers: dict[str, str] | None = None) -> Reply:
        return cls(
            status=status,
            headers={"content-type": "application/json", **(headers or {})},
            body=json.dumps(obj).encode(),
        )

    @classmethod
    def error(cls, status: int, obj: Any, headers: dict[str, str] | None = None) -> Reply:
        return cls.json(obj, status=status, headers=headers)

    @classmethod
    def sse(cls, events: list[bytes], **kw: Any) -> Reply:
        """A ``text/event-stream`` body sent as one chunk per event."""
        headers = {"content-type": "text/event-stream", "cache-control": "no-cache", **kw.pop("headers", {})}
        return cls(headers=headers, chunks=list(events), **kw)

    @classmethod
    def hang(cls) -> Reply:
        return cls(delay_s=3600.0)

    @classmethod
    def reset(cls) -> Reply:
        return cls(reset_before_headers=True)


_REASONS = {
    200: "OK",
    400: "Bad Request",
    401: "Unauthorized",
    403: "Forbidden",
    404: "Not Found",
    408: "Request Timeout",
    413: "Payload Too Large",
    422: "Unprocessable Entity",
    429: "Too Many Requests",
    500: "Internal Server Error",
    502: "Bad Gateway",
    503: "Service Unavailable",
    504: "Gateway Timeout",
    529: "Overloaded",
}


class FakeUpstream:
    """The server. ``requests`` records everything received, in order."""

    def __init__(self, default: Callable[[Recorded], Reply] | None = None) -> None:
        self.default = default or (lambda _req: Reply.json({"error": "no reply scripted"}, status=500))
        self.queue: deque[Reply] = deque()
        self.requests: list[Recorded] = []
        self.connections = 0
        """TCP connections accepted so far (a pooled client opens one and reuses it)."""
        self._server: asyncio.Server | None = None
        self._writers: set[asyncio.StreamWriter] = set()
        self._handlers: set[asyncio.Task[None]] = set()
        self.port = 0

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def push(self, *replies: Reply) -> None:
        self.queue.extend(replies)

    async def start(self) -> FakeUpstream:
        self._server = await asyncio.start_server(self._handle, "127.0.0.1", 0)
        self.port = self._server.sockets[0].getsockname()[1]
        return self

    async def close(self) -> None:
        if self._server is not None:
            self._server.close()
            for w in list(self._writers):
                w.transport.abort()
            handlers = list(self._handlers)
            for task in handlers:  # a scripted hang or stall sleeps for an hour: end it now
                task.cancel()
            await asyncio.gather(*handlers, return_exceptions=True)
            with suppress(Exception):
                await self._server.wait_closed()

    async def __aenter__(self) -> FakeUpstream:
        return await self.start()

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.connections += 1
        self._writers.add(writer)
        task = asyncio.current_task()
        if task is not None:
            self._handlers.add(task)
        try:
            while True:
                req = await _read_request(reader)
                if req is None:
                    return
                self.requests.append(req)
                reply = self.queue.popleft() if self.queue else self.default(req)
                if not await _send(writer, reply):
                    return
        except (ConnectionError, asyncio.IncompleteReadError):
            return
        finally:
            self._writers.discard(writer)
            if task is not None:
                self._handlers.discard(task)
            with suppress(Exception):
                writer.close()


async def _read_request(reader: asyncio.StreamReader) -> Recorded | None:
    try:
        head = await reader.readuntil(b"\r\n\r\n")
    except (asyncio.IncompleteReadError, asyncio.LimitOverrunError):
        return None
    lines = head.decode("latin-1").split("\r\n")
    method, path, _ = lines[0].split(" ", 2)
    headers: dict[str, str] = {}
    for line in lines[1:]:
        if line:
            k, _, v = line.partition(":")
            headers[k.strip().lower()] = v.strip()
    if headers.get("transfer-encoding", "").lower() == "chunked":
        body = b""
        while True:
            size = int((await reader.readline()).strip() or b"0", 16)
            if size == 0:
                await reader.readline()
                break
            body += await reader.readexactly(size)
            await reader.readline()
    else:
        body = await reader.readexactly(int(headers.get("content-length", "0")))
    return Recorded(method, path, headers, body)


async def _send(writer: asyncio.StreamWriter, reply: Reply) -> bool:
    """Write one reply; False when the connection must not be reused."""
    if reply.delay_s:
        await asyncio.sleep(reply.delay_s)
    if reply.reset_before_headers:
        writer.transport.abort()
        return False
    status_line = f"HTTP/1.1 {reply.status} {_REASONS.get(reply.status, 'Status')}\r\n"
    headers = dict(reply.headers)
    if reply.chunks is None:
        body = reply.body or b""
        headers["content-length"] = str(len(body))
        writer.write((status_line + "".join(f"{k}: {v}\r\n" for k, v in headers.items()) + "\r\n").encode() + body)
        await writer.drain()
        return True
    headers["transfer-encoding"] = "chunked"
    writer.write((status_line + "".join(f"{k}: {v}\r\n" for k, v in headers.items()) + "\r\n").encode())
    await writer.drain()
    if reply.first_chunk_delay_s:
        await asyncio.sleep(reply.first_chunk_delay_s)
    for i, chunk in enumerate(reply.chunks):
        if reply.reset_after_chunks is not None and i >= reply.reset_after_chunks:
            writer.transport.abort()
            return False
        if reply.stall_after_chunks is not None and i >= reply.stall_after_chunks:
            await asyncio.sleep(3600)
        if reply.chunk_delay_s and i:
            await asyncio.sleep(reply.chunk_delay_s)
        writer.write(b"%x\r\n%s\r\n" % (len(chunk), chunk))
        await writer.drain()
    if reply.reset_after_chunks is not None and reply.reset_after_chunks >= len(reply.chunks):
        writer.transport.abort()
        return False
    writer.write(b"0\r\n\r\n")
    await writer.drain()
    return True


@contextmanager
def serve_in_thread(upstream: FakeUpstream) -> Iterator[FakeUpstream]:
    """Run ``upstream`` on its own loop in a thread (for synchronous clients such as the official SDKs)."""
    loop = asyncio.new_event_loop()
    ready = threading.Event()

    def run() -> None:
        asyncio.set_event_loop(loop)
        loop.run_until_complete(upstream.start())
        ready.set()
        loop.run_forever()

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    if not ready.wait(5):
        raise RuntimeError("fake upstream did not start")
    try:
        yield upstream
    finally:
        asyncio.run_coroutine_threadsafe(upstream.close(), loop).result(5)
        loop.call_soon_threadsafe(loop.stop)
        thread.join(5)
        loop.close()
