"""Per-operation cost of the state backends (the breaker, limiter and budget calls made around every provider call).

Run ``.venv/bin/python -m bench.state_ops [REDIS_URL]``. Prints µs per operation for MemoryState and ms per
operation for RedisState (sequential round trips, then 64 in flight at once); the Redis part is skipped when the
server does not answer. Budgets are timed as a budgeted call uses them: one ``budget_reserve`` before the call and
one ``budget_settle`` after it (each alone, then the pair).
"""

from __future__ import annotations

import asyncio
import sys
import time
import uuid
from collections.abc import Awaitable, Callable

from llm_manager.state import BreakerPolicy, MemoryState, StateBackend
from llm_manager.state.base import BUDGET_MAX
from llm_manager.state.redis import RedisState

POLICY = BreakerPolicy(failure_threshold=1_000_000, window_s=60.0)
T0 = 1_700_000_000.0
RPM = 10**9  # large enough that every acquisition is admitted: we time the bookkeeping, not the refusals
TPM = 10**12
ESTIMATE = 2 * 10**7  # 2 cents in nanodollars; the limit is so high that every reservation is admitted
ACTUAL = 13 * 10**6
EXPIRE_AT = time.time() + 86_400.0


def operations(state: StateBackend) -> dict[str, Callable[[float], Awaitable[object]]]:
    """The four hot-path calls, each on its own key so they do not interfere."""
    return {
        "breaker_allow": lambda now: state.breaker_allow("deployment-a", now, POLICY),
        "breaker_record": lambda now: state.breaker_record("deployment-a", now, POLICY, ok=True, probe=False),
        "limit_acquire": lambda now: state.limit_acquire("deployment-a", now, rpm=RPM, tpm=TPM, tokens=500),
        "limit_adjust": lambda now: state.limit_adjust("deployment-a", now, tpm=TPM, delta_tokens=-120),
    }


def budget_operations(state: StateBackend) -> dict[str, Callable[[float], Awaitable[object]]]:
    """Reserve, settle, and the pair a budgeted call makes (on a key of their own)."""

    async def pair(_now: float) -> None:
        await state.budget_reserve("user=alice", ESTIMATE, BUDGET_MAX, expire_at=EXPIRE_AT)
        await state.budget_settle("user=alice", ESTIMATE, ACTUAL, expire_at=EXPIRE_AT)

    return {
        "budget_reserve": lambda _now: state.budget_reserve("user=alice", ESTIMATE, BUDGET_MAX, expire_at=EXPIRE_AT),
        "budget_settle": lambda _now: state.budget_settle("user=alice", ESTIMATE, ACTUAL, expire_at=EXPIRE_AT),
        "reserve+settle": pair,
    }


async def sequential(op: Callable[[float], Awaitable[object]], n: int) -> float:
    """Seconds per call, one call after another."""
    for i in range(min(n, 1000)):  # warm up (script loading, connections, caches)
        await op(T0 + i * 1e-6)
    start = time.perf_counter()
    for i in range(n):
        await op(T0 + i * 1e-6)
    return (time.perf_counter() - start) / n


async def concurrent(op: Callable[[float], Awaitable[object]], n: int, width: int) -> float:
    """Seconds per call (wall time / calls) with ``width`` calls in flight at once."""
    start = time.perf_counter()
    for batch in range(n // width):
        await asyncio.gather(*(op(T0 + (batch * width + i) * 1e-6) for i in range(width)))
    return (time.perf_counter() - start) / (n // width * width)


async def bench_memory() -> None:
    ops = operations(MemoryState())
    total = 0.0
    print("MemoryState (µs per op, 200k sequential calls each)")
    for name, op in ops.items():
        per = await sequential(op, 200_000)
        total += per
        print(f"  {name:<15} {per * 1e6:6.2f} µs")
    print(f"  {'all four':<15} {total * 1e6:6.2f} µs")
    for name, op in budget_operations(MemoryState()).items():
        print(f"  {name:<15} {await sequential(op, 200_000) * 1e6:6.2f} µs")


async def bench_redis(url: str) -> None:
    state = RedisState.from_url(url, prefix=f"llm-manager-bench:{uuid.uuid4().hex}")
    try:
        await state.cache_size()
    except Exception as exc:  # redis' ConnectionError is not an OSError
        print(f"RedisState skipped: {url} not reachable ({exc})")
        await state.aclose()
        return
    try:
        print(f"RedisState at {url} (ms per op: 3000 sequential calls | 6400 calls, 64 in flight)")
        total = 0.0
        for name, op in operations(state).items():
            seq = await sequential(op, 3000)
            conc = await concurrent(op, 6400, 64)
            total += seq
            print(f"  {name:<15} {seq * 1e3:6.3f} ms | {conc * 1e3:6.3f} ms")
        print(f"  {'all four':<15} {total * 1e3:6.3f} ms sequential")
        for name, op in budget_operations(state).items():
            seq = await sequential(op, 3000)
            conc = await concurrent(op, 6400, 64)
            print(f"  {name:<15} {seq * 1e3:6.3f} ms | {conc * 1e3:6.3f} ms")
    finally:
        client = state._client
        keys = [k async for k in client.scan_iter(match=f"{state.prefix}:*")]
        if keys:
            await client.delete(*keys)
        await state.aclose()


async def main() -> None:
    await bench_memory()
    await bench_redis(sys.argv[1] if len(sys.argv) > 1 else "redis://127.0.0.1:6379/0")


if __name__ == "__main__":
    asyncio.run(main())
