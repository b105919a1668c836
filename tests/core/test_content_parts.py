"""Content parts in the library: building them, routing by what a model accepts, token estimates, cache keys,
reasoning streamed, and parameters a deployment cannot take reported on the response (never dropped silently)."""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path

import pytest

from llm_manager import (
    ImagePart,
    LLMManager,
    Message,
    Reasoning,
    Request,
    TextPart,
    UnsupportedContentError,
)
from llm_manager.cache.keys import request_key
from llm_manager.config import load_settings
from llm_manager.content import AudioPart, FilePart, parse_data_url, sniff_media_type
from llm_manager.costs.prices import ModelPrice, cost_of
from llm_manager.tokens import estimate_prompt_tokens
from tests.fakes import anthropic_wire, openai_wire
from tests.fakes.server import FakeUpstream, Reply
from tests.helpers import sim_settings

PNG = b"\x89PNG\r\n\x1a\n" + b"\x00" * 32


def test_helpers_read_files_and_bytes(tmp_path: Path) -> None:
    (tmp_path / "cat.png").write_bytes(PNG)
    (tmp_path / "notes.pdf").write_bytes(b"%PDF-1.7 x")
    (tmp_path / "clip.mp3").write_bytes(b"not really")
    image = ImagePart.from_path(tmp_path / "cat.png")
    assert (image.media_type, image.data) == ("image/png", PNG)
    assert ImagePart.from_bytes(b"\xff\xd8\xff\xe0").media_type == "image/jpeg"
    assert FilePart.from_path(tmp_path / "notes.pdf").model_dump(exclude_none=True) == {
        "type": "file",
        "data": b"%PDF-1.7 x",
        "media_type": "application/pdf",
        "filename": "notes.pdf",
    }
    assert AudioPart.from_path(tmp_path / "clip.mp3").media_type == "audio/mpeg"
    assert sniff_media_type(b"RIFF\x00\x00\x00\x00WEBPVP8 ") == "image/webp"
    assert parse_data_url("data:image/png;base64,iVBORw0KGgo=") == ("image/png", PNG[:8])
    assert parse_data_url("https://example.test/x.png") is None
    with pytest.raises(ValueError, match="base64"):
        parse_data_url("data:image/png,raw")


def test_parts_are_validated_where_they_are_built() -> None:
    with pytest.raises(ValueError, match="exactly one of url or data"):
        ImagePart(url="https://example.test/a.png", data=PNG, media_type="image/png")
    with pytest.raises(ValueError, match="media_type"):
        ImagePart(data=PNG)
    with pytest.raises(ValueError, match="cannot carry image parts"):
        Message(role="assistant", content=(ImagePart.from_bytes(PNG),))
    with pytest.raises(ValueError, match="cannot carry reasoning parts"):
        Message(role="user", content=({"type": "reasoning", "text": "x"},))  # type: ignore[arg-type]


def test_text_of_parts_keeps_them_apart_and_json_carries_bytes_as_base64() -> None:
    m = Message(role="user", content=(TextPart(text="Hello"), ImagePart.from_bytes(PNG), TextPart(text="world")))
    assert m.text == "Hello\n\nworld" and m.modalities == {"image"}
    dumped = m.model_dump_json()
    assert '"data":"iVBORw0KGgo' in dumped and Message.model_validate_json(dumped) == m


def test_a_prompt_may_be_parts() -> None:
    r = Request(prompt=[TextPart(text="What is this?"), ImagePart(url="https://example.test/a.png")])
    assert r.messages[0].role == "user" and r.modalities == {"image"}


def test_parts_weigh_in_the_token_estimate() -> None:
    text_only = estimate_prompt_tokens(Request(prompt="What is this?"))
    with_image = estimate_prompt_tokens(Request(prompt=[TextPart(text="What is this?"), ImagePart.from_bytes(PNG)]))
    assert with_image - text_only == 1600
    big_pdf = Request(prompt=[FilePart.from_bytes(b"%PDF" + b"x" * 500_000)])
    assert estimate_prompt_tokens(big_pdf) > 20_000


def test_cache_key_addresses_bytes_by_content() -> None:
    def key(data: bytes) -> str:
        return request_key(Request(prompt=[TextPart(text="?"), ImagePart.from_bytes(data)]))

    assert key(PNG) == key(bytes(PNG)) and key(PNG) != key(PNG + b"\x01")
    assert request_key(Request(prompt="a", seed=1)) != request_key(Request(prompt="a", seed=2))
    assert request_key(Request(prompt="a", reasoning=Reasoning(effort="low"))) != request_key(Request(prompt="a"))


async def test_routing_skips_models_without_the_modality() -> None:
    settings = sim_settings(
        {"text-only": {"family": "gpt", "modalities": ["text"]}, "vision": {"family": "claude"}},
        max_retries=0,
    )
    async with LLMManager(settings) as llm:
        resp = await llm.generate([TextPart(text="What is it?"), ImagePart.from_bytes(PNG)], task="general")
        assert resp.deployment == "vision"
        skipped = resp.metadata.attempts[0]
        assert (skipped.deployment, skipped.skipped, skipped.error_code) == ("text-only", True, "unsupported_content")
        assert "image" in (skipped.error or "")
        with pytest.raises(UnsupportedContentError, match="audio") as err:
            await llm.generate([AudioPart.from_bytes(b"RIFF")], model="text-only", fallback=False)
        assert err.value.modalities == ["audio"] and "modalities: [text, audio]" in err.value.message


async def test_reasoning_streams_before_the_answer() -> None:
    async with LLMManager(sim_settings({"sim": {"family": "gpt"}})) as llm:
        events = [e async for e in llm.stream("Why?", reasoning=Reasoning(effort="high"))]
        assert events[0].reasoning.startswith("[simulated reasoning, high]") and not events[0].delta
        done = events[-1].response
        assert done is not None and done.reasoning == events[0].reasoning and done.content
        whole = await llm.generate("Why?", reasoning=Reasoning(effort="low"))
        assert whole.reasoning and whole.message().content[0].type == "reasoning"  # type: ignore[union-attr]


async def test_dropped_parameters_are_on_the_response(upstream: FakeUpstream) -> None:
    upstream.push(Reply.json(openai_wire.completion("hi")))
    raw = {"models": {"gpt": {"provider": "openai-compatible", "base_url": upstream.url, "model": "gpt-4o"}}}
    async with LLMManager(load_settings(raw, env={})) as llm:
        resp = await llm.generate("Hi", top_k=5, reasoning=Reasoning(effort="low"), seed=1)
    sent = upstream.requests[0].json
    assert sent["seed"] == 1 and "top_k" not in sent and "reasoning_effort" not in sent
    assert resp.metadata.dropped_params == ["top_k", "reasoning"]
    assert resp.metadata.warnings[0].startswith("top_k was not sent to gpt: ")


async def test_cache_writes_are_priced_at_their_own_rate(upstream: FakeUpstream) -> None:
    answer = anthropic_wire.message("ok", input_tokens=100, output_tokens=10, cache_creation_input_tokens=1000)
    upstream.push(Reply.json(answer))
    prices = {"input_price_per_mtok": 3, "output_price_per_mtok": 15, "cache_write_price_per_mtok": "3.75"}
    raw = {"models": {"c": {"provider": "anthropic", "base_url": upstream.url, "api_key": "k", **prices}}}
    async with LLMManager(load_settings(raw, env={})) as llm:
        resp = await llm.generate("Hi")
    u = resp.usage
    assert (u.prompt_tokens, u.cache_write_tokens, u.cached_tokens) == (1100, 1000, 0)
    price = ModelPrice(Decimal(3), Decimal(15), cache_write_per_mtok=Decimal("3.75"))
    assert u.cost == cost_of(price, 1100, 10, 0, 1000) == Decimal("0.00420")
