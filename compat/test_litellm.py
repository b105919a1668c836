"""LiteLLM used as a client library (``litellm.completion``), pointed at the gateway as an OpenAI server."""

from __future__ import annotations

from typing import Any

import pytest
from pydantic import BaseModel

from compat.conftest import Gateway
from compat.test_openai_python import PIXEL, WEATHER
from compat.upstream import ANSWER, image_sent

litellm = pytest.importorskip("litellm")


class Incident(BaseModel):
    service: str
    severity: int


def complete(gw: Gateway, **kw: Any) -> Any:
    kw.setdefault("messages", [{"role": "user", "content": "Say hello"}])
    return litellm.completion(model="openai/gpt", api_base=gw.v1, api_key="unused", num_retries=0, **kw)


@pytest.mark.client("litellm", "plain")
def test_completion(gateway: Gateway) -> None:
    assert complete(gateway).choices[0].message.content == ANSWER


@pytest.mark.client("litellm", "stream")
def test_stream(gateway: Gateway) -> None:
    text = "".join(c.choices[0].delta.content or "" for c in complete(gateway, stream=True))
    assert text == ANSWER


@pytest.mark.client("litellm", "tools")
def test_tools(gateway: Gateway) -> None:
    resp = complete(gateway, messages=[{"role": "user", "content": "Weather in Oslo?"}], tools=[WEATHER])
    assert resp.choices[0].message.tool_calls[0].function.name == "get_weather"


@pytest.mark.client("litellm", "structured")
def test_response_format_model(gateway: Gateway) -> None:
    mark = gateway.upstreams.mark()
    resp = complete(gateway, response_format=Incident)
    Incident.model_validate_json(resp.choices[0].message.content)
    [sent] = gateway.upstreams.openai_since(mark)
    assert sent["response_format"]["type"] == "json_schema"


@pytest.mark.client("litellm", "json-mode")
def test_json_mode(gateway: Gateway) -> None:
    mark = gateway.upstreams.mark()
    complete(gateway, response_format={"type": "json_object"})
    [sent] = gateway.upstreams.openai_since(mark)
    assert sent.get("response_format") == {"type": "json_object"}


@pytest.mark.client("litellm", "image")
def test_image(gateway: Gateway) -> None:
    parts = [
        {"type": "text", "text": "What is in this image?"},
        {"type": "image_url", "image_url": {"url": f"data:image/png;base64,{PIXEL}"}},
    ]
    mark = gateway.upstreams.mark()
    assert complete(gateway, messages=[{"role": "user", "content": parts}]).choices[0].message.content == ANSWER
    [sent] = gateway.upstreams.openai_since(mark)
    assert image_sent(sent) == PIXEL


@pytest.mark.client("litellm", "responses")
def test_responses(gateway: Gateway) -> None:
    mark = gateway.upstreams.mark()
    resp = litellm.responses(model="openai/gpt", input="Say hello", api_base=gateway.v1, api_key="unused")
    assert resp.output[0].content[0].text == ANSWER
    [sent] = gateway.upstreams.openai_since(mark)
    assert sent["messages"][-1] == {"role": "user", "content": "Say hello"}


@pytest.mark.client("litellm", "embeddings")
def test_embedding(gateway: Gateway) -> None:
    mark = gateway.upstreams.mark()
    resp = litellm.embedding(model="openai/embed", input=["first text"], api_base=gateway.v1, api_key="unused")
    assert len(resp.data[0]["embedding"]) == 256
    (sent,) = gateway.upstreams.openai_since(mark)
    assert sent["input"] == ["first text"] and sent["dimensions"] == 256
