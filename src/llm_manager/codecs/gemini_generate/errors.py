"""Google RPC errors (``{"error": {"code", "message", "status", "details"}}``) decoded into the right exception.

A 429 says how long to wait in a ``google.rpc.RetryInfo`` detail (``"retryDelay": "12s"``) rather than in a
``Retry-After`` header, and a bad key is a 400 whose ``google.rpc.ErrorInfo`` reason is ``API_KEY_INVALID``.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from llm_manager import _json
from llm_manager.codecs._errors import error_from_status
from llm_manager.codecs.base import as_str, text_of
from llm_manager.errors import (
    AuthenticationError,
    ContentFilterError,
    ContextTooLargeError,
    InvalidRequestError,
    ProviderError,
)

__all__ = ["decode_error", "decode_stream_error"]

_RETRY_INFO = "type.googleapis.com/google.rpc.RetryInfo"
_ERROR_INFO = "type.googleapis.com/google.rpc.ErrorInfo"
_DURATION = re.compile(r"^\s*(\d+(?:\.\d*)?|\.\d+)s\s*$")
_TOKEN_COUNT = re.compile(r"input token count\D{0,4}(\d+)", re.IGNORECASE)
_TOKEN_LIMIT = re.compile(r"tokens allowed\D{0,4}(\d+)", re.IGNORECASE)


def decode_error(status: int, headers: Mapping[str, str], body: bytes) -> ProviderError:
    """Turn a non-2xx Gemini answer into the most specific :class:`ProviderError`.

    Args:
        status: The HTTP status.
        headers: The response headers (``retry-after`` wins over a ``RetryInfo`` detail).
        body: The raw response body: a Google RPC status, possibly wrapped in a one-element list, or anything a
            proxy in between chose to send.

    Returns:
        The error to raise.
    """
    text = text_of(body)
    try:
        parsed = _json.loads(body) if body else None
    except _json.JSONDecodeError:
        parsed = None
    # The streaming endpoint has been seen to wrap its error in a JSON array.
    if isinstance(parsed, list) and parsed:
        parsed = parsed[0]
    error = parsed.get("error") if isinstance(parsed, dict) else None
    return _from_error_object(status, headers, text, error if isinstance(error, dict) else {})


def decode_stream_error(error: Any, data: str) -> ProviderError:
    """An error inside a 200 stream has no HTTP status of its own; its RPC code stands in for one."""
    code = error.get("code") if isinstance(error, dict) else None
    status = code if isinstance(code, int) and 400 <= code <= 599 else 500
    return _from_error_object(status, {}, data, error if isinstance(error, dict) else {})


def _from_error_object(status: int, headers: Mapping[str, str], text: str, error: Mapping[str, Any]) -> ProviderError:
    message = as_str(error.get("message")) or ""
    rpc_status = as_str(error.get("status")) or None
    details = error.get("details")
    details = [d for d in details if isinstance(d, dict)] if isinstance(details, list) else []
    reason = _error_reason(details)
    err = error_from_status(status, message, headers=headers, body=text, error_type=rpc_status, error_code=reason)
    if reason is not None and reason.startswith("API_KEY_") and not isinstance(err, AuthenticationError):
        # Google answers a wrong or expired key with 400 INVALID_ARGUMENT; only the ErrorInfo reason tells.
        err = _recast(err, AuthenticationError)
    elif isinstance(err, ContentFilterError) and _names_safety_settings(message):
        # A malformed ``safetySettings`` field is a bad request, not a filtered one; Gemini reports real blocks
        # in a 200 answer, never as an error status.
        err = _recast(err, InvalidRequestError)
    if isinstance(err, ContextTooLargeError):
        err.token_count = _first_int(_TOKEN_COUNT, message)
        err.max_tokens = _first_int(_TOKEN_LIMIT, message)
    if err.retry_after is None:
        err.retry_after = _retry_delay(details)
    return err


def _error_reason(details: list[dict[str, Any]]) -> str | None:
    for detail in details:
        if detail.get("@type") == _ERROR_INFO:
            return as_str(detail.get("reason")) or None
    return None


def _retry_delay(details: list[dict[str, Any]]) -> float | None:
    for detail in details:
        if detail.get("@type") == _RETRY_INFO:
            return _duration_seconds(detail.get("retryDelay"))
    return None


def _duration_seconds(value: Any) -> float | None:
    """Seconds in a protobuf JSON ``Duration`` (``"12s"``, ``"1.5s"``, ``"47.434392449s"``); ``None`` if invalid."""
    if not isinstance(value, str):
        return None
    match = _DURATION.match(value)
    return float(match.group(1)) if match else None


def _recast(err: ProviderError, cls: type[ProviderError]) -> ProviderError:
    return cls(
        err.message, status_code=err.status_code, body=err.body, retry_after=err.retry_after, headers=err.headers
    )


def _names_safety_settings(message: str) -> bool:
    low = message.lower()
    return "safety_setting" in low or "safetysetting" in low


def _first_int(pattern: re.Pattern[str], text: str) -> int | None:
    match = pattern.search(text)
    return int(match.group(1)) if match else None
