"""Structured request logs, JSON and text formatters, and the API-key redaction every message goes through.

:func:`log_request` emits one record per finished request on a standard :mod:`logging` logger, with the facts in
``extra`` fields (request_id, deployment, model, provider, task, status, latency_ms, tokens, cost, retries, cached)
so a JSON handler turns each into one queryable line. Prompt and completion text are added only when the caller
turned ``log_prompts`` on.

Both formatters pass the final text through :func:`redact`, so a key that leaks into any message (an error body
quoting a header, a URL with ``?key=`` or a password) is masked whichever module logged it: every secret of a live
configuration by value, whatever its format, and anything shaped like a key (see :mod:`llm_manager._redact`).
"""

from __future__ import annotations

import logging
import sys
from datetime import UTC, datetime
from typing import IO, TYPE_CHECKING, Any

import orjson

from llm_manager._redact import redact

if TYPE_CHECKING:
    from llm_manager.types import Message, Request, Response

__all__ = ["JsonFormatter", "TextFormatter", "error_code", "log_request", "make_handler", "redact"]


def error_code(error: BaseException | None) -> str:
    """A low-cardinality name for an error: our stable ``code``, else the exception's class name."""
    code = getattr(error, "code", None)
    if isinstance(code, str):
        return code
    return type(error).__name__ if error is not None else "unknown"


# Attributes every LogRecord has: anything else on a record came from ``extra``.
_STANDARD = frozenset(vars(logging.LogRecord("", 0, "", 0, "", None, None))) | {"message", "asctime"}


class JsonFormatter(logging.Formatter):
    """One JSON object per line: ``ts`` (UTC, ISO 8601), ``level``, ``logger``, ``message``, then every ``extra``
    field, then ``exc_info`` when an exception is attached. Strings are redacted; values JSON cannot hold (a
    ``Decimal``) become strings."""

    def format(self, record: logging.LogRecord) -> str:
        """Render ``record`` as one line of JSON."""
        out: dict[str, Any] = {
            "ts": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "message": redact(record.getMessage()),
        }
        for key, value in record.__dict__.items():
            if key not in _STANDARD and not key.startswith("_"):
                out[key] = _redact_value(value)
        if record.exc_info:
            out["exc_info"] = redact(self.formatException(record.exc_info))
        if record.stack_info:
            out["stack_info"] = redact(self.formatStack(record.stack_info))
        return orjson.dumps(out, default=str).decode()


def _redact_value(value: Any) -> Any:
    """Strings masked, also inside the dicts and lists an ``extra`` field may hold."""
    if isinstance(value, str):
        return redact(value)
    if isinstance(value, dict):
        return {k: _redact_value(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_redact_value(v) for v in value]
    return value


class TextFormatter(logging.Formatter):
    """A plain :class:`logging.Formatter` whose output is redacted."""

    def __init__(self, fmt: str = "%(asctime)s %(levelname)s %(name)s: %(message)s") -> None:
        super().__init__(fmt)

    def format(self, record: logging.LogRecord) -> str:
        """Format as usual, then mask keys."""
        return redact(super().format(record))


def make_handler(log_format: str = "text", stream: IO[str] | None = None) -> logging.Handler:
    """A stream handler (stderr by default) with the JSON or text formatter, for the CLI and the gateway to attach.

    Attaching it is the application's choice: a library never configures logging on import.
    """
    handler = logging.StreamHandler(stream or sys.stderr)
    handler.setFormatter(JsonFormatter() if log_format == "json" else TextFormatter())
    return handler


def log_request(
    logger: logging.Logger,
    outcome: Response | BaseException,
    request: Request,
    log_prompts: bool,
    *,
    request_id: str | None = None,
    latency_ms: float | None = None,
    level: int = logging.INFO,
) -> None:
    """Emit one structured record for a finished request (a response, or the error the caller received).

    Args:
        logger: Where to log; nothing is built when it would drop ``level``.
        outcome: The response, or the error.
        request: The request (its task; its text only with ``log_prompts``).
        log_prompts: Add ``prompt`` (system + messages) and ``completion`` fields. Off: no text of the conversation
            appears anywhere in the record.
        request_id: The request's id when ``outcome`` is an error that does not carry one.
        latency_ms: Elapsed time when ``outcome`` is an error (a response carries its own).
        level: Log level of the record.
    """
    if not logger.isEnabledFor(level):
        return
    from llm_manager.types import Response

    if isinstance(outcome, Response):
        fields = _response_fields(outcome)
        message = (
            f"request {fields['request_id']} {fields['status']}: {outcome.deployment} ({outcome.model}) "
            f"{fields['latency_ms']:.0f} ms, {outcome.usage.prompt_tokens}+{outcome.usage.completion_tokens} tokens"
            + (f", ${fields['cost']}" if fields["cost"] is not None else "")
        )
    else:
        fields = _error_fields(outcome, request, request_id, latency_ms)
        message = f"request {fields['request_id']} failed: {fields['status']}: {fields['error']}"
    if log_prompts:
        fields["prompt"] = {
            "system": redact(request.system) if request.system else None,
            "messages": [{"role": m.role, "content": _content(m)} for m in request.messages],
        }
        if isinstance(outcome, Response):
            fields["completion"] = redact(outcome.content)
    logger.log(level, "%s", redact(message), extra=fields)


def _response_fields(r: Response) -> dict[str, Any]:
    md = r.metadata
    u = r.usage
    return {
        "request_id": md.request_id,
        "deployment": r.deployment,
        "model": r.model,
        "provider": r.provider,
        "task": md.task,
        "status": "cached" if md.cached else "deduplicated" if md.deduplicated else "ok",
        "latency_ms": md.latency_ms,
        "ttfc_ms": md.time_to_first_chunk_ms,
        "tokens": {"input": u.prompt_tokens, "output": u.completion_tokens, "cached": u.cached_tokens},
        "cost": str(u.cost) if u.cost is not None else None,
        "retries": md.retries,
        "cached": md.cached,
        "deduplicated": md.deduplicated,
        "fallback_used": r.fallback_used,
    }


def _error_fields(
    error: BaseException, request: Request, request_id: str | None, latency_ms: float | None
) -> dict[str, Any]:
    from llm_manager.types import Usage

    attempts = getattr(error, "attempts", None) or ()
    called = [a for a in attempts if not a.skipped]
    usage = getattr(error, "usage", None)  # structured output that never validated was still paid for
    return {
        "request_id": request_id or getattr(error, "request_id", None),
        "deployment": getattr(error, "deployment", None),
        "model": getattr(error, "model", None),
        "provider": getattr(error, "provider", None) or (called[-1].provider if called else None),
        "task": request.task,
        "status": error_code(error),
        "latency_ms": latency_ms,
        "tokens": {"input": usage.prompt_tokens, "output": usage.completion_tokens, "cached": usage.cached_tokens}
        if isinstance(usage, Usage)
        else None,
        "cost": str(usage.cost) if isinstance(usage, Usage) and usage.cost is not None else None,
        "retries": max(0, len(called) - 1),
        "cached": False,
        "error": redact(str(error))[:500],
        "error_type": type(error).__name__,
    }


def _content(m: Message) -> str | list[dict[str, Any]]:
    """A message's content for a log line: its text redacted, other parts described (never their bytes)."""
    if isinstance(m.content, str):
        return redact(m.content)
    from llm_manager.content import describe

    return [{"type": "text", "text": redact(p.text)} if p.type == "text" else describe(p) for p in m.content]
