"""Tool calling through the gateway with the official ``openai`` SDK: whole and streamed calls, a full
call → result → answer round trip, and bad tool fields refused with the field named."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import jsonschema
import openai
import pytest
from openai.types.chat import ChatCompletionMessageParam, ChatCompletionToolParam

from tests.server.conftest import Gateway

WEATHER: ChatCompletionToolParam = {
    "type": "function",
    "function": {
        "name": "get_weather",
        "description": "Current weather for a city",
        "parameters": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]},
    },
}
ASK: list[ChatCompletionMessageParam] = [{"role": "user", "content": "What is the weather? use get_weather"}]


@pytest.fixture
def client(gateway: Gateway) -> Iterator[openai.OpenAI]:
    with openai.OpenAI(base_url=f"{gateway.url}/v1", api_key="x", max_retries=0, timeout=10) as c:
        yield c


def test_tool_call_round_trip(client: openai.OpenAI, gateway: Gateway) -> None:
    first = client.chat.completions.create(model="gpt", messages=ASK, tools=[WEATHER], tool_choice="required")
    choice = first.choices[0]
    assert choice.finish_reason == "tool_calls" and choice.message.content is None
    (call,) = choice.message.tool_calls or []
    assert call.type == "function" and call.function.name == "get_weather"
    jsonschema.validate(json.loads(call.function.arguments), WEATHER["function"]["parameters"])

    history: list[ChatCompletionMessageParam] = [
        *ASK,
        {
            "role": "assistant",
            "content": None,
            "tool_calls": [
                {
                    "id": call.id,
                    "type": "function",
                    "function": {"name": "get_weather", "arguments": call.function.arguments},
                }
            ],
        },
        {"role": "tool", "tool_call_id": call.id, "content": '{"temp_c": 21}'},
    ]
    final = client.chat.completions.create(model="gpt", messages=history, tools=[WEATHER])
    assert final.choices[0].finish_reason == "stop" and final.choices[0].message.content
    # The model received the whole exchange, tool call and result included.
    sent = gateway.llm.adapter("gpt").requests[-1]  # type: ignore[attr-defined]
    assert sent.messages[1].tool_calls[0].id == call.id and sent.messages[2].tool_call_id == call.id
    assert [t.name for t in sent.tools] == ["get_weather"]


def test_streamed_tool_call_assembles_in_the_sdk(client: openai.OpenAI) -> None:
    with client.chat.completions.stream(
        model="gpt",
        messages=ASK,
        tools=[WEATHER],
        tool_choice={"type": "function", "function": {"name": "get_weather"}},
    ) as stream:
        events = list(stream)
        final = stream.get_final_completion()
    assert any(e.type == "tool_calls.function.arguments.delta" for e in events)
    (call,) = final.choices[0].message.tool_calls or []
    assert final.choices[0].finish_reason == "tool_calls"
    assert call.function.name == "get_weather" and call.id
    jsonschema.validate(json.loads(call.function.arguments), WEATHER["function"]["parameters"])


@pytest.mark.parametrize(
    ("extra", "param"),
    [
        ({"tools": [{"type": "function", "function": {"name": "has space"}}]}, "tools[0].function"),
        ({"tools": "nope"}, "tools"),
        ({"tools": [WEATHER], "tool_choice": "sometimes"}, "tool_choice"),
        ({"tool_choice": "required"}, "tool_choice"),
        ({"tools": [WEATHER], "parallel_tool_calls": "yes"}, "parallel_tool_calls"),
    ],
)
def test_bad_tool_fields_get_400_naming_the_field(client: openai.OpenAI, extra: dict[str, Any], param: str) -> None:
    with pytest.raises(openai.BadRequestError) as info:
        client.chat.completions.create(model="gpt", messages=ASK, extra_body=extra)
    assert info.value.param == param


def test_tool_message_without_id_is_refused(client: openai.OpenAI) -> None:
    bad: Any = [*ASK, {"role": "tool", "content": "x"}]
    with pytest.raises(openai.BadRequestError) as info:
        client.chat.completions.create(model="gpt", messages=bad)
    assert info.value.param == "messages[1].tool_call_id"


def test_n_above_one_is_answered_not_ignored(client: openai.OpenAI) -> None:
    assert len(client.chat.completions.create(model="gpt", messages=ASK, n=2).choices) == 2
    with pytest.raises(openai.BadRequestError) as info:  # several streams in one: refused, not half served
        client.chat.completions.create(model="gpt", messages=ASK, n=2, stream=True)
    assert info.value.param == "n"
    assert client.chat.completions.create(model="gpt", messages=ASK, n=1).choices[0].message.content


def test_a_stream_says_how_many_attempts_it_took(client: openai.OpenAI, gateway: Gateway) -> None:
    gateway.script("gpt", "503")
    with client.chat.completions.with_streaming_response.create(
        model="gpt", messages=ASK, stream=True, extra_headers={"x-llm-task": "general"}
    ) as raw:
        assert raw.headers["x-llm-attempts"] == "2" and raw.headers["x-llm-model"] == "claude"
        assert any(chunk.choices and chunk.choices[0].delta.content for chunk in raw.parse())


@pytest.mark.parametrize(("field", "value"), [("max_tokens", True), ("temperature", "hot"), ("top_p", [1])])
def test_numbers_must_be_numbers(client: openai.OpenAI, field: str, value: Any) -> None:
    with pytest.raises(openai.BadRequestError) as info:
        client.chat.completions.create(model="gpt", messages=ASK, extra_body={field: value})
    assert info.value.param == field
