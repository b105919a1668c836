"""``warmup()``: connections opened to every configured endpoint before the first request, counted on the fakes."""

from __future__ import annotations

import asyncio
import time
from typing import Any

from llm_manager import LLMManager
from llm_manager.config import load_settings
from tests.fakes import openai_wire
from tests.fakes.server import FakeUpstream, Reply, serve_in_thread
from tests.processes import free_port


def _model(url: str, **extra: Any) -> dict[str, Any]:
    return {"provider": "openai-compatible", "base_url": f"{url}/v1", "api_key": "k", "family": "gpt", **extra}


async def _accepted() -> None:
    """Let the fakes' accept handlers run: a client has its connection a moment before the server counts it."""
    await asyncio.sleep(0.05)


def _settings(models: dict[str, dict[str, Any]]) -> Any:
    return load_settings({"models": models, "cache": {"enabled": False}}, env={})


async def test_one_connection_per_origin_and_no_request_sent() -> None:
    async with FakeUpstream() as a, FakeUpstream() as b, FakeUpstream() as off:
        models = {
            "a1": _model(a.url, model="m1"),
            "a2": _model(f"http://localhost:{a.port}", model="m2"),  # the same server under a name: its own origin
            "a3": _model(a.url, model="m3"),
            "b": _model(b.url),
            "quiet": _model(off.url, warmup="off"),
            "sim": {"provider": "simulated"},
        }
        async with LLMManager(_settings(models)) as llm:
            results = {r.name: r for r in await llm.warmup()}
            await _accepted()
            assert (a.connections, b.connections, off.connections) == (2, 1, 0)
            assert a.requests == b.requests == off.requests == []

            a.push(Reply.json(openai_wire.completion("warm")))
            r = await llm.generate("hi", model="a1", fallback=False)
            assert r.content == "warm" and a.connections == 2 and len(a.requests) == 1  # took the warm connection

            again = {r.name: r for r in await llm.warmup()}
            await _accepted()
            assert a.connections == 2 and b.connections == 1 and again["b"].reused and again["a1"].reused
    assert all(r.ok for r in results.values())
    assert results["a1"].origin == results["a3"].origin == f"http://127.0.0.1:{a.port}"
    assert results["a2"].origin == f"http://localhost:{a.port}"
    assert results["a1"].dns_ms is None and results["a2"].dns_ms is not None  # an IP needs no resolution
    assert results["b"].connect_ms is not None and results["b"].connection_ms is not None and not results["b"].reused
    assert results["quiet"].origin is None and results["quiet"].mode == "off"
    assert results["sim"].simulated and results["sim"].origin is None and results["sim"].ok


async def test_one_token_request_where_the_deployment_opts_in(tmp_path: Any) -> None:
    async with FakeUpstream() as ups:
        ups.push(Reply.json(openai_wire.completion("p", prompt_tokens=3, completion_tokens=1)))
        models = {
            "asked": _model(ups.url, warmup="request", input_price_per_mtok=1, output_price_per_mtok=2),
            "connected": _model(ups.url, model="other"),
        }
        raw = {"models": models, "cache": {"enabled": False}, "store": {"url": f"sqlite:///{tmp_path}/w.db"}}
        async with LLMManager(load_settings(raw, env={})) as llm:
            results = {r.name: r for r in await llm.warmup()}
            assert llm.ledger is not None
            await llm.ledger.flush()
            rows = await llm.ledger.rows()
            skipped = await llm.warmup(requests=False)
    (sent,) = ups.requests
    assert ups.connections == 1  # the request went over the warmed connection
    assert sent.path == "/v1/chat/completions" and sent.json["max_tokens"] == 1 and sent.json["model"] == "asked"
    assert results["asked"].request_ms is not None and str(results["asked"].cost) == "0.000005"
    assert results["connected"].request_ms is None
    assert [(r.deployment, r.status, r.completion_tokens) for r in rows] == [("asked", "ok", 1)]
    assert all(r.request_ms is None for r in skipped) and len(ups.requests) == 1


async def test_an_unreachable_endpoint_is_reported_and_the_rest_warms() -> None:
    async with FakeUpstream() as ups:
        models = {"down": _model(f"http://127.0.0.1:{free_port()}"), "up": _model(ups.url)}
        async with LLMManager(_settings(models)) as llm:
            results = {r.name: r for r in await llm.warmup(timeout_s=2)}
            await _accepted()
    assert not results["down"].ok and results["down"].error_code == "model_unavailable"
    assert "cannot connect" in (results["down"].error or "")
    assert results["up"].ok and ups.connections == 1


async def test_a_request_that_fails_is_reported() -> None:
    async with FakeUpstream() as ups:
        ups.push(Reply.error(401, openai_wire.error_body("bad key", "invalid_request_error", "invalid_api_key")))
        async with LLMManager(_settings({"m": _model(ups.url, warmup="request")})) as llm:
            (result,) = await llm.warmup()
    assert not result.ok and result.error_code == "authentication_failed" and result.request_ms is not None


def test_sync_facade_warms_up() -> None:
    with serve_in_thread(FakeUpstream()) as ups:
        with LLMManager.sync_from_config({"models": {"m": _model(ups.url)}}) as llm:
            (result,) = llm.warmup()
            # The fake runs on its own thread's loop: it may accept the connection just after the client has it.
            deadline = time.monotonic() + 5
            while ups.connections == 0 and time.monotonic() < deadline:
                time.sleep(0.01)
        assert result.ok and ups.connections == 1 and ups.requests == []
