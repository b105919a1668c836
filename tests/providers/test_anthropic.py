"""The Anthropic adapter over real HTTP against a local fake of the Messages API."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import aclosing
from typing import Any

import pytest

from llm_manager._http import HttpClient
from llm_manager.errors import (
    AuthenticationError,
    ContentFilterError,
    ContextTooLargeError,
    InvalidRequestError,
    ModelUnavailableError,
    ProviderError,
    RateLimitError,
    StreamInterruptedError,
)
from llm_manager.providers.anthropic import AnthropicAdapter
from llm_manager.providers.base import Chunk, Endpoint
from llm_manager.types import Request
from tests.fakes import anthropic_wire as wire
from tests.fakes.server import FakeUpstream, Reply

MODEL = "claude-sonnet-4-5"


def make(upstream: FakeUpstream, http: HttpClient, **kw: Any) -> AnthropicAdapter:
    endpoint = Endpoint(name="claude", provider="anthropic", model=MODEL, base_url=upstream.url + "/", **kw)
    return AnthropicAdapter(endpoint, http)


def req(**kw: Any) -> Request:
    kw.setdefault("prompt", "Hello")
    return Request(**kw)


async def collect(chunks: AsyncIterator[Chunk]) -> list[Chunk]:
    # aclosing: a stream left unfinished must still release its connection.
    async with aclosing(chunks) as it:
        return [c async for c in it]


# --- the request as sent -------------------------------------------------------------------------------------


async def test_request_as_sent(upstream: FakeUpstream, http: HttpClient) -> None:
    upstream.push(Reply.json(wire.message("Hi")))
    adapter = make(upstream, http, headers={"x-portkey-route": "a"}, extra_body={"top_k": 5})
    request = Request(
        messages=[
            {"role": "system", "content": "Be brief."},
            {"role": "user", "content": "one"},
            {"role": "user", "content": "two"},
            {"role": "assistant", "content": "ok"},
            {"role": "assistant", "content": "more"},
            {"role": "user", "content": "three"},
        ],
        temperature=1.7,
        top_p=0.9,
        stop=["END"],
        user="alice",
    )

    await adapter.complete(request, api_key="sk-ant-test")

    (sent,) = upstream.requests
    assert (sent.method, sent.path) == ("POST", "/v1/messages")
    assert sent.headers["x-api-key"] == "sk-ant-test"
    assert sent.headers["anthropic-version"] == "2023-06-01"
    assert sent.headers["content-type"] == "application/json"
    assert sent.headers["x-portkey-route"] == "a"
    assert sent.json == {
        "model": MODEL,
        "max_tokens": 1024,
        "system": "Be brief.",
        "messages": [
            {"role": "user", "content": "one\n\ntwo"},
            {"role": "assistant", "content": "ok\n\nmore"},
            {"role": "user", "content": "three"},
        ],
        "temperature": 1.0,
        "top_p": 0.9,
        "stop_sequences": ["END"],
        "metadata": {"user_id": "alice"},
        "top_k": 5,
    }


async def test_minimal_request_omits_optional_fields(upstream: FakeUpstream, http: HttpClient) -> None:
    upstream.push(Reply.json(wire.message("Hi")))
    await make(upstream, http).complete(req(temperature=0.3), api_key=None)
    (sent,) = upstream.requests
    assert "x-api-key" not in sent.headers
    assert sent.json == {
        "model": MODEL,
        "max_tokens": 1024,
        "messages": [{"role": "user", "content": "Hello"}],
        "temperature": 0.3,
    }


@pytest.mark.parametrize(
    ("asked", "default", "cap", "sent"),
    [(None, 1024, None, 1024), (None, 1024, 512, 512), (300, 1024, 512, 300), (4000, 1024, 2048, 2048)],
)
async def test_max_tokens_always_sent_and_capped(
    upstream: FakeUpstream, http: HttpClient, asked: int | None, default: int, cap: int | None, sent: int
) -> None:
    upstream.push(Reply.json(wire.message("Hi")))
    adapter = make(upstream, http, default_max_tokens=default, max_output_tokens=cap)
    await adapter.complete(req(max_tokens=asked), api_key="k")
    assert upstream.requests[0].json["max_tokens"] == sent


async def test_endpoint_headers_override_the_api_version(upstream: FakeUpstream, http: HttpClient) -> None:
    upstream.push(Reply.json(wire.message("Hi")))
    await make(upstream, http, headers={"Anthropic-Version": "2099-01-01"}).complete(req(), api_key="k")
    assert upstream.requests[0].headers["anthropic-version"] == "2099-01-01"


# --- whole answers -------------------------------------------------------------------------------------------


async def test_complete_success(upstream: FakeUpstream, http: HttpClient) -> None:
    body = wire.message("Hello", id="msg_abc", input_tokens=20, output_tokens=9)
    # Non-text blocks (thinking, tool calls) are not part of the text answer.
    body["content"] = [
        {"type": "thinking", "thinking": "hmm", "signature": "sig"},
        {"type": "text", "text": "Hello"},
        {"type": "tool_use", "id": "toolu_1", "name": "f", "input": {}},
        {"type": "text", "text": ", world"},
    ]
    upstream.push(Reply.json(body))

    out = await make(upstream, http).complete(req(), api_key="k")

    assert out.text == "Hello, world"
    assert out.finish_reason == "stop"
    assert (out.prompt_tokens, out.completion_tokens, out.cached_tokens) == (20, 9, 0)
    assert (out.model, out.id) == (wire.DEFAULT_MODEL, "msg_abc")


async def test_cache_tokens_count_as_prompt_tokens(upstream: FakeUpstream, http: HttpClient) -> None:
    body = wire.message("Hi", input_tokens=10, cache_read_input_tokens=1000, cache_creation_input_tokens=200)
    upstream.push(Reply.json(body))
    out = await make(upstream, http).complete(req(), api_key="k")
    assert (out.prompt_tokens, out.cached_tokens) == (1210, 1000)


@pytest.mark.parametrize(
    ("stop_reason", "finish"),
    [
        ("end_turn", "stop"),
        ("stop_sequence", "stop"),
        ("pause_turn", "stop"),
        ("max_tokens", "length"),
        ("tool_use", "tool_calls"),
        ("refusal", "content_filter"),
        ("something_new", None),
    ],
)
async def test_finish_reasons(upstream: FakeUpstream, http: HttpClient, stop_reason: str, finish: str | None) -> None:
    upstream.push(Reply.json(wire.message("text", stop_reason=stop_reason)))
    assert (await make(upstream, http).complete(req(), api_key="k")).finish_reason == finish


async def test_refusal_without_text_is_a_content_filter_error(upstream: FakeUpstream, http: HttpClient) -> None:
    upstream.push(Reply.json(wire.message("", stop_reason="refusal")))
    with pytest.raises(ContentFilterError):
        await make(upstream, http).complete(req(), api_key="k")


@pytest.mark.parametrize(
    "reply",
    [
        Reply(body=b"<html>gateway</html>", headers={"content-type": "text/html"}),
        Reply.json({"id": "msg_1", "type": "message"}),
        Reply.json(["not", "an", "object"]),
    ],
)
async def test_malformed_success_is_model_unavailable(upstream: FakeUpstream, http: HttpClient, reply: Reply) -> None:
    upstream.push(reply)
    with pytest.raises(ModelUnavailableError, match="malformed response"):
        await make(upstream, http).complete(req(), api_key="k")


# --- error answers -------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("status", "error_type", "message", "expected"),
    [
        (400, "invalid_request_error", "messages: field required", InvalidRequestError),
        (401, "authentication_error", "invalid x-api-key", AuthenticationError),
        (403, "permission_error", "Your API key does not have permission", AuthenticationError),
        (404, "not_found_error", "model: claude-nope", InvalidRequestError),
        (413, "request_too_large", "Request exceeds the maximum allowed number of bytes.", InvalidRequestError),
        (429, "rate_limit_error", "Number of request tokens has exceeded your rate limit", RateLimitError),
        (500, "api_error", "Internal server error", ModelUnavailableError),
        (529, "overloaded_error", "Overloaded", ModelUnavailableError),
    ],
)
async def test_status_to_exception(
    upstream: FakeUpstream,
    http: HttpClient,
    status: int,
    error_type: str,
    message: str,
    expected: type[ProviderError],
) -> None:
    upstream.push(Reply.error(status, wire.error_body(error_type, message)))
    with pytest.raises(expected) as info:
        await make(upstream, http).complete(req(), api_key="k")
    err = info.value
    assert type(err) is expected
    assert (err.status_code, err.message) == (status, message)
    assert error_type in (err.body or "")
    assert (err.provider, err.deployment, err.model) == ("anthropic", "claude", MODEL)


async def test_prompt_too_long_is_context_too_large(upstream: FakeUpstream, http: HttpClient) -> None:
    message = "prompt is too long: 210345 tokens > 200000 maximum"
    upstream.push(Reply.error(400, wire.error_body("invalid_request_error", message)))
    with pytest.raises(ContextTooLargeError) as info:
        await make(upstream, http).complete(req(), api_key="k")
    assert (info.value.token_count, info.value.max_tokens) == (210345, 200000)


async def test_rate_limit_carries_retry_after(upstream: FakeUpstream, http: HttpClient) -> None:
    body = wire.error_body("rate_limit_error", "slow down")
    upstream.push(Reply.error(429, body, headers={"retry-after": "7", "request-id": "req_1"}))
    with pytest.raises(RateLimitError) as info:
        await make(upstream, http).complete(req(), api_key="k")
    assert info.value.retry_after == 7.0
    assert info.value.headers["request-id"] == "req_1"


async def test_non_json_error_body_is_tolerated(upstream: FakeUpstream, http: HttpClient) -> None:
    upstream.push(Reply(status=502, body=b"<html>Bad Gateway</html>", headers={"content-type": "text/html"}))
    with pytest.raises(ModelUnavailableError) as info:
        await make(upstream, http).complete(req(), api_key="k")
    assert info.value.status_code == 502
    assert "Bad Gateway" in info.value.message


# --- streams -------------------------------------------------------------------------------------------------


async def test_stream_success(upstream: FakeUpstream, http: HttpClient) -> None:
    events = wire.stream_events(["Hel", "lo", "!"], input_tokens=30, output_tokens=4, cache_read_input_tokens=100)
    upstream.push(Reply.sse(events))

    chunks = await collect(make(upstream, http).stream(req(), api_key="k"))

    assert upstream.requests[0].json["stream"] is True
    assert "".join(c.text for c in chunks) == "Hello!"
    assert all(c.finish_reason is None for c in chunks[:-1])
    final = chunks[-1]
    assert (final.text, final.finish_reason) == ("", "stop")
    assert (final.prompt_tokens, final.completion_tokens, final.cached_tokens) == (130, 4, 100)
    assert final.model == wire.DEFAULT_MODEL


async def test_stream_survives_arbitrary_network_splits(upstream: FakeUpstream, http: HttpClient) -> None:
    raw = b"".join(wire.stream_events(["héllo ", "wörld"], stop_reason="max_tokens")).replace(b"\n", b"\r\n")
    upstream.push(Reply.sse([raw[i : i + 7] for i in range(0, len(raw), 7)]))
    chunks = await collect(make(upstream, http).stream(req(), api_key="k"))
    assert "".join(c.text for c in chunks) == "héllo wörld"
    assert chunks[-1].finish_reason == "length"


async def test_stream_thinking_is_reasoning_and_unknown_events_are_ignored(
    upstream: FakeUpstream, http: HttpClient
) -> None:
    events = wire.stream_events(["answer"])
    extra = [
        wire.sse("content_block_delta", {"type": "content_block_delta", "index": 0, "delta": {"type": d, k: "x"}})
        for d, k in [
            ("thinking_delta", "thinking"),
            ("signature_delta", "signature"),
            ("input_json_delta", "partial_json"),
        ]
    ]
    extra.append(wire.sse("brand_new_event", {"type": "brand_new_event", "anything": [1, 2]}))
    upstream.push(Reply.sse([*events[:3], *extra, *events[3:]]))
    chunks = await collect(make(upstream, http).stream(req(), api_key="k"))
    assert "".join(c.text for c in chunks) == "answer"
    assert [c.reasoning for c in chunks if c.reasoning] == ["x"]
    assert [c.reasoning_signature for c in chunks if c.reasoning_signature] == ["x"]


async def test_stream_usage_updates_from_message_delta(upstream: FakeUpstream, http: HttpClient) -> None:
    events = wire.stream_events(["a"], input_tokens=5)
    # Newer API versions repeat cumulative input counts in message_delta; the latest value wins.
    delta = {
        "type": "message_delta",
        "delta": {"stop_reason": "tool_use"},
        "usage": {"input_tokens": 8, "output_tokens": 3},
    }
    events[-2] = wire.sse("message_delta", delta)
    upstream.push(Reply.sse(events))
    final = (await collect(make(upstream, http).stream(req(), api_key="k")))[-1]
    assert (final.prompt_tokens, final.completion_tokens, final.finish_reason) == (8, 3, "tool_calls")


async def test_stream_error_event_is_mapped(upstream: FakeUpstream, http: HttpClient) -> None:
    events = wire.stream_events(["partial ", "answer"])
    upstream.push(Reply.sse([*events[:4], wire.error_event("overloaded_error", "Overloaded")]))
    got: list[str] = []
    with pytest.raises(ModelUnavailableError) as info:
        async with aclosing(make(upstream, http).stream(req(), api_key="k")) as stream:
            async for chunk in stream:
                got.append(chunk.text)
    assert got == ["partial "]
    assert (info.value.status_code, info.value.message) == (529, "Overloaded")
    assert info.value.deployment == "claude"


async def test_stream_rate_limit_error_event(upstream: FakeUpstream, http: HttpClient) -> None:
    upstream.push(Reply.sse([wire.error_event("rate_limit_error", "slow down")]))
    with pytest.raises(RateLimitError):
        await collect(make(upstream, http).stream(req(), api_key="k"))


async def test_stream_reset_mid_body(upstream: FakeUpstream, http: HttpClient) -> None:
    upstream.push(Reply.sse(wire.stream_events(["a", "b", "c"]), reset_after_chunks=3))
    with pytest.raises(StreamInterruptedError):
        await collect(make(upstream, http).stream(req(), api_key="k"))


async def test_stream_without_message_stop(upstream: FakeUpstream, http: HttpClient) -> None:
    upstream.push(Reply.sse(wire.stream_events(["a", "b"])[:-1]))
    with pytest.raises(StreamInterruptedError, match="before message_stop"):
        await collect(make(upstream, http).stream(req(), api_key="k"))


async def test_stream_malformed_data(upstream: FakeUpstream, http: HttpClient) -> None:
    events = wire.stream_events(["a"])
    upstream.push(Reply.sse([*events[:3], b"event: content_block_delta\ndata: {not json\n\n", *events[3:]]))
    with pytest.raises(StreamInterruptedError, match="malformed"):
        await collect(make(upstream, http).stream(req(), api_key="k"))


async def test_stream_rejected_before_start(upstream: FakeUpstream, http: HttpClient) -> None:
    upstream.push(Reply.error(429, wire.error_body("rate_limit_error", "slow down"), headers={"retry-after": "3"}))
    with pytest.raises(RateLimitError) as info:
        await collect(make(upstream, http).stream(req(), api_key="k"))
    assert info.value.retry_after == 3.0


async def test_stream_closed_early_leaves_the_client_usable(upstream: FakeUpstream, http: HttpClient) -> None:
    upstream.push(Reply.sse(wire.stream_events(["a", "b", "c"]), chunk_delay_s=0.05), Reply.json(wire.message("next")))
    adapter = make(upstream, http)
    async with aclosing(adapter.stream(req(), api_key="k")) as stream:
        async for chunk in stream:
            assert chunk.text == "a"
            break
    assert (await adapter.complete(req(), api_key="k")).text == "next"


# --- probe ---------------------------------------------------------------------------------------------------


async def test_probe_ok(upstream: FakeUpstream, http: HttpClient) -> None:
    upstream.push(Reply.json({"data": [{"type": "model", "id": MODEL}], "has_more": False}))
    await make(upstream, http).probe(api_key="k")
    (sent,) = upstream.requests
    assert (sent.method, sent.path) == ("GET", "/v1/models")
    assert (sent.headers["x-api-key"], sent.headers["anthropic-version"]) == ("k", "2023-06-01")


async def test_probe_bad_key(upstream: FakeUpstream, http: HttpClient) -> None:
    upstream.push(Reply.error(401, wire.error_body("authentication_error", "invalid x-api-key")))
    with pytest.raises(AuthenticationError, match="invalid x-api-key"):
        await make(upstream, http).probe(api_key="bad")
