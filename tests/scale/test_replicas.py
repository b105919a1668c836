"""Three ``serve`` replicas on one Redis and one PostgreSQL, checked with numbers (docs/operations.md).

One cluster for the module (see :mod:`tests.scale.cluster`), the checks in order, the destructive ones last: a
shared RPM admits exactly its limit, the cache and breakers are shared, a project budget and a model budget are
not overshot beyond the stated bound, a Redis restarted mid-period keeps the period's spend (seeded from the
ledger), Redis stopped and hung gets the fail_closed policy (503 to retry, never a 500, readiness 503), and a
``kill -9`` of a replica under load costs only the requests on it and the ledger rows of its last flush interval,
and leaves no budget hold past its lease.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path

import httpx
import pytest

from tests.scale.cluster import DEADLINE_S, LEASE_MARGIN_S, Cluster, chat, running_cluster
from tests.scale.load import Balancer
from tests.store.conftest import pg_schema

pytestmark = pytest.mark.timeout(180)

FLUSH_S = 0.5  # ledger.flush_interval_s in the cluster's config
TIMEOUT_S = 1.0  # state.timeout_s in the cluster's config


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    with pg_schema() as store_url, running_cluster(Path(tmp_path_factory.mktemp("scale")), store_url) as c:
        yield c


def balancer(cluster: Cluster) -> Balancer:
    return Balancer([r.url for r in cluster.replicas if r.alive])


def calls_with(cluster: Cluster, text: str) -> int:
    """Upstream requests whose prompt contains ``text``."""
    return sum(1 for r in list(cluster.upstream.requests) if text in r.body.decode())


async def test_a_shared_rpm_admits_exactly_its_limit(cluster: Cluster) -> None:
    async with balancer(cluster) as lb:
        t0 = time.monotonic()
        results = await lb.many([chat("task:analysis", f"rpm {i}", max_tokens=5) for i in range(75)], concurrency=15)
        elapsed = time.monotonic() - t0
    statuses = [r.status for r in results]
    ok = statuses.count(200)
    assert ok + statuses.count(429) == len(results), [r.body for r in results if r.status not in (200, 429)]
    # RPM 30: a full bucket of 30, refilled at 30/60 per second while the burst lasts.
    assert 30 <= ok <= 30 + int(elapsed * 30 / 60), (ok, elapsed)
    assert cluster.upstream_calls("up-limited") == ok
    assert {r.replica for r in results if r.status == 200} == {0, 1, 2}  # every replica drew from the one bucket


async def test_the_cache_is_shared(cluster: Cluster) -> None:
    async with balancer(cluster) as lb:
        first = await lb.post("/v1/chat/completions", chat("main", "cache me"), replica=0)
        others = [await lb.post("/v1/chat/completions", chat("main", "cache me"), replica=i) for i in (1, 2)]
    assert first.status == 200 and first.headers["x-llm-cache"] == "miss"
    assert [(r.status, r.headers["x-llm-cache"]) for r in others] == [(200, "hit"), (200, "hit")]
    assert calls_with(cluster, "cache me") == 1


async def test_a_breaker_opened_by_one_replica_protects_all(cluster: Cluster) -> None:
    async with balancer(cluster) as lb:
        failures = [
            await lb.post("/v1/chat/completions", chat("task:ui-generation", f"f{i}"), replica=0) for i in "abc"
        ]
        assert all(r.status in (502, 503) for r in failures), [r.body for r in failures]
        refused = [await lb.post("/v1/chat/completions", chat("task:ui-generation", "g"), replica=i) for i in (1, 2)]
        status = (await lb.get(2, "/admin/status")).json()
    assert cluster.upstream_calls("fail-flaky") == 3  # the other replicas never called the failing upstream
    for r in refused:
        assert r.status == 503 and "circuit" in r.body["error"]["message"], r.body
    [breaker] = status["deployments"]["flaky"]["breakers"].values()
    assert breaker["state"] == "open"


def _project_spend(cluster: Cluster, project: str) -> tuple[int, Decimal]:
    [(rows, pusd)] = cluster.ledger(
        "SELECT count(*), coalesce(sum(cost_pusd), 0) FROM llm_manager_ledger WHERE project = %s", project
    )
    return int(rows), Decimal(int(pusd)) / Decimal(10**12)


async def _settled_rows(cluster: Cluster, project: str, expected: int) -> tuple[int, Decimal]:
    """The ledger once every replica has flushed (a few flush intervals at most)."""
    deadline = time.monotonic() + 10 * FLUSH_S + 5
    rows, spent = _project_spend(cluster, project)
    while rows < expected and time.monotonic() < deadline:
        await asyncio.sleep(FLUSH_S / 2)
        rows, spent = _project_spend(cluster, project)
    return rows, spent


async def test_a_budget_shared_by_replicas_stays_within_its_bound(cluster: Cluster) -> None:
    """Project budget of $0.20; each call costs $0.011 and reserves an upper-bound estimate (max_tokens given),
    so by the bound in docs/operations.md the spend never passes the limit, whatever the concurrency."""
    headers = {"x-llm-project": "budget-test"}
    async with balancer(cluster) as lb:
        results = await lb.many(
            [chat("task:config-management", f"budget {i}", max_tokens=5) for i in range(60)],
            concurrency=30,
            headers=headers,
        )
    statuses = [r.status for r in results]
    ok = statuses.count(200)
    assert ok + statuses.count(429) == len(results), [r.body for r in results if r.status not in (200, 429)]
    refused = [r for r in results if r.status == 429]
    assert refused and all(r.body["error"]["code"] == "budget_exceeded" for r in refused)
    rows, spent = await _settled_rows(cluster, "budget-test", ok)
    assert rows == ok  # one ledger row per answered call, none lost
    assert spent == Decimal("0.011") * ok
    assert spent <= Decimal("0.2")
    assert spent > Decimal("0.2") - 2 * Decimal("0.03")  # the budget was used, not refused early


async def test_a_model_budget_shared_by_replicas_stays_within_its_bound(cluster: Cluster) -> None:
    """Model budget of $0.10 on ``capped`` ($0.011 a call, estimates are upper bounds): 40 requests 20 at a time
    across three replicas. Each reserves on ``capped``'s own budget before calling it; once it is full, ``main``
    answers instead. Issue 18: checked but not reserved, such a budget ended 25–66 % over."""
    async with balancer(cluster) as lb:
        results = await lb.many([chat("capped", f"cap {i}", max_tokens=5) for i in range(40)], concurrency=20)
    assert [r.status for r in results] == [200] * 40, [r.body for r in results if r.status != 200]
    calls = cluster.upstream_calls("up-capped")
    assert 0 < calls < 40 and Decimal("0.011") * calls <= Decimal("0.1"), calls
    async with httpx.AsyncClient(timeout=5) as client:
        status = (await client.get(f"{cluster.replicas[0].url}/admin/status")).json()
    [row] = [b for b in status["budgets"] if b["budget"] == "capped"]
    assert Decimal(row["spent_usd"]) == Decimal("0.011") * calls and Decimal(row["reserved_usd"]) == 0


async def test_a_redis_restart_mid_period_keeps_the_spend(cluster: Cluster) -> None:
    """After the budget test the project has spent (almost) its $0.20. Redis restarts empty: the counter is seeded
    from the ledger again, so the budget still refuses (issue 18: the counter restarted from $0)."""
    rows, before = await _settled_rows(cluster, "budget-test", 1)
    assert before > Decimal("0.2") - Decimal("0.03")
    cluster.redis.restart()
    # A replica meets the restart on its next Redis operation (its pooled connections are dead): it may refuse
    # with 503 until its heartbeat is through again, as when Redis was stopped. Wait until each one answers.
    deadline = time.monotonic() + 15
    async with balancer(cluster) as lb:
        for i in range(len(cluster.replicas)):
            while (await lb.post("/v1/chat/completions", chat("main", "after restart"), replica=i)).status != 200:
                assert time.monotonic() < deadline, f"replica {i} did not come back after the Redis restart"
                await asyncio.sleep(0.2)
    headers = {"x-llm-project": "budget-test"}
    async with balancer(cluster) as lb:
        results = await lb.many(
            [chat("task:config-management", f"after restart {i}", max_tokens=5) for i in range(12)],
            concurrency=6,
            headers=headers,
        )
    ok = [r for r in results if r.status == 200]
    refused = [r for r in results if r.status == 429 and r.body["error"]["code"] == "budget_exceeded"]
    assert len(ok) + len(refused) == len(results), [(r.status, r.body) for r in results]
    rows_after, after = await _settled_rows(cluster, "budget-test", rows + len(ok))
    assert rows_after == rows + len(ok)
    assert after <= Decimal("0.2"), (before, after)  # from $0 again, all twelve would have been admitted
    assert len(refused) >= 10


async def _policy_holds_while_redis_is_away(cluster: Cluster) -> None:
    """Every replica answers 503 + retry-after + x-should-retry: true (never a 500), readiness 503, metrics 200."""
    async with balancer(cluster) as lb:
        results = await lb.many([chat("main", f"away {i}") for i in range(12)], concurrency=6)
        for r in results:
            assert r.status == 503, r.body
            assert r.headers["x-should-retry"] == "true" and int(r.headers["retry-after"]) >= 1
            assert r.body["error"]["code"] == "state_unavailable"
        # A hung Redis is found within ~2.5 timeouts (1 s here; slack for a loaded machine), not Redis clients'
        # retries; once it is, refusals are immediate.
        slowest = max(r.took for r in results)
        assert slowest < 2.5 * TIMEOUT_S + 2.5, slowest
        for i in range(3):
            assert (await lb.get(i, "/health/ready")).status_code == 503
            metrics = await lb.get(i, "/metrics")
            assert metrics.status_code == 200 and 'llm_manager_state_available{backend="redis"} 0.0' in metrics.text


async def _all_back(cluster: Cluster) -> None:
    deadline = time.monotonic() + 10
    async with httpx.AsyncClient(timeout=5) as client:
        for rep in cluster.replicas:
            while (await client.get(f"{rep.url}/health/ready")).status_code != 200:
                assert time.monotonic() < deadline, "a replica did not come back with Redis"
                await asyncio.sleep(0.1)
    async with balancer(cluster) as lb:
        results = await lb.many([chat("main", f"back {i}") for i in range(6)])
    assert [r.status for r in results] == [200] * 6


async def test_redis_stopped_then_back(cluster: Cluster) -> None:
    cluster.redis.stop()
    try:
        await _policy_holds_while_redis_is_away(cluster)
    finally:
        cluster.redis.start()
    await _all_back(cluster)


async def test_redis_hung_then_back(cluster: Cluster) -> None:
    cluster.redis.hang()
    try:
        await _policy_holds_while_redis_is_away(cluster)
    finally:
        cluster.redis.resume()
    await _all_back(cluster)


async def test_kill_9_of_a_replica_mid_load(cluster: Cluster) -> None:
    """The survivors answer everything sent to them; the killed replica loses its in-flight requests and at
    most the ledger rows of its last flush interval (``ledger.flush_interval_s``)."""
    bodies = [chat("main", f"load {i}", max_tokens=5) for i in range(240)]
    leased = {"x-llm-project": "lease-test"}
    async with balancer(cluster) as lb:
        # Slow requests on the replica to be killed: their budget holds are taken, never settled.
        slow = [
            asyncio.ensure_future(lb.post("/v1/chat/completions", chat("slow", f"s{i}", max_tokens=5), replica=2,
                                          headers=leased))
            for i in range(3)
        ]  # fmt: skip
        held_at = time.monotonic()
        while await _leased_reserved(lb, 0) == 0:
            assert time.monotonic() - held_at < 5, "the slow requests never reserved"
            await asyncio.sleep(0.05)
        load = asyncio.ensure_future(lb.many(bodies, concurrency=12, headers={"x-llm-project": "kill-test"}))
        await asyncio.sleep(0.8)
        killed_at = time.monotonic()
        cluster.kill(2)
        results = await load
        assert {r.status for r in await asyncio.gather(*slow)} == {0}  # cut by the kill
        # The dead replica's holds count until their lease ends (deadline + margin after they were taken), no longer.
        lease = DEADLINE_S + LEASE_MARGIN_S
        while await _leased_reserved(lb, 0) > 0:
            assert time.monotonic() - held_at < lease + 3, "a killed replica's hold outlived its lease"
            await asyncio.sleep(0.2)
        lapsed = time.monotonic() - held_at
        assert await _leased_reserved(lb, 1) == 0
    assert lapsed > lease - 1.5, lapsed
    survivors = [r for r in results if r.replica != 2]
    assert survivors and all(r.status == 200 for r in survivors), {r.status for r in survivors}
    on_killed = [r for r in results if r.replica == 2]
    answered = [r for r in results if r.status == 200]
    assert {r.status for r in on_killed} <= {200, 0}
    await asyncio.sleep(3 * FLUSH_S)
    await _settled_rows(cluster, "kill-test", len(answered))
    logged = {row[0] for row in cluster.ledger("SELECT request_id FROM llm_manager_ledger WHERE project = 'kill-test'")}
    lost = [r for r in answered if r.request_id not in logged]
    assert all(r.replica == 2 for r in lost), "a survivor lost ledger rows"
    # Lost rows are answers of the killed replica from its last flush interval (plus the flush's own time).
    recent = [r for r in on_killed if r.status == 200 and r.at >= killed_at - FLUSH_S - 0.5]
    assert len(lost) <= len(recent), (len(lost), len(recent))
    cut = sum(1 for r in on_killed if r.status == 0)
    print(
        f"kill -9: {len(answered)} answered, {cut} cut on the killed replica, {len(lost)} ledger rows lost; "
        f"its budget holds lapsed after {lapsed:.1f}s (lease {lease:g}s)"
    )


async def _leased_reserved(lb: Balancer, replica: int) -> Decimal:
    """What the ``leased`` project budget holds reserved, as a replica reports it."""
    status = (await lb.get(replica, "/admin/status")).json()
    [row] = [b for b in status["budgets"] if b["budget"] == "leased"]
    return Decimal(row["reserved_usd"])
