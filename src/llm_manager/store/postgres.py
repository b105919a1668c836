"""The PostgreSQL database (for several processes or replicas sharing one store), through psycopg 3 async.

Connections come from a :class:`psycopg_pool.AsyncConnectionPool` (autocommit connections; each transaction is an
explicit block). Read-only transactions run at REPEATABLE READ so that a conversation row and its history come from
one snapshot.

**Turn locks reach every process.** :meth:`PostgresDatabase.exclusive` first takes an in-process lock per key (so
fifty waiting turns in one process hold one connection, not fifty), then a *session-level advisory lock*
(``pg_advisory_lock``) on a connection dedicated to the block; the turn's reads and its commit run on that
connection. We chose this over ``SELECT ... FOR UPDATE`` in a transaction held for the turn because a turn spans a
model call (seconds, sometimes minutes): an advisory lock keeps no transaction open meanwhile (no idle-in-transaction
session, no snapshot holding back vacuum, no row lock blocking other writers of the row such as a fork), and
PostgreSQL releases it by itself when the process dies and its connection closes. The commit's ``version`` check
stays as a second line of defence (a lost connection releases the lock).

Consequences: a turn occupies one pooled connection for its duration (size the pool above the number of concurrent
turns on different conversations); session-level locks need a session-pooling proxy, not PgBouncer's transaction
mode. Migrations use a transaction-level advisory lock (released at commit) keyed by the current schema, so two
processes migrating one schema run one after the other.
"""

from __future__ import annotations

import functools
import hashlib
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager, suppress
from typing import Any

import psycopg
from psycopg_pool import AsyncConnectionPool

from llm_manager.store.migrations import (
    POSTGRESQL,
    Database,
    KeyedLocks,
    SqlSession,
    Transactions,
    apply_migrations,
)

__all__ = ["PostgresDatabase"]

_Connection = psycopg.AsyncConnection[tuple[Any, ...]]

POOL_MAX_SIZE = 10
CONNECT_TIMEOUT_S = 10.0

_ROW_SQLSTATE_CLASSES = ("22", "23", "54")
"""SQLSTATE classes that blame the values written: data exception (a number out of range, invalid text),
integrity constraint violation, program limit exceeded (an index row too large for a btree)."""
_RAISE_EXCEPTION = "P0001"
"""A trigger's ``RAISE EXCEPTION`` refusing the row."""

_MIGRATION_LOCK_CLASS = 0x4C4D  # "LM": the two-int advisory key space, kept apart from the turn locks' bigint space


@functools.lru_cache(maxsize=256)
def _to_pyformat(sql: str) -> str:
    # The shared SQL uses `?` placeholders (SQLite's); psycopg wants `%s`. Our SQL contains no literal `?` or `%`.
    return sql.replace("?", "%s")


def _lock_key(key: str) -> int:
    """A signed 64-bit advisory lock key for ``key`` (a collision only serialises two unrelated keys)."""
    return int.from_bytes(hashlib.sha256(b"llm-manager:" + key.encode()).digest()[:8], "big", signed=True)


class _Session:
    dialect = POSTGRESQL

    def __init__(self, conn: _Connection) -> None:
        self._conn = conn

    async def execute(self, sql: str, params: Sequence[object] = ()) -> int:
        cursor = await self._conn.execute(_to_pyformat(sql), params)
        return cursor.rowcount

    async def fetchall(self, sql: str, params: Sequence[object] = ()) -> list[tuple[Any, ...]]:
        cursor = await self._conn.execute(_to_pyformat(sql), params)
        return await cursor.fetchall()

    async def executemany(self, sql: str, rows: Sequence[Sequence[object]]) -> None:
        async with self._conn.cursor() as cursor:
            await cursor.executemany(_to_pyformat(sql), rows)  # psycopg pipelines these: one round trip


@asynccontextmanager
async def _transaction(conn: _Connection, write: bool) -> AsyncIterator[SqlSession]:
    async with conn.transaction():
        if not write:
            await conn.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY")
        yield _Session(conn)


async def _reset(conn: _Connection) -> None:
    # A turn cancelled while waiting for its advisory lock may get it anyway; never pool a connection holding one.
    await conn.execute("SELECT pg_advisory_unlock_all()")


class PostgresDatabase(Database):
    """A PostgreSQL database (the schema is the first of the connection's ``search_path``), migrated on
    :meth:`open`."""

    dialect = POSTGRESQL

    def __init__(self, pool: AsyncConnectionPool[_Connection]) -> None:
        self._pool = pool
        self._turn_locks = KeyedLocks()

    @classmethod
    async def open(cls, url: str, *, max_size: int = POOL_MAX_SIZE) -> PostgresDatabase:
        """Connect to ``url`` (``postgresql://`` or ``postgres://``, libpq parameters allowed) and migrate."""
        # One direct connection first: a wrong URL or a server that is down fails here with libpq's own message
        # instead of a bare pool timeout.
        probe = await psycopg.AsyncConnection.connect(url, connect_timeout=int(CONNECT_TIMEOUT_S))
        await probe.close()
        pool: AsyncConnectionPool[_Connection] = AsyncConnectionPool(
            url,
            min_size=1,
            max_size=max_size,
            kwargs={"autocommit": True},
            reset=_reset,
            check=AsyncConnectionPool.check_connection,  # survive a server restart between two calls
            name="llm-manager-store",
            open=False,
        )
        await pool.open(wait=True, timeout=CONNECT_TIMEOUT_S)
        db = cls(pool)
        try:
            await apply_migrations(db)
        except BaseException:
            await pool.close()
            raise
        return db

    @asynccontextmanager
    async def transaction(self, write: bool) -> AsyncIterator[SqlSession]:
        async with self._pool.connection() as conn, _transaction(conn, write) as session:
            yield session

    @asynccontextmanager
    async def exclusive(self, key: str) -> AsyncIterator[Transactions]:
        lock = _lock_key(key)
        async with self._turn_locks.hold(key), self._pool.connection() as conn:
            await conn.execute("SELECT pg_advisory_lock(%s)", (lock,))
            try:
                yield functools.partial(_transaction, conn)
            finally:
                # A broken connection has released the lock already (and the pool discards it).
                with suppress(psycopg.OperationalError):
                    await conn.execute("SELECT pg_advisory_unlock(%s)", (lock,))

    @asynccontextmanager
    async def migration_transaction(self) -> AsyncIterator[SqlSession]:
        async with self._pool.connection() as conn, _transaction(conn, True) as session:
            await conn.execute(
                "SELECT pg_advisory_xact_lock(%s::int, hashtext(coalesce(current_schema(), '')))",
                (_MIGRATION_LOCK_CLASS,),
            )
            yield session

    def rejects_row(self, exc: BaseException) -> bool:
        state = exc.sqlstate if isinstance(exc, psycopg.Error) else None
        return state is not None and (state[:2] in _ROW_SQLSTATE_CLASSES or state == _RAISE_EXCEPTION)

    async def aclose(self) -> None:
        await self._pool.close()

    def __repr__(self) -> str:
        return f"PostgresDatabase({self._pool.name!r})"
