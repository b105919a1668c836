"""One of two processes spending against one $1 budget in a shared Redis (driven by test_budgets_manager.py)."""

from __future__ import annotations

import asyncio
import json
import sys
from decimal import Decimal

from llm_manager import BudgetExceededError, LLMManager
from llm_manager.config import load_settings
from tests.helpers import priced_model


async def main(url: str, prefix: str) -> dict[str, object]:
    settings = load_settings(
        {
            "models": {"dear": priced_model({"latency_ms": 1, "first_token_ms": 0})},
            "budgets": [{"name": "shared", "limit_usd": "1", "soft_limit_pct": None}],
            "state": {"redis_url": url, "prefix": prefix},
            "cache": {"enabled": False},
        },
        env={},
    )
    async with LLMManager(settings) as llm:

        async def one(i: int) -> Decimal | None:
            try:
                r = await llm.generate(f"q{i}", max_tokens=40)
                return r.usage.cost or Decimal(0)
            except BudgetExceededError:
                return None

        costs = await asyncio.gather(*(one(i) for i in range(100)))
    paid = [c for c in costs if c is not None]
    return {
        "spent": str(sum(paid, Decimal(0))),
        "max_cost": str(max(paid, default=Decimal(0))),
        "rejected": sum(c is None for c in costs),
    }


if __name__ == "__main__":
    print(json.dumps(asyncio.run(main(sys.argv[1], sys.argv[2]))))
