"""A lost budget counter is seeded from the ledger (issue 18: after a Redis restart the counter said $0.536 of a
period whose ledger held $0.9104). The store is the source of truth: when a counter is missing — Redis restarted
or flushed, or a fresh process with in-process state — it starts from the ledger's spend of its period."""

from __future__ import annotations

import asyncio
import time
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from llm_manager import BudgetExceededError, LLMManager
from llm_manager.config import load_settings
from llm_manager.errors import StateUnavailableError
from tests.helpers import instant, priced_model
from tests.state.private_redis import private_redis

LIMIT = Decimal("0.1")


def settings(store: Path, redis_url: str | None = None) -> Any:
    raw: dict[str, Any] = {
        "models": {"dear": priced_model(instant())},
        "budgets": [
            {"name": "all", "limit_usd": str(LIMIT), "soft_limit_pct": None},
            {"name": "per-user", "scope": "user", "limit_usd": "1", "soft_limit_pct": None},
        ],
        "store": {"url": f"sqlite:///{store}"},
        "cache": {"enabled": False},
    }
    if redis_url is not None:
        raw["state"] = {"redis_url": redis_url, "prefix": "seed-test", "timeout_s": 0.5, "heartbeat_s": 0.2}
    return load_settings(raw, env={})


async def spend_until_refused(llm: LLMManager, tag: str) -> Decimal:
    """Requests until the budget refuses; a refusal for want of Redis (a pooled connection that died with the
    restart) is retried after a moment, as a client retries a 503."""
    spent = Decimal(0)
    deadline = time.monotonic() + 20
    for i in range(100):
        while True:
            try:
                r = await llm.generate(f"{tag} {i}", user="alice", max_tokens=5)
            except BudgetExceededError:
                return spent
            except StateUnavailableError:
                assert time.monotonic() < deadline, "Redis did not come back"
                await asyncio.sleep(0.1)
                continue
            break
        spent += r.usage.cost or Decimal(0)
    raise AssertionError("the budget never refused")


async def status(llm: LLMManager) -> dict[str, Decimal]:
    rows = await llm.budgets.status({"user": ["alice"]})
    return {r["budget"]: Decimal(r["spent_usd"]) for r in rows}


async def until_available(llm: LLMManager) -> None:
    """Until an operation succeeds: the first one after the restart finds the old connection closed, and the
    replica refuses (fail_closed) until its next heartbeat reaches the new server."""
    deadline = time.monotonic() + 10
    while True:
        try:
            await llm.state.budget_view(["probe"])
            return
        except StateUnavailableError:
            assert time.monotonic() < deadline, "Redis did not come back"
            await asyncio.sleep(0.05)


async def test_a_redis_restart_mid_period_keeps_the_spend(tmp_path: Path) -> None:
    with private_redis(tmp_path) as redis:
        async with LLMManager(settings(tmp_path / "store.db", redis.url)) as llm:
            first = [await llm.generate(f"before {i}", user="alice", max_tokens=5) for i in range(3)]
            before = sum((r.usage.cost or Decimal(0) for r in first), Decimal(0))
            assert await status(llm) == {"all": before, "per-user": before}
            redis.restart()  # no persistence: every counter is gone
            await until_available(llm)
            # The next reservation finds the counters missing and seeds them from the ledger (this process's rows
            # not yet written are flushed first).
            more = await spend_until_refused(llm, "after")
            # Never below the truth. (It can be above: a settlement Redis applied while the replica, meeting the
            # restart, cut it as unanswered, is written again when Redis is back: docs/operations.md.)
            counted = await status(llm)
            assert min(counted.values()) >= before + more, counted
        assert before + more <= LIMIT  # the restart did not hand out the period's budget a second time
        assert more < LIMIT - before + Decimal("0.02")


async def test_a_flushed_counter_is_seeded_again(tmp_path: Path) -> None:
    with private_redis(tmp_path) as redis:
        async with LLMManager(settings(tmp_path / "store.db", redis.url)) as llm:
            spent = await spend_until_refused(llm, "q")
            import redis as redis_py

            client = redis_py.Redis.from_url(redis.url)
            try:
                client.flushall()  # the private server: nobody else's keys
            finally:
                client.close()
            with pytest.raises(BudgetExceededError):
                await llm.generate("again", user="alice", max_tokens=5)
            assert (await status(llm))["all"] == spent


async def test_a_fresh_process_with_in_process_state_starts_from_the_ledger(tmp_path: Path) -> None:
    store = tmp_path / "store.db"
    async with LLMManager(settings(store)) as llm:
        spent = await spend_until_refused(llm, "q")
    async with LLMManager(settings(store)) as llm:  # a restart: in-process counters start empty
        with pytest.raises(BudgetExceededError):
            await llm.generate("again", user="alice", max_tokens=5)
        assert await status(llm) == {"all": spent, "per-user": spent}
