"""The semantic cache shared by replicas: two processes, one Redis (a unique prefix), each searching its own index
kept in sync from the Redis log."""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from llm_manager.cache.semantic_index import LocalIndex
from llm_manager.cache.semantic_store import RedisLog
from tests.state.conftest import require_redis

pytest.importorskip("wordllama", reason="the semantic extra (wordllama) is part of the dev install")

ROOT = Path(__file__).resolve().parents[2]


class Replica:
    """A worker process: ask it a prompt, read its answer."""

    def __init__(self, url: str, prefix: str) -> None:
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "tests.cache._semantic_worker", url, prefix],
            cwd=ROOT,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            text=True,
        )
        assert self.read() == {"ready": True}

    def read(self) -> dict[str, Any]:
        assert self.proc.stdout is not None
        line = self.proc.stdout.readline()
        assert line, f"the worker exited ({self.proc.poll()})"
        return json.loads(line)  # type: ignore[no-any-return]

    def ask(self, prompt: str) -> dict[str, Any]:
        assert self.proc.stdin is not None
        self.proc.stdin.write(prompt + "\n")
        self.proc.stdin.flush()
        return self.read()

    def close(self) -> None:
        assert self.proc.stdin is not None and self.proc.stdout is not None
        self.proc.stdin.close()
        self.proc.wait(timeout=30)
        self.proc.stdout.close()


@pytest.fixture
def shared() -> Iterator[tuple[str, str]]:
    url, prefix = require_redis(), f"llmm-test-sem-{uuid.uuid4().hex[:10]}"
    yield url, prefix
    import redis

    client = redis.Redis.from_url(url)
    keys = list(client.scan_iter(match=f"{prefix}:*", count=1000))
    if keys:
        client.delete(*keys)
    client.close()


def test_an_answer_cached_by_one_replica_answers_a_paraphrase_on_the_other(shared: tuple[str, str]) -> None:
    a, b = Replica(*shared), Replica(*shared)
    try:
        first = a.ask("How do I reset my password?")
        assert not first["cached"] and first["shared"]
        # b started before a's entry existed: it follows the log, and a paraphrase hits there without a call.
        hit = b.ask("how can I reset my password")
        assert hit["cached"] and hit["similarity"] >= 0.8 and hit["content"] == first["content"] and hit["calls"] == 0
        # The other way round, and a near-miss still asks the provider.
        second = b.ask("What is the boiling point of water?")
        assert not second["cached"] and second["calls"] == 1
        assert a.ask("what's the boiling point of water")["content"] == second["content"]
        near = a.ask("What is the boiling point of ethanol?")
        assert not near["cached"] and near["calls"] == 2
        # A replica started last reads the whole log once.
        c = Replica(*shared)
        try:
            late = c.ask("How can I reset my password, please?")
            assert late["cached"] and late["calls"] == 0 and late["content"] == first["content"]
        finally:
            c.close()
    finally:
        a.close()
        b.close()


async def test_the_log_is_bounded_and_a_clear_reaches_every_replica(shared: tuple[str, str]) -> None:
    url, prefix = shared
    one, two = LocalIndex(3), LocalIndex(3)
    first, second = RedisLog(one, url, prefix, 1.0), RedisLog(two, url, prefix, 1.0)
    try:
        now = time.time()
        vector = np.ones(4, dtype=np.float32) / 2
        for i in range(5):
            await first.add("scope", f"prompt {i}", vector, b"{}", now + 60, 60)
        assert len(one) == 3
        await second.sync(now)
        assert sorted(e.text for _, e in two.search("scope", vector, now, 0.9)) == ["prompt 2", "prompt 3", "prompt 4"]
        assert await first._client.xlen(first._log) == 3
        assert 0 < await first._client.pttl(first._log) <= 60_000
        # Expired entries are not taken in, nor found.
        await first.add("scope", "old", vector, b"{}", now - 1, 60)
        await second.sync(now)
        assert "old" not in [e.text for _, e in two.search("scope", vector, now, 0.9)]
        await first.clear()
        await second.sync(now)
        assert len(one) == 0 and len(two) == 0
        await second.add("scope", "after", vector, b"{}", now + 60, 60)
        await first.sync(now)
        assert [e.text for _, e in one.search("scope", vector, now, 0.9)] == ["after"]
    finally:
        await first.aclose()
        await second.aclose()


async def test_concurrent_lookups_share_one_read(shared: tuple[str, str]) -> None:
    url, prefix = shared
    writer, reader = RedisLog(LocalIndex(100), url, prefix, 1.0), RedisLog(LocalIndex(100), url, prefix, 1.0)
    try:
        now = time.time()
        vector = np.ones(4, dtype=np.float32) / 2
        for i in range(20):
            await writer.add("scope", f"prompt {i}", vector, b"{}", now + 60, 60)
        await asyncio.gather(*(reader.sync(now) for _ in range(10)))
        assert reader._syncs == 1  # the nine callers that waited used the first one's read
        assert (
            len(reader.index) == 20
            and reader._last == (await writer._client.xrevrange(writer._log, count=1))[0][0].decode()
        )
    finally:
        await writer.aclose()
        await reader.aclose()
