"""Chat Completions streams: an upstream's ``chat.completion.chunk`` events decoded into canonical :class:`Chunk`\\ s.

Events are read as plain JSON with a few dictionary lookups, not validated against a model: this runs for every
chunk of every stream, and a compatible server's odd but usable chunk must not break a stream.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from llm_manager._sse import SSEEvent
from llm_manager.codecs.base import Chunk, as_str, event_object
from llm_manager.codecs.openai_chat.errors import decode_error_payload
from llm_manager.codecs.openai_chat.response import finish_reason, first_choice, logprobs_of, reasoning_of, usage_of
from llm_manager.codecs.openai_chat.tools import deltas_from_wire
from llm_manager.errors import StreamInterruptedError

__all__ = ["StreamDecoder"]


class StreamDecoder:
    """What one stream has shown so far; turns each SSE event into at most one chunk."""

    __slots__ = ("done", "finished", "headers")

    def __init__(self, headers: Mapping[str, str]) -> None:
        self.headers = headers
        self.done = False
        """``[DONE]`` arrived: stop reading."""
        self.finished = False
        """A choice carried a finish reason (even one we do not know): the answer is whole."""

    def decode(self, event: SSEEvent) -> Chunk | None:
        """The chunk of one event (``None`` for role-only deltas, keep-alives, ``[DONE]``)."""
        data = event.data.strip()
        if not data:
            return None
        if data == "[DONE]":
            self.done = True
            return None
        payload = event_object(data, "chunk")
        if payload.get("error") or event.event == "error":
            raise decode_error_payload(payload.get("error") or payload, headers=self.headers, body=data.encode())
        return self._chunk(payload)

    def close(self) -> None:
        """The body ended: a stream without a finish reason was cut short. (A finish reason without ``[DONE]`` is a
        complete answer: several compatible servers never send the marker.)"""
        if not self.finished:
            raise StreamInterruptedError("stream ended before completion", status_code=200)

    def _chunk(self, payload: dict[str, Any]) -> Chunk | None:
        only = _text_only(payload)
        if only:
            return Chunk(
                text=only,
                model=as_str(payload.get("model")),
                system_fingerprint=as_str(payload.get("system_fingerprint")),
            )
        text, reasoning, finish, calls, logprobs = "", "", None, None, None
        choice = first_choice(payload.get("choices"))
        if choice is not None:
            delta = choice.get("delta")
            if isinstance(delta, dict):
                text = as_str(delta.get("content")) or ""
                if "reasoning_content" in delta or "reasoning" in delta:
                    reasoning = reasoning_of(delta)
                calls = deltas_from_wire(delta.get("tool_calls"))
            raw_finish = choice.get("finish_reason")
            self.finished = self.finished or raw_finish is not None
            finish = finish_reason(raw_finish)
            if choice.get("logprobs") is not None:
                logprobs = logprobs_of(choice["logprobs"])
        prompt, completion, cached, reasoning_tokens = usage_of(payload.get("usage"))
        if not text and not reasoning and not calls and finish is None and prompt is None and completion is None:
            return None  # role-only deltas, keep-alives, Azure's prompt-filter preamble
        return Chunk(
            text=text,
            finish_reason=finish,
            prompt_tokens=prompt,
            completion_tokens=completion,
            cached_tokens=cached,
            model=as_str(payload.get("model")),
            tool_calls=calls,
            reasoning=reasoning,
            reasoning_tokens=reasoning_tokens,
            logprobs=logprobs,
            system_fingerprint=as_str(payload.get("system_fingerprint")),
        )


def _text_only(payload: dict[str, Any]) -> str | None:
    """The text of a chunk that carries only text (one choice, no finish reason, usage, tool call, reasoning or log
    probabilities): nearly every chunk of a stream, read here with a few lookups instead of the general path."""
    choices = payload.get("choices")
    if type(choices) is not list or len(choices) != 1 or payload.get("usage") is not None:
        return None
    choice = choices[0]
    if type(choice) is not dict or choice.get("finish_reason") is not None or choice.get("logprobs") is not None:
        return None
    delta = choice.get("delta")
    if type(delta) is not dict or choice.get("index", 0) != 0:
        return None
    if delta.get("tool_calls") or "reasoning_content" in delta or "reasoning" in delta:
        return None
    text = delta.get("content")
    return text if type(text) is str else None
