"""``api: responses``: an OpenAI deployment spoken to through the Responses API, end to end through the manager,
against a loopback upstream that answers as the API does (whole, streamed, tool calls, errors)."""

from __future__ import annotations

import base64
import json
from collections.abc import AsyncIterator
from typing import Any

import pytest
from openai.types.responses import Response as SDKResponse
from openai.types.responses import ResponseStreamEvent as SDKEvent
from pydantic import TypeAdapter

from llm_manager.config import load_settings
from llm_manager.errors import AllCandidatesFailedError, ConfigError, RateLimitError, StreamInterruptedError
from llm_manager.manager import LLMManager
from llm_manager.types import ImagePart, Message, Response, TextPart
from tests.fakes import responses_wire as wire
from tests.fakes.server import FakeUpstream, Reply

PNG = b"\x89PNG\r\n\x1a\n" + b"\x00" * 8
WEATHER = {"name": "weather", "parameters": {"type": "object", "properties": {"city": {"type": "string"}}}}


def _settings(url: str, **dep: Any) -> Any:
    model = {"provider": "openai", "model": "gpt-4.1", "api": "responses", "base_url": url + "/v1", "api_key": "k"}
    return load_settings({"models": {"gpt5": {**model, **dep}}, "routing": {"max_retries": 0}}, env={})


@pytest.fixture
async def llm(upstream: FakeUpstream) -> AsyncIterator[LLMManager]:
    async with LLMManager(_settings(upstream.url)) as manager:
        yield manager


async def _answer(llm: LLMManager, **fields: Any) -> Response:
    resp, settle = await llm.answer(llm.request(**fields))
    await settle()
    return resp


async def test_whole_answer_on_the_wire(upstream: FakeUpstream, llm: LLMManager) -> None:
    upstream.push(Reply.json(wire.response([wire.message_item("Hi there")], u=wire.usage(20, 4, cached=8))))
    content = (TextPart(text="What is this?"), ImagePart.from_bytes(PNG))
    resp = await _answer(
        llm,
        messages=[Message(role="user", content=content)],
        system="Be brief.",
        max_tokens=40,
        temperature=0.3,
        response_format={"name": "answer", "json_schema": {"type": "object", "properties": {}}, "strict": False},
    )
    assert resp.content == "Hi there" and resp.finish_reason == "stop" and resp.deployment == "gpt5"
    assert (resp.usage.prompt_tokens, resp.usage.completion_tokens, resp.usage.cached_tokens) == (20, 4, 8)
    sent = upstream.requests[0]
    assert sent.path == "/v1/responses" and sent.headers["authorization"] == "Bearer k"
    body = sent.json
    assert body["model"] == "gpt-4.1" and body["instructions"] == "Be brief." and body["store"] is False
    assert body["max_output_tokens"] == 40 and body["temperature"] == 0.3 and "stream" not in body
    [item] = body["input"]
    assert item["role"] == "user" and item["content"][0] == {"type": "input_text", "text": "What is this?"}
    image = item["content"][1]
    assert image["type"] == "input_image" and base64.b64decode(image["image_url"].split(",")[1]) == PNG
    assert body["text"]["format"] == {
        "type": "json_schema",
        "name": "answer",
        "schema": {"type": "object", "properties": {}},
        "strict": False,
    }


async def test_tool_call_round_trip(upstream: FakeUpstream, llm: LLMManager) -> None:
    upstream.push(Reply.json(wire.response([wire.call_item("weather", '{"city":"Oslo"}')])))
    first = await _answer(llm, prompt="Weather in Oslo?", tools=[WEATHER], tool_choice="required")
    assert first.finish_reason == "tool_calls"
    assert [(c.id, c.name, c.arguments) for c in first.tool_calls] == [("call_1", "weather", '{"city":"Oslo"}')]
    sent = upstream.requests[0].json
    assert sent["tools"] == [
        {"type": "function", "name": "weather", "parameters": WEATHER["parameters"], "strict": False}
    ]
    assert sent["tool_choice"] == "required"
    upstream.push(Reply.json(wire.response([wire.message_item("12 C")])))
    history = [Message(role="user", content="Weather in Oslo?"), first.message()]
    result = Message(role="tool", content="12 C, clear", tool_call_id="call_1")
    second = await _answer(llm, messages=[*history, result], tools=[WEATHER])
    assert second.content == "12 C"
    assert upstream.requests[1].json["input"][1:] == [
        {"type": "function_call", "call_id": "call_1", "name": "weather", "arguments": '{"city":"Oslo"}'},
        {"type": "function_call_output", "call_id": "call_1", "output": "12 C, clear"},
    ]


async def test_a_cut_answer_is_length(upstream: FakeUpstream, llm: LLMManager) -> None:
    body = wire.response(
        [wire.message_item("Once upon", "incomplete")], status="incomplete", incomplete="max_output_tokens"
    )
    upstream.push(Reply.json(body))
    assert (await _answer(llm, prompt="A story", max_tokens=3)).finish_reason == "length"


async def test_stream_text_and_a_call(upstream: FakeUpstream, llm: LLMManager) -> None:
    upstream.push(Reply.sse(wire.stream_events(["Hel", "lo"], call=("weather", ['{"city"', ':"Oslo"}']))))
    texts: list[str] = []
    done: Response | None = None
    async for event in llm.stream(llm.request(prompt="hi", tools=[WEATHER])):
        texts.append(event.delta)
        done = event.response or done
    assert "".join(texts) == "Hello"
    assert done is not None and done.finish_reason == "tool_calls"
    assert [(c.name, c.arguments) for c in done.tool_calls] == [("weather", '{"city":"Oslo"}')]
    assert done.usage.prompt_tokens == 12 and not done.usage.estimated
    assert upstream.requests[0].json["stream"] is True


async def test_errors_are_mapped(upstream: FakeUpstream, llm: LLMManager) -> None:
    error = {"error": {"message": "Rate limit reached", "type": "requests", "code": "rate_limit_exceeded"}}
    upstream.push(Reply.error(429, error, headers={"retry-after": "30"}))
    with pytest.raises(AllCandidatesFailedError) as failed:
        await _answer(llm, prompt="hi")
    assert isinstance(failed.value.exceptions[0], RateLimitError)
    upstream.push(Reply.sse(wire.failed_events("server_error", "boom")))
    with pytest.raises(Exception, match="boom"):
        async for _ in llm.stream(llm.request(prompt="hi")):
            pass
    upstream.push(Reply.sse(wire.stream_events(["Hel"], end=False)))
    with pytest.raises(StreamInterruptedError):
        async for _ in llm.stream(llm.request(prompt="hi")):
            pass


async def test_what_the_api_lacks_is_reported(upstream: FakeUpstream, llm: LLMManager) -> None:
    upstream.push(Reply.json(wire.response([wire.message_item("ok")])))
    resp = await _answer(llm, prompt="hi", seed=7, stop=["END"], presence_penalty=0.5)
    assert resp.metadata.dropped_params == ["seed", "stop", "presence_penalty"]
    assert not {"seed", "stop", "presence_penalty"} & set(upstream.requests[0].json)


def test_the_fake_speaks_what_the_sdk_reads() -> None:
    SDKResponse.model_validate(wire.response([wire.message_item("x"), wire.call_item("f", "{}")]))
    events = TypeAdapter(SDKEvent)
    for raw in wire.stream_events(["a"], call=("f", ["{}"])) + wire.failed_events("server_error", "x"):
        events.validate_python(json.loads(raw.decode().split("data: ", 1)[1]))


@pytest.mark.parametrize(
    ("dep", "wrong"),
    [
        ({"provider": "anthropic", "model": "claude-sonnet-4-5", "api": "responses", "api_key": "k"}, "api"),
        ({"provider": "gemini", "model": "gemini-2.5-flash", "api": "chat", "api_key": "k"}, "api"),
    ],
)
def test_api_is_for_openai_deployments_only(dep: dict[str, Any], wrong: str) -> None:
    with pytest.raises(ConfigError, match=rf"models\.m\.{wrong}: only OpenAI"):
        load_settings({"models": {"m": dep}}, env={})


def test_streamed_reasoning_and_its_signature() -> None:
    from llm_manager._sse import SSEEvent
    from llm_manager.codecs.openai_responses.egress import StreamDecoder

    decoder = StreamDecoder({})
    delta = {"type": "response.reasoning_summary_text.delta", "delta": "thinking"}
    final = wire.response([{"id": "rs_1", "type": "reasoning", "summary": [], "encrypted_content": "sig"}])
    chunks = [
        decoder.decode(SSEEvent(event=e["type"], data=json.dumps(e)))
        for e in (delta, {"type": "response.completed", "response": final})
    ]
    assert chunks[0] is not None and chunks[0].reasoning == "thinking"
    assert chunks[1] is not None and chunks[1].reasoning_signature == "sig" and chunks[1].finish_reason == "stop"
    assert decoder.finished
