"""Gemini API wire payloads as the real service sends them, for scripting :class:`~tests.fakes.server.FakeUpstream`.

Shapes follow ``GenerateContentResponse`` in camelCase JSON: proto3 JSON leaves out zero / default fields, every
streamed fragment repeats ``usageMetadata`` cumulatively, only the last fragment has ``finishReason``, and SSE
events end in CRLF line breaks. Errors are Google RPC statuses with typed ``details``.
"""

from __future__ import annotations

import json
from typing import Any

__all__ = ["DEFAULT_MODEL", "blocked", "error_body", "response", "sse_event", "stream_events"]

DEFAULT_MODEL = "gemini-2.0-flash"
_RESPONSE_ID = "mBQ9aPSTJ5ujnvgPwL7u8Qs"


def _usage(
    prompt_tokens: int, completion_tokens: int, thoughts_tokens: int = 0, cached_tokens: int = 0
) -> dict[str, Any]:
    usage: dict[str, Any] = {
        "promptTokenCount": prompt_tokens,
        "totalTokenCount": prompt_tokens + completion_tokens + thoughts_tokens,
        "promptTokensDetails": [{"modality": "TEXT", "tokenCount": prompt_tokens}],
    }
    # proto3 JSON drops zero counts: an empty answer has no candidatesTokenCount at all.
    if completion_tokens:
        usage["candidatesTokenCount"] = completion_tokens
        usage["candidatesTokensDetails"] = [{"modality": "TEXT", "tokenCount": completion_tokens}]
    if thoughts_tokens:
        usage["thoughtsTokenCount"] = thoughts_tokens
    if cached_tokens:
        usage["cachedContentTokenCount"] = cached_tokens
        usage["cacheTokensDetails"] = [{"modality": "TEXT", "tokenCount": cached_tokens}]
    return usage


def _candidate(parts: list[dict[str, Any]], finish_reason: str | None) -> dict[str, Any]:
    candidate: dict[str, Any] = {"content": {"parts": parts, "role": "model"}}
    if finish_reason is not None:
        candidate["finishReason"] = finish_reason
    candidate["index"] = 0
    return candidate


def response(
    text: str,
    *,
    model: str = DEFAULT_MODEL,
    finish_reason: str | None = "STOP",
    prompt_tokens: int = 12,
    completion_tokens: int = 7,
    thoughts_tokens: int = 0,
    cached_tokens: int = 0,
    thought: str | None = None,
    response_id: str = _RESPONSE_ID,
) -> dict[str, Any]:
    """A whole ``generateContent`` answer. ``thought`` adds a thought-summary part before the answer."""
    parts: list[dict[str, Any]] = []
    if thought is not None:
        parts.append({"text": thought, "thought": True})
    if text:
        parts.append({"text": text})
    return {
        "candidates": [_candidate(parts, finish_reason)],
        "usageMetadata": _usage(prompt_tokens, completion_tokens, thoughts_tokens, cached_tokens),
        "modelVersion": model,
        "responseId": response_id,
    }


def blocked(reason: str = "SAFETY", *, model: str = DEFAULT_MODEL, prompt_tokens: int = 9) -> dict[str, Any]:
    """A refused prompt: no candidates, only ``promptFeedback.blockReason`` (HTTP 200)."""
    return {
        "promptFeedback": {
            "blockReason": reason,
            "safetyRatings": [
                {"category": "HARM_CATEGORY_SEXUALLY_EXPLICIT", "probability": "NEGLIGIBLE"},
                {"category": "HARM_CATEGORY_HATE_SPEECH", "probability": "HIGH", "blocked": True},
                {"category": "HARM_CATEGORY_HARASSMENT", "probability": "NEGLIGIBLE"},
                {"category": "HARM_CATEGORY_DANGEROUS_CONTENT", "probability": "NEGLIGIBLE"},
            ],
        },
        "usageMetadata": _usage(prompt_tokens, 0),
        "modelVersion": model,
        "responseId": _RESPONSE_ID,
    }


def sse_event(payload: Any) -> bytes:
    """One SSE event as Gemini frames it: a single ``data:`` line and CRLF line ends."""
    return b"data: " + json.dumps(payload).encode() + b"\r\n\r\n"


def stream_events(
    text_pieces: list[str],
    *,
    model: str = DEFAULT_MODEL,
    finish_reason: str | None = "STOP",
    prompt_tokens: int = 12,
    completion_tokens: int = 7,
    thoughts_tokens: int = 0,
    cached_tokens: int = 0,
) -> list[bytes]:
    """A ``streamGenerateContent?alt=sse`` body, one event per piece.

    Every fragment carries the usage so far (output counts grow); the last one has ``finishReason`` and the final
    counts. ``finish_reason=None`` gives a stream whose last fragment never says it is done.
    """
    events: list[bytes] = []
    count = len(text_pieces)
    for i, piece in enumerate(text_pieces, start=1):
        last = i == count
        so_far = completion_tokens if last else max(1, completion_tokens * i // count)
        fragment = {
            "candidates": [_candidate([{"text": piece}] if piece else [], finish_reason if last else None)],
            "usageMetadata": _usage(prompt_tokens, so_far, thoughts_tokens, cached_tokens),
            "modelVersion": model,
            "responseId": _RESPONSE_ID,
        }
        events.append(sse_event(fragment))
    return events


def error_body(
    code: int, status: str, message: str, retry_delay: str | None = None, *, reason: str | None = None
) -> dict[str, Any]:
    """A Google RPC error body.

    ``retry_delay`` (e.g. ``"12s"``) adds the ``QuotaFailure``, ``Help`` and ``RetryInfo`` details a quota 429
    carries; ``reason`` adds an ``ErrorInfo`` (e.g. ``API_KEY_INVALID`` on a bad key's 400).
    """
    details: list[dict[str, Any]] = []
    if reason is not None:
        details.append(
            {
                "@type": "type.googleapis.com/google.rpc.ErrorInfo",
                "reason": reason,
                "domain": "googleapis.com",
                "metadata": {"service": "generativelanguage.googleapis.com"},
            }
        )
        details.append(
            {"@type": "type.googleapis.com/google.rpc.LocalizedMessage", "locale": "en-US", "message": message}
        )
    if retry_delay is not None:
        details.append(
            {
                "@type": "type.googleapis.com/google.rpc.QuotaFailure",
                "violations": [
                    {
                        "quotaMetric": "generativelanguage.googleapis.com/generate_content_free_tier_requests",
                        "quotaId": "GenerateRequestsPerMinutePerProjectPerModel-FreeTier",
                        "quotaDimensions": {"location": "global", "model": DEFAULT_MODEL},
                        "quotaValue": "15",
                    }
                ],
            }
        )
        details.append(
            {
                "@type": "type.googleapis.com/google.rpc.Help",
                "links": [
                    {
                        "description": "Learn more about Gemini API quotas",
                        "url": "https://ai.google.dev/gemini-api/docs/rate-limits",
                    }
                ],
            }
        )
        details.append({"@type": "type.googleapis.com/google.rpc.RetryInfo", "retryDelay": retry_delay})
    error: dict[str, Any] = {"code": code, "message": message, "status": status}
    if details:
        error["details"] = details
    return {"error": error}
