"""RedisState across processes and under concurrency, plus what only Redis has (real expiry, lazy import).

Two worker processes (``tests/state/_worker.py``) share one prefix and must see ONE breaker, ONE rate-limit budget
and ONE cache; they use the real clock, as production does.
"""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest

from llm_manager.errors import ConfigError
from llm_manager.state import BreakerPolicy
from llm_manager.state.redis import RedisState
from tests.state.conftest import require_redis, unique_prefix

ROOT = Path(__file__).resolve().parents[2]


class Worker:
    """One ``tests.state._worker`` process driven over pipes."""

    def __init__(self, url: str, prefix: str) -> None:
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "tests.state._worker", url, prefix],
            cwd=ROOT,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )

    def send(self, **cmd: Any) -> None:
        assert self.proc.stdin is not None
        self.proc.stdin.write(json.dumps(cmd) + "\n")
        self.proc.stdin.flush()

    def receive(self) -> dict[str, Any]:
        assert self.proc.stdout is not None
        line = self.proc.stdout.readline()
        assert line, f"worker exited with {self.proc.wait()}"
        reply: dict[str, Any] = json.loads(line)
        return reply

    def call(self, **cmd: Any) -> dict[str, Any]:
        self.send(**cmd)
        return self.receive()

    def close(self) -> None:
        assert self.proc.stdin is not None
        self.proc.stdin.close()
        try:
            self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:  # pragma: no cover - only when a worker hangs
            self.proc.kill()
            self.proc.wait()
        assert self.proc.stdout is not None
        self.proc.stdout.close()


@contextmanager
def worker_pair() -> Iterator[tuple[Worker, Worker]]:
    """Two processes on one fresh prefix (both started at once: start-up dominates the cost), whose keys are
    deleted afterwards."""
    url = require_redis()
    prefix = unique_prefix()
    a, b = Worker(url, prefix), Worker(url, prefix)
    try:
        assert a.receive() == {"ready": True}
        assert b.receive() == {"ready": True}
        yield a, b
    finally:
        a.close()
        b.close()
        import redis

        client = redis.Redis.from_url(url)
        try:
            keys = list(client.scan_iter(match=f"{prefix}:*"))
            if keys:
                client.delete(*keys)
        finally:
            client.close()


@pytest.fixture(scope="module")
def workers() -> Iterator[tuple[Worker, Worker]]:
    with worker_pair() as pair:
        yield pair


def test_processes_share_one_breaker(workers: tuple[Worker, Worker]) -> None:
    a, b = workers
    policy = {"failure_threshold": 3, "cooldown_s": 60.0}
    assert b.call(op="allow", key="breaker", policy=policy)["allowed"]
    assert a.call(op="fail", key="breaker", n=3, policy=policy) == {"state": "open"}
    verdict = b.call(op="allow", key="breaker", policy=policy)
    assert (verdict["allowed"], verdict["state"]) == (False, "open")
    assert 59.0 < verdict["retry_in_s"] <= 60.0


def test_processes_share_one_rate_limit_budget(workers: tuple[Worker, Worker]) -> None:
    a, b = workers
    start = time.time()
    # Both bursts are in flight at once: each process sends 10 concurrent acquisitions.
    a.send(op="burst", key="budget", n=10, rpm=10)
    b.send(op="burst", key="budget", n=10, rpm=10)
    ra, rb = a.receive(), b.receive()
    assert max(ra["at"], rb["at"]) - start < 1.0  # within the same second: far less than one refill (6 s)
    assert ra["admitted"] + rb["admitted"] == 10


def test_processes_share_one_cache(workers: tuple[Worker, Worker]) -> None:
    a, b = workers
    assert b.call(op="cache_get", key="answer") == {"value": None}
    a.call(op="cache_set", key="answer", value="forty-two")
    assert b.call(op="cache_get", key="answer") == {"value": "forty-two"}


async def test_concurrent_acquisitions_admit_exactly_the_budget(redis_state: RedisState) -> None:
    now = time.time()
    waits = await asyncio.gather(
        *(redis_state.limit_acquire("burst", now, rpm=50, tpm=None, tokens=0) for _ in range(200))
    )
    assert sum(1 for w in waits if w == 0.0) == 50
    assert all(w > 0.0 for w in waits if w != 0.0)


async def test_concurrent_breaker_probes_admit_exactly_the_probe_count(redis_state: RedisState) -> None:
    policy = BreakerPolicy(failure_threshold=1, cooldown_s=10.0, half_open_probes=3)
    assert await redis_state.breaker_record("b", 1000.0, policy, ok=False, probe=False) == "open"
    verdicts = await asyncio.gather(*(redis_state.breaker_allow("b", 1010.0, policy) for _ in range(50)))
    assert sum(v.probe for v in verdicts) == 3


# -- Redis-only behaviour ---------------------------------------------------------------------------------------


async def test_idle_keys_expire(redis_state: RedisState) -> None:
    client, prefix = redis_state._client, redis_state.prefix
    policy = BreakerPolicy(window_s=10.0, cooldown_s=30.0, failure_threshold=2)
    now = time.time()
    await redis_state.breaker_record("b", now, policy, ok=False, probe=False)
    assert 0 < await client.pttl(f"{prefix}:br:b") <= 60_000  # closed: max(2 windows, 60 s)
    await redis_state.breaker_record("b", now, policy, ok=False, probe=False)
    assert 3_600_000 < await client.pttl(f"{prefix}:br:b") <= 3_630_000  # open: cooldown + 1 h
    await redis_state.limit_acquire("l", now, rpm=60, tpm=None, tokens=0)
    assert 60_000 < await client.pttl(f"{prefix}:rl:l") <= 61_000  # 1 s to refill, then 60 s
    await redis_state.cache_set("c", b"v", now, ttl_s=5, max_entries=10)
    assert 0 < await client.pttl(f"{prefix}:c:v:c") <= 5_000
    assert 0 < await client.pttl(f"{prefix}:c:lru") <= 5_000


async def test_cache_entries_expire_for_real(redis_state: RedisState) -> None:
    now = time.time()
    await redis_state.cache_set("short", b"v", now, ttl_s=0.1, max_entries=10)
    assert await redis_state.cache_get("short", now) == b"v"
    await asyncio.sleep(0.2)
    # Same injected `now`: only the real PX expiry can have removed it (and the LRU set, which lives no longer).
    assert await redis_state._client.exists(f"{redis_state.prefix}:c:v:short") == 0
    assert await redis_state.cache_get("short", now) is None
    assert await redis_state.cache_size() == 0


async def test_floats_survive_the_lua_boundary(redis_state: RedisState) -> None:
    now = 1_700_000_000.123456
    policy = BreakerPolicy(failure_threshold=1, cooldown_s=0.123456789)
    await redis_state.breaker_record("f", now, policy, ok=False, probe=False)
    verdict = await redis_state.breaker_allow("f", now + 0.1, policy)
    assert verdict.retry_in_s == now + policy.cooldown_s - (now + 0.1)  # bit for bit what Python computes
    assert (await redis_state.breaker_view(["f"], now, policy))["f"].opened_at == now


def test_importing_the_module_does_not_import_redis() -> None:
    code = "import sys, llm_manager.state, llm_manager.state.redis; print('redis' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


def test_missing_redis_package_is_a_config_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "redis", None)  # makes `import redis` raise ImportError
    with pytest.raises(ConfigError, match=r"llm-manager\[redis\]"):
        RedisState.from_url("redis://127.0.0.1:6379/0")
