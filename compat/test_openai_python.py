"""The official ``openai`` Python SDK, pointed at the gateway."""

from __future__ import annotations

import base64
import json
from typing import Any

import openai
import pytest
from pydantic import BaseModel

from compat.conftest import Gateway
from compat.upstream import ANSWER, EMBEDDING_MODEL, image_sent

# Known gaps, each a strict xfail: the day the gateway does it, the test passes, the run fails, and the marker goes.

WEATHER = {
    "type": "function",
    "function": {
        "name": "get_weather",
        "description": "Current weather for a city",
        "parameters": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]},
    },
}
# A 1×1 PNG, inline: what a vision app sends.
PIXEL = base64.b64encode(
    bytes.fromhex(
        "89504e470d0a1a0a0000000d4948445200000001000000010806000000"
        "1f15c4890000000d49444154789c6360000002000154a24f5d0000000049454e44ae426082"
    )
).decode()


class Incident(BaseModel):
    service: str
    severity: int


def client(gw: Gateway) -> openai.OpenAI:
    return openai.OpenAI(base_url=gw.v1, api_key="unused", max_retries=0)


@pytest.mark.client("openai-python", "plain")
def test_plain(gateway: Gateway) -> None:
    mark = gateway.upstreams.mark()
    resp = client(gateway).chat.completions.create(
        model="gpt", messages=[{"role": "user", "content": "Say hello"}], temperature=0.2, max_tokens=50
    )
    assert resp.choices[0].message.content == ANSWER
    assert resp.choices[0].finish_reason == "stop"
    assert resp.usage is not None and resp.usage.total_tokens > 0
    [sent] = gateway.upstreams.openai_since(mark)
    assert sent["model"] == "gpt-4o-mini"
    assert sent["messages"] == [{"role": "user", "content": "Say hello"}]
    assert sent["temperature"] == 0.2


@pytest.mark.client("openai-python", "plain")
async def test_plain_async(gateway: Gateway) -> None:
    async with openai.AsyncOpenAI(base_url=gateway.v1, api_key="unused", max_retries=0) as aclient:
        resp = await aclient.chat.completions.create(model="task:general", messages=[{"role": "user", "content": "hi"}])
    assert resp.choices[0].message.content == ANSWER


@pytest.mark.client("openai-python", "stream")
def test_stream(gateway: Gateway) -> None:
    mark = gateway.upstreams.mark()
    stream = client(gateway).chat.completions.create(
        model="gpt",
        messages=[{"role": "user", "content": "Say hello"}],
        stream=True,
        stream_options={"include_usage": True},
    )
    chunks = list(stream)
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert text == ANSWER
    assert chunks[-1].usage is not None and chunks[-1].usage.completion_tokens > 0
    [sent] = gateway.upstreams.openai_since(mark)
    assert sent["stream"] is True


@pytest.mark.client("openai-python", "stream")
async def test_stream_async_helper(gateway: Gateway) -> None:
    async with openai.AsyncOpenAI(base_url=gateway.v1, api_key="unused", max_retries=0) as aclient:
        async with aclient.chat.completions.stream(
            model="gpt", messages=[{"role": "user", "content": "Say hello"}]
        ) as stream:
            final = await stream.get_final_completion()
    assert final.choices[0].message.content == ANSWER


@pytest.mark.client("openai-python", "tools")
def test_tools_round_trip(gateway: Gateway) -> None:
    c = client(gateway)
    mark = gateway.upstreams.mark()
    messages: list[dict[str, object]] = [{"role": "user", "content": "Weather in Oslo?"}]
    first = c.chat.completions.create(model="gpt", messages=messages, tools=[WEATHER])  # type: ignore[arg-type]
    [call] = first.choices[0].message.tool_calls or []
    assert first.choices[0].finish_reason == "tool_calls"
    assert call.function.name == "get_weather"  # type: ignore[union-attr]
    assert "city" in json.loads(call.function.arguments)  # type: ignore[union-attr]
    messages += [
        first.choices[0].message.model_dump(exclude_none=True),
        {"role": "tool", "tool_call_id": call.id, "content": '{"temp_c": 4}'},
    ]
    final = c.chat.completions.create(model="gpt", messages=messages, tools=[WEATHER])  # type: ignore[arg-type]
    assert final.choices[0].message.content == ANSWER
    first_sent, second_sent = gateway.upstreams.openai_since(mark)
    assert first_sent["tools"][0]["function"]["name"] == "get_weather"
    assert second_sent["messages"][-1] == {"role": "tool", "tool_call_id": call.id, "content": '{"temp_c": 4}'}


@pytest.mark.client("openai-python", "tools")
def test_tools_streamed(gateway: Gateway) -> None:
    with client(gateway).chat.completions.stream(
        model="gpt",
        messages=[{"role": "user", "content": "Weather in Oslo?"}],
        tools=[WEATHER],  # type: ignore[list-item]
        tool_choice={"type": "function", "function": {"name": "get_weather"}},
    ) as stream:
        final = stream.get_final_completion()
    [call] = final.choices[0].message.tool_calls or []
    assert call.function.name == "get_weather"  # type: ignore[union-attr]


@pytest.mark.client("openai-python", "structured")
def test_structured_parse(gateway: Gateway) -> None:
    mark = gateway.upstreams.mark()
    resp = client(gateway).chat.completions.parse(
        model="gpt", messages=[{"role": "user", "content": "The checkout is down"}], response_format=Incident
    )
    parsed = resp.choices[0].message.parsed
    assert isinstance(parsed, Incident)
    [sent] = gateway.upstreams.openai_since(mark)
    assert sent["response_format"]["type"] == "json_schema"
    assert sent["response_format"]["json_schema"]["schema"]["properties"].keys() == {"service", "severity"}


@pytest.mark.client("openai-python", "structured")
def test_structured_streamed(gateway: Gateway) -> None:
    with client(gateway).chat.completions.stream(
        model="gpt", messages=[{"role": "user", "content": "The checkout is down"}], response_format=Incident
    ) as stream:
        final = stream.get_final_completion()
    assert isinstance(final.choices[0].message.parsed, Incident)


@pytest.mark.client("openai-python", "json-mode")
def test_json_mode_reaches_upstream(gateway: Gateway) -> None:
    mark = gateway.upstreams.mark()
    resp = client(gateway).chat.completions.create(
        model="gpt",
        messages=[{"role": "user", "content": "Answer in JSON"}],
        response_format={"type": "json_object"},
    )
    assert isinstance(json.loads(resp.choices[0].message.content or ""), dict)
    [sent] = gateway.upstreams.openai_since(mark)
    assert sent.get("response_format") == {"type": "json_object"}


@pytest.mark.client("openai-python", "image")
def test_image_part(gateway: Gateway) -> None:
    mark = gateway.upstreams.mark()
    parts = [
        {"type": "text", "text": "What is in this image?"},
        {"type": "image_url", "image_url": {"url": f"data:image/png;base64,{PIXEL}"}},
    ]
    resp = client(gateway).chat.completions.create(model="gpt", messages=[{"role": "user", "content": parts}])  # type: ignore[misc,list-item]
    assert resp.choices[0].message.content == ANSWER
    [sent] = gateway.upstreams.openai_since(mark)
    assert image_sent(sent) == PIXEL


@pytest.mark.client("openai-python", "responses")
def test_responses(gateway: Gateway) -> None:
    mark = gateway.upstreams.mark()
    resp = client(gateway).responses.create(
        model="gpt", input="Say hello", instructions="Be brief.", max_output_tokens=40, truncation="auto"
    )
    assert resp.output_text == ANSWER and resp.id.startswith("resp_")
    [sent] = gateway.upstreams.openai_since(mark)
    assert sent["messages"] == [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "Say hello"}]
    assert sent["max_tokens"] == 40 and "truncation" not in sent  # reported in x-llm-dropped-params instead
    again = client(gateway).responses.create(model="gpt", input="And again?", previous_response_id=resp.id)
    assert again.output_text == ANSWER
    [_, sent] = gateway.upstreams.openai_since(mark)
    assert [m["role"] for m in sent["messages"]] == ["user", "assistant", "user"]


@pytest.mark.client("openai-python", "responses")
def test_responses_stream(gateway: Gateway) -> None:
    mark = gateway.upstreams.mark()
    with client(gateway).responses.stream(model="gpt", input="Say hello") as stream:
        final = stream.get_final_response()
    assert final.output_text == ANSWER
    [sent] = gateway.upstreams.openai_since(mark)
    assert sent["stream"] is True and sent["messages"] == [{"role": "user", "content": "Say hello"}]


@pytest.mark.client("openai-python", "embeddings")
@pytest.mark.parametrize("fmt", [None, "float"])
def test_embeddings(gateway: Gateway, fmt: str | None) -> None:
    mark = gateway.upstreams.mark()
    extra: dict[str, Any] = {"encoding_format": fmt} if fmt else {}
    resp = client(gateway).embeddings.create(model="embed", input=["first text", "second text"], **extra)
    assert [len(d.embedding) for d in resp.data] == [256, 256] and resp.data[0].embedding != resp.data[1].embedding
    assert resp.model == EMBEDDING_MODEL and resp.usage.prompt_tokens == 4
    (sent,) = gateway.upstreams.openai_since(mark)
    # The SDK asks for base64 unless told otherwise; the gateway asks its upstream for base64 and the configured size.
    assert sent == {
        "model": EMBEDDING_MODEL,
        "input": ["first text", "second text"],
        "encoding_format": "base64",
        "dimensions": 256,
    }


@pytest.mark.client("openai-python", "completions")
def test_legacy_completion(gateway: Gateway) -> None:
    mark = gateway.upstreams.mark()
    raw = client(gateway).completions.with_raw_response.create(
        model="gpt", prompt="Say hello", max_tokens=50, temperature=0.2, stop=["\n\n"], best_of=2
    )
    done = raw.parse()
    assert done.object == "text_completion" and done.choices[0].text == ANSWER
    assert done.choices[0].finish_reason == "stop" and done.usage is not None and done.usage.total_tokens > 0
    assert raw.headers["x-llm-dropped-params"] == "best_of"  # one completion is made, and the client is told
    [sent] = gateway.upstreams.openai_since(mark)
    assert sent["messages"] == [{"role": "user", "content": "Say hello"}]
    assert (sent["max_tokens"], sent["temperature"], sent["stop"]) == (50, 0.2, ["\n\n"])


@pytest.mark.client("openai-python", "completions")
def test_legacy_completion_stream(gateway: Gateway) -> None:
    chunks = list(
        client(gateway).completions.create(
            model="gpt", prompt="Say hello", stream=True, stream_options={"include_usage": True}
        )
    )
    assert "".join(c.choices[0].text for c in chunks if c.choices) == ANSWER
    assert chunks[-1].usage is not None and chunks[-1].usage.completion_tokens > 0
