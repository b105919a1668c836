"""A process that reserves budget for slow requests and is then killed with ``kill -9`` (driven by
test_leases.py): its holds must lapse after their lease instead of blocking the budget for the period."""

from __future__ import annotations

import asyncio
import sys
from typing import Any

from llm_manager import LLMManager
from llm_manager.config import load_settings
from tests.helpers import instant, priced_model

LIMIT_USD = "0.08"
"""Five requests' reservations (prompt 5 tokens at $1000/Mtok, 5 out at $2000/Mtok: $0.015 each, $0.075) fit;
a sixth does not."""
TIMEOUT_S = 3.0
MARGIN_S = 0.5


def settings(url: str, prefix: str, latency_ms: float) -> Any:
    return load_settings(
        {
            "models": {"dear": priced_model(instant(latency_ms=latency_ms))},
            "budgets": [{"name": "leased", "limit_usd": LIMIT_USD, "soft_limit_pct": None}],
            "state": {"redis_url": url, "prefix": prefix, "budget_lease_margin_s": MARGIN_S},
            "cache": {"enabled": False},
            "ledger": {"enabled": False},
        },
        env={},
    )


async def main(url: str, prefix: str) -> None:
    async with LLMManager(settings(url, prefix, latency_ms=60_000)) as llm:
        calls = [llm.generate(f"q{i}", max_tokens=5, timeout_s=TIMEOUT_S) for i in range(5)]
        await asyncio.gather(*calls)  # never returns in time: the test kills this process first


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1], sys.argv[2]))
