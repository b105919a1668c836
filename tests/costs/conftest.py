"""Fixtures of the cost tests: ``store_url`` is a fresh database of each backend (SQLite, then PostgreSQL), ``db``
that database opened."""

from collections.abc import AsyncIterator

import pytest

from llm_manager.store import Database, open_database
from tests.store.conftest import store_url

__all__ = ["db", "store_url"]


@pytest.fixture
async def db(store_url: str) -> AsyncIterator[Database]:
    opened = await open_database(store_url)
    try:
        yield opened
    finally:
        await opened.aclose()
