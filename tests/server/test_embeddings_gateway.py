"""``/v1/embeddings`` through the official ``openai`` SDK: the gateway in front of recording fake upstreams (OpenAI
and an OpenAI-compatible server) and a simulated model. What the SDK gets back, and what reached the upstreams."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import httpx
import openai
import pytest

from llm_manager.config import load_settings
from tests.fakes import embeddings_wire as wire
from tests.fakes import openai_wire
from tests.fakes.server import FakeUpstream, Recorded, Reply, serve_in_thread
from tests.helpers import instant
from tests.server.conftest import Gateway, start_gateway

SIZE = 512


def _answer(req: Recorded) -> Reply:
    body = req.json
    inputs = body["input"] if isinstance(body["input"], list) else [body["input"]]
    vecs = [wire.vector(i + 1, body.get("dimensions", 1536)) for i in range(len(inputs))]
    b64 = body.get("encoding_format") == "base64"
    return Reply.json(wire.openai_list(vecs, model=body["model"], prompt_tokens=3 * len(inputs), b64=b64))


@pytest.fixture(scope="module")
def upstreams() -> Iterator[tuple[FakeUpstream, FakeUpstream]]:
    with serve_in_thread(FakeUpstream(_answer)) as oa, serve_in_thread(FakeUpstream(_answer)) as local:
        yield oa, local


@pytest.fixture(scope="module")
def gw(upstreams: tuple[FakeUpstream, FakeUpstream]) -> Iterator[Gateway]:
    oa, local = upstreams
    settings = load_settings(
        {
            "models": {
                "small": {
                    "provider": "openai",
                    "model": "text-embedding-3-small",
                    "base_url": oa.url + "/v1",
                    "api_key": "sk-up",
                    "dimensions": SIZE,
                    "aliases": ["vectors"],
                },
                "vllm-large": {
                    "provider": "openai-compatible",
                    "preset": "vllm",
                    "model": "text-embedding-3-large",
                    "base_url": local.url + "/v1",
                    "dimensions": SIZE,
                },
                "sim": {"provider": "simulated", "kind": "embedding", "dimensions": 64, "simulate": instant()},
                "gpt": {"provider": "simulated", "family": "gpt", "simulate": instant()},
            },
            "routing": {"max_retries": 0},
            "cache": {"enabled": False},
        },
        env={},
    )
    yield from start_gateway(settings)


@pytest.fixture
def client(gw: Gateway, upstreams: tuple[FakeUpstream, FakeUpstream]) -> Iterator[openai.OpenAI]:
    for up in upstreams:
        up.requests.clear()
        up.queue.clear()
    with openai.OpenAI(base_url=f"{gw.url}/v1", api_key="x", max_retries=0, timeout=10) as c:
        yield c


def test_sdk_default_base64_round_trip(client: openai.OpenAI, upstreams: tuple[FakeUpstream, FakeUpstream]) -> None:
    raw = client.embeddings.with_raw_response.create(input=["first", "second"], model="small", user="ann")
    got = raw.parse()
    assert [d.embedding for d in got.data] == [wire.vector(1, SIZE), wire.vector(2, SIZE)]
    assert (got.model, got.usage.prompt_tokens, got.usage.total_tokens) == ("text-embedding-3-small", 6, 6)
    assert raw.headers["x-llm-model"] == "small" and raw.headers["x-llm-attempts"] == "1"
    assert raw.headers["x-llm-cost"] == str(6 * 0.02 / 1_000_000) or raw.headers["x-llm-cost"].startswith("1.2")
    sent = upstreams[0].requests[-1]
    assert sent.headers["authorization"] == "Bearer sk-up" and sent.path == "/v1/embeddings"
    assert sent.json == {
        "model": "text-embedding-3-small",
        "input": ["first", "second"],
        "encoding_format": "base64",
        "dimensions": SIZE,
        "user": "ann",
    }
    wire_body = json.loads(raw.http_response.content)
    assert isinstance(wire_body["data"][0]["embedding"], str)  # the SDK asked for base64, and got it


def test_float_encoding_and_a_single_string(client: openai.OpenAI) -> None:
    raw = client.embeddings.with_raw_response.create(input="only one", model="vectors", encoding_format="float")
    body = json.loads(raw.http_response.content)
    assert body["object"] == "list" and body["data"][0]["object"] == "embedding"
    assert body["data"][0]["embedding"] == wire.vector(1, SIZE)
    assert raw.parse().data[0].embedding == wire.vector(1, SIZE)


def test_fallback_to_the_same_size_on_an_openai_compatible_server(
    client: openai.OpenAI, upstreams: tuple[FakeUpstream, FakeUpstream]
) -> None:
    oa, local = upstreams
    oa.push(Reply.error(503, openai_wire.error_body("overloaded", "server_error")))
    raw = client.embeddings.with_raw_response.create(input=["x"], model="task:embedding", dimensions=SIZE)
    assert raw.headers["x-llm-model"] == "vllm-large" and raw.headers["x-llm-attempts"] == "2"
    assert local.requests[-1].json["model"] == "text-embedding-3-large"
    assert local.requests[-1].json["dimensions"] == SIZE and "authorization" not in local.requests[-1].headers


def test_token_arrays_pass_to_openai_and_are_refused_where_unsupported(
    client: openai.OpenAI, upstreams: tuple[FakeUpstream, FakeUpstream]
) -> None:
    client.embeddings.create(input=[[9906, 1917], [0]], model="small")
    assert upstreams[0].requests[-1].json["input"] == [[9906, 1917], [0]]
    with pytest.raises(openai.BadRequestError) as info:
        client.embeddings.create(input=[1, 2, 3], model="sim")
    assert "takes text, not token ids" in info.value.message


def test_dimensions_pick_a_model_that_can_make_them(
    client: openai.OpenAI, upstreams: tuple[FakeUpstream, FakeUpstream]
) -> None:
    got = client.embeddings.create(input="x", model="sim")
    assert len(got.data[0].embedding) == 64
    # sim makes only 64: the next candidate that can shorten its vectors to 32 answers, asked for 32.
    raw = client.embeddings.with_raw_response.create(input="x", model="sim", dimensions=32)
    assert raw.headers["x-llm-model"] == "small" and len(raw.parse().data[0].embedding) == 32
    assert upstreams[0].requests[-1].json["dimensions"] == 32
    with pytest.raises(openai.BadRequestError) as info:
        client.embeddings.create(input="x", model="sim", dimensions=4000)
    assert "not 4000" in info.value.message


def test_dropped_params_are_named(client: openai.OpenAI, upstreams: tuple[FakeUpstream, FakeUpstream]) -> None:
    raw = client.embeddings.with_raw_response.create(
        input="x", model="small", extra_body={"input_type": "query", "truncate": "END"}
    )
    assert raw.headers["x-llm-dropped-params"] == "input_type,truncate"
    assert "truncate" not in upstreams[0].requests[-1].json and "input_type" not in upstreams[0].requests[-1].json


@pytest.mark.parametrize(
    ("kwargs", "error", "text"),
    [
        ({"model": "nope"}, openai.NotFoundError, "does not exist"),
        ({"model": "gpt"}, openai.BadRequestError, "not an embedding model"),
        ({"model": "task:general"}, openai.BadRequestError, "routes chat models"),
        ({"model": "task:poetry"}, openai.BadRequestError, "unknown task"),
        ({"model": "small", "input": ""}, openai.BadRequestError, "empty string"),
    ],
)
def test_errors_in_openai_shape(
    client: openai.OpenAI, kwargs: dict[str, Any], error: type[Exception], text: str
) -> None:
    with pytest.raises(error) as info:
        client.embeddings.create(**{"input": "x", **kwargs})
    assert text in str(info.value)


def test_chat_does_not_reach_embedding_models(client: openai.OpenAI) -> None:
    with pytest.raises(openai.BadRequestError, match="embedding model"):
        client.chat.completions.create(model="small", messages=[{"role": "user", "content": "hi"}])


def test_models_list_the_kind_and_dimensions(client: openai.OpenAI, gw: Gateway) -> None:
    ids = {m.id: m for m in client.models.list()}
    assert (ids["small"].model_extra or {}) == {"kind": "embedding", "dimensions": SIZE}
    assert (ids["vectors"].model_extra or {})["kind"] == "embedding"
    assert (ids["gpt"].model_extra or {}) == {"kind": "chat"}
    assert (ids["task:embedding"].model_extra or {}) == {"kind": "embedding"}
    doc = httpx.get(f"{gw.url}/openapi.json").json()
    assert doc["paths"]["/v1/embeddings"]["post"]["operationId"] == "createEmbedding"
    assert {"input", "model", "encoding_format", "dimensions"} <= doc["components"]["schemas"]["EmbeddingsRequest"][
        "properties"
    ].keys()
