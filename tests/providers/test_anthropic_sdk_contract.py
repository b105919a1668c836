"""The Anthropic fakes speak the real format: the official SDK's types accept them and its client works on them.

If these pass, a payload the adapter tests rely on is one the real API could send.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import anthropic
import pytest
from anthropic.types import Message, RawMessageStreamEvent
from anthropic.types.shared import ErrorResponse
from pydantic import TypeAdapter

from tests.fakes import anthropic_wire as wire
from tests.fakes.server import FakeUpstream, Reply, serve_in_thread

EVENT = TypeAdapter(RawMessageStreamEvent)


def parse_sse(raw: bytes) -> tuple[str, dict[str, Any]]:
    """The ``event:`` name and JSON ``data`` of one encoded event."""
    fields = dict(line.split(": ", 1) for line in raw.decode().strip("\n").split("\n"))
    return fields["event"], json.loads(fields["data"])


@pytest.fixture
def served() -> Iterator[FakeUpstream]:
    with serve_in_thread(FakeUpstream()) as up:
        yield up


@pytest.fixture
def client(served: FakeUpstream) -> Iterator[anthropic.Anthropic]:
    with anthropic.Anthropic(base_url=served.url, api_key="x", max_retries=0) as c:
        yield c


# --- the builders validate against the SDK's types -----------------------------------------------------------


@pytest.mark.parametrize("stop_reason", ["end_turn", "max_tokens", "stop_sequence", "tool_use", "refusal"])
def test_message_matches_sdk_type(stop_reason: str) -> None:
    raw = wire.message("Hi", stop_reason=stop_reason, cache_read_input_tokens=3, cache_creation_input_tokens=4)
    msg = Message.model_validate(raw)
    assert msg.content[0].type == "text" and msg.content[0].text == "Hi"
    assert msg.usage.cache_read_input_tokens == 3
    assert msg.to_dict() == raw  # nothing the SDK does not know about


def test_stream_events_match_sdk_types() -> None:
    raws = wire.stream_events(["a", "b"], cache_read_input_tokens=2)
    parsed = [parse_sse(r) for r in raws]
    for name, data in parsed:
        assert name == data["type"]
        if name == "ping":
            # Keep-alive: the SDK skips it before validating, so it has no type to check against.
            assert data == {"type": "ping"}
        else:
            assert EVENT.validate_python(data).type == name
    assert [name for name, _ in parsed] == [
        "message_start",
        "content_block_start",
        "ping",
        "content_block_delta",
        "content_block_delta",
        "content_block_stop",
        "message_delta",
        "message_stop",
    ]


def test_error_builders_match_sdk_type() -> None:
    assert ErrorResponse.model_validate(wire.error_body("overloaded_error", "Overloaded")).error.type == (
        "overloaded_error"
    )
    name, data = parse_sse(wire.error_event("api_error", "boom"))
    assert name == "error"
    assert ErrorResponse.model_validate(data).error.message == "boom"


# --- the official client against the fake --------------------------------------------------------------------


def test_sdk_create(served: FakeUpstream, client: anthropic.Anthropic) -> None:
    served.push(Reply.json(wire.message("Hello there", input_tokens=11, output_tokens=3)))
    msg = client.messages.create(model="claude-fake-1", max_tokens=64, messages=[{"role": "user", "content": "Hi"}])
    assert msg.content[0].type == "text" and msg.content[0].text == "Hello there"
    assert (msg.usage.input_tokens, msg.usage.output_tokens) == (11, 3)
    (sent,) = served.requests
    assert (sent.method, sent.path) == ("POST", "/v1/messages")
    # The SDK pins its own (newer) API version; the adapter sends 2023-06-01 unless configured otherwise.
    assert "anthropic-version" in sent.headers


def test_sdk_stream(served: FakeUpstream, client: anthropic.Anthropic) -> None:
    served.push(Reply.sse(wire.stream_events(["Hel", "lo"], input_tokens=9, output_tokens=2)))
    with client.messages.stream(
        model="claude-fake-1", max_tokens=64, messages=[{"role": "user", "content": "Hi"}]
    ) as stream:
        text = "".join(stream.text_stream)
        final = stream.get_final_message()
    assert text == "Hello"
    assert (final.usage.input_tokens, final.usage.output_tokens) == (9, 2)
    assert final.stop_reason == "end_turn"
    assert served.requests[0].json["stream"] is True


def test_sdk_stream_error_event(served: FakeUpstream, client: anthropic.Anthropic) -> None:
    events = wire.stream_events(["a"])
    served.push(Reply.sse([*events[:3], wire.error_event("overloaded_error", "Overloaded")]))
    with (
        pytest.raises(anthropic.APIStatusError, match="Overloaded"),
        client.messages.stream(model="m", max_tokens=8, messages=[{"role": "user", "content": "Hi"}]) as stream,
    ):
        stream.until_done()


def test_sdk_rate_limit(served: FakeUpstream, client: anthropic.Anthropic) -> None:
    served.push(Reply.error(429, wire.error_body("rate_limit_error", "slow down"), headers={"retry-after": "1"}))
    with pytest.raises(anthropic.RateLimitError) as info:
        client.messages.create(model="m", max_tokens=8, messages=[{"role": "user", "content": "Hi"}])
    assert info.value.status_code == 429
    assert info.value.body["error"]["type"] == "rate_limit_error"  # type: ignore[index]
