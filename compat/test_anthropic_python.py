"""The official ``anthropic`` Python SDK, pointed at the gateway's ``/v1/messages``."""

from __future__ import annotations

import anthropic
import pytest
from pydantic import BaseModel

from compat.conftest import Gateway
from compat.test_openai_python import PIXEL
from compat.upstream import ANSWER, image_sent

WEATHER = {
    "name": "get_weather",
    "description": "Current weather for a city",
    "input_schema": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]},
}


class Incident(BaseModel):
    service: str
    severity: int


def client(gw: Gateway) -> anthropic.Anthropic:
    return anthropic.Anthropic(base_url=gw.url, api_key="unused", max_retries=0)


@pytest.mark.client("anthropic-python", "plain")
def test_plain(gateway: Gateway) -> None:
    mark = gateway.upstreams.mark()
    msg = client(gateway).messages.create(
        model="claude", max_tokens=64, system="Be brief.", messages=[{"role": "user", "content": "Say hello"}]
    )
    assert msg.content[0].type == "text" and msg.content[0].text == ANSWER
    assert msg.stop_reason == "end_turn"
    [sent] = gateway.upstreams.anthropic_since(mark)
    assert sent["model"] == "claude-sonnet-4-5"
    assert sent["max_tokens"] == 64
    assert sent["system"] in ("Be brief.", [{"type": "text", "text": "Be brief."}])


@pytest.mark.client("anthropic-python", "plain")
async def test_plain_async_through_openai_deployment(gateway: Gateway) -> None:
    # The Anthropic wire in, an OpenAI-format deployment out: the gateway translates.
    async with anthropic.AsyncAnthropic(base_url=gateway.url, api_key="unused", max_retries=0) as c:
        msg = await c.messages.create(model="gpt", max_tokens=64, messages=[{"role": "user", "content": "hi"}])
    assert msg.content[0].type == "text" and msg.content[0].text == ANSWER


@pytest.mark.client("anthropic-python", "stream")
def test_stream(gateway: Gateway) -> None:
    with client(gateway).messages.stream(
        model="claude", max_tokens=64, messages=[{"role": "user", "content": "Say hello"}]
    ) as stream:
        text = "".join(stream.text_stream)
        final = stream.get_final_message()
    assert text == ANSWER
    assert final.usage.output_tokens > 0


@pytest.mark.client("anthropic-python", "tools")
def test_tools_round_trip(gateway: Gateway) -> None:
    c = client(gateway)
    mark = gateway.upstreams.mark()
    question = {"role": "user", "content": "Weather in Oslo?"}
    first = c.messages.create(model="claude", max_tokens=256, tools=[WEATHER], messages=[question])  # type: ignore[list-item]
    [use] = [b for b in first.content if b.type == "tool_use"]
    assert first.stop_reason == "tool_use" and use.name == "get_weather" and "city" in use.input  # type: ignore[operator]
    result = {"type": "tool_result", "tool_use_id": use.id, "content": '{"temp_c": 4}'}
    final = c.messages.create(
        model="claude",
        max_tokens=256,
        tools=[WEATHER],  # type: ignore[list-item]
        messages=[question, {"role": "assistant", "content": first.content}, {"role": "user", "content": [result]}],  # type: ignore[list-item]
    )
    assert final.content[0].type == "text" and final.content[0].text == ANSWER
    _, second_sent = gateway.upstreams.anthropic_since(mark)
    assert second_sent["messages"][-1]["content"][0]["type"] == "tool_result"


@pytest.mark.client("anthropic-python", "tools")
def test_tools_streamed(gateway: Gateway) -> None:
    with client(gateway).messages.stream(
        model="claude",
        max_tokens=256,
        tools=[WEATHER],  # type: ignore[list-item]
        tool_choice={"type": "tool", "name": "get_weather"},
        messages=[{"role": "user", "content": "Weather in Oslo?"}],
    ) as stream:
        final = stream.get_final_message()
    [use] = [b for b in final.content if b.type == "tool_use"]
    assert use.name == "get_weather" and isinstance(use.input, dict)


@pytest.mark.client("anthropic-python", "structured")
def test_structured_parse(gateway: Gateway) -> None:
    resp = client(gateway).messages.parse(
        model="claude",
        max_tokens=256,
        messages=[{"role": "user", "content": "The checkout is down"}],
        output_format=Incident,
    )
    assert isinstance(resp.parsed_output, Incident)


@pytest.mark.client("anthropic-python", "image")
def test_image_block(gateway: Gateway) -> None:
    mark = gateway.upstreams.mark()
    image = {"type": "image", "source": {"type": "base64", "media_type": "image/png", "data": PIXEL}}
    msg = client(gateway).messages.create(
        model="claude",
        max_tokens=64,
        messages=[{"role": "user", "content": [image, {"type": "text", "text": "What is in this image?"}]}],  # type: ignore[list-item]
    )
    assert msg.content[0].type == "text"
    [sent] = gateway.upstreams.anthropic_since(mark)
    assert sent["messages"][0]["content"][0]["type"] == "image" and image_sent(sent) == PIXEL
