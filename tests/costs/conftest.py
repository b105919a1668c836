"""Fixtures of the cost tests: ``store_url`` is a fresh database of each backend (SQLite, then PostgreSQL)."""

from tests.store.conftest import store_url

__all__ = ["store_url"]
