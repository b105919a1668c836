"""What a manager can tell about itself: its models, the route a request would take, reachability, and the live
status behind ``status()`` and ``/metrics`` (breakers, limits, calls in flight, keys, budgets, ledger, cache).

None of this is on the request path; :class:`~llm_manager.manager.LLMManager` delegates its ``models``, ``route``,
``health``, ``status`` and ``metrics`` here.
"""

from __future__ import annotations

import asyncio
import logging
import time
from decimal import Decimal
from typing import TYPE_CHECKING, Any, Literal

from pydantic import BaseModel

from llm_manager._redact import url_with_password_masked
from llm_manager.errors import LLMManagerError

if TYPE_CHECKING:
    from llm_manager.manager import LLMManager
    from llm_manager.routing.keypool import KeyEntry
    from llm_manager.routing.planner import Deployment
    from llm_manager.routing.stats import DeploymentStats
    from llm_manager.telemetry import CollectSnapshot

__all__ = ["HealthResult", "Introspection", "ModelInfo"]

log = logging.getLogger("llm_manager")


class ModelInfo(BaseModel):
    """A configured deployment, as ``models()`` lists it."""

    name: str
    provider: str
    model: str
    family: str | None
    context_window: int
    input_price_per_mtok: Decimal | None
    output_price_per_mtok: Decimal | None
    tasks: list[str]
    """Task types whose chain includes this deployment, with its position (``analysis#1`` = primary)."""
    keys: int
    simulated: bool
    base_url: str
    kind: Literal["chat", "embedding"] = "chat"
    """``embedding``: returns vectors (``embed()``), never answers chat requests."""
    dimensions: int | None = None
    """Embedding models: the size of their vectors."""


class HealthResult(BaseModel):
    """Reachability of one deployment."""

    name: str
    provider: str
    ok: bool
    latency_ms: float
    error_code: str | None = None
    error: str | None = None
    simulated: bool = False


class Introspection:
    """The read-only views of one manager."""

    def __init__(self, llm: LLMManager) -> None:
        self.llm = llm
        self.snapshot: CollectSnapshot = {"breakers": {}, "budgets": {}}
        """What a Prometheus scrape reads (scrapes are synchronous), refreshed whenever the status is computed."""

    def models(self) -> list[ModelInfo]:
        """See :meth:`LLMManager.models <llm_manager.manager.LLMManager.models>`."""
        from llm_manager.embedding_profiles import embedding_spec

        positions: dict[str, list[str]] = {}
        for task in self.llm.settings.task_names():
            for i, name in enumerate(self.llm.settings.chain(task)):
                positions.setdefault(name, []).append(f"{task}#{i + 1}")
        return [
            ModelInfo(
                name=name,
                provider=d.provider,
                model=d.endpoint.model,
                family=d.config.resolved_family,
                context_window=d.endpoint.context_window,
                input_price_per_mtok=d.price_in,
                output_price_per_mtok=d.price_out,
                tasks=positions.get(name, []),
                keys=len(d.config.keys),
                simulated=d.simulated,
                base_url=url_with_password_masked(d.endpoint.base_url),
                kind=d.config.resolved_kind,
                dimensions=spec.dimensions if (spec := embedding_spec(d.config)) is not None else None,
            )
            for name, d in self.llm.deployments.items()
        ]

    def route(self, task: str = "general", **prefs: Any) -> list[str]:
        """See :meth:`LLMManager.route <llm_manager.manager.LLMManager.route>`."""
        from llm_manager.routing.planner import plan

        request = self.llm.request(prefs.pop("prompt", "route preview"), task=task, **prefs)
        p = plan(request, self.llm.settings, self.llm.deployments, self.llm.stats)
        return [d.name for d in p.candidates] + [f"{a.deployment} (skipped)" for a in p.skipped]

    async def health(self, timeout_s: float = 5.0) -> list[HealthResult]:
        """See :meth:`LLMManager.health <llm_manager.manager.LLMManager.health>`."""
        return list(await asyncio.gather(*(self._probe(d, timeout_s) for d in self.llm.deployments.values())))

    async def _probe(self, dep: Deployment, timeout_s: float) -> HealthResult:
        t0 = time.perf_counter()
        try:
            async with asyncio.timeout(timeout_s):
                live = [e for e in self.llm.pools[dep.name].entries if e.usable(self.llm.wall_clock())]
                await dep.adapter.probe(api_key=live[0].key if live else None)
        except (LLMManagerError, TimeoutError) as exc:
            code = exc.code if isinstance(exc, LLMManagerError) else "timeout"
            msg = exc.message if isinstance(exc, LLMManagerError) else f"no answer within {timeout_s:g}s"
            return HealthResult(
                name=dep.name,
                provider=dep.provider,
                ok=False,
                error_code=code,
                error=msg,
                latency_ms=round((time.perf_counter() - t0) * 1000, 2),
                simulated=dep.simulated,
            )
        return HealthResult(
            name=dep.name,
            provider=dep.provider,
            ok=True,
            simulated=dep.simulated,
            latency_ms=round((time.perf_counter() - t0) * 1000, 2),
        )

    async def status(self) -> dict[str, Any]:
        """Breakers (with cooldown left), rate-limit room, key-pool health, cache size and observed latency."""
        now = self.llm.wall_clock()
        policy = self.llm.admission.policy
        out: dict[str, Any] = {}
        for name, dep in self.llm.deployments.items():
            pool = self.llm.pools[name]
            keys: list[KeyEntry | None] = [*pool.entries] or [None]
            bkeys = [self.llm.admission.breaker_key(dep, k) for k in keys]
            views = await self.llm.state.breaker_view(bkeys, now, policy)
            rpm_left, tpm_left = (None, None)
            if dep.config.rpm is not None or dep.config.tpm is not None:
                rpm_left, tpm_left = await self.llm.state.limit_view(name, now, rpm=dep.config.rpm, tpm=dep.config.tpm)
            out[name] = {
                **_stats_dict(self.llm.stats.get(name), dep),
                "breakers": {
                    (k.fp if k else "-"): {
                        "state": v.state,
                        "failures": v.failures,
                        "calls": v.calls,
                        "cooldown_left_s": round(v.cooldown_left_s, 3),
                    }
                    for k, v in zip(keys, (views[b] for b in bkeys), strict=True)
                },
                "limits": {
                    "rpm": dep.config.rpm,
                    "tpm": dep.config.tpm,
                    "rpm_available": _round(rpm_left),
                    "tpm_available": _round(tpm_left),
                    "max_concurrent": dep.config.max_concurrent,
                    "in_flight": self.llm.admission.in_flight.get(name, 0),
                },
                "keys": pool.snapshot(now),
                "recovery": self.llm.executor.shared.recovery.snapshot(name),
            }
        budgets = await self._budget_status()
        # Prometheus scrapes are synchronous: they read this snapshot, refreshed whenever status is computed.
        self.snapshot = {
            "breakers": {(n, k): b["state"] for n, d in out.items() for k, b in d["breakers"].items()},
            "budgets": {
                f"{b['budget']}:{b['value']}": (float(b["spent_usd"]) + float(b["reserved_usd"]), float(b["limit_usd"]))
                for b in budgets
            },
        }
        return {
            "source": self.llm.settings.source,
            "strategy": self.llm.settings.routing.strategy,
            "state": "redis" if self.llm.settings.state.redis_url else "memory",
            "shared_state": self.llm.state.health().as_dict(),
            "cache": {
                "enabled": self.llm.cache is not None,
                "entries": await self.llm.state.cache_size() if self.llm.cache is not None else 0,
                "max_entries": self.llm.settings.cache.max_entries,
                "ttl_s": self.llm.settings.cache.ttl_s,
                "semantic": await self.llm.semantic.view() if self.llm.semantic is not None else {"enabled": False},
            },
            "budgets": budgets,
            "ledger": self._ledger_status(),
            "in_flight_shared": len(self.llm.inflight),
            "queued": len(self.llm.executor.gate),
            "deployments": out,
        }

    def _ledger_status(self) -> dict[str, Any]:
        cfg = self.llm.settings.ledger
        out: dict[str, Any] = {"enabled": cfg.enabled}
        if self.llm.ledger is not None:
            out.update(self.llm.ledger.stats())
        return out

    def collect(self) -> CollectSnapshot:
        """What a metrics scrape reads: the snapshot of the last status, and the ledger's counts and the calls in
        flight as they are now."""
        busy = self.llm.admission.in_flight
        concurrency = {n: (busy.get(n, 0), d.config.max_concurrent) for n, d in self.llm.deployments.items()}
        if self.llm.ledger is None:
            return {**self.snapshot, "concurrency": concurrency}
        stats = self.llm.ledger.stats()
        counts = {k: float(stats[k]) for k in ("written", "dropped", "dead_lettered", "pending")}
        return {**self.snapshot, "ledger": counts, "concurrency": concurrency}

    async def metrics(self) -> tuple[bytes, str]:
        """See :meth:`LLMManager.metrics <llm_manager.manager.LLMManager.metrics>`."""
        llm = self.llm
        try:
            await llm.status()
            if llm.budgets and llm.settings.ledger.enabled:  # forecasts are ledger queries: reused for 60 s
                await llm._forecasts().forecast(max_age_s=60.0)
        except Exception as exc:
            log.warning("metrics: gauges not refreshed: %s: %s", type(exc).__name__, exc)
        return self.llm.telemetry.render_metrics()

    async def _budget_status(self) -> list[dict[str, Any]]:
        return await self.llm.budgets.status()


def _round(v: float | None) -> float | None:
    return None if v is None else round(v, 2)


def _stats_dict(st: DeploymentStats, dep: Deployment) -> dict[str, Any]:
    return {
        "provider": dep.provider,
        "model": dep.endpoint.model,
        "calls": st.calls,
        "failures": st.failures,
        "latency_ms": round(st.latency_ms, 2) if st.latency_ms is not None else None,
        "time_to_first_chunk_ms": round(st.ttfc_ms, 2) if st.ttfc_ms is not None else None,
        "last_error": st.last_error,
        "simulated": dep.simulated,
    }
