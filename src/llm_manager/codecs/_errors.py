"""Status + body → the right exception, shared by every HTTP adapter.

Each protocol extracts its own message / type / code from its error body, then calls :func:`error_from_status`,
so the status table lives in one place.
"""

from __future__ import annotations

import email.utils
import time
from collections.abc import Mapping

from llm_manager.errors import (
    AuthenticationError,
    ContentFilterError,
    ContextTooLargeError,
    InvalidRequestError,
    ModelUnavailableError,
    ProviderError,
    ProviderTimeoutError,
    RateLimitError,
)

__all__ = ["error_from_status", "looks_like_context_error", "looks_like_filter", "parse_retry_after"]

_CONTEXT_MARKERS = (
    "context_length_exceeded",
    "context length",
    "context window",
    "maximum context",
    "prompt is too long",
    "too many tokens",
    "exceeds the maximum number of tokens",
    "input token count",
    "reduce the length",
)
_FILTER_MARKERS = (
    "content_filter",
    "content_policy",
    "safety filter",
    "safety system",
    "blocked due to safety",
    "flagged for safety",
    "responsible ai",
    "content management policy",
)
# Some vendors (Gemini) answer a bad key with 400 INVALID_ARGUMENT; only the reason text says it is the key.
_AUTH_MARKERS = ("api_key_invalid", "api key not valid", "invalid_api_key", "invalid api key")


def parse_retry_after(headers: Mapping[str, str], *, now: float | None = None) -> float | None:
    """Seconds to wait from ``retry-after-ms`` (preferred, finer) or ``retry-after`` (seconds or HTTP date)."""
    ms = headers.get("retry-after-ms")
    if ms:
        try:
            value = float(ms) / 1000.0
            if value >= 0:
                return value
        except ValueError:
            pass
    raw = headers.get("retry-after")
    if not raw:
        return None
    raw = raw.strip()
    try:
        value = float(raw)
        return value if value >= 0 else None
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(raw)
    except (TypeError, ValueError, IndexError):
        return None
    if when is None:
        return None
    return max(0.0, when.timestamp() - (time.time() if now is None else now))


def looks_like_context_error(text: str) -> bool:
    """Whether an error message says the prompt is too long (vendors disagree on codes, agree on words)."""
    low = text.lower()
    return any(m in low for m in _CONTEXT_MARKERS)


def error_from_status(
    status: int,
    message: str,
    *,
    headers: Mapping[str, str],
    body: str,
    error_type: str | None = None,
    error_code: str | None = None,
) -> ProviderError:
    """Pick the most specific error class for an HTTP error answer."""
    retry_after = parse_retry_after(headers)
    kept = _keep(headers)
    hint = " ".join(x for x in (error_type, error_code, message) if x)

    def make(cls: type[ProviderError], fallback: str) -> ProviderError:
        return cls(message or fallback, status_code=status, body=body[:4000], retry_after=retry_after, headers=kept)

    if status == 429:
        # Some vendors answer 429 for "quota exhausted" too; retrying that is still the caller-friendly default.
        return make(RateLimitError, "rate limited")
    if status in (401, 402, 403):
        if status == 403 and looks_like_filter(hint):
            return make(ContentFilterError, "blocked by a content filter")
        return make(AuthenticationError, "authentication failed")
    if status == 400 and any(m in hint.lower() for m in _AUTH_MARKERS):
        return make(AuthenticationError, "authentication failed")
    if looks_like_context_error(hint):
        return make(ContextTooLargeError, "context too large")
    if status in (400, 422) and looks_like_filter(hint):
        return make(ContentFilterError, "blocked by a content filter")
    if status in (408, 504):
        return make(ProviderTimeoutError, f"upstream timeout ({status})")
    if status == 409 or status >= 500:
        return make(ModelUnavailableError, f"upstream error ({status})")
    return make(InvalidRequestError, f"request rejected ({status})")


def looks_like_filter(text: str) -> bool:
    """Whether an error message blames a content / safety filter."""
    low = text.lower()
    return any(m in low for m in _FILTER_MARKERS)


_KEPT_HEADERS = ("retry-after", "retry-after-ms", "x-request-id", "request-id", "x-should-retry")


def _keep(headers: Mapping[str, str]) -> dict[str, str]:
    # Keep the few headers a caller can act on; never keys or cookies.
    return {k: v for k in _KEPT_HEADERS if (v := headers.get(k)) is not None}
