"""Concurrent calls: no hidden cap in the HTTP pool; ``max_concurrent`` queues in admission, visible in status."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from llm_manager import LLMManager, RateLimitError
from llm_manager.config import load_settings
from tests.fakes import openai_wire
from tests.fakes.server import FakeUpstream, Recorded, Reply

STREAMS = 300
"""More than the 256 connections aiohttp's pool allows by default."""


def settings(up: FakeUpstream, **model: Any) -> Any:
    return load_settings(
        {
            "models": {
                "gpt": {"provider": "openai-compatible", "base_url": f"{up.url}/v1", "model": "gpt-4o", **model}
            },
            "routing": {"max_retries": 0},
            "cache": {"enabled": False},
        },
        env={},
    )


def streamed(_req: Recorded) -> Reply:
    return Reply.sse(openai_wire.stream_events(["one ", "two ", "three"]))


def answer(req: Recorded) -> Reply:
    """``ab``, streamed or whole, as the request asks."""
    if req.json.get("stream"):
        return Reply.sse(openai_wire.stream_events(["a", "b"]))
    return Reply.json(openai_wire.completion("ab"))


async def test_hundreds_of_streams_are_open_at_once() -> None:
    """Every stream gets its first chunk while all the others are still open: none waits for a pooled connection."""
    opened = 0
    everyone = asyncio.Event()

    async def one(llm: LLMManager, i: int) -> str:
        nonlocal opened
        parts: list[str] = []
        async with llm.stream(f"q{i}") as s:
            async for event in s:
                if event.type == "delta" and not parts:
                    opened += 1
                    if opened == STREAMS:
                        everyone.set()
                    await everyone.wait()  # hold this stream (and its connection) open until all have started
                parts.append(event.delta)
        return "".join(parts)

    async with FakeUpstream(streamed) as up, LLMManager(settings(up)) as llm:
        async with asyncio.timeout(60):
            texts = await asyncio.gather(*(one(llm, i) for i in range(STREAMS)))
            status = (await llm.status())["deployments"]["gpt"]["limits"]
    assert texts == ["one two three"] * STREAMS
    assert up.connections >= STREAMS  # as many upstream connections open at once as streams
    assert status["max_concurrent"] is None and status["in_flight"] == 0


async def test_max_concurrent_queues_the_next_call_until_one_ends() -> None:
    async with FakeUpstream(answer) as up:
        async with LLMManager(settings(up, max_concurrent=2)) as llm:
            first = [llm.stream(f"s{i}") for i in range(2)]
            for s in first:  # two streams open, and held open by not reading them to the end
                assert (await anext(aiter(s))).type == "delta"
            limits = (await llm.status())["deployments"]["gpt"]["limits"]
            assert limits == {**limits, "max_concurrent": 2, "in_flight": 2}
            body, _ = await llm.metrics()
            assert b'llm_manager_in_flight{deployment="gpt"} 2.0' in body
            assert b'llm_manager_max_concurrent{deployment="gpt"} 2.0' in body

            third = asyncio.create_task(llm.generate("third"))
            await asyncio.sleep(0.2)
            assert not third.done() and len(llm.executor.gate) == 1 and len(up.requests) == 2
            async for _ in first[0]:  # the first stream ends: its slot goes to the queued call
                pass
            resp = await asyncio.wait_for(third, 10)
            assert resp.content == "ab" and len(up.requests) == 3
            await first[1].aclose()
            assert (await llm.status())["deployments"]["gpt"]["limits"]["in_flight"] == 0


async def test_beyond_max_concurrent_past_the_queue_timeout_is_a_rate_limit_error() -> None:
    async with FakeUpstream(answer) as up:
        raw = settings(up, max_concurrent=1)
        raw.routing.queue_timeout_s = 0.2
        async with LLMManager(raw) as llm:
            s = llm.stream("holder")
            await anext(aiter(s))
            with pytest.raises(RateLimitError) as ei:
                await llm.generate("waits")
            await s.aclose()
            assert (await llm.generate("after")).content == "ab"  # the slot was freed by closing the stream
    err = ei.value
    assert err.retry_after == 1.0 and "max_concurrent" in err.message
    assert err.attempts[-1].skipped and err.attempts[-1].error_code == "at_capacity"
    assert len(up.requests) == 2  # the refused call never reached the upstream


async def test_max_concurrent_spills_to_the_next_candidate_without_waiting() -> None:
    async with FakeUpstream(answer) as up:
        raw = load_settings(
            {
                "models": {
                    "small": {
                        "provider": "openai-compatible",
                        "base_url": f"{up.url}/v1",
                        "model": "m1",
                        "max_concurrent": 1,
                    },
                    "other": {"provider": "openai-compatible", "base_url": f"{up.url}/v1", "model": "m2"},
                },
                "routing": {"tasks": {"general": ["small", "other"]}, "strategy": "cost"},
                "cache": {"enabled": False},
            },
            env={},
        )
        async with LLMManager(raw) as llm:
            s = llm.stream("holder", model="small")
            await anext(aiter(s))
            resp = await llm.generate("next", task="general")
            await s.aclose()
    assert resp.deployment == "other" and resp.metadata.attempts[0].error_code == "at_capacity"


def test_max_concurrent_must_be_positive() -> None:
    from llm_manager.errors import ConfigError

    with pytest.raises(ConfigError, match="max_concurrent"):
        load_settings({"models": {"m": {"provider": "simulated", "max_concurrent": 0}}}, env={})
