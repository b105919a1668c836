"""Budgets through the manager: hard limits reject before any call, soft limits downgrade, concurrency is exact."""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
import uuid
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from llm_manager import BudgetExceededError, LLMManager
from llm_manager.config import load_settings
from llm_manager.providers.simulated import SimulatedAdapter
from tests.helpers import FakeClock, instant

ROOT = Path(__file__).resolve().parents[2]
PRICED = {"input_price_per_mtok": "1000", "output_price_per_mtok": "2000"}  # dear, so cents add up fast
CHEAP = {"input_price_per_mtok": "10", "output_price_per_mtok": "20"}


def settings(budgets: list[dict[str, Any]], *, state: dict[str, Any] | None = None) -> Any:
    raw: dict[str, Any] = {
        "models": {
            "dear": {"provider": "simulated", "family": "gpt", "simulate": instant(), **PRICED},
            "cheap": {"provider": "simulated", "family": "claude", "simulate": instant(), **CHEAP},
        },
        "budgets": budgets,
        "cache": {"enabled": False},
    }
    if state:
        raw["state"] = state
    return load_settings(raw, env={})


def calls(llm: LLMManager, name: str) -> int:
    a = llm.adapter(name)
    assert isinstance(a, SimulatedAdapter)
    return a.calls


async def test_hard_limit_rejects_before_any_provider_call() -> None:
    async with LLMManager(settings([{"name": "tiny", "limit_usd": "0.0001", "soft_limit_pct": None}])) as llm:
        with pytest.raises(BudgetExceededError) as ei:
            await llm.generate("hello", max_tokens=500)
        assert calls(llm, "dear") == 0 and calls(llm, "cheap") == 0
    err = ei.value
    assert err.budget == "tiny" and err.limit_usd == Decimal("0.0001") and err.resets_at is not None
    assert err.code == "budget_exceeded"


async def test_reservation_is_released_to_the_real_cost() -> None:
    # max_tokens=500 reserves ~$1 on "dear"; the answer is ~30 tokens, so the rest goes back to the budget.
    async with LLMManager(settings([{"name": "d", "limit_usd": "2", "soft_limit_pct": None}])) as llm:
        for _ in range(5):
            await llm.generate("hello", max_tokens=500)
        row = (await llm.budgets.status())[0]
    assert Decimal(row["reserved_usd"]) == 0 and Decimal(row["spent_usd"]) < Decimal("0.5")


async def test_200_concurrent_requests_overshoot_by_at_most_one_request() -> None:
    limit = Decimal("1")
    async with LLMManager(settings([{"name": "one-dollar", "limit_usd": str(limit), "soft_limit_pct": None}])) as llm:

        async def one(i: int) -> Decimal:
            try:
                r = await llm.generate(f"q{i}", model="dear", fallback=False, max_tokens=40)
                return r.usage.cost or Decimal(0)
            except BudgetExceededError:
                return Decimal(0)

        costs = await asyncio.gather(*(one(i) for i in range(200)))
        spent = Decimal((await llm.budgets.status())[0]["spent_usd"])
    assert spent == sum(costs)
    assert spent <= limit + max(costs)
    assert sum(1 for c in costs if c) < 200  # the limit did stop some


async def test_soft_limit_routes_to_the_cheapest_model() -> None:
    # The first request reserves ~21% of the limit (under the 30% soft limit) and really costs ~13%;
    # the second would reach ~34%, so it and the rest go to the cheapest model.
    budgets = [{"name": "soft", "limit_usd": "0.5", "soft_limit_pct": 30}]
    async with LLMManager(settings(budgets)) as llm:
        first = await llm.generate("q", task="general", max_tokens=50)
        later = [await llm.generate(f"q{i}", task="general", max_tokens=50) for i in range(3)]
    assert first.deployment == "dear"  # the task table's choice while under the soft limit
    assert {r.deployment for r in later} == {"cheap"}


async def test_per_user_budgets_are_separate() -> None:
    budgets = [{"name": "per-user", "scope": "user", "limit_usd": "0.05", "soft_limit_pct": None}]
    async with LLMManager(settings(budgets)) as llm:
        await llm.generate("q", user="alice", model="dear", max_tokens=10)
        with pytest.raises(BudgetExceededError) as ei:
            for i in range(20):
                await llm.generate(f"q{i}", user="alice", model="dear", max_tokens=10)
        assert (await llm.generate("q", user="bob", model="dear", max_tokens=10)).deployment == "dear"
        assert (await llm.generate("anon", model="dear", max_tokens=10)).deployment == "dear"  # no user: no budget
        rows = await llm.budgets.status({"user": ["alice", "bob"]})
    assert ei.value.scope_value == "alice"
    assert {r["value"] for r in rows} == {"alice", "bob"}


async def test_model_budget_skips_that_model() -> None:
    # Each call on "dear" reserves ~$0.046 (20 tokens out) there: two fit in $0.10, the third goes to "cheap".
    budgets = [{"name": "dear-cap", "scope": "model", "match": "dear", "limit_usd": "0.1", "soft_limit_pct": None}]
    async with LLMManager(settings(budgets)) as llm:
        served = [(await llm.generate(f"q{i}", task="general", max_tokens=20)).deployment for i in range(6)]
        r = await llm.generate("again", task="general", max_tokens=20)
    assert served[0] == "dear" and served[-1] == "cheap"
    assert r.metadata.attempts[0].skipped and r.metadata.attempts[0].error_code == "budget_exceeded"


async def test_periods_roll_over_on_the_utc_calendar() -> None:
    import time

    clock = FakeClock()
    clock.now = (time.time() // 86400) * 86400 + 23 * 3600  # 23:00 UTC today (expiry checks use real time)
    budgets = [{"name": "day", "limit_usd": "0.05", "soft_limit_pct": None}]
    async with LLMManager(settings(budgets), wall_clock=clock) as llm:
        with pytest.raises(BudgetExceededError):
            for i in range(20):
                await llm.generate(f"q{i}", model="dear", max_tokens=10)
        clock.now += 9 * 3600  # past midnight UTC
        assert (await llm.generate("new day", model="dear", max_tokens=10)).deployment == "dear"


async def test_streams_settle_too() -> None:
    async with LLMManager(settings([{"name": "d", "limit_usd": "5", "soft_limit_pct": None}])) as llm:
        s = llm.stream("haiku", max_tokens=500)
        await s.text()
        row = (await llm.budgets.status())[0]
    assert s.response is not None and s.response.usage.cost is not None
    assert Decimal(row["spent_usd"]) == s.response.usage.cost and Decimal(row["reserved_usd"]) == 0


def test_one_budget_across_two_processes_sharing_redis() -> None:
    from tests.state.conftest import require_redis

    url = require_redis()
    prefix = f"llmm-budget-{uuid.uuid4().hex[:8]}"
    procs = [
        subprocess.Popen(
            [sys.executable, "-m", "tests.costs._budget_worker", url, prefix],
            cwd=ROOT,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for _ in range(2)
    ]
    outs = []
    for p in procs:
        out, err = p.communicate(timeout=60)
        assert p.returncode == 0, err
        outs.append(json.loads(out.strip().splitlines()[-1]))
    spent = sum(Decimal(o["spent"]) for o in outs)
    biggest = max(Decimal(o["max_cost"]) for o in outs)
    assert spent <= Decimal("1") + biggest
    assert sum(o["rejected"] for o in outs) > 0
