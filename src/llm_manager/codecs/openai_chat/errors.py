"""OpenAI-shaped errors, both ways: what an upstream answered (to the right exception), and what the gateway answers
(``{"error": {message, type, param, code}}``, the shape OpenAI clients map)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from llm_manager import _json
from llm_manager.codecs._errors import error_from_status, looks_like_context_error, looks_like_filter
from llm_manager.codecs.base import as_str, snippet, text_of
from llm_manager.errors import ModelUnavailableError, ProviderError

__all__ = ["decode_error", "decode_error_payload", "encode_error", "malformed"]


def decode_error(status: int, headers: Mapping[str, str], body: bytes) -> ProviderError:
    """Map a non-2xx answer to the most specific error.

    Understands ``{"error": {"message", "type", "code", "param"}}`` (OpenAI), ``{"error": "text"}`` (Ollama),
    ``{"detail": ...}`` (FastAPI-based servers), ``{"object": "error", "message": ...}`` (vLLM) and bodies that
    are not JSON at all (proxies' HTML pages).
    """
    try:
        payload = _json.loads(body)
    except _json.JSONDecodeError:
        payload = None
    if payload is None:
        cut = snippet(text_of(body))
        message, error_type, error_code = (f"HTTP {status}: {cut}" if cut else f"HTTP {status}"), None, None
    else:
        message, error_type, error_code = _error_fields(payload)
        message = message or f"HTTP {status}"
    return error_from_status(
        status, message, headers=headers, body=text_of(body), error_type=error_type, error_code=error_code
    )


def _error_fields(payload: Any) -> tuple[str, str | None, str | None]:
    """``(message, type, code)`` from any of the error shapes compatible servers use."""
    if isinstance(payload, list) and payload:
        payload = payload[0]  # some gateways wrap the error object in a list
    if isinstance(payload, str):
        return payload, None, None
    if not isinstance(payload, dict):
        return "", None, None
    inner = payload.get("error")
    if isinstance(inner, str):
        return inner, as_str(payload.get("type")), _code(payload.get("code"))
    if isinstance(inner, dict):
        payload = inner
    elif "detail" in payload and "message" not in payload:
        detail = payload["detail"]
        return (detail if isinstance(detail, str) else _json.dumps(detail).decode()), None, None
    message = payload.get("message")
    if message is not None and not isinstance(message, str):
        message = _json.dumps(message).decode()
    return message or "", as_str(payload.get("type")), _code(payload.get("code"))


def decode_error_payload(error: Any, *, headers: Mapping[str, str], body: bytes) -> ProviderError:
    """An error object that arrived with a 200 (inside a stream, or as a whole body): guess its status."""
    message, error_type, error_code = _error_fields(error)
    status = _guess_status(error, message, error_type, error_code)
    return error_from_status(
        status,
        message or "error reported by the provider",
        headers=headers,
        body=text_of(body),
        error_type=error_type,
        error_code=error_code,
    )


def _guess_status(error: Any, message: str, error_type: str | None, error_code: str | None) -> int:
    code = error.get("code") if isinstance(error, dict) else None
    if isinstance(code, int) and not isinstance(code, bool) and 400 <= code <= 599:
        return code  # OpenRouter and vLLM put the HTTP status they would have sent in ``code``
    hint = " ".join(x for x in (error_type, error_code, message) if x).lower()
    if "rate_limit" in hint or "rate limit" in hint:
        return 429
    if looks_like_context_error(hint) or looks_like_filter(hint):
        return 400  # error_from_status tells these apart by the same words
    if any(m in hint for m in ("server_error", "server error", "overloaded", "unavailable")):
        return 503
    return 500


def encode_error(
    message: str, *, type_: str = "invalid_request_error", code: str | None = None, param: str | None = None
) -> dict[str, dict[str, str | None]]:
    """The error body OpenAI clients parse (their SDKs pick the exception class from the status alone)."""
    return {"error": {"message": message, "type": type_, "param": param, "code": code}}


def malformed(message: str, body: bytes) -> ModelUnavailableError:
    """A 200 answer that is not a usable completion (a broken upstream or proxy): worth another candidate."""
    return ModelUnavailableError(f"{message}: {snippet(text_of(body))}", status_code=200, body=text_of(body))


def _code(value: Any) -> str | None:
    # ``code`` is a string at OpenAI, an int (the HTTP status) at vLLM and OpenRouter.
    if value is None or isinstance(value, bool):
        return None
    return str(value)
