"""A program that never closes its manager still ends, with the ledger written and a ResourceWarning said.

Each script runs in a subprocess exactly as a user would write it (no ``async with``, no ``close()``); the ledger's
flush interval is a minute, so its row reaches the file only through the exit path.
"""

from __future__ import annotations

import asyncio
import gc
import json
import sqlite3
import subprocess
import sys
import textwrap
import threading
import time
from pathlib import Path
from typing import Any

import pytest

from llm_manager import LLMManager
from llm_manager.config import Settings, load_settings
from llm_manager.store import open_database
from tests.helpers import instant
from tests.store.conftest import ROOT

CONFIG = """
import sys
cfg = {{
    "models": {{"m": {{"provider": "simulated", "simulate": {{"latency_ms": 1}}}}}},
    "store": {{"url": "sqlite:///{db}"}},
    "ledger": {{"flush_interval_s": 60}},
}}
"""

SCRIPTS = {
    "asyncio.run, no close": """
        import asyncio
        from llm_manager import LLMManager

        async def main():
            llm = LLMManager.from_config(cfg)
            print((await llm.generate("hi")).id)

        asyncio.run(main())
    """,
    "asyncio.run, __aenter__ without __aexit__": """
        import asyncio
        from llm_manager import LLMManager

        async def main():
            llm = await LLMManager.from_config(cfg).__aenter__()
            print((await llm.generate("hi")).id)

        asyncio.run(main())
    """,
    "a stream, asyncio.run, no close": """
        import asyncio
        from llm_manager import LLMManager

        async def main():
            llm = LLMManager.from_config(cfg)
            async for event in llm.stream("hi"):
                if event.response is not None:
                    print(event.response.id)

        asyncio.run(main())
    """,
    "sync facade, no close": """
        from llm_manager import LLMManager

        llm = LLMManager.sync_from_config(cfg)
        print(llm.generate("hi").id)
    """,
    "a loop left open (run_until_complete)": """
        import asyncio
        from llm_manager import LLMManager

        async def main():
            llm = LLMManager.from_config(cfg)
            print((await llm.generate("hi")).id)

        asyncio.new_event_loop().run_until_complete(main())
    """,
}


def run_script(source: str) -> subprocess.CompletedProcess[str]:
    """Run ``source`` as a user would, with ResourceWarnings shown; a hang fails the test."""
    try:
        return subprocess.run(
            [sys.executable, "-W", "always::ResourceWarning", "-c", source],
            cwd=ROOT,
            capture_output=True,
            text=True,
            timeout=30,
        )
    except subprocess.TimeoutExpired as exc:
        pytest.fail(f"the script did not exit within 30 s (it hangs at interpreter exit): {exc.stderr!r}")


def settings(**extra: Any) -> Settings:
    return load_settings({"models": {"m": {"provider": "simulated", "simulate": instant()}}, **extra}, env={})


@pytest.mark.parametrize("script", list(SCRIPTS))
def test_a_script_that_never_closes_the_manager_exits_with_its_ledger_written(script: str, tmp_path: Path) -> None:
    db = tmp_path / "store.db"
    source = CONFIG.format(db=db) + textwrap.dedent(SCRIPTS[script])
    started = time.monotonic()
    proc = run_script(source)
    elapsed = time.monotonic() - started
    assert proc.returncode == 0, proc.stderr
    assert elapsed < 15, f"exiting took {elapsed:.1f} s"
    request_id = proc.stdout.split()[-1]
    conn = sqlite3.connect(db)
    try:
        rows = conn.execute("SELECT request_id, status FROM llm_manager_ledger").fetchall()
    finally:
        conn.close()
    assert rows == [(request_id, "ok")], proc.stderr
    assert "ResourceWarning: unclosed <LLMManager" in proc.stderr
    assert "Traceback" not in proc.stderr


def test_a_closed_manager_says_nothing_at_exit(tmp_path: Path) -> None:
    source = CONFIG.format(db=tmp_path / "store.db") + textwrap.dedent("""
        import asyncio, json
        from llm_manager import LLMManager

        async def main():
            async with LLMManager.from_config(cfg) as llm:
                await llm.generate("hi")

        asyncio.run(main())
        with LLMManager.sync_from_config(cfg) as llm:
            llm.generate("hi")
        print(json.dumps("done"))
    """)
    proc = run_script(source)
    assert proc.returncode == 0 and json.loads(proc.stdout) == "done", proc.stderr
    assert "ResourceWarning" not in proc.stderr, proc.stderr


def test_an_unclosed_manager_is_closed_when_its_loop_shuts_down(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'store.db'}"
    llm = LLMManager.from_config(settings(store={"url": url}, ledger={"flush_interval_s": 60}))
    with asyncio.Runner() as runner:
        resp = runner.run(llm.generate("hi"))
        assert llm.ledger is not None and llm.ledger.pending == 1
        with pytest.warns(ResourceWarning, match="closed for you as its event loop shut down"):
            runner.close()
    assert llm.closed
    assert llm.ledger.pending == 0 and llm.ledger.written == 1

    async def stored() -> list[str]:
        db = await open_database(url)
        try:
            async with db.transaction(False) as session:
                return [r[0] for r in await session.fetchall("SELECT request_id FROM llm_manager_ledger")]
        finally:
            await db.aclose()

    assert asyncio.run(stored()) == [resp.id]


async def test_a_closed_manager_leaves_no_guard_task_behind() -> None:
    llm = LLMManager.from_config(settings())
    await llm.generate("hi")
    guards = [t for t in asyncio.all_tasks() if t.get_name() == "llm-manager-unclosed-guard"]
    assert len(guards) == 1
    await llm.aclose()
    assert guards[0].done()


async def test_an_unclosed_manager_that_is_garbage_collected_warns() -> None:
    llm = LLMManager.from_config(settings())
    await llm.generate("hi")
    await llm.aclose()  # closed: collected silently
    del llm
    gc.collect()
    llm = LLMManager.from_config(settings(ledger={"enabled": False}))
    await llm.generate("hi")
    guard = next(t for t in asyncio.all_tasks() if t.get_name() == "llm-manager-unclosed-guard")
    parts = (llm.http, llm.state)
    with pytest.warns(ResourceWarning, match="garbage-collected while its event loop still runs"):
        del llm
        gc.collect()
    await asyncio.wait([guard], timeout=5)
    assert guard.done()
    for part in parts:  # closed here, as the owner should have done, so the test leaves nothing open
        await part.aclose()


async def test_the_sqlite_worker_thread_cannot_hold_the_interpreter(tmp_path: Path) -> None:
    # aiosqlite >= 0.22 starts it as a non-daemon thread, joined at exit before any atexit hook could close it.
    before = set(threading.enumerate())
    db = await open_database(f"sqlite:///{tmp_path / 'store.db'}")
    try:
        started = [t for t in threading.enumerate() if t not in before]
        assert started and all(t.daemon for t in started), started
    finally:
        await db.aclose()
