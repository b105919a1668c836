"""The SQLite database (the default store: one file in the user's data directory), through ``aiosqlite``.

One connection serves the process: SQLite allows one writer at a time anyway, and a single connection makes
transactions simple to serialise (an :class:`asyncio.Lock` around each, since statements of two tasks on one
connection would otherwise land in each other's transaction). The file is in WAL mode, so readers in other processes
are never blocked, with ``synchronous=NORMAL`` (durable across application crashes; a power loss can drop the last
commits but never corrupts the file) and a busy timeout, so writers of other processes queue instead of failing.

**Turn locks reach this process only.** :meth:`SQLiteDatabase.exclusive` is an in-process lock per conversation:
turns on one conversation are exclusive within one process. Two processes on one file are not excluded from each
other, but every commit checks the conversation's ``version``, so the second of two overlapping turns fails with
:class:`~llm_manager.store.base.ConversationConflictError` and stores nothing: a cross-process race is always
detected, never a silently lost or interleaved message. Run the turn again, or use PostgreSQL for several processes.
The same holds for two :class:`SQLiteDatabase` objects on one file in one process: share one store instead.
"""

from __future__ import annotations

import asyncio
import sqlite3
import threading
from collections.abc import AsyncIterator, Sequence
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from datetime import UTC, datetime
from typing import Any

import aiosqlite

from llm_manager.store.migrations import SQLITE, Database, KeyedLocks, SqlSession, Transactions, apply_migrations

__all__ = ["SQLiteDatabase"]

BUSY_TIMEOUT_S = 30.0
"""How long a write waits for another process's write transaction before failing with "database is locked"."""

_ROW_ERRORS = frozenset({sqlite3.SQLITE_TOOBIG, sqlite3.SQLITE_CONSTRAINT, sqlite3.SQLITE_MISMATCH})
"""Primary result codes that blame the values written (a constraint includes a trigger's ``RAISE(ABORT)``)."""


def _param(value: object) -> object:
    return _iso(value) if isinstance(value, datetime) else value


def _iso(value: datetime) -> str:
    # Fixed-width ISO-8601 in UTC ("2025-01-31T12:00:00.000000+00:00") sorts as text in time order.
    return value.astimezone(UTC).isoformat(timespec="microseconds")


def _daemon_worker(conn: aiosqlite.Connection) -> aiosqlite.Connection:
    """Make the connection's worker thread a daemon before it starts.

    aiosqlite >= 0.22 runs it as a non-daemon thread that ends only when the connection is closed, and the interpreter
    joins non-daemon threads at exit before anything else (atexit hooks included): a program that never closed its
    manager waited for it for ever. As a daemon it cannot hold the program; the manager still closes the connection
    wherever it can (``aclose``, and for an unclosed manager :mod:`llm_manager._unclosed`), and a process ending in the
    middle of a transaction leaves the file as ``kill -9`` would: consistent, the open transaction rolled back on the
    next open. (Before 0.22 the connection was itself a daemon thread, with no ``_thread``.)
    """
    thread = getattr(conn, "_thread", None)
    if isinstance(thread, threading.Thread) and not thread.is_alive():
        thread.daemon = True
    return conn


async def _enable_wal(conn: aiosqlite.Connection) -> None:
    """Switch the file to WAL (a lasting property of the file: a no-op once done)."""
    # Switching needs an exclusive lock, and SQLite answers SQLITE_BUSY at once rather than calling the busy
    # handler when another process is opening the same fresh file: retry here instead.
    loop = asyncio.get_running_loop()
    deadline = loop.time() + BUSY_TIMEOUT_S
    while True:
        try:
            await conn.execute("PRAGMA journal_mode = WAL")
            return
        except sqlite3.OperationalError as exc:
            if exc.sqlite_errorcode != sqlite3.SQLITE_BUSY or loop.time() > deadline:
                raise
            await asyncio.sleep(0.01)


class _Session:
    dialect = SQLITE

    def __init__(self, conn: aiosqlite.Connection) -> None:
        self._conn = conn

    async def execute(self, sql: str, params: Sequence[object] = ()) -> int:
        async with self._conn.execute(sql, [_param(p) for p in params]) as cursor:
            return cursor.rowcount

    async def fetchall(self, sql: str, params: Sequence[object] = ()) -> list[tuple[Any, ...]]:
        rows = await self._conn.execute_fetchall(sql, [_param(p) for p in params])
        return [tuple(row) for row in rows]

    async def executemany(self, sql: str, rows: Sequence[Sequence[object]]) -> None:
        # Inlined rather than _param() per value: the ledger's writer sends ~20 values per row, on the request loop.
        rows = [[_iso(p) if isinstance(p, datetime) else p for p in row] for row in rows]
        await self._conn.executemany(sql, rows)


class SQLiteDatabase(Database):
    """A SQLite file (or ``":memory:"``), migrated on :meth:`open`."""

    dialect = SQLITE

    def __init__(self, conn: aiosqlite.Connection, path: str) -> None:
        self._conn = conn
        self.path = path
        """The file path, or ``":memory:"``."""
        self._transaction_lock = asyncio.Lock()
        self._turn_locks = KeyedLocks()
        self._closed = False

    @classmethod
    async def open(cls, path: str) -> SQLiteDatabase:
        """Open (creating it if needed) and migrate the database at ``path`` (its directory must exist)."""
        # isolation_level=None: no implicit transactions, so BEGIN / BEGIN IMMEDIATE are ours to choose.
        conn = await _daemon_worker(aiosqlite.connect(path, isolation_level=None, timeout=BUSY_TIMEOUT_S))
        try:
            await conn.execute(f"PRAGMA busy_timeout = {int(BUSY_TIMEOUT_S * 1000)}")
            await _enable_wal(conn)
            await conn.execute("PRAGMA synchronous = NORMAL")
            await conn.execute("PRAGMA foreign_keys = ON")  # off by default in SQLite, per connection
            db = cls(conn, path)
            await apply_migrations(db)
        except BaseException:
            await conn.close()
            raise
        return db

    @asynccontextmanager
    async def transaction(self, write: bool) -> AsyncIterator[SqlSession]:
        # BEGIN IMMEDIATE takes the write lock up front: a deferred transaction that reads then writes can fail
        # with SQLITE_BUSY_SNAPSHOT when another process committed in between, which no busy timeout fixes.
        async with self._transaction_lock:
            await self._conn.execute("BEGIN IMMEDIATE" if write else "BEGIN")
            try:
                yield _Session(self._conn)
                await self._conn.execute("COMMIT")
            except BaseException:
                if self._conn.in_transaction:
                    await self._conn.execute("ROLLBACK")
                raise

    @asynccontextmanager
    async def exclusive(self, key: str) -> AsyncIterator[Transactions]:
        async with self._turn_locks.hold(key):
            yield self.transaction

    def migration_transaction(self) -> AbstractAsyncContextManager[SqlSession]:
        # BEGIN IMMEDIATE is exclusive between processes: a second migrator waits (busy timeout), then finds the
        # migrations recorded.
        return self.transaction(True)

    def rejects_row(self, exc: BaseException) -> bool:
        if isinstance(exc, OverflowError):  # an int past 64 bits: sqlite3 cannot even bind it
            return True
        code = getattr(exc, "sqlite_errorcode", None) if isinstance(exc, sqlite3.Error) else None
        return code is not None and code & 0xFF in _ROW_ERRORS  # extended codes keep the primary in the low byte

    async def aclose(self) -> None:
        if not self._closed:
            self._closed = True
            await self._conn.close()

    def __repr__(self) -> str:
        return f"SQLiteDatabase({self.path!r})"
