"""Prometheus metrics, read back through ``prometheus_client``'s own parser as a scraper would."""

from __future__ import annotations

import time
from decimal import Decimal

import pytest
from prometheus_client import REGISTRY, CollectorRegistry
from prometheus_client.parser import text_string_to_metric_families

from llm_manager.telemetry import CollectSnapshot, Telemetry, TelemetryConfig
from llm_manager.types import Attempt, Response
from tests.telemetry import (
    COMPLETION,
    KEY,
    PROMPT,
    all_failed_error,
    cached_response,
    fallback_response,
    make_request,
    stream_response,
)

Samples = dict[tuple[str, tuple[tuple[str, str], ...]], float]


def _finish(tel: Telemetry, response: Response | None, error: BaseException | None = None, **kw: object) -> None:
    tel.request(make_request(**kw), "req-1", stream=False).finish(
        response, error, started_at_ns=time.perf_counter_ns() - 3_000_000_000
    )


def _scrape(tel: Telemetry) -> Samples:
    body, content_type = tel.render_metrics()
    assert content_type.startswith("text/plain")
    return {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(body.decode())
        for s in family.samples
    }


def _get(samples: Samples, name: str, **labels: str) -> float | None:
    return samples.get((name, tuple(sorted(labels.items()))))


@pytest.fixture
def tel() -> Telemetry:
    return Telemetry(TelemetryConfig())


def test_fallback_counts_request_attempts_tokens_and_cost(tel: Telemetry) -> None:
    _finish(tel, fallback_response())
    m = _scrape(tel)
    assert _get(m, "llm_manager_requests_total", deployment="backup", task="analysis", status="ok") == 1
    assert _get(m, "llm_manager_attempts_total", deployment="primary", outcome="rate_limited") == 1
    assert _get(m, "llm_manager_attempts_total", deployment="primary", outcome="model_unavailable") == 1
    assert _get(m, "llm_manager_attempts_total", deployment="backup", outcome="ok") == 1
    assert _get(m, "llm_manager_tokens_total", deployment="backup", direction="input") == 120
    assert _get(m, "llm_manager_tokens_total", deployment="backup", direction="output") == 30
    assert _get(m, "llm_manager_tokens_total", deployment="backup", direction="cached") == 40
    assert _get(m, "llm_manager_cost_usd_total", deployment="backup") == pytest.approx(0.0042)
    assert _get(m, "llm_manager_cache_hits_total") == 0


def test_latency_histogram_uses_the_responses_latency(tel: Telemetry) -> None:
    _finish(tel, fallback_response())  # 200 ms, although started_at_ns says 3 s ago
    m = _scrape(tel)
    bucket = "llm_manager_request_latency_seconds_bucket"
    assert _get(m, bucket, deployment="backup", task="analysis", le="0.1") == 0
    assert _get(m, bucket, deployment="backup", task="analysis", le="0.25") == 1
    assert _get(m, bucket, deployment="backup", task="analysis", le="+Inf") == 1
    assert _get(m, "llm_manager_request_latency_seconds_sum", deployment="backup", task="analysis") == 0.2
    les = sorted(float(dict(labels)["le"]) for name, labels in m if name == bucket and dict(labels)["le"] != "+Inf")
    assert les[0] == 0.05 and les[-1] == 120.0


def test_stream_observes_time_to_first_chunk(tel: Telemetry) -> None:
    _finish(tel, stream_response())
    _finish(tel, fallback_response())  # not a stream: no TTFC sample
    m = _scrape(tel)
    assert _get(m, "llm_manager_time_to_first_chunk_seconds_count", deployment="primary") == 1
    assert _get(m, "llm_manager_time_to_first_chunk_seconds_bucket", deployment="primary", le="0.25") == 0
    assert _get(m, "llm_manager_time_to_first_chunk_seconds_bucket", deployment="primary", le="0.5") == 1
    assert _get(m, "llm_manager_time_to_first_chunk_seconds_count", deployment="backup") is None


def test_cached_and_deduplicated_answers_add_no_tokens_or_cost(tel: Telemetry) -> None:
    _finish(tel, cached_response())
    dedup = fallback_response(deduplicated=True)
    _finish(tel, dedup)
    m = _scrape(tel)
    assert _get(m, "llm_manager_requests_total", deployment="primary", task="analysis", status="cached") == 1
    assert _get(m, "llm_manager_requests_total", deployment="backup", task="analysis", status="deduplicated") == 1
    assert _get(m, "llm_manager_cache_hits_total") == 1
    assert not [k for k in m if k[0] in ("llm_manager_tokens_total", "llm_manager_cost_usd_total")]
    assert not [k for k in m if k[0] == "llm_manager_attempts_total"]  # the original call counted those


def test_failure_is_counted_by_code_with_the_elapsed_time(tel: Telemetry) -> None:
    _finish(tel, None, all_failed_error())
    m = _scrape(tel)
    assert (
        _get(m, "llm_manager_requests_total", deployment="none", task="analysis", status="all_candidates_failed") == 1
    )
    assert _get(m, "llm_manager_attempts_total", deployment="primary", outcome="authentication_failed") == 1
    assert _get(m, "llm_manager_attempts_total", deployment="backup", outcome="skipped:circuit_open") == 1
    assert _get(m, "llm_manager_attempts_total", deployment="local", outcome="timeout") == 1
    # No response to read latency from: the time since started_at_ns (3 s) is used.
    assert _get(m, "llm_manager_request_latency_seconds_bucket", deployment="none", task="analysis", le="2.0") == 0
    assert _get(m, "llm_manager_request_latency_seconds_bucket", deployment="none", task="analysis", le="5.0") == 1


def test_hedge_losers_cost_is_counted(tel: Telemetry) -> None:
    attempts = [
        Attempt(deployment="a", provider="openai", model="m1", ok=False, error_code="hedge_lost", hedge=True,
                latency_ms=6.0, cost=Decimal("0.25")),
        Attempt(deployment="backup", provider="gemini", model="m2", ok=True, hedge=True, latency_ms=4.0),
    ]  # fmt: skip
    _finish(tel, fallback_response(attempts=attempts, hedged=True))
    m = _scrape(tel)
    assert _get(m, "llm_manager_cost_usd_total", deployment="a") == 0.25
    assert _get(m, "llm_manager_attempts_total", deployment="a", outcome="hedge_lost") == 1


def test_on_collect_fills_breaker_and_budget_gauges(tel: Telemetry) -> None:
    def snapshot() -> CollectSnapshot:
        return {
            "breakers": {
                ("primary", "ab12cd34"): "open",
                ("primary", "ef56ab78"): "half_open",
                ("backup", None): "closed",
            },
            "budgets": {"daily": (Decimal("2.5"), 10.0), "unlimited": (1.0, 0.0)},
        }

    def broken() -> CollectSnapshot:
        raise RuntimeError("state store unavailable")

    tel.on_collect(broken)  # must not take the scrape down
    tel.on_collect(snapshot)
    m = _scrape(tel)
    assert _get(m, "llm_manager_breaker_state", deployment="primary", key="ab12cd34") == 2
    assert _get(m, "llm_manager_breaker_state", deployment="primary", key="ef56ab78") == 1
    assert _get(m, "llm_manager_breaker_state", deployment="backup", key="") == 0
    assert _get(m, "llm_manager_budget_spent_usd", budget="daily") == 2.5
    assert _get(m, "llm_manager_budget_limit_usd", budget="daily") == 10
    assert _get(m, "llm_manager_budget_used_ratio", budget="daily") == 0.25
    assert _get(m, "llm_manager_budget_used_ratio", budget="unlimited") is None  # no limit, no ratio


def test_snapshots_are_read_at_scrape_time(tel: Telemetry) -> None:
    state = {"breakers": {("primary", "k"): "closed"}}
    tel.on_collect(lambda: state)  # type: ignore[arg-type,return-value]
    assert _get(_scrape(tel), "llm_manager_breaker_state", deployment="primary", key="k") == 0
    state["breakers"][("primary", "k")] = "open"
    assert _get(_scrape(tel), "llm_manager_breaker_state", deployment="primary", key="k") == 2


def test_each_telemetry_owns_its_registry() -> None:
    a, b = Telemetry(TelemetryConfig()), Telemetry(TelemetryConfig())  # no duplicate-name clash
    _finish(a, fallback_response())
    assert _get(_scrape(b), "llm_manager_requests_total", deployment="backup", task="analysis", status="ok") is None
    assert not [m.name for m in REGISTRY.collect() if m.name.startswith("llm_manager")]  # global one untouched


def test_a_given_registry_is_used() -> None:
    from prometheus_client import generate_latest

    registry = CollectorRegistry()
    mine = Telemetry(TelemetryConfig(), registry=registry)
    assert mine.registry is registry
    _finish(mine, cached_response())
    assert b"llm_manager_cache_hits_total 1.0" in generate_latest(registry)


def test_openmetrics_on_request(tel: Telemetry) -> None:
    from prometheus_client.openmetrics.parser import text_string_to_metric_families as parse_openmetrics

    _finish(tel, fallback_response())
    body, content_type = tel.render_metrics(accept="application/openmetrics-text; version=1.0.0")
    assert content_type.startswith("application/openmetrics-text")
    names = {f.name for f in parse_openmetrics(body.decode())}
    assert {"llm_manager_requests", "llm_manager_request_latency_seconds"} <= names


def test_metrics_off() -> None:
    off = Telemetry(TelemetryConfig(metrics=False))
    _finish(off, fallback_response())
    assert off.registry is None
    assert off.render_metrics()[0] == b""


def test_no_text_or_key_in_metrics(tel: Telemetry) -> None:
    _finish(tel, fallback_response())
    _finish(tel, None, all_failed_error())
    body = tel.render_metrics()[0].decode()
    for secret in (PROMPT, COMPLETION, KEY):
        assert secret not in body
