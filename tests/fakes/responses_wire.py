"""Bodies and events in the shape OpenAI's Responses API sends them (``POST /v1/responses``): for the fake upstream
of ``api: responses`` deployments. Checked against the official SDK's types in tests/codecs."""

from __future__ import annotations

import itertools
import json
from typing import Any

_ids = itertools.count(1)
MODEL = "gpt-5-2025-08-07"


def _id(prefix: str) -> str:
    return f"{prefix}_{next(_ids):024x}"


def usage(input_tokens: int = 12, output_tokens: int = 5, cached: int = 0, reasoning: int = 0) -> dict[str, Any]:
    return {
        "input_tokens": input_tokens,
        "input_tokens_details": {"cached_tokens": cached, "cache_write_tokens": 0},
        "output_tokens": output_tokens,
        "output_tokens_details": {"reasoning_tokens": reasoning},
        "total_tokens": input_tokens + output_tokens,
    }


def message_item(text: str, status: str = "completed") -> dict[str, Any]:
    part = {"type": "output_text", "text": text, "annotations": [], "logprobs": []}
    return {"id": _id("msg"), "type": "message", "role": "assistant", "status": status, "content": [part]}


def call_item(name: str, arguments: str, call_id: str = "call_1") -> dict[str, Any]:
    return {
        "id": _id("fc"),
        "type": "function_call",
        "call_id": call_id,
        "name": name,
        "arguments": arguments,
        "status": "completed",
    }


def response(
    output: list[dict[str, Any]],
    *,
    status: str = "completed",
    incomplete: str | None = None,
    u: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """A whole ``response`` object."""
    return {
        "id": _id("resp"),
        "object": "response",
        "created_at": 1_700_000_000,
        "status": status,
        "error": None,
        "incomplete_details": {"reason": incomplete} if incomplete else None,
        "model": MODEL,
        "output": output,
        "parallel_tool_calls": True,
        "tool_choice": "auto",
        "tools": [],
        "usage": u if u is not None else usage(),
    }


def sse(payload: dict[str, Any]) -> bytes:
    return f"event: {payload['type']}\ndata: {json.dumps(payload)}\n\n".encode()


def stream_events(pieces: list[str], *, call: tuple[str, list[str]] | None = None, end: bool = True) -> list[bytes]:
    """A streamed answer: text ``pieces`` in one message item, then optionally a function call whose arguments come
    in pieces; ``end=False`` cuts the stream before ``response.completed``."""
    seq = itertools.count()
    out: list[bytes] = []

    def event(kind: str, **fields: Any) -> None:
        out.append(sse({"type": kind, "sequence_number": next(seq), **fields}))

    start = response([], status="in_progress", u={})
    start["usage"] = None
    event("response.created", response=start)
    event("response.in_progress", response=start)
    items: list[dict[str, Any]] = []
    if pieces:
        msg = message_item("".join(pieces))
        event("response.output_item.added", output_index=0, item={**msg, "content": [], "status": "in_progress"})
        for piece in pieces:
            event(
                "response.output_text.delta",
                item_id=msg["id"],
                output_index=0,
                content_index=0,
                delta=piece,
                logprobs=[],
            )
        event("response.output_item.done", output_index=0, item=msg)
        items.append(msg)
    if call is not None:
        name, args = call
        item = call_item(name, "".join(args))
        index = len(items)
        event("response.output_item.added", output_index=index, item={**item, "arguments": ""})
        for piece in args:
            event("response.function_call_arguments.delta", item_id=item["id"], output_index=index, delta=piece)
        event("response.output_item.done", output_index=index, item=item)
        items.append(item)
    if end:
        done = response(items)
        done["id"] = start["id"]
        event("response.completed", response=done)
    return out


def failed_events(code: str, message: str) -> list[bytes]:
    """A stream that fails after it started: an ``error`` event and ``response.failed``."""
    start = response([], status="in_progress")
    failed = {**start, "status": "failed", "error": {"code": code, "message": message}}
    return [
        sse({"type": "response.created", "sequence_number": 0, "response": start}),
        sse({"type": "error", "sequence_number": 1, "code": code, "message": message, "param": None}),
        sse({"type": "response.failed", "sequence_number": 2, "response": failed}),
    ]
