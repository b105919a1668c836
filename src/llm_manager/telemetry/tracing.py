"""OpenTelemetry spans for requests, following the GenAI semantic conventions.

One request gives one span: the *logical* operation, from the call to the answer, covering cache lookups, retries
and fallbacks. It carries the GenAI attributes (``gen_ai.operation.name = "chat"``, ``gen_ai.provider.name``,
``gen_ai.request.*``, ``gen_ai.response.*``, ``gen_ai.usage.*``, ``error.type``), named ``chat {model}`` and of kind
``CLIENT``, plus ours under ``llm_manager.*``. Attribute names follow the current conventions
(``gen_ai.provider.name``, which replaced ``gen_ai.system`` in semconv 1.37).

Each :class:`~llm_manager.types.Attempt` becomes a child span ``attempt {deployment}``, drawn after the fact from
its recorded waits and latencies. Attempt spans deliberately carry no ``gen_ai.operation.name`` and no token usage:
GenAI-aware backends count one inference (and its tokens) per span with an operation name, and a request that took
three attempts is still one answer.

Prompt and completion text are recorded only with ``log_prompts``, as the opt-in ``gen_ai.input.messages``,
``gen_ai.system_instructions`` and ``gen_ai.output.messages`` attributes (JSON strings: span attributes cannot hold
nested maps), on the request span.

OpenTelemetry is imported when a :class:`Tracing` is built, never when this module is imported.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Sequence
from contextvars import ContextVar, Token
from typing import TYPE_CHECKING, Any

import orjson

from llm_manager.errors import ConfigError, LLMManagerError
from llm_manager.telemetry.logs import error_code, redact

if TYPE_CHECKING:
    from opentelemetry.context import Context
    from opentelemetry.sdk.trace import TracerProvider as SdkTracerProvider
    from opentelemetry.trace import Span, TracerProvider
    from opentelemetry.util.types import AttributeValue

    from llm_manager.types import Attempt, Message, Request, Response

__all__ = ["Attached", "Tracing", "provider_name"]

_log = logging.getLogger("llm_manager.telemetry")

# Our provider labels that differ from the conventions' well-known ``gen_ai.provider.name`` values. Any other
# label (openai, anthropic, groq, deepseek, openrouter, ollama, simulated …) is used as it is.
_PROVIDER_NAMES = {
    "gemini": "gcp.gemini",
    "vertex": "gcp.vertex_ai",
    "mistral": "mistral_ai",
    "xai": "x_ai",
    "azure": "azure.ai.openai",
    "bedrock": "aws.bedrock",
}
_MAX_DESCRIPTION = 300
"""Longest span status description kept (error messages can quote a provider's whole body)."""

Attributes = dict[str, "AttributeValue"]
Attached = tuple["Token[Context]", "Token[Span | None]"]
"""What :meth:`Tracing.start` attached to the current context: OpenTelemetry's token and our marker's."""


def provider_name(provider: str) -> str:
    """The ``gen_ai.provider.name`` value for one of our provider labels."""
    return _PROVIDER_NAMES.get(provider, provider)


def _traces_url(endpoint: str) -> str:
    # The exporter's ``endpoint`` argument is used verbatim (only the env variable gets the path appended), while
    # people configure the collector's base URL: accept both.
    url = endpoint.rstrip("/")
    return url if url.endswith("/v1/traces") else url + "/v1/traces"


def _put(attrs: Attributes, key: str, value: AttributeValue | None) -> None:
    # OpenTelemetry rejects ``None`` values with a warning: leave unknown attributes out instead.
    if value is not None:
        attrs[key] = value


class Tracing:
    """Builds and ends the spans of requests on one tracer provider.

    Args:
        provider: Any OpenTelemetry tracer provider (SDK, or the API's no-op one).
        log_prompts: Record prompt and completion text (opt-in GenAI content attributes).
    """

    def __init__(self, provider: TracerProvider, *, log_prompts: bool) -> None:
        from opentelemetry import context as otel_context
        from opentelemetry import trace as otel_trace

        from llm_manager import __version__

        self._tracer = provider.get_tracer("llm_manager", __version__)
        self._owned: SdkTracerProvider | None = None
        """The provider this object created (and must shut down), if any."""
        self._log_prompts = log_prompts
        # The few OpenTelemetry names the request path needs, bound once: no import statement runs per request.
        self._attach = otel_context.attach
        self._detach = otel_context.detach
        self._in_context = otel_trace.set_span_in_context
        self._client = otel_trace.SpanKind.CLIENT
        self._internal = otel_trace.SpanKind.INTERNAL
        self._status = otel_trace.Status
        self._error_code = otel_trace.StatusCode.ERROR
        # Set alongside the OpenTelemetry context so that ``finish`` can tell, without OpenTelemetry logging an
        # error, whether it runs in the context ``start`` attached to (resetting a token elsewhere raises).
        self._marker: ContextVar[Span | None] = ContextVar("llm_manager_request_span", default=None)

    @classmethod
    def with_otlp(cls, endpoint: str, service_name: str, *, log_prompts: bool) -> Tracing:
        """A tracer provider of our own exporting batches over OTLP/HTTP (needs the ``otel`` extra)."""
        try:
            from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
            from opentelemetry.sdk.resources import Resource
            from opentelemetry.sdk.trace import TracerProvider as SdkProvider
            from opentelemetry.sdk.trace.export import BatchSpanProcessor
        except ImportError as exc:
            raise ConfigError(
                "telemetry.otlp_endpoint is set but the OpenTelemetry SDK or its OTLP/HTTP exporter is not installed. "
                "Fix: pip install 'llm-manager[otel]'"
            ) from exc
        provider = SdkProvider(resource=Resource.create({"service.name": service_name}))
        # Batched: the export (an HTTP POST) runs on the processor's own thread, never on the event loop.
        provider.add_span_processor(BatchSpanProcessor(OTLPSpanExporter(endpoint=_traces_url(endpoint))))
        tracing = cls(provider, log_prompts=log_prompts)
        tracing._owned = provider
        return tracing

    def shutdown(self) -> None:
        """Flush and stop the provider if this object owns it."""
        if self._owned is not None:
            self._owned.shutdown()

    # -- request span ---------------------------------------------------------------------------------------------

    def start(self, request: Request, request_id: str, *, stream: bool) -> tuple[Span, Attached]:
        """Start the request span as the current span; returns it and the context token to detach at the end."""
        # The semantic conventions name an embedding call's operation "embeddings" (its task is "embedding").
        operation = "embeddings" if request.task == "embedding" else "chat"
        attrs: Attributes = {
            "gen_ai.operation.name": operation,
            "gen_ai.request.stream": stream,
            "gen_ai.output.type": "json" if request.response_format is not None else "text",
            "llm_manager.request_id": request_id,
            "llm_manager.task": request.task,
            "llm_manager.priority": request.priority,
        }
        _put(attrs, "gen_ai.request.model", request.model)
        _put(attrs, "gen_ai.request.max_tokens", request.max_tokens)
        _put(attrs, "gen_ai.request.temperature", request.temperature)
        _put(attrs, "gen_ai.request.top_p", request.top_p)
        _put(attrs, "gen_ai.request.stop_sequences", request.stop)
        _put(attrs, "llm_manager.project", request.project)
        name = f"{operation} {request.model}" if request.model else operation
        span = self._tracer.start_span(name, kind=self._client, attributes=attrs)
        if self._log_prompts and span.is_recording():
            span.set_attribute("gen_ai.input.messages", _input_messages(request))
            if request.system:
                span.set_attribute(
                    "gen_ai.system_instructions", _json([{"type": "text", "content": redact(request.system)}])
                )
        token = self._attach(self._in_context(span))
        return span, (token, self._marker.set(span))

    def finish(
        self,
        span: Span,
        attached: Attached | None,
        response: Response | None,
        error: BaseException | None,
        *,
        start_wall_ns: int,
        end_wall_ns: int,
    ) -> None:
        """Set the outcome on the request span, add one child per attempt, end the span and leave its context."""
        try:
            if span.is_recording():
                if response is not None:
                    md = response.metadata
                    # A cached or shared answer made no call of its own: the call that did has those attempt spans.
                    attempts: Sequence[Attempt] = () if md.cached or md.deduplicated else md.attempts
                    self._set_response(span, response)
                else:
                    attempts = getattr(error, "attempts", None) or ()
                    self._set_error(span, error, attempts)
                origin = max(start_wall_ns, getattr(span, "start_time", None) or start_wall_ns)
                self._attempt_spans(span, attempts, origin, end_wall_ns)
        finally:
            span.end(end_time=end_wall_ns)  # even after a failure above: a span never ended is never exported
            if attached is not None:
                self._leave(attached)

    def _leave(self, attached: Attached) -> None:
        """Restore the context ``start`` changed, if this is that context.

        A stream may be finished from another task (its ``aclose``), which runs in a copy of the context: tokens
        cannot be reset there. The context we attached to is then left as it is and dies with the task owning it.
        """
        token, mark = attached
        try:
            self._marker.reset(mark)
        except ValueError:
            return
        self._detach(token)

    def _set_response(self, span: Span, r: Response) -> None:
        md = r.metadata
        u = r.usage
        called = [a for a in md.attempts if not a.skipped]
        # The wire model of the first call made (``request.model``, set at the start, may be an alias).
        request_model = called[0].model if called else r.model
        provider = provider_name(r.provider)
        # Rare flags are set only when true: each attribute costs the SDK about a microsecond to validate and store.
        attrs: Attributes = {
            "gen_ai.provider.name": provider,
            "gen_ai.request.model": request_model,
            "gen_ai.response.model": r.model,
            "gen_ai.response.id": r.id,
            "gen_ai.usage.input_tokens": u.prompt_tokens,
            "gen_ai.usage.output_tokens": u.completion_tokens,
            "llm_manager.deployment": r.deployment,
            "llm_manager.cached": md.cached,
            "llm_manager.fallback_used": r.fallback_used,
            "llm_manager.retries": md.retries,
        }
        if provider != r.provider:
            attrs["llm_manager.provider"] = r.provider
        for flag, on in (
            ("llm_manager.deduplicated", md.deduplicated),
            ("llm_manager.hedged", md.hedged),
            ("llm_manager.simulated", md.simulated),
            ("llm_manager.usage_estimated", u.estimated),
        ):
            if on:
                attrs[flag] = True
        if md.trimmed_messages:
            attrs["llm_manager.trimmed_messages"] = md.trimmed_messages
        if r.finish_reason is not None:
            attrs["gen_ai.response.finish_reasons"] = [r.finish_reason]
        if u.cached_tokens:
            attrs["gen_ai.usage.cache_read.input_tokens"] = u.cached_tokens
        if md.time_to_first_chunk_ms is not None:
            attrs["gen_ai.response.time_to_first_chunk"] = md.time_to_first_chunk_ms / 1000
        if u.cost is not None:
            attrs["llm_manager.cost_usd"] = str(u.cost)  # a string: a float would round the exact Decimal
        if self._log_prompts:
            attrs["gen_ai.output.messages"] = _output_messages(r)
        span.set_attributes(attrs)
        span.update_name(f"{'embeddings' if md.task == 'embedding' else 'chat'} {request_model}")

    def _set_error(self, span: Span, error: BaseException | None, attempts: Sequence[Attempt]) -> None:
        code = error_code(error)  # ``error.type``: our stable code, low-cardinality
        called = [a for a in attempts if not a.skipped]
        attrs: Attributes = {"error.type": code, "llm_manager.retries": max(0, len(called) - 1)}
        last = called[-1] if called else (attempts[-1] if attempts else None)
        if isinstance(error, LLMManagerError):
            _put(attrs, "llm_manager.deployment", error.deployment)
            _put(attrs, "gen_ai.provider.name", provider_name(error.provider) if error.provider else None)
        if last is not None:
            attrs.setdefault("gen_ai.provider.name", provider_name(last.provider))
        if called:
            attrs["gen_ai.request.model"] = called[0].model
            # The operation the span was started with (its name's first word: "chat" or "embeddings").
            operation = str(getattr(span, "name", "chat")).split(" ", 1)[0]
            span.update_name(f"{operation} {called[0].model}")
        span.set_attributes(attrs)
        span.set_status(self._status(self._error_code, _describe(error)))

    # -- attempt spans --------------------------------------------------------------------------------------------

    def _attempt_spans(self, parent: Span, attempts: Iterable[Attempt], origin_ns: int, end_ns: int) -> None:
        """One child per attempt, laid end to end from ``origin_ns``: each waits its backoff, then runs its latency.

        The attempts of a hedged race ran side by side, so they share one start (the hedge's delay is not recorded;
        the drawing is approximate, the durations are not). Nothing is drawn past the request's own end.
        """
        ctx = self._in_context(parent)
        cursor = origin_ns
        hedge_start: int | None = None
        for index, a in enumerate(attempts):
            if a.hedge and hedge_start is not None:
                start = hedge_start
            else:
                start = min(cursor + int(a.waited_ms * 1e6), end_ns)
                hedge_start = start if a.hedge else None
            end = min(start + int(a.latency_ms * 1e6), end_ns)
            cursor = max(cursor, end)
            child = self._tracer.start_span(
                f"attempt {a.deployment}",
                context=ctx,
                kind=self._internal if a.skipped else self._client,
                attributes=_attempt_attributes(a, index),
                start_time=start,
            )
            if not a.ok and a.error_code != "hedge_lost":  # a cancelled hedge loser did not fail
                child.set_status(
                    self._status(self._error_code, redact(a.error or a.error_code or "failed")[:_MAX_DESCRIPTION])
                )
            child.end(end_time=end)


def _attempt_attributes(a: Attempt, index: int) -> Attributes:
    provider = provider_name(a.provider)
    attrs: Attributes = {
        "gen_ai.provider.name": provider,
        "gen_ai.request.model": a.model,
        "llm_manager.deployment": a.deployment,
        "llm_manager.attempt.index": index,
        "llm_manager.attempt.ok": a.ok,
        "llm_manager.attempt.latency_ms": a.latency_ms,
    }
    if provider != a.provider:
        attrs["llm_manager.provider"] = a.provider
    if a.waited_ms:
        attrs["llm_manager.attempt.waited_ms"] = a.waited_ms
    if a.skipped:
        attrs["llm_manager.attempt.skipped"] = True
    if a.hedge:
        attrs["llm_manager.attempt.hedge"] = True
    _put(attrs, "error.type", a.error_code)
    _put(attrs, "http.response.status_code", a.status_code)
    _put(attrs, "llm_manager.attempt.retry_after_s", a.retry_after)
    _put(attrs, "llm_manager.key", a.key)  # a fingerprint, never the key
    if a.cost is not None:
        attrs["llm_manager.attempt.cost_usd"] = str(a.cost)
    return attrs


def _describe(error: BaseException | None) -> str:
    # Redact before cutting: a key cut in half would no longer look like a key.
    return redact(str(error) if error is not None else "no response")[:_MAX_DESCRIPTION]


def _json(value: object) -> str:
    return orjson.dumps(value).decode()


def _input_messages(request: Request) -> str:
    return _json([{"role": m.role, "parts": _parts(m)} for m in request.messages])


def _parts(m: Message) -> list[dict[str, Any]]:
    # GenAI semantic conventions' part shapes; non-text parts are described, never their bytes.
    if isinstance(m.content, str):
        return [{"type": "text", "content": redact(m.content)}]
    from llm_manager.content import describe

    return [{"type": "text", "content": redact(p.text)} if p.type == "text" else describe(p) for p in m.content]


def _output_messages(r: Response) -> str:
    message = {
        "role": "assistant",
        "parts": [{"type": "text", "content": redact(r.content)}],
        "finish_reason": r.finish_reason or "stop",
    }
    return _json([message])
