"""The database layer every table owner shares: dialects, sessions, the :class:`Database` interface, and the
append-only list of schema migrations.

Conversations live here today; the spend ledger (and anything else durable) will add its tables by *appending* a
migration to :data:`MIGRATIONS` and run its queries through the same :class:`Database`, so one SQLite file or one
PostgreSQL schema holds everything and one connection pool serves it.

Migrations are append-only named functions (never edited once released, so every database replays the same
history) that return the SQL statements for a :class:`Dialect`. The names of
applied migrations are recorded in ``llm_manager_migrations``; :func:`apply_migrations` applies the missing ones,
in list order, inside one exclusive transaction, so it is idempotent and safe when several processes start at once
(PostgreSQL takes a transaction-scoped advisory lock, SQLite uses ``BEGIN IMMEDIATE``).

**Never edit or reorder a shipped migration**: a database that already applied it will never see the change.
Append a new one instead (``tests/store/test_migrations.py`` keeps the frozen list of shipped names).
"""

from __future__ import annotations

import asyncio
from abc import ABC, abstractmethod
from collections.abc import AsyncIterator, Callable, Sequence
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Protocol

from llm_manager import _json

__all__ = [
    "MIGRATIONS",
    "POSTGRESQL",
    "SQLITE",
    "Database",
    "Dialect",
    "KeyedLocks",
    "Migration",
    "SqlSession",
    "Transactions",
    "apply_migrations",
    "from_db_json",
    "from_db_time",
    "migration",
]


@dataclass(frozen=True, slots=True)
class Dialect:
    """What differs between the SQL databases we support; everything else is written once, portably."""

    name: str
    """``"sqlite"`` or ``"postgresql"``."""
    timestamp: str
    """Column type of a UTC timestamp (SQLite stores fixed-width ISO-8601 text, which sorts chronologically)."""
    json: str
    """Column type of a JSON document."""
    row_locks: bool
    """Whether ``SELECT ... FOR UPDATE / FOR SHARE`` exists (SQLite serialises writers instead)."""


SQLITE = Dialect(name="sqlite", timestamp="TEXT", json="TEXT", row_locks=False)
POSTGRESQL = Dialect(name="postgresql", timestamp="TIMESTAMPTZ", json="JSONB", row_locks=True)


class SqlSession(Protocol):
    """One connection inside one open transaction.

    SQL uses ``?`` placeholders on every dialect. Parameters may be ``str``, ``int``, ``None``, a UTC
    :class:`~datetime.datetime`, or JSON text (for a JSON column). Read timestamps and JSON back through
    :func:`from_db_time` and :func:`from_db_json`, since drivers return them differently.
    """

    @property
    def dialect(self) -> Dialect:
        """The dialect of the connection."""
        ...

    async def execute(self, sql: str, params: Sequence[object] = ()) -> int:
        """Run one statement; returns the number of rows it changed."""
        ...

    async def fetchall(self, sql: str, params: Sequence[object] = ()) -> list[tuple[Any, ...]]:
        """Run one query; returns every row."""
        ...

    async def executemany(self, sql: str, rows: Sequence[Sequence[object]]) -> None:
        """Run one statement once per parameter row (the driver's batch path: no per-row round trip)."""
        ...


Transactions = Callable[[bool], AbstractAsyncContextManager[SqlSession]]
"""Opens a transaction (``True``: read-write, ``False``: read-only) and yields its session."""


class Database(ABC):
    """Connection handling for one database, shared by every store over it."""

    dialect: Dialect

    @abstractmethod
    def transaction(self, write: bool) -> AbstractAsyncContextManager[SqlSession]:
        """A transaction: committed when the block ends normally, rolled back when it raises."""

    @abstractmethod
    def exclusive(self, key: str) -> AbstractAsyncContextManager[Transactions]:
        """Hold an exclusive lock named ``key`` for the whole block; open the block's transactions through the
        yielded factory. How far the lock reaches (this process or every process) depends on the backend."""

    @abstractmethod
    def migration_transaction(self) -> AbstractAsyncContextManager[SqlSession]:
        """A write transaction that no other process's migration transaction can run alongside."""

    @abstractmethod
    async def aclose(self) -> None:
        """Close every connection. Idempotent."""

    def rejects_row(self, exc: BaseException) -> bool:  # noqa: ARG002 - overridden by backends that can tell
        """Whether ``exc``, raised by a write, blames the values written rather than the database: a value too large
        for its column or index, a constraint or a trigger refusing it. The same values would fail again; other
        values would not. ``False`` for the database being down, locked, full or missing a table (and by default:
        a backend that cannot tell treats every failure as the database's)."""
        return False


class KeyedLocks:
    """One :class:`asyncio.Lock` per key, forgotten as soon as nobody holds or awaits it (keys are unbounded)."""

    def __init__(self) -> None:
        self._locks: dict[str, tuple[asyncio.Lock, int]] = {}

    @asynccontextmanager
    async def hold(self, key: str) -> AsyncIterator[None]:
        """Hold the lock of ``key`` for the block."""
        lock, users = self._locks.get(key, (None, 0))
        lock = lock or asyncio.Lock()
        self._locks[key] = (lock, users + 1)
        try:
            async with lock:
                yield
        finally:
            _, users = self._locks[key]
            if users == 1:
                del self._locks[key]
            else:
                self._locks[key] = (lock, users - 1)


def from_db_time(value: Any) -> datetime:
    """A timestamp column as a UTC-aware datetime (SQLite returns ISO text, psycopg a datetime)."""
    parsed = datetime.fromisoformat(value) if isinstance(value, str) else value
    if not isinstance(parsed, datetime):
        raise TypeError(f"not a timestamp: {value!r}")
    return parsed.astimezone(UTC)


def from_db_json(value: Any) -> Any:
    """A JSON column as Python data (SQLite returns the text, psycopg the decoded JSONB)."""
    return _json.loads(value) if isinstance(value, str | bytes) else value


# -- the migrations ---------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Migration:
    """One named, never-edited schema change."""

    name: str
    """Recorded in ``llm_manager_migrations`` once applied; unique."""
    statements: Callable[[Dialect], Sequence[str]]
    """The SQL to run, per dialect."""


MIGRATIONS: list[Migration] = []
"""Every migration, in the order applied. Append only."""


def migration(fn: Callable[[Dialect], Sequence[str]]) -> Callable[[Dialect], Sequence[str]]:
    """Append ``fn`` to :data:`MIGRATIONS` under its function name."""
    if any(m.name == fn.__name__ for m in MIGRATIONS):
        raise ValueError(f"duplicate migration name {fn.__name__!r}")
    MIGRATIONS.append(Migration(fn.__name__, fn))
    return fn


@migration
def m001_conversations(d: Dialect) -> Sequence[str]:
    """Content-addressed messages, conversations pointing at their head, per-conversation message metadata."""
    return [
        # A message row is pure content: its id hashes (role, content, parent), so it is shared by every
        # conversation (and fork) whose history passes through it.
        f"""CREATE TABLE llm_manager_messages (
            id TEXT PRIMARY KEY,
            role TEXT NOT NULL CHECK (role IN ('system', 'user', 'assistant')),
            content TEXT NOT NULL,
            parent_id TEXT REFERENCES llm_manager_messages (id),
            created_at {d.timestamp} NOT NULL
        )""",
        "CREATE INDEX llm_manager_messages_parent ON llm_manager_messages (parent_id)",
        # `version` is bumped by every commit: the optimistic check that turns a lost update into an error.
        # `forked_from` has no foreign key: a fork outlives the deletion of its source.
        f"""CREATE TABLE llm_manager_conversations (
            id TEXT PRIMARY KEY,
            title TEXT,
            head_id TEXT REFERENCES llm_manager_messages (id),
            message_count INTEGER NOT NULL DEFAULT 0,
            version INTEGER NOT NULL DEFAULT 0,
            metadata {d.json} NOT NULL,
            forked_from TEXT,
            created_at {d.timestamp} NOT NULL,
            updated_at {d.timestamp} NOT NULL
        )""",
        "CREATE INDEX llm_manager_conversations_head ON llm_manager_conversations (head_id)",
        "CREATE INDEX llm_manager_conversations_updated ON llm_manager_conversations (updated_at)",
        # Who answered, usage, request id: facts about one conversation's use of a message, kept out of the
        # content-addressed row so that the row stays shareable.
        f"""CREATE TABLE llm_manager_message_meta (
            conversation_id TEXT NOT NULL REFERENCES llm_manager_conversations (id) ON DELETE CASCADE,
            message_id TEXT NOT NULL REFERENCES llm_manager_messages (id),
            metadata {d.json} NOT NULL,
            created_at {d.timestamp} NOT NULL,
            PRIMARY KEY (conversation_id, message_id)
        )""",
        "CREATE INDEX llm_manager_message_meta_message ON llm_manager_message_meta (message_id)",
    ]


@migration
def m002_ledger(d: Dialect) -> Sequence[str]:
    """The spend ledger: one row per provider call (see :mod:`llm_manager.costs.ledger`)."""
    return [
        # (request_id, attempt) is the natural key: a batch retried after an ambiguous commit (PostgreSQL
        # connection lost during COMMIT) inserts with ON CONFLICT DO NOTHING, so no call is counted twice.
        # cost_pusd is USD in integer picodollars (10^-12): exact for any price with up to 6 decimals per million
        # tokens, summed exactly in SQL on both dialects; NULL means "price unknown", never 0.
        # `user` is reserved in PostgreSQL, hence user_id. No CHECK on status: new statuses need no migration.
        f"""CREATE TABLE llm_manager_ledger (
            ts {d.timestamp} NOT NULL,
            request_id TEXT NOT NULL,
            attempt INTEGER NOT NULL,
            deployment TEXT NOT NULL,
            provider TEXT NOT NULL,
            model TEXT NOT NULL,
            user_id TEXT,
            project TEXT,
            api_key_id TEXT,
            task TEXT NOT NULL,
            prompt_tokens BIGINT NOT NULL,
            completion_tokens BIGINT NOT NULL,
            cached_tokens BIGINT NOT NULL,
            cost_pusd BIGINT,
            latency_ms DOUBLE PRECISION NOT NULL,
            status TEXT NOT NULL,
            error_code TEXT,
            cached INTEGER NOT NULL,
            request_key TEXT,
            PRIMARY KEY (request_id, attempt)
        )""",
        "CREATE INDEX llm_manager_ledger_ts ON llm_manager_ledger (ts)",
        "CREATE INDEX llm_manager_ledger_deployment ON llm_manager_ledger (deployment)",
        "CREATE INDEX llm_manager_ledger_user ON llm_manager_ledger (user_id)",
        "CREATE INDEX llm_manager_ledger_project ON llm_manager_ledger (project)",
        "CREATE INDEX llm_manager_ledger_key ON llm_manager_ledger (api_key_id)",
        "CREATE INDEX llm_manager_ledger_task ON llm_manager_ledger (task)",
    ]


@migration
def m003_gateway_keys(d: Dialect) -> Sequence[str]:
    """Gateway keys (see :mod:`llm_manager.server.keys`): only the SHA-256 of each secret is kept."""
    return [
        # allowed_models NULL: every model. rpm NULL: unlimited. revoked_at NULL: active.
        f"""CREATE TABLE llm_manager_gateway_keys (
            id TEXT PRIMARY KEY,
            name TEXT NOT NULL,
            hash TEXT NOT NULL UNIQUE,
            created_at {d.timestamp} NOT NULL,
            revoked_at {d.timestamp},
            allowed_models {d.json},
            rpm INTEGER,
            is_admin INTEGER NOT NULL DEFAULT 0
        )""",
    ]


@migration
def m004_gateway_key_limits(d: Dialect) -> Sequence[str]:  # noqa: ARG001 - the same on both dialects
    """Per-key tokens per minute and spending limit (``keys create --tpm --budget-usd --budget-period``)."""
    return [
        # budget_usd is a decimal string (exact, like the config's limit_usd); NULL: no per-key budget.
        "ALTER TABLE llm_manager_gateway_keys ADD COLUMN tpm INTEGER",
        "ALTER TABLE llm_manager_gateway_keys ADD COLUMN budget_usd TEXT",
        "ALTER TABLE llm_manager_gateway_keys ADD COLUMN budget_period TEXT",
    ]


@migration
def m005_ledger_dead_letters(d: Dialect) -> Sequence[str]:
    """Ledger rows the database refused for their values (see :mod:`llm_manager.costs.dead_letters`)."""
    return [
        # No key and no index on the row's values: whatever made the ledger refuse a row (a value too long for a
        # btree index, say) cannot make this insert fail too. `row` is the whole row as JSON text.
        f"""CREATE TABLE llm_manager_ledger_dead_letters (
            failed_at {d.timestamp} NOT NULL,
            request_id TEXT NOT NULL,
            attempt INTEGER NOT NULL,
            reason TEXT NOT NULL,
            row TEXT NOT NULL
        )""",
        "CREATE INDEX llm_manager_ledger_dead_letters_failed_at ON llm_manager_ledger_dead_letters (failed_at)",
    ]


@migration
def m006_content_parts(d: Dialect) -> Sequence[str]:
    """Messages with content parts (see :mod:`llm_manager.store.parts`): their parts as JSON, inline bytes stored
    once per content address."""
    return [
        # NULL: a plain-text message (every message stored before this migration).
        f"ALTER TABLE llm_manager_messages ADD COLUMN parts {d.json}",
        # id is "sha256:<hex>" of the bytes; data is their base64 text.
        f"""CREATE TABLE llm_manager_blobs (
            id TEXT PRIMARY KEY,
            data TEXT NOT NULL,
            created_at {d.timestamp} NOT NULL
        )""",
        # No foreign keys: rows are collected after messages are deleted (store.parts.collect_blobs).
        """CREATE TABLE llm_manager_message_blobs (
            message_id TEXT NOT NULL,
            blob_id TEXT NOT NULL,
            PRIMARY KEY (message_id, blob_id)
        )""",
        "CREATE INDEX llm_manager_message_blobs_blob ON llm_manager_message_blobs (blob_id)",
    ]


@migration
def m007_responses(d: Dialect) -> Sequence[str]:
    """Stored answers of the gateway's ``/v1/responses`` (see :mod:`llm_manager.store.responses`)."""
    return [
        # owner: the gateway key that created it (NULL: created while the gateway had no keys); only the same
        # owner may read, continue or delete it. input: the whole conversation it answered, as Responses items.
        f"""CREATE TABLE llm_manager_responses (
            id TEXT PRIMARY KEY,
            owner TEXT,
            created_at {d.timestamp} NOT NULL,
            response {d.json} NOT NULL,
            input {d.json} NOT NULL
        )""",
        "CREATE INDEX llm_manager_responses_created ON llm_manager_responses (created_at)",
    ]


@migration
def m008_ledger_cache_similarity(d: Dialect) -> Sequence[str]:  # noqa: ARG001 - the same on both dialects
    """Semantic cache hits: the similarity of the cached prompt that answered (NULL for every other row)."""
    return ["ALTER TABLE llm_manager_ledger ADD COLUMN cache_similarity DOUBLE PRECISION"]


# -- applying them ----------------------------------------------------------------------------------------------


async def apply_migrations(db: Database, migrations: Sequence[Migration] = MIGRATIONS) -> list[str]:
    """Apply every migration of ``migrations`` that ``db`` has not recorded yet; returns the names applied now.

    All of them run in one exclusive transaction (DDL is transactional on both dialects), so a failure leaves
    the schema as it was, and a second process starting at the same moment waits, then finds nothing to do.
    """
    async with db.migration_transaction() as session:
        await session.execute(
            "CREATE TABLE IF NOT EXISTS llm_manager_migrations ("
            f"name TEXT PRIMARY KEY, applied_at {session.dialect.timestamp} NOT NULL)"
        )
        applied = {row[0] for row in await session.fetchall("SELECT name FROM llm_manager_migrations")}
        done: list[str] = []
        for m in migrations:
            if m.name in applied:
                continue
            for statement in m.statements(session.dialect):
                await session.execute(statement)
            await session.execute(
                "INSERT INTO llm_manager_migrations (name, applied_at) VALUES (?, ?)", (m.name, datetime.now(UTC))
            )
            done.append(m.name)
        return done
