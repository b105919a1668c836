"""The spend ledger: one row per provider call, written off the request path in batches, queried for totals.

Every call the manager makes gets a :class:`LedgerRow`, failed, retried and hedged ones included, plus rows for
answers that made no call (served from the cache, de-duplicated, skipped candidates), so spend and traffic can be
explained afterwards. :meth:`Ledger.record` only appends to an in-memory buffer; a background task writes the
buffer every ``flush_interval_s`` (sooner once ``max_batch`` rows wait), one transaction per batch. So:

* the request path never waits for the database;
* a process killed with ``kill -9`` loses at most the rows of the last interval (plus a flush in progress), and
  the store stays consistent: a batch is one transaction, committed whole or not at all (SQLite in WAL mode
  survives process crashes; PostgreSQL rolls back the open transaction of a dead connection);
* when the database is unavailable, rows stay buffered and are retried every interval, with an error log; past
  ``max_buffer`` rows the oldest are dropped, counted in :attr:`Ledger.dropped` and logged, never silently;
* a row the database refuses for its values never holds back the others: it is isolated and set aside in a
  dead-letter table with the reason (:mod:`.dead_letters`), counted and logged.

Rows live in ``llm_manager_ledger`` (migration ``m002_ledger``) of the same :class:`~llm_manager.store.Database`
as the conversations, SQLite by default or PostgreSQL; :mod:`.rows` has the row type and its exact encodings.
"""

from __future__ import annotations

import asyncio
import logging
import math
import time
from collections import deque
from collections.abc import Iterable, Sequence
from datetime import datetime
from types import TracebackType
from typing import TYPE_CHECKING, Any, Self

from llm_manager.costs.dead_letters import DeadLetters
from llm_manager.costs.periods import parse_since
from llm_manager.costs.rows import (
    _AGGREGATES,
    _COLUMN_LIST,
    _COLUMNS,
    BILLED_STATUSES,
    Dimension,
    LedgerRow,
    LedgerStatus,
    Total,
    _insert_sql,
    _params,
    _period,
    _row_from_db,
    _total,
    row_from_json,
    row_json,
)
from llm_manager.costs.spool import Spool, default_spool_dir, read_segment
from llm_manager.store.migrations import Database

if TYPE_CHECKING:
    from llm_manager.config import LedgerConfig

__all__ = [
    "BILLED_STATUSES",
    "Dimension",
    "Ledger",
    "LedgerRow",
    "LedgerStatus",
    "Total",
    "parse_since",
    "row_from_json",
    "row_json",
]

log = logging.getLogger("llm_manager.costs")

_FAILURE_LOG_EVERY_S = 60.0
_DROP_LOG_EVERY_S = 10.0
_EXIT_FLUSH_TIMEOUT_S = 5.0
"""The longest a flusher cancelled by its loop's shutdown spends writing the buffer (a store that does not answer
must not hold the program's exit)."""

# -- the ledger ----------------------------------------------------------------------------------------------------


class Ledger:
    """Buffered, batched writes of :class:`LedgerRow` and the queries over them.

    Use as ``async with Ledger(db) as ledger`` (or :meth:`start` / :meth:`aclose`). The database is not closed
    with the ledger: it belongs to whoever opened it, and may serve other stores.

    Args:
        db: an open, migrated database (:func:`llm_manager.store.open_database`).
        flush_interval_s: how often buffered rows are written; the most a ``kill -9`` can lose.
        max_batch: rows per transaction; a buffer this full is written without waiting for the interval.
        max_buffer: rows kept while the database is unavailable; beyond it the oldest are dropped (and logged).
        spool: ``ledger.durability: strict``: rows recorded with :meth:`record_durably` are on this local spool
            (fsync'd) before it returns, and what a killed process left there is replayed by :meth:`start`.
    """

    @classmethod
    def configured(cls, db: Database, cfg: LedgerConfig, store_url: str | None) -> Ledger:
        """The ledger as ``ledger:`` configures it (with ``durability: strict``, its spool next to the store)."""
        spool = None
        if cfg.durability == "strict":
            from pathlib import Path

            spool = Spool(Path(cfg.spool_dir) if cfg.spool_dir else default_spool_dir(store_url))
        return cls(db, flush_interval_s=cfg.flush_interval_s, max_batch=cfg.batch_size, spool=spool)

    def __init__(
        self,
        db: Database,
        *,
        flush_interval_s: float = 1.0,
        max_batch: int = 1000,
        max_buffer: int = 100_000,
        spool: Spool | None = None,
    ) -> None:
        if not flush_interval_s > 0:
            raise ValueError("flush_interval_s must be > 0")
        if not 0 < max_batch <= max_buffer:
            raise ValueError("need 0 < max_batch <= max_buffer")
        self.db = db
        self.flush_interval_s = flush_interval_s
        self.max_batch = max_batch
        self.max_buffer = max_buffer
        self.written = 0
        """Rows committed by this ledger so far (durable once counted)."""
        self.dropped = 0
        """Rows given up: the buffer overflowed while the database was unavailable, or recorded after close."""
        self.spool = spool
        self.replayed = 0
        """Rows this ledger replayed from spools left by processes that stopped without writing them."""
        self.dead_letters = DeadLetters(db)
        """Rows the database refused for their values, set aside (``dead_letters.count`` of them so far)."""
        self._buffer: deque[LedgerRow] = deque()
        self._in_flight = 0
        self._flush_lock = asyncio.Lock()
        self._wake = asyncio.Event()
        """Set by :meth:`record` when a batch is full, and by :meth:`aclose`."""
        self._stop = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._closed = False
        self._failures = 0
        self._last_failure_log = -math.inf
        self._last_drop_log = -math.inf
        self._dropped_unlogged = 0

    @property
    def pending(self) -> int:
        """Rows recorded but not yet committed (buffered or being written)."""
        return len(self._buffer) + self._in_flight

    def stats(self) -> dict[str, Any]:
        """This process's counts, for ``status()`` and ``/metrics``."""
        return {
            "written": self.written,
            "pending": self.pending,
            "dropped": self.dropped,
            "dead_lettered": self.dead_letters.count,
            "failing": self._failures > 0,
            "flush_interval_s": self.flush_interval_s,
            "durability": "batched" if self.spool is None else "strict",
            "replayed": self.replayed,
            "spool_fsyncs": 0 if self.spool is None else self.spool.fsyncs,
        }

    # -- writing ---------------------------------------------------------------------------------------------------

    def record(self, rows: Iterable[LedgerRow]) -> None:
        """Queue rows for the next flush. Never waits: safe on the request path.

        Call it on the event loop's thread (like every method here): it may wake the flusher. Rows recorded after
        :meth:`aclose` are not written; they are counted in :attr:`dropped` and logged.
        """
        if self._closed:
            count = sum(1 for _ in rows)
            if count:
                self._drop(count, "recorded after the ledger was closed")
            return
        self._buffer.extend(rows)
        self._trim()
        if len(self._buffer) >= self.max_batch:
            self._wake.set()

    async def record_durably(self, rows: Sequence[LedgerRow]) -> None:
        """:meth:`record`, and with a spool, return once the rows are on disk there (one ``fsync`` shared with
        concurrent callers). The rows enter the buffer first: a flush may then write them before they are spooled,
        which replay tolerates (it skips rows already stored), while the reverse order could delete a segment
        holding a row not yet in the buffer."""
        self.record(rows)
        if self.spool is not None and not self._closed and rows:
            await self.spool.append(rows)

    def _trim(self) -> None:
        """Drop the oldest rows beyond ``max_buffer`` (only while the database is failing can the buffer grow)."""
        excess = len(self._buffer) - self.max_buffer
        if excess > 0:
            for _ in range(excess):
                self._buffer.popleft()
            self._drop(excess, f"the buffer is full ({self.max_buffer} rows) while the database is failing")

    def _drop(self, count: int, why: str) -> None:
        self.dropped += count
        self._dropped_unlogged += count
        now = time.monotonic()
        if now - self._last_drop_log >= _DROP_LOG_EVERY_S:  # at most one line per interval, with the running count
            self._last_drop_log = now
            log.error("ledger dropped %d rows (%d in total): %s", self._dropped_unlogged, self.dropped, why)
            self._dropped_unlogged = 0

    async def _insert(self, rows: Sequence[LedgerRow]) -> None:
        async with self.db.transaction(True) as session:
            # The driver's batch path (C loop in sqlite3, a pipeline in psycopg) is several times cheaper in Python
            # than building multi-row statements, and the writer shares the loop with requests.
            await session.executemany(_insert_sql(1), [_params(row) for row in rows])

    async def _write_batch(self) -> int:
        """Write the oldest ``max_batch`` buffered rows in one transaction. A batch the database refuses for some
        rows' values is split until those rows are alone and set aside (:mod:`.dead_letters`); on any other failure
        the rows not settled go back and the error is raised."""
        batch = [self._buffer.popleft() for _ in range(min(self.max_batch, len(self._buffer)))]
        self._in_flight = len(batch)
        settled = 0

        def done(rows: int, committed: bool) -> None:
            nonlocal settled
            settled += rows
            if committed:
                self.written += rows

        try:
            try:
                await self._insert(batch)
            except Exception as exc:
                if not self.db.rejects_row(exc):
                    raise
                await self.dead_letters.isolate(batch, self._insert, done)
            else:
                done(len(batch), True)
        except BaseException:
            # Back in front, in order: rows recorded meanwhile are newer. Cancellation lands here too.
            self._buffer.extendleft(reversed(batch[settled:]))
            self._trim()
            raise
        finally:
            self._in_flight = 0
        return len(batch)

    async def flush(self) -> int:
        """Write every row buffered when called (in batches of ``max_batch``); returns how many were written.

        Raises the database's error when a batch fails; its rows and the rest stay buffered for the next flush.
        """
        async with self._flush_lock:
            if self.spool is not None:
                await self.spool.seal()  # every row of the sealed segments is in the buffer now
            target, done = len(self._buffer), 0
            while done < target and self._buffer:
                done += await self._write_batch()
            if self.spool is not None:
                self.spool.committed()
            return done

    async def start(self) -> None:
        """Start the background flusher (idempotent)."""
        if self._closed:
            raise RuntimeError("the ledger is closed")
        if self.spool is not None and self.spool.slot is None:
            self.spool.claim()
            await self._replay()
        if self._task is None:
            self._task = asyncio.get_running_loop().create_task(self._run(), name="llm-manager-ledger")
            # One turn of the loop lets the flusher enter its loop: a task cancelled before its first step never
            # runs its handler, and the handler is what writes the buffer when the loop's shutdown cancels it.
            await asyncio.sleep(0)

    async def _run(self) -> None:
        try:
            await self._flush_until_closed()
        except asyncio.CancelledError:
            # Only the loop's end cancels this task (asyncio.run() cancels every pending task before closing the
            # loop, as when a script never closed its manager): write the buffer before the loop is gone.
            await self._flush_on_cancel()
            raise

    async def _flush_on_cancel(self) -> None:
        task = asyncio.current_task()
        if task is not None:
            task.uncancel()  # the flush awaits: its timeout must see a task that is no longer being cancelled
        try:
            async with asyncio.timeout(_EXIT_FLUSH_TIMEOUT_S):
                await self.flush()
        except Exception as exc:
            log.error("ledger stopped with %d rows not written: %s", self.pending, exc)

    async def _flush_until_closed(self) -> None:
        loop = asyncio.get_running_loop()
        next_tick = loop.time() + self.flush_interval_s
        while not self._closed:
            # During an outage, retry on the interval only: a full buffer waking us early would turn the outage
            # into a busy loop of failing transactions.
            await _wait(self._stop if self._failures else self._wake, max(0.0, next_tick - loop.time()))
            self._wake.clear()
            if self._closed:
                return
            next_tick = max(next_tick + self.flush_interval_s, loop.time())
            try:
                await self.flush()
            except Exception as exc:  # never let the flusher die: the rows wait for the next tick
                self._flush_failed(exc)
                next_tick = loop.time() + self.flush_interval_s
            else:
                self._flush_recovered()

    def _flush_failed(self, exc: Exception) -> None:
        self._failures += 1
        now = time.monotonic()
        if self._failures == 1 or now - self._last_failure_log >= _FAILURE_LOG_EVERY_S:
            self._last_failure_log = now
            log.error(
                "ledger flush failed (%d in a row): %d rows kept, retrying every %gs: %s",
                self._failures,
                self.pending,
                self.flush_interval_s,
                exc,
                exc_info=self._failures == 1,
            )

    def _flush_recovered(self) -> None:
        if self._failures:
            log.warning("ledger flush recovered after %d failed attempts", self._failures)
            self._failures = 0

    async def aclose(self) -> None:
        """Stop the flusher and write what is buffered (idempotent). Rows that cannot be written are logged as
        lost; the database stays open."""
        if self._closed:
            return
        self._closed = True
        self._stop.set()
        self._wake.set()
        task, self._task = self._task, None
        if task is not None and not task.done():
            # wait(), not await: a flush in progress finishes rather than being cancelled mid-transaction if our
            # caller is cancelled, and a flusher the loop's shutdown already cancelled is no error here.
            await asyncio.wait([task])
        try:
            await self.flush()
        except Exception as exc:
            lost = self.pending
            self.dropped += lost
            self._buffer.clear()
            log.error("ledger closed with %d rows not written (the database failed): %s", lost, exc)
            if self.spool is not None:
                await self.spool.aclose(committed=False)
                log.error("ledger: those rows stay in the spool %s, replayed at the next start", self.spool.directory)
        else:
            if self.spool is not None:
                await self.spool.aclose(committed=True)

    async def _replay(self) -> None:
        """Write what processes that stopped without flushing left in the spool (rows already stored skipped)."""
        assert self.spool is not None
        for lock_fd, paths in self.spool.orphans():
            try:
                rows = [row for path in paths for row in read_segment(path)]
                fresh = await self._not_stored(rows)
                self._buffer.extend(fresh)
                try:
                    await self.flush()
                except Exception as exc:  # the rows stay buffered, and the segments on disk for another start
                    log.error("ledger: spool replay of %d rows not written yet: %s", len(fresh), exc)
                    continue
                for path in paths:
                    path.unlink(missing_ok=True)
                self.replayed += len(fresh)
                log.warning(
                    "ledger: replayed %d rows from the spool of a process that stopped (%d were already stored)",
                    len(fresh),
                    len(rows) - len(fresh),
                )
            finally:
                Spool.release(lock_fd)

    async def _not_stored(self, rows: Sequence[LedgerRow]) -> list[LedgerRow]:
        """``rows`` without those whose ``(request_id, attempt)`` is in the store already (or repeated)."""
        ids = sorted({r.request_id for r in rows})
        stored: set[tuple[str, int]] = set()
        async with self.db.transaction(False) as session:
            for i in range(0, len(ids), 500):
                chunk = ids[i : i + 500]
                marks = ", ".join("?" * len(chunk))
                sql = f"SELECT request_id, attempt FROM llm_manager_ledger WHERE request_id IN ({marks})"
                stored.update((r[0], int(r[1])) for r in await session.fetchall(sql, chunk))
        fresh = []
        for row in rows:
            if (row.request_id, row.attempt) not in stored:
                stored.add((row.request_id, row.attempt))
                fresh.append(row)
        return fresh

    async def __aenter__(self) -> Self:
        await self.start()
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.aclose()

    # -- queries -----------------------------------------------------------------------------------------------------

    async def totals(self, by: Dimension, since: datetime | None = None, until: datetime | None = None) -> list[Total]:
        """Totals per value of ``by`` over ``since <= ts < until``, most expensive first.

        Only committed rows count: :meth:`flush` first for up-to-the-moment figures.
        """
        column = _COLUMNS.get(by)
        if column is None:
            raise ValueError(f"by must be one of {sorted(_COLUMNS)}, not {by!r}")
        where, params = _period(since, until)
        sql = f"SELECT {column}, {_AGGREGATES} FROM llm_manager_ledger{where} GROUP BY {column}"
        async with self.db.transaction(False) as session:
            result = await session.fetchall(sql, params)
        totals = [_total(r[0], r[1:]) for r in result]
        # Ordered here, after the exact sum (SQL cannot order by the two-part cost); ties by key, None last.
        totals.sort(key=lambda t: (-t.cost, t.key is None, t.key or ""))
        return totals

    async def summary(self, since: datetime | None = None, until: datetime | None = None) -> Total:
        """One :class:`Total` (key ``None``) over every row of the period."""
        where, params = _period(since, until)
        async with self.db.transaction(False) as session:
            result = await session.fetchall(f"SELECT {_AGGREGATES} FROM llm_manager_ledger{where}", params)
        return _total(None, result[0])

    async def spent(self, by: Dimension, value: str, since: datetime | None = None) -> Total:
        """The :class:`Total` of the rows whose ``by`` is ``value`` since ``since`` (one budget counter's spend)."""
        column = _COLUMNS.get(by)
        if column is None:
            raise ValueError(f"by must be one of {sorted(_COLUMNS)}, not {by!r}")
        where, params = _period(since, None)
        where = f"{where} AND {column} = ?" if where else f" WHERE {column} = ?"
        async with self.db.transaction(False) as session:
            result = await session.fetchall(f"SELECT {_AGGREGATES} FROM llm_manager_ledger{where}", [*params, value])
        return _total(value, result[0])

    async def rows(
        self, since: datetime | None = None, until: datetime | None = None, limit: int | None = None
    ) -> list[LedgerRow]:
        """The rows of the period, oldest first (at most ``limit``: the oldest ones)."""
        where, params = _period(since, until)
        sql = f"SELECT {_COLUMN_LIST} FROM llm_manager_ledger{where} ORDER BY ts, request_id, attempt"
        if limit is not None:
            if limit < 0:
                raise ValueError("limit must be >= 0")
            sql += " LIMIT ?"
            params.append(limit)
        async with self.db.transaction(False) as session:
            result = await session.fetchall(sql, params)
        return [_row_from_db(r) for r in result]

    async def recent_requests(
        self, since: datetime | None = None, *, limit: int = 50, offset: int = 0
    ) -> tuple[int, list[list[LedgerRow]]]:
        """A page of the period's requests, newest first (by their first row), each as its rows in order, and how
        many requests the period holds. Paged in SQL: only the page's rows are read."""
        if limit < 0 or offset < 0:
            raise ValueError("limit and offset must be >= 0")
        where, params = _period(since, None)
        async with self.db.transaction(False) as session:
            counted = await session.fetchall(
                f"SELECT COUNT(DISTINCT request_id) FROM llm_manager_ledger{where}", params
            )
            total = counted[0][0] if counted else 0
            ids = [
                r[0]
                for r in await session.fetchall(
                    f"SELECT request_id, MIN(ts) AS first_ts FROM llm_manager_ledger{where} GROUP BY request_id "
                    "ORDER BY first_ts DESC, request_id DESC LIMIT ? OFFSET ?",
                    [*params, limit, offset],
                )
            ]
            rows = (
                await session.fetchall(
                    f"SELECT {_COLUMN_LIST} FROM llm_manager_ledger WHERE request_id IN ({', '.join('?' * len(ids))}) "
                    "ORDER BY request_id, attempt",
                    ids,
                )
                if ids
                else []
            )
        grouped: dict[str, list[LedgerRow]] = {i: [] for i in ids}
        for r in rows:
            row = _row_from_db(r)
            grouped[row.request_id].append(row)
        return int(total or 0), list(grouped.values())


async def _wait(event: asyncio.Event, timeout: float) -> None:
    """Until ``event`` is set or ``timeout`` seconds have passed."""
    try:
        await asyncio.wait_for(event.wait(), timeout)
    except TimeoutError:
        pass
