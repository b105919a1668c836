"""The embedding adapters over real HTTP against the recording fake upstream: what is sent, what comes back, what
breaks (OpenAI-compatible servers, Gemini), and the simulated model's vectors."""

from __future__ import annotations

import asyncio
import json
import math
from typing import Any

import pytest

from llm_manager._http import HttpClient
from llm_manager.embedding import EmbedCall
from llm_manager.errors import AuthenticationError, InvalidRequestError, ModelUnavailableError, RateLimitError
from llm_manager.providers.base import Endpoint
from llm_manager.providers.gemini_embeddings import GeminiEmbeddingsAdapter
from llm_manager.providers.openai_embeddings import OpenAIEmbeddingsAdapter
from llm_manager.providers.simulated_embeddings import SimulatedEmbeddingsAdapter, simulated_vector
from llm_manager.types import Request
from tests.fakes import embeddings_wire as wire
from tests.fakes import gemini_wire, openai_wire
from tests.fakes.server import FakeUpstream, Recorded, Reply


def openai_adapter(upstream: FakeUpstream, http: HttpClient, model: str = "text-embedding-3-small", **kw: Any):
    fields: dict[str, Any] = {"name": "emb", "provider": "openai", "model": model, "base_url": upstream.url + "/v1"}
    fields.update(kw)
    return OpenAIEmbeddingsAdapter(Endpoint(**fields), http)


def gemini_adapter(upstream: FakeUpstream, http: HttpClient, model: str = "gemini-embedding-001"):
    return GeminiEmbeddingsAdapter(
        Endpoint(name="gem", provider="gemini", model=model, base_url=upstream.url + "/v1beta"), http
    )


# -- OpenAI-compatible ---------------------------------------------------------------------------------------------


async def test_openai_request_and_answer(upstream: FakeUpstream, http: HttpClient) -> None:
    adapter = openai_adapter(upstream, http, headers={"X-Title": "t"}, extra_body={"truncate": "END"})
    vecs = [wire.vector(1, 4), wire.vector(2, 4)]
    upstream.push(Reply.json(wire.openai_list(vecs, b64=True, prompt_tokens=3, model="text-embedding-3-small")))
    got = await adapter.embed(EmbedCall(["a", "b"], dimensions=4, user="u"), api_key="sk-1")
    assert (got.vectors, got.prompt_tokens, got.model, got.dropped) == (vecs, 3, "text-embedding-3-small", [])
    sent = upstream.requests[0]
    assert (sent.method, sent.path) == ("POST", "/v1/embeddings")
    assert sent.headers["authorization"] == "Bearer sk-1" and sent.headers["x-title"] == "t"
    assert sent.json == {
        "model": "text-embedding-3-small",
        "input": ["a", "b"],
        "encoding_format": "base64",
        "dimensions": 4,
        "user": "u",
        "truncate": "END",
    }


async def test_a_server_answering_numbers_is_read_too(upstream: FakeUpstream, http: HttpClient) -> None:
    # Ollama-style: ignores encoding_format and answers JSON numbers; no key sent to a local server.
    adapter = openai_adapter(upstream, http, model="nomic-embed-text")
    upstream.push(Reply.json(wire.openai_list([wire.vector(3, 8)], model="nomic-embed-text")))
    got = await adapter.embed(EmbedCall(["hi"]), api_key=None)
    assert got.vectors == [wire.vector(3, 8)]
    assert "authorization" not in upstream.requests[0].headers


async def test_input_type_becomes_the_models_prefix(upstream: FakeUpstream, http: HttpClient) -> None:
    nomic = openai_adapter(upstream, http, model="nomic-embed-text:latest")
    upstream.push(Reply.json(wire.openai_list([wire.vector(1, 3)])), Reply.json(wire.openai_list([wire.vector(1, 3)])))
    got = await nomic.embed(EmbedCall(["where is it"], input_type="query"), api_key=None)
    assert upstream.requests[0].json["input"] == ["search_query: where is it"] and got.dropped == []
    other = await nomic.embed(EmbedCall(["x"], input_type="similarity"), api_key=None)
    assert upstream.requests[1].json["input"] == ["x"] and other.dropped == ["input_type"]


async def test_input_type_is_reported_dropped_by_openai_models(upstream: FakeUpstream, http: HttpClient) -> None:
    upstream.push(Reply.json(wire.openai_list([wire.vector(1, 3)])))
    got = await openai_adapter(upstream, http).embed(EmbedCall(["x"], input_type="query"), api_key="k")
    assert got.dropped == ["input_type"] and "input_type" not in upstream.requests[0].json


async def test_token_input_is_sent_as_is(upstream: FakeUpstream, http: HttpClient) -> None:
    upstream.push(Reply.json(wire.openai_list([wire.vector(1, 3), wire.vector(2, 3)])))
    await openai_adapter(upstream, http).embed(EmbedCall([], tokens=[[1, 2], [3]]), api_key="k")
    assert upstream.requests[0].json["input"] == [[1, 2], [3]]


async def test_errors_are_mapped_like_chat(upstream: FakeUpstream, http: HttpClient) -> None:
    adapter = openai_adapter(upstream, http)
    upstream.push(
        Reply.error(429, openai_wire.error_body("slow down", "requests", "rate_limit_exceeded"), {"retry-after": "3"}),
        Reply.error(401, openai_wire.error_body("bad key", "invalid_request_error", "invalid_api_key")),
        Reply.json({"object": "list", "data": []}),
    )
    with pytest.raises(RateLimitError) as rate:
        await adapter.embed(EmbedCall(["a"]), api_key="k")
    assert (rate.value.retry_after, rate.value.deployment) == (3.0, "emb")
    with pytest.raises(AuthenticationError):
        await adapter.embed(EmbedCall(["a"]), api_key="k")
    with pytest.raises(ModelUnavailableError, match="no vector for input"):
        await adapter.embed(EmbedCall(["a"]), api_key="k")


async def test_large_requests_go_in_slices(upstream: FakeUpstream, http: HttpClient) -> None:
    def answer(req: Recorded) -> Reply:
        texts = req.json["input"]
        return Reply.json(wire.openai_list([wire.vector(int(t), 2) for t in texts], prompt_tokens=len(texts)))

    upstream.default = answer
    texts = [str(i) for i in range(2050)]
    got = await openai_adapter(upstream, http).embed(EmbedCall(texts), api_key="k")
    assert [len(r.json["input"]) for r in upstream.requests] == [2048, 2]
    assert got.vectors == [wire.vector(i, 2) for i in range(2050)] and got.prompt_tokens == 2050


async def test_chat_is_refused_by_an_embedding_adapter(upstream: FakeUpstream, http: HttpClient) -> None:
    adapter = openai_adapter(upstream, http)
    with pytest.raises(InvalidRequestError, match="embedding model"):
        await adapter.complete(Request(prompt="hi"), api_key="k")
    with pytest.raises(InvalidRequestError, match="embedding model"):
        adapter.stream(Request(prompt="hi"), api_key="k")
    assert upstream.requests == []


async def test_probe_lists_models(upstream: FakeUpstream, http: HttpClient) -> None:
    upstream.push(Reply.json(openai_wire.models_list("text-embedding-3-small")))
    await openai_adapter(upstream, http).probe(api_key="k")
    assert (upstream.requests[0].method, upstream.requests[0].path) == ("GET", "/v1/models")


# -- Gemini --------------------------------------------------------------------------------------------------------


async def test_gemini_request_and_answer(upstream: FakeUpstream, http: HttpClient) -> None:
    vecs = [wire.vector(1, 5), wire.vector(2, 5)]
    upstream.push(Reply.json(wire.gemini_batch(vecs)))
    got = await gemini_adapter(upstream, http).embed(
        EmbedCall(["a", "b"], dimensions=5, input_type="query"), api_key="g-key"
    )
    assert (got.vectors, got.prompt_tokens, got.dropped) == (vecs, None, [])  # no usage: the manager estimates
    sent = upstream.requests[0]
    assert sent.path == "/v1beta/models/gemini-embedding-001:batchEmbedContents"
    assert sent.headers["x-goog-api-key"] == "g-key" and "key=" not in sent.path
    assert [r["taskType"] for r in sent.json["requests"]] == ["RETRIEVAL_QUERY"] * 2
    assert [r["outputDimensionality"] for r in sent.json["requests"]] == [5, 5]


async def test_gemini_slices_of_100_run_concurrently(upstream: FakeUpstream, http: HttpClient) -> None:
    def answer(req: Recorded) -> Reply:
        n = len(req.json["requests"])
        body = json.dumps(wire.gemini_batch([wire.vector(n, 2)] * n, prompt_tokens=n)).encode()
        # Every answer waits: sent one after another, the second slice could not arrive before the first answer.
        return Reply(status=200, headers={"content-type": "application/json"}, body=body, delay_s=1.5)

    upstream.default = answer
    task = asyncio.ensure_future(gemini_adapter(upstream, http).embed(EmbedCall(["t"] * 250), api_key="k"))
    for _ in range(120):
        if len(upstream.requests) == 3:
            break
        await asyncio.sleep(0.01)
    assert len(upstream.requests) == 3 and not task.done()
    got = await task
    assert sorted(len(r.json["requests"]) for r in upstream.requests) == [50, 100, 100]
    assert len(got.vectors) == 250 and got.prompt_tokens == 250


async def test_gemini_errors(upstream: FakeUpstream, http: HttpClient) -> None:
    adapter = gemini_adapter(upstream, http)
    upstream.push(
        Reply.error(429, gemini_wire.error_body(429, "RESOURCE_EXHAUSTED", "quota", retry_delay="7s")),
        Reply.error(
            400, gemini_wire.error_body(400, "INVALID_ARGUMENT", "API key not valid", reason="API_KEY_INVALID")
        ),
    )
    with pytest.raises(RateLimitError) as rate:
        await adapter.embed(EmbedCall(["a"]), api_key="k")
    assert rate.value.retry_after == 7.0 and rate.value.deployment == "gem"
    with pytest.raises(AuthenticationError):
        await adapter.embed(EmbedCall(["a"]), api_key="k")
    with pytest.raises(InvalidRequestError, match="token ids"):
        await adapter.embed(EmbedCall([], tokens=[[1]]), api_key="k")


async def test_a_failed_slice_fails_the_call_and_stops_the_others(upstream: FakeUpstream, http: HttpClient) -> None:
    upstream.push(
        Reply.error(503, gemini_wire.error_body(503, "UNAVAILABLE", "overloaded")),
        Reply(status=200, headers={"content-type": "application/json"}, body=b"{}", delay_s=30),
    )
    with pytest.raises(ModelUnavailableError):
        await asyncio.wait_for(gemini_adapter(upstream, http).embed(EmbedCall(["t"] * 150), api_key="k"), 5)


# -- simulated -----------------------------------------------------------------------------------------------------


def _cos(a: list[float], b: list[float]) -> float:
    return sum(x * y for x, y in zip(a, b, strict=True))


def test_simulated_vectors_are_deterministic_unit_and_similar_for_similar_text() -> None:
    a = simulated_vector("How do I cancel my order?", 256, 7)
    assert a == simulated_vector("How do I cancel my order?", 256, 7)
    assert math.isclose(math.sqrt(_cos(a, a)), 1.0, rel_tol=1e-6)
    near = simulated_vector("how can I cancel an order", 256, 7)
    far = simulated_vector("The weather in Lisbon is sunny today", 256, 7)
    assert _cos(a, near) > 0.5 > 0.2 > abs(_cos(a, far))
    assert a != simulated_vector("How do I cancel my order?", 256, 8)  # another seed or model: another space


async def test_simulated_adapter_scripts_failures_and_sizes(http: HttpClient) -> None:
    endpoint = Endpoint(name="sim-embed", provider="simulated", model="sim-embed", seed=3)
    adapter = SimulatedEmbeddingsAdapter(endpoint, http)
    adapter.behaviour = adapter.behaviour.model_copy(update={"latency_ms": 0.0, "first_token_ms": 0.0})
    adapter.push("429:0.5")
    with pytest.raises(RateLimitError):
        await adapter.embed(EmbedCall(["x"], size=16), api_key=None)
    got = await adapter.embed(EmbedCall(["x", "y"], size=16), api_key=None)
    assert [len(v) for v in got.vectors] == [16, 16] and got.prompt_tokens == 2
    again = await adapter.embed(EmbedCall(["x"], size=16), api_key=None)
    assert again.vectors[0] == got.vectors[0]
    assert [c.texts for c in adapter.calls_received] == [["x"], ["x", "y"], ["x"]]
