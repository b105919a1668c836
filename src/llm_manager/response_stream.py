"""What a call hands back before it is over: a stream of events (:class:`ResponseStream`), or an answer whose
bookkeeping is still owed (:data:`Settle`, from :meth:`LLMManager.answer <llm_manager.manager.LLMManager.answer>`).
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable

from llm_manager.types import Attempt, PromptOptimization, Response, StreamEvent

__all__ = ["ResponseStream", "Settle", "then"]

Settle = Callable[[], Awaitable[None]]
"""The bookkeeping still owed for an answer (see :meth:`LLMManager.answer`)."""


def then(first: Settle, second: Settle) -> Settle:
    """``first``, then ``second`` even if ``first`` failed."""

    async def both() -> None:
        try:
            await first()
        finally:
            await second()

    return both


class ResponseStream:
    """An async iterator of :class:`StreamEvent` that is also an async context manager closing the upstream."""

    def __init__(self, events: AsyncIterator[StreamEvent] | None = None, attempts: list[Attempt] | None = None) -> None:
        self._events: AsyncIterator[StreamEvent] = events if events is not None else _no_events()
        self.response: Response | None = None
        """The whole response, once the stream has finished."""
        self.cached = False
        """Whether the answer is a cached one, replayed (known from the first event on)."""
        self.cache_similarity: float | None = None
        """A semantic cache hit: the similarity of the cached prompt that answered (known from the first event on)."""
        self.attempts: list[Attempt] = attempts if attempts is not None else []
        """The tries so far, filled in as they finish: while the answer streams, the failed candidates before
        the one answering (which is added when it ends)."""
        self.prompt: PromptOptimization | None = None
        """With ``max_prompt_tokens``: what shrinking the prompt did (known before the first event)."""

    @classmethod
    def feeding(cls, make: Callable[[ResponseStream], AsyncIterator[StreamEvent]]) -> ResponseStream:
        """A stream whose events come from ``make(stream)``: the producer gets the stream itself, to fill in
        :attr:`cached` and :attr:`attempts` as it goes."""
        out = cls()
        out._events = make(out)
        return out

    def __aiter__(self) -> ResponseStream:
        return self

    async def __anext__(self) -> StreamEvent:
        event = await anext(self._events)
        if event.type == "done":
            self.response = event.response
        return event

    async def text(self) -> str:
        """Consume the rest of the stream and return all of its text."""
        parts = [e.delta async for e in self]
        return "".join(parts)

    async def aclose(self) -> None:
        """Stop early and release the upstream connection."""
        closer = getattr(self._events, "aclose", None)
        if closer is not None:
            await closer()

    async def __aenter__(self) -> ResponseStream:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()


async def _no_events() -> AsyncIterator[StreamEvent]:
    return
    yield  # an async generator that yields nothing
