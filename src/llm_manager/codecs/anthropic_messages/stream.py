"""Messages streams: an upstream's SSE events decoded into canonical :class:`Chunk`\\ s.

A stream is SSE with named events: ``message_start`` (input usage), ``content_block_start``, ``content_block_delta``
(text, tool input JSON, thinking), ``message_delta`` (stop reason, cumulative output usage), ``message_stop`` (the end
marker), ``ping``, and an ``error`` event that may arrive after a 200 (typically ``overloaded_error``). Events are read
as plain JSON with dictionary lookups (no model validation per event).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from llm_manager._sse import SSEEvent
from llm_manager.codecs.anthropic_messages.errors import decode_error_payload
from llm_manager.codecs.anthropic_messages.response import FINISH, Usage
from llm_manager.codecs.base import Chunk, as_str, event_object
from llm_manager.errors import StreamInterruptedError
from llm_manager.types import ToolCallDelta

__all__ = ["StreamDecoder"]


@dataclass(slots=True)
class StreamDecoder:
    """What a stream has told us so far; turns each event into at most one chunk."""

    headers: Mapping[str, str]
    forced_tool: str | None = None
    """Structured output was requested through this (forced) tool: its input JSON is the answer."""
    usage: Usage = field(default_factory=Usage)
    model: str | None = None
    stop_reason: str | None = None
    done: bool = False
    """``message_stop`` arrived."""
    tool_input: bool = False
    """The answer streamed as the forced tool's input: it ends with ``tool_use``, which means done here."""
    blocks: dict[int, int | None] = field(default_factory=dict)
    """Tool-use content blocks by block index: the call's ordinal, or ``None`` for the forced tool."""
    held: list[str] = field(default_factory=list)
    """With a forced tool: text blocks before it, held back. If the tool block comes, its input is the whole answer
    (as in a whole answer, where the text is dropped); if it never does, the text is the answer after all."""

    @property
    def finished(self) -> bool:
        """Only ``message_stop`` completes a message."""
        return self.done

    def close(self) -> None:
        """The body ended before ``message_stop``: the answer was cut short."""
        if not self.done:
            raise StreamInterruptedError("stream ended before message_stop")

    def decode(self, event: SSEEvent) -> Chunk | None:
        """Apply one SSE event; return a chunk to yield, if any. Raises on ``error`` and bad data."""
        payload = event_object(event.data, "stream event")
        kind = payload.get("type") or event.event
        if kind == "content_block_delta":
            return self._on_delta(payload)
        if kind == "content_block_start":
            return self._on_block_start(payload)
        if kind == "message_start":
            message = payload.get("message")
            if isinstance(message, dict):
                self.model = as_str(message.get("model"))
                self.usage.update(message.get("usage"))
        elif kind == "message_delta":
            delta = payload.get("delta")
            if isinstance(delta, dict) and isinstance(reason := delta.get("stop_reason"), str):
                self.stop_reason = reason
            self.usage.update(payload.get("usage"))
        elif kind == "message_stop":
            self.done = True
            return self._final_chunk()
        elif kind == "error":
            raise decode_error_payload(payload, headers=self.headers, body=event.data.encode())
        # ping, content_block_stop and event types added later carry nothing we need.
        return None

    def _final_chunk(self) -> Chunk:
        stop = "end_turn" if self.tool_input and self.stop_reason == "tool_use" else self.stop_reason
        reason = FINISH.get(stop) if stop else None
        return Chunk(
            text="" if self.tool_input else "".join(self.held),
            finish_reason=reason,
            prompt_tokens=self.usage.prompt_tokens,
            completion_tokens=self.usage.output,
            cached_tokens=self.usage.cache_read,
            cache_write_tokens=self.usage.cache_creation,
            model=self.model,
        )

    def _on_delta(self, payload: dict[str, Any]) -> Chunk | None:
        delta = payload.get("delta")
        if not isinstance(delta, dict):
            return None
        # Text reaches the caller, and so does tool-input JSON (a call's arguments, or structured output when the
        # schema tool was forced); thinking comes as reasoning, its signature with it.
        kind = delta.get("type")
        if kind == "text_delta" and (text := delta.get("text")):
            if self.forced_tool is not None and not self.tool_input:
                self.held.append(str(text))
                return None
            return Chunk(text=str(text), model=self.model)
        if kind == "thinking_delta" and (thought := delta.get("thinking")):
            return Chunk(reasoning=str(thought), model=self.model)
        if kind == "signature_delta" and (signature := delta.get("signature")):
            return Chunk(reasoning_signature=str(signature), model=self.model)
        if kind == "input_json_delta" and (part := delta.get("partial_json")):
            index = payload.get("index")
            ordinal = self.blocks.get(index) if isinstance(index, int) else None
            if ordinal is not None:
                return Chunk(tool_calls=[ToolCallDelta(index=ordinal, arguments=str(part))], model=self.model)
            if self.forced_tool:
                self.tool_input = True
                return Chunk(text=str(part), model=self.model)
        return None

    def _on_block_start(self, payload: dict[str, Any]) -> Chunk | None:
        block, index = payload.get("content_block"), payload.get("index")
        if not isinstance(block, dict) or block.get("type") != "tool_use" or not isinstance(index, int):
            return None
        name = as_str(block.get("name")) or ""
        if self.forced_tool is not None and name == self.forced_tool:
            self.blocks[index] = None
            self.tool_input = True  # from here, the tool's input is the answer; held text is dropped
            return None
        ordinal = sum(1 for v in self.blocks.values() if v is not None)
        self.blocks[index] = ordinal
        call_id = as_str(block.get("id")) or f"toolu_{ordinal}"
        return Chunk(tool_calls=[ToolCallDelta(index=ordinal, id=call_id, name=name)], model=self.model)
