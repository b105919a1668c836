"""uvicorn's httptools protocol, writing a response's head together with its first body bytes.

uvicorn writes the status line and headers the moment the app sends ``http.response.start``, and the body with the
next message: two writes, so two TCP segments on a ``TCP_NODELAY`` socket, and a client that may be woken twice
(once for a head it cannot use yet). Here each response's head is held until its first body bytes, which the
gateway's routes send in the same turn of the loop, and both go out in one write. A head with no body behind it in
that turn is written at the end of the turn, so an app that sends its head early and its body later loses nothing.
Measured: docs/speed.md.
"""

from __future__ import annotations

import asyncio
import weakref
from typing import Any

from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

__all__ = ["JoinedHttpToolsProtocol"]


_CONTINUE = b"HTTP/1.1 100 Continue\r\n\r\n"


class _HeadWithBody:
    """One response cycle's view of the connection: holds the head (the cycle's first write, unless that is a
    ``100 Continue``) until the next write, the end of the loop's turn or ``close``. Everything else goes to the
    transport.

    Once the head is out, the view hands the cycle its transport back, so the writes after it (every chunk of a
    stream) reach the transport without passing through here. It keeps only a weak reference to the cycle, which
    keeps one to it: a cycle must be freed by reference counting.
    """

    __slots__ = ("_cycle", "_held", "_flush", "_transport", "_loop")

    def __init__(self, transport: asyncio.Transport, loop: asyncio.AbstractEventLoop, cycle: Any = None) -> None:
        self._transport = transport
        self._loop = loop
        self._held: bytes | None = None
        self._flush: asyncio.Handle | None = None
        self._cycle = weakref.ref(cycle) if cycle is not None else None

    def write(self, data: bytes) -> None:
        if self._held is not None:
            held, self._held = self._held, None
            assert self._flush is not None
            self._flush.cancel()
            self._transport.write(held + data)
            self._step_aside()
        elif self._flush is None and data != _CONTINUE:
            self._held = data
            self._flush = self._loop.call_soon(self._write_held)
        else:
            self._transport.write(data)

    def _write_held(self) -> None:
        held, self._held = self._held, None
        if held is not None and not self._transport.is_closing():
            self._transport.write(held)
        self._step_aside()

    def _step_aside(self) -> None:
        cycle = self._cycle() if self._cycle is not None else None
        if cycle is not None and cycle.transport is self:
            cycle.transport = self._transport

    def close(self) -> None:
        # A response with no body bytes at all (HEAD) on a connection that closes after it: the head goes first.
        self._write_held()
        self._transport.close()

    def __getattr__(self, name: str) -> Any:
        return getattr(self._transport, name)


class JoinedHttpToolsProtocol(HttpToolsProtocol):
    """:class:`HttpToolsProtocol` whose responses go out as one write for head and first body bytes."""

    def on_headers_complete(self) -> None:
        before = self.cycle
        super().on_headers_complete()
        cycle = self.cycle
        if cycle is not before and cycle is not None:  # a new request (not an upgrade): its own view of the wire
            cycle.transport = _HeadWithBody(self.transport, self.loop, cycle)  # type: ignore[assignment]
