"""Structured output answered by an Anthropic deployment that writes a text block before the forced tool block:
whole or streamed, the client gets the same clean JSON, so the ``openai`` SDK's ``parse`` and its stream helpers
work either way (and so do the ``anthropic`` SDK's on the Messages route). Checked end to end through the gateway
against a loopback Anthropic fake."""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from typing import Any

import anthropic
import openai
import pytest
from pydantic import BaseModel

from llm_manager.config import load_settings
from tests.fakes import anthropic_wire
from tests.fakes.server import FakeUpstream, Reply, serve_in_thread
from tests.server.conftest import Gateway, start_gateway

PREAMBLE = "Let me fill that in for you. "
ARGS = {"service": "checkout-db", "severity": 2}


class Incident(BaseModel):
    service: str
    severity: int


@pytest.fixture(scope="module")
def rig() -> Iterator[tuple[Gateway, FakeUpstream]]:
    with ExitStack() as stack:
        up = stack.enter_context(serve_in_thread(FakeUpstream()))
        settings = load_settings(
            {
                "models": {
                    "claude": {
                        "provider": "anthropic",
                        "base_url": up.url,
                        "model": "claude-sonnet-4-5",
                        "api_key": "sk-ant",
                    }
                },
                "routing": {"max_retries": 0},
                "cache": {"enabled": False},
            },
            env={},
        )
        gateway = stack.enter_context(contextmanager(start_gateway)(settings))
        yield gateway, up


def _whole(tool: str) -> dict[str, Any]:
    body = anthropic_wire.message(PREAMBLE, stop_reason="tool_use")
    body["content"].append({"type": "tool_use", "id": "toolu_01", "name": tool, "input": ARGS})
    return body


def _streamed(tool: str) -> list[bytes]:
    sse = anthropic_wire.sse
    start = anthropic_wire.message("", stop_reason=None, output_tokens=1)
    text = json.dumps(ARGS)
    pieces = [text[:10], text[10:25], text[25:]]
    return [
        sse("message_start", {"type": "message_start", "message": start}),
        sse(
            "content_block_start",
            {"type": "content_block_start", "index": 0, "content_block": {"type": "text", "text": ""}},
        ),
        *(
            sse(
                "content_block_delta",
                {"type": "content_block_delta", "index": 0, "delta": {"type": "text_delta", "text": word}},
            )
            for word in PREAMBLE.split(" ")
            if word
        ),
        sse("content_block_stop", {"type": "content_block_stop", "index": 0}),
        sse(
            "content_block_start",
            {
                "type": "content_block_start",
                "index": 1,
                "content_block": {"type": "tool_use", "id": "toolu_01", "name": tool, "input": {}},
            },
        ),
        *(
            sse(
                "content_block_delta",
                {"type": "content_block_delta", "index": 1, "delta": {"type": "input_json_delta", "partial_json": p}},
            )
            for p in pieces
        ),
        *anthropic_wire.stream_end(1, "tool_use", 9),
    ]


def _openai(gw: Gateway) -> openai.OpenAI:
    return openai.OpenAI(base_url=f"{gw.url}/v1", api_key="x", max_retries=0, timeout=10)


ASK: Any = [{"role": "user", "content": "The checkout database is slow. File an incident."}]


def test_openai_parse_whole_and_streamed_agree(rig: tuple[Gateway, FakeUpstream]) -> None:
    gw, up = rig
    up.push(Reply.json(_whole("Incident")), Reply.sse(_streamed("Incident")))
    with _openai(gw) as client:
        whole = client.chat.completions.parse(model="claude", messages=ASK, response_format=Incident)
        with client.chat.completions.stream(model="claude", messages=ASK, response_format=Incident) as stream:
            deltas = [e.delta for e in stream if e.type == "content.delta"]
            final = stream.get_final_completion()
    assert whole.choices[0].message.parsed == Incident(**ARGS)
    assert final.choices[0].message.parsed == Incident(**ARGS)
    assert json.loads("".join(deltas)) == ARGS  # the preamble never reached the client's stream
    contents = [c.choices[0].message.content for c in (whole, final)]
    assert [json.loads(c or "") for c in contents] == [ARGS, ARGS]  # the same JSON (spacing is the model's)
    assert whole.choices[0].finish_reason == final.choices[0].finish_reason == "stop"
    sent_whole, sent_stream = (r.json for r in up.requests[-2:])
    for sent in (sent_whole, sent_stream):
        assert sent["tool_choice"] == {"type": "tool", "name": "Incident"}
        assert [t["name"] for t in sent["tools"]] == ["Incident"]


def test_anthropic_parse_whole_and_streamed_agree(rig: tuple[Gateway, FakeUpstream]) -> None:
    gw, up = rig
    schema = Incident.model_json_schema()
    up.push(Reply.json(_whole("response")), Reply.sse(_streamed("response")))
    fmt: Any = {"format": {"type": "json_schema", "schema": schema}}
    with anthropic.Anthropic(base_url=gw.url, api_key="x", max_retries=0, timeout=10) as client:
        whole = client.messages.create(model="claude", max_tokens=200, messages=ASK, extra_body={"output_config": fmt})
        with client.messages.stream(
            model="claude", max_tokens=200, messages=ASK, extra_body={"output_config": fmt}
        ) as stream:
            streamed = "".join(stream.text_stream)
    texts = [b.text for b in whole.content if b.type == "text"]
    assert [json.loads(t) for t in texts] == [ARGS]
    assert json.loads(streamed) == ARGS
