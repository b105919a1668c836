"""Durable rows: conversations today, the spend ledger next, in SQLite (default) or PostgreSQL.

>>> store = await open_store(None)                      # doctest: +SKIP
>>> cid = await store.create(system_prompt="Be brief.")  # doctest: +SKIP
>>> async with store.turn(cid) as turn:                  # doctest: +SKIP
...     await turn.commit([("user", "Hi", None), ("assistant", "Hello!", {"model": "gpt-4o"})])

:func:`open_database` opens and migrates a database from a URL; :func:`open_store` puts the conversation store
over one. Several stores (conversations, ledger) can share one :class:`Database`.
"""

from __future__ import annotations

from pathlib import Path
from urllib.parse import unquote, urlsplit

from llm_manager.errors import ConfigError
from llm_manager.store.base import (
    Conversation,
    ConversationConflictError,
    ConversationNotFoundError,
    ConversationStore,
    ConversationSummary,
    NewMessage,
    SqlConversationStore,
    StoredMessage,
    Turn,
    message_id,
)
from llm_manager.store.migrations import MIGRATIONS, Database, Migration, apply_migrations

__all__ = [
    "MIGRATIONS",
    "Conversation",
    "ConversationConflictError",
    "ConversationNotFoundError",
    "ConversationStore",
    "ConversationSummary",
    "Database",
    "Migration",
    "NewMessage",
    "SqlConversationStore",
    "StoredMessage",
    "Turn",
    "apply_migrations",
    "default_sqlite_path",
    "message_id",
    "open_database",
    "open_store",
]

_MEMORY = ":memory:"


def default_sqlite_path() -> Path:
    """``<user data dir>/llm-manager/llm-manager.db`` (e.g. ``~/.local/share/llm-manager/`` on Linux)."""
    import platformdirs

    return Path(platformdirs.user_data_dir("llm-manager")) / "llm-manager.db"


def _sqlite_path(url: str) -> str:
    """The file path of ``sqlite:///absolute/path.db`` (or ``":memory:"`` for ``sqlite:///:memory:``)."""
    parts = urlsplit(url)
    if parts.netloc:
        raise ConfigError(
            f"store.url {url!r}: a SQLite URL has three slashes before an absolute path, as in "
            "sqlite:///home/me/llm-manager.db"
        )
    path = unquote(parts.path)
    if path in ("", "/", "/" + _MEMORY):
        return _MEMORY
    if len(path) > 2 and path[2] == ":" and path[1].isalpha():  # sqlite:///C:/dir/file.db on Windows
        path = path[1:]
    return path


async def open_database(url: str | None) -> Database:
    """Open and migrate the database at ``url``.

    Args:
        url: ``None`` for the default SQLite file (see :func:`default_sqlite_path`); ``sqlite:///abs/path.db``;
            ``sqlite:///:memory:``; ``postgresql://...`` or ``postgres://...`` (any libpq URL).

    Raises:
        ConfigError: an unsupported URL, or the driver for it is not installed.
    """
    if url is None or url.startswith("sqlite:"):
        path = str(default_sqlite_path()) if url is None else _sqlite_path(url)
        if path != _MEMORY:
            Path(path).parent.mkdir(parents=True, exist_ok=True)
        try:  # imported here: nothing loads a database driver before a store is opened
            from llm_manager.store.sqlite import SQLiteDatabase
        except ImportError as exc:
            raise ConfigError("the SQLite store needs the `aiosqlite` package: pip install aiosqlite") from exc
        return await SQLiteDatabase.open(path)
    if url.startswith(("postgresql:", "postgres:")):
        try:
            from llm_manager.store.postgres import PostgresDatabase
        except ImportError as exc:
            raise ConfigError(
                "a postgresql:// store needs the PostgreSQL driver: pip install 'llm-manager[postgres]'"
            ) from exc
        return await PostgresDatabase.open(url)
    scheme = url.partition(":")[0]
    raise ConfigError(f"store.url: unsupported scheme {scheme!r}; use sqlite:///path.db or postgresql://...")


async def open_store(url: str | None) -> ConversationStore:
    """The conversation store over a database opened with :func:`open_database` (closed with the store)."""
    return SqlConversationStore(await open_database(url))
