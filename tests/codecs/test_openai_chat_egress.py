"""The OpenAI Chat Completions codec, egress: content parts and portable parameters as OpenAI takes them, what a
deployment cannot take reported (never silently dropped), and the answer's reasoning, log probabilities and
fingerprint read back — on the wire, through the adapter and a loopback upstream."""

from __future__ import annotations

import base64
import json
from typing import Any

import pytest

from llm_manager._http import HttpClient
from llm_manager.codecs.openai_chat.request import encode_request, unsupported
from llm_manager.errors import InvalidRequestError
from llm_manager.profiles import ModelProfile
from llm_manager.providers.base import Endpoint
from llm_manager.providers.openai_chat import OpenAIChatAdapter
from llm_manager.types import (
    AudioPart,
    FilePart,
    ImagePart,
    Message,
    Passthrough,
    Reasoning,
    ReasoningPart,
    Request,
    TextPart,
)
from tests.fakes import openai_wire as wire
from tests.fakes.server import FakeUpstream, Reply

PNG = b"\x89PNG\r\n\x1a\n" + b"\x00" * 16
GPT = Endpoint(name="gpt", provider="openai", model="gpt-4o", profile=ModelProfile())
O3 = Endpoint(
    name="o3",
    provider="openai",
    model="o3",
    profile=ModelProfile(reasoning=True, max_tokens_field="max_completion_tokens"),
)


def body(request: Request, target: Endpoint = GPT) -> dict[str, Any]:
    return encode_request(request, target, stream=False)


def test_parts_become_openai_content_parts() -> None:
    content = (
        TextPart(text="Compare these."),
        ImagePart(url="https://example.test/a.png", detail="low"),
        ImagePart.from_bytes(PNG),
        AudioPart.from_bytes(b"RIFF....WAVEfmt ", "audio/wav"),
        FilePart.from_bytes(b"%PDF-1.7 ...", filename="report.pdf"),
        FilePart(file_id="file-abc"),
    )
    sent = body(Request(messages=[Message(role="user", content=content)]))["messages"][0]["content"]
    assert sent[0] == {"type": "text", "text": "Compare these."}
    assert sent[1] == {"type": "image_url", "image_url": {"url": "https://example.test/a.png", "detail": "low"}}
    assert sent[2] == {
        "type": "image_url",
        "image_url": {"url": "data:image/png;base64," + base64.b64encode(PNG).decode()},
    }
    assert sent[3]["type"] == "input_audio" and sent[3]["input_audio"]["format"] == "wav"
    assert base64.b64decode(sent[3]["input_audio"]["data"]) == b"RIFF....WAVEfmt "
    assert sent[4] == {
        "type": "file",
        "file": {
            "file_data": "data:application/pdf;base64," + base64.b64encode(b"%PDF-1.7 ...").decode(),
            "filename": "report.pdf",
        },
    }
    assert sent[5] == {"type": "file", "file": {"file_id": "file-abc"}}


def test_two_text_parts_stay_two_parts() -> None:
    # Joining them would run "Hello" and "world" together: they reach OpenAI as the client sent them.
    content = (TextPart(text="Hello"), TextPart(text="world"))
    sent = body(Request(messages=[Message(role="user", content=content)]))["messages"][0]["content"]
    assert sent == [{"type": "text", "text": "Hello"}, {"type": "text", "text": "world"}]


def test_reasoning_of_an_earlier_turn_is_not_sent_back() -> None:
    history = [
        Message(role="user", content="Hi"),
        Message(role="assistant", content=(ReasoningPart(text="thinking", signature="sig"), TextPart(text="Hello!"))),
        Message(role="user", content="And?"),
    ]
    assert body(Request(messages=history))["messages"][1] == {"role": "assistant", "content": "Hello!"}


def test_audio_other_than_wav_or_mp3_is_refused_by_name() -> None:
    request = Request(messages=[Message(role="user", content=(AudioPart.from_bytes(b"OggS", "audio/ogg"),))])
    with pytest.raises(InvalidRequestError, match="WAV or MP3"):
        body(request)


def test_portable_parameters_on_the_wire() -> None:
    request = Request(
        prompt="Hi",
        seed=7,
        frequency_penalty=0.5,
        presence_penalty=-0.5,
        logprobs=True,
        top_logprobs=3,
        service_tier="flex",
        stop=["END"],
        user="u1",
        response_format={"type": "json_object"},
    )
    sent = body(request)
    assert {k: sent[k] for k in ("seed", "frequency_penalty", "presence_penalty", "logprobs", "top_logprobs")} == {
        "seed": 7,
        "frequency_penalty": 0.5,
        "presence_penalty": -0.5,
        "logprobs": True,
        "top_logprobs": 3,
    }
    assert (sent["service_tier"], sent["stop"], sent["user"]) == ("flex", ["END"], "u1")
    assert sent["response_format"] == {"type": "json_object"}
    assert unsupported(request, GPT).names == []


def test_top_k_goes_to_servers_that_take_it_and_is_reported_elsewhere() -> None:
    request = Request(prompt="Hi", top_k=40)
    local = Endpoint(name="vllm", provider="openai", model="llama", profile=ModelProfile(sampling=frozenset({"top_k"})))
    assert body(request, local)["top_k"] == 40 and unsupported(request, local).names == []
    assert "top_k" not in body(request)
    assert unsupported(request, GPT).names == ["top_k"]


def test_reasoning_effort_for_reasoning_models_and_its_sampling_rules() -> None:
    request = Request(prompt="Hi", max_tokens=20, reasoning=Reasoning(budget_tokens=9000), temperature=0.3, top_p=0.5)
    sent = body(request, O3)
    assert sent["reasoning_effort"] == "high" and sent["max_completion_tokens"] == 20
    assert "temperature" not in sent and "top_p" not in sent
    dropped = unsupported(request, O3)
    assert dropped.names == ["temperature", "top_p"]
    assert all("reasoning model" in w for w in dropped.warnings("o3"))
    # A model that does not reason is not sent an effort it would refuse: reported instead.
    assert "reasoning_effort" not in body(request) and unsupported(request, GPT).names == ["reasoning"]


def test_provider_specific_fields_pass_through_only_to_their_protocol() -> None:
    fields = {"prediction": {"type": "content", "content": "x"}, "verbosity": "low", "store": True}
    mine = Request(prompt="Hi", passthrough=Passthrough(protocol="openai_chat", fields=fields))
    sent = body(mine)
    assert {k: sent[k] for k in fields} == fields and unsupported(mine, GPT).names == []
    theirs = Request(prompt="Hi", passthrough=Passthrough(protocol="anthropic_messages", fields={"container": "c1"}))
    assert "container" not in body(theirs)
    dropped = unsupported(theirs, GPT)
    assert dropped.names == ["container"] and "anthropic_messages" in dropped.warnings("gpt")[0]


def test_extra_body_has_the_last_word_over_passthrough() -> None:
    target = Endpoint(name="gpt", provider="openai", model="gpt-4o", extra_body={"store": False})
    request = Request(prompt="Hi", passthrough=Passthrough(protocol="openai_chat", fields={"store": True}))
    assert body(request, target)["store"] is False


def test_cache_breakpoints_are_reported_not_sent() -> None:
    content = (TextPart(text="long context", cache_control={"type": "ephemeral"}), TextPart(text="question"))
    request = Request(messages=[Message(role="user", content=content)])
    assert "cache_control" not in json.dumps(body(request))
    assert unsupported(request, GPT).names == ["cache_control"]


# --- answers, over the wire --------------------------------------------------------------------------------------


def adapter(upstream: FakeUpstream, http: HttpClient) -> OpenAIChatAdapter:
    return OpenAIChatAdapter(Endpoint(name="ds", provider="openai", model="deepseek-r1", base_url=upstream.url), http)


async def test_reasoning_logprobs_and_fingerprint_of_a_whole_answer(upstream: FakeUpstream, http: HttpClient) -> None:
    answer = wire.completion("42")
    answer["choices"][0]["message"]["reasoning_content"] = "6 times 7"
    answer["choices"][0]["logprobs"] = {
        "content": [
            {"token": "42", "logprob": -0.1, "bytes": [52, 50], "top_logprobs": [{"token": "41", "logprob": -3.0}]}
        ]
    }
    answer["usage"]["completion_tokens_details"]["reasoning_tokens"] = 4
    upstream.push(Reply.json(answer))
    got = await adapter(upstream, http).complete(Request(prompt="6x7?", logprobs=True), api_key=None)
    assert (got.text, got.reasoning, got.reasoning_tokens, got.system_fingerprint) == (
        "42",
        "6 times 7",
        4,
        wire.FINGERPRINT,
    )
    assert got.logprobs is not None and got.logprobs[0].token == "42" and got.logprobs[0].top_logprobs[0].token == "41"
    assert upstream.requests[0].json["logprobs"] is True


async def test_streamed_reasoning_comes_before_the_text(upstream: FakeUpstream, http: HttpClient) -> None:
    events = wire.stream_events(["4", "2"])
    cid = json.loads(events[0][6:])["id"]
    thinking = [
        wire.sse(wire.chunk(id=cid, model="deepseek-r1", delta={"reasoning_content": piece}))
        for piece in ("6 times", " 7")
    ]
    upstream.push(Reply.sse([events[0], *thinking, *events[1:]]))
    chunks = [c async for c in adapter(upstream, http).stream(Request(prompt="6x7?"), api_key=None)]
    assert "".join(c.reasoning for c in chunks) == "6 times 7" and "".join(c.text for c in chunks) == "42"
    assert chunks[0].reasoning and chunks[-1].system_fingerprint == wire.FINGERPRINT
