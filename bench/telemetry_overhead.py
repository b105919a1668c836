"""Telemetry's cost on the request path: microseconds per ``request()`` + ``finish()``, and import costs.

Run: ``.venv/bin/python -m bench.telemetry_overhead`` (about a minute; ``--quick`` for a smoke run).

Rows (each a median of several rounds of back-to-back requests, after a warm-up):

- ``off``: metrics and tracing off: the floor, the cost of the no-op object.
- ``metrics`` (the default config): Prometheus counters and histograms, tracing off, no OpenTelemetry loaded.
- ``metrics + tracing (SDK, no processor)``: spans built by the OpenTelemetry SDK and dropped.
- ``metrics + tracing (SDK, batch processor)``: as with OTLP configured, minus the network (which runs on the
  processor's own thread): spans are queued for a discarding exporter.

Two responses: a typical one (one attempt) and a fallback (three attempts, so four spans). The request logger is
left at its default level (off), as in a library with no logging configured.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from decimal import Decimal
from typing import Any

from llm_manager.telemetry import Telemetry, TelemetryConfig
from llm_manager.types import Attempt, Request, Response, ResponseMetadata, Usage


def _request() -> Request:
    return Request(prompt="Summarise this incident report", task="analysis", max_tokens=256, temperature=0.2)


def _response(attempts: list[Attempt]) -> Response:
    return Response(
        id="resp-1",
        content="Disk pressure caused the evictions",
        model="gpt-4o-mini-2024-07-18",
        deployment=attempts[-1].deployment,
        provider=attempts[-1].provider,
        finish_reason="stop",
        usage=Usage(prompt_tokens=120, completion_tokens=30, total_tokens=150, cost=Decimal("0.000042")),
        metadata=ResponseMetadata(
            request_id="req-1", latency_ms=230.0, retries=len(attempts) - 1, attempts=attempts, task="analysis"
        ),
    )


TYPICAL = [Attempt(deployment="primary", provider="openai", model="gpt-4o-mini", ok=True, latency_ms=230.0)]
FALLBACK = [
    Attempt(deployment="primary", provider="openai", model="gpt-4o-mini", ok=False, error_code="rate_limited",
            status_code=429, latency_ms=20.0, key="ab12cd34"),
    Attempt(deployment="primary", provider="openai", model="gpt-4o-mini", ok=False, error_code="model_unavailable",
            status_code=503, latency_ms=30.0, waited_ms=100.0, key="ab12cd34"),
    Attempt(deployment="backup", provider="anthropic", model="claude-3-5-haiku", ok=True, latency_ms=80.0),
]  # fmt: skip


def _sdk_provider(batch: bool) -> Any:
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import BatchSpanProcessor, SpanExporter, SpanExportResult

    class Discard(SpanExporter):
        def export(self, spans: Sequence[Any]) -> SpanExportResult:  # noqa: ARG002 - the interface's signature
            return SpanExportResult.SUCCESS

    provider = TracerProvider()
    if batch:
        provider.add_span_processor(BatchSpanProcessor(Discard(), max_queue_size=100_000))
    return provider


def _time_per_call_us(tel: Telemetry, response: Response, n: int, rounds: int) -> float:
    request = _request()
    per_round: list[float] = []
    for r in range(rounds + 1):
        t0 = time.perf_counter_ns()
        for _ in range(n):
            start = time.perf_counter_ns()
            tel.request(request, "req-1", stream=False).finish(response, None, started_at_ns=start)
        elapsed = time.perf_counter_ns() - t0
        if r:  # the first round is the warm-up
            per_round.append(elapsed / n / 1000)
    return statistics.median(per_round)


def _floor_us(n: int, rounds: int) -> float:
    """The loop and the two clock reads alone."""
    per_round = []
    for _ in range(rounds):
        t0 = time.perf_counter_ns()
        for _ in range(n):
            time.perf_counter_ns()
        per_round.append((time.perf_counter_ns() - t0) / n / 1000)
    return statistics.median(per_round)


def _import_ms(codes: list[str], runs: int) -> list[float]:
    """Fastest start-up of each snippet: runs interleaved, and the minimum, since noise only ever adds time.

    Byte code is cached (in a temporary directory, so the source tree stays clean) as it would be in an install:
    with ``PYTHONDONTWRITEBYTECODE`` every run would also time compiling our sources.
    """
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONDONTWRITEBYTECODE", "PYTHONPROFILEIMPORTTIME")}
    best = [float("inf")] * len(codes)
    with tempfile.TemporaryDirectory(prefix="llm-manager-bench-pyc-") as cache:
        env["PYTHONPYCACHEPREFIX"] = cache
        for _ in range(runs + 1):  # the first round compiles and caches
            for i, code in enumerate(codes):
                t0 = time.perf_counter()
                subprocess.run([sys.executable, "-c", code], check=True, env=env)
                best[i] = min(best[i], (time.perf_counter() - t0) * 1000)
    return best


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="Telemetry's cost per request, and its import costs.")
    parser.add_argument("--quick", action="store_true", help="few samples: a smoke run")
    quick = parser.parse_args(argv).quick
    n, rounds, import_runs = (1_000, 3, 3) if quick else (5_000, 7, 9)

    rows: list[tuple[str, Callable[[], Telemetry]]] = [
        ("off (metrics and tracing off)", lambda: Telemetry(TelemetryConfig(metrics=False))),
        ("metrics (default config, tracing off)", lambda: Telemetry(TelemetryConfig())),
        (
            "metrics + tracing (SDK, no processor)",
            lambda: Telemetry(TelemetryConfig(), tracer_provider=_sdk_provider(batch=False)),
        ),
        (
            "metrics + tracing (SDK, batch processor)",
            lambda: Telemetry(TelemetryConfig(), tracer_provider=_sdk_provider(batch=True)),
        ),
    ]
    floor = _floor_us(n, rounds)
    print(f"Python {sys.version.split()[0]}; {n:,} requests x {rounds} rounds per cell; loop floor {floor:.2f} µs\n")
    print("| telemetry | typical (1 attempt) µs | fallback (3 attempts) µs |")
    print("| :--- | ---: | ---: |")
    for label, build in rows:
        cells = []
        for attempts in (TYPICAL, FALLBACK):
            tel = build()
            cells.append(_time_per_call_us(tel, _response(attempts), n, rounds) - floor)
            tel.shutdown()
        print(f"| {label} | {cells[0]:.2f} | {cells[1]:.2f} |")

    base = "import llm_manager.telemetry"
    imports = [
        ("python -c pass", "pass"),
        ("import llm_manager", "import llm_manager"),
        ("import llm_manager.telemetry", base),
        ("+ prometheus_client", base + ", prometheus_client"),
        ("+ opentelemetry.trace (API)", base + ", opentelemetry.trace"),
        ("+ opentelemetry.sdk.trace", base + ", opentelemetry.sdk.trace"),
        ("+ OTLP/HTTP exporter (SDK incl.)", base + ", opentelemetry.sdk.trace, "
         "opentelemetry.exporter.otlp.proto.http.trace_exporter"),
    ]  # fmt: skip
    print(f"\n| start-up (fastest of {import_runs} fresh interpreters) | ms | added to llm_manager.telemetry, ms |")
    print("| :--- | ---: | ---: |")
    times = _import_ms([code for _, code in imports], import_runs)
    for i, ((label, _), ms) in enumerate(zip(imports, times, strict=True)):
        print(f"| {label} | {ms:.1f} | {ms - times[2]:+.1f} |" if i > 2 else f"| {label} | {ms:.1f} | |")


if __name__ == "__main__":
    main()
