"""Spans: GenAI conventions on the request span, one child per attempt, errors, content only when opted in."""

from __future__ import annotations

import json
import logging
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from decimal import Decimal
from http.server import BaseHTTPRequestHandler, HTTPServer

import pytest
from opentelemetry import trace
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind, StatusCode

from llm_manager.errors import ConfigError, RateLimitError
from llm_manager.telemetry import Telemetry, TelemetryConfig
from llm_manager.types import Attempt, Response, ResponseMetadata
from tests.telemetry import (
    COMPLETION,
    KEY,
    PROMPT,
    SYSTEM,
    all_failed_error,
    cached_response,
    fallback_response,
    make_request,
    stream_response,
)

MS = 1_000_000


@pytest.fixture
def exporter() -> InMemorySpanExporter:
    return InMemorySpanExporter()


@pytest.fixture
def provider(exporter: InMemorySpanExporter) -> Iterator[TracerProvider]:
    tp = TracerProvider()
    tp.add_span_processor(SimpleSpanProcessor(exporter))
    yield tp
    tp.shutdown()


def _telemetry(provider: TracerProvider, **config: object) -> Telemetry:
    return Telemetry(TelemetryConfig.model_validate({"metrics": False, **config}), tracer_provider=provider)


def _run(tel: Telemetry, response: Response | None, error: BaseException | None = None, **kw: object) -> None:
    """One request whose attempts (a few ms in all) fit inside its real duration."""
    stream = bool(kw.pop("stream", False))
    t0 = time.perf_counter_ns()
    trace_ = tel.request(make_request(**kw), "req-1", stream=stream)
    time.sleep(0.03)
    trace_.finish(response, error, started_at_ns=t0)


def _split(exporter: InMemorySpanExporter) -> tuple[ReadableSpan, list[ReadableSpan]]:
    spans = exporter.get_finished_spans()
    roots = [s for s in spans if s.parent is None]
    assert len(roots) == 1
    children = sorted(
        (s for s in spans if s.parent is not None), key=lambda s: s.attributes["llm_manager.attempt.index"]
    )
    return roots[0], children


def _everything(exporter: InMemorySpanExporter) -> str:
    return "\n".join(s.to_json() for s in exporter.get_finished_spans())


def test_fallback_request_span_follows_genai_conventions(
    provider: TracerProvider, exporter: InMemorySpanExporter
) -> None:
    _run(_telemetry(provider), fallback_response())
    root, children = _split(exporter)
    assert root.name == "chat gpt-4o-mini"  # the model first asked, as the conventions name inference spans
    assert root.kind is SpanKind.CLIENT
    assert root.status.status_code is StatusCode.UNSET
    attrs = dict(root.attributes or {})
    assert {k: v for k, v in attrs.items() if k.startswith(("gen_ai.", "error."))} == {
        "gen_ai.operation.name": "chat",
        "gen_ai.provider.name": "gcp.gemini",
        "gen_ai.request.model": "gpt-4o-mini",
        "gen_ai.request.max_tokens": 256,
        "gen_ai.request.temperature": 0.2,
        "gen_ai.request.top_p": 0.9,
        "gen_ai.request.stream": False,
        "gen_ai.output.type": "text",
        "gen_ai.response.model": "gemini-2.0-flash-001",
        "gen_ai.response.id": "resp-123",
        "gen_ai.response.finish_reasons": ("stop",),
        "gen_ai.usage.input_tokens": 120,
        "gen_ai.usage.output_tokens": 30,
        "gen_ai.usage.cache_read.input_tokens": 40,
    }
    assert attrs["llm_manager.deployment"] == "backup"
    assert attrs["llm_manager.fallback_used"] is True
    assert attrs["llm_manager.retries"] == 2
    assert attrs["llm_manager.cost_usd"] == "0.0042"  # exact, as a string
    assert attrs["llm_manager.cached"] is False
    assert attrs["llm_manager.provider"] == "gemini"  # our label, where it differs from the conventions' name
    for rare in ("deduplicated", "hedged", "simulated", "usage_estimated", "trimmed_messages"):
        assert f"llm_manager.{rare}" not in attrs  # set only when true
    assert attrs["llm_manager.task"] == "analysis"
    assert attrs["llm_manager.request_id"] == "req-1"
    assert "gen_ai.system" not in attrs  # the deprecated name is not emitted


def test_one_child_per_attempt_with_its_outcome(provider: TracerProvider, exporter: InMemorySpanExporter) -> None:
    _run(_telemetry(provider), fallback_response())
    root, children = _split(exporter)
    assert [c.name for c in children] == ["attempt primary", "attempt primary", "attempt backup"]
    assert all(c.parent is not None and c.parent.span_id == root.context.span_id for c in children)
    assert all(c.context.trace_id == root.context.trace_id for c in children)
    first, second, third = (dict(c.attributes or {}) for c in children)
    assert first["error.type"] == "rate_limited"
    assert first["http.response.status_code"] == 429
    assert first["llm_manager.attempt.retry_after_s"] == 0.5
    assert first["llm_manager.key"] == "ab12cd34"
    assert first["gen_ai.provider.name"] == "openai" and first["gen_ai.request.model"] == "gpt-4o-mini"
    assert second["llm_manager.attempt.waited_ms"] == 4.0 and second["error.type"] == "model_unavailable"
    assert third["llm_manager.attempt.ok"] is True and "error.type" not in third
    assert [c.status.status_code for c in children] == [StatusCode.ERROR, StatusCode.ERROR, StatusCode.UNSET]
    # Attempts are not inferences of their own: no operation name, no tokens (GenAI backends would double count).
    assert not any("gen_ai.operation.name" in (c.attributes or {}) for c in children)
    assert not any(k.startswith("gen_ai.usage") for c in children for k in (c.attributes or {}))


def test_attempts_are_laid_out_one_after_another(provider: TracerProvider, exporter: InMemorySpanExporter) -> None:
    _run(_telemetry(provider), fallback_response())
    root, (a, b, c) = _split(exporter)
    assert a.start_time == root.start_time  # the call started with the request
    assert a.end_time - a.start_time == 2 * MS
    assert b.start_time == a.end_time + 4 * MS  # backoff slept before the retry
    assert b.end_time - b.start_time == 3 * MS
    assert c.start_time == b.end_time + 1 * MS
    assert c.end_time - c.start_time == 5 * MS
    assert c.end_time <= root.end_time


def test_attempts_never_outlast_the_request(provider: TracerProvider, exporter: InMemorySpanExporter) -> None:
    tel = _telemetry(provider)
    t0 = time.perf_counter_ns()
    tel.request(make_request(), "req-1", stream=False).finish(fallback_response(), None, started_at_ns=t0)
    root, children = _split(exporter)  # no sleep: the recorded 15 ms cannot fit, so they are cut at the end
    assert all(root.start_time <= c.start_time <= c.end_time <= root.end_time for c in children)


def test_hedged_attempts_overlap(provider: TracerProvider, exporter: InMemorySpanExporter) -> None:
    attempts = [
        Attempt(deployment="a", provider="openai", model="m1", ok=False, error_code="hedge_lost", hedge=True,
                latency_ms=6.0, cost=Decimal("0.0002")),
        Attempt(deployment="b", provider="anthropic", model="m2", ok=True, hedge=True, latency_ms=4.0),
    ]  # fmt: skip
    r = fallback_response(attempts=attempts, hedged=True, retries=1)
    _run(_telemetry(provider), r)
    root, (loser, winner) = _split(exporter)
    assert loser.start_time == winner.start_time == root.start_time
    assert loser.status.status_code is StatusCode.UNSET  # cancelled because the other won: not a failure
    assert loser.attributes["llm_manager.attempt.hedge"] is True
    assert loser.attributes["llm_manager.attempt.cost_usd"] == "0.0002"
    assert root.attributes["llm_manager.hedged"] is True


def test_cached_hit_has_no_attempt_spans(provider: TracerProvider, exporter: InMemorySpanExporter) -> None:
    _run(_telemetry(provider), cached_response())
    root, children = _split(exporter)
    assert children == []
    exporter.clear()
    _run(_telemetry(provider), fallback_response(deduplicated=True))  # attempts of the call it shared
    _, children = _split(exporter)
    assert children == []
    assert root.name == "chat gpt-4o-mini-2024-07-18"
    assert root.attributes["llm_manager.cached"] is True
    assert root.attributes["gen_ai.provider.name"] == "openai"


def test_stream_records_time_to_first_chunk(provider: TracerProvider, exporter: InMemorySpanExporter) -> None:
    _run(_telemetry(provider), stream_response(), stream=True)
    root, (attempt,) = _split(exporter)
    assert root.attributes["gen_ai.request.stream"] is True
    assert root.attributes["gen_ai.response.time_to_first_chunk"] == pytest.approx(0.42)
    assert root.attributes["gen_ai.response.finish_reasons"] == ("length",)


def test_error_sets_status_type_and_children(provider: TracerProvider, exporter: InMemorySpanExporter) -> None:
    _run(_telemetry(provider), None, all_failed_error())
    root, (auth, skipped, timeout) = _split(exporter)
    assert root.status.status_code is StatusCode.ERROR
    assert root.attributes["error.type"] == "all_candidates_failed"
    assert root.attributes["gen_ai.provider.name"] == "ollama"  # the last one tried
    assert root.attributes["llm_manager.retries"] == 1  # two called, one skipped
    assert root.name == "chat gpt-4o-mini"
    assert auth.attributes["error.type"] == "authentication_failed"
    assert skipped.kind is SpanKind.INTERNAL and skipped.attributes["llm_manager.attempt.skipped"] is True
    assert skipped.start_time == skipped.end_time  # never called: no duration
    assert timeout.attributes["error.type"] == "timeout"
    assert timeout.start_time == auth.end_time + 1 * MS


def test_plain_exception_uses_its_class_name(provider: TracerProvider, exporter: InMemorySpanExporter) -> None:
    _run(_telemetry(provider), None, RuntimeError("boom"))
    root, children = _split(exporter)
    assert root.attributes["error.type"] == "RuntimeError"
    assert children == []
    err = RateLimitError("slow down", deployment="primary", provider="openai")
    exporter.clear()
    _run(_telemetry(provider), None, err)
    root, _ = _split(exporter)
    assert root.attributes["error.type"] == "rate_limited"
    assert root.attributes["llm_manager.deployment"] == "primary"


def test_no_key_and_no_text_in_spans_by_default(provider: TracerProvider, exporter: InMemorySpanExporter) -> None:
    tel = _telemetry(provider)
    _run(tel, fallback_response())
    _run(tel, None, all_failed_error())
    dump = _everything(exporter)
    assert KEY not in dump and KEY[8:] not in dump
    assert "sk-proj-***" in dump  # the error was kept, the key masked
    for text in (PROMPT, SYSTEM, COMPLETION):
        assert text not in dump
    assert "gen_ai.input.messages" not in dump and "gen_ai.output.messages" not in dump


def test_log_prompts_records_genai_content_attributes(provider: TracerProvider, exporter: InMemorySpanExporter) -> None:
    _run(_telemetry(provider, log_prompts=True), fallback_response())
    root, children = _split(exporter)
    assert json.loads(root.attributes["gen_ai.input.messages"]) == [
        {"role": "user", "parts": [{"type": "text", "content": PROMPT}]}
    ]
    assert json.loads(root.attributes["gen_ai.system_instructions"]) == [{"type": "text", "content": SYSTEM}]
    assert json.loads(root.attributes["gen_ai.output.messages"]) == [
        {"role": "assistant", "parts": [{"type": "text", "content": COMPLETION}], "finish_reason": "stop"}
    ]
    assert not any(PROMPT in c.to_json() for c in children)


def test_request_span_is_current_until_finish(provider: TracerProvider, exporter: InMemorySpanExporter) -> None:
    tel = _telemetry(provider)
    t0 = time.perf_counter_ns()
    handle = tel.request(make_request(), "req-1", stream=False)
    assert trace.get_current_span() is handle.span
    # What an instrumented HTTP client does: start a span in the current context.
    with provider.get_tracer("http").start_as_current_span("POST"):
        pass
    handle.finish(cached_response(), None, started_at_ns=t0)
    assert trace.get_current_span() is trace.INVALID_SPAN
    http_span = next(s for s in exporter.get_finished_spans() if s.name == "POST")
    assert http_span.parent is not None and http_span.parent.span_id == handle.span.get_span_context().span_id


async def test_finish_from_another_task_leaves_contexts_alone(
    provider: TracerProvider, exporter: InMemorySpanExporter, caplog: pytest.LogCaptureFixture
) -> None:
    import asyncio

    tel = _telemetry(provider)
    t0 = time.perf_counter_ns()
    handle = tel.request(make_request(), "req-1", stream=True)

    async def close_elsewhere() -> None:  # e.g. a stream's aclose() run by another task
        handle.finish(stream_response(), None, started_at_ns=t0)

    await asyncio.create_task(close_elsewhere())
    assert len(exporter.get_finished_spans()) == 2
    assert trace.get_current_span() is handle.span  # our own context still holds it; it ends with this task
    assert not [r for r in caplog.records if r.levelno >= logging.WARNING]  # no "Failed to detach context"


def test_finish_twice_and_broken_input_never_raise(provider: TracerProvider, exporter: InMemorySpanExporter) -> None:
    tel = _telemetry(provider, metrics=True)
    t0 = time.perf_counter_ns()
    handle = tel.request(make_request(), "req-1", stream=False)
    handle.finish(object(), None, started_at_ns=t0)  # type: ignore[arg-type]
    handle.finish(cached_response(), None, started_at_ns=t0)  # second call: ignored
    (span,) = exporter.get_finished_spans()  # ended despite the bad input, exactly once
    assert span.end_time is not None


def test_unsampled_request_costs_no_attributes(exporter: InMemorySpanExporter) -> None:
    from opentelemetry.sdk.trace.sampling import ALWAYS_OFF

    tp = TracerProvider(sampler=ALWAYS_OFF)
    tp.add_span_processor(SimpleSpanProcessor(exporter))
    _run(_telemetry(tp), fallback_response())
    assert exporter.get_finished_spans() == ()


def test_simulated_and_trimmed_flags(provider: TracerProvider, exporter: InMemorySpanExporter) -> None:
    r = Response(
        id="sim-1",
        content="x",
        model="sim-model",
        deployment="sim",
        provider="simulated",
        metadata=ResponseMetadata(request_id="r", latency_ms=1.0, simulated=True, trimmed_messages=3),
    )
    _run(_telemetry(provider), r)
    root, _ = _split(exporter)
    assert root.attributes["llm_manager.simulated"] is True
    assert root.attributes["llm_manager.trimmed_messages"] == 3
    assert "gen_ai.response.finish_reasons" not in root.attributes
    assert "llm_manager.cost_usd" not in root.attributes  # unknown cost is left out, never shown as 0


def test_nothing_heavy_is_imported_until_needed() -> None:
    code = (
        "import sys, time\n"
        "import llm_manager.telemetry as t\n"
        "loaded = lambda: sorted({m.split('.')[0] for m in sys.modules if m.startswith(('opentelemetry', 'prometheus'))})\n"
        "print(loaded())\n"
        "from tests.telemetry import make_request, fallback_response\n"
        "tel = t.Telemetry(t.TelemetryConfig())\n"
        "tel.request(make_request(), 'r', stream=False).finish(fallback_response(), None, started_at_ns=time.perf_counter_ns())\n"
        "print(loaded())\n"
        "tel.render_metrics()\n"
        "print(loaded())\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.split("\n")
    # Nothing on import or on the request path; prometheus_client only once metrics are scraped.
    assert out[:3] == ["[]", "[]", "['prometheus_client']"]


def test_missing_otel_extra_is_a_config_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "opentelemetry.exporter.otlp.proto.http.trace_exporter", None)
    with pytest.raises(ConfigError, match=r"llm-manager\[otel\]"):
        Telemetry(TelemetryConfig(otlp_endpoint="http://127.0.0.1:4318"))


class _Collector(BaseHTTPRequestHandler):
    received: list[tuple[str, str, bytes]] = []

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers["Content-Length"]))
        self.received.append((self.path, self.headers["Content-Type"], body))
        self.send_response(200)
        self.send_header("Content-Type", "application/x-protobuf")
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, format: str, *args: object) -> None:
        pass


def test_otlp_export_to_a_local_collector() -> None:
    from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest

    server = HTTPServer(("127.0.0.1", 0), _Collector)
    _Collector.received = []
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        endpoint = f"http://127.0.0.1:{server.server_port}"
        tel = Telemetry(TelemetryConfig(otlp_endpoint=endpoint, service_name="gw-test", metrics=False))
        assert tel.tracing
        _run(tel, fallback_response())
        tel.shutdown()  # flushes the batch
    finally:
        server.shutdown()
        server.server_close()
    (path, content_type, body), *_ = _Collector.received
    assert path == "/v1/traces"
    assert content_type == "application/x-protobuf"
    export = ExportTraceServiceRequest.FromString(body)
    (resource_spans,) = export.resource_spans
    resource = {a.key: a.value.string_value for a in resource_spans.resource.attributes}
    assert resource["service.name"] == "gw-test"
    names = sorted(s.name for ss in resource_spans.scope_spans for s in ss.spans)
    assert names == ["attempt backup", "attempt primary", "attempt primary", "chat gpt-4o-mini"]
