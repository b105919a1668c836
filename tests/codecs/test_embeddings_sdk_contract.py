"""Contract checks: our embedding codecs and fakes agree with the official SDKs (``openai``, ``google-genai``).

Each SDK is pointed at a recording fake upstream: what it sends is what our adapters must send (our encoder's body is
compared with it field for field), and what the fakes answer must parse as the SDK's own types. The gateway's answers
(:func:`encode_response`) must also parse as the ``openai`` SDK's types, in both encodings.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import openai
import pytest
from openai._models import construct_type
from openai.lib._parsing._embeddings import parse_embedding_response
from openai.types import CreateEmbeddingResponse

from llm_manager.codecs import gemini_embeddings as gcodec
from llm_manager.codecs import openai_embeddings as ocodec
from llm_manager.embedding import EmbedCall
from tests.fakes import embeddings_wire as wire
from tests.fakes.server import FakeUpstream, Reply, serve_in_thread

genai = pytest.importorskip("google.genai")
types = pytest.importorskip("google.genai.types")


@pytest.fixture
def served() -> Iterator[FakeUpstream]:
    with serve_in_thread(FakeUpstream()) as upstream:
        yield upstream


# -- OpenAI --------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("b64", [True, False])
def test_openai_sdk_sends_what_we_send_and_reads_the_fake(served: FakeUpstream, b64: bool) -> None:
    vecs = [wire.vector(1, 256), wire.vector(2, 256)]
    served.push(Reply.json(wire.openai_list(vecs, prompt_tokens=5, b64=b64, order=[1, 0])))
    with openai.OpenAI(base_url=served.url + "/v1", api_key="k", max_retries=0, timeout=5) as client:
        got = client.embeddings.create(
            input=["first text", "second"], model="text-embedding-3-small", dimensions=256, user="u-1"
        )
    assert sorted((e.index, e.embedding) for e in got.data) == [(0, vecs[0]), (1, vecs[1])]
    assert got.usage.prompt_tokens == 5
    sent = served.requests[0]
    assert (sent.method, sent.path) == ("POST", "/v1/embeddings")
    ours = ocodec.encode_request(
        "text-embedding-3-small", EmbedCall(["first text", "second"], dimensions=256, user="u-1")
    )
    assert sent.json == ours  # the SDK asks for base64 when its caller does not choose: so do we


def test_openai_sdk_token_input_matches_ours(served: FakeUpstream) -> None:
    served.push(Reply.json(wire.openai_list([wire.vector(3, 8)])))
    with openai.OpenAI(base_url=served.url + "/v1", api_key="k", max_retries=0, timeout=5) as client:
        client.embeddings.create(input=[[9906, 1917]], model="text-embedding-3-small", encoding_format="float")
    ours = ocodec.encode_request(
        "text-embedding-3-small", EmbedCall([], tokens=[[9906, 1917]]), encoding_format="float"
    )
    assert served.requests[0].json == ours


@pytest.mark.parametrize("fmt", ["float", "base64"])
def test_our_response_parses_as_the_sdk_type(fmt: ocodec.EncodingFormat) -> None:
    vecs = [wire.vector(5, 12), wire.vector(6, 12)]
    body = json.loads(ocodec.encode_response(vecs, model="emb", prompt_tokens=7, encoding_format=fmt))
    if fmt == "float":
        parsed = CreateEmbeddingResponse.model_validate(body)
        assert not parsed.model_extra and not parsed.data[0].model_extra
    else:  # the type says list[float]: the SDK builds it leniently, then decodes the base64 strings
        parsed = construct_type(type_=CreateEmbeddingResponse, value=body)
    # How the SDK decodes base64 when its caller did not ask for a format (its default).
    decoded = parse_embedding_response(parsed, encoding_format=openai.omit)
    assert [d.embedding for d in decoded.data] == vecs
    assert (decoded.model, decoded.usage.prompt_tokens, decoded.usage.total_tokens) == ("emb", 7, 7)
    # And our own models describe it (the OpenAPI document is generated from them).
    ocodec.EmbeddingsResponse.model_validate(body)


def test_fake_answers_validate_as_sdk_type() -> None:
    parsed = CreateEmbeddingResponse.model_validate(wire.openai_list([wire.vector(1, 4)]))
    assert not parsed.model_extra and not parsed.data[0].model_extra


# -- Gemini --------------------------------------------------------------------------------------------------------


@pytest.fixture
def gclient(served: FakeUpstream) -> Iterator[Any]:
    options = types.HttpOptions(
        base_url=served.url, api_version="v1beta", retry_options=types.HttpRetryOptions(attempts=1)
    )
    sdk = genai.Client(api_key="k", http_options=options)
    yield sdk
    sdk.close()


@pytest.mark.parametrize(
    ("task", "input_type"), [("RETRIEVAL_QUERY", "query"), ("CLUSTERING", "clustering"), (None, None)]
)
def test_genai_sdk_sends_what_we_send(served: FakeUpstream, gclient: Any, task: str | None, input_type: Any) -> None:
    vecs = [wire.vector(1, 768), wire.vector(2, 768)]
    served.push(Reply.json(wire.gemini_batch(vecs, prompt_tokens=6)))
    config: dict[str, Any] = {"output_dimensionality": 768}
    if task:
        config["task_type"] = task
    got = gclient.models.embed_content(model="gemini-embedding-001", contents=["one", "two"], config=config)
    assert [e.values for e in got.embeddings] == vecs
    sent = served.requests[0]
    assert sent.path == "/v1beta/models/gemini-embedding-001:batchEmbedContents"
    assert sent.headers["x-goog-api-key"] == "k"
    ours = gcodec.encode_request(
        "gemini-embedding-001", EmbedCall(["one", "two"], dimensions=768, input_type=input_type)
    )
    assert sent.json == ours
    # The ingress direction reads the SDK's body back into the same call.
    back = gcodec.decode_request(sent.json, batch=True)
    assert (back.texts, back.dimensions, back.input_type) == (["one", "two"], 768, input_type)


def test_gemini_fake_and_our_encoding_validate_as_sdk_types() -> None:
    vecs = [wire.vector(1, 4), wire.vector(2, 4)]
    for payload in (wire.gemini_batch(vecs), wire.gemini_batch(vecs, prompt_tokens=3)):
        types.EmbedContentResponse.model_validate(payload)
    ours = json.loads(gcodec.encode_response(vecs, batch=True, prompt_tokens=3))
    parsed = types.EmbedContentResponse.model_validate(ours)
    assert [e.values for e in parsed.embeddings or []] == vecs
    single = json.loads(gcodec.encode_response(vecs[:1], batch=False))
    assert types.ContentEmbedding.model_validate(single["embedding"]).values == vecs[0]
    assert gcodec.decode_response(json.dumps(single).encode(), 1).vectors == vecs[:1]
