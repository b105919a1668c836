"""The Gemini generateContent codec, egress: parts as ``inlineData`` / ``fileData``, portable parameters in
``generationConfig`` (thinking as ``thinkingConfig``), what the API has no field for reported; thought summaries,
their signature and log probabilities read back."""

from __future__ import annotations

import base64
from typing import Any

from llm_manager._http import HttpClient
from llm_manager.codecs.gemini_generate.request import encode_request, unsupported
from llm_manager.profiles import ModelProfile
from llm_manager.providers.base import Endpoint
from llm_manager.providers.gemini import GeminiAdapter
from llm_manager.types import (
    AudioPart,
    FilePart,
    ImagePart,
    Message,
    Passthrough,
    Reasoning,
    ReasoningPart,
    Request,
    ResponseFormat,
    TextPart,
    Tool,
)
from tests.fakes import gemini_wire as wire
from tests.fakes.server import FakeUpstream, Reply

FLASH = Endpoint(name="flash", provider="gemini", model="gemini-2.5-flash", profile=ModelProfile(reasoning=True))
OLD = Endpoint(name="old", provider="gemini", model="gemini-2.0-flash", profile=ModelProfile())


def body(request: Request, target: Endpoint = FLASH) -> dict[str, Any]:
    return encode_request(request, target)


def test_parts_become_inline_data_and_file_data() -> None:
    content = (
        TextPart(text="Describe."),
        ImagePart.from_bytes(b"\xff\xd8\xff\xe0jpeg"),
        AudioPart.from_bytes(b"ID3mp3", "audio/mpeg"),
        FilePart(url="https://example.test/doc.pdf"),
        ImagePart(url="gs://bucket/cat.png", media_type="image/png"),
    )
    parts = body(Request(messages=[Message(role="user", content=content)]))["contents"][0]["parts"]
    assert parts[0] == {"text": "Describe."}
    assert parts[1] == {
        "inlineData": {"mimeType": "image/jpeg", "data": base64.b64encode(b"\xff\xd8\xff\xe0jpeg").decode()}
    }
    assert parts[2]["inlineData"]["mimeType"] == "audio/mpeg"
    assert parts[3] == {"fileData": {"mimeType": "application/pdf", "fileUri": "https://example.test/doc.pdf"}}
    assert parts[4] == {"fileData": {"mimeType": "image/png", "fileUri": "gs://bucket/cat.png"}}


def test_signed_thoughts_go_back_as_thought_parts() -> None:
    history = [
        Message(role="user", content="Hi"),
        Message(role="assistant", content=(ReasoningPart(text="plan", signature="s1"), TextPart(text="Hello"))),
        Message(role="user", content="More"),
    ]
    parts = body(Request(messages=history))["contents"][1]["parts"]
    assert parts == [{"text": "plan", "thought": True, "thoughtSignature": "s1"}, {"text": "Hello"}]


def test_portable_parameters_in_generation_config() -> None:
    request = Request(
        prompt="Hi",
        seed=3,
        top_k=20,
        presence_penalty=0.2,
        frequency_penalty=0.4,
        logprobs=True,
        top_logprobs=2,
        reasoning=Reasoning(effort="low"),
        response_format=ResponseFormat(type="json_object"),
    )
    config = body(request)["generationConfig"]
    assert config == {
        "seed": 3,
        "topK": 20,
        "presencePenalty": 0.2,
        "frequencyPenalty": 0.4,
        "responseLogprobs": True,
        "logprobs": 2,
        "responseMimeType": "application/json",
        "thinkingConfig": {"thinkingBudget": 2048, "includeThoughts": True},
    }
    assert unsupported(request, FLASH).names == []
    assert body(Request(prompt="Hi", reasoning=Reasoning(effort="none")))["generationConfig"]["thinkingConfig"] == {
        "thinkingBudget": 0,
        "includeThoughts": False,
    }


def test_what_gemini_cannot_take_is_reported() -> None:
    request = Request(
        prompt="Hi",
        service_tier="priority",
        reasoning=Reasoning(effort="high"),
        tools=[Tool(name="f")],
        parallel_tool_calls=False,
        passthrough=Passthrough(protocol="openai_chat", fields={"verbosity": "low"}),
    )
    sent = body(request, OLD)
    assert "thinkingConfig" not in sent.get("generationConfig", {}) and "verbosity" not in sent
    assert unsupported(request, OLD).names == ["reasoning", "service_tier", "parallel_tool_calls", "verbosity"]


def test_gemini_passthrough_merges_into_generation_config() -> None:
    request = Request(
        prompt="Hi",
        temperature=0.1,
        passthrough=Passthrough(
            protocol="gemini_generate", fields={"generationConfig": {"mediaResolution": "LOW"}, "safetySettings": []}
        ),
    )
    sent = body(request)
    assert sent["generationConfig"] == {"temperature": 0.1, "mediaResolution": "LOW"} and sent["safetySettings"] == []


async def test_thoughts_signature_and_logprobs_read_back(upstream: FakeUpstream, http: HttpClient) -> None:
    answer = wire.response("Hello", thought="consider greeting", thoughts_tokens=30)
    answer["candidates"][0]["content"]["parts"][1]["thoughtSignature"] = "sig"
    answer["candidates"][0]["logprobsResult"] = {
        "topCandidates": [
            {"candidates": [{"token": "Hello", "logProbability": -0.1}, {"token": "Hi", "logProbability": -2.5}]}
        ],
        "chosenCandidates": [{"token": "Hello", "logProbability": -0.1}],
    }
    upstream.push(Reply.json(answer))
    endpoint = Endpoint(name="flash", provider="gemini", model="gemini-2.5-flash", base_url=upstream.url)
    got = await GeminiAdapter(endpoint, http).complete(Request(prompt="Hi", logprobs=True), api_key="k")
    assert (got.text, got.reasoning, got.reasoning_signature, got.reasoning_tokens) == (
        "Hello",
        "consider greeting",
        "sig",
        30,
    )
    assert got.logprobs is not None and [t.token for t in got.logprobs[0].top_logprobs] == ["Hello", "Hi"]
