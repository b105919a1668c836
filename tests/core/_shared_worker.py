"""A separate process running its own LLMManager against a shared Redis (driven by test_shared_state.py).

Usage: python -m tests.core._shared_worker REDIS_URL PREFIX ACTION; prints one JSON line.
"""

from __future__ import annotations

import asyncio
import json
import sys
from typing import Any

from llm_manager import LLMManager, RateLimitError
from llm_manager.config import load_settings
from llm_manager.providers.simulated import SimulatedAdapter


def settings(url: str, prefix: str) -> Any:
    fast = {"latency_ms": 1, "first_token_ms": 0}
    return load_settings(
        {
            "models": {
                "primary": {"provider": "simulated", "family": "gpt", "simulate": fast},
                "backup": {"provider": "simulated", "family": "claude", "simulate": fast},
                "limited": {"provider": "simulated", "family": "llama", "rpm": 10, "simulate": fast},
            },
            "routing": {
                "max_retries": 0,
                "queue_timeout_s": 0,
                "circuit_breaker": {"failure_threshold": 3, "cooldown_s": 600},
                "tasks": {"config-management": ["limited"]},
            },
            "state": {"redis_url": url, "prefix": prefix},
        },
        env={},
    )


async def main(url: str, prefix: str, action: str) -> dict[str, Any]:
    async with LLMManager(settings(url, prefix)) as llm:
        primary = llm.adapter("primary")
        assert isinstance(primary, SimulatedAdapter)
        if action == "outage":
            primary.push(*["503"] * 50)
            served = [(await llm.generate(f"q{i}", cache=False)).deployment for i in range(6)]
            return {"primary_calls": primary.calls, "served": served}
        if action == "after-outage":
            served = [(await llm.generate(f"q{i}", cache=False)).deployment for i in range(6)]
            state = (await llm.status())["deployments"]["primary"]["breakers"]["-"]
            return {"primary_calls": primary.calls, "served": served, "breaker": state}
        if action == "burst":

            async def one(i: int) -> bool:
                try:
                    await llm.generate(f"b{i}", task="config-management", cache=False)
                    return True
                except RateLimitError:
                    return False

            return {"admitted": sum(await asyncio.gather(*(one(i) for i in range(10))))}
        if action == "cache-put":
            r = await llm.generate("shared question")
            return {"content": r.content, "cached": r.metadata.cached}
        if action == "cache-get":
            r = await llm.generate("shared question")
            return {"content": r.content, "cached": r.metadata.cached, "primary_calls": primary.calls}
    raise SystemExit(f"unknown action {action}")


if __name__ == "__main__":
    print(json.dumps(asyncio.run(main(*sys.argv[1:4]))))
