"""Telemetry: OpenTelemetry spans, Prometheus metrics and structured request logs, one :class:`Telemetry` per manager.

Nothing here touches process-wide state: no global tracer provider, no default Prometheus registry, no logging
configuration. Importing this package loads neither ``opentelemetry`` nor ``prometheus_client``: OpenTelemetry is
imported when tracing is configured, ``prometheus_client`` at the first scrape. A manager with tracing off never
loads OpenTelemetry, and one whose metrics are never scraped (a CLI run) never loads ``prometheus_client``.

What is recorded never includes an API key, a prompt or a completion, unless ``log_prompts`` is on: then the
request span carries the GenAI content attributes and request logs carry the text (still passed through
:func:`~llm_manager.telemetry.logs.redact`).

>>> tel = Telemetry(TelemetryConfig())                     # metrics on, tracing off
>>> trace = tel.request(request, "req-1", stream=False)    # doctest: +SKIP
>>> trace.finish(response, None, started_at_ns=t0_ns)      # doctest: +SKIP
>>> body, content_type = tel.render_metrics()              # doctest: +SKIP
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from typing import TYPE_CHECKING

from llm_manager.config import TelemetryConfig
from llm_manager.telemetry.logs import JsonFormatter, TextFormatter, log_request, make_handler, redact
from llm_manager.telemetry.metrics import CollectSnapshot, Metrics
from llm_manager.telemetry.tracing import Attached, Tracing

if TYPE_CHECKING:
    from opentelemetry.trace import Span, TracerProvider
    from prometheus_client import CollectorRegistry

    from llm_manager.types import Request, Response

__all__ = [
    "REQUEST_LOGGER",
    "CollectSnapshot",
    "JsonFormatter",
    "RequestTrace",
    "Telemetry",
    "TelemetryConfig",
    "TextFormatter",
    "log_request",
    "make_handler",
    "redact",
]

_log = logging.getLogger("llm_manager.telemetry")
REQUEST_LOGGER = "llm_manager.requests"
"""Name of the logger that receives one record per finished request."""


class RequestTrace:
    """The telemetry of one request in flight: its span (when tracing) and, once finished, its metrics and log.

    Returned by :meth:`Telemetry.request`; call :meth:`finish` exactly once (later calls do nothing).
    """

    __slots__ = ("_attached", "_done", "_perf0_ns", "_request", "_request_id", "_span", "_tel", "_wall0_ns")

    def __init__(
        self,
        tel: Telemetry,
        request: Request,
        request_id: str,
        span: Span | None = None,
        attached: Attached | None = None,
        wall0_ns: int = 0,
        perf0_ns: int = 0,
    ) -> None:
        self._tel = tel
        self._request = request
        self._request_id = request_id
        self._span = span
        self._attached = attached
        self._done = False
        # One (wall, monotonic) reading taken together: attempts are timed with perf_counter, while spans need epoch
        # nanoseconds, so every perf_counter instant is mapped through this pair.
        self._wall0_ns = wall0_ns
        self._perf0_ns = perf0_ns

    @property
    def span(self) -> Span | None:
        """The request span, or ``None`` when tracing is off."""
        return self._span

    def finish(
        self,
        response: Response | None,
        error: BaseException | None,
        *,
        started_at_ns: int,
        ended_at_ns: int | None = None,
    ) -> None:
        """Close the request: span attributes, one child span per attempt, metrics, one log record.

        Args:
            response: The answer, or ``None`` when the request failed.
            error: The error the caller receives, or ``None`` on success.
            started_at_ns: ``time.perf_counter_ns()`` taken when the call began (before routing, cache lookup and
                any retry): the origin from which attempt spans are laid out and failed requests are timed.
            ended_at_ns: When the answer was ready, if that was before this call (the bookkeeping of an answer
                already handed on); default now.

        Never raises: telemetry must not break a request that has already succeeded or failed on its own.
        """
        if self._done:
            return
        self._done = True
        tel = self._tel
        now_ns = time.perf_counter_ns() if ended_at_ns is None else ended_at_ns
        try:
            if self._span is not None and tel._tracing is not None:
                tel._tracing.finish(
                    self._span,
                    self._attached,
                    response,
                    error,
                    start_wall_ns=self._wall0_ns + (started_at_ns - self._perf0_ns),
                    end_wall_ns=self._wall0_ns + (now_ns - self._perf0_ns),
                )
        except Exception:  # never let telemetry fail the request path
            _log.debug("telemetry: finishing the span failed", exc_info=True)
        try:
            if tel._metrics is not None:
                tel._metrics.record(self._request, response, error, latency_s=(now_ns - started_at_ns) / 1e9)
            if tel._request_log.isEnabledFor(logging.INFO):
                log_request(
                    tel._request_log,
                    response if response is not None else error or RuntimeError("no response"),
                    self._request,
                    tel.config.log_prompts,
                    request_id=self._request_id,
                    latency_ms=(now_ns - started_at_ns) / 1e6,
                )
        except Exception:
            _log.debug("telemetry: recording metrics or the request log failed", exc_info=True)


class Telemetry:
    """Spans, metrics and request logs for one manager.

    Args:
        config: What to record and where to export it.
        tracer_provider: An OpenTelemetry ``TracerProvider`` to create spans with (tests pass an SDK provider with
            an in-memory exporter; an application already set up for OpenTelemetry may pass
            ``opentelemetry.trace.get_tracer_provider()``). Without it, tracing is on only when
            ``config.otlp_endpoint`` is set, through a provider this object owns (see :meth:`shutdown`).
        registry: The ``prometheus_client.CollectorRegistry`` to register metrics on. Default: a new one owned by
            this object, never the process-wide default registry (two managers must not collide).
        request_logger: Where the per-request records go (default: the ``llm_manager.requests`` logger).

    Raises:
        ConfigError: ``otlp_endpoint`` is set but the ``otel`` extra is not installed.
    """

    def __init__(
        self,
        config: TelemetryConfig | None = None,
        *,
        tracer_provider: TracerProvider | None = None,
        registry: CollectorRegistry | None = None,
        request_logger: logging.Logger | None = None,
    ) -> None:
        self.config = config or TelemetryConfig()
        self._tracing: Tracing | None = None
        if tracer_provider is not None:
            self._tracing = Tracing(tracer_provider, log_prompts=self.config.log_prompts)
        elif self.config.otlp_endpoint:
            self._tracing = Tracing.with_otlp(
                self.config.otlp_endpoint, self.config.service_name, log_prompts=self.config.log_prompts
            )
        self._metrics = Metrics(registry) if self.config.metrics else None
        self._request_log = request_logger or logging.getLogger(REQUEST_LOGGER)

    @property
    def tracing(self) -> bool:
        """Whether spans are being recorded."""
        return self._tracing is not None

    @property
    def registry(self) -> CollectorRegistry | None:
        """The Prometheus registry holding the metrics (``None`` when metrics are off); created on first use."""
        return self._metrics.registry if self._metrics is not None else None

    def request(self, request: Request, request_id: str, *, stream: bool) -> RequestTrace:
        """Begin the telemetry of one request; call :meth:`RequestTrace.finish` when it ends.

        With tracing on, this starts the request span and makes it the current span of this task's context, so
        spans of instrumented HTTP clients (and of a nested request) nest under it. With tracing off it costs a
        small object and no OpenTelemetry call at all.
        """
        if self._tracing is None:
            return RequestTrace(self, request, request_id)
        wall0_ns, perf0_ns = time.time_ns(), time.perf_counter_ns()
        try:
            span, attached = self._tracing.start(request, request_id, stream=stream)
        except Exception:
            _log.debug("telemetry: starting the span failed", exc_info=True)
            return RequestTrace(self, request, request_id)
        return RequestTrace(self, request, request_id, span, attached, wall0_ns, perf0_ns)

    def on_collect(self, fn: Callable[[], CollectSnapshot]) -> None:
        """Register a snapshot function read at every scrape, for the breaker and budget gauges.

        ``fn`` is called synchronously on the scraping thread (Prometheus collectors are synchronous), so it must
        not await or do I/O: pass a function returning a snapshot the manager already holds in memory, e.g.
        ``{"breakers": {(deployment, key_fp): "closed" | "half_open" | "open"},
        "budgets": {name: (spent_usd, limit_usd)}}``. Either key may be left out. Errors are logged and skipped.
        """
        if self._metrics is not None:
            self._metrics.on_collect(fn)

    def render_metrics(self, accept: str | None = None) -> tuple[bytes, str]:
        """The Prometheus exposition of every metric and its content type, for ``/metrics``.

        Args:
            accept: The scraper's ``Accept`` header, if any: OpenMetrics is returned when it asks for it.
        """
        if self._metrics is None:
            return b"", "text/plain; version=0.0.4; charset=utf-8"
        return self._metrics.render(accept)

    def shutdown(self) -> None:
        """Flush and stop the OTLP exporter this object owns (a no-op otherwise).

        Blocking (it may wait for one export, up to the exporter's timeout): from async code, run it in a thread.
        """
        if self._tracing is not None:
            self._tracing.shutdown()
