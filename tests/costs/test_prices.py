"""Prices: our costs equal genai-prices' own calculation, for several providers, cached and streamed usage."""

from __future__ import annotations

import json
import logging
import subprocess
import sys
import threading
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from decimal import Decimal
from fractions import Fraction
from typing import Any

import genai_prices
import pytest

from llm_manager._http import HttpClient
from llm_manager.costs import ModelPrice, PriceTier, cost_of, lookup_price, resolve_price, warn_unknown_price_once
from llm_manager.providers.anthropic import AnthropicAdapter
from llm_manager.providers.base import Chunk, Endpoint
from llm_manager.providers.gemini import GeminiAdapter
from llm_manager.providers.openai_chat import OpenAIChatAdapter
from llm_manager.types import Message, Request
from tests.fakes import anthropic_wire, gemini_wire, openai_wire
from tests.fakes.server import FakeUpstream, Reply

AT = datetime(2026, 11, 1, 12, 0, tzinfo=UTC)
"""Every comparison prices both sides at this instant (the table has prices that change on dates)."""

# (our provider, model id, genai-prices provider id)
MODELS = [
    ("openai", "gpt-4o", "openai"),
    ("openai", "gpt-4o-mini", "openai"),
    ("anthropic", "claude-sonnet-4-5", "anthropic"),
    ("anthropic", "claude-3-5-haiku-latest", "anthropic"),
    ("gemini", "gemini-2.5-flash", "google"),
    ("gemini", "gemini-2.5-pro", "google"),
    ("groq", "llama-3.3-70b-versatile", "groq"),
    ("openrouter", "openai/gpt-4o-mini", "openrouter"),
    ("openrouter", "anthropic/claude-sonnet-4.5", "openrouter"),
]
# (prompt tokens, completion tokens, cached tokens): plain, mostly cached, and past the 200k long-prompt tier.
USAGES = [(1234, 567, 0), (1234, 567, 1000), (300_000, 2_000, 50_000)]


def library_cost(genai_provider: str, model: str, prompt: int, completion: int, cached: int) -> Decimal:
    """What genai-prices itself charges (its input_tokens include cache reads, like our prompt_tokens)."""
    usage = genai_prices.Usage(input_tokens=prompt, cache_read_tokens=cached, output_tokens=completion)
    return genai_prices.calc_price(usage, model, provider_id=genai_provider, genai_request_timestamp=AT).total_price


@pytest.mark.parametrize(("provider", "model", "genai_provider"), MODELS)
@pytest.mark.parametrize(("prompt", "completion", "cached"), USAGES)
def test_cost_equals_the_librarys_own_calculation(
    provider: str, model: str, genai_provider: str, prompt: int, completion: int, cached: int
) -> None:
    price = lookup_price(provider, model, at=AT)
    assert price is not None, f"{provider}/{model} should be in the table"
    cost = cost_of(price, prompt, completion, cached)
    assert isinstance(cost, Decimal)
    assert cost > 0
    assert cost == library_cost(genai_provider, model, prompt, completion, cached)


def test_cost_is_exact_decimal_arithmetic() -> None:
    price = ModelPrice(Decimal("0.15"), Decimal("0.6"), Decimal("0.075"))
    cost = cost_of(price, 1_000_003, 777_777, 333_331)
    exact = Fraction(1_000_003 - 333_331) * Fraction("0.15") + 333_331 * Fraction("0.075") + 777_777 * Fraction("0.6")
    assert Fraction(cost) == exact / 10**6
    # One token of a cheap model: far below a cent, still exact.
    assert cost_of(ModelPrice(Decimal("0.0375"), Decimal(0)), 1, 0) == Decimal("0.0000000375")


def test_cached_tokens_use_the_cached_rate_when_known_else_the_input_rate() -> None:
    mini = lookup_price("openai", "gpt-4o-mini", at=AT)
    assert mini is not None and mini.cached_input_per_mtok is not None
    assert mini.cached_input_per_mtok < mini.input_per_mtok
    saved = (mini.input_per_mtok - mini.cached_input_per_mtok) * 1000 / 10**6
    assert cost_of(mini, 1200, 300) - cost_of(mini, 1200, 300, cached_tokens=1000) == saved

    llama = lookup_price("groq", "llama-3.3-70b-versatile", at=AT)
    assert llama is not None and llama.cached_input_per_mtok is None
    assert cost_of(llama, 1200, 300, cached_tokens=1000) == cost_of(llama, 1200, 300)


def test_long_prompt_tier_prices_every_token_at_the_tier_rate() -> None:
    sonnet = lookup_price("anthropic", "claude-sonnet-4-5", at=AT)
    assert sonnet is not None and sonnet.tiers, "Claude Sonnet 4.5 has long-context prices in the table"
    tier = sonnet.tiers[0]
    at_threshold = cost_of(sonnet, tier.above_prompt_tokens, 0)
    assert at_threshold == tier.above_prompt_tokens * sonnet.input_per_mtok / 10**6
    above = cost_of(sonnet, tier.above_prompt_tokens + 1, 0)
    assert above == (tier.above_prompt_tokens + 1) * tier.input_per_mtok / 10**6


def test_table_prices_follow_the_request_time() -> None:
    # OpenRouter's Llama 3.3 70B changes price on dates in the bundled table: each lookup must use the price in
    # force at its own time, not one cached from an earlier call.
    model = "meta-llama/llama-3.3-70b-instruct"
    for at in (datetime(2026, 10, 1, tzinfo=UTC), datetime(2026, 11, 20, tzinfo=UTC)):
        price = lookup_price("openrouter", model, at=at)
        assert price is not None
        usage = genai_prices.Usage(input_tokens=1_000_000, output_tokens=1_000_000)
        calc = genai_prices.calc_price(usage, model, provider_id="openrouter", genai_request_timestamp=at)
        assert cost_of(price, 1_000_000, 1_000_000) == calc.total_price


@pytest.mark.parametrize(
    ("provider", "model", "same_as"),
    [
        ("openai-compatible", "openai/gpt-4o-mini", ("openai", "gpt-4o-mini")),
        ("openai-compatible", "gpt-4o", ("openai", "gpt-4o")),
        ("openai-compatible", "gemini-2.5-flash", ("gemini", "gemini-2.5-flash")),
        ("portkey", "claude-3-5-haiku-20241022", ("anthropic", "claude-3-5-haiku-latest")),
        ("portkey", "@anthropic/claude-sonnet-4-5", ("anthropic", "claude-sonnet-4-5")),
        ("portkey", "google/gemini-2.5-pro", ("gemini", "gemini-2.5-pro")),
    ],
)
def test_vendor_is_inferred_from_the_model_id(provider: str, model: str, same_as: tuple[str, str]) -> None:
    price = lookup_price(provider, model, at=AT)
    assert price is not None
    assert price == lookup_price(*same_as, at=AT)


@pytest.mark.parametrize(
    ("provider", "model"),
    [
        ("openai", "gpt-does-not-exist-9"),
        ("anthropic", "not-a-claude"),
        ("openai-compatible", "my-finetune"),
        ("simulated", "sim-fast"),
        ("ollama", "gpt-4o"),  # a local server: never a list price, whatever the model is called
    ],
)
def test_unknown_price_is_none_never_zero(provider: str, model: str) -> None:
    assert lookup_price(provider, model) is None
    assert resolve_price(provider, model) is None


def test_unknown_price_warning_is_logged_once_per_deployment_and_model(caplog: pytest.LogCaptureFixture) -> None:
    dep, other = f"dep-{uuid.uuid4().hex[:8]}", f"dep-{uuid.uuid4().hex[:8]}"
    with caplog.at_level(logging.WARNING, logger="llm_manager.costs"):
        for _ in range(3):
            warn_unknown_price_once(dep, "my-finetune")
        warn_unknown_price_once(other, "my-finetune")
        warn_unknown_price_once(dep, "my-finetune-2")
    records = [r for r in caplog.records if r.name == "llm_manager.costs"]
    assert len(records) == 3
    assert all(r.levelno == logging.WARNING for r in records)
    assert dep in records[0].getMessage() and "my-finetune" in records[0].getMessage()


def test_config_overrides() -> None:
    table = lookup_price("anthropic", "claude-sonnet-4-5", at=AT)
    assert table is not None and table.tiers
    # Both rates: the whole price, flat.
    full = resolve_price("anthropic", "claude-sonnet-4-5", input_per_mtok=Decimal(1), output_per_mtok=Decimal(2))
    assert full == ModelPrice(Decimal(1), Decimal(2), None)
    # One rate: replaces it in the table's price; the tiers (of the table's rates) go.
    partial = resolve_price("anthropic", "claude-sonnet-4-5", output_per_mtok=Decimal(9), at=AT)
    assert partial == ModelPrice(
        table.input_per_mtok, Decimal(9), table.cached_input_per_mtok, cache_write_per_mtok=table.cache_write_per_mtok
    )
    # Nothing: the table's price as it is.
    assert resolve_price("anthropic", "claude-sonnet-4-5", at=AT) == table
    # Prices for models the table does not know (simulated, local, fine-tunes) come from config alone.
    sim = resolve_price("simulated", "sim", input_per_mtok=Decimal(3), output_per_mtok=Decimal(4))
    assert sim is not None and cost_of(sim, 1_000_000, 500_000) == Decimal(5)
    assert resolve_price("simulated", "sim", input_per_mtok=Decimal(3)) is None


def test_invalid_prices_and_counts_are_refused() -> None:
    with pytest.raises(ValueError, match="non-negative"):
        ModelPrice(Decimal(-1), Decimal(1))
    with pytest.raises(ValueError, match="non-negative"):
        ModelPrice(Decimal("NaN"), Decimal(1))
    tier = PriceTier(10, Decimal(2), Decimal(2))
    with pytest.raises(ValueError, match="ascending"):
        ModelPrice(Decimal(1), Decimal(1), None, (PriceTier(20, Decimal(3), Decimal(3)), tier))
    price = ModelPrice(Decimal(1), Decimal(1))
    with pytest.raises(ValueError, match="cannot exceed"):
        cost_of(price, 10, 0, cached_tokens=11)
    with pytest.raises(ValueError, match=">= 0"):
        cost_of(price, -1, 0)


def test_import_is_lazy_and_nothing_is_fetched() -> None:
    code = "import sys, llm_manager.costs; print('genai_prices' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.strip()
    assert out == "False"
    assert lookup_price("openai", "gpt-4o") is not None
    # genai-prices' optional updater downloads a newer table in a thread of this name; we never start it.
    assert not any(t.name.startswith("genai_prices") for t in threading.enumerate())


# -- streamed usage: the final usage of a stream, read by our adapters, priced like genai-prices prices the wire --


async def final_usage(chunks: AsyncIterator[Chunk]) -> tuple[int, int, int]:
    """(prompt, completion, cached) of the last chunk that reports usage."""
    usage: tuple[int, int, int] | None = None
    async for chunk in chunks:
        if chunk.prompt_tokens is not None and chunk.completion_tokens is not None:
            usage = (chunk.prompt_tokens, chunk.completion_tokens, chunk.cached_tokens)
    assert usage is not None, "the stream reported no usage"
    return usage


def hello() -> Request:
    return Request(messages=[Message(role="user", content="hi")])


def sse_json(event: bytes) -> Any:
    return json.loads(event.split(b"data: ", 1)[1])


async def test_streamed_openai_usage_with_cached_tokens(upstream: FakeUpstream, http: HttpClient) -> None:
    events = openai_wire.stream_events(["Hel", "lo"], prompt_tokens=1200, completion_tokens=300, cached_tokens=1000)
    upstream.push(Reply.sse(events))
    endpoint = Endpoint(name="mini", provider="openai", model="gpt-4o-mini", base_url=upstream.url + "/v1")
    usage = await final_usage(OpenAIChatAdapter(endpoint, http).stream(hello(), api_key="k"))
    assert usage == (1200, 300, 1000)
    price = lookup_price("openai", "gpt-4o-mini", at=AT)
    assert price is not None
    wire = genai_prices.extract_usage(sse_json(events[-2]), provider_id="openai", api_flavor="chat")
    assert cost_of(price, *usage) == wire.calc_price(genai_request_timestamp=AT).total_price


async def test_streamed_anthropic_usage_with_cache_reads(upstream: FakeUpstream, http: HttpClient) -> None:
    events = anthropic_wire.stream_events(
        ["Hel", "lo"], input_tokens=200, output_tokens=300, cache_read_input_tokens=1000
    )
    upstream.push(Reply.sse(events))
    endpoint = Endpoint(name="claude", provider="anthropic", model="claude-sonnet-4-5", base_url=upstream.url + "/")
    usage = await final_usage(AnthropicAdapter(endpoint, http).stream(hello(), api_key="k"))
    assert usage == (1200, 300, 1000)  # prompt = uncached input + cache reads
    price = lookup_price("anthropic", "claude-sonnet-4-5", at=AT)
    assert price is not None
    # The stream splits usage: input counts in message_start, the final output count in message_delta.
    message = sse_json(events[0])["message"]
    message["usage"]["output_tokens"] = sse_json(events[-2])["usage"]["output_tokens"]
    wire = genai_prices.extract_usage(message, provider_id="anthropic")
    assert cost_of(price, *usage) == wire.calc_price(genai_request_timestamp=AT).total_price


async def test_streamed_gemini_usage_with_cached_and_thinking_tokens(upstream: FakeUpstream, http: HttpClient) -> None:
    events = gemini_wire.stream_events(
        ["Hel", "lo"], model="gemini-2.5-flash", prompt_tokens=1200, completion_tokens=300, thoughts_tokens=50,
        cached_tokens=1000,
    )  # fmt: skip
    upstream.push(Reply.sse(events))
    endpoint = Endpoint(name="gem", provider="gemini", model="gemini-2.5-flash", base_url=upstream.url + "/v1beta/")
    usage = await final_usage(GeminiAdapter(endpoint, http).stream(hello(), api_key="k"))
    assert usage == (1200, 350, 1000)  # thinking tokens are billed as output
    price = lookup_price("gemini", "gemini-2.5-flash", at=AT)
    assert price is not None
    wire = genai_prices.extract_usage(sse_json(events[-1]), provider_id="google")
    assert cost_of(price, *usage) == wire.calc_price(genai_request_timestamp=AT).total_price
