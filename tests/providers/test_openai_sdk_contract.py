"""The OpenAI fakes speak the real wire format: the official SDK's types and client accept them.

If these pass, the adapter tests in ``test_openai_chat.py`` exercise the shape api.openai.com actually sends.
"""

from __future__ import annotations

import json

import openai
import pytest
from openai.types.chat import ChatCompletion, ChatCompletionChunk

from tests.fakes import openai_wire as wire
from tests.fakes.server import FakeUpstream, Reply, serve_in_thread


def _payloads(events: list[bytes]) -> list[str]:
    out = []
    for event in events:
        assert event.startswith(b"data: ") and event.endswith(b"\n\n")
        out.append(event[len(b"data: ") : -2].decode())
    return out


def test_completion_validates_as_sdk_type() -> None:
    body = wire.completion("Hello there", prompt_tokens=7, completion_tokens=2, cached_tokens=3)
    parsed = ChatCompletion.model_validate(body)
    assert parsed.choices[0].message.content == "Hello there"
    assert parsed.choices[0].finish_reason == "stop"
    assert parsed.usage is not None and parsed.usage.prompt_tokens_details is not None
    assert parsed.usage.prompt_tokens_details.cached_tokens == 3
    assert parsed.id.startswith("chatcmpl-")
    # Nothing of ours landed in the SDK's catch-all for unknown fields.
    assert not parsed.model_extra


@pytest.mark.parametrize("finish", ["stop", "length", "content_filter", "tool_calls"])
def test_stream_chunks_validate_as_sdk_type(finish: str) -> None:
    events = wire.stream_events(["Hel", "lo ", "wörld"], finish_reason=finish, cached_tokens=1)
    *payloads, done = _payloads(events)
    assert done == "[DONE]"
    chunks = [ChatCompletionChunk.model_validate(json.loads(p)) for p in payloads]
    assert chunks[0].choices[0].delta.role == "assistant"
    assert "".join(c.choices[0].delta.content or "" for c in chunks if c.choices) == "Hello wörld"
    assert chunks[-2].choices[0].finish_reason == finish
    assert chunks[-1].choices == [] and chunks[-1].usage is not None
    assert chunks[-1].usage.completion_tokens == 3
    assert all(not c.model_extra for c in chunks)


def test_error_body_matches_sdk_error_fields() -> None:
    body = wire.error_body("slow down", "requests", "rate_limit_exceeded")
    assert set(body["error"]) == {"message", "type", "param", "code"}


def test_sdk_client_against_fake_non_stream() -> None:
    with serve_in_thread(FakeUpstream()) as up:
        up.push(Reply.json(wire.completion("Hi!", prompt_tokens=9, completion_tokens=2, cached_tokens=4)))
        with openai.OpenAI(base_url=up.url + "/v1", api_key="x", max_retries=0, timeout=5) as client:
            out = client.chat.completions.create(model="gpt-4o-mini", messages=[{"role": "user", "content": "hi"}])
        assert out.choices[0].message.content == "Hi!"
        assert out.usage is not None and out.usage.total_tokens == 11
        assert out.usage.prompt_tokens_details is not None and out.usage.prompt_tokens_details.cached_tokens == 4
        assert up.requests[0].path == "/v1/chat/completions"


def test_sdk_client_against_fake_stream() -> None:
    with serve_in_thread(FakeUpstream()) as up:
        up.push(Reply.sse(wire.stream_events(["a", "b", "c"], prompt_tokens=4)))
        with openai.OpenAI(base_url=up.url + "/v1", api_key="x", max_retries=0, timeout=5) as client:
            stream = client.chat.completions.create(
                model="gpt-4o-mini",
                messages=[{"role": "user", "content": "hi"}],
                stream=True,
                stream_options={"include_usage": True},
            )
            chunks = list(stream)
        text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
        finish = [c.choices[0].finish_reason for c in chunks if c.choices and c.choices[0].finish_reason]
        assert text == "abc"
        assert finish == ["stop"]
        assert chunks[-1].usage is not None and chunks[-1].usage.prompt_tokens == 4
        assert up.requests[0].json["stream"] is True


def test_sdk_client_raises_rate_limit_on_fake_429() -> None:
    with serve_in_thread(FakeUpstream()) as up:
        up.push(
            Reply.error(
                429, wire.error_body("Rate limit reached", "requests", "rate_limit_exceeded"), {"retry-after": "1"}
            )
        )
        with openai.OpenAI(base_url=up.url + "/v1", api_key="x", max_retries=0, timeout=5) as client:
            with pytest.raises(openai.RateLimitError) as info:
                client.chat.completions.create(model="gpt-4o-mini", messages=[{"role": "user", "content": "hi"}])
        assert info.value.status_code == 429
        assert info.value.code == "rate_limit_exceeded"
        assert "Rate limit reached" in info.value.message
