"""Resilience and cache costs: ``python -m bench.resilience [--redis URL]``.

Measures, in one run:
- a cache hit through ``generate()`` from the in-process cache, and from Redis;
- what breaker + limiter + key-pool bookkeeping adds per request in-process (same instant simulated model,
  bookkeeping off vs on);
- how many attempts a 1,000-request run makes at a primary that is down (goal: the failure threshold plus
  probes, not 1,000).
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import time
from typing import Any

from llm_manager import LLMManager
from llm_manager.config import load_settings
from llm_manager.providers.simulated import SimulatedAdapter

INSTANT = {"latency_ms": 0, "first_token_ms": 0, "tokens_per_s": 1e9}


def _settings(models: dict[str, Any], **extra: Any) -> Any:
    spec = {n: {"provider": "simulated", "simulate": INSTANT, **m} for n, m in models.items()}
    # The ledger is measured on its own (accounting()); elsewhere it would only add the same cost to both sides.
    extra.setdefault("ledger", {"enabled": False})
    return load_settings({"models": spec, **extra}, env={})


async def _per_call_us(llm: LLMManager, n: int, **kw: Any) -> float:
    """Median over 5 rounds of the mean µs per ``generate()``."""
    for _ in range(min(n, 500)):
        await llm.generate("q", **kw)
    rounds = []
    for _ in range(5):
        t0 = time.perf_counter()
        for _ in range(n):
            await llm.generate("q", **kw)
        rounds.append((time.perf_counter() - t0) / n * 1e6)
    return statistics.median(rounds)


async def cache_hit(redis_url: str | None, n: int) -> float:
    extra: dict[str, Any] = {"cache": {"enabled": True}}
    if redis_url:
        extra["state"] = {"redis_url": redis_url, "prefix": f"bench-{time.time_ns()}"}
    async with LLMManager(_settings({"gpt": {"family": "gpt"}}, **extra)) as llm:
        await llm.generate("q")
        us = await _per_call_us(llm, n)
        if redis_url:
            await llm.state.cache_clear()
    return us


async def bookkeeping(n: int) -> tuple[float, float]:
    """µs per generate() without and with breaker + rpm/tpm limiter + a 3-key pool (cache off in both)."""
    off = _settings(
        {"gpt": {"family": "gpt"}}, cache={"enabled": False}, routing={"circuit_breaker": {"enabled": False}}
    )
    on = _settings(
        {"gpt": {"family": "gpt", "rpm": 10**9, "tpm": 10**12, "api_keys": "k1,k2,k3"}}, cache={"enabled": False}
    )
    async with LLMManager(off) as a, LLMManager(on) as b:
        base = await _per_call_us(a, n)
        full = await _per_call_us(b, n)
    return base, full


async def accounting(n: int, store_url: str) -> dict[str, float]:
    """Ledger + budgets: the request-path work timed directly (reserve/settle two budgets; build and buffer the
    ledger row), and end to end with the default batch writer running in the same process."""
    from datetime import UTC, datetime

    from llm_manager.routing.planner import plan

    common: dict[str, Any] = {"cache": {"enabled": False}, "routing": {"circuit_breaker": {"enabled": False}}}
    priced = {"family": "gpt", "input_price_per_mtok": "2.5", "output_price_per_mtok": "10"}
    budgets = [
        {"name": "day", "limit_usd": "1000000", "period": "daily"},
        {"name": "per-user", "scope": "user", "limit_usd": "1000000", "period": "monthly"},
    ]
    off = _settings({"gpt": priced}, **common)
    on = _settings({"gpt": priced}, store={"url": store_url}, ledger={"enabled": True}, budgets=budgets, **common)
    out: dict[str, float] = {}
    async with LLMManager(off) as a, LLMManager(on) as b:
        out["off"] = await _per_call_us(a, n, user="alice")
        out["on"] = await _per_call_us(b, n, user="alice")
        req = b.request("q", user="alice")
        resp = await b.generate(req)
        p = plan(req, b.settings, b.deployments, b.stats)
        now = datetime.now(UTC)
        t0 = time.perf_counter()
        for _ in range(n):
            holds = (await b.accounting.before(req, p))[1]
            await b.accounting.after(holds, resp, None)
        out["budgets"] = (time.perf_counter() - t0) / n * 1e6
        t0 = time.perf_counter()
        for _ in range(n):
            await b.accounting.record(req, "bench", now, resp, None)
        out["ledger"] = (time.perf_counter() - t0) / n * 1e6
        assert b.ledger is not None
        pending = b.ledger.pending
        t0 = time.perf_counter()
        await b.ledger.flush()
        out["per_row"] = (time.perf_counter() - t0) / max(pending, 1) * 1e6
    return out


async def outage(n: int) -> tuple[int, int]:
    """Attempts at a dead primary over ``n`` requests, and the breaker's failure threshold."""
    threshold = 5
    s = _settings(
        {"primary": {"family": "gpt"}, "backup": {"family": "claude"}},
        cache={"enabled": False},
        routing={
            "max_retries": 2,
            "backoff": {"base_s": 0},
            "circuit_breaker": {"failure_threshold": threshold, "cooldown_s": 60},
        },
    )
    async with LLMManager(s) as llm:
        primary = llm.adapter("primary")
        assert isinstance(primary, SimulatedAdapter)
        primary.push(*["503"] * (n * 3))
        for i in range(n):
            await llm.generate(f"q{i}")
        return primary.calls, threshold


async def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--redis", default="redis://127.0.0.1:6379/0")
    ap.add_argument("--quick", action="store_true")
    args = ap.parse_args()
    n = 2000 if args.quick else 20000
    mem = await cache_hit(None, n)
    try:
        red = await cache_hit(args.redis, n // 10)
    except Exception as exc:  # Redis is optional for this benchmark
        red = float("nan")
        print(f"(Redis cache skipped: {exc})")
    base, full = await bookkeeping(n)
    calls, threshold = await outage(1000)
    import tempfile

    with tempfile.TemporaryDirectory() as tmp:
        acc = await accounting(n, f"sqlite:///{tmp}/bench.db")
    print("| measurement | result | goal |")
    print("| --- | --- | --- |")
    print(f"| cache hit through `generate()`, in-process | {mem:.1f} µs | ≤ 50 µs |")
    print(f"| cache hit through `generate()`, Redis | {red / 1000:.2f} ms | ≤ 1 ms |")
    print(f"| `generate()` on an instant model, bookkeeping off | {base:.1f} µs | |")
    print(f"| same with breaker + RPM/TPM limiter + 3-key pool | {full:.1f} µs (+{full - base:.1f} µs) | ≤ +50 µs |")
    print(
        f"| attempts at a dead primary over 1,000 requests | {calls} (threshold {threshold}) | ≤ threshold + probes |"
    )
    print(f"| request path: reserve + settle two budgets | {acc['budgets']:.1f} µs | |")
    print(f"| request path: build and buffer the ledger row | {acc['ledger']:.1f} µs | |")
    print(f"| request path: cost + ledger + budgets together | {acc['budgets'] + acc['ledger']:.1f} µs | ≤ 50 µs |")
    print(f"| ledger batch write (background, SQLite WAL), per row | {acc['per_row']:.1f} µs | off the request path |")
    print(
        f"| end to end, ledger writer included, sequential calls | +{acc['on'] - acc['off']:.1f} µs "
        f"({acc['off']:.1f} → {acc['on']:.1f} µs) | |"
    )


if __name__ == "__main__":
    asyncio.run(main())
