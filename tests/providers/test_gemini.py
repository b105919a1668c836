"""The Gemini adapter against a real HTTP server on 127.0.0.1 speaking the Gemini wire format."""

from __future__ import annotations

from collections.abc import AsyncIterator
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
    ProviderTimeoutError,
    RateLimitError,
    StreamInterruptedError,
)
from llm_manager.providers.base import Chunk, Endpoint
from llm_manager.providers.gemini import GeminiAdapter
from llm_manager.types import Message, Request
from tests.fakes import gemini_wire as wire
from tests.fakes.server import FakeUpstream, Reply

MODEL = "gemini-2.0-flash"
KEY = "AIza-test-key"


def make_adapter(upstream: FakeUpstream, http: HttpClient, **endpoint: Any) -> GeminiAdapter:
    fields: dict[str, Any] = {
        "name": "gem",
        "provider": "gemini",
        "model": MODEL,
        "base_url": upstream.url + "/v1beta/",
    }
    fields.update(endpoint)
    return GeminiAdapter(Endpoint(**fields), http)


async def collect(stream: AsyncIterator[Chunk], into: list[Chunk] | None = None) -> list[Chunk]:
    chunks = [] if into is None else into
    async for chunk in stream:
        chunks.append(chunk)
    return chunks


HELLO = Request(prompt="Hello")


# --- request as sent -----------------------------------------------------------------------------------------------


async def test_request_wire_format(upstream: FakeUpstream, http: HttpClient) -> None:
    adapter = make_adapter(
        upstream,
        http,
        max_output_tokens=2048,
        headers={"x-portkey-trace": "t1"},
        extra_body={
            "generationConfig": {"thinkingConfig": {"thinkingBudget": 0}, "temperature": 1.0},
            "safetySettings": [{"category": "HARM_CATEGORY_HARASSMENT", "threshold": "BLOCK_NONE"}],
        },
    )
    upstream.push(Reply.json(wire.response("Hi")))
    request = Request(
        messages=[
            Message(role="system", content="Be brief."),
            Message(role="user", content="a"),
            Message(role="assistant", content="b"),
            Message(role="user", content="c"),
            Message(role="user", content="d"),
        ],
        max_tokens=5000,
        temperature=0.3,
        top_p=0.9,
        stop=["END"],
    )

    await adapter.complete(request, api_key=KEY)

    sent = upstream.requests[0]
    assert sent.method == "POST"
    assert sent.path == f"/v1beta/models/{MODEL}:generateContent"
    assert "key=" not in sent.path  # the key must never be in the URL (it would land in access logs)
    assert sent.headers["x-goog-api-key"] == KEY
    assert sent.headers["content-type"] == "application/json"
    assert sent.headers["x-portkey-trace"] == "t1"
    assert sent.json == {
        "contents": [
            {"role": "user", "parts": [{"text": "a"}]},
            {"role": "model", "parts": [{"text": "b"}]},
            {"role": "user", "parts": [{"text": "c"}, {"text": "d"}]},
        ],
        "systemInstruction": {"parts": [{"text": "Be brief."}]},
        "generationConfig": {
            "thinkingConfig": {"thinkingBudget": 0},
            "temperature": 0.3,
            "maxOutputTokens": 2048,
            "topP": 0.9,
            "stopSequences": ["END"],
        },
        "safetySettings": [{"category": "HARM_CATEGORY_HARASSMENT", "threshold": "BLOCK_NONE"}],
    }


async def test_minimal_request_sends_only_what_is_set(upstream: FakeUpstream, http: HttpClient) -> None:
    upstream.push(Reply.json(wire.response("Hi")))

    await make_adapter(upstream, http).complete(Request(prompt="Hi", max_tokens=100), api_key=None)

    sent = upstream.requests[0]
    assert "x-goog-api-key" not in sent.headers
    assert sent.json == {
        "contents": [{"role": "user", "parts": [{"text": "Hi"}]}],
        "generationConfig": {"maxOutputTokens": 100},
    }


async def test_resource_name_model_is_not_prefixed_twice(upstream: FakeUpstream, http: HttpClient) -> None:
    upstream.push(Reply.json(wire.response("Hi")))

    await make_adapter(upstream, http, model="models/gemini-2.5-pro").complete(HELLO, api_key=KEY)

    assert upstream.requests[0].path == "/v1beta/models/gemini-2.5-pro:generateContent"


# --- whole answers -------------------------------------------------------------------------------------------------


async def test_complete_success(upstream: FakeUpstream, http: HttpClient) -> None:
    payload = wire.response(
        "Paris.", model="gemini-2.5-flash", prompt_tokens=20, completion_tokens=3, thoughts_tokens=40, cached_tokens=8
    )
    payload["candidates"][0]["content"]["parts"].insert(0, {"text": "Let me think…", "thought": True})
    upstream.push(Reply.json(payload))

    got = await make_adapter(upstream, http).complete(HELLO, api_key=KEY)

    assert got.text == "Paris."
    assert got.finish_reason == "stop"
    assert (got.prompt_tokens, got.completion_tokens, got.cached_tokens) == (20, 43, 8)
    assert got.model == "gemini-2.5-flash"
    assert got.id == payload["responseId"]


@pytest.mark.parametrize(
    ("raw", "expected"),
    [("MAX_TOKENS", "length"), ("RECITATION", "content_filter"), ("MALFORMED_FUNCTION_CALL", "error"), ("OTHER", None)],
)
async def test_finish_reasons(upstream: FakeUpstream, http: HttpClient, raw: str, expected: str | None) -> None:
    upstream.push(Reply.json(wire.response("partial", finish_reason=raw)))

    got = await make_adapter(upstream, http).complete(HELLO, api_key=KEY)

    assert (got.text, got.finish_reason) == ("partial", expected)


async def test_length_with_no_text_is_an_empty_answer(upstream: FakeUpstream, http: HttpClient) -> None:
    # A thinking model can spend the whole budget thinking: that is a (useless) answer, not a filter.
    upstream.push(Reply.json(wire.response("", finish_reason="MAX_TOKENS", completion_tokens=0, thoughts_tokens=50)))

    got = await make_adapter(upstream, http).complete(HELLO, api_key=KEY)

    assert (got.text, got.finish_reason, got.completion_tokens) == ("", "length", 50)


async def test_blocked_prompt_is_content_filter(upstream: FakeUpstream, http: HttpClient) -> None:
    upstream.push(Reply.json(wire.blocked("PROHIBITED_CONTENT")))

    with pytest.raises(ContentFilterError, match="PROHIBITED_CONTENT"):
        await make_adapter(upstream, http).complete(HELLO, api_key=KEY)


async def test_safety_finish_without_text_is_content_filter(upstream: FakeUpstream, http: HttpClient) -> None:
    upstream.push(Reply.json(wire.response("", finish_reason="SAFETY", completion_tokens=0)))

    with pytest.raises(ContentFilterError, match="SAFETY"):
        await make_adapter(upstream, http).complete(HELLO, api_key=KEY)


@pytest.mark.parametrize("body", [b"<html>oops</html>", b'["not", "a", "response"]', b"{}"])
async def test_malformed_success_body(upstream: FakeUpstream, http: HttpClient, body: bytes) -> None:
    upstream.push(Reply(status=200, headers={"content-type": "application/json"}, body=body))

    with pytest.raises(ModelUnavailableError) as info:
        await make_adapter(upstream, http).complete(HELLO, api_key=KEY)

    assert not isinstance(info.value, ContentFilterError)


# --- error statuses ------------------------------------------------------------------------------------------------

TOKEN_LIMIT = "The input token count (1200293) exceeds the maximum number of tokens allowed (1048576)."

STATUS_TABLE = [
    (
        400,
        "INVALID_ARGUMENT",
        'Invalid JSON payload received. Unknown name "foo": Cannot find field.',
        InvalidRequestError,
    ),
    (400, "INVALID_ARGUMENT", TOKEN_LIMIT, ContextTooLargeError),
    (400, "FAILED_PRECONDITION", "User location is not supported for the API use.", InvalidRequestError),
    (
        400,
        "INVALID_ARGUMENT",
        "Invalid value at 'safety_settings[0].threshold' (type.googleapis.com/google.ai.generativelanguage.v1beta."
        'HarmBlockThreshold), "BLOCK_EVERYTHING"',
        InvalidRequestError,
    ),
    (401, "UNAUTHENTICATED", "Request had invalid authentication credentials.", AuthenticationError),
    (403, "PERMISSION_DENIED", "Method doesn't allow unregistered callers.", AuthenticationError),
    (404, "NOT_FOUND", f"models/{MODEL}-x is not found for API version v1beta.", InvalidRequestError),
    (429, "RESOURCE_EXHAUSTED", "Resource has been exhausted (e.g. check quota).", RateLimitError),
    (500, "INTERNAL", "An internal error has occurred. Please retry or report.", ModelUnavailableError),
    (503, "UNAVAILABLE", "The model is overloaded. Please try again later.", ModelUnavailableError),
    (504, "DEADLINE_EXCEEDED", "Deadline expired before operation could complete.", ProviderTimeoutError),
]


@pytest.mark.parametrize(("status", "rpc", "message", "expected"), STATUS_TABLE)
async def test_status_maps_to_error(
    upstream: FakeUpstream, http: HttpClient, status: int, rpc: str, message: str, expected: type[ProviderError]
) -> None:
    upstream.push(Reply.error(status, wire.error_body(status, rpc, message)))

    with pytest.raises(ProviderError) as info:
        await make_adapter(upstream, http).complete(HELLO, api_key=KEY)

    assert type(info.value) is expected
    assert info.value.status_code == status
    assert info.value.message == message
    assert rpc in (info.value.body or "")


async def test_token_limit_error_carries_counts(upstream: FakeUpstream, http: HttpClient) -> None:
    upstream.push(Reply.error(400, wire.error_body(400, "INVALID_ARGUMENT", TOKEN_LIMIT)))

    with pytest.raises(ContextTooLargeError) as info:
        await make_adapter(upstream, http).complete(HELLO, api_key=KEY)

    assert (info.value.token_count, info.value.max_tokens) == (1200293, 1048576)


async def test_invalid_key_400_is_authentication_error(upstream: FakeUpstream, http: HttpClient) -> None:
    # Google answers a bad key with 400 INVALID_ARGUMENT; only the ErrorInfo reason says it is the key.
    body = wire.error_body(
        400, "INVALID_ARGUMENT", "API key not valid. Please pass a valid API key.", reason="API_KEY_INVALID"
    )
    upstream.push(Reply.error(400, body))

    with pytest.raises(AuthenticationError) as info:
        await make_adapter(upstream, http).complete(HELLO, api_key=KEY)

    assert info.value.status_code == 400


@pytest.mark.parametrize(("delay", "seconds"), [("12s", 12.0), ("1.5s", 1.5), ("47.434392449s", 47.434392449)])
async def test_retry_info_sets_retry_after(
    upstream: FakeUpstream, http: HttpClient, delay: str, seconds: float
) -> None:
    body = wire.error_body(429, "RESOURCE_EXHAUSTED", "You exceeded your current quota.", retry_delay=delay)
    upstream.push(Reply.error(429, body))

    with pytest.raises(RateLimitError) as info:
        await make_adapter(upstream, http).complete(HELLO, api_key=KEY)

    assert info.value.retry_after == pytest.approx(seconds)


async def test_retry_after_header_wins_over_retry_info(upstream: FakeUpstream, http: HttpClient) -> None:
    body = wire.error_body(429, "RESOURCE_EXHAUSTED", "You exceeded your current quota.", retry_delay="12s")
    upstream.push(Reply.error(429, body, headers={"retry-after": "3"}))

    with pytest.raises(RateLimitError) as info:
        await make_adapter(upstream, http).complete(HELLO, api_key=KEY)

    assert info.value.retry_after == 3.0


async def test_non_json_error_body(upstream: FakeUpstream, http: HttpClient) -> None:
    upstream.push(Reply(status=502, headers={"content-type": "text/html"}, body=b"<html>Bad Gateway</html>"))

    with pytest.raises(ModelUnavailableError) as info:
        await make_adapter(upstream, http).complete(HELLO, api_key=KEY)

    assert info.value.status_code == 502


async def test_list_wrapped_error_body(upstream: FakeUpstream, http: HttpClient) -> None:
    upstream.push(Reply.error(429, [wire.error_body(429, "RESOURCE_EXHAUSTED", "quota", "2s")]))

    with pytest.raises(RateLimitError) as info:
        await make_adapter(upstream, http).complete(HELLO, api_key=KEY)

    assert (info.value.message, info.value.retry_after) == ("quota", 2.0)


# --- streaming -----------------------------------------------------------------------------------------------------


async def test_stream_success(upstream: FakeUpstream, http: HttpClient) -> None:
    events = wire.stream_events(["Hel", "lo ", "world"], prompt_tokens=5, completion_tokens=9, cached_tokens=2)
    upstream.push(Reply.sse(events))

    chunks = await collect(make_adapter(upstream, http).stream(Request(prompt="Hi", system="S"), api_key=KEY))

    sent = upstream.requests[0]
    assert sent.path == f"/v1beta/models/{MODEL}:streamGenerateContent?alt=sse"
    assert sent.headers["x-goog-api-key"] == KEY
    assert sent.json["systemInstruction"] == {"parts": [{"text": "S"}]}
    assert "".join(c.text for c in chunks) == "Hello world"
    last = chunks[-1]
    assert (last.finish_reason, last.prompt_tokens, last.completion_tokens, last.cached_tokens) == ("stop", 5, 9, 2)
    assert last.model == MODEL
    assert all(c.finish_reason is None for c in chunks[:-1])


async def test_stream_survives_arbitrary_byte_splits(upstream: FakeUpstream, http: HttpClient) -> None:
    body = b"".join(wire.stream_events(["Grüße ", "aus ", "Köln"], finish_reason="MAX_TOKENS"))
    # Odd cut points split CRLF pairs and multi-byte characters across network chunks.
    pieces = [body[i : i + 7] for i in range(0, len(body), 7)]
    upstream.push(Reply.sse(pieces))

    chunks = await collect(make_adapter(upstream, http).stream(HELLO, api_key=KEY))

    assert "".join(c.text for c in chunks) == "Grüße aus Köln"
    assert chunks[-1].finish_reason == "length"


async def test_stream_without_finish_reason_is_interrupted(upstream: FakeUpstream, http: HttpClient) -> None:
    upstream.push(Reply.sse(wire.stream_events(["a", "b"], finish_reason=None)))
    got: list[Chunk] = []

    with pytest.raises(StreamInterruptedError, match="finishReason"):
        await collect(make_adapter(upstream, http).stream(HELLO, api_key=KEY), got)

    assert [c.text for c in got] == ["a", "b"]


async def test_stream_reset_mid_stream_is_interrupted(upstream: FakeUpstream, http: HttpClient) -> None:
    upstream.push(Reply.sse(wire.stream_events(["a", "b", "c", "d"]), reset_after_chunks=2))
    got: list[Chunk] = []

    with pytest.raises(StreamInterruptedError):
        await collect(make_adapter(upstream, http).stream(HELLO, api_key=KEY), got)

    assert [c.text for c in got] == ["a", "b"]


async def test_stream_reset_after_final_fragment_is_complete(upstream: FakeUpstream, http: HttpClient) -> None:
    events = wire.stream_events(["a", "b"])
    upstream.push(Reply.sse(events, reset_after_chunks=len(events)))

    chunks = await collect(make_adapter(upstream, http).stream(HELLO, api_key=KEY))

    assert [c.text for c in chunks] == ["a", "b"]  # the last fragment carries text and finish reason: one chunk
    assert chunks[-1].finish_reason == "stop"


async def test_stream_malformed_json_is_interrupted(upstream: FakeUpstream, http: HttpClient) -> None:
    events = wire.stream_events(["a", "b"])
    upstream.push(Reply.sse([events[0], b'data: {"candidates": [{"content\r\n\r\n', events[1]]))

    with pytest.raises(StreamInterruptedError, match="malformed"):
        await collect(make_adapter(upstream, http).stream(HELLO, api_key=KEY))


async def test_stream_error_payload_is_mapped(upstream: FakeUpstream, http: HttpClient) -> None:
    error = wire.sse_event(wire.error_body(503, "UNAVAILABLE", "The model is overloaded."))
    upstream.push(Reply.sse([wire.stream_events(["a", "b"])[0], error]))
    got: list[Chunk] = []

    with pytest.raises(ModelUnavailableError, match="overloaded") as info:
        await collect(make_adapter(upstream, http).stream(HELLO, api_key=KEY), got)

    assert type(info.value) is ModelUnavailableError
    assert [c.text for c in got] == ["a"]


async def test_stream_blocked_prompt(upstream: FakeUpstream, http: HttpClient) -> None:
    upstream.push(Reply.sse([wire.sse_event(wire.blocked("SAFETY"))]))
    got: list[Chunk] = []

    with pytest.raises(ContentFilterError):
        await collect(make_adapter(upstream, http).stream(HELLO, api_key=KEY), got)

    assert got == []


async def test_stream_safety_before_any_text(upstream: FakeUpstream, http: HttpClient) -> None:
    upstream.push(Reply.sse(wire.stream_events([""], finish_reason="SAFETY", completion_tokens=0)))

    with pytest.raises(ContentFilterError):
        await collect(make_adapter(upstream, http).stream(HELLO, api_key=KEY))


async def test_stream_safety_after_text_finishes_as_content_filter(upstream: FakeUpstream, http: HttpClient) -> None:
    upstream.push(Reply.sse(wire.stream_events(["Once upon", ""], finish_reason="SAFETY")))

    chunks = await collect(make_adapter(upstream, http).stream(HELLO, api_key=KEY))

    assert [c.text for c in chunks] == ["Once upon", ""]
    assert chunks[-1].finish_reason == "content_filter"


async def test_stream_rate_limited_before_start(upstream: FakeUpstream, http: HttpClient) -> None:
    body = wire.error_body(429, "RESOURCE_EXHAUSTED", "You exceeded your current quota.", retry_delay="12s")
    upstream.push(Reply.error(429, body))
    got: list[Chunk] = []

    with pytest.raises(RateLimitError) as info:
        await collect(make_adapter(upstream, http).stream(HELLO, api_key=KEY), got)

    assert got == []
    assert info.value.retry_after == 12.0


async def test_stream_closed_early_by_caller(upstream: FakeUpstream, http: HttpClient) -> None:
    upstream.push(Reply.sse(wire.stream_events(["a", "b", "c"]), stall_after_chunks=1))
    stream = make_adapter(upstream, http).stream(HELLO, api_key=KEY)

    first = await anext(stream)
    await stream.aclose()  # must release the stalled connection, not wait for it

    assert first.text == "a"


# --- probe ---------------------------------------------------------------------------------------------------------


async def test_probe_ok(upstream: FakeUpstream, http: HttpClient) -> None:
    upstream.push(Reply.json({"name": f"models/{MODEL}", "inputTokenLimit": 1048576, "outputTokenLimit": 8192}))

    await make_adapter(upstream, http).probe(api_key=KEY)

    sent = upstream.requests[0]
    assert (sent.method, sent.path) == ("GET", f"/v1beta/models/{MODEL}")
    assert sent.headers["x-goog-api-key"] == KEY
    assert sent.body == b""


async def test_probe_forbidden(upstream: FakeUpstream, http: HttpClient) -> None:
    upstream.push(Reply.error(403, wire.error_body(403, "PERMISSION_DENIED", "Permission denied on resource.")))

    with pytest.raises(AuthenticationError):
        await make_adapter(upstream, http).probe(api_key=KEY)
