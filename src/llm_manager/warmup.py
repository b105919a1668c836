"""Warm-up: open the connections every configured endpoint needs before the first request does.

A cold first request pays for name resolution, the TCP handshake and the TLS handshake before its prompt leaves
(tens to hundreds of milliseconds per provider). :func:`warm_up` pays them up front: one connection per origin
(deployments sharing a server share it), left in the manager's connection pool for the next request to take.
Deployments with ``warmup: request`` also get a one-token request (``max_tokens=1``) through the normal path, so
its cost is budgeted and recorded in the ledger like any other; the server-side model is then loaded too.
"""

from __future__ import annotations

import asyncio
import time
from decimal import Decimal
from typing import TYPE_CHECKING, Literal
from urllib.parse import urlsplit

from pydantic import BaseModel

from llm_manager.errors import LLMManagerError, ProviderTimeoutError

if TYPE_CHECKING:
    from llm_manager._http import Preconnected
    from llm_manager.manager import LLMManager
    from llm_manager.routing.planner import Deployment

__all__ = ["WARMUP_PROMPT", "WarmupResult", "warm_up"]

WARMUP_PROMPT = "ping"
"""The prompt of a warm-up request (answered with at most one token)."""


class WarmupResult(BaseModel):
    """What warming one deployment took (milliseconds)."""

    name: str
    provider: str
    mode: Literal["off", "connect", "request"]
    """The deployment's ``warmup`` setting."""
    ok: bool
    origin: str | None = None
    """``scheme://host:port`` connected to (``None``: an in-process model, or ``off``)."""
    reused: bool = False
    """A connection to this origin was already open (warmed before, or used by a request)."""
    dns_ms: float | None = None
    connect_ms: float | None = None
    """TCP and TLS handshakes, after name resolution."""
    connection_ms: float | None = None
    """The whole connection step (resolution included, or the time to find a pooled connection)."""
    request_ms: float | None = None
    """The one-token request, with ``warmup: request``."""
    cost: Decimal | None = None
    """What that request cost (USD), when its price is known."""
    error_code: str | None = None
    error: str | None = None
    simulated: bool = False


def origin_of(url: str) -> str | None:
    """``scheme://host:port`` of ``url`` (the pool's unit of connection), or ``None`` without a host."""
    parts = urlsplit(url)
    if not parts.hostname:
        return None
    port = parts.port or (443 if parts.scheme == "https" else 80)
    host = f"[{parts.hostname}]" if ":" in parts.hostname else parts.hostname
    return f"{parts.scheme}://{host}:{port}"


async def warm_up(llm: LLMManager, *, timeout_s: float = 5.0, requests: bool = True) -> list[WarmupResult]:
    """Warm every deployment of ``llm`` concurrently; one result per deployment, in config order."""
    deps = list(llm.deployments.values())
    by_origin: dict[str, str] = {}  # origin -> a URL on it
    for dep in deps:
        origin = _origin(dep)
        if origin is not None and dep.config.warmup != "off":
            by_origin.setdefault(origin, dep.endpoint.base_url)
    opened = dict(
        zip(
            by_origin, await asyncio.gather(*(_connect(llm, url, timeout_s) for url in by_origin.values())), strict=True
        )
    )
    results = [_connected(dep, opened) for dep in deps]
    asked = [r for r, dep in zip(results, deps, strict=True) if requests and r.ok and dep.config.warmup == "request"]
    await asyncio.gather(*(_request(llm, r, timeout_s) for r in asked))
    return results


def _origin(dep: Deployment) -> str | None:
    return None if dep.simulated else origin_of(dep.endpoint.base_url)


async def _connect(llm: LLMManager, url: str, timeout_s: float) -> Preconnected | LLMManagerError:
    try:
        async with asyncio.timeout(timeout_s):
            return await llm.http.preconnect(url)
    except LLMManagerError as exc:
        return exc
    except TimeoutError:
        return ProviderTimeoutError(f"no connection within {timeout_s:g}s", timeout_s=timeout_s)


def _connected(dep: Deployment, opened: dict[str, Preconnected | LLMManagerError]) -> WarmupResult:
    result = WarmupResult(
        name=dep.name, provider=dep.provider, mode=dep.config.warmup, ok=True, simulated=dep.simulated
    )
    origin = _origin(dep)
    if dep.config.warmup == "off" or origin is None:
        return result
    result.origin = origin
    outcome = opened[origin]
    if isinstance(outcome, LLMManagerError):
        result.ok, result.error_code, result.error = False, outcome.code, outcome.message
        return result
    result.reused = outcome.reused
    result.dns_ms, result.connect_ms, result.connection_ms = outcome.dns_ms, outcome.connect_ms, outcome.total_ms
    return result


async def _request(llm: LLMManager, result: WarmupResult, timeout_s: float) -> None:
    t0 = time.perf_counter()
    try:
        resp = await llm.generate(
            WARMUP_PROMPT,
            model=result.name,
            fallback=False,
            max_tokens=1,
            cache=False,
            timeout_s=timeout_s,
            metadata={"purpose": "warmup"},
        )
    except LLMManagerError as exc:
        result.ok, result.error_code, result.error = False, exc.code, exc.message
    else:
        result.cost = resp.usage.cost
    result.request_ms = round((time.perf_counter() - t0) * 1000, 3)
