"""streamGenerateContent (``?alt=sse``): an upstream's fragments decoded into canonical :class:`Chunk`\\ s.

Each SSE ``data:`` payload is a complete ``GenerateContentResponse`` fragment. There is no end marker: the fragment
carrying ``finishReason`` is the last one, so a stream that closes before it was cut short.
"""

from __future__ import annotations

from typing import Any

from llm_manager._sse import SSEEvent
from llm_manager.codecs.base import Chunk, as_str, event_object
from llm_manager.codecs.gemini_generate.errors import decode_stream_error
from llm_manager.codecs.gemini_generate.response import (
    calls_of,
    candidate_text,
    finish_reason,
    first_candidate,
    logprobs_of,
    raise_if_blocked,
    thoughts_of,
    usage_of,
)
from llm_manager.errors import ContentFilterError, StreamInterruptedError
from llm_manager.types import ToolCallDelta

__all__ = ["StreamDecoder"]


class StreamDecoder:
    """What a stream has shown so far; turns each payload into at most one chunk (its text, its calls and, on
    the last fragment, the finish reason and usage)."""

    __slots__ = ("calls", "finished", "model", "text_seen", "usage")

    def __init__(self) -> None:
        self.calls = 0
        """Function calls seen so far (each arrives whole in one fragment)."""
        self.finished = False
        """A ``finishReason`` arrived: the answer is complete."""
        self.text_seen = False
        self.model: str | None = None
        self.usage: tuple[int | None, int | None, int, int] = (None, None, 0, 0)
        """From the latest ``usageMetadata``: each fragment repeats it, cumulatively, so the last one wins."""

    @property
    def done(self) -> bool:
        """No end marker: the body is read to its end (fragments after the finish reason are ignored), so the
        connection can be reused."""
        return False

    def close(self) -> None:
        """The body ended: without a ``finishReason`` the answer was cut short."""
        if not self.finished:
            raise StreamInterruptedError("stream ended before finishReason")

    def decode(self, event: SSEEvent) -> Chunk | None:
        """The chunk of one ``data:`` payload (none once finished or for an empty payload)."""
        data = event.data
        if self.finished or not data.strip():
            return None
        payload = event_object(data, "stream payload")
        if "error" in payload:
            raise decode_stream_error(payload["error"], data)
        self.model = as_str(payload.get("modelVersion")) or self.model
        if "usageMetadata" in payload:
            self.usage = usage_of(payload)
        candidate = first_candidate(payload)
        if candidate is None:
            raise_if_blocked(payload, data)
            return None
        text = candidate_text(candidate)
        reasoning, signature = thoughts_of(candidate)
        self.text_seen = self.text_seen or bool(text)
        pieces = None
        if calls := calls_of(candidate, self.calls):
            pieces = [
                ToolCallDelta(index=self.calls + i, id=c.id, name=c.name, arguments=c.arguments)
                for i, c in enumerate(calls)
            ]
            self.calls += len(calls)
        raw_finish = candidate.get("finishReason")
        chunk = Chunk(
            text=text,
            tool_calls=pieces,
            model=self.model,
            reasoning=reasoning,
            reasoning_signature=signature,
            logprobs=logprobs_of(candidate),
        )
        if raw_finish:
            return self._finish(raw_finish, data, chunk)
        if not text and not pieces and not reasoning and signature is None:
            return None
        return chunk

    def _finish(self, raw_finish: Any, data: str, chunk: Chunk) -> Chunk:
        finish = finish_reason(raw_finish)
        if finish == "stop" and self.calls:
            finish = "tool_calls"
        if finish == "content_filter" and not self.text_seen:
            raise ContentFilterError(f"answer blocked: {raw_finish}", status_code=200, body=data[:4000])
        self.finished = True
        chunk.finish_reason = finish
        chunk.prompt_tokens, chunk.completion_tokens, chunk.cached_tokens, chunk.reasoning_tokens = self.usage
        return chunk
