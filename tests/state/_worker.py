"""A separate OS process for ``test_redis_multiprocess`` and ``test_budgets``: runs state operations sent as JSON lines.

Usage: ``python -m tests.state._worker REDIS_URL PREFIX``. It answers ``{"ready": true}`` once connected, then one
JSON line per command, and exits at end of input. Real ``time.time()`` is the clock, as in production.
"""

from __future__ import annotations

import asyncio
import json
import random
import sys
import time
from collections.abc import Sequence
from typing import Any

from llm_manager.state import BreakerPolicy, StateBackend
from llm_manager.state.redis import RedisState


async def budget_sequences(
    state: StateBackend, key: str, *, limit: int, estimate: int, costs: Sequence[int], seed: int, expire_at: float
) -> list[tuple[int, int]]:
    """One reserve → provider call → settle sequence per entry of ``costs``, all started at once.

    The "provider call" sleeps 0 to 2 ms (seeded), so reservations and settlements interleave differently from run
    to run, and in memory too. Returns ``(spent + reserved after the reservation, actual cost)`` for each admitted
    sequence; refused ones call nothing and settle nothing.
    """
    rng = random.Random(seed)
    delays = [rng.random() * 0.002 for _ in costs]

    async def one(actual: int, delay: float) -> tuple[int, int] | None:
        admitted, total = await state.budget_reserve(key, estimate, limit, expire_at=expire_at)
        if not admitted:
            return None
        await asyncio.sleep(delay)
        await state.budget_settle(key, estimate, actual, expire_at=expire_at)
        return total, actual

    results = await asyncio.gather(*(one(c, d) for c, d in zip(costs, delays, strict=True)))
    return [r for r in results if r is not None]


async def run(state: RedisState, cmd: dict[str, Any]) -> dict[str, Any]:
    op = cmd["op"]
    policy = BreakerPolicy(**cmd.get("policy", {}))
    if op == "fail":
        states = [
            await state.breaker_record(cmd["key"], time.time(), policy, ok=False, probe=False) for _ in range(cmd["n"])
        ]
        return {"state": states[-1]}
    if op == "allow":
        verdict = await state.breaker_allow(cmd["key"], time.time(), policy)
        return {"allowed": verdict.allowed, "state": verdict.state, "retry_in_s": verdict.retry_in_s}
    if op == "burst":
        waits = await asyncio.gather(
            *(state.limit_acquire(cmd["key"], time.time(), rpm=cmd["rpm"], tpm=None, tokens=0) for _ in range(cmd["n"]))
        )
        return {"admitted": sum(1 for w in waits if w == 0.0), "at": time.time()}
    if op == "budget":
        admitted = await budget_sequences(
            state,
            cmd["key"],
            limit=cmd["limit"],
            estimate=cmd["estimate"],
            costs=cmd["costs"],
            seed=cmd["seed"],
            expire_at=time.time() + 3600,
        )
        return {"admitted": admitted}
    if op == "budget_view":
        spent, reserved = (await state.budget_view([cmd["key"]]))[cmd["key"]]
        return {"spent": spent, "reserved": reserved}
    if op == "cache_set":
        await state.cache_set(cmd["key"], cmd["value"].encode(), time.time(), ttl_s=60, max_entries=100)
        return {}
    if op == "cache_get":
        value = await state.cache_get(cmd["key"], time.time())
        return {"value": None if value is None else value.decode()}
    raise ValueError(f"unknown op {op!r}")


async def main(url: str, prefix: str) -> None:
    state = RedisState.from_url(url, prefix=prefix)
    loop = asyncio.get_running_loop()
    try:
        await state.cache_size()  # connect before saying ready, so commands start without delay
        print(json.dumps({"ready": True}), flush=True)
        while line := await loop.run_in_executor(None, sys.stdin.readline):
            print(json.dumps(await run(state, json.loads(line))), flush=True)
    finally:
        await state.aclose()


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1], sys.argv[2]))
