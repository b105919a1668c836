"""What a codec's stream decoder offers the SSE loop every HTTP adapter shares
(:meth:`~llm_manager.providers.http_adapter.HttpAdapter.stream`: body bytes → SSE events → the decoder → chunks)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Protocol

from llm_manager._sse import SSEEvent

if TYPE_CHECKING:
    from llm_manager.codecs.base import Chunk

__all__ = ["EventDecoder"]


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
