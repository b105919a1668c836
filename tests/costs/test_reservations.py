"""What a reservation covers: a model-scope budget is reserved like the others (not only checked), and a
request reserves the upper bound over every candidate that may answer it, not the first one's (docs/budgets.md,
"The overshoot bound")."""

from __future__ import annotations

import asyncio
from decimal import Decimal
from typing import Any

from llm_manager import BudgetExceededError, LLMManager
from llm_manager.config import load_settings
from llm_manager.routing.planner import plan
from llm_manager.tokens import estimate_prompt_tokens
from llm_manager.types import Message, Request

PRICED = {"input_price_per_mtok": "1000", "output_price_per_mtok": "2000"}
CHEAP = {"input_price_per_mtok": "10", "output_price_per_mtok": "20"}
SLOW = {"latency_ms": 5, "first_token_ms": 0, "tokens_per_s": 1e9}  # calls overlap: every request is in flight


def settings(models: dict[str, dict[str, Any]], budgets: list[dict[str, Any]], **extra: Any) -> Any:
    raw: dict[str, Any] = {"models": models, "budgets": budgets, "cache": {"enabled": False}, **extra}
    return load_settings(raw, env={})


async def spend(llm: LLMManager, n: int, **kwargs: Any) -> list[Decimal]:
    """``n`` concurrent requests; the cost of each answered one (refused ones are left out)."""

    async def one(i: int) -> Decimal | None:
        try:
            r = await llm.generate(f"q{i}", **kwargs)
        except BudgetExceededError:
            return None
        assert r.usage.cost is not None
        return r.usage.cost

    return [c for c in await asyncio.gather(*(one(i) for i in range(n))) if c is not None]


async def test_a_model_budget_holds_under_concurrency() -> None:
    """Issue 18: a $0.05 model budget spent $0.0624 at 30 concurrent and $0.0832 at 100, because it was only
    checked. Reserved, it is never passed (max_tokens makes every estimate an upper bound)."""
    limit = Decimal("0.05")
    models = {"dear": {"provider": "simulated", "family": "gpt", "simulate": SLOW, **PRICED}}
    budgets = [{"name": "cap", "scope": "model", "match": "dear", "limit_usd": str(limit), "soft_limit_pct": None}]
    for concurrency in (30, 100):
        async with LLMManager(settings(models, budgets)) as llm:
            costs = await spend(llm, concurrency, model="dear", fallback=False, max_tokens=5)
            [row] = await llm.budgets.status()
        assert Decimal(row["spent_usd"]) == sum(costs) and Decimal(row["reserved_usd"]) == 0
        assert sum(costs) <= limit, (concurrency, sum(costs))
        assert sum(costs) > limit - 2 * max(costs)  # the budget was used, not refused early
        assert len(costs) < concurrency


async def test_a_refused_model_budget_skips_only_that_candidate() -> None:
    models = {
        "dear": {"provider": "simulated", "family": "gpt", "simulate": SLOW, **PRICED},
        "cheap": {"provider": "simulated", "family": "claude", "simulate": SLOW, **CHEAP},
    }
    budgets = [{"name": "cap", "scope": "model", "match": "dear", "limit_usd": "0.05", "soft_limit_pct": None}]
    async with LLMManager(settings(models, budgets)) as llm:
        answers = await asyncio.gather(*(llm.generate(f"q{i}", model="dear", max_tokens=5) for i in range(30)))
        [row] = await llm.budgets.status()
    by = [r.deployment for r in answers]
    assert "dear" in by and "cheap" in by  # nobody refused: past the cap, the next candidate answered
    dear_spent = sum((r.usage.cost or Decimal(0) for r in answers if r.deployment == "dear"), Decimal(0))
    assert Decimal(row["spent_usd"]) == dear_spent <= Decimal("0.05")
    skipped = [r for r in answers if r.deployment == "cheap"]
    assert all(r.metadata.attempts[0].error_code == "budget_exceeded" for r in skipped)


async def test_the_reservation_covers_a_dearer_fallback() -> None:
    """Issue 18: reserved for the first candidate (cheap), answered by a dearer fallback: +52 % measured. The
    first candidate always fails here, so every answer comes from the dear one; the request's reservation is the
    upper bound over both, so the budget holds."""
    limit = Decimal("0.1")
    models = {
        "cheap": {"provider": "simulated", "family": "claude", "simulate": {**SLOW, "error_rate": 1.0}, **CHEAP},
        "dear": {"provider": "simulated", "family": "gpt", "simulate": SLOW, **PRICED},
    }
    budgets = [{"name": "all", "limit_usd": str(limit), "soft_limit_pct": None}]
    routing = {"max_retries": 0, "circuit_breaker": {"failure_threshold": 1000}}
    async with LLMManager(settings(models, budgets, routing=routing)) as llm:
        costs = await spend(llm, 40, model="cheap", max_tokens=5)
        [row] = await llm.budgets.status()
    assert costs and Decimal(row["spent_usd"]) == sum(costs)
    assert sum(costs) <= limit, sum(costs)
    assert sum(costs) > limit - 2 * max(costs)


async def test_a_hedged_request_reserves_the_losers_prompt_too() -> None:
    """A hedge's loser is billed its prompt: a request that may be hedged reserves the dearest answer plus the
    dearest prompt."""
    models = {
        "a": {"provider": "simulated", "family": "gpt", "simulate": SLOW, **PRICED},
        "b": {"provider": "simulated", "family": "claude", "simulate": SLOW, **PRICED},
    }
    budgets = [{"name": "all", "limit_usd": "10", "soft_limit_pct": None}]
    plain = settings(models, budgets)
    hedged = settings(models, budgets, routing={"hedge": {"tasks": ["general"]}})
    request = Request(messages=[Message(role="user", content="q")], task="general", max_tokens=5)
    held = []
    for s in (plain, hedged):
        async with LLMManager(s) as llm:
            _, holds = await llm.accounting.before(request, plan(request, llm.settings, llm.deployments, llm.stats))
            held.append(holds[0].amount)
            await llm.budgets.release(holds)
    prompt_tokens = estimate_prompt_tokens(request)
    assert held[1] - held[0] == prompt_tokens * 10**6  # $1000 per Mtok is a million nanodollars a token
