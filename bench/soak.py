"""Soak: ``make soak`` (``python -m bench.soak [--requests N] [--replicas N] [--concurrency N]``).

Three ``serve`` replicas on one private Redis and the machine's PostgreSQL (a schema of its own, dropped after),
behind a client-side round-robin balancer, routing to a fake upstream on loopback: the primary model fails every
tenth call with a 500 and a healthy model takes over (fallback). Reports, as JSON on stdout and in
``bench/results/soak.json``:

* caller-visible errors (goal 0): any answer but 200;
* ledger requests vs requests sent (goal equal): distinct request ids in the ledger, which has one row per
  provider call (a request that fell back has two rows);
* each replica's RSS after warm-up and at the end (goal: flat);
* throughput and the time taken (bounded: ``--max-seconds``, default 600).

Not part of ``make test``: it takes about a minute (docs/operations.md has the results).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from tests.scale.cluster import Cluster, chat, running_cluster
from tests.scale.load import Balancer, Result
from tests.store.conftest import pg_schema

RESULTS = Path(__file__).resolve().parent / "results" / "soak.json"

SOAK_CONFIG: dict[str, Any] = {
    "models": {
        "primary": {
            "provider": "openai-compatible",
            "model": "tenth-primary",  # the fake upstream fails every tenth call to it
            "input_price_per_mtok": 1,
            "output_price_per_mtok": 2,
        },
        "steady": {"provider": "openai-compatible", "model": "up-steady", "input_price_per_mtok": 1},
    },
    "routing": {
        "tasks": {"general": ["primary", "steady"]},
        "max_retries": 0,
        "queue_timeout_s": 0,
        # 10 % failures must not open the breaker: every failure is a fallback, which is what is measured.
        "circuit_breaker": {"failure_threshold": 0, "failure_rate": 0.5, "min_calls": 50},
    },
    "cache": {"enabled": False},
    "budgets": [{"name": "soak", "scope": "global", "period": "daily", "limit_usd": "1000000"}],
}


def _rss_kib(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    return 0


async def _run(cluster: Cluster, requests: int, concurrency: int, max_seconds: float) -> dict[str, Any]:
    batch = 1000
    results: list[Result] = []
    async with Balancer([r.url for r in cluster.replicas]) as lb:
        await lb.many([chat("task:general", f"warm {i}", max_tokens=5) for i in range(300)], concurrency=concurrency)
        rss_start = {r.index: _rss_kib(r.proc.pid) for r in cluster.replicas}
        t0 = time.monotonic()
        for start in range(0, requests, batch):
            if time.monotonic() - t0 > max_seconds:
                break
            bodies = [
                chat("task:general", f"soak {i}", max_tokens=5) for i in range(start, min(start + batch, requests))
            ]
            results += await lb.many(bodies, concurrency=concurrency, headers={"x-llm-project": "soak"})
        elapsed = time.monotonic() - t0
    rss_end = {r.index: _rss_kib(r.proc.pid) for r in cluster.replicas}
    await asyncio.sleep(3)  # every replica flushes its ledger (flush interval 0.5 s)
    [(ledger_requests, ledger_rows)] = cluster.ledger(
        "SELECT count(DISTINCT request_id), count(*) FROM llm_manager_ledger WHERE project = 'soak'"
    )
    errors: dict[str, int] = {}
    for r in results:
        if r.status != 200:
            errors[str(r.status)] = errors.get(str(r.status), 0) + 1
    fell_back = sum(1 for r in results if r.status == 200 and r.headers.get("x-llm-model") == "steady")
    return {
        "requests": len(results),
        "seconds": round(elapsed, 1),
        "requests_per_s": round(len(results) / elapsed, 1),
        "caller_visible_errors": sum(errors.values()),
        "errors_by_status": errors,
        "answered_by_fallback": fell_back,
        "upstream_faults": cluster.upstream_calls("tenth-primary") // 10,
        "ledger_requests": int(ledger_requests),
        "ledger_rows": int(ledger_rows),
        "rss_kib_after_warmup": rss_start,
        "rss_kib_at_end": rss_end,
        "rss_growth_kib": {i: rss_end[i] - rss_start[i] for i in rss_start},
        "replicas": len(cluster.replicas),
        "concurrency": concurrency,
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=10_000)
    parser.add_argument("--replicas", type=int, default=3)
    parser.add_argument("--concurrency", type=int, default=32)
    parser.add_argument("--max-seconds", type=float, default=600.0)
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory() as tmp, pg_schema() as store_url:
        with running_cluster(Path(tmp), store_url, replicas=args.replicas, **SOAK_CONFIG) as cluster:
            report = asyncio.run(_run(cluster, args.requests, args.concurrency, args.max_seconds))
    report["date"] = time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())
    # Throughput depends on what else the machine runs (measured runs: docs/operations.md say the load average).
    report["load_average_1m_at_end"] = round(os.getloadavg()[0], 1)
    RESULTS.parent.mkdir(exist_ok=True)
    RESULTS.write_text(json.dumps(report, indent=2) + "\n")
    print(json.dumps(report, indent=2))
    ok = report["caller_visible_errors"] == 0 and report["ledger_requests"] == report["requests"]
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
