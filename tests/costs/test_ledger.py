"""The spend ledger on SQLite and PostgreSQL: batching, totals, exact money, failures, and kill -9 durability."""

from __future__ import annotations

import asyncio
import logging
import sqlite3
import sys
import time
from collections.abc import Callable
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from llm_manager.costs import BILLED_STATUSES, Dimension, Ledger, LedgerRow, Total, parse_since
from llm_manager.store import Database, apply_migrations, open_database
from tests.costs._ledger_worker import FLUSH_INTERVAL_S
from tests.processes import kill_when_loaded
from tests.store.conftest import pg_schema

T0 = datetime(2026, 11, 2, 10, 0, tzinfo=UTC)
DIMENSIONS: tuple[Dimension, ...] = ("model", "deployment", "user", "project", "key", "task", "provider")
_FIELDS: dict[Dimension, str] = {"key": "api_key_id"}


def row(i: int, **kw: Any) -> LedgerRow:
    fields: dict[str, Any] = {
        "ts": T0 + timedelta(seconds=i),
        "request_id": f"r{i}",
        "attempt": 1,
        "deployment": "mini",
        "provider": "openai",
        "model": "gpt-4o-mini",
        "status": "ok",
        "prompt_tokens": 100,
        "completion_tokens": 10,
        "cost": Decimal("0.001"),
        "latency_ms": 100.0,
    }
    fields.update(kw)
    return LedgerRow(**fields)


def varied_rows() -> list[LedgerRow]:
    """Rows across every dimension and status, with retries, hedges, unpriced and cache-served calls."""
    return [
        row(0, user="ann", project="web", api_key_id="k1", task="analysis", cost=Decimal("0.25")),
        row(1, status="error", error_code="rate_limited", cost=Decimal(0), user="ann", project="web", task="analysis"),
        replace(row(1, user="ann", project="web", task="analysis", cost=Decimal("0.125")), attempt=2),
        row(2, deployment="sonnet", provider="anthropic", model="claude-sonnet-4-5", user="bob", api_key_id="k2",
            cost=Decimal("1.5"), prompt_tokens=1000, completion_tokens=500, cached_tokens=600),
        replace(row(2, deployment="haiku", provider="anthropic", model="claude-3-5-haiku-latest", user="bob",
                    api_key_id="k2", status="hedge_lost", cost=Decimal("0.0625")), attempt=2),
        row(3, deployment="local", provider="openai-compatible", model="my-finetune", cost=None, project="batch",
            task="config-management"),
        row(4, status="cached", cached=True, cost=Decimal(0), prompt_tokens=0, completion_tokens=0, user="ann"),
        row(5, status="skipped", error_code="circuit_open", cost=None, prompt_tokens=0, completion_tokens=0),
        row(6, status="deduplicated", cost=Decimal(0), prompt_tokens=0, completion_tokens=0, user="carol",
            request_key="sha256:abc"),
    ]  # fmt: skip


def expected_totals(rows: list[LedgerRow], key: Callable[[LedgerRow], str | None]) -> list[Total]:
    """The reference: the definitions of :class:`Total`, computed in Python."""
    groups: dict[str | None, list[LedgerRow]] = {}
    for r in rows:
        groups.setdefault(key(r), []).append(r)
    totals = [
        Total(
            key=k,
            requests=len({r.request_id for r in rs}),
            calls=sum(r.status in BILLED_STATUSES for r in rs),
            errors=sum(r.status == "error" for r in rs),
            prompt_tokens=sum(r.prompt_tokens for r in rs),
            completion_tokens=sum(r.completion_tokens for r in rs),
            cost=sum((r.cost for r in rs if r.cost is not None), Decimal(0)),
            unpriced_calls=sum(r.cost is None and r.status == "ok" for r in rs),
        )
        for k, rs in groups.items()
    ]
    return sorted(totals, key=lambda t: (-t.cost, t.key is None, t.key or ""))


async def test_record_is_buffered_until_flush_then_totals_by_every_dimension(db: Database) -> None:
    ledger = Ledger(db)
    rows = varied_rows()
    ledger.record(rows)
    assert ledger.pending == len(rows)
    assert await ledger.summary() == Total(key=None)  # nothing written yet: record() never touches the database
    assert await ledger.flush() == len(rows)
    assert (ledger.pending, ledger.written) == (0, len(rows))
    for by in DIMENSIONS:
        field = _FIELDS.get(by, by)

        def key(r: LedgerRow, f: str = field) -> str | None:
            value: str | None = getattr(r, f)
            return value

        assert await ledger.totals(by) == expected_totals(rows, key), by
    # Spelled out once: by deployment.
    by_deployment = {t.key: t for t in await ledger.totals("deployment")}
    mini = by_deployment["mini"]
    assert (mini.requests, mini.calls, mini.errors) == (5, 3, 1)  # cached / skipped / deduplicated are not calls
    assert mini.cost == Decimal("0.375")
    assert by_deployment["local"].unpriced_calls == 1 and by_deployment["local"].cost == 0
    assert [t.key for t in await ledger.totals("deployment")] == ["sonnet", "mini", "haiku", "local"]
    assert [t.key for t in await ledger.totals("key")] == ["k2", "k1", None]


async def test_rows_round_trip_and_periods(db: Database) -> None:
    ledger = Ledger(db)
    rows = varied_rows()
    ledger.record(reversed(rows))
    await ledger.flush()
    ordered = sorted(rows, key=lambda r: (r.ts, r.request_id, r.attempt))
    assert await ledger.rows() == ordered
    assert await ledger.rows(limit=2) == ordered[:2]
    # since is inclusive, until exclusive.
    window = await ledger.rows(since=T0 + timedelta(seconds=2), until=T0 + timedelta(seconds=4))
    assert [(r.request_id, r.attempt) for r in window] == [("r2", 1), ("r2", 2), ("r3", 1)]
    summary = await ledger.summary(since=T0 + timedelta(seconds=2), until=T0 + timedelta(seconds=4))
    assert summary == expected_totals(window, lambda r: None)[0]
    assert summary.cost == Decimal("1.5625") and summary.requests == 2 and summary.unpriced_calls == 1
    totals = await ledger.totals("user", since=T0 + timedelta(seconds=5))
    assert [(t.key, t.requests) for t in totals] == [("carol", 1), (None, 1)]  # cost ties: by key, None last
    # A naive bound means UTC.
    assert len(await ledger.rows(since=(T0 + timedelta(seconds=6)).replace(tzinfo=None))) == 1
    assert await ledger.summary(since=T0 + timedelta(days=1)) == Total(key=None)


async def test_money_is_summed_exactly(db: Database) -> None:
    ledger = Ledger(db, max_batch=400)
    ledger.record(row(i, cost=Decimal("0.0000001")) for i in range(1000))
    # Past $9.2M, a plain SQL SUM of picodollars would overflow SQLite's integers.
    ledger.record(row(1000 + i, cost=Decimal("5000000.000000000001"), user="whale") for i in range(3))
    await ledger.flush()
    by_user = {t.key: t.cost for t in await ledger.totals("user")}
    assert by_user[None] == Decimal("0.0001")  # a float sum would be 0.00010000000000000938
    assert by_user["whale"] == Decimal("15000000.000000000003")
    assert (await ledger.summary()).cost == Decimal("15000000.000100000003")
    assert (await ledger.rows(limit=1))[0].cost == Decimal("0.0000001")


async def test_background_flush_on_interval_and_on_a_full_batch(db: Database) -> None:
    async with Ledger(db, flush_interval_s=0.05) as ledger:
        ledger.record([row(0), row(1)])
        await wait_for(lambda: ledger.written == 2)
        assert (await ledger.summary()).requests == 2
    async with Ledger(db, flush_interval_s=60, max_batch=10) as ledger:
        ledger.record(row(10 + i) for i in range(25))  # past max_batch: written now, not in a minute
        await wait_for(lambda: ledger.written == 25)
        ledger.record([row(50)])
        await asyncio.sleep(0.1)
        assert (ledger.written, ledger.pending) == (25, 1)


async def drop_ledger_table(db: Database) -> None:
    """Make every ledger write fail, as a lost table would (and forget the migrations that made it, so they can be
    re-applied)."""
    async with db.transaction(True) as session:
        await session.execute("DROP TABLE llm_manager_ledger")
        for name in ("m002_ledger", "m008_ledger_cache_similarity"):
            await session.execute("DELETE FROM llm_manager_migrations WHERE name = ?", (name,))


async def test_rows_stay_buffered_while_the_database_fails(db: Database, caplog: pytest.LogCaptureFixture) -> None:
    await drop_ledger_table(db)
    ledger = Ledger(db, flush_interval_s=0.05, max_batch=4)
    ledger.record(row(i) for i in range(10))
    with pytest.raises(Exception, match=r"(?i)llm_manager_ledger"):
        await ledger.flush()  # an explicit flush reports the failure
    assert (ledger.pending, ledger.written, ledger.dropped) == (10, 0, 0)
    with caplog.at_level(logging.ERROR, logger="llm_manager.costs"):
        await ledger.start()
        await asyncio.sleep(0.3)  # several failing ticks
        ledger.record([row(10)])
    failures = [r for r in caplog.records if "ledger flush failed" in r.getMessage()]
    assert len(failures) == 1, "one error when the outage starts, not one per tick"
    assert ledger.pending == 11 and ledger.written == 0
    await apply_migrations(db)  # the table is back
    await wait_for(lambda: ledger.written == 11)
    await ledger.aclose()
    assert [r.request_id for r in await ledger.rows()] == [f"r{i}" for i in range(11)]


async def test_the_buffer_is_bounded_and_drops_the_oldest_loudly(
    db: Database, caplog: pytest.LogCaptureFixture
) -> None:
    await drop_ledger_table(db)
    ledger = Ledger(db, max_batch=10, max_buffer=50)
    with caplog.at_level(logging.ERROR, logger="llm_manager.costs"):
        ledger.record(row(i) for i in range(80))
        with pytest.raises(Exception, match=r"(?i)llm_manager_ledger"):
            await ledger.flush()
    assert (ledger.pending, ledger.dropped) == (50, 30)
    assert any("dropped 30 rows" in r.getMessage() for r in caplog.records)
    await apply_migrations(db)
    assert await ledger.flush() == 50
    assert [r.request_id for r in await ledger.rows()] == [f"r{i}" for i in range(30, 80)]


async def test_aclose_flushes_and_later_rows_are_counted_as_dropped(db: Database) -> None:
    ledger = Ledger(db, flush_interval_s=60)
    await ledger.start()
    ledger.record(row(i) for i in range(10))
    await ledger.aclose()
    await ledger.aclose()  # idempotent
    assert ledger.written == 10
    assert (await Ledger(db).summary()).requests == 10
    ledger.record([row(99)])
    assert (ledger.pending, ledger.dropped) == (0, 1)


async def test_a_flusher_cancelled_by_the_loops_shutdown_writes_its_buffer(db: Database) -> None:
    # asyncio.run() cancels every pending task before it closes the loop: a script that never closed its manager.
    ledger = Ledger(db, flush_interval_s=60)
    await ledger.start()
    ledger.record(row(i) for i in range(5))
    flusher = next(t for t in asyncio.all_tasks() if t.get_name() == "llm-manager-ledger")
    flusher.cancel()
    await asyncio.wait([flusher])
    assert flusher.cancelled()  # it still ends as cancelled, as the loop's shutdown expects
    assert (ledger.written, ledger.pending) == (5, 0)
    assert (await Ledger(db).summary()).requests == 5
    # Without its flusher, aclose still writes what came since, and a cancelled flusher is no error to it.
    ledger.record([row(7)])
    await ledger.aclose()
    assert (await Ledger(db).summary()).requests == 6


async def test_a_row_written_twice_is_stored_once(db: Database) -> None:
    # A batch retried after an ambiguous commit must not count its calls twice.
    ledger = Ledger(db)
    ledger.record([row(1), row(2)])
    await ledger.flush()
    ledger.record([row(2), row(3)])
    await ledger.flush()
    assert [r.request_id for r in await ledger.rows()] == ["r1", "r2", "r3"]


async def test_text_that_postgresql_cannot_store_does_not_poison_a_batch(db: Database) -> None:
    ledger = Ledger(db)
    ledger.record([row(1, user="nul\x00user")])
    assert await ledger.flush() == 1
    assert (await ledger.rows())[0].user == "nul\ufffduser"


def test_invalid_rows_fail_on_the_callers_stack() -> None:
    with pytest.raises(ValueError, match="timezone-aware"):
        row(1, ts=datetime(2026, 1, 1))
    with pytest.raises(ValueError, match="status"):
        row(1, status="done")
    with pytest.raises(ValueError, match="1-based"):
        row(1, attempt=0)
    with pytest.raises(ValueError, match="non-negative"):
        row(1, cost=Decimal(-1))
    with pytest.raises(ValueError, match="max_batch"):
        Ledger(None, max_batch=10, max_buffer=5)  # type: ignore[arg-type]


async def test_unknown_dimension_is_refused(db: Database) -> None:
    with pytest.raises(ValueError, match="by must be one of"):
        await Ledger(db).totals("colour")  # type: ignore[arg-type]


NOW = datetime(2026, 11, 15, 13, 45, 30, tzinfo=UTC)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("7d", NOW - timedelta(days=7)),
        ("24h", NOW - timedelta(hours=24)),
        ("30m", NOW - timedelta(minutes=30)),
        ("2w", NOW - timedelta(weeks=2)),
        (" 7D ", NOW - timedelta(days=7)),
        ("today", datetime(2026, 11, 15, tzinfo=UTC)),
        ("month", datetime(2026, 11, 1, tzinfo=UTC)),
        ("2026-11-01", datetime(2026, 11, 1, tzinfo=UTC)),
        ("2026-11-01T09:30:00", datetime(2026, 11, 1, 9, 30, tzinfo=UTC)),
        ("2026-11-01T09:30:00Z", datetime(2026, 11, 1, 9, 30, tzinfo=UTC)),
        ("2026-11-01T10:30:00+01:00", datetime(2026, 11, 1, 9, 30, tzinfo=UTC)),
    ],
)
def test_parse_since(text: str, expected: datetime) -> None:
    parsed = parse_since(text, NOW)
    assert parsed == expected
    assert parsed.utcoffset() == timedelta(0)


@pytest.mark.parametrize("text", ["", "7", "7y", "-3d", "yesterday", "2026-13-01", "last month"])
def test_parse_since_refuses_anything_else(text: str) -> None:
    with pytest.raises(ValueError, match=r"30m, 24h, 7d, 2w"):
        parse_since(text, NOW)


def test_parse_since_past_the_calendar_is_a_value_error() -> None:
    with pytest.raises(ValueError, match="further than a date can"):
        parse_since("99999999w", NOW)


# -- kill -9 -------------------------------------------------------------------------------------------------------


async def wait_for(condition: Callable[[], bool], timeout: float = 5.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError("condition not met in time")
        await asyncio.sleep(0.01)


def run_and_kill(url: str, run_s: float = 1.5) -> tuple[list[int], list[tuple[int, float]], float]:
    """Run the worker for ``run_s`` seconds of load, SIGKILL it; returns its acks, (recorded, time) lines and the
    kill time."""
    out, err, killed_at = kill_when_loaded([sys.executable, "-m", "tests.costs._ledger_worker", url], run_s)
    acked: list[int] = []
    recorded: list[tuple[int, float]] = []
    for line in out.splitlines(keepends=True):
        if not line.endswith("\n"):  # a line cut by the kill
            continue
        words = line.split()
        if words[0] == "acked":
            acked.append(int(words[1]))
        elif words[0] == "recorded":
            recorded.append((int(words[1]), float(words[2])))
    assert len(acked) >= 3, f"the worker should have flushed several times: {out[-500:]}\n{err[-2000:]}"
    return acked, recorded, killed_at


async def check_after_kill(url: str, inspect: Callable[[], None] | None = None) -> None:
    """Kill the worker under load, run ``inspect`` on what it left, then check the rows through a fresh open."""
    acked, recorded, killed_at = await asyncio.to_thread(run_and_kill, url)
    if inspect is not None:
        inspect()
    db = await open_database(url)  # opens (and "migrates") cleanly
    try:
        ids = [r.request_id for r in await Ledger(db).rows()]
    finally:
        await db.aclose()
    stored = len(ids)
    # Batches commit whole and in recording order: what is there is exactly the first `stored` rows.
    assert sorted(ids) == [f"r{i:08d}" for i in range(stored)]
    assert acked[-1] <= stored <= recorded[-1][0], (acked[-1], stored, recorded[-1][0])
    # At most the last flush interval is lost (plus slack for a flush in progress and a loaded machine).
    durable_before = killed_at - FLUSH_INTERVAL_S - 0.3
    must_have = max((n for n, t in recorded if t <= durable_before), default=0)
    assert stored >= must_have, (stored, must_have)


async def test_kill_9_loses_at_most_the_last_flush_interval_sqlite(tmp_path: Path) -> None:
    path = tmp_path / "ledger.db"

    def integrity() -> None:  # the file exactly as the killed process left it (WAL included)
        conn = sqlite3.connect(path)
        try:
            assert conn.execute("PRAGMA integrity_check").fetchall() == [("ok",)]
            assert conn.execute("PRAGMA journal_mode").fetchone() == ("wal",)
        finally:
            conn.close()

    await check_after_kill(f"sqlite:///{path}", integrity)


async def test_kill_9_loses_at_most_the_last_flush_interval_postgres() -> None:
    with pg_schema() as url:
        await check_after_kill(url)


async def test_recent_requests_pages_in_sql_newest_first(db: Database) -> None:
    ledger = Ledger(db)
    rows = [row(i) for i in range(6)]
    # r2 was retried: two rows, the second later than r3's only row; its place is its first row's.
    retry_ts = T0 + timedelta(seconds=3.5)
    rows.append(row(9, ts=retry_ts, request_id="r2", attempt=2, status="error", error_code="rate_limited"))
    ledger.record(rows)
    await ledger.flush()

    total, page = await ledger.recent_requests(limit=3, offset=1)
    assert total == 6
    assert [[(r.request_id, r.attempt) for r in req] for req in page] == [
        [("r4", 1)],
        [("r3", 1)],
        [("r2", 1), ("r2", 2)],
    ]
    total, page = await ledger.recent_requests(since=T0 + timedelta(seconds=4), limit=10)
    assert total == 2 and [req[0].request_id for req in page] == ["r5", "r4"]
    assert await ledger.recent_requests(since=T0 + timedelta(days=1)) == (0, [])
    with pytest.raises(ValueError):
        await ledger.recent_requests(limit=-1)
