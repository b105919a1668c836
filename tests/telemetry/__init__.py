"""Telemetry tests, plus the hand-built requests and responses they share (plain pydantic models, no manager)."""

from __future__ import annotations

from decimal import Decimal

from llm_manager.errors import AllCandidatesFailedError
from llm_manager.types import Attempt, Request, Response, ResponseMetadata, Usage

PROMPT = "Summarise the incident report for ACME-4471 please"
SYSTEM = "You are a terse SRE assistant"
COMPLETION = "Disk pressure on node-7 caused the evictions"
KEY = "sk-proj-Zx9QwErTyUiOp1234567890abcdEFGH"
"""A key-shaped string that must never reach a span, a metric or a log."""


def make_request(**kw: object) -> Request:
    fields: dict[str, object] = {
        "prompt": PROMPT,
        "system": SYSTEM,
        "task": "analysis",
        "max_tokens": 256,
        "temperature": 0.2,
        "top_p": 0.9,
    }
    fields.update(kw)
    return Request.model_validate(fields)


def fallback_attempts() -> list[Attempt]:
    """Two failures on ``primary`` (a 429, then a 503 after a backoff), then ``backup`` answers."""
    return [
        Attempt(
            deployment="primary",
            provider="openai",
            model="gpt-4o-mini",
            ok=False,
            error_code="rate_limited",
            error=f"429 Too Many Requests (key {KEY})",
            status_code=429,
            retry_after=0.5,
            latency_ms=2.0,
            key="ab12cd34",
        ),
        Attempt(
            deployment="primary",
            provider="openai",
            model="gpt-4o-mini",
            ok=False,
            error_code="model_unavailable",
            error="503 Service Unavailable",
            status_code=503,
            latency_ms=3.0,
            waited_ms=4.0,
            key="ab12cd34",
        ),
        Attempt(
            deployment="backup",
            provider="gemini",
            model="gemini-2.0-flash",
            ok=True,
            latency_ms=5.0,
            waited_ms=1.0,
            key="ef56ab78",
        ),
    ]


def fallback_response(**metadata: object) -> Response:
    md: dict[str, object] = {
        "request_id": "req-1",
        "latency_ms": 200.0,
        "retries": 2,
        "attempts": fallback_attempts(),
        "task": "analysis",
    }
    md.update(metadata)
    return Response(
        id="resp-123",
        content=COMPLETION,
        model="gemini-2.0-flash-001",
        deployment="backup",
        provider="gemini",
        finish_reason="stop",
        usage=Usage(
            prompt_tokens=120, completion_tokens=30, total_tokens=150, cached_tokens=40, cost=Decimal("0.0042")
        ),
        metadata=ResponseMetadata.model_validate(md),
    )


def cached_response() -> Response:
    return Response(
        id="resp-cached",
        content=COMPLETION,
        model="gpt-4o-mini-2024-07-18",
        deployment="primary",
        provider="openai",
        finish_reason="stop",
        usage=Usage(prompt_tokens=120, completion_tokens=30, total_tokens=150, cost=Decimal("0.0010")),
        metadata=ResponseMetadata(request_id="req-2", latency_ms=0.4, cached=True, task="analysis"),
    )


def stream_response() -> Response:
    attempt = Attempt(deployment="primary", provider="openai", model="gpt-4o-mini", ok=True, latency_ms=3.0)
    return Response(
        id="resp-stream",
        content=COMPLETION,
        model="gpt-4o-mini-2024-07-18",
        deployment="primary",
        provider="openai",
        finish_reason="length",
        usage=Usage(prompt_tokens=50, completion_tokens=64, total_tokens=114, cost=Decimal("0.0001")),
        metadata=ResponseMetadata(
            request_id="req-3", latency_ms=1800.0, time_to_first_chunk_ms=420.0, attempts=[attempt], task="general"
        ),
    )


def all_failed_error() -> AllCandidatesFailedError:
    attempts = [
        Attempt(
            deployment="primary",
            provider="openai",
            model="gpt-4o-mini",
            ok=False,
            error_code="authentication_failed",
            error=f"401 invalid api key {KEY}",
            status_code=401,
            latency_ms=2.0,
            key="ab12cd34",
        ),
        Attempt(
            deployment="backup",
            provider="anthropic",
            model="claude-3-5-haiku",
            ok=False,
            skipped=True,
            error_code="circuit_open",
            error="circuit open for 12 s",
        ),
        Attempt(
            deployment="local",
            provider="ollama",
            model="llama3.1",
            ok=False,
            error_code="timeout",
            error="no answer in 30 s",
            latency_ms=4.0,
            waited_ms=1.0,
        ),
    ]
    return AllCandidatesFailedError(
        f"every candidate failed; last: timeout (first: 401 with Bearer {KEY})", attempts=attempts, request_id="req-4"
    )
