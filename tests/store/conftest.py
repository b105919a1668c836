"""Fixtures for the store: one suite runs against SQLite (a file under tmp_path) and a real PostgreSQL.

Each PostgreSQL test gets a fresh schema ``t_<random>`` (selected through the URL's ``options=-csearch_path=...``)
that is dropped afterwards. When 127.0.0.1:5432 does not answer, PostgreSQL tests are skipped locally but FAIL in
CI (``CI=true``), so CI never goes green by silently skipping them.

:func:`worker_main` is the body of the worker processes of the multi-process tests (run with ``python -c``).
"""

from __future__ import annotations

import asyncio
import json
import os
import random
import re
import sys
import uuid
from collections.abc import AsyncIterator, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any
from urllib.parse import quote

import psycopg
import pytest

from llm_manager.store import ConversationConflictError, ConversationStore, StoredMessage, open_store
from llm_manager.store.base import SqlConversationStore

PG_HOST = "127.0.0.1"
PG_PORT = 5432
PG_URL = f"postgresql://postgres@{PG_HOST}:{PG_PORT}/test"
SKIP_MESSAGE = (
    f"PostgreSQL not reachable at {PG_HOST}:{PG_PORT}; start it with "
    "`pg_ctlcluster --skip-systemctl-redirect $(ls /etc/postgresql) main start`"
)
ROOT = Path(__file__).resolve().parents[2]

_pg_reachable: bool | None = None


def require_postgres() -> str:
    """The admin URL when PostgreSQL answers; otherwise skip the calling test, or fail it when ``CI=true``."""
    global _pg_reachable
    if _pg_reachable is None:
        try:
            with psycopg.connect(PG_URL, connect_timeout=2):
                _pg_reachable = True
        except psycopg.OperationalError:
            _pg_reachable = False
    if _pg_reachable:
        return PG_URL
    if os.environ.get("CI") == "true":
        pytest.fail(f"{SKIP_MESSAGE} (CI=true: PostgreSQL tests must run, not skip)", pytrace=False)
    pytest.skip(SKIP_MESSAGE)


@contextmanager
def pg_schema() -> Iterator[str]:
    """A URL whose ``search_path`` is a fresh, empty schema, dropped (with everything in it) afterwards."""
    admin = require_postgres()
    schema = f"t_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(f"CREATE SCHEMA {schema}")
    try:
        yield f"{admin}?options={quote(f'-csearch_path={schema}')}"
    finally:
        with psycopg.connect(admin, autocommit=True) as conn:
            conn.execute(f"DROP SCHEMA {schema} CASCADE")


@pytest.fixture(params=["sqlite", "postgres"])
def store_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """The URL of a fresh, empty database of each backend."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'store.db'}"
    else:
        with pg_schema() as url:
            yield url


@pytest.fixture
async def store(store_url: str) -> AsyncIterator[SqlConversationStore]:
    """An open store on a fresh database, closed afterwards."""
    opened = await open_store(store_url)
    assert isinstance(opened, SqlConversationStore)
    try:
        yield opened
    finally:
        await opened.aclose()


async def count_rows(store: ConversationStore, table: str) -> int:
    """Rows in ``table`` of the store's database."""
    assert isinstance(store, SqlConversationStore)
    async with store.db.transaction(False) as session:
        rows = await session.fetchall(f"SELECT COUNT(*) FROM {table}")
    return int(rows[0][0])


# -- turns that prove exclusivity -------------------------------------------------------------------------------

_USER = re.compile(r"^(?P<who>\S+) saw (?P<seen>\d+)$")


async def take_turn(store: ConversationStore, conversation_id: str, who: str) -> None:
    """One turn: read the history, think for a few ms, append a user+assistant pair that records what it saw."""
    async with store.turn(conversation_id) as turn:
        seen = len(turn.history)
        await asyncio.sleep(random.uniform(0.001, 0.005))
        await turn.commit([("user", f"{who} saw {seen}", {"who": who}), ("assistant", f"{who} reply", None)])


def assert_serial_pairs(messages: Sequence[StoredMessage], pairs: int) -> set[str]:
    """After the system prompt: ``pairs`` user+assistant pairs of one turn each, never interleaved, each turn having
    seen exactly the messages before it (so no two turns overlapped). Returns who took the turns."""
    assert messages[0].role == "system"
    assert len(messages) == 1 + 2 * pairs
    seen_by: set[str] = set()
    for position in range(1, len(messages), 2):
        user, assistant = messages[position], messages[position + 1]
        match = _USER.match(user.content)
        assert user.role == "user" and match, user
        who = match["who"]
        assert int(match["seen"]) == position, f"{who} saw {match['seen']} messages but landed at {position}"
        assert (assistant.role, assistant.content) == ("assistant", f"{who} reply")
        assert assistant.parent_id == user.id and user.parent_id == messages[position - 1].id
        seen_by.add(who)
    assert len(seen_by) == pairs
    return seen_by


# -- the worker process -----------------------------------------------------------------------------------------


def spawn_worker_command(url: str, conversation_id: str, tag: str, turns: int) -> list[str]:
    """The command line of a worker process taking ``turns`` turns as ``tag``."""
    code = "import sys; from tests.store.conftest import worker_main; worker_main(sys.argv[1:])"
    return [sys.executable, "-c", code, url, conversation_id, tag, str(turns)]


def worker_main(argv: list[str]) -> None:
    """Open the store, print ``ready``, wait for a line on stdin (so both workers start together), take the turns
    (running a turn again after each :class:`ConversationConflictError`), print ``{"conflicts": n}``."""
    url, conversation_id, tag, turns = argv[0], argv[1], argv[2], int(argv[3])

    async def run() -> dict[str, Any]:
        async with await open_store(url) as store:
            print("ready", flush=True)
            await asyncio.get_running_loop().run_in_executor(None, sys.stdin.readline)
            conflicts = 0
            for i in range(turns):
                while True:
                    try:
                        await take_turn(store, conversation_id, f"{tag}:{i}")
                        break
                    except ConversationConflictError:
                        conflicts += 1
            return {"conflicts": conflicts}

    print(json.dumps(asyncio.run(run())), flush=True)
