"""A process answering "requests" with ``ledger.durability: strict`` until it is killed (driven by test_spool.py).

Run as ``python -m tests.costs._spool_worker <database url> <spool dir>`` from the repository root. Prints
``ready`` once the ledger runs, then ``ack <request id>`` for every row :meth:`Ledger.record_durably` returned for
— what a gateway would then release to its client — with 32 such requests in flight at a time.
"""

from __future__ import annotations

import asyncio
import itertools
import sys
from pathlib import Path

from llm_manager.costs import Ledger
from llm_manager.costs.spool import Spool
from llm_manager.store import open_database
from tests.costs._ledger_worker import make_row

FLUSH_INTERVAL_S = 0.2
IN_FLIGHT = 32


async def main(url: str, spool_dir: str) -> None:
    db = await open_database(url)
    ledger = Ledger(db, flush_interval_s=FLUSH_INTERVAL_S, spool=Spool(Path(spool_dir)))
    await ledger.start()
    print("ready", flush=True)
    numbers = itertools.count()

    async def requests() -> None:
        while True:
            row = make_row(next(numbers))
            await ledger.record_durably([row])
            print(f"ack {row.request_id}", flush=True)

    await asyncio.gather(*(requests() for _ in range(IN_FLIGHT)))


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1], sys.argv[2]))
