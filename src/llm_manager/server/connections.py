"""Connection guards for ``llm-manager serve``: clocks on a request's head and body, and an optional cap on
connections per client address — what uvicorn leaves open.

uvicorn times nothing between a connection's first byte and the end of a request's headers: a client that sends
one header line every few seconds (or connects and sends nothing) holds its connection for ever. Nor does it time a
body: a request with ``Content-Length: 100`` and no body byte waits for ever in the app's ``receive``. Many such
clients exhaust the server's sockets and memory (slowloris). So:

- **head**: from the connection's opening, or from the first byte of the next request on a kept-alive connection,
  the request line and headers must arrive within ``header_timeout_s``; otherwise a 408 is written and the
  connection closed (idle time between requests stays uvicorn's keep-alive timeout);
- **body**: from the end of the headers, the whole body must arrive within ``body_timeout_s``; otherwise a 408 and
  the connection closed. Requests handled under this clock are marked in their scope (:data:`BODY_TIMED`), so
  :func:`~llm_manager.server.asgi.read_body` starts no timer of its own: a request whose body came with its headers
  (nearly all) costs no timer at all;
- **per client**: with ``max_connections_per_client`` set, a connection beyond that many open from one address is
  answered 429 and closed at once. Off by default: behind a load balancer (or in a benchmark) every connection
  comes from one address.

The guard is a mixin over uvicorn's HTTP protocol classes (httptools and h11 alike): it only watches when a request
object (uvicorn's ``cycle``) appears and when its body is complete.
"""

from __future__ import annotations

import asyncio
from collections import Counter
from typing import Any

from llm_manager import _json

__all__ = ["BODY_TIMED", "guarded"]

BODY_TIMED = "llm_manager.body_timed"
"""Key in a request scope's ``extensions``: the server times this request's body (see the module docs)."""

_REASONS = {408: b"Request Timeout", 429: b"Too Many Requests"}


def _reply(status: int, message: str, code: str, extra: bytes = b"") -> bytes:
    """A whole HTTP/1.1 error response in OpenAI's shape, closing the connection."""
    body = _json.dumps({"error": {"message": message, "type": "invalid_request_error", "param": None, "code": code}})
    head = b"HTTP/1.1 %d %s\r\ncontent-type: application/json\r\ncontent-length: %d\r\nconnection: close\r\n" % (
        status,
        _REASONS[status],
        len(body),
    )
    return head + extra + b"\r\n" + body


class _Guard:
    """The mixin. Class attributes are set by :func:`guarded` on the class it builds."""

    header_timeout_s: float
    body_timeout_s: float
    max_per_client: int | None
    clients: Counter[str]
    """Open connections per client address, across this server's connections."""

    # What the guarded uvicorn protocol provides.
    cycle: Any
    transport: asyncio.Transport
    loop: asyncio.AbstractEventLoop

    def connection_made(self, transport: asyncio.Transport) -> None:
        super().connection_made(transport)  # type: ignore[misc]
        self._timer: asyncio.TimerHandle | None = None
        self._phase = "head"
        """``head`` (waiting for a request's headers), ``body`` (for its body), ``busy`` (answering), ``idle``."""
        peer = transport.get_extra_info("peername")
        self._client: str | None = peer[0] if isinstance(peer, tuple) and peer else None
        if self.max_per_client is not None and self._client is not None:
            if self.clients[self._client] >= self.max_per_client:
                msg = f"more than {self.max_per_client} open connections from this address; reuse one"
                transport.write(_reply(429, msg, "too_many_connections", b"retry-after: 1\r\n"))
                self._client = None  # not counted: it is closed at once
                transport.close()
                return
            self.clients[self._client] += 1
        self._arm(self.header_timeout_s, self._head_expired)

    def connection_lost(self, exc: Exception | None) -> None:
        self._disarm()
        if self._client is not None:
            self.clients[self._client] -= 1
            if self.clients[self._client] <= 0:
                del self.clients[self._client]
            self._client = None
        super().connection_lost(exc)  # type: ignore[misc]

    def data_received(self, data: bytes) -> None:
        before = self.cycle
        if self._phase == "idle":  # the first bytes of the next request on a kept-alive connection
            self._phase = "head"
        super().data_received(data)  # type: ignore[misc]
        self._observe(before)
        if self._phase == "head" and self._timer is None:
            # Its head is still incomplete: its clock starts from these first bytes. (A head that came whole, as
            # nearly all do, never needed a timer.)
            self._arm(self.header_timeout_s, self._head_expired)

    def on_response_complete(self) -> None:
        before = self.cycle
        super().on_response_complete()  # type: ignore[misc]
        cycle = self.cycle
        if cycle is before and (cycle is None or cycle.response_complete):
            # Nothing pipelined behind it: idle (uvicorn's keep-alive timeout) until the next request's first byte.
            self._disarm()
            self._phase = "idle"
        self._observe(before)  # h11 parses a pipelined request in there

    def _observe(self, before: Any) -> None:
        """A request whose headers are complete stops the head's clock and, if its body is still to come, starts
        the body's; a body that is complete stops it. Every request is marked as timed by the server."""
        cycle = self.cycle
        if cycle is not None and cycle is not before:
            cycle.scope.setdefault("extensions", {})[BODY_TIMED] = True
            if cycle.more_body:
                self._phase = "body"
                self._arm(self.body_timeout_s, self._body_expired)
            else:
                self._phase = "busy"
                self._disarm()
        elif self._phase == "body" and cycle is not None and not cycle.more_body:
            self._phase = "busy"
            self._disarm()

    def _arm(self, seconds: float, expired: Any) -> None:
        self._disarm()
        self._timer = self.loop.call_later(seconds, expired)

    def _disarm(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None

    def _head_expired(self) -> None:
        self._timer = None
        if self.transport.is_closing():
            return
        cycle = self.cycle
        if cycle is None or cycle.response_complete:  # else an answer is being written: only close
            msg = f"the request line and headers did not arrive within {self.header_timeout_s:g}s"
            self.transport.write(_reply(408, msg, "request_timeout"))
        self.transport.close()

    def _body_expired(self) -> None:
        self._timer = None
        cycle = self.cycle
        if cycle is None or not cycle.more_body or self.transport.is_closing():
            return
        if not cycle.response_started:
            # The app waits in receive(): the close wakes it with a disconnect, and what it sends then goes nowhere.
            msg = f"the request body did not arrive within {self.body_timeout_s:g}s"
            self.transport.write(_reply(408, msg, "request_timeout"))
        self.transport.close()


def guarded(
    base: type, *, header_timeout_s: float, body_timeout_s: float, max_connections_per_client: int | None
) -> type:
    """A subclass of uvicorn protocol ``base`` with the clocks and the per-client cap (its own connection count)."""
    attrs: dict[str, Any] = {
        "header_timeout_s": header_timeout_s,
        "body_timeout_s": body_timeout_s,
        "max_per_client": max_connections_per_client,
        "clients": Counter[str](),
    }
    return type(f"Guarded{base.__name__}", (_Guard, base), attrs)
