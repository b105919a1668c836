"""LangChain's ``ChatOpenAI`` (and ``OpenAIEmbeddings``), pointed at the gateway."""

from __future__ import annotations

import pytest
from langchain_core.messages import HumanMessage
from langchain_core.tools import tool
from langchain_openai import ChatOpenAI, OpenAI, OpenAIEmbeddings
from pydantic import BaseModel

from compat.conftest import Gateway
from compat.test_openai_python import PIXEL
from compat.upstream import ANSWER, image_sent


class Incident(BaseModel):
    service: str
    severity: int


@tool
def get_weather(city: str) -> str:
    """Current weather for a city."""
    return f"4 °C in {city}"


def chat(gw: Gateway, **kw: object) -> ChatOpenAI:
    return ChatOpenAI(base_url=gw.v1, api_key="unused", model="gpt", max_retries=0, **kw)  # type: ignore[arg-type]


@pytest.mark.client("langchain", "plain")
def test_invoke(gateway: Gateway) -> None:
    assert chat(gateway).invoke("Say hello").content == ANSWER


@pytest.mark.client("langchain", "plain")
async def test_ainvoke(gateway: Gateway) -> None:
    assert (await chat(gateway).ainvoke("Say hello")).content == ANSWER


@pytest.mark.client("langchain", "stream")
def test_stream(gateway: Gateway) -> None:
    mark = gateway.upstreams.mark()
    text = "".join(str(c.content) for c in chat(gateway, stream_usage=True).stream("Say hello"))
    assert text == ANSWER
    [sent] = gateway.upstreams.openai_since(mark)
    assert sent["stream"] is True


@pytest.mark.client("langchain", "tools")
def test_bind_tools(gateway: Gateway) -> None:
    mark = gateway.upstreams.mark()
    msg = chat(gateway).bind_tools([get_weather]).invoke("Weather in Oslo?")
    [call] = msg.tool_calls  # type: ignore[attr-defined]
    assert call["name"] == "get_weather" and "city" in call["args"]
    [sent] = gateway.upstreams.openai_since(mark)
    assert sent["tools"][0]["function"]["name"] == "get_weather"


@pytest.mark.client("langchain", "structured")
def test_with_structured_output(gateway: Gateway) -> None:
    mark = gateway.upstreams.mark()
    out = chat(gateway).with_structured_output(Incident).invoke("The checkout is down")
    assert isinstance(out, Incident)
    [sent] = gateway.upstreams.openai_since(mark)
    assert sent["response_format"]["type"] == "json_schema"


@pytest.mark.client("langchain", "json-mode")
def test_json_mode(gateway: Gateway) -> None:
    mark = gateway.upstreams.mark()
    out = chat(gateway).with_structured_output(None, method="json_mode").invoke("Answer in JSON")
    assert isinstance(out, dict)
    [sent] = gateway.upstreams.openai_since(mark)
    assert sent.get("response_format") == {"type": "json_object"}


@pytest.mark.client("langchain", "image")
def test_image(gateway: Gateway) -> None:
    parts = [
        {"type": "text", "text": "What is in this image?"},
        {"type": "image_url", "image_url": {"url": f"data:image/png;base64,{PIXEL}"}},
    ]
    mark = gateway.upstreams.mark()
    assert chat(gateway).invoke([HumanMessage(content=parts)]).content == ANSWER  # type: ignore[arg-type]
    [sent] = gateway.upstreams.openai_since(mark)
    assert image_sent(sent) == PIXEL


@pytest.mark.client("langchain", "responses")
def test_responses_api(gateway: Gateway) -> None:
    mark = gateway.upstreams.mark()
    msg = chat(gateway, use_responses_api=True).invoke("Say hello")
    assert msg.text == ANSWER
    [sent] = gateway.upstreams.openai_since(mark)
    assert sent["messages"][-1] == {"role": "user", "content": "Say hello"}


@pytest.mark.client("langchain", "embeddings")
def test_embeddings(gateway: Gateway) -> None:
    mark = gateway.upstreams.mark()
    emb = OpenAIEmbeddings(base_url=gateway.v1, api_key="unused", model="embed", check_embedding_ctx_length=False)  # type: ignore[arg-type]
    vectors = emb.embed_documents(["first text", "second text"])
    assert [len(v) for v in vectors] == [256, 256]
    assert [b["input"] for b in gateway.upstreams.openai_since(mark)] == [["first text", "second text"]]


@pytest.mark.client("langchain", "completions")
def test_legacy_llm(gateway: Gateway) -> None:
    mark = gateway.upstreams.mark()
    llm = OpenAI(base_url=gateway.v1, api_key="unused", model="gpt", max_retries=0, max_tokens=64)  # type: ignore[arg-type]
    assert llm.invoke("Say hello") == ANSWER
    [sent] = gateway.upstreams.openai_since(mark)
    assert sent["messages"] == [{"role": "user", "content": "Say hello"}] and sent["max_tokens"] == 64
    # generate() batches its prompts into one request (a prompt list): each is answered, in order.
    mark = gateway.upstreams.mark()
    result = llm.generate(["First prompt", "Second prompt"])
    assert [[g.text for g in gens] for gens in result.generations] == [[ANSWER], [ANSWER]]
    asked = sorted(b["messages"][0]["content"] for b in gateway.upstreams.openai_since(mark))
    assert asked == ["First prompt", "Second prompt"]
