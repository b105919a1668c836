"""Structured output over each wire protocol: what is sent, and what comes back, through query_with_schema."""

from __future__ import annotations

import json
from typing import Any

from pydantic import BaseModel

from llm_manager import LLMManager
from llm_manager.config import load_settings
from tests.fakes import anthropic_wire, gemini_wire, openai_wire
from tests.fakes.server import FakeUpstream, Reply


class Incident(BaseModel):
    service: str
    severity: str
    code: int | None = None


ANSWER = {"service": "auth", "severity": "high", "code": 500}


def one(provider: str, url: str, **extra: Any) -> Any:
    base = {"openai-compatible": f"{url}/v1", "anthropic": url, "gemini": f"{url}/v1beta"}[provider]
    model = {"openai-compatible": "gpt-4o", "anthropic": "claude-sonnet-4-5", "gemini": "gemini-2.5-flash"}[provider]
    spec = {"provider": provider, "base_url": base, "model": model, "api_key": "k", **extra}
    return load_settings({"models": {"m": spec}, "cache": {"enabled": False}}, env={})


async def test_openai_gets_a_strict_json_schema() -> None:
    async with FakeUpstream() as up:
        up.push(Reply.json(openai_wire.completion(json.dumps(ANSWER))))
        async with LLMManager(one("openai-compatible", up.url)) as llm:
            value = await llm.query_with_schema("what broke?", Incident)
        fmt = up.requests[0].json["response_format"]
    assert value == Incident(**ANSWER)
    assert fmt["type"] == "json_schema" and fmt["json_schema"]["name"] == "Incident" and fmt["json_schema"]["strict"]
    schema = fmt["json_schema"]["schema"]
    assert schema["additionalProperties"] is False and set(schema["required"]) == {"service", "severity", "code"}


async def test_json_object_mode_puts_the_schema_in_the_prompt() -> None:
    async with FakeUpstream() as up:
        up.push(Reply.json(openai_wire.completion("Here:\n```json\n" + json.dumps(ANSWER) + "\n```")))
        async with LLMManager(one("openai-compatible", up.url, structured_output="json_object")) as llm:
            value = await llm.query_with_schema("what broke?", Incident)
        body = up.requests[0].json
    assert value == Incident(**ANSWER)
    assert body["response_format"] == {"type": "json_object"}
    assert "severity" in body["messages"][0]["content"] and body["messages"][0]["role"] == "system"


async def test_anthropic_forces_a_tool_and_reads_its_input() -> None:
    reply = anthropic_wire.message("")
    reply["content"] = [{"type": "tool_use", "id": "toolu_1", "name": "Incident", "input": ANSWER}]
    reply["stop_reason"] = "tool_use"
    async with FakeUpstream() as up:
        up.push(Reply.json(reply))
        async with LLMManager(one("anthropic", up.url)) as llm:
            result = await llm.query_with_schema("what broke?", Incident, full=True)
        body = up.requests[0].json
    assert result.value == Incident(**ANSWER) and result.response.finish_reason == "stop"
    assert body["tool_choice"] == {"type": "tool", "name": "Incident"}
    assert body["tools"][0]["input_schema"]["properties"]["service"]["type"] == "string"


async def test_anthropic_streams_the_tool_input_as_partial_json() -> None:
    pieces = ['{"service": "au', 'th", "severity"', ': "high", "code": 500}']
    events = [
        anthropic_wire.sse(
            "message_start",
            {
                "type": "message_start",
                "message": {
                    "id": "msg_1",
                    "type": "message",
                    "role": "assistant",
                    "model": "claude-sonnet-4-5",
                    "content": [],
                    "stop_reason": None,
                    "stop_sequence": None,
                    "usage": {"input_tokens": 9, "output_tokens": 1},
                },
            },
        ),
        anthropic_wire.sse(
            "content_block_start",
            {
                "type": "content_block_start",
                "index": 0,
                "content_block": {"type": "tool_use", "id": "toolu_1", "name": "Incident", "input": {}},
            },
        ),
    ]
    events += [
        anthropic_wire.sse(
            "content_block_delta",
            {"type": "content_block_delta", "index": 0, "delta": {"type": "input_json_delta", "partial_json": p}},
        )
        for p in pieces
    ]
    events += anthropic_wire.stream_end(0, "tool_use", 20)
    async with FakeUpstream() as up:
        up.push(Reply.sse(events))
        async with LLMManager(one("anthropic", up.url)) as llm:
            items = [item async for item in llm.stream_with_schema("what broke?", Incident)]
    assert items[-1] == Incident(**ANSWER) and len(items) >= 2


async def test_gemini_gets_a_response_json_schema() -> None:
    async with FakeUpstream() as up:
        up.push(Reply.json(gemini_wire.response(json.dumps(ANSWER))))
        async with LLMManager(one("gemini", up.url)) as llm:
            value = await llm.query_with_schema("what broke?", Incident)
        config = up.requests[0].json["generationConfig"]
    assert value == Incident(**ANSWER)
    assert config["responseMimeType"] == "application/json" and config["responseJsonSchema"]["title"] == "Incident"


async def test_reask_over_http_sends_the_bad_answer_and_the_errors() -> None:
    async with FakeUpstream() as up:
        up.push(
            Reply.json(openai_wire.completion('{"service": "auth"}')),
            Reply.json(openai_wire.completion(json.dumps(ANSWER))),
        )
        async with LLMManager(one("openai-compatible", up.url)) as llm:
            result = await llm.query_with_schema("what broke?", Incident, full=True)
        second = up.requests[1].json["messages"]
    assert result.value == Incident(**ANSWER) and len(result.tries) == 1
    assert second[-2] == {"role": "assistant", "content": '{"service": "auth"}'}
    assert "severity" in second[-1]["content"] and second[-1]["role"] == "user"
