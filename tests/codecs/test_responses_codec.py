"""The Responses codec: a client's input items as canonical messages and fields, and the response objects and events
we emit held to the official ``openai`` SDK's types (validated, not merely constructed) and to our own wire models
(which generate the OpenAPI document)."""

from __future__ import annotations

import base64
import json
from decimal import Decimal
from typing import Any

import pytest
from openai.types.responses import Response as SDKResponse
from openai.types.responses import ResponseStreamEvent as SDKEvent
from pydantic import TypeAdapter

from llm_manager.codecs.base import WireError
from llm_manager.codecs.openai_responses import wire
from llm_manager.codecs.openai_responses.request import decode_request, messages_from_items
from llm_manager.codecs.openai_responses.response import Echo, response_object
from llm_manager.codecs.openai_responses.stream import ResponseEvents
from llm_manager.types import Message, Response, ResponseMetadata, TokenLogprob, ToolCall, ToolCallDelta, Usage

PNG = b"\x89PNG\r\n\x1a\n0000"
EVENTS: TypeAdapter[Any] = TypeAdapter(SDKEvent)


def _resp(**fields: Any) -> Response:
    base: dict[str, Any] = {
        "id": "req_1",
        "content": "Hi.",
        "model": "gpt-4o-mini",
        "deployment": "gpt",
        "provider": "openai",
        "finish_reason": "stop",
        "usage": Usage(prompt_tokens=10, completion_tokens=3, total_tokens=13, cached_tokens=2, cost=Decimal("0.1")),
        "metadata": ResponseMetadata(request_id="req_1", latency_ms=1.0),
    }
    return Response(**{**base, **fields})


def _echo(**body: Any) -> Echo:
    return Echo(decode_request({"model": "gpt", "input": "hi", **body}).wire, True)


def test_items_become_canonical_turns() -> None:
    items = decode_request(
        {
            "model": "gpt",
            "input": [
                {"role": "developer", "content": "Be brief."},
                {
                    "type": "message",
                    "role": "user",
                    "content": [
                        {"type": "input_text", "text": "Look:"},
                        {"type": "input_image", "image_url": "data:image/png;base64," + base64.b64encode(PNG).decode()},
                        {
                            "type": "input_file",
                            "file_data": "data:application/pdf;base64,JVBERi0=",
                            "filename": "a.pdf",
                        },
                        {"type": "input_audio", "input_audio": {"data": "UklGRg==", "format": "wav"}},
                    ],
                },
                {
                    "type": "reasoning",
                    "id": "rs_1",
                    "summary": [{"type": "summary_text", "text": "hmm"}],
                    "encrypted_content": "sig",
                },
                {"role": "assistant", "content": [{"type": "output_text", "text": "Calling.", "annotations": []}]},
                {"type": "function_call", "call_id": "c1", "name": "f", "arguments": "{}"},
                {"type": "function_call", "call_id": "c2", "name": "g", "arguments": "{}", "status": "completed"},
                {"type": "function_call_output", "call_id": "c1", "output": "one"},
                {"type": "function_call_output", "call_id": "c2", "output": [{"type": "input_text", "text": "two"}]},
            ],
        }
    ).items
    messages = [Message.model_validate(m) for m in messages_from_items(items)]
    assert [m.role for m in messages] == ["system", "user", "assistant", "tool", "tool"]
    user = messages[1].parts
    assert [p.type for p in user] == ["text", "image", "file", "audio"]
    assert user[1].data == PNG and user[1].media_type == "image/png"  # type: ignore[union-attr]
    assert user[2].filename == "a.pdf" and user[2].data == b"%PDF-"  # type: ignore[union-attr]
    assert user[3].media_type == "audio/wav"  # type: ignore[union-attr]
    turn = messages[2]
    assert turn.reasoning[0].text == "hmm" and turn.reasoning[0].signature == "sig"
    assert turn.text == "Calling." and [c.id for c in turn.tool_calls] == ["c1", "c2"]
    assert messages[4].text == "two" and messages[4].tool_call_id == "c2"


def test_canonical_fields_and_passthrough() -> None:
    decoded = decode_request(
        {
            "model": "gpt",
            "input": "hi",
            "instructions": "Be brief.",
            "max_output_tokens": 30,
            "top_p": 0.5,
            "reasoning": {"effort": "low", "summary": "auto"},
            "tools": [{"type": "function", "name": "f", "parameters": {"type": "object"}, "strict": True}],
            "tool_choice": {"type": "function", "name": "f"},
            "parallel_tool_calls": False,
            "text": {"format": {"type": "json_object"}, "verbosity": "low"},
            "include": ["message.output_text.logprobs", "reasoning.encrypted_content"],
            "top_logprobs": 2,
            "metadata": {"team": "a"},
            "prompt_cache_key": "k",
            "store": False,
            "stream": True,
        }
    )
    prefs = decoded.prefs
    assert prefs["system"] == "Be brief." and prefs["max_tokens"] == 30 and prefs["top_p"] == 0.5
    assert prefs["reasoning"] == {"effort": "low"} and prefs["tool_choice"] == {"name": "f"}
    assert prefs["tools"] == [{"name": "f", "parameters": {"type": "object"}, "strict": True}]
    assert prefs["parallel_tool_calls"] is False and prefs["response_format"] == {"type": "json_object"}
    assert prefs["logprobs"] is True and prefs["top_logprobs"] == 2 and prefs["metadata"] == {"team": "a"}
    assert prefs["passthrough"] == {
        "protocol": "openai_responses",
        "fields": {
            "include": ["reasoning.encrypted_content"],
            "prompt_cache_key": "k",
            "text.verbosity": "low",
            "reasoning.summary": "auto",
        },
    }


@pytest.mark.parametrize(
    ("body", "param"),
    [
        ({"input": 3}, "input"),
        ({"input": [{"role": "tool", "content": "x"}]}, "input[0].role"),
        ({"input": [{"role": "user", "content": "x", "extra": 1}]}, "input[0].extra"),
        ({"input": "x", "tool_choice": "required"}, "tool_choice"),
        ({"input": "x", "text": {"format": {"type": "json_schema", "name": "n"}}}, "text.format.schema"),
        ({"input": "x", "max_output_tokens": 0}, "max_output_tokens"),
        ({"input": "x", "background": True}, "background"),
    ],
)
def test_bad_bodies_name_the_field(body: dict[str, Any], param: str) -> None:
    with pytest.raises(WireError) as err:
        decode_request({"model": "gpt", **body})
    assert err.value.param == param, err.value.message


def test_whole_response_matches_the_sdk_and_our_schema() -> None:
    logprobs = [TokenLogprob(token="Hi", logprob=-0.1, top_logprobs=[])]
    cases = [
        _resp(logprobs=logprobs),
        _resp(content="", tool_calls=[ToolCall(id="c1", name="f", arguments="{}")], finish_reason="tool_calls"),
        _resp(reasoning="thinking", reasoning_signature="sig", finish_reason="length"),
    ]
    echo = _echo(
        tools=[{"type": "function", "name": "f"}], tool_choice="auto", text={"format": {"type": "json_object"}}
    )
    for resp in cases:
        body = json.loads(json.dumps(response_object("resp_1", 1, echo, resp)))
        wire.ResponseObject.model_validate(body)
        sdk = SDKResponse.model_validate(body)
        assert sdk.usage is not None and sdk.usage.total_tokens == 13
    sdk = SDKResponse.model_validate(response_object("resp_1", 1, echo, cases[2]))
    assert sdk.status == "incomplete" and sdk.incomplete_details is not None
    assert [i.type for i in sdk.output] == ["reasoning", "message"]


def _events(raw: bytes) -> list[dict[str, Any]]:
    out = []
    for block in raw.decode().split("\n\n"):
        if block:
            name, data = block.split("\n")
            event = json.loads(data.removeprefix("data: "))
            assert name == f"event: {event['type']}"
            out.append(event)
    return out


def test_stream_events_match_the_sdk_and_our_schema() -> None:
    events = ResponseEvents("resp_1", 1, "gpt-4o-mini", _echo())
    raw = events.opening() + events.delta("Hel") + events.delta("lo")
    raw += events.tool_call(ToolCallDelta(index=0, id="c1", name="f", arguments='{"a"'))
    raw += events.tool_call(ToolCallDelta(index=0, arguments=":1}"))
    raw += events.tool_call(ToolCallDelta(index=1, id="c2", name="g", arguments="{}"))
    raw += events.closing(_resp(content="Hello", reasoning="r"))
    parsed = _events(raw)
    for event in parsed:
        wire.ResponseStreamEvent.model_validate(event)
        EVENTS.validate_python(event)
    assert [e["sequence_number"] for e in parsed] == list(range(len(parsed)))
    final = SDKResponse.model_validate(events.final)
    assert [i.type for i in final.output] == ["message", "function_call", "function_call", "reasoning"]
    assert final.output_text == "Hello"
    assert final.output[1].arguments == '{"a":1}'  # type: ignore[union-attr]
    done = [e for e in parsed if e["type"] == "response.function_call_arguments.done"]
    assert [e["arguments"] for e in done] == ['{"a":1}', "{}"]


def test_failed_stream_events_match_the_sdk() -> None:
    events = ResponseEvents("resp_1", 1, "gpt-4o-mini", _echo())
    parsed = _events(events.opening() + events.delta("Hel") + events.failed(429, "slow down"))
    for event in parsed:
        EVENTS.validate_python(event)
    assert [e["type"] for e in parsed[-2:]] == ["error", "response.failed"]
    assert parsed[-1]["response"]["error"] == {"code": "rate_limit_exceeded", "message": "slow down"}
