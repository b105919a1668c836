"""A process recording ledger rows under load until it is killed (driven by test_ledger.py's durability tests).

Run as ``python -m tests.costs._ledger_worker <database url>`` from the repository root. Prints ``ready`` once the
ledger runs, ``recorded M <unix time>`` after each 200 rows handed to :meth:`Ledger.record` (every 50 ms), and
``acked N`` whenever the flusher has committed more rows (N: rows committed so far, in recording order).
"""

from __future__ import annotations

import asyncio
import sys
import time
from datetime import UTC, datetime
from decimal import Decimal

from llm_manager.costs import Ledger, LedgerRow
from llm_manager.store import open_database

FLUSH_INTERVAL_S = 0.2
ROWS_PER_TICK = 200
TICK_S = 0.05


def make_row(i: int) -> LedgerRow:
    """Row number ``i``: request ``r<i>``, so the test can tell which rows made it."""
    return LedgerRow(
        ts=datetime.now(UTC),
        request_id=f"r{i:08d}",
        attempt=1,
        deployment=f"dep{i % 3}",
        provider="openai",
        model="gpt-4o-mini",
        status="ok",
        user=f"u{i % 7}",
        prompt_tokens=100,
        completion_tokens=20,
        cost=Decimal("0.000027"),
        latency_ms=12.5,
    )


async def report_acks(ledger: Ledger) -> None:
    acked = 0
    while True:
        if ledger.written != acked:
            acked = ledger.written
            print(f"acked {acked}", flush=True)
        await asyncio.sleep(0.002)


async def main(url: str) -> None:
    db = await open_database(url)
    ledger = Ledger(db, flush_interval_s=FLUSH_INTERVAL_S)
    await ledger.start()
    reporter = asyncio.create_task(report_acks(ledger))
    print("ready", flush=True)
    recorded = 0
    while not reporter.done():
        ledger.record([make_row(recorded + i) for i in range(ROWS_PER_TICK)])
        recorded += ROWS_PER_TICK
        # Printed before the next await: no flush can run between record() and this line.
        print(f"recorded {recorded} {time.time():.6f}", flush=True)
        await asyncio.sleep(TICK_S)


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1]))
