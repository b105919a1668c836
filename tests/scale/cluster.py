"""Several ``llm-manager serve`` processes on one Redis and one PostgreSQL, routing to one fake upstream.

What an operator runs, on loopback: each replica is the real command (``python -m llm_manager.cli.main serve``) in
its own process with the same config file; Redis is a private ``redis-server`` (so it can be stopped, hung and
restarted), PostgreSQL the machine's (a fresh schema, dropped afterwards); the upstream is
:class:`~tests.fakes.server.FakeUpstream`, answering OpenAI chat completions whose usage it controls, and failing
for the models named in :data:`FAILING`.

Shared by ``tests/scale/test_replicas.py`` (checks with numbers) and ``bench/soak.py`` (``make soak``).
"""

from __future__ import annotations

import itertools
import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import yaml

from tests.fakes import openai_wire
from tests.fakes.server import FakeUpstream, Recorded, Reply, serve_in_thread
from tests.processes import free_port
from tests.state.private_redis import PrivateRedis, private_redis

ROOT = Path(__file__).resolve().parents[2]


_tenths = itertools.count()
SLOW_S = 3.0
DEADLINE_S = 6.0
"""``routing.deadline_s`` of the replicas: with ``state.budget_lease_margin_s`` (:data:`LEASE_MARGIN_S`), how long a
killed replica's budget holds last."""
LEASE_MARGIN_S = 1.0


def upstream_reply(req: Recorded) -> Reply:
    """The fake provider: a completion whose usage is at most what a budget estimate assumes (prompt 1 token,
    completion ``min(max_tokens, 5)``); a 500 for every call to a model whose upstream name starts with ``fail``,
    and for every tenth call to one starting with ``tenth`` (the soak's 10 % faults); models starting with
    ``slow`` answer after :data:`SLOW_S` (requests still in flight when a replica is killed)."""
    body = req.json or {}
    model = str(body.get("model", ""))
    if model.startswith("fail") or (model.startswith("tenth") and next(_tenths) % 10 == 9):
        return Reply.error(500, openai_wire.error_body("upstream down", type="server_error"))
    out = min(int(body.get("max_tokens") or body.get("max_completion_tokens") or 5), 5)
    reply = Reply.json(openai_wire.completion("ok " * out, model=model, prompt_tokens=1, completion_tokens=out))
    if model.startswith("slow"):
        reply.delay_s = SLOW_S
    return reply


@dataclass
class Replica:
    """One ``serve`` process."""

    index: int
    port: int
    proc: subprocess.Popen[bytes]
    log: Path

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def alive(self) -> bool:
        return self.proc.poll() is None


@dataclass
class Cluster:
    """The running replicas and what they share."""

    redis: PrivateRedis
    store_url: str
    prefix: str
    upstream: FakeUpstream
    config_path: Path
    replicas: list[Replica] = field(default_factory=list)

    def upstream_calls(self, model: str) -> int:
        """Requests the upstream received for ``model`` (its upstream name)."""
        return sum(1 for r in list(self.upstream.requests) if (r.json or {}).get("model") == model)

    def kill(self, index: int) -> None:
        """``kill -9`` a replica: no drain, no ledger flush."""
        rep = self.replicas[index]
        rep.proc.send_signal(signal.SIGKILL)
        rep.proc.wait(10)

    def ledger(self, sql: str, *params: Any) -> list[tuple[Any, ...]]:
        """Rows of a query on the shared PostgreSQL schema."""
        import psycopg

        with psycopg.connect(self.store_url, autocommit=True) as conn:
            return list(conn.execute(sql, params).fetchall())


def write_config(path: Path, upstream_url: str, redis_url: str, store_url: str, prefix: str, **extra: Any) -> None:
    """The replicas' one config file. Deployments (each a task's only model, so that nothing falls back):

    * ``main`` (task general): plain, priced; ``limited`` (analysis): RPM 30 shared by all replicas;
    * ``flaky`` (ui-generation): its upstream always fails, breaker after 3 failures;
    * ``priced`` (config-management): expensive, under a project budget;
    * ``capped``: under a model budget of $0.10 (asked for by name, it falls back to ``main``);
    * ``slow``: answers after ``SLOW_S``, under a project budget for ``lease-test``.
    """
    price = {"input_price_per_mtok": 1000, "output_price_per_mtok": 2000}
    common = {"provider": "openai-compatible", "base_url": f"{upstream_url}/v1", "api_key": "sk-test", **price}
    config: dict[str, Any] = {
        "models": {
            "main": {**common, "model": "up-main"},
            "limited": {**common, "model": "up-limited", "rpm": 30},
            "flaky": {**common, "model": "fail-flaky"},
            "priced": {**common, "model": "up-priced"},
            "capped": {**common, "model": "up-capped"},
            "slow": {**common, "model": "slow-up"},
        },
        "routing": {
            "tasks": {
                "general": ["main"],
                "analysis": ["limited"],
                "ui-generation": ["flaky"],
                "config-management": ["priced"],
            },
            "max_retries": 0,
            "queue_timeout_s": 0,
            "circuit_breaker": {"failure_threshold": 3, "cooldown_s": 60},
            "deadline_s": DEADLINE_S,
        },
        "cache": {"enabled": True, "ttl_s": 300},
        "state": {
            "redis_url": redis_url,
            "prefix": prefix,
            "timeout_s": 1.0,
            "heartbeat_s": 0.3,
            "budget_lease_margin_s": LEASE_MARGIN_S,
        },
        "store": {"url": store_url},
        "ledger": {"flush_interval_s": 0.5},
        "budgets": [
            {"name": "proj", "scope": "project", "match": "budget-test", "period": "daily", "limit_usd": "0.2"},
            {"name": "capped", "scope": "model", "match": "capped", "period": "daily", "limit_usd": "0.1"},
            {"name": "leased", "scope": "project", "match": "lease-test", "period": "daily", "limit_usd": "100"},
        ],
    }
    for section, values in extra.items():
        config[section] = {**config.get(section, {}), **values} if isinstance(values, dict) else values
    for model in config["models"].values():  # extra models reach the same upstream unless they say otherwise
        for key, value in common.items():
            model.setdefault(key, value)
    path.write_text(yaml.safe_dump(config))


def start_replica(cluster: Cluster, index: int) -> Replica:
    port = free_port()
    log = cluster.config_path.parent / f"replica{index}.log"
    env = {k: v for k, v in os.environ.items() if k not in ("LLM_MANAGER_CONFIG", "LLM_MANAGER_STORE_URL")}
    with log.open("wb") as out:
        proc = subprocess.Popen(
            [sys.executable, "-m", "llm_manager.cli.main", "--config", str(cluster.config_path), "serve"]
            + ["--port", str(port), "--drain-timeout", "2"],
            env=env,
            cwd=ROOT,
            stdout=subprocess.DEVNULL,
            stderr=out,
        )
    rep = Replica(index, port, proc, log)
    cluster.replicas.append(rep)
    return rep


def wait_ready(rep: Replica, timeout_s: float = 30.0) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if not rep.alive:
            raise AssertionError(f"replica {rep.index} exited: {rep.log.read_text()}")
        try:
            if httpx.get(f"{rep.url}/health/ready", timeout=1).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.05)
    raise AssertionError(f"replica {rep.index} not ready within {timeout_s}s: {rep.log.read_text()}")


@contextmanager
def running_cluster(workdir: Path, store_url: str, replicas: int = 3, **config: Any) -> Iterator[Cluster]:
    """``replicas`` serve processes, ready; everything stopped (and the private Redis killed) on exit."""
    with ExitStack() as stack:
        redis = stack.enter_context(private_redis(workdir))
        upstream = stack.enter_context(serve_in_thread(FakeUpstream(upstream_reply)))
        prefix = f"llm-manager-scale:{os.getpid()}:{time.monotonic_ns()}"
        path = workdir / "llm-manager.yaml"
        write_config(path, upstream.url, redis.url, store_url, prefix, **config)
        cluster = Cluster(redis, store_url, prefix, upstream, path)
        try:
            for i in range(replicas):
                start_replica(cluster, i)
            for rep in cluster.replicas:
                wait_ready(rep)
            yield cluster
        finally:
            for rep in cluster.replicas:
                if rep.alive:
                    rep.proc.send_signal(signal.SIGTERM)
            for rep in cluster.replicas:
                try:
                    rep.proc.wait(15)
                except subprocess.TimeoutExpired:
                    rep.proc.kill()
                    rep.proc.wait(5)


def chat(model: str, content: str = "hi", **extra: Any) -> dict[str, Any]:
    return {"model": model, "messages": [{"role": "user", "content": content}], **extra}


def dumps(obj: Any) -> str:
    return json.dumps(obj, indent=1, sort_keys=True)
