"""The conversation store, against SQLite and PostgreSQL alike (see ``conftest.py``)."""

from __future__ import annotations

import asyncio
import hashlib
import json
import subprocess
import sys
from datetime import UTC
from pathlib import Path

import pytest

from llm_manager.errors import ConfigError
from llm_manager.store import (
    ConversationConflictError,
    ConversationNotFoundError,
    ConversationStore,
    SqlConversationStore,
    message_id,
    open_store,
)
from tests.store.conftest import (
    ROOT,
    assert_serial_pairs,
    count_rows,
    pg_schema,
    spawn_worker_command,
    take_turn,
)

MESSAGES = "llm_manager_messages"


async def test_create_and_get_keep_the_system_prompt_first(store: ConversationStore) -> None:
    cid = await store.create("You are terse.", title="Ops", metadata={"project": "x"})
    conv = await store.get(cid)
    assert (conv.id, conv.title, conv.metadata, conv.forked_from) == (cid, "Ops", {"project": "x"}, None)
    assert [(m.role, m.content, m.parent_id) for m in conv.messages] == [("system", "You are terse.", None)]
    assert conv.created_at.tzinfo == UTC and conv.messages[0].created_at.tzinfo == UTC
    async with store.turn(cid) as turn:
        assert [m.role for m in turn.history] == ["system"]
        await turn.commit([("user", "hi", None)])
    assert [m.content for m in (await store.get(cid)).messages] == ["You are terse.", "hi"]


async def test_conversation_without_system_prompt_starts_empty(store: ConversationStore) -> None:
    cid = await store.create()
    assert (await store.get(cid)).messages == []
    async with store.turn(cid) as turn:
        (first,) = await turn.commit([("user", "hello", None)])
    assert first.parent_id is None and first.id == message_id("user", "hello", None)


async def test_unknown_conversation(store: ConversationStore) -> None:
    with pytest.raises(ConversationNotFoundError) as info:
        await store.get("conv_missing")
    assert isinstance(info.value, LookupError) and info.value.conversation_id == "conv_missing"
    with pytest.raises(ConversationNotFoundError):
        async with store.turn("conv_missing"):
            pass
    with pytest.raises(ConversationNotFoundError):
        await store.fork("conv_missing")
    assert await store.delete("conv_missing") is False


async def test_commit_stores_metadata_apart_and_returns_the_messages(store: ConversationStore) -> None:
    cid = await store.create("sys")
    async with store.turn(cid) as turn:
        user, reply = await turn.commit(
            [("user", "2+2?", None), ("assistant", "4", {"model": "gpt-4o", "usage": {"output_tokens": 1}})]
        )
        assert turn.history[-2:] == [user, reply]
        (more,) = await turn.commit([("user", "thanks", {"request_id": "r1"})])  # a second commit appends after
    assert reply.parent_id == user.id and more.parent_id == reply.id
    messages = (await store.get(cid)).messages
    assert messages[1:] == [user, reply, more]
    assert messages[2].metadata == {"model": "gpt-4o", "usage": {"output_tokens": 1}}
    assert messages[1].metadata == {}


async def test_leaving_a_turn_without_commit_stores_nothing(store: ConversationStore) -> None:
    cid = await store.create("sys")
    async with store.turn(cid):
        pass
    with pytest.raises(RuntimeError, match="boom"):
        async with store.turn(cid) as turn:
            raise RuntimeError("boom")
    with pytest.raises(ValueError, match="invalid role"):
        async with store.turn(cid) as turn:
            await turn.commit([("user", "ok", None), ("wizard", "no", None)])  # type: ignore[list-item]
    assert len((await store.get(cid)).messages) == 1
    assert await count_rows(store, MESSAGES) == 1


async def test_identical_prefixes_are_stored_once(store: ConversationStore) -> None:
    a, b = await store.create("Be kind."), await store.create("Be kind.")
    for cid in (a, b):
        async with store.turn(cid) as turn:
            await turn.commit([("user", "hi", None), ("assistant", "hello", {"conversation": cid})])
    assert await count_rows(store, MESSAGES) == 3
    ma, mb = (await store.get(a)).messages, (await store.get(b)).messages
    assert [m.id for m in ma] == [m.id for m in mb]
    # Metadata is per conversation even though the row is shared.
    assert (ma[2].metadata, mb[2].metadata) == ({"conversation": a}, {"conversation": b})


async def test_identical_turns_at_different_positions_differ(store: ConversationStore) -> None:
    cid = await store.create("sys")
    for _ in range(2):
        async with store.turn(cid) as turn:
            await turn.commit([("user", "again", None), ("assistant", "ok", None)])
    ids = [m.id for m in (await store.get(cid)).messages]
    assert len(set(ids)) == 5
    assert await count_rows(store, MESSAGES) == 5


def test_message_id_is_the_hash_of_the_canonical_json() -> None:
    canonical = '{"algo":"v1","content":"héllo","parent":null,"role":"user"}'.encode()
    assert message_id("user", "héllo", None) == "sha256:" + hashlib.sha256(canonical).hexdigest()
    child = message_id("assistant", "hi", "sha256:00")
    assert child != message_id("assistant", "hi", None) != message_id("user", "hi", "sha256:00")


async def test_fork_shares_messages_and_copies_metadata(store: ConversationStore) -> None:
    cid = await store.create("sys", title="Original", metadata={"k": 1})
    async with store.turn(cid) as turn:
        await turn.commit([("user", "q1", None), ("assistant", "a1", {"model": "m1"})])
        await turn.commit([("user", "q2", None), ("assistant", "a2", None)])
    rows = await count_rows(store, MESSAGES)
    whole, at_a1, negative = await store.fork(cid), await store.fork(cid, at=2), await store.fork(cid, at=-3)
    assert await count_rows(store, MESSAGES) == rows  # forking copies no message
    source = (await store.get(cid)).messages
    assert (await store.get(whole)).messages == source
    fork = await store.get(at_a1)
    assert fork.messages == source[:3] and fork.messages[2].metadata == {"model": "m1"}
    assert (fork.forked_from, fork.title, fork.metadata) == (cid, "Original", {"k": 1})
    assert (await store.get(negative)).messages == source[:3]
    # Diverging: only the new branch's messages are new rows.
    async with store.turn(at_a1) as turn:
        assert len(turn.history) == 3
        await turn.commit([("user", "other q2", None)])
    assert await count_rows(store, MESSAGES) == rows + 1
    assert len((await store.get(cid)).messages) == 5
    for bad in (5, -6):
        with pytest.raises(IndexError):
            await store.fork(cid, at=bad)


async def test_fork_of_an_empty_conversation(store: ConversationStore) -> None:
    fork = await store.get(await store.fork(await store.create()))
    assert fork.messages == []
    with pytest.raises(IndexError):
        await store.fork(fork.id, at=0)


async def test_delete_removes_only_what_nothing_else_reaches(store: ConversationStore) -> None:
    cid = await store.create("sys")
    async with store.turn(cid) as turn:
        await turn.commit([("user", "q", None), ("assistant", "a", None)])
    fork = await store.fork(cid, at=1)
    async with store.turn(fork) as turn:
        await turn.commit([("assistant", "another a", None)])
    assert await count_rows(store, MESSAGES) == 4
    assert await store.delete(cid) is True
    assert await store.delete(cid) is False
    with pytest.raises(ConversationNotFoundError):
        await store.get(cid)
    assert [m.content for m in (await store.get(fork)).messages] == ["sys", "q", "another a"]
    assert await count_rows(store, MESSAGES) == 3  # only the source's own "a" went
    assert await store.delete(fork) is True
    assert await count_rows(store, MESSAGES) == 0
    assert await count_rows(store, "llm_manager_message_meta") == 0


async def test_commit_after_delete_stores_nothing(store: ConversationStore) -> None:
    cid = await store.create("sys")
    with pytest.raises(ConversationNotFoundError):
        async with store.turn(cid) as turn:
            await store.delete(cid)
            await turn.commit([("user", "late", None)])
    assert await count_rows(store, MESSAGES) == 0


async def test_list_newest_first_with_paging_and_previews(store: ConversationStore) -> None:
    ids = [await store.create("sys", title=f"c{i}") for i in range(3)]
    async with store.turn(ids[0]) as turn:
        await turn.commit([("user", "line one\n  line two " + "x" * 200, None)])
    summaries = await store.list()
    assert [s.id for s in summaries] == [ids[0], ids[2], ids[1]]
    first = summaries[0]
    assert (first.title, first.message_count) == ("c0", 2)
    assert first.last_message_preview is not None and first.last_message_preview.startswith("line one line two xx")
    assert len(first.last_message_preview) == 100 and first.last_message_preview.endswith("…")
    assert summaries[1].last_message_preview == "sys"
    assert [s.id for s in await store.list(limit=1, offset=1)] == [ids[2]]
    assert (await store.list(offset=3)) == []
    empty = await store.create()
    assert (await store.list(limit=1))[0].last_message_preview is None
    assert (await store.list(limit=1))[0].id == empty


async def test_fifty_concurrent_turns_never_overlap(store: ConversationStore) -> None:
    cid = await store.create("sys")
    await asyncio.gather(*(take_turn(store, cid, f"t{i}") for i in range(50)))
    messages = (await store.get(cid)).messages
    assert len(messages) == 101
    assert_serial_pairs(messages, 50)
    assert (await store.list())[0].message_count == 101


async def test_two_stores_on_one_database(store_url: str) -> None:
    """Two stores are what two processes are: PostgreSQL excludes their turns, SQLite detects the overlap."""
    async with await open_store(store_url) as a, await open_store(store_url) as b:
        cid = await a.create("sys")
        async with a.turn(cid) as turn_a:
            if store_url.startswith("sqlite"):
                async with b.turn(cid) as turn_b:  # not excluded: the lock is per process
                    await turn_a.commit([("user", "from a", None)])
                    with pytest.raises(ConversationConflictError):
                        await turn_b.commit([("user", "from b", None)])
                expected = ["sys", "from a"]
            else:
                waiting = asyncio.create_task(take_turn(b, cid, "b"))
                await asyncio.sleep(0.2)
                assert not waiting.done()  # b waits for a's advisory lock
                await turn_a.commit([("user", "from a", None)])
                expected = ["sys", "from a", "b saw 2", "b reply"]
        if not store_url.startswith("sqlite"):
            await waiting
        assert [m.content for m in (await b.get(cid)).messages] == expected


async def test_resume_after_restart(store_url: str) -> None:
    store = await open_store(store_url)
    cid = await store.create("sys", title="kept")
    await take_turn(store, cid, "before")
    before = await store.get(cid)
    await store.aclose()
    async with await open_store(store_url) as reopened:
        assert await reopened.get(cid) == before
        await take_turn(reopened, cid, "after")
        assert_serial_pairs((await reopened.get(cid)).messages, 2)


def test_two_processes_share_one_conversation(store_url: str) -> None:
    """PostgreSQL: the turns of two processes are exclusive. SQLite: overlapping turns of two processes raise
    ConversationConflictError (the worker runs the turn again), so nothing is lost or interleaved either way."""

    async def create() -> str:
        async with await open_store(store_url) as store:
            return await store.create("sys")

    cid = asyncio.run(create())
    workers = [
        subprocess.Popen(
            spawn_worker_command(store_url, cid, tag, 10), cwd=ROOT, stdin=subprocess.PIPE, stdout=subprocess.PIPE
        )
        for tag in ("p1", "p2")
    ]
    try:
        for w in workers:
            assert w.stdout is not None and w.stdout.readline().strip() == b"ready"
        for w in workers:  # both start their turns together
            assert w.stdin is not None
            w.stdin.write(b"go\n")
            w.stdin.flush()
        results = [json.loads(w.communicate(timeout=30)[0]) for w in workers]
    finally:
        for w in workers:
            if w.poll() is None:  # pragma: no cover - only when a worker hangs
                w.kill()
                w.wait()
    assert all(w.returncode == 0 for w in workers)

    async def check() -> None:
        async with await open_store(store_url) as store:
            who = assert_serial_pairs((await store.get(cid)).messages, 20)
        assert who == {f"p{p}:{i}" for p in (1, 2) for i in range(10)}

    asyncio.run(check())
    if not store_url.startswith("sqlite"):
        assert [r["conflicts"] for r in results] == [0, 0]


async def test_sqlite_pragmas(tmp_path: Path) -> None:
    async with await open_store(f"sqlite:///{tmp_path}/p.db") as store:
        assert isinstance(store, SqlConversationStore)
        async with store.db.transaction(False) as session:
            assert (await session.fetchall("PRAGMA journal_mode"))[0][0] == "wal"
            assert (await session.fetchall("PRAGMA synchronous"))[0][0] == 1  # NORMAL
            assert (await session.fetchall("PRAGMA foreign_keys"))[0][0] == 1
            assert (await session.fetchall("PRAGMA busy_timeout"))[0][0] > 0


async def test_in_memory_sqlite() -> None:
    async with await open_store("sqlite:///:memory:") as store:
        cid = await store.create("sys")
        assert len((await store.get(cid)).messages) == 1


async def test_default_location_is_the_user_data_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "data"))
    if sys.platform != "linux":  # pragma: no cover - platformdirs reads XDG_DATA_HOME on Linux only
        pytest.skip("XDG_DATA_HOME decides the data dir on Linux only")
    async with await open_store(None) as store:
        await store.create("sys")
    assert (tmp_path / "data" / "llm-manager" / "llm-manager.db").is_file()


@pytest.mark.parametrize(
    ("url", "match"), [("sqlite://relative.db", "three slashes"), ("mysql://db/x", "unsupported scheme 'mysql'")]
)
async def test_bad_urls_are_config_errors(url: str, match: str) -> None:
    with pytest.raises(ConfigError, match=match):
        await open_store(url)


@pytest.mark.parametrize(
    ("module", "url", "match"),
    [
        ("psycopg", "postgresql://127.0.0.1/test", r"llm-manager\[postgres\]"),
        ("psycopg_pool", "postgres://127.0.0.1/test", r"llm-manager\[postgres\]"),
        ("aiosqlite", "sqlite:///:memory:", "aiosqlite"),
    ],
)
async def test_missing_driver_is_a_config_error(
    module: str, url: str, match: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setitem(sys.modules, module, None)  # makes `import <module>` raise ImportError
    for name in ("llm_manager.store.postgres", "llm_manager.store.sqlite"):
        monkeypatch.delitem(sys.modules, name, raising=False)
    with pytest.raises(ConfigError, match=match):
        await open_store(url)


def test_importing_the_package_loads_no_driver() -> None:
    code = "import sys, llm_manager.store; print(sorted({'aiosqlite', 'psycopg'} & set(sys.modules)))"
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


def test_postgres_helper_fails_in_ci_and_skips_elsewhere(monkeypatch: pytest.MonkeyPatch) -> None:
    from tests.store import conftest

    monkeypatch.setattr(conftest, "_pg_reachable", False)  # as if nothing answered on 127.0.0.1:5432
    monkeypatch.setenv("CI", "true")
    with pytest.raises(pytest.fail.Exception, match="CI=true"):
        conftest.require_postgres()
    monkeypatch.delenv("CI")
    with pytest.raises(pytest.skip.Exception, match=r"PostgreSQL not reachable at 127\.0\.0\.1:5432; start it with"):
        conftest.require_postgres()


async def test_a_cancelled_wait_for_a_postgres_turn_leaks_no_lock() -> None:
    """Cancelled while waiting for the advisory lock, a turn must not leave the lock held by a pooled connection."""
    with pg_schema() as url:
        async with await open_store(url) as a, await open_store(url) as b:
            cid = await a.create("sys")
            async with a.turn(cid):
                waiting = asyncio.create_task(take_turn(b, cid, "cancelled"))
                await asyncio.sleep(0.2)
                waiting.cancel()
                with pytest.raises(asyncio.CancelledError):
                    await waiting
            for store, who in ((a, "a"), (b, "b"), (a, "a2")):
                await asyncio.wait_for(take_turn(store, cid, who), 5)
            assert_serial_pairs((await a.get(cid)).messages, 3)


def test_the_package_exports_what_it_lists() -> None:
    import llm_manager.store

    assert sorted(llm_manager.store.__all__) == sorted(set(llm_manager.store.__all__))
    for name in llm_manager.store.__all__:
        assert getattr(llm_manager.store, name) is not None
