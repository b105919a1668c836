"""The whole path over real HTTP on 127.0.0.1: manager → planner → executor → adapter → fake provider servers.

Faults come from the wire (status codes, Retry-After headers, resets, stalls, truncation), not from mocks.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import pytest

from llm_manager import AllCandidatesFailedError, AuthenticationError, LLMManager, StreamInterruptedError
from llm_manager.config import load_settings
from tests.fakes import anthropic_wire, gemini_wire, openai_wire
from tests.fakes.server import FakeUpstream, Reply
from tests.helpers import FakeClock


@pytest.fixture
async def ups() -> AsyncIterator[tuple[FakeUpstream, FakeUpstream, FakeUpstream]]:
    async with FakeUpstream() as a, FakeUpstream() as b, FakeUpstream() as c:
        yield a, b, c


def settings(oa: FakeUpstream, an: FakeUpstream, ge: FakeUpstream, **routing: Any) -> Any:
    return load_settings(
        {
            "models": {
                "gpt": {
                    "provider": "openai-compatible",
                    "base_url": f"{oa.url}/v1",
                    "model": "gpt-4o",
                    "api_key": "sk-openai",
                    "family": "gpt",
                },
                "claude": {
                    "provider": "anthropic",
                    "base_url": an.url,
                    "model": "claude-sonnet-4-5",
                    "api_key": "sk-ant",
                },
                "gemini": {
                    "provider": "gemini",
                    "base_url": f"{ge.url}/v1beta",
                    "model": "gemini-2.5-flash",
                    "api_key": "g-key",
                },
            },
            "routing": {"backoff": {"jitter": False}, **routing},
        },
        env={},
    )


async def test_cross_protocol_fallback_keeps_every_attempt(ups: Any) -> None:
    oa, an, ge = ups
    oa.push(
        Reply.error(500, openai_wire.error_body("boom", "server_error", None)),
        Reply.error(502, openai_wire.error_body("bad gateway", "server_error", None)),
    )
    an.push(Reply.error(529, anthropic_wire.error_body("overloaded_error", "Overloaded")))
    ge.push(Reply.json(gemini_wire.response("from gemini")))
    clock = FakeClock()
    async with LLMManager(settings(oa, an, ge, max_retries=1), clock=clock, sleep=clock.sleep) as llm:
        an.push(Reply.error(503, anthropic_wire.error_body("api_error", "down")))
        r = await llm.generate("hi")
    assert r.content == "from gemini" and r.deployment == "gemini" and r.provider == "gemini"
    assert [(a.deployment, a.status_code, a.error_code) for a in r.metadata.attempts] == [
        ("gpt", 500, "model_unavailable"),
        ("gpt", 502, "model_unavailable"),
        ("claude", 529, "model_unavailable"),
        ("claude", 503, "model_unavailable"),
        ("gemini", None, None),
    ]
    assert clock.sleeps == [0.5, 0.5] and r.metadata.retries == 4
    assert oa.requests[0].headers["authorization"] == "Bearer sk-openai"
    assert an.requests[0].headers["x-api-key"] == "sk-ant"
    assert ge.requests[0].headers["x-goog-api-key"] == "g-key"
    assert r.usage.prompt_tokens > 0 and not r.usage.estimated


async def test_retry_after_header_from_the_wire(ups: Any) -> None:
    oa, an, ge = ups
    oa.push(
        Reply.error(429, openai_wire.error_body("slow down", "rate_limit_error", None), headers={"retry-after": "2"}),
        Reply.json(openai_wire.completion("ok after wait")),
    )
    clock = FakeClock()
    async with LLMManager(settings(oa, an, ge), clock=clock, sleep=clock.sleep) as llm:
        r = await llm.generate("hi")
    assert r.content == "ok after wait" and clock.sleeps == [2.0]
    assert r.metadata.attempts[0].retry_after == 2.0 and r.usage.prompt_tokens == 12
    assert not an.requests and not ge.requests


async def test_retry_after_ms_is_preferred(ups: Any) -> None:
    oa, an, ge = ups
    oa.push(
        Reply.error(
            429,
            openai_wire.error_body("slow", "rate_limit_error", None),
            headers={"retry-after": "9", "retry-after-ms": "250"},
        ),
        Reply.json(openai_wire.completion("ok")),
    )
    clock = FakeClock()
    async with LLMManager(settings(oa, an, ge), clock=clock, sleep=clock.sleep) as llm:
        await llm.generate("hi")
    assert clock.sleeps == [0.25]


async def test_hang_times_out_and_falls_back(ups: Any) -> None:
    oa, an, ge = ups
    oa.push(Reply.hang())
    an.push(Reply.json(anthropic_wire.message("from claude")))
    async with LLMManager(settings(oa, an, ge, timeout_s=0.2)) as llm:
        r = await llm.generate("hi")
    assert r.deployment == "claude" and r.metadata.attempts[0].error_code == "timeout"


async def test_reset_before_headers_falls_back(ups: Any) -> None:
    oa, an, ge = ups
    oa.push(Reply.reset())
    an.push(Reply.json(anthropic_wire.message("from claude")))
    async with LLMManager(settings(oa, an, ge)) as llm:
        r = await llm.generate("hi")
    assert r.deployment == "claude" and r.metadata.attempts[0].error_code == "model_unavailable"


async def test_connection_refused_falls_back(ups: Any) -> None:
    oa, an, ge = ups
    await oa.close()
    an.push(Reply.json(anthropic_wire.message("from claude")))
    async with LLMManager(settings(oa, an, ge)) as llm:
        r = await llm.generate("hi")
    assert r.deployment == "claude"


async def test_auth_failure_is_surfaced_not_hidden_by_fallback(ups: Any) -> None:
    oa, an, ge = ups
    oa.push(Reply.error(401, openai_wire.error_body("Incorrect API key", "invalid_request_error", "invalid_api_key")))
    async with LLMManager(settings(oa, an, ge)) as llm:
        with pytest.raises(AuthenticationError) as ei:
            await llm.generate("hi")
    assert ei.value.status_code == 401 and ei.value.deployment == "gpt"
    assert not an.requests and not ge.requests


async def test_context_length_error_reroutes_to_larger_window(ups: Any) -> None:
    oa, an, ge = ups
    oa.push(
        Reply.error(
            400,
            openai_wire.error_body(
                "This model's maximum context length is 128000 tokens",
                "invalid_request_error",
                "context_length_exceeded",
            ),
        )
    )
    an.push(Reply.json(anthropic_wire.message("claude has 200k")))
    async with LLMManager(settings(oa, an, ge)) as llm:
        r = await llm.generate("hi")
    assert r.deployment == "claude"
    assert r.metadata.attempts[0].error_code == "context_too_large"


# -- streams ------------------------------------------------------------------------------------------------------


async def _stream(llm: LLMManager) -> tuple[str, Any]:
    s = llm.stream("haiku")
    text = "".join([e.delta async for e in s])
    return text, s.response


async def test_stream_success_with_usage(ups: Any) -> None:
    oa, an, ge = ups
    oa.push(Reply.sse(openai_wire.stream_events(["Old ", "pond, ", "frog."], completion_tokens=3)))
    async with LLMManager(settings(oa, an, ge)) as llm:
        text, resp = await _stream(llm)
    assert text == "Old pond, frog." and resp.usage.completion_tokens == 3 and not resp.usage.estimated
    assert oa.requests[0].json["stream_options"] == {"include_usage": True}


async def test_stream_429_before_start_falls_back_to_anthropic_stream(ups: Any) -> None:
    oa, an, ge = ups
    oa.push(
        *[Reply.error(429, openai_wire.error_body("slow", "rate_limit_error", None), headers={"retry-after": "100"})]
    )
    an.push(Reply.sse(anthropic_wire.stream_events(["Claude ", "streams."])))
    async with LLMManager(settings(oa, an, ge)) as llm:
        text, resp = await _stream(llm)
    assert text == "Claude streams." and resp.deployment == "claude"


async def test_malformed_chunk_before_content_falls_back(ups: Any) -> None:
    oa, an, ge = ups
    oa.push(Reply.sse([b"data: {not json\n\n"]))
    an.push(Reply.sse(anthropic_wire.stream_events(["ok"])))
    async with LLMManager(settings(oa, an, ge, max_retries=0)) as llm:
        text, resp = await _stream(llm)
    assert text == "ok" and resp.metadata.attempts[0].error_code == "stream_interrupted"


async def test_slow_first_token_fails_over(ups: Any) -> None:
    oa, an, ge = ups
    oa.push(Reply.sse(openai_wire.stream_events(["late"]), first_chunk_delay_s=5))
    an.push(Reply.sse(anthropic_wire.stream_events(["on time"])))
    async with LLMManager(settings(oa, an, ge, first_chunk_timeout_s=0.2)) as llm:
        text, resp = await _stream(llm)
    assert text == "on time" and resp.metadata.attempts[0].error_code == "timeout"


@pytest.mark.parametrize(
    "fault",
    [
        {"reset_after_chunks": 3},  # connection reset mid-body
        {"stall_after_chunks": 3},  # server goes silent
    ],
)
async def test_stream_failure_after_first_chunk_is_an_error(ups: Any, fault: dict[str, int]) -> None:
    oa, an, ge = ups
    oa.push(Reply.sse(openai_wire.stream_events(["a", "b", "c", "d", "e"]), **fault))
    got: list[str] = []
    async with LLMManager(settings(oa, an, ge, stream_idle_timeout_s=0.2)) as llm:
        with pytest.raises(StreamInterruptedError) as ei:
            async for e in llm.stream("haiku"):
                got.append(e.delta)
    assert got and "".join(got) in ("ab", "abc")  # first event carries the role only
    assert not an.requests  # no fallback once text reached the caller
    assert ei.value.deployment == "gpt"


async def test_truncated_stream_without_done_or_finish_is_an_error(ups: Any) -> None:
    oa, an, ge = ups
    oa.push(Reply.sse(openai_wire.stream_events(["a", "b"], finish_reason=None, usage=False, done=False)))
    async with LLMManager(settings(oa, an, ge)) as llm:
        with pytest.raises(StreamInterruptedError):
            await _stream(llm)


async def test_missing_done_after_finish_reason_is_accepted(ups: Any) -> None:
    oa, an, ge = ups
    oa.push(Reply.sse(openai_wire.stream_events(["a", "b"], done=False)))
    async with LLMManager(settings(oa, an, ge)) as llm:
        text, resp = await _stream(llm)
    assert text == "ab" and resp.finish_reason == "stop"


async def test_every_stream_fails_before_first_chunk(ups: Any) -> None:
    oa, an, ge = ups
    oa.push(Reply.reset())
    an.push(Reply.reset())
    ge.push(Reply.reset())
    async with LLMManager(settings(oa, an, ge)) as llm:
        with pytest.raises(AllCandidatesFailedError) as ei:
            await _stream(llm)
    assert [a.deployment for a in ei.value.attempts] == ["gpt", "claude", "gemini"]


async def test_portkey_route_all_sends_portkey_headers(ups: Any) -> None:
    pk, _, _ = ups
    pk.push(Reply.json(openai_wire.completion("via portkey")))
    s = load_settings(
        {
            "models": {"claude": {"provider": "anthropic", "model": "claude-sonnet-4-5", "api_key": "sk-ant"}},
            "portkey": {"api_key": "pk-123", "base_url": f"{pk.url}/v1", "route_all": True, "config": "cfg-1"},
        },
        env={},
    )
    async with LLMManager(s) as llm:
        r = await llm.generate("hi")
    req = pk.requests[0]
    assert r.content == "via portkey" and r.provider == "portkey" and req.path == "/v1/chat/completions"
    assert req.headers["x-portkey-api-key"] == "pk-123" and req.headers["x-portkey-provider"] == "anthropic"
    assert req.headers["x-portkey-config"] == "cfg-1" and req.headers["authorization"] == "Bearer sk-ant"
    assert req.json["model"] == "claude-sonnet-4-5"


async def test_health_probes_each_provider(ups: Any) -> None:
    oa, an, ge = ups
    oa.push(Reply.json(openai_wire.models_list()))
    an.push(Reply.error(401, anthropic_wire.error_body("authentication_error", "invalid x-api-key")))
    ge.push(Reply.json({"name": "models/gemini-2.5-flash"}))
    async with LLMManager(settings(oa, an, ge)) as llm:
        results = {h.name: h for h in await llm.health(timeout_s=2)}
    assert results["gpt"].ok and results["gemini"].ok
    assert not results["claude"].ok and results["claude"].error_code == "authentication_failed"


async def test_tests_cannot_reach_real_providers() -> None:
    s = load_settings({"models": {"gpt": {"provider": "openai", "api_key": "sk-x"}}}, env={})
    async with LLMManager(s) as llm:
        with pytest.raises(AllCandidatesFailedError) as ei:
            await llm.generate("hi")
    assert "loopback only" in ei.value.attempts[0].error
