"""Streaming semantics: fail over only before the first chunk reaches the caller; never a silent truncation."""

from __future__ import annotations

import pytest

from llm_manager import AllCandidatesFailedError, LLMManager, StreamInterruptedError
from llm_manager.providers.simulated import SimulatedAdapter
from tests.helpers import FakeClock, sim_settings, trio


def script(llm: LLMManager, name: str, *outcomes: str) -> None:
    adapter = llm.adapter(name)
    assert isinstance(adapter, SimulatedAdapter)
    adapter.push(*outcomes)


async def collect(llm: LLMManager, **kw: object) -> tuple[list[str], object]:
    s = llm.stream("Write a haiku", **kw)
    deltas = [e.delta async for e in s if e.type == "delta"]
    return deltas, s.response


async def test_stream_assembles_the_response() -> None:
    async with LLMManager(trio()) as llm:
        s = llm.stream("Write a haiku", task="general")
        events = [e async for e in s]
    assert [e.type for e in events[:-1]] == ["delta"] * (len(events) - 1) and events[-1].type == "done"
    resp = events[-1].response
    assert resp is s.response and resp is not None
    assert "".join(e.delta for e in events) == resp.content
    assert resp.content.startswith("[simulated gpt]") and resp.finish_reason == "stop"
    assert resp.usage.completion_tokens == len(events) - 1
    assert resp.metadata.time_to_first_chunk_ms is not None and resp.metadata.simulated


async def test_failure_before_first_chunk_falls_back_without_splicing() -> None:
    clock = FakeClock()
    async with LLMManager(trio(max_retries=0), clock=clock, sleep=clock.sleep) as llm:
        script(llm, "gpt", "503")
        deltas, resp = await collect(llm)
    text = "".join(deltas)
    assert text.startswith("[simulated claude]") and "[simulated gpt]" not in text
    assert [a.deployment for a in resp.metadata.attempts] == ["gpt", "claude"]  # type: ignore[attr-defined]


async def test_retry_after_applies_to_streams_too() -> None:
    clock = FakeClock()
    async with LLMManager(trio(), clock=clock, sleep=clock.sleep) as llm:
        script(llm, "gpt", "429:0.25")
        _, resp = await collect(llm)
    assert clock.sleeps == [0.25] and resp.deployment == "gpt"  # type: ignore[attr-defined]


async def test_slow_first_chunk_fails_over_after_the_first_chunk_deadline() -> None:
    async with LLMManager(trio(first_chunk_timeout_s=0.05)) as llm:
        script(llm, "gpt", "slow:5")
        deltas, resp = await collect(llm)
    assert resp.deployment == "claude"  # type: ignore[attr-defined]
    assert resp.metadata.attempts[0].error_code == "timeout"  # type: ignore[attr-defined]
    assert "".join(deltas).startswith("[simulated claude]")


async def test_break_after_first_chunk_is_an_error_not_a_fallback() -> None:
    async with LLMManager(trio()) as llm:
        script(llm, "gpt", "cut:2")
        seen: list[str] = []
        with pytest.raises(StreamInterruptedError) as ei:
            async for e in llm.stream("Write a haiku"):
                seen.append(e.delta)
        assert adapter_calls(llm, "claude") == 0  # no second model after text reached the caller
    assert len(seen) == 2 and seen[0].startswith("[simulated gpt]")
    err = ei.value
    assert err.deployment == "gpt" and "after 2 chunks" in err.message
    assert [a.deployment for a in err.attempts] == ["gpt"] and not err.attempts[0].ok


def adapter_calls(llm: LLMManager, name: str) -> int:
    adapter = llm.adapter(name)
    assert isinstance(adapter, SimulatedAdapter)
    return adapter.calls


async def test_every_candidate_failing_before_first_chunk() -> None:
    async with LLMManager(trio(max_retries=0)) as llm:
        for name in ("gpt", "claude", "llama"):
            script(llm, name, "500")
        with pytest.raises(AllCandidatesFailedError) as ei:
            await collect(llm)
    assert [a.deployment for a in ei.value.attempts] == ["gpt", "claude", "llama"]


async def test_closing_early_releases_the_stream() -> None:
    async with LLMManager(trio()) as llm:
        async with llm.stream("Write a haiku") as s:
            async for _ in s:
                break
        assert s.response is None
        # the manager is still healthy afterwards
        assert (await llm.generate("x")).deployment == "gpt"


async def test_empty_answer_still_completes() -> None:
    settings = sim_settings({"gpt": {"family": "gpt", "simulate": {"reply": ""}}})
    async with LLMManager(settings) as llm:
        _, resp = await collect(llm)
    assert resp is not None
