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
    print("| measurement | result | goal |")
    print("| --- | --- | --- |")
    print(f"| cache hit through `generate()`, in-process | {mem:.1f} µs | ≤ 50 µs |")
    print(f"| cache hit through `generate()`, Redis | {red / 1000:.2f} ms | ≤ 1 ms |")
    print(f"| `generate()` on an instant model, bookkeeping off | {base:.1f} µs | |")
    print(f"| same with breaker + RPM/TPM limiter + 3-key pool | {full:.1f} µs (+{full - base:.1f} µs) | ≤ +50 µs |")
    print(
        f"| attempts at a dead primary over 1,000 requests | {calls} (threshold {threshold}) | ≤ threshold + probes |"
    )


if __name__ == "__main__":
    asyncio.run(main())
