"""Render errors the way OpenAI clients expect them (status, ``{"error": {...}}`` body, retry headers).

The official SDKs pick their exception class from the status code alone, read ``retry-after-ms`` /
``retry-after`` to pace a retry, and obey ``x-should-retry`` before anything else. So every error raised after
the gateway spent its own retries and fallbacks says ``x-should-retry: false``: a client retrying at once would
only repeat work the gateway already did.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from datetime import UTC, datetime

from llm_manager._redact import redact
from llm_manager.errors import (
    AllCandidatesFailedError,
    AuthenticationError,
    BudgetExceededError,
    CircuitOpenError,
    ConfigError,
    ContentFilterError,
    ContextTooLargeError,
    ExtractionError,
    InvalidRequestError,
    LLMManagerError,
    ModelUnavailableError,
    ProviderTimeoutError,
    RateLimitError,
    StateUnavailableError,
)

__all__ = ["DEFAULT_RETRY_AFTER_S", "ErrorReply", "gateway_error", "render_error"]

DEFAULT_RETRY_AFTER_S = 1.0
"""Said on a 429 / 503 when no upstream or breaker gave a wait: clients that pace themselves (and people reading
the headers) get a floor rather than nothing, and every 429 / 503 the gateway sends carries ``retry-after``."""


@dataclass(slots=True)
class ErrorReply:
    """An error as the HTTP layer sends it."""

    status: int
    body: dict[str, dict[str, str | None]]
    headers: dict[str, str] = field(default_factory=dict)


def gateway_error(
    status: int,
    message: str,
    *,
    type_: str = "invalid_request_error",
    code: str | None = None,
    param: str | None = None,
    headers: dict[str, str] | None = None,
) -> ErrorReply:
    """An error in OpenAI's shape. Every error body the gateway sends is built here, so its message is masked here:
    an upstream's text (a 401 repeating the key it was sent) reaches no client with a secret in it."""
    body = {"error": {"message": redact(message), "type": type_, "param": param, "code": code}}
    return ErrorReply(status, body, dict(headers or {}))


def render_error(exc: LLMManagerError, request_id: str) -> ErrorReply:
    """Map one of our exceptions to the reply an OpenAI client understands.

    ``AllCandidatesFailedError`` is rendered as its attempts' common cause when they share one (every candidate
    rate limited is a 429, not a 503), else as 503: the gateway as a whole is unavailable right now.
    """
    reply = _single(exc)
    if reply is None and isinstance(exc, AllCandidatesFailedError):
        replies = [_single(e) for e in exc.exceptions if isinstance(e, LLMManagerError)]
        kinds = {(r.status, r.body["error"]["code"]) for r in replies if r is not None}
        if replies and len(kinds) == 1 and all(r is not None for r in replies):
            reply = _merge([r for r in replies if r is not None], exc.message)
    if reply is None:
        reply = gateway_error(
            503, exc.message, type_="api_error", code=exc.code, headers=_retry_headers(_retry_after(exc))
        )
    # Not for a spent budget without a reset: no wait would help there.
    wait_helps = reply.body["error"]["type"] != "insufficient_quota"
    if reply.status in (429, 503) and "retry-after" not in reply.headers and wait_helps:
        reply.headers.update(_retry_headers(DEFAULT_RETRY_AFTER_S))
    reply.headers["x-request-id"] = exc.request_id or request_id
    # Every LLMManagerError surfaces after the gateway's own retries and fallbacks (or when none could help), but
    # one: without its shared state this replica tried nothing, and another replica (or this one shortly) can.
    reply.headers["x-should-retry"] = "true" if isinstance(exc, StateUnavailableError) else "false"
    # As on a success: how many provider calls were spent (0 when the request was refused before any).
    reply.headers["x-llm-attempts"] = str(sum(1 for a in exc.attempts if not a.skipped))
    return reply


def _single(exc: LLMManagerError) -> ErrorReply | None:
    msg = exc.message
    if isinstance(exc, ContextTooLargeError):
        return gateway_error(400, msg, code="context_length_exceeded", param="messages")
    if isinstance(exc, ContentFilterError):
        return gateway_error(400, msg, code="content_filter")
    if isinstance(exc, ConfigError | InvalidRequestError):
        return gateway_error(400, msg, code=exc.code)
    if isinstance(exc, AuthenticationError):
        # The client's key was fine; the gateway's key for an upstream was not: a server-side fault.
        return gateway_error(502, msg, type_="api_error", code="upstream_authentication_failed")
    if isinstance(exc, RateLimitError):
        return gateway_error(
            429, msg, type_="rate_limit_error", code="rate_limit_exceeded", headers=_retry_headers(exc.retry_after)
        )
    if isinstance(exc, BudgetExceededError):
        # 429 with OpenAI's quota type, not 402: SDKs map 429 to RateLimitError (what quota exhaustion is to an
        # OpenAI client) while 402 has no class of its own, and retry-after tells when the period resets.
        return gateway_error(
            429, msg, type_="insufficient_quota", code="budget_exceeded", headers=_retry_headers(_until(exc.resets_at))
        )
    if isinstance(exc, ProviderTimeoutError):
        return gateway_error(504, msg, type_="api_error", code="timeout")
    if isinstance(exc, ExtractionError):
        return gateway_error(422, msg, code="extraction_failed")
    if isinstance(exc, StateUnavailableError):
        return gateway_error(503, msg, type_="api_error", code=exc.code, headers=_retry_headers(exc.retry_after))
    if isinstance(exc, CircuitOpenError | ModelUnavailableError):
        return gateway_error(503, msg, type_="api_error", code=exc.code, headers=_retry_headers(_retry_after(exc)))
    return None


def _merge(replies: list[ErrorReply], message: str) -> ErrorReply:
    """One reply for many alike: the overall message, and the soonest retry any attempt was offered."""
    first = replies[0]
    waits = [float(r.headers["retry-after-ms"]) / 1000 for r in replies if "retry-after-ms" in r.headers]
    err = first.body["error"]
    return gateway_error(
        first.status,
        message,
        type_=err["type"] or "api_error",
        code=err["code"],
        param=err["param"],
        headers=_retry_headers(min(waits) if waits else None),
    )


def _retry_after(exc: LLMManagerError) -> float | None:
    wait = getattr(exc, "retry_after", None)
    return float(wait) if isinstance(wait, int | float) else None


def _until(iso: str | None) -> float | None:
    if not iso:
        return None
    try:
        when = datetime.fromisoformat(iso)
    except ValueError:
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return max(0.0, (when - datetime.now(UTC)).total_seconds())


def _retry_headers(seconds: float | None) -> dict[str, str]:
    if seconds is None:
        return {}
    # retry-after only takes whole seconds: round up so a client never comes back too early.
    return {"retry-after": str(math.ceil(seconds)), "retry-after-ms": str(math.ceil(seconds * 1000))}
