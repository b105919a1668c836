"""``state.on_unavailable`` and the per-operation deadline, against a private Redis that is stopped, hung
(SIGSTOP) and restarted (never the shared one on 6379)."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Literal

import pytest
from redis.exceptions import ConnectionError as RedisConnectionError

from llm_manager.errors import StateUnavailableError
from llm_manager.state.base import BreakerPolicy, Lease
from llm_manager.state.guarded import GuardedState
from llm_manager.state.redis import RedisState
from tests.state.conftest import unique_prefix
from tests.state.private_redis import PrivateRedis, private_redis

TIMEOUT_S = 0.2
BEAT_S = 0.2
POLICY = BreakerPolicy(failure_threshold=2, cooldown_s=30)
EXPIRE = time.time() + 3600
USD = 10**9


@pytest.fixture
async def server(tmp_path: Path) -> AsyncIterator[PrivateRedis]:
    with private_redis(tmp_path) as srv:
        yield srv


def guarded(url: str, prefix: str, policy: Literal["fail_closed", "fail_open"]) -> GuardedState:
    inner = RedisState.from_url(url, prefix=prefix)
    return GuardedState(inner, policy=policy, timeout_s=TIMEOUT_S, heartbeat_s=BEAT_S)


async def until(predicate: object, timeout_s: float = 5.0) -> float:
    """Wait until ``predicate()`` is true; return how long it took."""
    assert callable(predicate)
    t0 = time.monotonic()
    while not predicate():
        assert time.monotonic() - t0 < timeout_s, "condition not reached in time"
        await asyncio.sleep(0.02)
    return time.monotonic() - t0


async def test_fail_closed_refuses_at_once_when_redis_is_stopped_and_recovers(server: PrivateRedis) -> None:
    state = guarded(server.url, unique_prefix(), "fail_closed")
    try:
        assert (await state.check()).available
        await state.budget_reserve("b", 5 * USD, 100 * USD, expire_at=EXPIRE)
        server.stop()
        t0 = time.monotonic()
        with pytest.raises(StateUnavailableError) as info:
            await state.limit_acquire("m", time.time(), rpm=10, tpm=None, tokens=1)
        assert time.monotonic() - t0 < 1.0
        assert info.value.retry_after == BEAT_S
        assert not state.health().available
        # Already known to be down: no wait at all for the next ones.
        t0 = time.monotonic()
        for _ in range(20):
            with pytest.raises(StateUnavailableError):
                await state.breaker_allow("m", time.time(), POLICY)
        assert time.monotonic() - t0 < 0.1
        # What happened after a request never fails it: recorded locally, and the spend is kept for Redis.
        await state.breaker_record("m", time.time(), POLICY, ok=False, probe=False)
        await state.budget_settle("b", 5 * USD, 3 * USD, expire_at=EXPIRE)
        assert state.health().pending == 1
        server.start()  # empty: what Redis knew is gone, what was owed to it is not
        await until(lambda: state.health().available)
        assert state.health().pending == 0
        assert await state.budget_view(["b"]) == {"b": (3 * USD, 0)}
        assert await state.limit_acquire("m", time.time(), rpm=10, tpm=None, tokens=1) == 0.0
    finally:
        await state.aclose()


async def test_a_hung_redis_costs_one_short_deadline_then_nothing(server: PrivateRedis) -> None:
    state = guarded(server.url, unique_prefix(), "fail_closed")
    try:
        await state.check()
        server.hang()
        t0 = time.monotonic()
        with pytest.raises(StateUnavailableError):
            await state.cache_get("k", time.time())
        # The slow operation makes the watcher ping on its own connection; that times out too: unavailable, and
        # the operation is cut. About 2.5 timeouts, not redis-py's or the pool's seconds-long waits.
        assert time.monotonic() - t0 < 3 * TIMEOUT_S + 0.5
        assert not state.health().available
        t0 = time.monotonic()
        with pytest.raises(StateUnavailableError):
            await state.cache_get("k", time.time())
        assert time.monotonic() - t0 < 0.05
        server.resume()
        await until(lambda: state.health().available)
        assert await state.cache_get("k", time.time()) is None
    finally:
        server.resume()
        await state.aclose()


async def test_an_operation_cut_at_any_point_of_its_way_ends_at_once(server: PrivateRedis) -> None:
    """The watcher's cut lands wherever the operation happens to be (taking a pooled connection, writing, reading):
    none may swallow it. With redis-py's default socket timeout, its write went through ``asyncio.wait_for``, which
    on Python 3.11 drops a cancellation that arrives as the write completes: the operation then waited for
    redis-py's own 5 s read timeout (twice, with the retry) instead of ending when Redis was found hung."""
    state = guarded(server.url, unique_prefix(), "fail_closed")
    try:
        await state.check()
        for steps in range(12):  # the cut after 0, 1, 2, … turns of the event loop: each point on the way
            await until(lambda: state.health().available)
            await state.cache_get("warm", time.time())
            server.hang()
            t0 = time.monotonic()
            op = asyncio.ensure_future(state.cache_get("k", time.time()))
            for _ in range(steps):
                await asyncio.sleep(0)
            state._lost(None)  # what the watcher does when its probe of a hung Redis times out
            with pytest.raises(StateUnavailableError):
                await op
            assert time.monotonic() - t0 < 0.5, f"cut after {steps} turns: the operation went on"
            server.resume()
    finally:
        server.resume()
        await state.aclose()


async def test_fail_open_divides_limits_by_the_replicas_alive(server: PrivateRedis) -> None:
    prefix = unique_prefix()
    a, b, c = (guarded(server.url, prefix, "fail_open") for _ in range(3))
    try:
        for s in (a, b, c):
            await s.check()
        await until(lambda: all(s.health().replicas == 3 for s in (a, b, c)))
        await c.aclose()  # a replica shutting down withdraws at once
        await until(lambda: a.health().replicas == 2)
        server.stop()
        admitted = 0
        for _ in range(20):
            if await a.limit_acquire("m", time.time(), rpm=10, tpm=None, tokens=0) == 0.0:
                admitted += 1
        assert admitted == 5  # RPM 10 shared by 2 live replicas
        assert not a.health().available
        # Breakers and the cache work locally meanwhile.
        assert (await a.breaker_allow("m", time.time(), POLICY)).allowed
        await a.cache_set("k", b"v", time.time(), ttl_s=60, max_entries=10)
        assert await a.cache_get("k", time.time()) == b"v"
    finally:
        for s in (a, b, c):
            await s.aclose()


async def test_fail_open_budget_share_and_reconciliation(server: PrivateRedis) -> None:
    prefix = unique_prefix()
    a, b = guarded(server.url, prefix, "fail_open"), guarded(server.url, prefix, "fail_open")
    try:
        await a.check()
        await b.check()
        await until(lambda: a.health().replicas == 2)
        limit = 100 * USD
        ok, total = await a.budget_reserve("day", 40 * USD, limit, expire_at=EXPIRE)
        assert ok and total == 40 * USD
        await a.budget_settle("day", 40 * USD, 20 * USD, expire_at=EXPIRE)  # Redis: spent 20
        held_in_redis = await a.budget_reserve("day", 10 * USD, limit, expire_at=EXPIRE)
        assert held_in_redis == (True, 30 * USD)
        server.stop()
        # Local share: (100 - 30 last seen) / 2 replicas = 35.
        assert (await a.budget_reserve("day", 30 * USD, limit, expire_at=EXPIRE))[0]
        refused, seen = await a.budget_reserve("day", 6 * USD, limit, expire_at=EXPIRE)
        assert not refused and seen == 60 * USD
        await a.budget_settle("day", 30 * USD, 25 * USD, expire_at=EXPIRE)  # the local hold: 25 really spent
        await a.budget_settle("day", 10 * USD, 7 * USD, expire_at=EXPIRE)  # the Redis hold, settled while away
        server.start()
        # A Redis without persistence came back empty; only what this replica owed it is there now.
        await until(lambda: a.health().available)
        assert await a.budget_view(["day"]) == {"day": (32 * USD, 0)}
    finally:
        await a.aclose()
        await b.aclose()


async def test_a_redis_restart_keeps_the_counter_when_redis_kept_it(server: PrivateRedis) -> None:
    """A hold reserved before an outage and settled during it is released in Redis afterwards, not leaked."""
    state = guarded(server.url, unique_prefix(), "fail_closed")
    try:
        await state.budget_reserve("day", 10 * USD, 100 * USD, expire_at=EXPIRE)
        server.hang()
        await state.budget_settle("day", 10 * USD, 4 * USD, expire_at=EXPIRE)
        await until(lambda: not state.health().available, timeout_s=2)
        server.resume()
        await until(lambda: state.health().available)
        assert await state.budget_view(["day"]) == {"day": (4 * USD, 0)}
    finally:
        server.resume()
        await state.aclose()


async def test_a_settlement_redis_applied_but_never_answered_counts_once(server: PrivateRedis) -> None:
    """The connection drops after Redis applied a settle and before its answer came back: the replica owes it,
    writes it when Redis answers again, and Redis, which has it already, counts it once."""
    state = guarded(server.url, unique_prefix(), "fail_closed")
    try:
        lease = Lease("req-1", 600)
        await state.budget_reserve("day", 10 * USD, 100 * USD, expire_at=EXPIRE, lease=lease)
        applied = state.inner.budget_settle

        async def answer_lost(*args: object, **kwargs: object) -> int:
            await applied(*args, **kwargs)  # type: ignore[arg-type]
            raise RedisConnectionError("Connection closed by server.")

        state.inner.budget_settle = answer_lost  # type: ignore[method-assign]
        await state.budget_settle("day", 10 * USD, 4 * USD, expire_at=EXPIRE, hold="req-1")
        assert state.health().pending == 1
        state.inner.budget_settle = applied  # type: ignore[method-assign]
        await until(lambda: state.health().available and state.health().pending == 0)
        assert await state.budget_view(["day"]) == {"day": (4 * USD, 0)}
    finally:
        await state.aclose()


async def test_a_slow_operation_is_not_an_outage_while_redis_answers(server: PrivateRedis) -> None:
    """The only pooled connection is busy for 3 timeouts (a BLPOP): the next operation waits for it, the watcher's
    probe on its own connection is answered, so the operation is neither cut nor refused."""
    inner = RedisState.from_url(server.url, prefix=unique_prefix(), max_connections=1)
    state = GuardedState(inner, policy="fail_closed", timeout_s=TIMEOUT_S, heartbeat_s=BEAT_S)
    try:
        await state.check()
        busy = asyncio.ensure_future(inner._client.blpop(["nothing"], timeout=3 * TIMEOUT_S))
        await asyncio.sleep(0.05)
        t0 = time.monotonic()
        ok, _ = await state.budget_reserve("b", USD, 10 * USD, expire_at=EXPIRE)
        waited = time.monotonic() - t0
        await busy
        assert ok and waited > 2 * TIMEOUT_S
        assert state.health().available
        assert await state.budget_view(["b"]) == {"b": (0, USD)}  # reserved once: nothing was cut and retried
    finally:
        await state.aclose()
