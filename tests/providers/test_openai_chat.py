"""OpenAIChatAdapter over real HTTP against the scripted fake upstream: what is sent, what comes back, what breaks."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest

from llm_manager._http import HttpClient
from llm_manager.errors import (
    AuthenticationError,
    ConfigError,
    ContentFilterError,
    ContextTooLargeError,
    InvalidRequestError,
    ModelUnavailableError,
    ProviderError,
    ProviderTimeoutError,
    RateLimitError,
    StreamInterruptedError,
)
from llm_manager.profiles import ModelProfile
from llm_manager.providers.base import Chunk, Endpoint
from llm_manager.providers.openai_chat import OpenAIChatAdapter
from llm_manager.types import Request
from tests.fakes import openai_wire as wire
from tests.fakes.server import FakeUpstream, Reply

MODEL = "gpt-4o-mini"


def make_adapter(upstream: FakeUpstream, http: HttpClient, **kw: object) -> OpenAIChatAdapter:
    fields: dict[str, object] = {"name": "oa", "provider": "openai", "model": MODEL, "base_url": upstream.url + "/v1"}
    fields.update(kw)
    return OpenAIChatAdapter(Endpoint(**fields), http)  # type: ignore[arg-type]


@pytest.fixture
def adapter(upstream: FakeUpstream, http: HttpClient) -> OpenAIChatAdapter:
    return make_adapter(upstream, http)


def hello() -> Request:
    return Request(prompt="hi")


async def collect(gen: AsyncIterator[Chunk], into: list[Chunk] | None = None) -> list[Chunk]:
    out = into if into is not None else []
    async for chunk in gen:
        out.append(chunk)
    return out


# --- what goes on the wire --------------------------------------------------------------------------------------


async def test_request_url_headers_and_body(upstream: FakeUpstream, http: HttpClient) -> None:
    adapter = make_adapter(
        upstream,
        http,
        base_url=upstream.url + "/v1/",  # a trailing slash must not double up
        headers={"X-Title": "llm-manager", "x-portkey-provider": "openai"},
        extra_body={"seed": 7, "response_format": {"type": "json_object"}},
        max_output_tokens=100,
    )
    upstream.push(Reply.json(wire.completion("ok")))
    request = Request(
        messages=[
            {"role": "system", "content": "be brief"},
            {"role": "user", "content": "q1"},
            {"role": "assistant", "content": "a1"},
            {"role": "user", "content": "q2"},
        ],
        max_tokens=500,
        temperature=0.2,
        top_p=0.9,
        stop=["\n\n"],
        user="alice",
    )
    await adapter.complete(request, api_key="sk-test")

    sent = upstream.requests[0]
    assert (sent.method, sent.path) == ("POST", "/v1/chat/completions")
    assert sent.headers["content-type"] == "application/json"
    assert sent.headers["authorization"] == "Bearer sk-test"
    assert sent.headers["x-title"] == "llm-manager"
    assert sent.headers["x-portkey-provider"] == "openai"
    assert sent.json == {
        "model": MODEL,
        "messages": [
            {"role": "system", "content": "be brief"},
            {"role": "user", "content": "q1"},
            {"role": "assistant", "content": "a1"},
            {"role": "user", "content": "q2"},
        ],
        "max_tokens": 100,  # capped by the endpoint's max_output_tokens
        "temperature": 0.2,
        "top_p": 0.9,
        "stop": ["\n\n"],
        "user": "alice",
        "seed": 7,
        "response_format": {"type": "json_object"},
    }


async def test_minimal_body_and_no_auth_header_without_key(upstream: FakeUpstream, adapter: OpenAIChatAdapter) -> None:
    upstream.push(Reply.json(wire.completion("ok")))
    await adapter.complete(Request(prompt="hi", system="sys"), api_key=None)
    sent = upstream.requests[0]
    assert "authorization" not in sent.headers
    assert sent.json == {
        "model": MODEL,
        "messages": [{"role": "system", "content": "sys"}, {"role": "user", "content": "hi"}],
    }


async def test_max_tokens_below_cap_is_kept(upstream: FakeUpstream, http: HttpClient) -> None:
    adapter = make_adapter(upstream, http, max_output_tokens=4096)
    upstream.push(Reply.json(wire.completion("ok")))
    await adapter.complete(Request(prompt="hi", max_tokens=64), api_key="k")
    assert upstream.requests[0].json["max_tokens"] == 64


async def test_stream_body_asks_for_usage(upstream: FakeUpstream, adapter: OpenAIChatAdapter) -> None:
    upstream.push(Reply.sse(wire.stream_events(["x"])))
    await collect(adapter.stream(hello(), api_key="k"))
    body = upstream.requests[0].json
    assert body["stream"] is True
    assert body["stream_options"] == {"include_usage": True}


async def test_stream_usage_option_off_omits_stream_options(upstream: FakeUpstream, http: HttpClient) -> None:
    adapter = make_adapter(upstream, http, profile=ModelProfile(stream_usage=False))
    upstream.push(Reply.sse(wire.stream_events(["x"], usage=False)))
    chunks = await collect(adapter.stream(hello(), api_key=None))
    body = upstream.requests[0].json
    assert body["stream"] is True and "stream_options" not in body
    assert "".join(c.text for c in chunks) == "x"


async def test_extra_body_cannot_switch_streaming(upstream: FakeUpstream, http: HttpClient) -> None:
    adapter = make_adapter(upstream, http, extra_body={"stream": True, "stream_options": {"include_usage": False}})
    upstream.push(Reply.json(wire.completion("ok")))
    await adapter.complete(hello(), api_key="k")
    body = upstream.requests[0].json
    assert "stream" not in body and "stream_options" not in body


async def test_missing_base_url_is_a_config_error(http: HttpClient) -> None:
    adapter = OpenAIChatAdapter(Endpoint(name="x", provider="openai", model=MODEL), http)
    with pytest.raises(ConfigError, match="base_url"):
        await adapter.complete(hello(), api_key="k")


# --- whole answers ----------------------------------------------------------------------------------------------


async def test_complete_success_with_usage_and_cached_tokens(
    upstream: FakeUpstream, adapter: OpenAIChatAdapter
) -> None:
    body = wire.completion(
        "Hello!", model="gpt-4o-mini-2024-07-18", prompt_tokens=1200, completion_tokens=3, cached_tokens=1024
    )
    upstream.push(Reply.json(body))
    out = await adapter.complete(hello(), api_key="k")
    assert out.text == "Hello!"
    assert out.finish_reason == "stop"
    assert (out.prompt_tokens, out.completion_tokens, out.cached_tokens) == (1200, 3, 1024)
    assert out.model == "gpt-4o-mini-2024-07-18"
    assert out.id == body["id"] and out.id.startswith("chatcmpl-")


async def test_complete_without_usage(upstream: FakeUpstream, adapter: OpenAIChatAdapter) -> None:
    body = wire.completion("Hi")
    del body["usage"]
    upstream.push(Reply.json(body))
    out = await adapter.complete(hello(), api_key="k")
    assert (out.prompt_tokens, out.completion_tokens, out.cached_tokens) == (None, None, 0)


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("stop", "stop"),
        ("length", "length"),
        ("tool_calls", "tool_calls"),
        ("function_call", "tool_calls"),
        ("content_filter", "content_filter"),
        ("eos_token", None),
    ],
)
async def test_finish_reason_mapping(
    upstream: FakeUpstream, adapter: OpenAIChatAdapter, raw: str, expected: str
) -> None:
    upstream.push(Reply.json(wire.completion("partial text", finish_reason=raw)))
    out = await adapter.complete(hello(), api_key="k")
    assert out.finish_reason == expected
    assert out.text == "partial text"


async def test_content_filter_with_empty_text_raises(upstream: FakeUpstream, adapter: OpenAIChatAdapter) -> None:
    upstream.push(Reply.json(wire.completion(None, finish_reason="content_filter")))
    with pytest.raises(ContentFilterError) as info:
        await adapter.complete(hello(), api_key="k")
    assert info.value.deployment == "oa"


async def test_refusal_raises_content_filter(upstream: FakeUpstream, adapter: OpenAIChatAdapter) -> None:
    upstream.push(Reply.json(wire.completion(None, refusal="I can't help with that.")))
    with pytest.raises(ContentFilterError, match="can't help"):
        await adapter.complete(hello(), api_key="k")


@pytest.mark.parametrize(
    "reply",
    [
        pytest.param(Reply(body=b"<html>oops</html>", headers={"content-type": "text/html"}), id="not-json"),
        pytest.param(Reply.json({**wire.completion("x"), "choices": []}), id="empty-choices"),
        pytest.param(Reply.json({"object": "chat.completion"}), id="no-choices"),
        pytest.param(Reply.json(["not", "an", "object"]), id="json-array"),
    ],
)
async def test_malformed_200_is_model_unavailable(
    upstream: FakeUpstream, adapter: OpenAIChatAdapter, reply: Reply
) -> None:
    upstream.push(reply)
    with pytest.raises(ModelUnavailableError, match="malformed response") as info:
        await adapter.complete(hello(), api_key="k")
    assert type(info.value) is ModelUnavailableError


async def test_error_object_with_200_is_mapped(upstream: FakeUpstream, adapter: OpenAIChatAdapter) -> None:
    upstream.push(Reply.json(wire.error_body("Rate limit reached", "requests", "rate_limit_exceeded")))
    with pytest.raises(RateLimitError, match="Rate limit reached"):
        await adapter.complete(hello(), api_key="k")


# --- error statuses ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("status", "body", "expected"),
    [
        (400, wire.error_body("Invalid value for 'temperature'"), InvalidRequestError),
        (
            400,
            wire.error_body("This model's maximum context length is 128000 tokens.", code="context_length_exceeded"),
            ContextTooLargeError,
        ),
        (400, wire.error_body("The response was filtered", code="content_filter"), ContentFilterError),
        (401, wire.error_body("Incorrect API key provided", code="invalid_api_key"), AuthenticationError),
        (403, wire.error_body("Project does not have access to model", code="model_not_found"), AuthenticationError),
        (404, wire.error_body("The model `nope` does not exist", code="model_not_found"), InvalidRequestError),
        (408, wire.error_body("Request timed out", "timeout"), ProviderTimeoutError),
        (413, wire.error_body("Request entity too large"), InvalidRequestError),  # bytes, not tokens
        (413, wire.error_body("Request too large: prompt is too long"), ContextTooLargeError),
        (422, {"detail": [{"loc": ["body", "messages"], "msg": "field required"}]}, InvalidRequestError),
        (429, wire.error_body("Rate limit reached", "requests", "rate_limit_exceeded"), RateLimitError),
        (500, wire.error_body("The server had an error", "server_error"), ModelUnavailableError),
        (502, wire.error_body("Bad gateway", "server_error"), ModelUnavailableError),
        (503, wire.error_body("The engine is currently overloaded", "server_error"), ModelUnavailableError),
        (504, wire.error_body("Gateway timeout", "server_error"), ProviderTimeoutError),
        (529, {"error": {"type": "overloaded_error", "message": "Overloaded"}}, ModelUnavailableError),
    ],
)
async def test_status_maps_to_error_class(
    upstream: FakeUpstream, adapter: OpenAIChatAdapter, status: int, body: object, expected: type[Exception]
) -> None:
    upstream.push(Reply.error(status, body))
    with pytest.raises(ProviderError) as info:
        await adapter.complete(hello(), api_key="k")
    assert type(info.value) is expected
    assert info.value.status_code == status
    assert info.value.body and info.value.body.startswith("{")
    assert (info.value.provider, info.value.model, info.value.deployment) == ("openai", MODEL, "oa")


async def test_error_message_comes_from_body(upstream: FakeUpstream, adapter: OpenAIChatAdapter) -> None:
    upstream.push(Reply.error(400, wire.error_body("Invalid value for 'temperature'")))
    with pytest.raises(InvalidRequestError) as info:
        await adapter.complete(hello(), api_key="k")
    assert info.value.message == "Invalid value for 'temperature'"


@pytest.mark.parametrize(
    ("headers", "expected"),
    [({"retry-after": "2"}, 2.0), ({"retry-after-ms": "1500", "retry-after": "9"}, 1.5), ({}, None)],
)
async def test_429_retry_after(
    upstream: FakeUpstream, adapter: OpenAIChatAdapter, headers: dict[str, str], expected: float | None
) -> None:
    upstream.push(Reply.error(429, wire.error_body("slow down", "requests", "rate_limit_exceeded"), headers))
    with pytest.raises(RateLimitError) as info:
        await adapter.complete(hello(), api_key="k")
    assert info.value.retry_after == expected
    assert info.value.headers == headers


async def test_non_json_error_body(upstream: FakeUpstream, adapter: OpenAIChatAdapter) -> None:
    html = b"<html><body><h1>502 Bad Gateway</h1>\n<hr>nginx</body></html>"
    upstream.push(Reply(status=502, body=html, headers={"content-type": "text/html"}))
    with pytest.raises(ModelUnavailableError) as info:
        await adapter.complete(hello(), api_key="k")
    assert "HTTP 502" in info.value.message and "nginx" in info.value.message
    assert info.value.body == html.decode()


async def test_empty_error_body_names_the_status(upstream: FakeUpstream, adapter: OpenAIChatAdapter) -> None:
    upstream.push(Reply(status=500, body=b""))
    with pytest.raises(ModelUnavailableError, match="HTTP 500"):
        await adapter.complete(hello(), api_key="k")


async def test_error_json_without_message_names_the_status(upstream: FakeUpstream, adapter: OpenAIChatAdapter) -> None:
    upstream.push(Reply.error(403, {"error": {}}))
    with pytest.raises(AuthenticationError, match="HTTP 403"):
        await adapter.complete(hello(), api_key="k")


@pytest.mark.parametrize(
    ("status", "body", "expected", "message"),
    [
        (404, {"error": "model 'llama9' not found, try pulling it first"}, InvalidRequestError, "llama9"),
        (400, {"detail": "prompt is too long for this model"}, ContextTooLargeError, "too long"),
        (
            400,
            {"object": "error", "message": "This model's maximum context length is 4096 tokens", "code": 400},
            ContextTooLargeError,
            "4096",
        ),
        (
            500,
            [{"error": {"code": 500, "message": "Internal error", "status": "INTERNAL"}}],
            ModelUnavailableError,
            "Internal",
        ),
    ],
    ids=["ollama-string", "fastapi-detail", "vllm-object", "list-wrapped"],
)
async def test_compatible_servers_error_shapes(
    upstream: FakeUpstream, adapter: OpenAIChatAdapter, status: int, body: object, expected: type, message: str
) -> None:
    upstream.push(Reply.error(status, body))
    with pytest.raises(ProviderError) as info:
        await adapter.complete(hello(), api_key="k")
    assert type(info.value) is expected
    assert message in info.value.message


async def test_reset_before_headers_is_model_unavailable(upstream: FakeUpstream, adapter: OpenAIChatAdapter) -> None:
    upstream.push(Reply.reset())
    with pytest.raises(ModelUnavailableError) as info:
        await adapter.complete(hello(), api_key="k")
    assert info.value.deployment == "oa"


# --- streaming --------------------------------------------------------------------------------------------------


async def test_stream_success(upstream: FakeUpstream, adapter: OpenAIChatAdapter) -> None:
    events = wire.stream_events(["Hel", "lo", " wörld"], prompt_tokens=20, completion_tokens=3, cached_tokens=16)
    upstream.push(Reply.sse(events))
    chunks = await collect(adapter.stream(hello(), api_key="k"))
    assert "".join(c.text for c in chunks) == "Hello wörld"
    assert [c.text for c in chunks[:3]] == ["Hel", "lo", " wörld"]  # the role-only chunk yields nothing
    finish = [c for c in chunks if c.finish_reason]
    assert len(finish) == 1 and finish[0].finish_reason == "stop"
    last = chunks[-1]
    assert (last.prompt_tokens, last.completion_tokens, last.cached_tokens) == (20, 3, 16)
    assert all(c.model == "gpt-4o-mini-2024-07-18" for c in chunks)


async def test_stream_reassembles_events_split_at_odd_bytes(upstream: FakeUpstream, adapter: OpenAIChatAdapter) -> None:
    blob = b"".join(wire.stream_events(["añ", "日本", "🙂"]))
    pieces = [blob[i : i + 7] for i in range(0, len(blob), 7)]  # splits lines and multi-byte characters
    upstream.push(Reply.sse(pieces))
    chunks = await collect(adapter.stream(hello(), api_key="k"))
    assert "".join(c.text for c in chunks) == "añ日本🙂"
    assert chunks[-1].prompt_tokens == 12


async def test_stream_with_crlf_line_ends(upstream: FakeUpstream, adapter: OpenAIChatAdapter) -> None:
    events = [e.replace(b"\n", b"\r\n") for e in wire.stream_events(["a", "b"])]
    upstream.push(Reply.sse(events))
    chunks = await collect(adapter.stream(hello(), api_key="k"))
    assert "".join(c.text for c in chunks) == "ab"


async def test_stream_ignores_comments_and_keepalives(upstream: FakeUpstream, adapter: OpenAIChatAdapter) -> None:
    events = wire.stream_events(["a", "b"])
    events.insert(1, b": OPENROUTER PROCESSING\n\n")
    events.insert(3, b"data: \n\n")
    upstream.push(Reply.sse(events))
    chunks = await collect(adapter.stream(hello(), api_key="k"))
    assert "".join(c.text for c in chunks) == "ab"


async def test_stream_429_before_start(upstream: FakeUpstream, adapter: OpenAIChatAdapter) -> None:
    upstream.push(
        Reply.error(429, wire.error_body("Rate limit", "requests", "rate_limit_exceeded"), {"retry-after": "3"})
    )
    received: list[Chunk] = []
    with pytest.raises(RateLimitError) as info:
        await collect(adapter.stream(hello(), api_key="k"), received)
    assert received == []
    assert info.value.retry_after == 3.0
    assert info.value.deployment == "oa"


async def test_stream_reset_before_headers(upstream: FakeUpstream, adapter: OpenAIChatAdapter) -> None:
    upstream.push(Reply.reset())
    with pytest.raises(ModelUnavailableError) as info:
        await collect(adapter.stream(hello(), api_key="k"))
    assert not isinstance(info.value, StreamInterruptedError)


async def test_stream_reset_mid_stream(upstream: FakeUpstream, adapter: OpenAIChatAdapter) -> None:
    upstream.push(Reply.sse(wire.stream_events(["a", "b", "c", "d"]), reset_after_chunks=3))
    received: list[Chunk] = []
    with pytest.raises(StreamInterruptedError):
        await collect(adapter.stream(hello(), api_key="k"), received)
    assert [c.text for c in received] == ["a", "b"]


async def test_stream_truncated_without_finish(upstream: FakeUpstream, adapter: OpenAIChatAdapter) -> None:
    upstream.push(Reply.sse(wire.stream_events(["a", "b"], finish_reason=None, usage=False, done=False)))
    received: list[Chunk] = []
    with pytest.raises(StreamInterruptedError, match="ended before completion"):
        await collect(adapter.stream(hello(), api_key="k"), received)
    assert [c.text for c in received] == ["a", "b"]


async def test_stream_cut_inside_an_event(upstream: FakeUpstream, adapter: OpenAIChatAdapter) -> None:
    events = wire.stream_events(["a"], finish_reason=None, usage=False, done=False)
    events.append(events[-1][:20])  # half an event, then a clean end of body
    upstream.push(Reply.sse(events))
    with pytest.raises(StreamInterruptedError, match="ended before completion"):
        await collect(adapter.stream(hello(), api_key="k"))


async def test_stream_missing_done_after_finish_is_complete(upstream: FakeUpstream, adapter: OpenAIChatAdapter) -> None:
    upstream.push(Reply.sse(wire.stream_events(["a", "b"], usage=False, done=False)))
    chunks = await collect(adapter.stream(hello(), api_key="k"))
    assert "".join(c.text for c in chunks) == "ab"
    assert chunks[-1].finish_reason == "stop"


async def test_stream_reset_after_finish_is_complete(upstream: FakeUpstream, adapter: OpenAIChatAdapter) -> None:
    # role, a, b, finish: then the connection drops before the usage chunk and [DONE].
    upstream.push(Reply.sse(wire.stream_events(["a", "b"]), reset_after_chunks=4))
    chunks = await collect(adapter.stream(hello(), api_key="k"))
    assert [(c.text, c.finish_reason) for c in chunks] == [("a", None), ("b", None), ("", "stop")]


async def test_stream_finish_and_usage_in_one_chunk(upstream: FakeUpstream, adapter: OpenAIChatAdapter) -> None:
    # Some compatible servers put usage on the finish chunk instead of a separate one.
    cid = "chatcmpl-x"
    events = [
        wire.sse(wire.chunk(id=cid, model=MODEL, delta={"content": "a"})),
        wire.sse(wire.chunk(id=cid, model=MODEL, finish_reason="length", usage=wire.usage(5, 1))),
        wire.DONE,
    ]
    upstream.push(Reply.sse(events))
    chunks = await collect(adapter.stream(hello(), api_key="k"))
    assert [(c.text, c.finish_reason, c.prompt_tokens) for c in chunks] == [("a", None, None), ("", "length", 5)]


async def test_stream_stops_at_done(upstream: FakeUpstream, adapter: OpenAIChatAdapter) -> None:
    events = [*wire.stream_events(["a"]), b"data: not json after the end\n\n"]
    upstream.push(Reply.sse(events))
    chunks = await collect(adapter.stream(hello(), api_key="k"))
    assert "".join(c.text for c in chunks) == "a"


async def test_stream_malformed_chunk(upstream: FakeUpstream, adapter: OpenAIChatAdapter) -> None:
    events = wire.stream_events(["a", "b"])
    events.insert(2, b'data: {"id": "chatcmpl-x", "choices": [\n\n')
    upstream.push(Reply.sse(events))
    received: list[Chunk] = []
    with pytest.raises(StreamInterruptedError, match="malformed chunk"):
        await collect(adapter.stream(hello(), api_key="k"), received)
    assert [c.text for c in received] == ["a"]


@pytest.mark.parametrize(
    ("error", "expected"),
    [
        ({"message": "Rate limit reached for tokens", "type": "tokens", "code": "rate_limit_exceeded"}, RateLimitError),
        ({"message": "The server had an error while processing", "type": "server_error"}, ModelUnavailableError),
        ({"message": "Overloaded", "type": "overloaded_error"}, ModelUnavailableError),
        ({"message": "context length exceeded", "code": "context_length_exceeded"}, ContextTooLargeError),
        ({"message": "Provider returned error", "code": 429}, RateLimitError),
        ({"message": "something odd"}, ModelUnavailableError),
    ],
)
async def test_stream_error_payload_mid_stream(
    upstream: FakeUpstream, adapter: OpenAIChatAdapter, error: dict[str, object], expected: type
) -> None:
    events = wire.stream_events(["a", "b"], finish_reason=None, usage=False, done=False)
    events.append(wire.sse({"error": error}))
    upstream.push(Reply.sse(events))
    received: list[Chunk] = []
    with pytest.raises(ProviderError) as info:
        await collect(adapter.stream(hello(), api_key="k"), received)
    assert type(info.value) is expected
    assert info.value.message == error["message"]
    assert [c.text for c in received] == ["a", "b"]


async def test_stream_answered_with_whole_json(upstream: FakeUpstream, adapter: OpenAIChatAdapter) -> None:
    # A compatible server that ignores ``stream: true`` still gives a usable answer.
    upstream.push(Reply.json(wire.completion("whole", prompt_tokens=3, completion_tokens=1)))
    chunks = await collect(adapter.stream(hello(), api_key="k"))
    assert [(c.text, c.finish_reason, c.prompt_tokens, c.completion_tokens) for c in chunks] == [
        ("whole", "stop", 3, 1)
    ]


async def test_stream_early_close_releases_connection(upstream: FakeUpstream, adapter: OpenAIChatAdapter) -> None:
    upstream.push(Reply.sse(wire.stream_events(["a", "b", "c"]), stall_after_chunks=2))
    gen = adapter.stream(hello(), api_key="k")
    first = await anext(gen)
    assert first.text == "a"
    await gen.aclose()  # must not wait for the stalled remainder
    upstream.push(Reply.json(wire.completion("next")))
    assert (await adapter.complete(hello(), api_key="k")).text == "next"


async def test_stream_stall_can_be_timed_out(upstream: FakeUpstream, adapter: OpenAIChatAdapter) -> None:
    upstream.push(Reply.sse(wire.stream_events(["a", "b"]), stall_after_chunks=2))
    received: list[Chunk] = []
    with pytest.raises(TimeoutError):
        async with asyncio.timeout(0.3):
            await collect(adapter.stream(hello(), api_key="k"), received)
    assert [c.text for c in received] == ["a"]


# --- probe ------------------------------------------------------------------------------------------------------


async def test_probe_ok(upstream: FakeUpstream, http: HttpClient) -> None:
    adapter = make_adapter(upstream, http, headers={"x-title": "llm-manager"})
    upstream.push(Reply.json(wire.models_list(MODEL, "gpt-4o")))
    await adapter.probe(api_key="sk-test")
    sent = upstream.requests[0]
    assert (sent.method, sent.path, sent.body) == ("GET", "/v1/models", b"")
    assert sent.headers["authorization"] == "Bearer sk-test"
    assert sent.headers["x-title"] == "llm-manager"


async def test_probe_401(upstream: FakeUpstream, adapter: OpenAIChatAdapter) -> None:
    upstream.push(Reply.error(401, wire.error_body("Incorrect API key provided", code="invalid_api_key")))
    with pytest.raises(AuthenticationError, match="Incorrect API key") as info:
        await adapter.probe(api_key="bad")
    assert info.value.status_code == 401
