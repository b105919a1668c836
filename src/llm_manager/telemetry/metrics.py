"""Prometheus metrics of one manager, on a registry of its own.

=======================================================  ===========================  ================================
metric                                                   labels                       what
=======================================================  ===========================  ================================
``llm_manager_requests_total``                           deployment, task, status     finished requests; status is
                                                                                      ``ok``, ``cached``,
                                                                                      ``deduplicated`` or an error code
``llm_manager_attempts_total``                           deployment, outcome          provider attempts; outcome is
                                                                                      ``ok``, an error code, or
                                                                                      ``skipped:<code>``
``llm_manager_request_latency_seconds`` (histogram)      deployment, task             call to full answer
``llm_manager_time_to_first_chunk_seconds`` (histogram)  deployment                   streams only
``llm_manager_tokens_total``                             deployment, direction        input / output / cached
``llm_manager_cost_usd_total``                           deployment                   dollars, as a float
``llm_manager_cache_hits_total``                                                      answers from the response cache
``llm_manager_breaker_state`` (gauge)                    deployment, key              0 closed, 1 half-open, 2 open
``llm_manager_in_flight`` (gauge)                        deployment                   calls (answers, open streams)
                                                                                      in flight in this process
``llm_manager_max_concurrent`` (gauge)                   deployment                   its ``max_concurrent`` (only
                                                                                      deployments that set one)
``llm_manager_budget_spent_usd`` (gauge)                 budget
``llm_manager_budget_limit_usd`` (gauge)                 budget
``llm_manager_budget_used_ratio`` (gauge)                budget                       spent / limit
``llm_manager_budget_forecast_usd`` (gauge)              budget                       spend projected to the
                                                                                      period's end (ledger)
``llm_manager_budget_runs_out_timestamp_seconds``        budget                       when the projection reaches
(gauge)                                                                               the limit (absent: not within
                                                                                      the period)
``llm_manager_state_available`` (gauge)                  backend                      1 while the shared state
                                                                                      answers, 0 while not
``llm_manager_state_replicas`` (gauge)                                                replicas last seen alive
``llm_manager_state_failures_total``                                                  state operations that failed
                                                                                      or timed out
``llm_manager_state_pending_budget_counters`` (gauge)                                 counters with spend still to
                                                                                      be written to Redis
=======================================================  ===========================  ================================

Tokens and cost count only what providers were paid for: a cached or de-duplicated answer adds none (the call that
produced it already did), a hedge's cancelled loser adds its estimated cost. The cost counter is a float for
dashboards; the ledger is the exact record. Failed requests use ``deployment="none"`` when no single deployment is
to blame (every candidate failed, or none was called).

Why not ``prometheus_client.Counter`` and ``Histogram``: each ``inc()`` / ``observe()`` takes a lock and
re-validates, about 1 µs each, and a request touches eight series (``request()`` + ``finish()`` took 9 µs with
them, measured by ``bench/telemetry_overhead.py``). Here the request path adds to plain dicts on the event loop's
thread (3.5 µs for the whole ``request()`` + ``finish()``), and one collector turns them into metric families
when scraped. Writes come from the manager's event loop only; a scrape on another thread copies each dict first
(atomic under the GIL), so at worst it misses an observation still being recorded.

The gauges are filled at scrape time from snapshot functions registered with :meth:`Metrics.on_collect`.
``prometheus_client`` is imported at the first scrape (or when :attr:`Metrics.registry` is read), never on the
request path and never when this module is imported.
"""

from __future__ import annotations

import logging
from bisect import bisect_left
from collections.abc import Callable, Iterator, Mapping, Sequence
from typing import TYPE_CHECKING, Any, TypedDict

from llm_manager.telemetry.logs import error_code

if TYPE_CHECKING:
    from decimal import Decimal

    from prometheus_client import CollectorRegistry
    from prometheus_client.metrics_core import Metric

    from llm_manager.state.base import StateHealth
    from llm_manager.types import Attempt, Request, Response

__all__ = ["BREAKER_STATES", "LATENCY_BUCKETS", "TTFC_BUCKETS", "CollectSnapshot", "Metrics"]

_log = logging.getLogger("llm_manager.telemetry")

LATENCY_BUCKETS = (0.05, 0.1, 0.25, 0.5, 1.0, 2.0, 5.0, 10.0, 20.0, 30.0, 60.0, 120.0)
"""Seconds: from a cache hit (under 50 ms) to a long reasoning answer (two minutes)."""
TTFC_BUCKETS = (0.025, 0.05, 0.1, 0.25, 0.5, 0.75, 1.0, 1.5, 2.5, 5.0, 10.0, 30.0)
"""Seconds to the first streamed chunk: finer at the low end, where interactive use lives."""
BREAKER_STATES = {"closed": 0, "half_open": 1, "half-open": 1, "open": 2}
"""Gauge value of each circuit-breaker state."""
NO_DEPLOYMENT = "none"
"""``deployment`` label of a failed request no single deployment answered for."""


class CollectSnapshot(TypedDict, total=False):
    """What an :meth:`Metrics.on_collect` function returns; every key is optional."""

    breakers: Mapping[tuple[str, str | None], str]
    """``(deployment, key fingerprint or None) -> "closed" | "half_open" | "open"``."""
    budgets: Mapping[str, tuple[float | Decimal, float | Decimal]]
    """``budget name -> (spent_usd, limit_usd)``."""
    forecasts: Mapping[str, tuple[float, float | None]]
    """``budget:value -> (projected_usd, runs out at as epoch seconds or None)``: the last budget forecasts."""
    ledger: Mapping[str, float]
    """The spend ledger's row counts: ``written``, ``dropped``, ``dead_lettered`` (running totals) and ``pending``."""
    state: StateHealth
    """Whether the shared state answers, and how many replicas share it."""
    concurrency: Mapping[str, tuple[int, int | None]]
    """``deployment -> (calls in flight, max_concurrent or None)``, read live at the scrape."""


class _Histogram:
    """One histogram series: a count per bucket (not cumulative; the last is +Inf) and the sum."""

    __slots__ = ("counts", "total")

    def __init__(self, buckets: int) -> None:
        self.counts = [0] * (buckets + 1)
        self.total = 0.0

    def observe(self, bounds: tuple[float, ...], value: float) -> None:
        # ``le`` is inclusive: the first bound >= value is the bucket.
        self.counts[bisect_left(bounds, value)] += 1
        self.total += value


class Metrics:
    """The counters, histograms and scrape-time gauges of one manager.

    Args:
        registry: Where to register; default: a new ``CollectorRegistry``, never the process-wide default one (two
            managers, or a test and the code under test, would otherwise collide on metric names).
    """

    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        self._registry = registry
        if registry is not None:
            registry.register(_Collector(self))
        self.requests: dict[tuple[str, str, str], float] = {}
        """``(deployment, task, status) -> count``."""
        self.attempts: dict[tuple[str, str], float] = {}
        """``(deployment, outcome) -> count``."""
        self.tokens: dict[tuple[str, str], float] = {}
        """``(deployment, direction) -> tokens``."""
        self.cost: dict[str, float] = {}
        """``deployment -> dollars``."""
        self.cache_hits = 0
        self.latency: dict[tuple[str, str], _Histogram] = {}
        """``(deployment, task) -> histogram``."""
        self.ttfc: dict[str, _Histogram] = {}
        """``deployment -> histogram``."""
        self._snapshots: list[Callable[[], CollectSnapshot]] = []

    @property
    def registry(self) -> CollectorRegistry:
        """The registry the metrics are on, created (importing ``prometheus_client``) on first use.

        Recording never needs it, so a process that never serves ``/metrics`` (a CLI run) never imports the library.
        """
        if self._registry is None:
            try:
                from prometheus_client import CollectorRegistry
            except ImportError as exc:
                from llm_manager.errors import ConfigError

                raise ConfigError("metrics need prometheus-client. Fix: pip install prometheus-client") from exc
            registry = CollectorRegistry()
            registry.register(_Collector(self))
            self._registry = registry
        return self._registry

    def on_collect(self, fn: Callable[[], CollectSnapshot]) -> None:
        """Read ``fn()`` at every scrape for the breaker and budget gauges (sync, no I/O: a snapshot function)."""
        self._snapshots.append(fn)

    def render(self, accept: str | None = None) -> tuple[bytes, str]:
        """The exposition text and its content type; ``accept`` (a request's header) may ask for OpenMetrics."""
        registry = self.registry
        from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
        from prometheus_client.exposition import choose_encoder

        if accept:
            encode, content_type = choose_encoder(accept)
            return encode(registry), content_type
        return generate_latest(registry), CONTENT_TYPE_LATEST

    def record(
        self, request: Request, response: Response | None, error: BaseException | None, latency_s: float
    ) -> None:
        """Count one finished request (``latency_s`` is used when there is no response to read it from)."""
        attempts: Sequence[Attempt]
        if response is not None:
            md = response.metadata
            deployment = response.deployment
            task: str = md.task
            status = "cached" if md.cached else "deduplicated" if md.deduplicated else "ok"
            latency_s = md.latency_ms / 1000
            attempts = md.attempts
        else:
            deployment = getattr(error, "deployment", None) or NO_DEPLOYMENT
            task = request.task
            status = error_code(error)
            attempts = getattr(error, "attempts", None) or ()
        key = (deployment, task, status)
        self.requests[key] = self.requests.get(key, 0) + 1
        hist = self.latency.get((deployment, task))
        if hist is None:
            hist = self.latency[(deployment, task)] = _Histogram(len(LATENCY_BUCKETS))
        hist.observe(LATENCY_BUCKETS, latency_s)
        if response is not None and response.metadata.time_to_first_chunk_ms is not None:
            ttfc = self.ttfc.get(deployment)
            if ttfc is None:
                ttfc = self.ttfc[deployment] = _Histogram(len(TTFC_BUCKETS))
            ttfc.observe(TTFC_BUCKETS, response.metadata.time_to_first_chunk_ms / 1000)
        if status == "cached":
            self.cache_hits += 1
        if status in ("cached", "deduplicated"):
            return  # no provider was paid for this answer: its attempts, tokens and cost are someone else's
        for a in attempts:
            self._attempt(a)
        if response is not None:
            u = response.usage
            tokens = self.tokens
            for direction, n in (
                ("input", u.prompt_tokens),
                ("output", u.completion_tokens),
                ("cached", u.cached_tokens),
            ):
                if n:
                    tokens[(deployment, direction)] = tokens.get((deployment, direction), 0) + n
            if u.cost:
                self.cost[deployment] = self.cost.get(deployment, 0.0) + float(u.cost)

    def _attempt(self, a: Attempt) -> None:
        if a.ok:
            outcome = "ok"
        elif a.skipped:
            outcome = f"skipped:{a.error_code or 'unknown'}"
        else:
            outcome = a.error_code or "error"
        key = (a.deployment, outcome)
        self.attempts[key] = self.attempts.get(key, 0) + 1
        if a.cost:
            self.cost[a.deployment] = self.cost.get(a.deployment, 0.0) + float(a.cost)


class _Collector:
    """Turns a :class:`Metrics`' aggregates, and the registered snapshots, into metric families at scrape time."""

    def __init__(self, metrics: Metrics) -> None:
        self._m = metrics

    def describe(self) -> list[Metric]:
        # Names only: registering must neither read the snapshots nor depend on what was recorded so far.
        return [
            *self._counters(),
            *self._histograms(),
            *self._gauges(),
            *self._concurrency(),
            *self._ledger(),
            *self._forecasts(),
        ]

    def collect(self) -> Iterator[Metric]:
        m = self._m
        requests, attempts, tokens, cost, cache_hits = self._counters()
        # ``dict(...)`` copies in one step under the GIL: a request recorded meanwhile cannot break the iteration.
        for labels3, value in dict(m.requests).items():
            requests.add_metric(labels3, value)
        for labels2, value in dict(m.attempts).items():
            attempts.add_metric(labels2, value)
        for labels2, value in dict(m.tokens).items():
            tokens.add_metric(labels2, value)
        for deployment, value in dict(m.cost).items():
            cost.add_metric([deployment], value)
        cache_hits.add_metric([], m.cache_hits)
        latency, ttfc = self._histograms()
        for (deployment, task), hist in dict(m.latency).items():
            latency.add_metric([deployment, task], *_cumulative(LATENCY_BUCKETS, hist))
        for deployment, hist in dict(m.ttfc).items():
            ttfc.add_metric([deployment], *_cumulative(TTFC_BUCKETS, hist))
        yield from (requests, attempts, tokens, cost, cache_hits, latency, ttfc)
        yield from self._read_snapshots()

    @staticmethod
    def _counters() -> tuple[Any, Any, Any, Any, Any]:
        from prometheus_client.core import CounterMetricFamily as Counter

        return (
            Counter("llm_manager_requests", "Finished requests.", labels=["deployment", "task", "status"]),
            Counter("llm_manager_attempts", "Attempts at a deployment, by outcome.", labels=["deployment", "outcome"]),
            Counter("llm_manager_tokens", "Tokens paid for, by direction.", labels=["deployment", "direction"]),
            Counter(
                "llm_manager_cost_usd", "Cost in US dollars (approximate; the ledger is exact).", labels=["deployment"]
            ),
            Counter("llm_manager_cache_hits", "Answers served from the response cache.", labels=[]),
        )

    @staticmethod
    def _histograms() -> tuple[Any, Any]:
        from prometheus_client.core import HistogramMetricFamily as Histogram

        return (
            Histogram(
                "llm_manager_request_latency_seconds",
                "Time from the call to the full answer, retries and fallbacks included.",
                labels=["deployment", "task"],
            ),
            Histogram(
                "llm_manager_time_to_first_chunk_seconds",
                "Time from the call to the first streamed chunk.",
                labels=["deployment"],
            ),
        )

    @staticmethod
    def _gauges() -> tuple[Any, ...]:
        from prometheus_client.core import CounterMetricFamily as Counter
        from prometheus_client.core import GaugeMetricFamily as Gauge

        return (
            Gauge(
                "llm_manager_breaker_state",
                "Circuit breaker state: 0 closed, 1 half-open, 2 open.",
                labels=["deployment", "key"],
            ),
            Gauge("llm_manager_budget_spent_usd", "Spent in the budget's current window.", labels=["budget"]),
            Gauge("llm_manager_budget_limit_usd", "The budget's limit.", labels=["budget"]),
            Gauge("llm_manager_budget_used_ratio", "Spent / limit.", labels=["budget"]),
            Gauge("llm_manager_state_available", "1 while the shared state answers, else 0.", labels=["backend"]),
            Gauge("llm_manager_state_replicas", "Replicas sharing the state, as last seen alive.", labels=[]),
            Counter("llm_manager_state_failures", "State operations that failed or timed out.", labels=[]),
            Gauge(
                "llm_manager_state_pending_budget_counters",
                "Budget counters whose spend is still to be written to the shared state.",
                labels=[],
            ),
        )

    @staticmethod
    def _concurrency() -> tuple[Any, Any]:
        from prometheus_client.core import GaugeMetricFamily as Gauge

        return (
            Gauge("llm_manager_in_flight", "Calls (answers and open streams) in flight.", labels=["deployment"]),
            Gauge("llm_manager_max_concurrent", "The deployment's max_concurrent.", labels=["deployment"]),
        )

    @staticmethod
    def _ledger() -> tuple[Any, Any]:
        from prometheus_client.core import CounterMetricFamily as Counter
        from prometheus_client.core import GaugeMetricFamily as Gauge

        return (
            Counter(
                "llm_manager_ledger_rows",
                "Ledger rows by outcome: written, dropped (buffer overflow while the store failed), dead_lettered "
                "(refused by the store for their values, kept in llm_manager_ledger_dead_letters).",
                labels=["outcome"],
            ),
            Gauge("llm_manager_ledger_pending_rows", "Ledger rows recorded and not yet in the store.", labels=[]),
        )

    @staticmethod
    def _forecasts() -> tuple[Any, Any]:
        from prometheus_client.core import GaugeMetricFamily as Gauge

        return (
            Gauge(
                "llm_manager_budget_forecast_usd",
                "Spend projected from the ledger to the end of the budget's period.",
                labels=["budget"],
            ),
            Gauge(
                "llm_manager_budget_runs_out_timestamp_seconds",
                "When the projected spend reaches the budget's limit (Unix time); absent when it does not.",
                labels=["budget"],
            ),
        )

    def _read_snapshots(self) -> Iterator[Metric]:
        gauges = self._gauges()
        breaker, spent, limit, used = gauges[:4]
        rows, pending = self._ledger()
        in_flight, cap = self._concurrency()
        projected, runs_out = self._forecasts()
        ledger: dict[str, float] = {}
        for fn in list(self._m._snapshots):
            try:
                snap = fn()
                if "state" in snap:
                    _add_state(gauges[4:], snap["state"])
                for (deployment, key), state in (snap.get("breakers") or {}).items():
                    value = BREAKER_STATES.get(state)
                    if value is not None:
                        breaker.add_metric([deployment, key or ""], value)
                for name, (spent_usd, limit_usd) in (snap.get("budgets") or {}).items():
                    spent.add_metric([name], float(spent_usd))
                    limit.add_metric([name], float(limit_usd))
                    if limit_usd > 0:
                        used.add_metric([name], float(spent_usd) / float(limit_usd))
                _add_pairs(in_flight, cap, snap.get("concurrency"))
                _add_pairs(projected, runs_out, snap.get("forecasts"))
                for name, count in (snap.get("ledger") or {}).items():
                    ledger[name] = ledger.get(name, 0.0) + float(count)
            except Exception:  # a broken snapshot must not take /metrics down with it
                _log.debug("telemetry: a metrics snapshot function failed", exc_info=True)
        for outcome in ("written", "dropped", "dead_lettered"):
            if outcome in ledger:
                rows.add_metric([outcome], ledger[outcome])
        if "pending" in ledger:
            pending.add_metric([], ledger["pending"])
        yield from (*gauges, in_flight, cap, rows, pending, projected, runs_out)


def _add_pairs(first: Any, second: Any, values: Mapping[str, tuple[float, float | None]] | None) -> None:
    """``name -> (value, optional value)`` into two gauges labelled by name (the second only where given)."""
    for name, (one, other) in (values or {}).items():
        first.add_metric([name], one)
        if other is not None:
            second.add_metric([name], other)


def _add_state(families: Sequence[Any], health: StateHealth) -> None:
    available, replicas, failures, pending = families
    available.add_metric([health.backend], 1 if health.available else 0)
    replicas.add_metric([], health.replicas)
    failures.add_metric([], health.failures)
    pending.add_metric([], health.pending)


def _cumulative(bounds: tuple[float, ...], hist: _Histogram) -> tuple[list[tuple[str, float]], float]:
    counts = list(hist.counts)  # one copy, so buckets and count agree even if an observation lands meanwhile
    out: list[tuple[str, float]] = []
    running = 0
    for bound, n in zip((*(repr(b) for b in bounds), "+Inf"), counts, strict=True):
        running += n
        out.append((bound, running))
    return out, hist.total
