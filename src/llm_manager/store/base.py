"""Persisted conversations: the data types, the :class:`ConversationStore` interface and its SQL implementation.

Messages are content-addressed: a message's id hashes its role, its content and its parent's id
(:func:`message_id`), so a message is one row however many conversations reach it, identical turns at different
positions still differ (their parents do), and a fork copies no message at all. A conversation row points at its
*head* message; the history is the walk from the head back through the parents. Metadata about one
conversation's use of a message (model, deployment, usage, request id) lives in a separate table keyed by
(conversation, message), so the content rows stay shareable.

Writes to one conversation go through :meth:`ConversationStore.turn`: an exclusive lock for the block, the history
as read under it, and :meth:`Turn.commit`, which appends after the head in one transaction. Every commit also
checks and bumps the conversation's ``version``, so an update that a lock failed to prevent is an error
(:class:`ConversationConflictError`), never a lost message. How far the lock reaches depends on the backend: see
:mod:`llm_manager.store.sqlite` and :mod:`llm_manager.store.postgres`.
"""

from __future__ import annotations

import builtins
import hashlib
import uuid
from abc import ABC, abstractmethod
from collections.abc import AsyncIterator, Mapping, Sequence
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from types import TracebackType
from typing import Any, Self, cast

from llm_manager import _json
from llm_manager.errors import ConversationNotFoundError
from llm_manager.store.migrations import Database, SqlSession, Transactions, from_db_json, from_db_time
from llm_manager.store.parts import collect_blobs, load_parts, save_blobs, stored_form
from llm_manager.types import TEXT_SEPARATOR, Part, Role, TextPart

__all__ = [
    "MESSAGE_ID_ALGO",
    "Conversation",
    "ConversationConflictError",
    "ConversationNotFoundError",
    "ConversationStore",
    "ConversationSummary",
    "NewMessage",
    "SqlConversationStore",
    "StoredMessage",
    "Turn",
    "message_id",
]

MESSAGE_ID_ALGO = "v1"
"""Version tag hashed into every message id; a new canonical form gets a new tag (old ids stay valid)."""

_PREVIEW_CHARS = 100

NewMessage = tuple[Role, "str | tuple[Part, ...]", Mapping[str, Any] | None]
"""A message to append: role, content (text or content parts), metadata (JSON-ready; ``None`` for none)."""


@dataclass(frozen=True, slots=True)
class StoredMessage:
    """One message of a conversation's history."""

    id: str
    """``"sha256:<hex>"`` of the canonical message (see :func:`message_id`)."""
    role: Role
    content: str
    """The text (of a message with parts: its text parts, see :attr:`parts`)."""
    created_at: datetime
    """When it was appended to this conversation (UTC)."""
    parent_id: str | None
    """The previous message's id; ``None`` for the first."""
    metadata: dict[str, Any] = field(default_factory=dict)
    """This conversation's facts about the message: model, deployment, usage, request id..."""
    parts: tuple[Part, ...] | None = None
    """The content parts (images, documents, reasoning …) of a message that is more than text; ``None`` otherwise."""


@dataclass(frozen=True, slots=True)
class Conversation:
    """A conversation with its full history, oldest message first."""

    id: str
    title: str | None
    created_at: datetime
    updated_at: datetime
    messages: list[StoredMessage]
    metadata: dict[str, Any] = field(default_factory=dict)
    forked_from: str | None = None
    """The conversation this one was forked from (which may have been deleted since)."""


@dataclass(frozen=True, slots=True)
class ConversationSummary:
    """A line of :meth:`ConversationStore.list`."""

    id: str
    title: str | None
    created_at: datetime
    updated_at: datetime
    message_count: int
    last_message_preview: str | None
    """The start of the last message on one line, ``None`` when there is no message."""


class ConversationConflictError(RuntimeError):
    """Someone else appended to the conversation since this turn read it; nothing of this turn was stored.

    Only possible when the turn lock does not reach the other writer (two processes on one SQLite file); run the
    turn again to continue from the new history.
    """

    def __init__(self, conversation_id: str) -> None:
        super().__init__(conversation_id)
        self.conversation_id = conversation_id

    def __str__(self) -> str:
        return f"conversation {self.conversation_id!r} changed during the turn; nothing was stored, retry the turn"


def message_id(role: str, content: str | list[dict[str, Any]], parent_id: str | None) -> str:
    """The content address of a message: ``"sha256:" + hex(sha256(canonical JSON))``.

    The canonical JSON is the object ``{"algo", "content", "parent", "role"}`` with keys in that (sorted) order,
    no whitespace, UTF-8 without ASCII escaping. The content of a message with parts is their stored form, where
    inline bytes are their own content address (:func:`llm_manager.store.parts.stored_form`).
    """
    canonical = {"algo": MESSAGE_ID_ALGO, "content": content, "parent": parent_id, "role": role}
    return "sha256:" + hashlib.sha256(_json.dumps(canonical)).hexdigest()


class Turn(ABC):
    """One exclusive turn on a conversation (see :meth:`ConversationStore.turn`)."""

    conversation_id: str
    history: builtins.list[StoredMessage]
    """The history as read under the lock, then extended by each :meth:`commit`."""

    @abstractmethod
    async def commit(self, messages: Sequence[NewMessage]) -> builtins.list[StoredMessage]:
        """Append ``messages`` in order after the current head, atomically; returns them as stored.

        Raises :class:`ConversationNotFoundError` when the conversation was deleted meanwhile and
        :class:`ConversationConflictError` when another writer got in first; in both cases nothing is stored.
        """


class ConversationStore(ABC):
    """Durable conversations. Every method is safe to call concurrently; use as ``async with``."""

    @abstractmethod
    async def create(
        self, system_prompt: str | None = None, title: str | None = None, metadata: Mapping[str, Any] | None = None
    ) -> str:
        """Start a conversation, with ``system_prompt`` as its first message when given; returns its id."""

    @abstractmethod
    async def get(self, conversation_id: str) -> Conversation:
        """The conversation and its whole history; :class:`ConversationNotFoundError` when unknown."""

    @abstractmethod
    async def delete(self, conversation_id: str) -> bool:
        """Delete a conversation (and the messages no other conversation reaches); ``False`` when unknown."""

    @abstractmethod
    async def fork(self, conversation_id: str, at: int | None = None) -> str:
        """A new conversation whose history is the source's up to index ``at`` included (negative counts from
        the end; default: all of it). Nothing is copied but metadata: the messages are shared.

        Raises :class:`ConversationNotFoundError`, or :class:`IndexError` when ``at`` is out of range.
        """

    @abstractmethod
    def turn(self, conversation_id: str) -> AbstractAsyncContextManager[Turn]:
        """Lock the conversation for the block and yield a :class:`Turn` holding its history.

        Leaving the block without :meth:`Turn.commit` stores nothing. Turns on one conversation do not nest.
        Raises :class:`ConversationNotFoundError` on entry when the conversation does not exist.
        """

    @abstractmethod
    async def list(self, limit: int = 50, offset: int = 0) -> builtins.list[ConversationSummary]:
        """Conversations, most recently updated first."""

    @abstractmethod
    async def aclose(self) -> None:
        """Release connections. Idempotent."""

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.aclose()


# -- the SQL implementation (dialect-neutral; the Database hides the driver) -----------------------------------

_CONVERSATION = (
    "SELECT id, title, head_id, version, metadata, forked_from, created_at, updated_at"
    " FROM llm_manager_conversations WHERE id = ?"
)
_CHAIN = """WITH RECURSIVE chain (id, role, content, parent_id, created_at, parts, depth) AS (
    SELECT id, role, content, parent_id, created_at, parts, 0 FROM llm_manager_messages WHERE id = ?
    UNION ALL
    SELECT m.id, m.role, m.content, m.parent_id, m.created_at, m.parts, chain.depth + 1
    FROM llm_manager_messages m JOIN chain ON m.id = chain.parent_id
)"""
_HISTORY = f"""{_CHAIN}
SELECT chain.id, chain.role, chain.content, chain.parent_id, COALESCE(x.created_at, chain.created_at), x.metadata,
    chain.parts
FROM chain LEFT JOIN llm_manager_message_meta x ON x.conversation_id = ? AND x.message_id = chain.id
ORDER BY chain.depth DESC"""
_CHAIN_IDS = f"{_CHAIN} SELECT id FROM chain ORDER BY depth"
_INSERT_MESSAGE = (
    "INSERT INTO llm_manager_messages (id, role, content, parent_id, created_at, parts) VALUES (?, ?, ?, ?, ?, ?)"
    " ON CONFLICT (id) DO NOTHING"
)
_INSERT_META = (
    "INSERT INTO llm_manager_message_meta (conversation_id, message_id, metadata, created_at) VALUES (?, ?, ?, ?)"
    " ON CONFLICT (conversation_id, message_id) DO NOTHING"
)
_INSERT_CONVERSATION = (
    "INSERT INTO llm_manager_conversations"
    " (id, title, head_id, message_count, metadata, forked_from, created_at, updated_at)"
    " VALUES (?, ?, ?, ?, ?, ?, ?, ?)"
)
_ADVANCE_HEAD = (
    "UPDATE llm_manager_conversations SET head_id = ?, message_count = message_count + ?, version = version + 1,"
    " updated_at = ? WHERE id = ? AND version = ?"
)
_COPY_META = """WITH RECURSIVE chain (id) AS (
    SELECT CAST(? AS TEXT)
    UNION ALL
    SELECT m.parent_id FROM llm_manager_messages m JOIN chain ON m.id = chain.id WHERE m.parent_id IS NOT NULL
)
INSERT INTO llm_manager_message_meta (conversation_id, message_id, metadata, created_at)
SELECT ?, x.message_id, x.metadata, x.created_at FROM llm_manager_message_meta x
JOIN chain ON x.message_id = chain.id WHERE x.conversation_id = ?"""
# A message may go only when nothing reaches it any more: no child, no conversation head, no metadata row.
_COLLECT = """DELETE FROM llm_manager_messages WHERE id = ?
    AND NOT EXISTS (SELECT 1 FROM llm_manager_messages c WHERE c.parent_id = ?)
    AND NOT EXISTS (SELECT 1 FROM llm_manager_conversations v WHERE v.head_id = ?)
    AND NOT EXISTS (SELECT 1 FROM llm_manager_message_meta x WHERE x.message_id = ?)"""
_LIST = f"""SELECT c.id, c.title, c.created_at, c.updated_at, c.message_count, substr(m.content, 1, {_PREVIEW_CHARS * 4})
FROM llm_manager_conversations c LEFT JOIN llm_manager_messages m ON m.id = c.head_id
ORDER BY c.updated_at DESC, c.created_at DESC, c.id LIMIT ? OFFSET ?"""


@dataclass(slots=True)
class _Row:
    id: str
    title: str | None
    head_id: str | None
    version: int
    metadata: dict[str, Any]
    forked_from: str | None
    created_at: datetime
    updated_at: datetime


async def _read_row(session: SqlSession, conversation_id: str, lock: str = "") -> _Row:
    """The conversation row (``lock``: ``"UPDATE"``/``"SHARE"`` row lock where the dialect has them)."""
    sql = _CONVERSATION + (f" FOR {lock}" if lock and session.dialect.row_locks else "")
    rows = await session.fetchall(sql, (conversation_id,))
    if not rows:
        raise ConversationNotFoundError.of(conversation_id)
    r = rows[0]
    return _Row(r[0], r[1], r[2], r[3], from_db_json(r[4]), r[5], from_db_time(r[6]), from_db_time(r[7]))


async def _read_history(session: SqlSession, row: _Row) -> builtins.list[StoredMessage]:
    if row.head_id is None:
        return []
    rows = await session.fetchall(_HISTORY, (row.head_id, row.id))
    # Columns: id, role, content, parent_id, created_at, metadata (the LEFT JOIN's NULL would mean "none"), parts.
    parts = await load_parts(session, [_json_text(r[6]) for r in rows])
    return [
        StoredMessage(r[0], cast(Role, r[1]), r[2], from_db_time(r[4]), r[3], from_db_json(r[5] or "{}"), p)
        for r, p in zip(rows, parts, strict=True)
    ]


def _json_text(value: Any) -> str | None:
    # PostgreSQL's driver hands JSONB back decoded; SQLite, as the text it stored.
    if value is None or isinstance(value, str):
        return value
    return _json.dumps(value).decode()


async def _insert_messages(
    session: SqlSession, parent_id: str | None, messages: Sequence[NewMessage], now: datetime
) -> builtins.list[StoredMessage]:
    """Insert ``messages`` as a chain after ``parent_id``; rows already stored (same content, same parent) are
    reused as they are."""
    stored: builtins.list[StoredMessage] = []
    for role, content, metadata in messages:
        if role not in ("system", "user", "assistant"):
            raise ValueError(f"invalid role {role!r}")
        if isinstance(content, str):
            mid = message_id(role, content, parent_id)
            msg = StoredMessage(mid, role, content, now, parent_id, dict(metadata or {}))
            await session.execute(_INSERT_MESSAGE, (msg.id, role, content, parent_id, now, None))
        else:
            form, blobs = stored_form(content)
            text = TEXT_SEPARATOR.join(p.text for p in content if isinstance(p, TextPart))
            mid = message_id(role, form, parent_id)
            msg = StoredMessage(mid, role, text, now, parent_id, dict(metadata or {}), tuple(content))
            await session.execute(_INSERT_MESSAGE, (mid, role, text, parent_id, now, _json.dumps(form).decode()))
            await save_blobs(session, mid, blobs, now)
        stored.append(msg)
        parent_id = msg.id
    return stored


async def _insert_conversation(
    session: SqlSession, values: tuple[str, str | None, str | None, int, Mapping[str, Any] | None, str | None, datetime]
) -> None:
    """Insert a conversation row from (id, title, head_id, message_count, metadata, forked_from, now)."""
    conversation_id, title, head, count, metadata, forked_from, now = values
    meta = _json.dumps(dict(metadata or {})).decode()
    await session.execute(_INSERT_CONVERSATION, (conversation_id, title, head, count, meta, forked_from, now, now))


async def _insert_meta(session: SqlSession, conversation_id: str, stored: Sequence[StoredMessage]) -> None:
    """Record the per-conversation metadata of ``stored`` (the conversation row must exist: foreign key)."""
    for msg in stored:
        meta = _json.dumps(msg.metadata).decode()
        await session.execute(_INSERT_META, (conversation_id, msg.id, meta, msg.created_at))


class _SqlTurn(Turn):
    def __init__(self, transactions: Transactions, row: _Row, history: builtins.list[StoredMessage]) -> None:
        self.conversation_id = row.id
        self.history = history
        self._transactions = transactions
        self._version = row.version

    async def commit(self, messages: Sequence[NewMessage]) -> builtins.list[StoredMessage]:
        if not messages:
            return []
        now = datetime.now(UTC)
        head = self.history[-1].id if self.history else None
        async with self._transactions(True) as session:
            # Check before inserting: a deleted conversation's messages may be gone, parents included. The row
            # lock (PostgreSQL) keeps a concurrent delete out until this commit is done.
            row = await _read_row(session, self.conversation_id, lock="UPDATE")
            if row.version != self._version:
                raise ConversationConflictError(self.conversation_id)
            stored = await _insert_messages(session, head, messages, now)
            params = (stored[-1].id, len(stored), now, self.conversation_id, self._version)
            if not await session.execute(_ADVANCE_HEAD, params):  # cannot happen under the row lock; never ignore
                raise ConversationConflictError(self.conversation_id)
            await _insert_meta(session, self.conversation_id, stored)
        self._version += 1
        self.history = [*self.history, *stored]
        return stored


class SqlConversationStore(ConversationStore):
    """:class:`ConversationStore` over any :class:`~llm_manager.store.migrations.Database`.

    Args:
        db: The database (already migrated).
        owns_db: Whether :meth:`aclose` closes ``db`` too.
    """

    def __init__(self, db: Database, *, owns_db: bool = True) -> None:
        self.db = db
        self._owns_db = owns_db

    async def create(
        self, system_prompt: str | None = None, title: str | None = None, metadata: Mapping[str, Any] | None = None
    ) -> str:
        conversation_id = f"conv_{uuid.uuid4().hex}"
        now = datetime.now(UTC)
        first: builtins.list[NewMessage] = [] if system_prompt is None else [("system", system_prompt, None)]
        async with self.db.transaction(True) as session:
            stored = await _insert_messages(session, None, first, now)
            head = stored[-1].id if stored else None
            await _insert_conversation(session, (conversation_id, title, head, len(stored), metadata, None, now))
            await _insert_meta(session, conversation_id, stored)
        return conversation_id

    async def get(self, conversation_id: str) -> Conversation:
        async with self.db.transaction(False) as session:
            row = await _read_row(session, conversation_id)
            messages = await _read_history(session, row)
        return Conversation(row.id, row.title, row.created_at, row.updated_at, messages, row.metadata, row.forked_from)

    async def delete(self, conversation_id: str) -> bool:
        async with self.db.transaction(True) as session:
            try:
                row = await _read_row(session, conversation_id, lock="UPDATE")
            except ConversationNotFoundError:
                return False
            chain = [] if row.head_id is None else await session.fetchall(_CHAIN_IDS, (row.head_id,))
            await session.execute("DELETE FROM llm_manager_message_meta WHERE conversation_id = ?", (row.id,))
            await session.execute("DELETE FROM llm_manager_conversations WHERE id = ?", (row.id,))
            # Walk from the head towards the root, deleting what nothing else reaches. The first message still
            # reached ends the walk: everything before it is reached through it.
            for (mid,) in chain:
                if not await session.execute(_COLLECT, (mid, mid, mid, mid)):
                    break
            await collect_blobs(session)
        return True

    async def fork(self, conversation_id: str, at: int | None = None) -> str:
        new_id = f"conv_{uuid.uuid4().hex}"
        now = datetime.now(UTC)
        async with self.db.transaction(True) as session:
            # FOR SHARE: a concurrent delete of the source waits until the fork holds its own reference.
            row = await _read_row(session, conversation_id, lock="SHARE")
            ids = [] if row.head_id is None else [r[0] for r in await session.fetchall(_CHAIN_IDS, (row.head_id,))]
            ids.reverse()
            if at is None:
                head, count = (ids[-1], len(ids)) if ids else (None, 0)
            else:
                index = at + len(ids) if at < 0 else at
                if not 0 <= index < len(ids):
                    raise IndexError(f"fork index {at} out of range for {len(ids)} messages")
                head, count = ids[index], index + 1
            await _insert_conversation(session, (new_id, row.title, head, count, row.metadata, row.id, now))
            if head is not None:
                await session.execute(_COPY_META, (head, new_id, row.id))
        return new_id

    @asynccontextmanager
    async def turn(self, conversation_id: str) -> AsyncIterator[Turn]:
        async with self.db.exclusive(conversation_id) as transactions:
            async with transactions(False) as session:
                row = await _read_row(session, conversation_id)
                history = await _read_history(session, row)
            yield _SqlTurn(transactions, row, history)

    async def aclose(self) -> None:
        if self._owns_db:
            await self.db.aclose()

    async def list(self, limit: int = 50, offset: int = 0) -> builtins.list[ConversationSummary]:
        async with self.db.transaction(False) as session:
            rows = await session.fetchall(_LIST, (limit, offset))
        return [
            ConversationSummary(r[0], r[1], from_db_time(r[2]), from_db_time(r[3]), r[4], _preview(r[5])) for r in rows
        ]


def _preview(content: str | None) -> str | None:
    if content is None:
        return None
    line = " ".join(content.split())
    return line if len(line) <= _PREVIEW_CHARS else line[: _PREVIEW_CHARS - 1] + "…"
