"""Migrations: append-only, idempotent, atomic, and safe when several openers race on a fresh database."""

from __future__ import annotations

import asyncio
import re

import pytest

from llm_manager.store import MIGRATIONS, Migration, apply_migrations, open_database
from llm_manager.store.migrations import POSTGRESQL, SQLITE, migration

SHIPPED = (
    "m001_conversations",
    "m002_ledger",
    "m003_gateway_keys",
    "m004_gateway_key_limits",
    "m005_ledger_dead_letters",
    "m006_content_parts",
    "m007_responses",
    "m008_ledger_cache_similarity",
)
"""Every migration ever shipped, in order. Append the name of each new migration here; never edit or remove one
(a database that applied a migration never runs it again, so an edit would reach new databases only)."""


def test_shipped_migrations_are_only_ever_appended() -> None:
    names = [m.name for m in MIGRATIONS]
    assert len(names) == len(set(names)), "migration names must be unique"
    assert tuple(names[: len(SHIPPED)]) == SHIPPED, "a shipped migration was edited, removed or reordered"
    assert tuple(names) == SHIPPED, "a new migration: append its name to SHIPPED"
    numbers = [int(re.fullmatch(r"m(\d{3})_[a-z0-9_]+", n)[1]) for n in names]  # type: ignore[index]
    assert numbers == sorted(numbers) and len(set(numbers)) == len(numbers)


def test_every_migration_has_sql_for_both_dialects() -> None:
    for m in MIGRATIONS:
        for dialect in (SQLITE, POSTGRESQL):
            statements = m.statements(dialect)
            assert statements and all(s.strip() for s in statements)


def test_duplicate_names_are_refused() -> None:
    def m001_conversations(d: object) -> list[str]:
        return []

    with pytest.raises(ValueError, match="duplicate migration name"):
        migration(m001_conversations)
    assert [m.name for m in MIGRATIONS] == list(SHIPPED)


async def _applied(url: str) -> list[tuple[str, object]]:
    db = await open_database(url)
    try:
        async with db.transaction(False) as session:
            rows = await session.fetchall("SELECT name, applied_at FROM llm_manager_migrations ORDER BY name")
        return [(r[0], r[1]) for r in rows]
    finally:
        await db.aclose()


async def test_applying_is_idempotent(store_url: str) -> None:
    first = await _applied(store_url)
    assert [name for name, _ in first] == list(SHIPPED)
    assert await _applied(store_url) == first  # reopening applies nothing, re-records nothing
    db = await open_database(store_url)
    try:
        assert await apply_migrations(db) == []
    finally:
        await db.aclose()


async def test_concurrent_openers_on_a_fresh_database(store_url: str) -> None:
    dbs = await asyncio.gather(*(open_database(store_url) for _ in range(4)))
    try:
        async with dbs[0].transaction(False) as session:
            rows = await session.fetchall("SELECT name FROM llm_manager_migrations")
        assert sorted(r[0] for r in rows) == sorted(SHIPPED)
    finally:
        for db in dbs:
            await db.aclose()


async def test_an_appended_migration_runs_once(store_url: str) -> None:
    extra = Migration("m999_test_extra", lambda d: ["CREATE TABLE llm_manager_test_extra (x INTEGER)"])
    db = await open_database(store_url)
    try:
        assert await apply_migrations(db, [*MIGRATIONS, extra]) == ["m999_test_extra"]
        assert await apply_migrations(db, [*MIGRATIONS, extra]) == []
        async with db.transaction(True) as session:
            await session.execute("INSERT INTO llm_manager_test_extra (x) VALUES (?)", (1,))
    finally:
        await db.aclose()


async def test_a_failing_migration_changes_nothing(store_url: str) -> None:
    broken = Migration("m998_broken", lambda d: ["CREATE TABLE llm_manager_half (x INTEGER)", "NOT SQL AT ALL"])
    db = await open_database(store_url)
    try:
        with pytest.raises(Exception, match=r"(?i)syntax"):
            await apply_migrations(db, [*MIGRATIONS, broken])
        async with db.transaction(False) as session:
            names = [r[0] for r in await session.fetchall("SELECT name FROM llm_manager_migrations")]
        assert "m998_broken" not in names
        # The table its first statement created went with the rollback: the migration can be fixed and rerun.
        fixed = Migration("m998_broken", lambda d: ["CREATE TABLE llm_manager_half (x INTEGER)"])
        assert await apply_migrations(db, [*MIGRATIONS, fixed]) == ["m998_broken"]
    finally:
        await db.aclose()
