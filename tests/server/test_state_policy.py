"""The gateway while its Redis is stopped or hung: ``state.on_unavailable`` as a client and a load balancer see it.

fail_closed: 503 with ``retry-after`` and ``x-should-retry: true`` (never a 500), ``/health/ready`` 503, ``/metrics``
200 saying ``llm_manager_state_available 0``; everything back once Redis is. fail_open: answers go on. A private
redis-server (tests/state/private_redis.py), never the shared one.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.helpers import sim_settings
from tests.server.conftest import MODELS, Gateway, start_gateway
from tests.state.conftest import unique_prefix
from tests.state.private_redis import PrivateRedis, private_redis

BODY = {"model": "gpt", "messages": [{"role": "user", "content": "hi"}]}


@pytest.fixture
def server(tmp_path: Path) -> Iterator[PrivateRedis]:
    with private_redis(tmp_path) as srv:
        yield srv


def _gateway(server: PrivateRedis, policy: str) -> Iterator[Gateway]:
    state = {
        "redis_url": server.url,
        "prefix": unique_prefix(),
        "on_unavailable": policy,
        "timeout_s": 0.2,
        "heartbeat_s": 0.2,
    }
    models = {k: {**v, "rpm": 1000} for k, v in MODELS.items()}  # a shared limit: every request touches Redis
    yield from start_gateway(sim_settings(models, state=state, cache={"enabled": True}, max_retries=0))


def _wait_for(
    client: httpx.Client, path: str, status: int, body: object = None, timeout_s: float = 5.0
) -> httpx.Response:
    deadline = time.monotonic() + timeout_s
    while True:
        r = client.get(path)
        if (r.status_code == status and (body is None or r.json() == body)) or time.monotonic() > deadline:
            return r
        time.sleep(0.05)


def _assert_refused_politely(r: httpx.Response) -> None:
    assert r.status_code == 503, r.text
    assert r.headers["retry-after"] == "1"
    assert r.headers["x-should-retry"] == "true"
    assert r.json()["error"]["code"] == "state_unavailable"
    assert r.json()["error"]["type"] == "api_error"


def test_fail_closed_stopped_redis(server: PrivateRedis) -> None:
    for gw in _gateway(server, "fail_closed"):
        with httpx.Client(base_url=gw.url, timeout=10) as client:
            assert client.post("/v1/chat/completions", json=BODY).status_code == 200
            assert client.get("/health/ready").json() == {"status": "ready"}
            server.stop()
            statuses = []
            t0 = time.monotonic()
            for _ in range(10):
                r = client.post("/v1/chat/completions", json=BODY)
                statuses.append(r.status_code)
                if r.status_code != 200:
                    _assert_refused_politely(r)
            assert set(statuses) == {503}
            assert time.monotonic() - t0 < 2.0
            streamed = client.post("/v1/chat/completions", json={**BODY, "stream": True})
            _assert_refused_politely(streamed)
            anthropic = client.post(
                "/v1/messages", json={"model": "gpt", "max_tokens": 10, "messages": [{"role": "user", "content": "x"}]}
            )
            assert anthropic.status_code == 503 and anthropic.headers["x-should-retry"] == "true"
            ready = client.get("/health/ready")
            assert ready.status_code == 503 and "fail_closed" in ready.json()["reason"]
            metrics = client.get("/metrics")
            assert metrics.status_code == 200
            assert 'llm_manager_state_available{backend="redis"} 0.0' in metrics.text
            status = client.get("/admin/status")
            assert status.status_code == 503 and status.json()["error"]["code"] == "state_unavailable"
            server.start()
            assert _wait_for(client, "/health/ready", 200).status_code == 200
            assert client.post("/v1/chat/completions", json=BODY).status_code == 200
            assert 'llm_manager_state_available{backend="redis"} 1.0' in client.get("/metrics").text
            assert client.get("/admin/status").json()["shared_state"]["available"] is True


def test_fail_closed_hung_redis_answers_within_the_deadline(server: PrivateRedis) -> None:
    for gw in _gateway(server, "fail_closed"):
        with httpx.Client(base_url=gw.url, timeout=10) as client:
            assert client.post("/v1/chat/completions", json=BODY).status_code == 200
            server.hang()
            try:
                t0 = time.monotonic()
                r = client.post("/v1/chat/completions", json=BODY)
                _assert_refused_politely(r)
                assert time.monotonic() - t0 < 1.0  # was a 500 after 5 s
                assert _wait_for(client, "/health/ready", 503).status_code == 503
                assert client.get("/metrics").status_code == 200
            finally:
                server.resume()
            assert _wait_for(client, "/health/ready", 200).status_code == 200
            assert client.post("/v1/chat/completions", json=BODY).status_code == 200


def test_fail_open_keeps_answering(server: PrivateRedis) -> None:
    for gw in _gateway(server, "fail_open"):
        with httpx.Client(base_url=gw.url, timeout=10) as client:
            assert client.post("/v1/chat/completions", json=BODY).status_code == 200
            server.stop()
            assert [client.post("/v1/chat/completions", json=BODY).status_code for _ in range(5)] == [200] * 5
            assert client.get("/health/ready").json() == {"status": "ready", "state": "degraded"}
            assert client.get("/admin/status").json()["shared_state"]["available"] is False
            assert client.get("/metrics").status_code == 200
            server.start()
            assert _wait_for(client, "/health/ready", 200, {"status": "ready"}).json() == {"status": "ready"}
