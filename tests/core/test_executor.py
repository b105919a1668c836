"""Fallback, retries, deadlines and error surfacing through the real executor (simulated providers, fake clock)."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from llm_manager import (
    AllCandidatesFailedError,
    AuthenticationError,
    ContextTooLargeError,
    InvalidRequestError,
    LLMManager,
)
from llm_manager.providers.simulated import SimulatedAdapter
from tests.helpers import FakeClock, sim_settings, trio


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
async def llm(clock: FakeClock) -> AsyncIterator[LLMManager]:
    async with LLMManager(trio(max_retries=2), clock=clock, sleep=clock.sleep, rand=lambda: 0.5) as m:
        yield m


def script(llm: LLMManager, name: str, *outcomes: str) -> SimulatedAdapter:
    adapter = llm.adapter(name)
    assert isinstance(adapter, SimulatedAdapter)
    adapter.push(*outcomes)
    return adapter


async def test_task_routing_follows_the_seed_table(llm: LLMManager) -> None:
    answered = {
        t: (await llm.generate("hi", task=t)).deployment
        for t in ("analysis", "ui-generation", "config-management", "general")
    }
    assert answered == {"analysis": "claude", "ui-generation": "gpt", "config-management": "llama", "general": "gpt"}


async def test_response_carries_usage_metadata_and_label(llm: LLMManager) -> None:
    r = await llm.generate("Analyze this anomaly pattern", task="analysis", max_tokens=500)
    assert r.content.startswith("[simulated claude]")
    assert r.model == "claude" and r.provider == "simulated"
    assert r.usage.prompt_tokens > 0 and r.usage.completion_tokens > 0
    assert r.usage.total_tokens == r.usage.prompt_tokens + r.usage.completion_tokens
    assert r.metadata.retries == 0 and r.metadata.simulated and r.metadata.latency_ms >= 0
    assert [a.deployment for a in r.metadata.attempts] == ["claude"] and r.metadata.attempts[0].ok
    assert r.finish_reason == "stop"


async def test_5xx_retries_same_model_with_backoff_then_falls_back(llm: LLMManager, clock: FakeClock) -> None:
    script(llm, "claude", "503", "503", "503")
    r = await llm.generate("x", task="analysis")
    assert r.deployment == "gpt"
    assert [(a.deployment, a.error_code) for a in r.metadata.attempts] == [
        ("claude", "model_unavailable"),
        ("claude", "model_unavailable"),
        ("claude", "model_unavailable"),
        ("gpt", None),
    ]
    # base 0.5 s, multiplier 2, jitter off in these settings
    assert clock.sleeps == [0.5, 1.0]
    assert r.metadata.retries == 3


async def test_retry_after_is_honoured_exactly(llm: LLMManager, clock: FakeClock) -> None:
    script(llm, "gpt", "429:1.5")
    r = await llm.generate("x")
    assert r.deployment == "gpt"
    assert clock.sleeps == [1.5]
    first, second = r.metadata.attempts
    assert first.error_code == "rate_limited" and first.retry_after == 1.5 and first.status_code == 429
    assert second.ok and second.waited_ms == 1500


async def test_retry_after_beyond_cap_moves_on_without_waiting(clock: FakeClock) -> None:
    async with LLMManager(trio(retry_after_cap_s=5), clock=clock, sleep=clock.sleep) as llm:
        script(llm, "gpt", "429:60")
        r = await llm.generate("x")
    assert r.deployment == "claude" and clock.sleeps == []


async def test_auth_error_surfaces_at_once_without_fallback(llm: LLMManager, clock: FakeClock) -> None:
    script(llm, "gpt", "401")
    with pytest.raises(AuthenticationError) as ei:
        await llm.generate("x")
    assert ei.value.deployment == "gpt" and ei.value.status_code == 401
    assert [a.deployment for a in ei.value.attempts] == ["gpt"]
    assert clock.sleeps == []


async def test_invalid_request_surfaces_at_once(llm: LLMManager) -> None:
    script(llm, "gpt", "400")
    with pytest.raises(InvalidRequestError):
        await llm.generate("x")


async def test_content_filter_reroutes_without_retry(llm: LLMManager, clock: FakeClock) -> None:
    script(llm, "gpt", "filter")
    r = await llm.generate("x")
    assert r.deployment == "claude" and clock.sleeps == []


async def test_context_error_moves_to_a_larger_window_only(clock: FakeClock) -> None:
    settings = sim_settings(
        {
            "small": {"family": "gpt", "context_window": 16_000},
            "same": {"family": "claude", "context_window": 16_000},
            "big": {"family": "gemini", "context_window": 1_000_000},
        }
    )
    async with LLMManager(settings, clock=clock, sleep=clock.sleep) as llm:
        script(llm, "small", "context")
        r = await llm.generate("x", task="general")
    assert r.deployment == "big"
    codes = [(a.deployment, a.error_code, a.skipped) for a in r.metadata.attempts]
    assert codes == [("small", "context_too_large", False), ("same", "context_too_large", True), ("big", None, False)]


async def test_window_too_small_is_skipped_before_calling(llm: LLMManager) -> None:
    r = await llm.generate("word " * 9000, task="config-management")  # ~11k tokens > llama's 8k window
    assert r.deployment == "gpt"
    skipped = r.metadata.attempts[0]
    assert skipped.deployment == "llama" and skipped.skipped and skipped.error_code == "context_too_large"
    assert script(llm, "llama").calls == 0


async def test_request_larger_than_every_window(llm: LLMManager) -> None:
    with pytest.raises(ContextTooLargeError) as ei:
        await llm.generate("word " * 200_000)
    assert ei.value.token_count and ei.value.max_tokens == 200_000


async def test_all_fail_lists_every_attempt(llm: LLMManager) -> None:
    for name in ("claude", "gpt", "llama"):
        script(llm, name, "500", "500", "500")
    with pytest.raises(AllCandidatesFailedError) as ei:
        await llm.generate("x", task="analysis")
    err = ei.value
    assert [a.deployment for a in err.attempts] == ["claude"] * 3 + ["gpt"] * 3 + ["llama"] * 3
    assert len(err.exceptions) == 9 and all(e.status_code == 500 for e in err.exceptions)
    assert "claude" in err.message and "llama" in err.message
    assert err.to_dict()["attempts"][0]["error_code"] == "model_unavailable"


async def test_explicit_model_wins_and_falls_back_unless_forbidden(llm: LLMManager) -> None:
    assert (await llm.generate("x", task="analysis", model="llama")).deployment == "llama"
    script(llm, "llama", "reset")
    r = await llm.generate("x", task="analysis", model="llama")
    assert r.deployment == "claude"
    script(llm, "llama", "reset")
    with pytest.raises(AllCandidatesFailedError):
        await llm.generate("x", task="analysis", model="llama", fallback=False)


async def test_timeout_moves_to_next_candidate() -> None:
    settings = sim_settings({"gpt": {"family": "gpt"}, "claude": {"family": "claude"}}, timeout_s=0.05)
    async with LLMManager(settings) as llm:
        script(llm, "gpt", "timeout")
        r = await llm.generate("x")
    assert r.deployment == "claude"
    assert r.metadata.attempts[0].error_code == "timeout"


async def test_overall_deadline_stops_retrying(clock: FakeClock) -> None:
    async with LLMManager(trio(max_retries=5, deadline_s=2.0), clock=clock, sleep=clock.sleep, rand=lambda: 1.0) as llm:
        for name in ("gpt", "claude", "llama"):
            script(llm, name, *["503"] * 10)
        with pytest.raises(AllCandidatesFailedError) as ei:
            await llm.generate("x")
    assert sum(clock.sleeps) < 2.0
    assert len(ei.value.attempts) < 18  # retries were cut short instead of sleeping past the deadline
    assert "deadline" in ei.value.message


async def test_per_request_timeout_overrides_deadline(clock: FakeClock) -> None:
    async with LLMManager(trio(max_retries=5), clock=clock, sleep=clock.sleep, rand=lambda: 1.0) as llm:
        for name in ("gpt", "claude", "llama"):
            script(llm, name, *["503"] * 10)
        with pytest.raises(AllCandidatesFailedError):
            await llm.generate("x", timeout_s=1.0)
    assert sum(clock.sleeps) < 1.0


async def test_performance_strategy_learns_latency() -> None:
    settings = sim_settings(
        {
            "slow": {"family": "gpt", "simulate": {"latency_ms": 30}},
            "fast": {"family": "gpt", "simulate": {"latency_ms": 1}},
        },
        strategy="performance",
    )
    async with LLMManager(settings) as llm:
        await llm.generate("x", model="slow")
        await llm.generate("x", model="fast")
        assert (await llm.generate("x")).deployment == "fast"
        status = (await llm.status())["deployments"]
        assert status["slow"]["latency_ms"] > status["fast"]["latency_ms"]
