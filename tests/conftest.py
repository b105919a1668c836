"""Shared fixtures. Tests never reach a real provider: only 127.0.0.1 fakes and the simulated provider."""

from __future__ import annotations

import os
from collections.abc import AsyncIterator

import pytest

from llm_manager._http import HttpClient
from tests.fakes.server import FakeUpstream

# Any request to a host other than loopback fails: no test can reach a real provider, even by mistake.
os.environ["LLM_MANAGER_LOOPBACK_ONLY"] = "1"
# Managers built without a store URL keep conversations and the ledger in memory, not in the user's data dir.
os.environ.setdefault("LLM_MANAGER_STORE_URL", "sqlite:///:memory:")


@pytest.fixture
async def upstream() -> AsyncIterator[FakeUpstream]:
    async with FakeUpstream() as up:
        yield up


@pytest.fixture
async def http() -> AsyncIterator[HttpClient]:
    client = HttpClient()
    yield client
    await client.aclose()
