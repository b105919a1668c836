"""The drain of a running gateway, driven in-process: readiness while draining, and what the cut does to requests
and streams still in flight. (The whole of it under a real SIGTERM: tests/cli/test_serve_drain.py.)"""

from __future__ import annotations

import asyncio
import concurrent.futures
import threading
import time
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from llm_manager.server.lifecycle import Lifecycle
from tests.helpers import sim_settings
from tests.server.conftest import MODELS, Gateway, start_gateway

HELLO = {"messages": [{"role": "user", "content": "hello"}]}


@pytest.fixture
def slow_gateway() -> Iterator[Gateway]:
    """Besides the instant models, ``slow``: forty words at twenty a second."""
    slow = {"family": "llama", "simulate": {"tokens_per_s": 20, "reply": " ".join(["word"] * 40)}}
    models: dict[str, dict[str, Any]] = {**{k: dict(v) for k, v in MODELS.items()}, "slow": slow}
    yield from start_gateway(sim_settings(models, max_retries=0, queue_timeout_s=0))


def _life(gw: Gateway) -> Lifecycle:
    life = gw.app.state.lifecycle
    assert isinstance(life, Lifecycle)
    return life


def _drain(gw: Gateway, timeout_s: float) -> concurrent.futures.Future[None]:
    """Start draining as ``llm-manager serve`` does on SIGTERM, with a server that never finishes by itself."""

    async def go() -> None:
        await _life(gw).drain(asyncio.get_running_loop().create_future(), timeout_s)

    return asyncio.run_coroutine_threadsafe(go(), gw.loop)


def _wait_in_flight(gw: Gateway, n: int = 1) -> None:
    deadline = time.monotonic() + 5
    while _life(gw).in_flight < n:
        assert time.monotonic() < deadline, "the request never got in flight"
        time.sleep(0.01)


def test_ready_answers_503_while_draining_and_requests_are_still_served(gateway: Gateway) -> None:
    assert httpx.get(f"{gateway.url}/health/ready").status_code == 200
    drain = _drain(gateway, 30)
    try:
        ready = httpx.get(f"{gateway.url}/health/ready")
        assert ready.status_code == 503 and ready.json() == {"status": "draining"}
        assert httpx.get(f"{gateway.url}/health").status_code == 200  # alive, only not taking new work
        ok = httpx.post(f"{gateway.url}/v1/chat/completions", json={"model": "gpt", **HELLO})
        assert ok.status_code == 200  # until the cut, whatever still arrives is answered
    finally:
        drain.cancel()


def test_the_cut_answers_a_waiting_request_with_503_shutting_down(gateway: Gateway) -> None:
    gateway.script("gpt", "timeout")  # never answers on its own
    with concurrent.futures.ThreadPoolExecutor(1) as pool:
        pending = pool.submit(httpx.post, f"{gateway.url}/v1/chat/completions", json={"model": "gpt", **HELLO})
        _wait_in_flight(gateway)
        t0 = time.monotonic()
        _drain(gateway, 0.2).result(5)
        resp = pending.result(5)
    assert resp.status_code == 503 and time.monotonic() - t0 < 1.5
    assert resp.json()["error"]["code"] == "shutting_down"
    # Nothing was wrong with the request: another replica can take it.
    assert resp.headers["x-should-retry"] == "true" and resp.headers["retry-after"] == "1"
    after = httpx.post(f"{gateway.url}/v1/chat/completions", json={"model": "gpt", **HELLO})
    assert after.status_code == 503 and after.json()["error"]["code"] == "shutting_down"  # past the cut: no new work


def test_the_cut_ends_a_stream_with_an_error_event_never_done(slow_gateway: Gateway) -> None:
    events: list[str] = []
    started = threading.Event()

    def read() -> None:
        body = {"model": "slow", "stream": True, **HELLO}
        with httpx.stream("POST", f"{slow_gateway.url}/v1/chat/completions", json=body, timeout=10) as resp:
            for line in resp.iter_lines():
                if line.startswith("data: "):
                    events.append(line[6:])
                    started.set()

    reader = threading.Thread(target=read)
    reader.start()
    assert started.wait(5)
    t0 = time.monotonic()
    _drain(slow_gateway, 0.2).result(5)
    reader.join(5)
    assert not reader.is_alive() and time.monotonic() - t0 < 1.5  # the stream alone runs two seconds
    assert "[DONE]" not in events and '"code":"shutting_down"' in events[-1]
    # The stream's bookkeeping (the ledger row of the cut stream) may still be running when the client has read the
    # end: what the cut guarantees is that nothing stays in flight, not that the client sees it leave first.
    deadline = time.monotonic() + 1
    while _life(slow_gateway).in_flight and time.monotonic() < deadline:
        time.sleep(0.01)
    assert _life(slow_gateway).in_flight == 0


def test_a_stream_that_ends_within_the_drain_completes(slow_gateway: Gateway) -> None:
    body = {"model": "slow", "stream": True, **HELLO}
    with httpx.stream("POST", f"{slow_gateway.url}/v1/chat/completions", json=body, timeout=10) as resp:
        lines = resp.iter_lines()
        first = next(line for line in lines if line.startswith("data: "))
        drain = _drain(slow_gateway, 30)
        rest = [line[6:] for line in lines if line.startswith("data: ")]
    drain.cancel()
    assert first and rest[-1] == "[DONE]"
