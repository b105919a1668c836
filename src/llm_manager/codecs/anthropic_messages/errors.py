"""Anthropic-shaped errors, both ways: an upstream's ``{"type": "error", "error": {type, message}}`` to the right
exception, and the gateway's answers in the same shape (so the official SDK raises its own classes)."""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from llm_manager import _json
from llm_manager.codecs._errors import error_from_status
from llm_manager.codecs.base import as_str, text_of
from llm_manager.errors import ContextTooLargeError, ProviderError

__all__ = ["ERROR_TYPES", "decode_error", "decode_error_payload", "encode_error", "load_object"]

# An ``error`` event arrives after the 200 headers, so it has no status of its own: borrow the one the API
# uses for the same error type when it can answer before streaming, so the mapping stays in error_from_status.
_STATUS_OF_TYPE: dict[str, int] = {
    "invalid_request_error": 400,
    "authentication_error": 401,
    "billing_error": 402,
    "permission_error": 403,
    "not_found_error": 404,
    "request_too_large": 413,
    "rate_limit_error": 429,
    "api_error": 500,
    "timeout_error": 504,
    "overloaded_error": 529,
}

ERROR_TYPES: dict[int, str] = {
    400: "invalid_request_error",
    401: "authentication_error",
    402: "billing_error",
    403: "permission_error",
    404: "not_found_error",
    413: "request_too_large",
    429: "rate_limit_error",
    500: "api_error",
    502: "api_error",
    503: "overloaded_error",
    504: "timeout_error",
    529: "overloaded_error",
}
"""Anthropic's error type for each status the gateway answers with."""

# "prompt is too long: 210000 tokens > 200000 maximum": worth keeping as data for re-routing.
_TOO_LONG = re.compile(r"(\d+)\s*tokens\s*>\s*(\d+)\s*maximum")


def decode_error(status: int, headers: Mapping[str, str], body: bytes) -> ProviderError:
    """The mapped error for a non-2xx answer; tolerates bodies that are not Anthropic's JSON (proxies, HTML)."""
    data = load_object(body)
    error = data.get("error") if data is not None else None
    if isinstance(error, dict):
        message = as_str(error.get("message")) or ""
        error_type = as_str(error.get("type"))
    else:
        message, error_type = text_of(body).strip()[:500], None
    return _with_token_counts(
        error_from_status(status, message, headers=headers, body=text_of(body), error_type=error_type)
    )


def decode_error_payload(data: Mapping[str, Any], *, headers: Mapping[str, str], body: bytes) -> ProviderError:
    """An error object without an HTTP status (stream event or 200 body): take the status its type implies."""
    error = data.get("error")
    error_type = as_str(error.get("type")) if isinstance(error, dict) else None
    message = (as_str(error.get("message")) if isinstance(error, dict) else None) or "upstream error"
    status = _STATUS_OF_TYPE.get(error_type or "", 500 if error_type is None else 400)
    return _with_token_counts(
        error_from_status(status, message, headers=headers, body=text_of(body), error_type=error_type)
    )


def _with_token_counts(err: ProviderError) -> ProviderError:
    if isinstance(err, ContextTooLargeError) and (m := _TOO_LONG.search(err.message)):
        err.token_count, err.max_tokens = int(m.group(1)), int(m.group(2))
    return err


def encode_error(status: int, message: str | None, request_id: str) -> dict[str, Any]:
    """The gateway's error in Anthropic's shape; the type follows the status, which is kept as mapped."""
    kind = ERROR_TYPES.get(status, "api_error" if status >= 500 else "invalid_request_error")
    return {"type": "error", "error": {"type": kind, "message": message}, "request_id": request_id}


def load_object(body: bytes) -> dict[str, Any] | None:
    """``body`` as a JSON object, or ``None`` when it is not one."""
    try:
        data = _json.loads(body) if body else None
    except _json.JSONDecodeError:
        return None
    return data if isinstance(data, dict) else None
