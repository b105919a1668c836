"""The loop every SSE adapter shares: body bytes → SSE events → a codec's stream decoder → chunks."""

from __future__ import annotations

from collections.abc import AsyncGenerator
from typing import TYPE_CHECKING, Protocol

from llm_manager._sse import SSEDecoder, SSEEvent
from llm_manager.errors import StreamInterruptedError

if TYPE_CHECKING:
    from llm_manager._http import StreamingResponse
    from llm_manager.codecs.base import Chunk

__all__ = ["EventDecoder", "sse_chunks"]


class EventDecoder(Protocol):
    """A codec's stream decoder (``codecs.<protocol>.stream.StreamDecoder``)."""

    @property
    def done(self) -> bool:
        """The protocol's end marker arrived: stop reading."""

    @property
    def finished(self) -> bool:
        """The answer is whole: a connection dropped after this loses nothing."""

    def decode(self, event: SSEEvent) -> Chunk | None:
        """The chunk of one event, if it has one; raises a mapped error for error events and malformed data."""

    def close(self) -> None:
        """The body ended; raises :class:`StreamInterruptedError` when the answer is not whole."""


async def sse_chunks(resp: StreamingResponse, decoder: EventDecoder) -> AsyncGenerator[Chunk, None]:
    """Yield ``decoder``'s chunks for the events of ``resp``'s body, each as soon as its event is complete."""
    sse = SSEDecoder()
    read = resp.next_bytes
    while True:
        try:
            piece = await read()
        except StreamInterruptedError:
            if decoder.finished:
                return  # dropped after the answer was whole: only usage or the end marker were lost
            raise
        if not piece:
            break
        for event in sse.events(piece):
            chunk = decoder.decode(event)
            if chunk is not None:
                yield chunk
            if decoder.done:
                return
    decoder.close()
