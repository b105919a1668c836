"""Ledger rows the database refuses for their values: found, set aside with the reason, counted and logged, so that
one bad row never holds back the rows around it.

A batch of ledger rows is one transaction, so a single row the database refuses (a value too large for a btree index,
a number out of range, a trigger rejecting it) fails the whole batch, and retrying the batch fails again, for ever.
When the database says the failure is about the values (:meth:`~llm_manager.store.Database.rejects_row`), the
batch is split in halves, and the failing halves again, until every good row is committed and each refused row is
alone. A row refused on its own, twice, goes to ``llm_manager_ledger_dead_letters`` (migration
``m005_ledger_dead_letters``): the time, its request id and attempt, the database's reason and the whole row as
JSON, in a table with no index on the row's values, so that what made the ledger refuse it cannot make this insert
fail too. A batch of ``n`` rows with one bad row costs about ``2 log2 n`` extra transactions, once.

Any other failure (the database down, locked, full, a table missing), even halfway through, is raised: the rows not
settled yet stay buffered for the next flush, exactly as before. If even the dead-letter insert fails, the database
is not taking writes, and that too is such a failure.
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from llm_manager import _json
from llm_manager.store.migrations import from_db_time

if TYPE_CHECKING:
    from llm_manager.costs.ledger import LedgerRow
    from llm_manager.store.migrations import Database

__all__ = ["DeadLetter", "DeadLetters"]

log = logging.getLogger("llm_manager.costs")

_REASON_CHARS = 2000
_ID_CHARS = 200
_LOG_EVERY_S = 10.0

Insert = Callable[[Sequence["LedgerRow"]], Awaitable[None]]
"""Writes rows in one transaction, or raises."""
Settled = Callable[[int, bool], None]
"""Told ``(rows, committed)`` for each group settled, in the rows' order: committed, or set aside as dead letters."""


@dataclass(frozen=True, slots=True)
class DeadLetter:
    """A ledger row the database refused, as kept in ``llm_manager_ledger_dead_letters``."""

    failed_at: datetime
    request_id: str
    """The row's request id (cut to 200 characters: the row itself has it whole)."""
    attempt: int
    reason: str
    """The database's error, as it said it."""
    row: dict[str, Any]
    """The whole row (:func:`llm_manager.costs.ledger.row_json` form)."""


class DeadLetters:
    """Isolates refused rows of failing batches and keeps them in the dead-letter table of ``db``."""

    def __init__(self, db: Database) -> None:
        self.db = db
        self.count = 0
        """Rows set aside by this process."""
        self._last_log = -math.inf
        self._unlogged = 0

    async def isolate(self, rows: Sequence[LedgerRow], insert: Insert, settled: Settled) -> None:
        """``rows`` failed together for their values: commit the good ones, set the refused ones aside.

        Calls ``settled`` after each group, in order, so the settled rows are always a prefix of ``rows``. Raises
        when the database fails for any other reason meanwhile; the caller keeps the rows not settled yet.
        """
        if len(rows) == 1:
            try:
                await insert(rows)  # alone, once more: a fault that was not about this row passes now
            except Exception as exc:
                if not self.db.rejects_row(exc):
                    raise
                await self._put(rows[0], exc)
                settled(1, False)
            else:
                settled(1, True)
            return
        mid = len(rows) // 2
        for half in (rows[:mid], rows[mid:]):
            try:
                await insert(half)
            except Exception as exc:
                if not self.db.rejects_row(exc):
                    raise
                await self.isolate(half, insert, settled)
            else:
                settled(len(half), True)

    async def _put(self, row: LedgerRow, exc: Exception) -> None:
        from llm_manager.costs.ledger import row_json

        reason = f"{type(exc).__name__}: {exc}".replace("\x00", "\ufffd")[:_REASON_CHARS]
        async with self.db.transaction(True) as session:
            await session.execute(
                "INSERT INTO llm_manager_ledger_dead_letters (failed_at, request_id, attempt, reason, row) "
                "VALUES (?, ?, ?, ?, ?)",
                (
                    datetime.now(UTC),
                    row.request_id.replace("\x00", "\ufffd")[:_ID_CHARS],
                    row.attempt if -(2**31) <= row.attempt < 2**31 else -1,
                    reason,
                    row_json(row).decode(),
                ),
            )
        self.count += 1
        self._alert(row, reason)

    def _alert(self, row: LedgerRow, reason: str) -> None:
        """An error line for the first refused row, then at most one per interval with the count since."""
        self._unlogged += 1
        now = time.monotonic()
        if now - self._last_log >= _LOG_EVERY_S:
            self._last_log = now
            log.error(
                "ledger: the database refused %d row(s) (%d in total), kept in llm_manager_ledger_dead_letters; "
                "latest: request %s attempt %d: %s",
                self._unlogged,
                self.count,
                row.request_id[:80],
                row.attempt,
                reason[:300],
            )
            self._unlogged = 0

    async def recent(self, limit: int = 100) -> list[DeadLetter]:
        """The most recent dead letters, newest first (of every process using this database)."""
        async with self.db.transaction(False) as session:
            rows = await session.fetchall(
                "SELECT failed_at, request_id, attempt, reason, row FROM llm_manager_ledger_dead_letters "
                "ORDER BY failed_at DESC LIMIT ?",
                [limit],
            )
        return [DeadLetter(from_db_time(r[0]), r[1], int(r[2]), r[3], _json.loads(r[4])) for r in rows]

    async def total(self) -> int:
        """How many rows the dead-letter table holds (of every process using this database)."""
        async with self.db.transaction(False) as session:
            rows = await session.fetchall("SELECT COUNT(*) FROM llm_manager_ledger_dead_letters")
        return int(rows[0][0])
