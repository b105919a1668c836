"""A separate process with its own LLMManager on a shared Redis (driven by test_semantic_shared.py).

Usage: python -m tests.cache._semantic_worker REDIS_URL PREFIX; then one prompt per line on standard input, one
JSON line per answer on standard output (``cached``, ``similarity``, ``content``, ``calls``).
"""

from __future__ import annotations

import asyncio
import json
import sys

from llm_manager import LLMManager
from llm_manager.config import load_settings
from llm_manager.providers.simulated import SimulatedAdapter


async def main(url: str, prefix: str) -> None:
    settings = load_settings(
        {
            "models": {"gpt": {"provider": "simulated", "family": "gpt", "simulate": {"latency_ms": 1}}},
            "cache": {"semantic": {"enabled": True}},
            "state": {"redis_url": url, "prefix": prefix},
        },
        env={},
    )
    async with LLMManager(settings) as llm:
        adapter = llm.adapter("gpt")
        assert isinstance(adapter, SimulatedAdapter)
        print(json.dumps({"ready": True}), flush=True)
        loop = asyncio.get_running_loop()
        while line := (await loop.run_in_executor(None, sys.stdin.readline)).strip():
            r = await llm.generate(line)
            out = {
                "cached": r.metadata.cached,
                "similarity": r.metadata.cache_similarity,
                "content": r.content,
                "calls": adapter.calls,
                "shared": (await llm.status())["cache"]["semantic"]["shared"],
            }
            print(json.dumps(out), flush=True)


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1], sys.argv[2]))
