"""Tool calling through each wire protocol: what is sent, what comes back, whole and streamed.

The tool-call payloads below are checked against the official SDKs' types first, so the adapters are tested
against the shapes the providers really send."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from contextlib import aclosing
from typing import Any

import pytest
from anthropic.types import Message as AnthropicMessage
from anthropic.types import RawMessageStreamEvent
from google.genai import types as genai_types
from openai.types.chat import ChatCompletion, ChatCompletionChunk
from pydantic import TypeAdapter

from llm_manager._http import HttpClient
from llm_manager.codecs.base import Accumulator
from llm_manager.providers.anthropic import AnthropicAdapter
from llm_manager.providers.base import Chunk, Endpoint
from llm_manager.providers.gemini import GeminiAdapter
from llm_manager.providers.openai_chat import OpenAIChatAdapter
from llm_manager.types import Request, ToolCall
from tests.fakes import anthropic_wire, gemini_wire, openai_wire
from tests.fakes.server import FakeUpstream, Reply

WEATHER = {
    "name": "get_weather",
    "description": "Current weather for a city",
    "parameters": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]},
}
HISTORY = [
    {"role": "user", "content": "Weather in Oslo and Rome?"},
    {
        "role": "assistant",
        "content": "",
        "tool_calls": [
            {"id": "call_1", "name": "get_weather", "arguments": '{"city": "Oslo"}'},
            {"id": "call_2", "name": "get_weather", "arguments": '{"city": "Rome"}'},
        ],
    },
    {"role": "tool", "tool_call_id": "call_1", "content": '{"temp_c": -3}'},
    {"role": "tool", "tool_call_id": "call_2", "content": "sunny"},
]


def tool_request(**kw: Any) -> Request:
    kw.setdefault("messages", [{"role": "user", "content": "Weather in Oslo?"}])
    return Request(tools=[WEATHER], **kw)


async def collect(chunks: AsyncIterator[Chunk]) -> Accumulator:
    acc = Accumulator()
    async with aclosing(chunks) as it:
        async for chunk in it:
            acc.add(chunk)
    return acc


# --- OpenAI ----------------------------------------------------------------------------------------------------


def openai_tool_completion() -> dict[str, Any]:
    body = openai_wire.completion("", finish_reason="tool_calls")
    body["choices"][0]["message"] = {
        "role": "assistant",
        "content": None,
        "refusal": None,
        "tool_calls": [
            {"id": "call_a", "type": "function", "function": {"name": "get_weather", "arguments": '{"city":"Oslo"}'}}
        ],
    }
    return body


def openai_tool_stream() -> list[bytes]:
    def chunk(delta: dict[str, Any], finish: str | None = None) -> bytes:
        return openai_wire.sse(openai_wire.chunk(id="chatcmpl-t", model="gpt-4o", delta=delta, finish_reason=finish))

    call = {"index": 0, "id": "call_a", "type": "function", "function": {"name": "get_weather", "arguments": ""}}
    return [
        chunk({"role": "assistant", "content": None, "tool_calls": [call]}),
        chunk({"tool_calls": [{"index": 0, "function": {"arguments": '{"ci'}}]}),
        chunk({"tool_calls": [{"index": 0, "function": {"arguments": 'ty":"Oslo"}'}}]}),
        chunk({}, "tool_calls"),
        b"data: [DONE]\n\n",
    ]


def test_openai_tool_payloads_validate_as_sdk_types() -> None:
    parsed = ChatCompletion.model_validate(openai_tool_completion())
    assert parsed.choices[0].message.tool_calls is not None
    for event in openai_tool_stream()[:-1]:
        ChatCompletionChunk.model_validate(json.loads(event[len(b"data: ") : -2]))


def openai(upstream: FakeUpstream, http: HttpClient) -> OpenAIChatAdapter:
    return OpenAIChatAdapter(Endpoint(name="gpt", provider="openai", model="gpt-4o", base_url=upstream.url), http)


async def test_openai_sends_tools_and_history(upstream: FakeUpstream, http: HttpClient) -> None:
    upstream.push(Reply.json(openai_tool_completion()))
    request = Request(messages=HISTORY, tools=[WEATHER], tool_choice={"name": "get_weather"}, parallel_tool_calls=False)

    out = await openai(upstream, http).complete(request, api_key="k")

    sent = upstream.requests[0].json
    assert sent["tools"] == [{"type": "function", "function": WEATHER}]
    assert sent["tool_choice"] == {"type": "function", "function": {"name": "get_weather"}}
    assert sent["parallel_tool_calls"] is False
    assert sent["messages"][1] == {
        "role": "assistant",
        "content": None,
        "tool_calls": [
            {"id": "call_1", "type": "function", "function": {"name": "get_weather", "arguments": '{"city": "Oslo"}'}},
            {"id": "call_2", "type": "function", "function": {"name": "get_weather", "arguments": '{"city": "Rome"}'}},
        ],
    }
    assert sent["messages"][2] == {"role": "tool", "tool_call_id": "call_1", "content": '{"temp_c": -3}'}
    assert out.finish_reason == "tool_calls" and out.text == ""
    assert out.tool_calls == [ToolCall(id="call_a", name="get_weather", arguments='{"city":"Oslo"}')]


async def test_openai_streams_tool_calls(upstream: FakeUpstream, http: HttpClient) -> None:
    upstream.push(Reply.sse(openai_tool_stream()))
    acc = await collect(openai(upstream, http).stream(tool_request(), api_key="k"))
    done = acc.done()
    assert done.finish_reason == "tool_calls"
    assert done.tool_calls == [ToolCall(id="call_a", name="get_weather", arguments='{"city":"Oslo"}')]


# --- Anthropic -------------------------------------------------------------------------------------------------


def anthropic_tool_message() -> dict[str, Any]:
    body = anthropic_wire.message("Let me check.", stop_reason="tool_use")
    body["content"].append({"type": "tool_use", "id": "toolu_1", "name": "get_weather", "input": {"city": "Oslo"}})
    return body


def anthropic_tool_stream() -> list[bytes]:
    events = anthropic_wire.stream_events(["Let me check."], stop_reason="tool_use")
    sse = anthropic_wire.sse
    block = {"type": "tool_use", "id": "toolu_1", "name": "get_weather", "input": {}}
    tool = [
        sse("content_block_start", {"type": "content_block_start", "index": 1, "content_block": block}),
        sse(
            "content_block_delta",
            {"type": "content_block_delta", "index": 1, "delta": {"type": "input_json_delta", "partial_json": ""}},
        ),
        sse(
            "content_block_delta",
            {"type": "content_block_delta", "index": 1, "delta": {"type": "input_json_delta", "partial_json": '{"ci'}},
        ),
        sse(
            "content_block_delta",
            {
                "type": "content_block_delta",
                "index": 1,
                "delta": {"type": "input_json_delta", "partial_json": 'ty": "Oslo"}'},
            },
        ),
        sse("content_block_stop", {"type": "content_block_stop", "index": 1}),
    ]
    # The tool block follows the text block.
    cut = next(i for i, e in enumerate(events) if b"content_block_stop" in e) + 1
    return events[:cut] + tool + events[cut:]


def test_anthropic_tool_payloads_validate_as_sdk_types() -> None:
    AnthropicMessage.model_validate(anthropic_tool_message())
    adapter = TypeAdapter(RawMessageStreamEvent)
    for event in anthropic_tool_stream():
        payload = json.loads(event.split(b"data: ", 1)[1])
        if payload["type"] != "ping":  # the SDK's union leaves pings out
            adapter.validate_python(payload)


def anthropic(upstream: FakeUpstream, http: HttpClient) -> AnthropicAdapter:
    endpoint = Endpoint(name="claude", provider="anthropic", model="claude-sonnet-4-5", base_url=upstream.url)
    return AnthropicAdapter(endpoint, http)


@pytest.mark.parametrize(
    ("choice", "parallel", "wire"),
    [
        ("auto", None, {"type": "auto"}),
        ("required", None, {"type": "any"}),
        ("none", None, {"type": "none"}),
        ({"name": "get_weather"}, None, {"type": "tool", "name": "get_weather"}),
        (None, False, {"type": "auto", "disable_parallel_tool_use": True}),
    ],
)
async def test_anthropic_translates_tools(
    upstream: FakeUpstream, http: HttpClient, choice: Any, parallel: bool | None, wire: dict[str, Any]
) -> None:
    upstream.push(Reply.json(anthropic_tool_message()))
    request = Request(messages=HISTORY, tools=[WEATHER], tool_choice=choice, parallel_tool_calls=parallel)

    out = await anthropic(upstream, http).complete(request, api_key="k")

    sent = upstream.requests[0].json
    assert sent["tools"] == [
        {"name": "get_weather", "description": WEATHER["description"], "input_schema": WEATHER["parameters"]}
    ]
    assert sent["tool_choice"] == wire
    assert sent["messages"][1] == {
        "role": "assistant",
        "content": [
            {"type": "tool_use", "id": "call_1", "name": "get_weather", "input": {"city": "Oslo"}},
            {"type": "tool_use", "id": "call_2", "name": "get_weather", "input": {"city": "Rome"}},
        ],
    }
    # Both results travel in one user turn, as the API requires.
    assert sent["messages"][2] == {
        "role": "user",
        "content": [
            {"type": "tool_result", "tool_use_id": "call_1", "content": '{"temp_c": -3}'},
            {"type": "tool_result", "tool_use_id": "call_2", "content": "sunny"},
        ],
    }
    assert len(sent["messages"]) == 3
    assert out.text == "Let me check." and out.finish_reason == "tool_calls"
    assert out.tool_calls == [ToolCall(id="toolu_1", name="get_weather", arguments='{"city":"Oslo"}')]


async def test_anthropic_streams_tool_calls(upstream: FakeUpstream, http: HttpClient) -> None:
    upstream.push(Reply.sse(anthropic_tool_stream()))
    done = (await collect(anthropic(upstream, http).stream(tool_request(), api_key="k"))).done()
    assert done.text == "Let me check." and done.finish_reason == "tool_calls"
    assert done.tool_calls == [ToolCall(id="toolu_1", name="get_weather", arguments='{"city": "Oslo"}')]


async def test_anthropic_tools_and_schema_keep_both(upstream: FakeUpstream, http: HttpClient) -> None:
    # Forcing the schema tool would forbid the caller's tools: the schema moves into the instructions instead.
    upstream.push(Reply.json(anthropic_wire.message('{"a": 1}')))
    request = tool_request(response_format={"json_schema": {"type": "object"}})
    await anthropic(upstream, http).complete(request, api_key="k")
    sent = upstream.requests[0].json
    assert [t["name"] for t in sent["tools"]] == ["get_weather"] and "tool_choice" not in sent
    assert "JSON" in sent["system"]


# --- Gemini ----------------------------------------------------------------------------------------------------


def gemini_call_response(call_id: str | None = None) -> dict[str, Any]:
    body = gemini_wire.response("")
    call: dict[str, Any] = {"name": "get_weather", "args": {"city": "Oslo"}}
    if call_id:
        call["id"] = call_id
    body["candidates"][0]["content"]["parts"] = [{"functionCall": call}]
    return body


def test_gemini_tool_payloads_validate_as_sdk_types() -> None:
    parsed = genai_types.GenerateContentResponse.model_validate(gemini_call_response("fc_1"))
    assert parsed.function_calls is not None and parsed.function_calls[0].name == "get_weather"


def gemini(upstream: FakeUpstream, http: HttpClient) -> GeminiAdapter:
    endpoint = Endpoint(name="gem", provider="gemini", model="gemini-2.5-flash", base_url=upstream.url)
    return GeminiAdapter(endpoint, http)


async def test_gemini_translates_tools(upstream: FakeUpstream, http: HttpClient) -> None:
    upstream.push(Reply.json(gemini_call_response()))
    request = Request(messages=HISTORY, tools=[WEATHER], tool_choice={"name": "get_weather"})

    out = await gemini(upstream, http).complete(request, api_key="k")

    sent = upstream.requests[0].json
    declaration = {
        "name": "get_weather",
        "description": WEATHER["description"],
        "parametersJsonSchema": WEATHER["parameters"],
    }
    assert sent["tools"] == [{"functionDeclarations": [declaration]}]
    assert sent["toolConfig"] == {"functionCallingConfig": {"mode": "ANY", "allowedFunctionNames": ["get_weather"]}}
    assert sent["contents"][1] == {
        "role": "model",
        "parts": [
            {"functionCall": {"id": "call_1", "name": "get_weather", "args": {"city": "Oslo"}}},
            {"functionCall": {"id": "call_2", "name": "get_weather", "args": {"city": "Rome"}}},
        ],
    }
    # Results go back by function name; a result that is not a JSON object is wrapped, as the API wants one.
    assert sent["contents"][2] == {
        "role": "user",
        "parts": [
            {"functionResponse": {"id": "call_1", "name": "get_weather", "response": {"temp_c": -3}}},
            {"functionResponse": {"id": "call_2", "name": "get_weather", "response": {"result": "sunny"}}},
        ],
    }
    assert out.finish_reason == "tool_calls"
    assert out.tool_calls == [ToolCall(id="call_0", name="get_weather", arguments='{"city":"Oslo"}')]


async def test_gemini_streams_tool_calls(upstream: FakeUpstream, http: HttpClient) -> None:
    first = gemini_wire.response("Checking.", finish_reason=None)
    upstream.push(Reply.sse([gemini_wire.sse_event(first), gemini_wire.sse_event(gemini_call_response("fc_9"))]))
    done = (await collect(gemini(upstream, http).stream(tool_request(), api_key="k"))).done()
    assert done.text == "Checking." and done.finish_reason == "tool_calls"
    assert done.tool_calls == [ToolCall(id="fc_9", name="get_weather", arguments='{"city":"Oslo"}')]
