"""Tool calling through the manager: requests validate, simulated models call tools with schema-valid
arguments, streams carry the calls in pieces, and tool answers are not served from the cache."""

from __future__ import annotations

import json
from typing import Any

import jsonschema
import pytest

from llm_manager import LLMManager
from llm_manager.errors import ConfigError
from llm_manager.types import Request, ToolCall
from tests.helpers import sim_settings

WEATHER = {
    "name": "get_weather",
    "parameters": {
        "type": "object",
        "properties": {"city": {"type": "string"}, "unit": {"enum": ["c", "f"]}},
        "required": ["city", "unit"],
    },
}
CLOCK = {"name": "get_time", "parameters": {"type": "object", "properties": {"tz": {"type": "string"}}}}


@pytest.fixture
async def llm() -> Any:
    manager = LLMManager(sim_settings({"sim": {"family": "gpt"}}, cache={"enabled": True}))
    yield manager
    await manager.aclose()


@pytest.mark.parametrize(
    ("bad", "message"),
    [
        ({"tool_choice": "required"}, "tool_choice needs tools"),
        ({"tools": [WEATHER], "tool_choice": {"name": "nope"}}, "not among the tools"),
        ({"tools": [{"name": "bad name"}]}, "tools"),
        ({"messages": [{"role": "tool", "content": "x"}]}, "tool_call_id"),
        ({"messages": [{"role": "user", "content": "x", "tool_calls": [{"id": "a", "name": "f"}]}]}, "tool_calls"),
    ],
)
def test_invalid_tool_requests_are_refused(bad: dict[str, Any], message: str) -> None:
    fields: dict[str, Any] = {"messages": [{"role": "user", "content": "hi"}], **bad}
    with pytest.raises(ValueError, match=message):
        Request(**fields)


async def test_llm_request_names_the_tool_field(llm: LLMManager) -> None:
    with pytest.raises(ConfigError, match="tool_choice"):
        llm.request(prompt="hi", tool_choice="required")


async def test_forced_tool_call_has_schema_valid_arguments(llm: LLMManager) -> None:
    resp = await llm.generate(prompt="what now?", tools=[WEATHER, CLOCK], tool_choice={"name": "get_weather"})
    assert resp.finish_reason == "tool_calls" and resp.content == ""
    (call,) = resp.tool_calls
    assert call.name == "get_weather" and call.id
    jsonschema.validate(json.loads(call.arguments), WEATHER["parameters"])
    assert resp.usage.completion_tokens >= 1


async def test_auto_calls_the_tool_the_prompt_names_and_answers_text_after_a_result(llm: LLMManager) -> None:
    plain = await llm.generate(prompt="hello there", tools=[WEATHER])
    assert plain.tool_calls == [] and plain.finish_reason == "stop" and plain.content

    first = await llm.generate(prompt="use get_time please", tools=[WEATHER, CLOCK], tool_choice="auto")
    (call,) = first.tool_calls
    assert call.name == "get_time"

    history: list[dict[str, Any]] = [
        {"role": "user", "content": "use get_time please"},
        {"role": "assistant", "content": "", "tool_calls": [call.model_dump()]},
        {"role": "tool", "tool_call_id": call.id, "content": "12:00"},
    ]
    final = await llm.generate(messages=history, tools=[WEATHER, CLOCK])
    assert final.tool_calls == [] and final.finish_reason == "stop" and final.content


async def test_none_forbids_calls(llm: LLMManager) -> None:
    resp = await llm.generate(prompt="use get_time", tools=[CLOCK], tool_choice="none")
    assert resp.tool_calls == []


async def test_stream_carries_tool_call_pieces(llm: LLMManager) -> None:
    events = [e async for e in llm.stream(prompt="call it", tools=[WEATHER], tool_choice="required")]
    pieces = [e.tool_call for e in events if e.tool_call is not None]
    assert pieces[0].id and pieces[0].name == "get_weather" and pieces[0].arguments == ""
    assert len(pieces) > 2  # the arguments arrive in several pieces
    done = events[-1].response
    assert done is not None and done.finish_reason == "tool_calls"
    (call,) = done.tool_calls
    assert call == ToolCall(id=pieces[0].id, name="get_weather", arguments="".join(p.arguments for p in pieces))
    jsonschema.validate(json.loads(call.arguments), WEATHER["parameters"])


async def test_tool_answers_are_not_cached_and_tools_are_part_of_the_key(llm: LLMManager) -> None:
    a = await llm.generate(prompt="use get_time", tools=[CLOCK])
    b = await llm.generate(prompt="use get_time", tools=[CLOCK])
    assert not b.metadata.cached and a.tool_calls and b.tool_calls

    text = await llm.generate(prompt="plain question")
    with_tools = await llm.generate(prompt="plain question", tools=[CLOCK])
    assert not with_tools.metadata.cached  # same prompt, different tools: a different question
    again = await llm.generate(prompt="plain question")
    assert again.metadata.cached and again.content == text.content
