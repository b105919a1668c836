"""Sans-IO Server-Sent Events: a line decoder fed with arbitrary byte chunks, and an encoder.

Follows the WHATWG event-stream rules that matter for LLM APIs: ``\\n``, ``\\r\\n`` and ``\\r`` line ends (even when
split across chunks), multi-line ``data``, ``event`` / ``id`` / ``retry`` fields, ``:`` comments, one optional space
after the colon, and dispatch on a blank line. Bytes are decoded as UTF-8 only once a line is complete, so a
multi-byte character split across network chunks is never mangled.
"""

from __future__ import annotations

from collections.abc import AsyncIterable, AsyncIterator, Iterable, Iterator
from dataclasses import dataclass

__all__ = ["SSEDecoder", "SSEEvent", "aiter_sse", "encode_event"]


@dataclass(slots=True, frozen=True)
class SSEEvent:
    """One dispatched event."""

    data: str
    event: str = "message"
    id: str | None = None
    retry: int | None = None


class SSEDecoder:
    """Feed bytes in, get complete events out. Keeps only the unfinished line and event between calls."""

    __slots__ = ("_buf", "_data", "_event", "_id", "_pending_cr", "_retry")

    def __init__(self) -> None:
        self._buf = b""
        self._pending_cr = False
        self._data: list[str] = []
        self._event: str | None = None
        self._id: str | None = None
        self._retry: int | None = None

    def feed(self, chunk: bytes) -> list[SSEEvent]:
        """Consume ``chunk``; return the events it completed (possibly none)."""
        return list(self.events(chunk))

    def events(self, chunk: bytes) -> Iterable[SSEEvent]:
        """Consume ``chunk``; return the events it completed, each decoded as it is reached.

        A stream's first event is handed on before the lines of the rest of ``chunk`` are decoded (a fast
        upstream's whole answer can arrive in one read). Iterate to the end before feeding more; stopping early
        drops the rest of ``chunk``, which is right only when the stream stops there too.
        """
        if not chunk:
            # Nothing to see, and a pending \r must survive: the \n that may complete it has not arrived yet.
            return ()
        if self._pending_cr:
            # A lone \r ended the previous chunk: a \n opening this one belongs to that same line end.
            self._pending_cr = False
            if chunk.startswith(b"\n"):
                chunk = chunk[1:]
        buf = self._buf + chunk if self._buf else chunk
        if b"\r" not in buf and buf.endswith(b"\n\n") and not self._data:
            one = self._one(buf)
            if one is not None:
                return (one,)
        if b"\r" not in buf:
            *lines, self._buf = buf.split(b"\n")
        else:
            if buf.endswith(b"\r"):
                self._pending_cr = True
            *lines, self._buf = buf.replace(b"\r\n", b"\n").replace(b"\r", b"\n").split(b"\n")
        return self._dispatch(lines)

    def _one(self, buf: bytes) -> SSEEvent | None:
        """The event of ``buf`` when it is exactly one event of one ``data:`` line, after an optional ``event:``
        line: the shape nearly every LLM API streams a chunk in (OpenAI's without the name, Anthropic's with it).
        Dispatched as its lines would be, without splitting them or starting a generator; ``None`` otherwise."""
        start, name = 0, self._event
        if buf.startswith(b"event: "):
            start = buf.find(b"\n") + 1
            name = buf[7 : start - 1].decode("utf-8", errors="replace")
        if not buf.startswith(b"data: ", start) or buf.find(b"\n", start) != len(buf) - 2:
            return None
        self._buf = b""
        one = SSEEvent(buf[start + 6 : -2].decode("utf-8", errors="replace"), name or "message", self._id, self._retry)
        self._event = self._retry = None
        return one

    def _dispatch(self, lines: list[bytes]) -> Iterator[SSEEvent]:
        line = self._line
        for raw in lines:
            ev = line(raw.decode("utf-8", errors="replace"))
            if ev is not None:
                yield ev

    def flush(self) -> list[SSEEvent]:
        """End of stream: a final event without its blank line is not dispatched, per the spec."""
        self._buf = b""
        self._data, self._event = [], None
        return []

    @property
    def has_partial(self) -> bool:
        """Whether bytes of an unfinished line or event are buffered (a sign of a truncated stream)."""
        return bool(self._buf) or bool(self._data)

    def _line(self, line: str) -> SSEEvent | None:
        if not line:
            if not self._data:
                # Per the spec a block without data lines dispatches nothing and forgets its event name.
                self._event = None
                return None
            ev = SSEEvent("\n".join(self._data), self._event or "message", self._id, self._retry)
            self._data, self._event, self._retry = [], None, None
            return ev
        if line[0] == ":":
            return None
        name, sep, value = line.partition(":")
        if sep and value.startswith(" "):
            value = value[1:]
        if name == "data":
            self._data.append(value)
        elif name == "event":
            self._event = value
        elif name == "id":
            if "\0" not in value:
                self._id = value
        elif name == "retry" and value.isascii() and value.isdigit():  # isdigit alone admits "²", which int() rejects
            self._retry = int(value)
        return None


async def aiter_sse(chunks: AsyncIterable[bytes]) -> AsyncIterator[SSEEvent]:
    """Decode an async byte stream into events."""
    decoder = SSEDecoder()
    async for chunk in chunks:
        for ev in decoder.events(chunk):
            yield ev


def encode_event(data: str | bytes, event: str | None = None) -> bytes:
    """Encode one event (multi-line data allowed)."""
    if isinstance(data, str):
        data = data.encode()
    head = b"event: " + event.encode() + b"\n" if event else b""
    if b"\n" not in data and b"\r" not in data:
        return head + b"data: " + data + b"\n\n"
    lines = data.replace(b"\r\n", b"\n").replace(b"\r", b"\n").split(b"\n")
    return head + b"".join(b"data: " + ln + b"\n" for ln in lines) + b"\n"
