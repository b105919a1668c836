"""Fixtures for the state backends: the one suite runs against memory and against a real Redis.

:func:`redis_url` (and the plain helper :func:`require_redis`) is reusable by any test that needs Redis: when
127.0.0.1:6379 does not answer, the test is skipped locally but FAILS in CI (``CI=true``), so CI can never go
green by silently skipping the Redis half.
"""

from __future__ import annotations

import os
import socket
import uuid
from collections.abc import AsyncIterator

import pytest

from llm_manager.state import MemoryState, StateBackend
from llm_manager.state.redis import RedisState

REDIS_HOST = "127.0.0.1"
REDIS_PORT = 6379
REDIS_URL = f"redis://{REDIS_HOST}:{REDIS_PORT}/0"
SKIP_MESSAGE = (
    f"Redis not reachable at {REDIS_HOST}:{REDIS_PORT}; start it with `redis-server --daemonize yes` to run these"
)

_reachable: bool | None = None


def _redis_answers() -> bool:
    """One PING over a raw socket (no client library, no event loop), cached for the session."""
    global _reachable
    if _reachable is None:
        try:
            with socket.create_connection((REDIS_HOST, REDIS_PORT), timeout=0.5) as sock:
                sock.sendall(b"PING\r\n")
                _reachable = sock.recv(64).startswith(b"+PONG")
        except OSError:
            _reachable = False
    return _reachable


def require_redis() -> str:
    """The Redis URL when Redis answers; otherwise skip the calling test, or fail it when ``CI=true``."""
    if _redis_answers():
        return REDIS_URL
    if os.environ.get("CI") == "true":
        pytest.fail(f"{SKIP_MESSAGE} (CI=true: Redis tests must run, not skip)", pytrace=False)
    pytest.skip(SKIP_MESSAGE)


@pytest.fixture
def redis_url() -> str:
    """URL of the test Redis (skip locally / fail in CI when it is down)."""
    return require_redis()


def unique_prefix() -> str:
    """A prefix no other test (or concurrent run) uses."""
    return f"llm-manager-test:{uuid.uuid4().hex}"


async def drop_prefix(state: RedisState) -> None:
    """Delete every key under ``state.prefix``."""
    client = state._client
    keys = [k async for k in client.scan_iter(match=f"{state.prefix}:*", count=1000)]
    if keys:
        await client.delete(*keys)


@pytest.fixture
async def redis_state(redis_url: str) -> AsyncIterator[RedisState]:
    """A :class:`RedisState` under a fresh random prefix, emptied and closed afterwards."""
    state = RedisState.from_url(redis_url, prefix=unique_prefix())
    try:
        yield state
    finally:
        await drop_prefix(state)
        await state.aclose()


@pytest.fixture(params=["memory", "redis"])
def backend(request: pytest.FixtureRequest) -> StateBackend:
    """Each backend in turn; the Redis one under a unique prefix that is deleted after the test.

    A plain fixture on purpose: it asks for ``redis_state`` only for the Redis parameter (so the memory half runs
    without Redis), and an async fixture cannot set up another async fixture from inside the running loop.
    """
    if request.param == "memory":
        return MemoryState()
    state: StateBackend = request.getfixturevalue("redis_state")
    return state
