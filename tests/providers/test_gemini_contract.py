"""Contract checks: the fake Gemini wire and our request bodies agree with Google's own SDK (``google-genai``).

The SDK's pydantic types forbid unknown fields and warn on unknown enum values (an error here, under
``filterwarnings = error``), so a typo in a fake payload or in a request field we send fails these tests. Skipped when
the SDK is not installed.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest

from llm_manager.codecs.gemini_generate.request import encode_request as build_body
from llm_manager.providers.base import Endpoint
from llm_manager.types import Message, Request
from tests.fakes import gemini_wire as wire
from tests.fakes.server import FakeUpstream, Reply, serve_in_thread

genai = pytest.importorskip("google.genai")
types = pytest.importorskip("google.genai.types")
genai_errors = pytest.importorskip("google.genai.errors")

MODEL = wire.DEFAULT_MODEL


@pytest.fixture
def served() -> Iterator[FakeUpstream]:
    with serve_in_thread(FakeUpstream()) as upstream:
        yield upstream


@pytest.fixture
def client(served: FakeUpstream) -> Iterator[Any]:
    options = types.HttpOptions(
        base_url=served.url, api_version="v1beta", retry_options=types.HttpRetryOptions(attempts=1)
    )
    sdk = genai.Client(api_key="k", http_options=options)
    yield sdk
    sdk.close()


def _data(event: bytes) -> Any:
    assert event.startswith(b"data: ") and event.endswith(b"\r\n\r\n")
    return json.loads(event[len(b"data: ") :])


@pytest.mark.parametrize("finish", ["STOP", "MAX_TOKENS", "SAFETY", "RECITATION", "MALFORMED_FUNCTION_CALL", None])
def test_fake_payloads_validate(finish: str | None) -> None:
    payloads = [
        wire.response("Hi", finish_reason=finish, thought="hmm", thoughts_tokens=4, cached_tokens=2),
        wire.response("", finish_reason=finish, completion_tokens=0),
        *(_data(e) for e in wire.stream_events(["a", "", "b"], finish_reason=finish)),
    ]
    for payload in payloads:
        types.GenerateContentResponse.model_validate(payload)


def test_blocked_payload_validates() -> None:
    parsed = types.GenerateContentResponse.model_validate(wire.blocked("PROHIBITED_CONTENT"))

    assert parsed.prompt_feedback.block_reason == types.BlockedReason.PROHIBITED_CONTENT
    assert not parsed.candidates


def test_request_body_matches_the_sdk(served: FakeUpstream, client: Any) -> None:
    served.push(Reply.json(wire.response("Hi")))
    client.models.generate_content(
        model=MODEL,
        contents=[
            types.Content(role="user", parts=[types.Part(text="a")]),
            types.Content(role="model", parts=[types.Part(text="b")]),
            types.Content(role="user", parts=[types.Part(text="c")]),
        ],
        config=types.GenerateContentConfig(
            system_instruction="S", max_output_tokens=10, temperature=0.3, top_p=0.9, stop_sequences=["END"]
        ),
    )
    sdk_body = served.requests[0].json
    request = Request(
        messages=[Message(role="user", content="a"), Message(role="assistant", content="b")],
        prompt="c",
        system="S",
        max_tokens=10,
        temperature=0.3,
        top_p=0.9,
        stop=["END"],
    )

    ours = build_body(request, Endpoint(name="gem", provider="gemini", model=MODEL))

    # The SDK labels the system instruction with a role; the API ignores it there, so we leave it out.
    assert sdk_body["systemInstruction"].pop("role") == "user"
    assert ours == sdk_body
    assert served.requests[0].path == f"/v1beta/models/{MODEL}:generateContent"


def test_sdk_reads_fake_response(served: FakeUpstream, client: Any) -> None:
    served.push(Reply.json(wire.response("Paris.", prompt_tokens=20, completion_tokens=3, thoughts_tokens=40)))

    got = client.models.generate_content(model=MODEL, contents="Capital of France?")

    assert got.text == "Paris."
    assert got.candidates[0].finish_reason == types.FinishReason.STOP
    assert (got.usage_metadata.prompt_token_count, got.usage_metadata.thoughts_token_count) == (20, 40)


def test_sdk_reads_fake_stream(served: FakeUpstream, client: Any) -> None:
    served.push(Reply.sse(wire.stream_events(["Hel", "lo"], completion_tokens=9)))

    chunks = list(client.models.generate_content_stream(model=MODEL, contents="Hi"))

    assert "".join(c.text for c in chunks) == "Hello"
    assert chunks[-1].candidates[0].finish_reason == types.FinishReason.STOP
    assert chunks[-1].usage_metadata.candidates_token_count == 9
    assert served.requests[0].path == f"/v1beta/models/{MODEL}:streamGenerateContent?alt=sse"


def test_sdk_reads_fake_error(served: FakeUpstream, client: Any) -> None:
    served.push(Reply.error(429, wire.error_body(429, "RESOURCE_EXHAUSTED", "quota", retry_delay="12s")))

    with pytest.raises(genai_errors.ClientError) as info:
        client.models.generate_content(model=MODEL, contents="Hi")

    assert (info.value.code, info.value.status, info.value.message) == (429, "RESOURCE_EXHAUSTED", "quota")
    retry = [d for d in info.value.details["error"]["details"] if d["@type"].endswith("RetryInfo")]
    assert retry == [{"@type": "type.googleapis.com/google.rpc.RetryInfo", "retryDelay": "12s"}]
