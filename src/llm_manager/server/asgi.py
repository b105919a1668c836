"""Plain ASGI for the two routes that carry the traffic (``POST /v1/chat/completions`` and ``POST /v1/messages``).

Starlette serves every other route. On these two, its middleware layers, request / response objects and the task
group its streaming response starts per stream were about a tenth of the gateway's CPU per call, so they speak
ASGI directly: headers read once into a dict, the body read straight from ``receive``, a whole answer sent as two
messages, and an event stream sent with

- the first chunk written together with the opening event (one write, not two),
- the last event written together with the end of the response (so the client sees a complete response the
  moment it sees ``[DONE]``, and can reuse the connection at once), and
- a client that leaves noticed by one small task waiting on ``receive``, which cuts the stream's wait through its
  :class:`~llm_manager.server.lifecycle.Guard` (the upstream is released and the attempt billed as cancelled).
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Mapping, MutableMapping
from typing import Any

from llm_manager.server.connections import BODY_TIMED

__all__ = [
    "ASGIApp",
    "BodyError",
    "Dispatch",
    "Endpoint",
    "Incoming",
    "Receive",
    "Scope",
    "Send",
    "read_body",
    "send_stream_start",
    "send_whole",
    "watch_disconnect",
]

Scope = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[MutableMapping[str, Any]]]
Send = Callable[[MutableMapping[str, Any]], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]


class Incoming:
    """One request's headers (lower-case names; the first of repeated ones, as Starlette reads them), ``receive``,
    and whether the server times its body (see :func:`read_body`)."""

    __slots__ = ("body_timed", "headers", "receive")

    def __init__(self, scope: Scope, receive: Receive) -> None:
        headers: dict[str, str] = {}
        for name, value in scope["headers"]:
            key = name.decode("latin-1")
            if key not in headers:
                headers[key] = value.decode("latin-1")
        self.headers = headers
        self.receive = receive
        extensions = scope.get("extensions")
        self.body_timed = bool(extensions and extensions.get(BODY_TIMED))


class BodyError(Exception):
    """The body could not be read: ``kind`` is ``too_large``, ``slow`` or ``disconnected``."""

    def __init__(self, kind: str) -> None:
        super().__init__(kind)
        self.kind = kind


async def read_body(receive: Receive, limit: int, timeout_s: float, *, timed_by_server: bool = False) -> bytes:
    """The whole request body, at most ``limit`` bytes, arriving within ``timeout_s`` of the call (the first byte
    included: a request that declares a body and sends none is timed out too). Raises :class:`BodyError`.

    ``timed_by_server``: the server already holds the body to that clock (``llm-manager serve``'s protocol, see
    :mod:`llm_manager.server.connections`, marks such requests): no timer is started here, so a body that came with
    its headers costs none."""
    if timed_by_server:
        return await _read_body(receive, limit)
    try:
        async with asyncio.timeout(timeout_s):
            return await _read_body(receive, limit)
    except TimeoutError:
        raise BodyError("slow") from None


async def _read_body(receive: Receive, limit: int) -> bytes:
    message = await receive()  # usually the whole body, already read by the server
    parts: list[bytes] = []
    size = 0
    while True:
        if message["type"] == "http.disconnect":
            raise BodyError("disconnected")
        chunk: bytes = message.get("body", b"")
        size += len(chunk)
        if size > limit:
            raise BodyError("too_large")
        if not message.get("more_body", False):
            if not parts:
                return chunk
            parts.append(chunk)
            return b"".join(parts)
        parts.append(chunk)
        message = await receive()


def _raw_headers(headers: Mapping[str, str]) -> list[tuple[bytes, bytes]]:
    return [(k.encode("latin-1"), v.encode("latin-1")) for k, v in headers.items()]


async def send_whole(
    send: Send, status: int, headers: Mapping[str, str], body: bytes, content_type: bytes = b"application/json"
) -> None:
    """A complete response: status, headers (plus content type and length) and body."""
    raw = [(b"content-type", content_type), (b"content-length", b"%d" % len(body)), *_raw_headers(headers)]
    await send({"type": "http.response.start", "status": status, "headers": raw})
    await send({"type": "http.response.body", "body": body})


async def send_stream_start(send: Send, headers: Mapping[str, str]) -> None:
    """The head of a ``text/event-stream`` response."""
    raw = [(b"content-type", b"text/event-stream; charset=utf-8"), *_raw_headers(headers)]
    await send({"type": "http.response.start", "status": 200, "headers": raw})


async def watch_disconnect(receive: Receive, on_disconnect: Callable[[], None]) -> None:
    """Call ``on_disconnect`` when the client goes away (run as a task while a response streams).

    The body has been read, so ``receive`` only returns once the connection is lost — or once the response is
    complete, by which time the task has been cancelled.
    """
    while True:
        try:
            message = await receive()
        except Exception:  # a server that refuses receive() once the body is read: nothing to watch, then
            return
        if message["type"] == "http.disconnect":
            on_disconnect()
            return


class Dispatch:
    """The gateway's ASGI entry: ``POST`` to a hot path goes straight to its handler, the rest to ``app``.

    ``routes`` and ``state`` are the Starlette app's (which also serves the hot paths, for other methods' 405s and
    for anyone who mounts the Starlette app itself).
    """

    __slots__ = ("_app", "_hot")

    def __init__(self, app: Any, hot: Mapping[str, ASGIApp]) -> None:
        self._app = app
        self._hot = dict(hot)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and scope["method"] == "POST":
            path: str = scope["path"]
            root: str = scope.get("root_path", "")
            if root and path.startswith(root):  # behind a prefix (uvicorn --root-path): route as Starlette does
                path = path[len(root) :]
            handler = self._hot.get(path)
            if handler is not None:
                await handler(scope, receive, send)
                return
        await self._app(scope, receive, send)

    @property
    def routes(self) -> Any:
        return self._app.routes

    @property
    def state(self) -> Any:
        return self._app.state


class Endpoint:
    """An ASGI handler as a Starlette route endpoint (an instance, so Starlette calls it as ASGI, not as a
    request/response function)."""

    __slots__ = ("_handler",)

    def __init__(self, handler: ASGIApp) -> None:
        self._handler = handler

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        await self._handler(scope, receive, send)
