"""Telemetry through a real manager: spans per request and attempt, parsed Prometheus text, nothing leaked."""

from __future__ import annotations

from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from prometheus_client.parser import text_string_to_metric_families

from llm_manager import LLMManager
from llm_manager.providers.simulated import SimulatedAdapter
from llm_manager.telemetry import Telemetry, TelemetryConfig
from tests.helpers import sim_settings

SECRET_PROMPT = "the launch code is 0000"


def traced() -> tuple[Telemetry, InMemorySpanExporter]:
    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    return Telemetry(TelemetryConfig(otlp_endpoint=None), tracer_provider=provider), exporter


async def test_fallback_request_is_one_span_with_a_child_per_attempt() -> None:
    tel, exporter = traced()
    settings = sim_settings({"primary": {"family": "gpt"}, "backup": {"family": "claude"}}, max_retries=0)
    async with LLMManager(settings, telemetry=tel) as llm:
        adapter = llm.adapter("primary")
        assert isinstance(adapter, SimulatedAdapter)
        adapter.push("503")
        r = await llm.generate(SECRET_PROMPT)
        body, content_type = await llm.metrics()
    spans = exporter.get_finished_spans()
    root = next(s for s in spans if s.parent is None)
    children = [s for s in spans if s.parent is not None and s.parent.span_id == root.context.span_id]
    assert root.attributes is not None and root.attributes["gen_ai.response.model"] == r.model
    assert root.attributes["gen_ai.usage.output_tokens"] == r.usage.completion_tokens
    assert len(children) == 2
    dump = " ".join(str(dict(s.attributes or {})) + str(s.events) for s in spans)
    assert SECRET_PROMPT not in dump and r.content not in dump
    families = {f.name: f for f in text_string_to_metric_families(body.decode())}
    requests = families["llm_manager_requests"]
    assert any(s.labels.get("deployment") == "backup" and s.value == 1 for s in requests.samples)
    assert "llm_manager_breaker_state" in families and content_type.startswith("text/plain")
