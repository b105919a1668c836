"""Builders for the OpenAI Chat Completions wire format, to script :class:`tests.fakes.server.FakeUpstream`.

Payloads copy what api.openai.com sends, field for field (``tests/providers/test_openai_sdk_contract.py`` checks
them against the official SDK's types and client), so a test that passes here is talking to the real shape.
"""

from __future__ import annotations

import itertools
import json
from typing import Any

__all__ = [
    "DONE",
    "chunk",
    "completion",
    "error_body",
    "models_list",
    "sse",
    "stream_events",
    "usage",
]

CREATED = 1_727_000_000
FINGERPRINT = "fp_f85bea6784"
DONE = b"data: [DONE]\n\n"
_ids = itertools.count(1)


def _new_id() -> str:
    return f"chatcmpl-AKtest{next(_ids):020d}"


def usage(prompt_tokens: int = 12, completion_tokens: int = 5, cached_tokens: int = 0) -> dict[str, Any]:
    """A ``usage`` object with the detail blocks OpenAI includes."""
    return {
        "prompt_tokens": prompt_tokens,
        "completion_tokens": completion_tokens,
        "total_tokens": prompt_tokens + completion_tokens,
        "prompt_tokens_details": {"cached_tokens": cached_tokens, "audio_tokens": 0},
        "completion_tokens_details": {
            "reasoning_tokens": 0,
            "audio_tokens": 0,
            "accepted_prediction_tokens": 0,
            "rejected_prediction_tokens": 0,
        },
    }


_usage = usage  # ``stream_events`` and ``chunk`` have a parameter of the same name


def completion(
    text: str | None,
    *,
    model: str = "gpt-4o-mini-2024-07-18",
    finish_reason: str = "stop",
    prompt_tokens: int = 12,
    completion_tokens: int = 5,
    cached_tokens: int = 0,
    id: str | None = None,
    refusal: str | None = None,
    logprobs: list[tuple[str, float]] | None = None,
) -> dict[str, Any]:
    """A whole ``chat.completion`` object (the body of a non-streaming 200); ``logprobs``: ``(token, logprob)``
    of each answered token, as ``choices[0].logprobs.content``."""
    return {
        "id": id or _new_id(),
        "object": "chat.completion",
        "created": CREATED,
        "model": model,
        "choices": [
            {
                "index": 0,
                "message": {"role": "assistant", "content": text, "refusal": refusal, "annotations": []},
                "logprobs": logprobs_content(logprobs) if logprobs is not None else None,
                "finish_reason": finish_reason,
            }
        ],
        "usage": usage(prompt_tokens, completion_tokens, cached_tokens),
        "service_tier": "default",
        "system_fingerprint": FINGERPRINT,
    }


def chunk(
    *,
    id: str,
    model: str,
    delta: dict[str, Any] | None = None,
    finish_reason: str | None = None,
    usage: dict[str, Any] | None = None,
    with_usage_field: bool = True,
    choices: bool = True,
    logprobs: list[tuple[str, float]] | None = None,
) -> dict[str, Any]:
    """One ``chat.completion.chunk``. ``choices=False`` gives the usage-only final chunk (empty ``choices``)."""
    out: dict[str, Any] = {
        "id": id,
        "object": "chat.completion.chunk",
        "created": CREATED,
        "model": model,
        "service_tier": "default",
        "system_fingerprint": FINGERPRINT,
        "choices": (
            [
                {
                    "index": 0,
                    "delta": delta if delta is not None else {},
                    "logprobs": logprobs_content(logprobs) if logprobs is not None else None,
                    "finish_reason": finish_reason,
                }
            ]
            if choices
            else []
        ),
    }
    if with_usage_field:
        # With stream_options.include_usage every chunk carries "usage": null until the last one.
        out["usage"] = usage
    return out


def logprobs_content(tokens: list[tuple[str, float]]) -> dict[str, Any]:
    """A choice's ``logprobs`` object as OpenAI sends it: each token with its bytes and no alternatives."""
    return {
        "content": [{"token": t, "logprob": lp, "bytes": list(t.encode()), "top_logprobs": []} for t, lp in tokens],
        "refusal": None,
    }


def sse(obj: Any) -> bytes:
    """One ``data:`` event, JSON as compact as OpenAI writes it."""
    return b"data: " + json.dumps(obj, separators=(",", ":"), ensure_ascii=False).encode() + b"\n\n"


def stream_events(
    text_pieces: list[str],
    *,
    model: str = "gpt-4o-mini-2024-07-18",
    finish_reason: str | None = "stop",
    usage: bool = True,
    done: bool = True,
    prompt_tokens: int = 12,
    completion_tokens: int | None = None,
    cached_tokens: int = 0,
    logprobs: list[float] | None = None,
) -> list[bytes]:
    """The SSE events of a streamed answer, one per list item (``logprobs``: one per piece, in its chunk).

    Order as OpenAI sends it: a role chunk (empty content), one chunk per piece, the finish chunk (empty delta),
    the usage chunk (empty ``choices``) when ``usage``, then ``data: [DONE]`` when ``done``. ``finish_reason=None``
    leaves out the finish chunk (a truncated stream).
    """
    cid = _new_id()
    tokens = completion_tokens if completion_tokens is not None else len(text_pieces)
    events = [sse(chunk(id=cid, model=model, delta={"role": "assistant", "content": "", "refusal": None}))]
    events += [
        sse(chunk(id=cid, model=model, delta={"content": piece}, logprobs=[(piece, logprobs[i])] if logprobs else None))
        for i, piece in enumerate(text_pieces)
    ]
    if finish_reason is not None:
        events.append(sse(chunk(id=cid, model=model, finish_reason=finish_reason)))
    if usage:
        u = _usage(prompt_tokens, tokens, cached_tokens)
        events.append(sse(chunk(id=cid, model=model, choices=False, usage=u)))
    if done:
        events.append(DONE)
    return events


def error_body(message: str, type: str = "invalid_request_error", code: str | None = None) -> dict[str, Any]:
    """An OpenAI error body: ``{"error": {"message", "type", "param", "code"}}``."""
    return {"error": {"message": message, "type": type, "param": None, "code": code}}


def models_list(*ids: str) -> dict[str, Any]:
    """The body of ``GET /models``."""
    return {
        "object": "list",
        "data": [{"id": i, "object": "model", "created": CREATED, "owned_by": "system"} for i in ids],
    }
