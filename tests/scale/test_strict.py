"""``ledger.durability: strict`` across replicas: ``kill -9`` of one of two ``serve`` replicas under load loses no
ledger row of an answered request — the replica started in its place replays the dead one's spool (one shared
spool directory, a slot per process) — and writes none twice."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

import pytest

from tests.scale.cluster import chat, running_cluster, start_replica, wait_ready
from tests.scale.load import Balancer
from tests.store.conftest import pg_schema

pytestmark = pytest.mark.timeout(180)


async def test_kill_9_loses_no_acknowledged_row_with_strict_durability(tmp_path: Path) -> None:
    ledger = {"flush_interval_s": 0.5, "durability": "strict", "spool_dir": str(tmp_path / "spool")}
    with pg_schema() as store_url, running_cluster(tmp_path, store_url, replicas=2, ledger=ledger) as cluster:
        bodies = [chat("main", f"strict {i}", max_tokens=5) for i in range(200)]
        async with Balancer([r.url for r in cluster.replicas]) as lb:
            # Each replica opens its connections and warms up under the same concurrency before the load.
            warm = await lb.many([chat("main", f"warm {i}") for i in range(48)], concurrency=12)
            assert {r.status for r in warm} == {200}
            load = asyncio.ensure_future(lb.many(bodies, concurrency=12, headers={"x-llm-project": "strict"}))
            await asyncio.sleep(0.8)
            cluster.kill(1)
            results = await load
        answered = {r.request_id for r in results if r.status == 200}
        on_killed = [r for r in results if r.replica == 1 and r.status == 200]
        assert on_killed and len(answered) == sum(1 for r in results if r.status == 200)
        # Another replica starts on the same spool directory: it takes the dead one's slot and replays it before it
        # reports ready.
        wait_ready(start_replica(cluster, 2))
        deadline = time.monotonic() + 10
        while True:
            stored = [
                row[0] for row in cluster.ledger("SELECT request_id FROM llm_manager_ledger WHERE project = 'strict'")
            ]
            if answered <= set(stored) or time.monotonic() > deadline:
                break
            await asyncio.sleep(0.25)
    lost = answered - set(stored)
    assert not lost, f"{len(lost)} rows of answered requests lost (of {len(answered)}, {len(on_killed)} on the killed)"
    assert len(stored) == len(set(stored))  # nothing replayed twice
    print(f"strict, kill -9: {len(answered)} answered ({len(on_killed)} by the killed replica), 0 ledger rows lost")
