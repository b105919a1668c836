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
  ``max_buffer`` rows the oldest are dropped, counted in :attr:`Ledger.dropped` and logged, never silently.

Rows live in ``llm_manager_ledger`` (migration ``m002_ledger``) of the same :class:`~llm_manager.store.Database`
as the conversations, SQLite by default or PostgreSQL. Costs are stored as integer picodollars (10^-12 USD): exact
for every price with up to 6 decimals per million tokens (all of the bundled price table but a few repeating
fractions, which the table itself has already rounded), one column type and one exact ``SUM`` on both dialects,
where SQLite has no exact decimal type (its ``SUM`` over text would go through float).
"""

from __future__ import annotations

import asyncio
import logging
import math
import re
import time
from collections import deque
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from decimal import ROUND_HALF_EVEN, Context, Decimal, localcontext
from types import TracebackType
from typing import Any, Literal, Self, cast, get_args

from llm_manager.store.migrations import Database, from_db_time

__all__ = [
    "BILLED_STATUSES",
    "Dimension",
    "Ledger",
    "LedgerRow",
    "LedgerStatus",
    "Total",
    "parse_since",
]

log = logging.getLogger("llm_manager.costs")

LedgerStatus = Literal["ok", "error", "skipped", "hedge_lost", "cached", "deduplicated"]
"""``ok``: answered; ``error``: failed (maybe retried); ``skipped``: not called (breaker open, at its limit, window
too small); ``hedge_lost``: lost a hedge race (paid for, answer discarded); ``cached`` / ``deduplicated``: answered
without a provider call of its own."""
_STATUSES = frozenset(get_args(LedgerStatus))
BILLED_STATUSES: tuple[LedgerStatus, ...] = ("ok", "error", "hedge_lost")
"""The statuses of rows that are provider calls (``Total.calls``)."""

Dimension = Literal["model", "deployment", "user", "project", "key", "task", "provider"]
_COLUMNS: dict[Dimension, str] = {
    "model": "model",
    "deployment": "deployment",
    "user": "user_id",
    "project": "project",
    "key": "api_key_id",
    "task": "task",
    "provider": "provider",
}

_PICO = 12
_MICRO_IN_PICO = 1_000_000
_ROWS_PER_STATEMENT = 500  # 19 parameters a row: far below SQLite's 32766 and PostgreSQL's 65535 per statement
_FAILURE_LOG_EVERY_S = 60.0
_DROP_LOG_EVERY_S = 10.0


@dataclass(slots=True, kw_only=True)
class LedgerRow:
    """One provider call (or one answer that needed none)."""

    ts: datetime
    """When the call started (UTC-aware)."""
    request_id: str
    attempt: int
    """1-based position of this call among the request's calls; ``(request_id, attempt)`` is unique."""
    deployment: str
    provider: str
    model: str
    status: LedgerStatus
    user: str | None = None
    project: str | None = None
    api_key_id: str | None = None
    """The gateway key that made the request (``None`` in library use)."""
    task: str = "general"
    prompt_tokens: int = 0
    completion_tokens: int = 0
    cached_tokens: int = 0
    """Prompt tokens served from the provider's prompt cache (part of ``prompt_tokens``)."""
    cost: Decimal | None = None
    """USD; ``None`` when the model's price is unknown (never 0 for "unknown")."""
    latency_ms: float = 0.0
    error_code: str | None = None
    cached: bool = False
    """Answered from the response cache."""
    request_key: str | None = None
    """Hash of the canonical request, to find repeated identical prompts."""

    def __post_init__(self) -> None:
        # Checked here, on the caller's stack: a bad row buffered would fail its whole batch on every retry.
        if self.ts.tzinfo is None:
            raise ValueError("LedgerRow.ts must be timezone-aware (UTC)")
        if self.status not in _STATUSES:
            raise ValueError(f"LedgerRow.status {self.status!r} is not one of {sorted(_STATUSES)}")
        if self.attempt < 1:
            raise ValueError(f"LedgerRow.attempt is 1-based, not {self.attempt}")
        if min(self.prompt_tokens, self.completion_tokens, self.cached_tokens) < 0:
            raise ValueError("LedgerRow token counts must be >= 0")
        if self.cost is not None and (not self.cost.is_finite() or self.cost < 0):
            raise ValueError(f"LedgerRow.cost must be a finite, non-negative Decimal or None, not {self.cost!r}")
        if not math.isfinite(self.latency_ms):
            raise ValueError("LedgerRow.latency_ms must be finite")


@dataclass(frozen=True, slots=True)
class Total:
    """Aggregates over the ledger rows of one key (or of all rows, for :meth:`Ledger.summary`)."""

    key: str | None
    """The dimension's value (``None``: rows without one, e.g. no user; always ``None`` in a summary)."""
    requests: int = 0
    """Distinct request ids."""
    calls: int = 0
    """Provider calls: rows with status ``ok``, ``error`` or ``hedge_lost``."""
    errors: int = 0
    prompt_tokens: int = 0
    completion_tokens: int = 0
    cost: Decimal = field(default_factory=Decimal)
    """Exact sum of the known costs (USD)."""
    unpriced_calls: int = 0
    """Successful calls whose cost is unknown: :attr:`cost` leaves them out."""


# -- conversions ---------------------------------------------------------------------------------------------------


_EXACT = Context(prec=60)


def _to_pico(cost: Decimal | None) -> int | None:
    if cost is None:
        return None
    # scaleb is exact with enough digits; only the 13th decimal on is rounded. The context is passed rather than
    # swapped in with localcontext(): this runs for every ledger row.
    return int(cost.scaleb(_PICO, _EXACT).to_integral_value(rounding=ROUND_HALF_EVEN, context=_EXACT))


def _from_pico(value: Any) -> Decimal:
    with localcontext(prec=60):  # exact: an int64 sum has at most ~30 digits
        # No trailing zeros ("0.123", not "0.123000000000"); whole dollars in plain digits ("15", not "1.5E+1").
        usd = Decimal(int(value)).scaleb(-_PICO).normalize()
        return usd.quantize(Decimal(1)) if usd == usd.to_integral_value() else usd


def _text(value: str | None) -> str | None:
    # PostgreSQL text cannot hold NUL; one such character (say in a gateway caller's `user`) would otherwise fail
    # its batch on every retry.
    return value.replace("\x00", "\ufffd") if value is not None and "\x00" in value else value


def _utc(value: datetime) -> datetime:
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def _params(row: LedgerRow) -> tuple[object, ...]:
    return (
        _utc(row.ts),
        _text(row.request_id),
        row.attempt,
        _text(row.deployment),
        _text(row.provider),
        _text(row.model),
        _text(row.user),
        _text(row.project),
        _text(row.api_key_id),
        _text(row.task),
        row.prompt_tokens,
        row.completion_tokens,
        row.cached_tokens,
        _to_pico(row.cost),
        float(row.latency_ms),
        row.status,
        _text(row.error_code),
        int(row.cached),
        _text(row.request_key),
    )


_COLUMN_LIST = (
    "ts, request_id, attempt, deployment, provider, model, user_id, project, api_key_id, task, prompt_tokens,"
    " completion_tokens, cached_tokens, cost_pusd, latency_ms, status, error_code, cached, request_key"
)
_ROW_PLACEHOLDERS = "(" + ", ".join("?" * 19) + ")"


def _insert_sql(rows: int) -> str:
    # One multi-row INSERT per chunk: the session interface has no executemany, and one statement of 500 rows is
    # one round trip instead of 500. A row already present (a batch retried after an ambiguous commit) is skipped.
    values = ", ".join([_ROW_PLACEHOLDERS] * rows)
    return (
        f"INSERT INTO llm_manager_ledger ({_COLUMN_LIST}) VALUES {values} ON CONFLICT (request_id, attempt) DO NOTHING"
    )


def _row_from_db(r: Sequence[Any]) -> LedgerRow:
    return LedgerRow(
        ts=from_db_time(r[0]),
        request_id=r[1],
        attempt=int(r[2]),
        deployment=r[3],
        provider=r[4],
        model=r[5],
        user=r[6],
        project=r[7],
        api_key_id=r[8],
        task=r[9],
        prompt_tokens=int(r[10]),
        completion_tokens=int(r[11]),
        cached_tokens=int(r[12]),
        cost=None if r[13] is None else _from_pico(r[13]),
        latency_ms=float(r[14]),
        status=cast(LedgerStatus, r[15]),
        error_code=r[16],
        cached=bool(r[17]),
        request_key=r[18],
    )


# SUM(cost_pusd) would overflow SQLite's 64-bit integers past $9.2M; summing whole microdollars and the picodollar
# remainders separately (integer division on both dialects, costs are never negative) is exact up to $9.2 trillion.
_AGGREGATES = """COUNT(DISTINCT request_id),
    SUM(CASE WHEN status IN ('ok', 'error', 'hedge_lost') THEN 1 ELSE 0 END),
    SUM(CASE WHEN status = 'error' THEN 1 ELSE 0 END),
    SUM(prompt_tokens),
    SUM(completion_tokens),
    SUM(cost_pusd / 1000000),
    SUM(cost_pusd - (cost_pusd / 1000000) * 1000000),
    SUM(CASE WHEN cost_pusd IS NULL AND status = 'ok' THEN 1 ELSE 0 END)"""


def _total(key: str | None, r: Sequence[Any]) -> Total:
    """A :class:`Total` from the columns of :data:`_AGGREGATES` (SUMs are NULL over no rows)."""
    micros, picos = int(r[5] or 0), int(r[6] or 0)
    return Total(
        key=key,
        requests=int(r[0] or 0),
        calls=int(r[1] or 0),
        errors=int(r[2] or 0),
        prompt_tokens=int(r[3] or 0),
        completion_tokens=int(r[4] or 0),
        cost=_from_pico(micros * _MICRO_IN_PICO + picos),
        unpriced_calls=int(r[7] or 0),
    )


def _period(since: datetime | None, until: datetime | None) -> tuple[str, list[object]]:
    """A WHERE clause for ``since <= ts < until`` (either bound optional; naive means UTC)."""
    conditions: list[str] = []
    params: list[object] = []
    if since is not None:
        conditions.append("ts >= ?")
        params.append(_utc(since))
    if until is not None:
        conditions.append("ts < ?")
        params.append(_utc(until))
    return (" WHERE " + " AND ".join(conditions) if conditions else ""), params


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
    """

    def __init__(
        self, db: Database, *, flush_interval_s: float = 1.0, max_batch: int = 1000, max_buffer: int = 100_000
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

    async def _write_batch(self) -> int:
        """Write the oldest ``max_batch`` buffered rows in one transaction; on failure put them back and raise."""
        batch = [self._buffer.popleft() for _ in range(min(self.max_batch, len(self._buffer)))]
        self._in_flight = len(batch)
        try:
            async with self.db.transaction(True) as session:
                # The driver's batch path (C loop in sqlite3, a pipeline in psycopg) is several times cheaper in
                # Python than building multi-row statements, and the writer shares the loop with requests.
                await session.executemany(_insert_sql(1), [_params(row) for row in batch])
        except BaseException:
            # Back in front, in order: rows recorded meanwhile are newer. Cancellation lands here too.
            self._buffer.extendleft(reversed(batch))
            self._trim()
            raise
        finally:
            self._in_flight = 0
        self.written += len(batch)
        return len(batch)

    async def flush(self) -> int:
        """Write every row buffered when called (in batches of ``max_batch``); returns how many were written.

        Raises the database's error when a batch fails; its rows and the rest stay buffered for the next flush.
        """
        async with self._flush_lock:
            target, done = len(self._buffer), 0
            while done < target and self._buffer:
                done += await self._write_batch()
            return done

    async def start(self) -> None:
        """Start the background flusher (idempotent)."""
        if self._closed:
            raise RuntimeError("the ledger is closed")
        if self._task is None:
            self._task = asyncio.get_running_loop().create_task(self._run(), name="llm-manager-ledger")

    async def _run(self) -> None:
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
        if self._task is not None:
            await self._task  # lets a flush in progress finish rather than cancelling it mid-transaction
            self._task = None
        try:
            await self.flush()
        except Exception as exc:
            lost = self.pending
            self.dropped += lost
            self._buffer.clear()
            log.error("ledger closed with %d rows not written (the database failed): %s", lost, exc)

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


# -- periods -------------------------------------------------------------------------------------------------------

_RELATIVE = re.compile(r"^(\d+)\s*([mhdw])$")
_UNITS = {"m": "minutes", "h": "hours", "d": "days", "w": "weeks"}


def parse_since(text: str, now: datetime) -> datetime:
    """The start of a period, from the forms a user types (CLI ``--since``, a gateway query parameter).

    Accepts ``30m``, ``24h``, ``7d``, ``2w`` (before ``now``); ``today`` and ``month`` (the start of the current
    UTC day / month); an ISO date ``2026-11-01`` (its UTC midnight) or datetime (UTC when it has no offset).
    Returns a UTC-aware datetime.

    Raises:
        ValueError: any other text, with the accepted forms in the message.
    """
    now = _utc(now)
    value = text.strip().lower()
    if match := _RELATIVE.match(value):
        try:
            return now - timedelta(**{_UNITS[match[2]]: int(match[1])})
        except OverflowError:  # "99999999w" reaches back past year 1
            raise ValueError(f"{text.strip()[:40]!r} reaches back further than a date can") from None
    if value == "today":
        return now.replace(hour=0, minute=0, second=0, microsecond=0)
    if value == "month":
        return now.replace(day=1, hour=0, minute=0, second=0, microsecond=0)
    try:
        parsed = datetime.fromisoformat(text.strip())
    except ValueError:
        raise ValueError(
            f"cannot read {text!r} as a start time: use a duration (30m, 24h, 7d, 2w), today, month, "
            "an ISO date (2026-11-01) or an ISO datetime (2026-11-01T09:30:00Z)"
        ) from None
    return _utc(parsed)
