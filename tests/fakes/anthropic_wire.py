"""Anthropic Messages API payloads, shaped exactly like the real ones, for scripting :class:`FakeUpstream`.

``tests/providers/test_anthropic_sdk_contract.py`` validates every builder here against the official SDK's types,
so a test passing against these payloads is passing against the real format.
"""

from __future__ import annotations

import itertools
import json
from typing import Any

__all__ = ["error_body", "error_event", "message", "sse", "stream_events"]

DEFAULT_MODEL = "claude-sonnet-4-5-20250929"
_ids = itertools.count(1)


def _next_id(prefix: str) -> str:
    return f"{prefix}_01{next(_ids):022d}"


def _usage(input_tokens: int, output_tokens: int, cache_read: int, cache_creation: int) -> dict[str, Any]:
    return {
        "input_tokens": input_tokens,
        "cache_creation_input_tokens": cache_creation,
        "cache_read_input_tokens": cache_read,
        "cache_creation": {"ephemeral_5m_input_tokens": cache_creation, "ephemeral_1h_input_tokens": 0},
        "output_tokens": output_tokens,
        "service_tier": "standard",
    }


def message(
    text: str,
    *,
    model: str = DEFAULT_MODEL,
    stop_reason: str | None = "end_turn",
    input_tokens: int = 12,
    output_tokens: int = 7,
    cache_read_input_tokens: int = 0,
    cache_creation_input_tokens: int = 0,
    id: str | None = None,
) -> dict[str, Any]:
    """A non-streamed ``POST /v1/messages`` answer with one text block (none when ``text`` is empty)."""
    return {
        "id": id or _next_id("msg"),
        "type": "message",
        "role": "assistant",
        "model": model,
        "content": [{"type": "text", "text": text}] if text else [],
        "stop_reason": stop_reason,
        "stop_sequence": None,
        "usage": _usage(input_tokens, output_tokens, cache_read_input_tokens, cache_creation_input_tokens),
    }


def sse(event: str, payload: dict[str, Any]) -> bytes:
    """One SSE event as the API writes it: an ``event:`` line naming the payload's ``type``, then ``data:``."""
    return f"event: {event}\ndata: {json.dumps(payload)}\n\n".encode()


def stream_events(
    text_pieces: list[str],
    *,
    model: str = DEFAULT_MODEL,
    stop_reason: str = "end_turn",
    input_tokens: int = 12,
    output_tokens: int | None = None,
    cache_read_input_tokens: int = 0,
    cache_creation_input_tokens: int = 0,
) -> list[bytes]:
    """A whole streamed answer, one ``bytes`` per event, in the order the API sends them.

    ``output_tokens`` defaults to one per piece; ``message_start`` reports 1, as the real API does.
    """
    start = message(
        "",
        model=model,
        stop_reason=None,
        input_tokens=input_tokens,
        output_tokens=1,
        cache_read_input_tokens=cache_read_input_tokens,
        cache_creation_input_tokens=cache_creation_input_tokens,
    )
    out = [
        sse("message_start", {"type": "message_start", "message": start}),
        sse("content_block_start", {"type": "content_block_start", "index": 0, "content_block": _empty_text()}),
        sse("ping", {"type": "ping"}),
    ]
    for piece in text_pieces:
        delta = {"type": "text_delta", "text": piece}
        out.append(sse("content_block_delta", {"type": "content_block_delta", "index": 0, "delta": delta}))
    return out + stream_end(0, stop_reason, len(text_pieces) if output_tokens is None else output_tokens)


def stream_end(index: int, stop_reason: str, output_tokens: int) -> list[bytes]:
    """The last events of a stream: block ``index`` stops, then the message with its reason and final usage."""
    return [
        sse("content_block_stop", {"type": "content_block_stop", "index": index}),
        sse(
            "message_delta",
            {
                "type": "message_delta",
                "delta": {"stop_reason": stop_reason, "stop_sequence": None},
                "usage": {"output_tokens": output_tokens},
            },
        ),
        sse("message_stop", {"type": "message_stop"}),
    ]


def _empty_text() -> dict[str, Any]:
    return {"type": "text", "text": ""}


def error_body(type: str, message: str) -> dict[str, Any]:
    """An error answer body, e.g. ``error_body("rate_limit_error", "Number of request tokens has exceeded ...")``."""
    return {"type": "error", "error": {"type": type, "message": message}, "request_id": _next_id("req")}


def error_event(type: str, message: str) -> bytes:
    """An ``error`` SSE event, sent after a 200 when the API fails mid-stream (e.g. ``overloaded_error``)."""
    return sse("error", {"type": "error", "error": {"type": type, "message": message}})
