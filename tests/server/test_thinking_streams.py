"""A model's thinking streamed through the gateway keeps its signature: an Anthropic upstream thinks (thinking deltas,
then its ``signature_delta``) and answers; the official SDKs, streaming, end with a thinking block / reasoning item
they can send back signed to continue after a tool call, and the Responses stream carries the reasoning summary as
it comes."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from typing import Any

import anthropic
import openai
import pytest

from llm_manager.config import load_settings
from tests.fakes import anthropic_wire
from tests.fakes.anthropic_wire import sse
from tests.fakes.server import FakeUpstream, Recorded, Reply, serve_in_thread
from tests.server.conftest import Gateway, start_gateway

THOUGHTS = ["Let me think", " about it."]
SIGNATURE = "EqQBCkYIARgCKkBsig=="


def _block(kind: str, index: int, **fields: Any) -> bytes:
    return sse(kind, {"type": kind, "index": index, **fields})


def _thinking_answer(req: Recorded) -> Reply:
    if not req.json.get("stream"):
        return Reply.json(anthropic_wire.message("Hello"))
    start = anthropic_wire.message("", stop_reason=None, output_tokens=1)
    events = [
        sse("message_start", {"type": "message_start", "message": start}),
        _block("content_block_start", 0, content_block={"type": "thinking", "thinking": "", "signature": ""}),
        *[_block("content_block_delta", 0, delta={"type": "thinking_delta", "thinking": t}) for t in THOUGHTS],
        _block("content_block_delta", 0, delta={"type": "signature_delta", "signature": SIGNATURE}),
        _block("content_block_stop", 0),
        _block("content_block_start", 1, content_block={"type": "text", "text": ""}),
        _block("content_block_delta", 1, delta={"type": "text_delta", "text": "Hello"}),
        *anthropic_wire.stream_end(1, "end_turn", 9),
    ]
    return Reply.sse(events)


@contextmanager
def _gateway() -> Iterator[tuple[Gateway, FakeUpstream]]:
    with ExitStack() as stack:
        up = stack.enter_context(serve_in_thread(FakeUpstream(default=_thinking_answer)))
        model = {"provider": "anthropic", "base_url": up.url, "model": "claude-sonnet-4-5", "api_key": "k"}
        settings = load_settings(
            {"models": {"claude": model}, "routing": {"tasks": {"general": ["claude"]}, "max_retries": 0}}, env={}
        )
        yield stack.enter_context(contextmanager(start_gateway)(settings)), up


@pytest.fixture(scope="module")
def rig() -> Iterator[tuple[Gateway, FakeUpstream]]:
    with _gateway() as r:
        yield r


@pytest.fixture
def gateway(rig: tuple[Gateway, FakeUpstream]) -> Gateway:
    return rig[0]


ASK: Any = [{"role": "user", "content": "Think, then say hello"}]


def test_the_anthropic_sdk_gets_the_signed_thinking_block(gateway: Gateway) -> None:
    client = anthropic.Anthropic(base_url=gateway.url, api_key="x", max_retries=0)
    with client.messages.stream(
        model="claude", max_tokens=2048, messages=ASK, thinking={"type": "enabled", "budget_tokens": 1024}
    ) as stream:
        kinds = [event.type for event in stream]
        final = stream.get_final_message()
    assert "signature" in kinds and kinds.index("thinking") < kinds.index("signature") < kinds.index("text")
    thinking, text = final.content
    assert thinking.type == "thinking" and thinking.thinking == "".join(THOUGHTS)
    assert thinking.signature == SIGNATURE
    assert text.type == "text" and text.text == "Hello"


def test_the_responses_stream_carries_the_summary_as_it_comes_and_the_signature(
    rig: tuple[Gateway, FakeUpstream],
) -> None:
    gateway, upstream = rig
    client = openai.OpenAI(base_url=f"{gateway.url}/v1", api_key="x", max_retries=0)
    with client.responses.stream(model="claude", input="Think, then say hello") as stream:
        events = list(stream)
        final = stream.get_final_response()
    kinds = [e.type for e in events]
    deltas = [e.delta for e in events if e.type == "response.reasoning_summary_text.delta"]
    assert deltas == THOUGHTS
    assert kinds.index("response.reasoning_summary_text.delta") < kinds.index("response.output_text.delta")
    done = [e.item for e in events if e.type == "response.output_item.done"]
    assert [i.type for i in done] == ["reasoning", "message"]
    assert done[0].encrypted_content == SIGNATURE  # where the SDK's docs say to take it from when streaming
    reasoning, message = final.output
    assert reasoning.type == "reasoning" and reasoning.encrypted_content == SIGNATURE
    assert [s.text for s in reasoning.summary] == ["".join(THOUGHTS)]
    assert message.type == "message" and final.output_text == "Hello"
    # Sent back as the next turn's input, the signed reasoning reaches the upstream as a signed thinking block.
    follow = client.responses.create(
        model="claude", input=[*[i.model_dump(exclude_none=True) for i in final.output], *ASK]
    )
    assert follow.output_text == "Hello"
    sent = upstream.requests[-1].json["messages"]
    assert sent[0]["role"] == "assistant"
    assert sent[0]["content"][0] == {"type": "thinking", "thinking": "".join(THOUGHTS), "signature": SIGNATURE}


def test_chat_streams_the_reasoning_as_reasoning_content(gateway: Gateway) -> None:
    client = openai.OpenAI(base_url=f"{gateway.url}/v1", api_key="x", max_retries=0)
    chunks = list(client.chat.completions.create(model="claude", messages=ASK, stream=True))
    reasoning = [getattr(c.choices[0].delta, "reasoning_content", None) for c in chunks if c.choices]
    assert "".join(r for r in reasoning if r) == "".join(THOUGHTS)
    assert "".join(c.choices[0].delta.content or "" for c in chunks if c.choices) == "Hello"
