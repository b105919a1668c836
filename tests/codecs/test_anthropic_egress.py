"""The Anthropic Messages codec, egress: images and documents as blocks, signed thinking sent back, extended thinking
from a reasoning effort within its rules, what the API has no field for reported; thinking and cache writes read
back; structured output streamed as it is answered whole."""

from __future__ import annotations

import base64
import json
from typing import Any

from llm_manager._http import HttpClient
from llm_manager.codecs.anthropic_messages.request import encode_request, unsupported
from llm_manager.profiles import ModelProfile
from llm_manager.providers.anthropic import AnthropicAdapter
from llm_manager.providers.base import Endpoint
from llm_manager.types import (
    FilePart,
    ImagePart,
    Message,
    Passthrough,
    Reasoning,
    ReasoningPart,
    Request,
    ResponseFormat,
    TextPart,
    Tool,
)
from tests.fakes import anthropic_wire as wire
from tests.fakes.server import FakeUpstream, Reply

PNG = b"\x89PNG\r\n\x1a\n" + b"\x01" * 8
CLAUDE = Endpoint(name="claude", provider="anthropic", model="claude-sonnet-4-5", profile=ModelProfile(reasoning=True))
HAIKU = Endpoint(name="haiku", provider="anthropic", model="claude-3-5-haiku", profile=ModelProfile())


def body(request: Request, target: Endpoint = CLAUDE) -> dict[str, Any]:
    return encode_request(request, target, stream=False)


def test_images_and_documents_become_blocks() -> None:
    content = (
        TextPart(text="What do these say?", cache_control={"type": "ephemeral"}),
        ImagePart.from_bytes(PNG),
        ImagePart(url="https://example.test/b.jpg"),
        ImagePart(url="data:image/png;base64," + base64.b64encode(PNG).decode()),
        FilePart.from_bytes(b"%PDF-1.4", filename="a.pdf"),
        FilePart.from_bytes(b"plain words", media_type="text/plain"),
    )
    blocks = body(Request(messages=[Message(role="user", content=content)]))["messages"][0]["content"]
    b64 = base64.b64encode(PNG).decode()
    assert blocks[0] == {"type": "text", "text": "What do these say?", "cache_control": {"type": "ephemeral"}}
    assert blocks[1] == {"type": "image", "source": {"type": "base64", "media_type": "image/png", "data": b64}}
    assert blocks[2] == {"type": "image", "source": {"type": "url", "url": "https://example.test/b.jpg"}}
    assert blocks[3] == blocks[1]  # a data: URL is sent as the bytes it holds
    assert blocks[4] == {
        "type": "document",
        "source": {"type": "base64", "media_type": "application/pdf", "data": base64.b64encode(b"%PDF-1.4").decode()},
        "title": "a.pdf",
    }
    assert blocks[5]["source"] == {"type": "text", "media_type": "text/plain", "data": "plain words"}


def test_signed_thinking_goes_back_first_and_unsigned_reasoning_does_not() -> None:
    history = [
        Message(role="user", content="Weather?"),
        Message(
            role="assistant",
            content=(TextPart(text="Let me check."), ReasoningPart(text="need a tool", signature="sig==")),
            tool_calls=({"id": "toolu_1", "name": "weather", "arguments": "{}"},),
        ),
        Message(role="tool", tool_call_id="toolu_1", content="sunny"),
        Message(role="assistant", content=(ReasoningPart(text="unsigned"), TextPart(text="Sunny."))),
        Message(role="user", content="Thanks"),
    ]
    turns = body(Request(messages=history, tools=[Tool(name="weather")]))["messages"]
    assert [b["type"] for b in turns[1]["content"]] == ["thinking", "text", "tool_use"]
    assert turns[1]["content"][0] == {"type": "thinking", "thinking": "need a tool", "signature": "sig=="}
    assert turns[3]["content"] == [{"type": "text", "text": "Sunny."}]


def test_reasoning_effort_becomes_a_thinking_budget_within_max_tokens() -> None:
    sent = body(Request(prompt="Hi", max_tokens=4000, reasoning=Reasoning(effort="medium")))
    assert sent["thinking"] == {"type": "enabled", "budget_tokens": 3999}  # the budget counts within max_tokens
    sent = body(Request(prompt="Hi", max_tokens=30000, reasoning=Reasoning(effort="low")))
    assert sent["thinking"] == {"type": "enabled", "budget_tokens": 2048}
    assert "thinking" not in body(Request(prompt="Hi", reasoning=Reasoning(effort="none")))


def test_thinking_rules_are_kept_and_what_breaks_them_reported() -> None:
    request = Request(
        prompt="Hi", max_tokens=8000, reasoning=Reasoning(budget_tokens=2000), temperature=0.2, top_p=0.99, top_k=5
    )
    sent = body(request)
    assert sent["thinking"]["budget_tokens"] == 2000 and sent["top_p"] == 0.99
    assert "temperature" not in sent and "top_k" not in sent
    assert unsupported(request, CLAUDE).names == ["temperature", "top_k"]
    too_small = Request(prompt="Hi", max_tokens=500, reasoning=Reasoning(effort="high"))
    assert "thinking" not in body(too_small) and unsupported(too_small, CLAUDE).names == ["reasoning"]
    forced = Request(
        prompt="Hi", reasoning=Reasoning(effort="high"), response_format=ResponseFormat(json_schema={"type": "object"})
    )
    assert "thinking" not in body(forced) and "forces a tool" in unsupported(forced, CLAUDE).warnings("c")[0]
    assert unsupported(Request(prompt="Hi", reasoning=Reasoning(effort="low")), HAIKU).names == ["reasoning"]


def test_what_the_messages_api_has_no_field_for_is_reported() -> None:
    request = Request(
        prompt="Hi", seed=1, frequency_penalty=0.1, presence_penalty=0.1, logprobs=True, service_tier="flex", top_k=3
    )
    sent = body(request)
    assert sent["top_k"] == 3 and not {"seed", "frequency_penalty", "presence_penalty", "logprobs"} & sent.keys()
    assert unsupported(request, CLAUDE).names == [
        "service_tier",
        "seed",
        "frequency_penalty",
        "presence_penalty",
        "logprobs",
    ]
    assert body(Request(prompt="Hi", service_tier="default"))["service_tier"] == "standard_only"


def test_json_mode_forces_a_tool_taking_any_object_and_passthrough_reaches_anthropic() -> None:
    sent = body(
        Request(
            prompt="Hi",
            response_format=ResponseFormat(type="json_object"),
            passthrough=Passthrough(
                protocol="anthropic_messages",
                fields={
                    "container": "c1",
                    "system": [{"type": "text", "text": "S", "cache_control": {"type": "ephemeral"}}],
                },
            ),
        )
    )
    assert sent["tools"][0]["input_schema"] == {"type": "object"} and sent["tool_choice"]["type"] == "tool"
    assert sent["container"] == "c1" and sent["system"][0]["cache_control"] == {"type": "ephemeral"}


def test_tool_cache_breakpoints_reach_anthropic() -> None:
    tool = Tool(name="lookup", cache_control={"type": "ephemeral"})
    assert body(Request(prompt="Hi", tools=[tool]))["tools"][0]["cache_control"] == {"type": "ephemeral"}


# --- answers, over the wire --------------------------------------------------------------------------------------


def adapter(upstream: FakeUpstream, http: HttpClient) -> AnthropicAdapter:
    endpoint = Endpoint(name="claude", provider="anthropic", model="claude-sonnet-4-5", base_url=upstream.url)
    return AnthropicAdapter(endpoint, http)


async def test_thinking_and_cache_writes_of_a_whole_answer(upstream: FakeUpstream, http: HttpClient) -> None:
    answer = wire.message("Hello", input_tokens=10, cache_read_input_tokens=100, cache_creation_input_tokens=1000)
    answer["content"].insert(0, {"type": "thinking", "thinking": "greet back", "signature": "c2ln"})
    upstream.push(Reply.json(answer))
    got = await adapter(upstream, http).complete(Request(prompt="Hi"), api_key="k")
    assert (got.text, got.reasoning, got.reasoning_signature) == ("Hello", "greet back", "c2ln")
    assert (got.prompt_tokens, got.cached_tokens, got.cache_write_tokens) == (1110, 100, 1000)


def forced_tool_stream(text_first: str) -> list[bytes]:
    """A structured answer the way Anthropic sometimes streams it: a text block before the forced tool's block."""
    start = wire.message("", stop_reason=None)
    text = {"type": "content_block_delta", "index": 0, "delta": {"type": "text_delta", "text": text_first}}
    tool = {"type": "tool_use", "id": "toolu_1", "name": "response", "input": {}}
    args = [{"type": "input_json_delta", "partial_json": p} for p in ('{"a": ', "1}")]
    return [
        wire.sse("message_start", {"type": "message_start", "message": start}),
        wire.sse(
            "content_block_start",
            {"type": "content_block_start", "index": 0, "content_block": {"type": "text", "text": ""}},
        ),
        wire.sse("content_block_delta", text),
        wire.sse("content_block_stop", {"type": "content_block_stop", "index": 0}),
        wire.sse("content_block_start", {"type": "content_block_start", "index": 1, "content_block": tool}),
        *(wire.sse("content_block_delta", {"type": "content_block_delta", "index": 1, "delta": d}) for d in args),
        wire.sse("content_block_stop", {"type": "content_block_stop", "index": 1}),
        wire.sse(
            "message_delta",
            {"type": "message_delta", "delta": {"stop_reason": "tool_use"}, "usage": {"output_tokens": 9}},
        ),
        wire.sse("message_stop", {"type": "message_stop"}),
    ]


async def test_structured_output_streams_as_it_is_answered_whole(upstream: FakeUpstream, http: HttpClient) -> None:
    schema = ResponseFormat(json_schema={"type": "object", "properties": {"a": {"type": "integer"}}})
    upstream.push(Reply.sse(forced_tool_stream("Here is the JSON:")))
    chunks = [
        c async for c in adapter(upstream, http).stream(Request(prompt="a?", response_format=schema), api_key="k")
    ]
    assert json.loads("".join(c.text for c in chunks)) == {"a": 1}  # the text block before the tool is not the answer
    assert chunks[-1].finish_reason == "stop"
