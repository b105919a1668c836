"""What a call costs: list prices from the bundled ``genai-prices`` table, config overrides, exact arithmetic.

Prices come from `genai-prices <https://github.com/pydantic/genai-prices>`_, which ships its whole price table
inside the package (``genai_prices/data.py``). We only ever read that bundled copy through its public
:func:`genai_prices.calc_price`; its optional auto-updater (``genai_prices.UpdatePrices``, a background thread
that downloads a newer table from GitHub) is never started here, so pricing never touches the network. The package
takes ~0.2 s to import (pydantic models plus a 1.6 MB data module), so it is imported on the first lookup, not
when ``llm_manager`` is imported.

Money is :class:`~decimal.Decimal` throughout, so sums over millions of ledger rows stay exact to the cent; no
float is involved anywhere. A model whose price is
unknown gets ``None`` (see :func:`warn_unknown_price_once`), never a silent zero.
"""

from __future__ import annotations

import functools
import logging
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from decimal import Context, Decimal
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from genai_prices.types import ModelPrice as _TablePrice
    from genai_prices.types import TieredPrices

    from llm_manager.config import DeploymentConfig

__all__ = [
    "ModelPrice",
    "PriceTier",
    "cost_of",
    "deployment_price",
    "lookup_price",
    "resolve_price",
    "warn_unknown_price_once",
]

log = logging.getLogger("llm_manager.costs")

_MTOK = Decimal(1_000_000)
_EXACT = Context(prec=60)

# Our provider (or preset) names → genai-prices provider ids. Anything else has its provider inferred from the
# model id (see _candidates).
_PROVIDER_IDS: dict[str, str] = {
    "openai": "openai",
    "anthropic": "anthropic",
    "gemini": "google",
    "google": "google",
    "groq": "groq",
    "openrouter": "openrouter",
}

# Model-id prefixes ("openai/gpt-4o-mini", Portkey's "@anthropic/claude-...") → genai-prices provider ids.
_VENDOR_IDS: dict[str, str] = {
    "openai": "openai",
    "anthropic": "anthropic",
    "google": "google",
    "gemini": "google",
    "vertex-ai": "google",
    "groq": "groq",
    "mistral": "mistral",
    "mistralai": "mistral",
    "deepseek": "deepseek",
    "x-ai": "x-ai",
    "xai": "x-ai",
    "cohere": "cohere",
    "openrouter": "openrouter",
}

# Endpoints whose models have no list price: local servers (free to call, but we do not claim that: a price of 0
# must come from config) and the simulated provider (its prices are config too).
_UNPRICED_PROVIDERS = frozenset({"simulated", "ollama", "lmstudio", "vllm", "llamacpp"})


_RATES = ("input_per_mtok", "output_per_mtok", "cached_input_per_mtok", "cache_write_per_mtok")


def _check_rate(name: str, value: Decimal | None) -> None:
    if value is not None and (not value.is_finite() or value < 0):
        raise ValueError(f"{name} must be a finite, non-negative Decimal, not {value!r}")


@dataclass(frozen=True, slots=True)
class PriceTier:
    """Rates that replace the base rates, for *all* tokens of a call, once its prompt is longer than a threshold
    (the "long context" prices of Claude Sonnet 4.x or Gemini 2.5 Pro: past 200k prompt tokens, every token costs
    more, not only those past the threshold)."""

    above_prompt_tokens: int
    """The tier applies when ``prompt_tokens > above_prompt_tokens``."""
    input_per_mtok: Decimal
    output_per_mtok: Decimal
    cached_input_per_mtok: Decimal | None = None
    cache_write_per_mtok: Decimal | None = None

    def __post_init__(self) -> None:
        for name in _RATES:
            _check_rate(name, getattr(self, name))


@dataclass(frozen=True, slots=True)
class ModelPrice:
    """A model's prices in USD per million tokens."""

    input_per_mtok: Decimal
    """Prompt tokens (those not served from the provider's prompt cache)."""
    output_per_mtok: Decimal
    """Completion tokens (reasoning tokens included: providers count them as completion tokens)."""
    cached_input_per_mtok: Decimal | None = None
    """Prompt tokens read from the provider's prompt cache; ``None``: billed at :attr:`input_per_mtok`."""
    tiers: tuple[PriceTier, ...] = ()
    """Long-prompt tiers, ascending by threshold; the last one whose threshold the prompt exceeds applies."""
    cache_write_per_mtok: Decimal | None = None
    """Prompt tokens written to the provider's prompt cache (Anthropic bills them at 1.25x the input rate for five
    minutes); ``None``: billed at :attr:`input_per_mtok`."""

    def __post_init__(self) -> None:
        for name in _RATES:
            _check_rate(name, getattr(self, name))
        thresholds = [t.above_prompt_tokens for t in self.tiers]
        if thresholds != sorted(set(thresholds)):
            raise ValueError(f"tiers must have distinct thresholds in ascending order, not {thresholds}")

    def rates_for(self, prompt_tokens: int) -> tuple[Decimal, Decimal, Decimal | None, Decimal | None]:
        """The (input, output, cached input, cache write) rates that apply to a call with ``prompt_tokens`` prompt
        tokens."""
        for tier in reversed(self.tiers):
            if prompt_tokens > tier.above_prompt_tokens:
                return tier.input_per_mtok, tier.output_per_mtok, tier.cached_input_per_mtok, tier.cache_write_per_mtok
        return self.input_per_mtok, self.output_per_mtok, self.cached_input_per_mtok, self.cache_write_per_mtok


def cost_of(
    price: ModelPrice, prompt_tokens: int, completion_tokens: int, cached_tokens: int = 0, cache_write_tokens: int = 0
) -> Decimal:
    """The exact cost in USD of one call.

    ``cached_tokens`` (read from the provider's prompt cache) and ``cache_write_tokens`` (written to it) are part of
    ``prompt_tokens`` (as every adapter reports them) and are billed at their own rates when the price has them,
    else at the input rate. Streamed calls are priced the same way, from the usage of their final event.

    Raises:
        ValueError: a negative count, or more cached tokens than prompt tokens (a usage report we cannot price).
    """
    counts = (prompt_tokens, completion_tokens, cached_tokens, cache_write_tokens)
    if min(counts) < 0:
        raise ValueError(f"token counts must be >= 0, not {counts}")
    if cached_tokens + cache_write_tokens > prompt_tokens:
        raise ValueError(
            f"cached_tokens ({cached_tokens}) and cache_write_tokens ({cache_write_tokens}) cannot exceed "
            f"prompt_tokens ({prompt_tokens})"
        )
    rate_in, rate_out, rate_cached, rate_write = price.rates_for(prompt_tokens)
    # Every operand is an exact decimal, so with enough digits of precision the products, the sum and the
    # division by 10**6 are all exact (a price has at most a few dozen digits; 60 leaves room for any of them).
    # The context's own methods, not `localcontext()`: this runs for every answer, and swapping the thread's
    # context costs as much as the arithmetic.
    ctx = _EXACT
    total = ctx.add(
        ctx.add(
            ctx.multiply(prompt_tokens - cached_tokens - cache_write_tokens, rate_in),
            ctx.multiply(cached_tokens, rate_in if rate_cached is None else rate_cached),
        ),
        ctx.multiply(completion_tokens, rate_out),
    )
    if cache_write_tokens:
        total = ctx.add(total, ctx.multiply(cache_write_tokens, rate_in if rate_write is None else rate_write))
    return ctx.divide(total, _MTOK)


# -- the price table ---------------------------------------------------------------------------------------------


def _rate_at(value: Decimal | TieredPrices | None, prompt_tokens_above: int | None) -> Decimal | None:
    """One table rate for prompts longer than ``prompt_tokens_above`` (``None``: the base rate)."""
    if value is None or isinstance(value, Decimal):
        return value
    rate = value.base
    if prompt_tokens_above is not None:
        # genai-prices applies a tier when the prompt is longer than its start; for prompts just above one of the
        # thresholds we collected, that is every tier whose start is at or below it.
        for tier in value.tiers:
            if tier.start <= prompt_tokens_above:
                rate = tier.price
    return rate


def _from_table(table: _TablePrice, embedding: bool = False) -> ModelPrice | None:
    """Our price from a genai-prices price, or ``None`` when it has no per-token input and output rates (an image
    or audio model: we price text tokens only). An embedding model has only an input rate: it produces no tokens."""
    from genai_prices.types import TieredPrices

    raw = (table.input_mtok, table.output_mtok, table.cache_read_mtok, table.cache_write_mtok)
    base_in, base_out, base_cached, base_write = (_rate_at(v, None) for v in raw)
    if embedding and base_out is None:
        base_out = Decimal(0)
    if base_in is None or base_out is None:
        return None
    starts = sorted({t.start for v in raw if isinstance(v, TieredPrices) for t in v.tiers})
    tiers: list[PriceTier] = []
    for start in starts:
        tier_in, tier_out, tier_cached, tier_write = (_rate_at(v, start) for v in raw)
        tier_out = base_out if embedding and tier_out is None else tier_out
        if tier_in is not None and tier_out is not None:  # always, given the base rates exist
            tiers.append(PriceTier(start, tier_in, tier_out, tier_cached, tier_write))
    # Audio, images and per-request fees are not in our usage: not priced.
    return ModelPrice(base_in, base_out, base_cached, tuple(tiers), base_write)


def _candidates(provider: str, model: str) -> list[tuple[str | None, str]]:
    """(genai-prices provider id or ``None`` to infer it from the model, model ref) pairs to try, best first."""
    provider = provider.lower()
    if provider in _PROVIDER_IDS:
        return [(_PROVIDER_IDS[provider], model)]
    # openai-compatible, portkey or any other endpoint: the model id is all we know. "vendor/model" names the
    # vendor (OpenRouter and Portkey style, "@vendor/model" in Portkey's catalog); a bare id is matched by
    # genai-prices' own rules ("gpt-" → OpenAI, "claude" → Anthropic, "gemini" → Google...).
    ref = model.removeprefix("@")
    vendor, sep, rest = ref.partition("/")
    out: list[tuple[str | None, str]] = []
    if sep and vendor.lower() in _VENDOR_IDS:
        out.append((_VENDOR_IDS[vendor.lower()], rest))
    out.append((None, rest if sep else ref))
    return out


@functools.lru_cache(maxsize=2048)
def _lookup(provider: str, model: str, minute: int, embedding: bool = False) -> ModelPrice | None:
    """The table price in force during one UTC minute (prices change on dates, and some vendors have off-peak
    hours, so the minute is part of the cache key: the table is consulted at most once a minute per model)."""
    from genai_prices import Usage, calc_price

    at = datetime.fromtimestamp(minute * 60, UTC)
    for provider_id, ref in _candidates(provider, model):
        try:
            # The public way to resolve a model and its price at a time; pricing an empty usage costs nothing.
            found = calc_price(
                Usage(input_tokens=0, output_tokens=0), ref, provider_id=provider_id, genai_request_timestamp=at
            )
        except LookupError:
            continue
        except ValueError:  # a table entry genai-prices itself cannot price: unknown rather than wrong
            log.debug("genai-prices cannot price %s/%s", provider_id, ref, exc_info=True)
            continue
        return _from_table(found.model_price, embedding)
    return None


def lookup_price(
    provider: str, model: str, at: datetime | None = None, *, embedding: bool = False
) -> ModelPrice | None:
    """The list price of ``model`` served by ``provider`` at time ``at`` (default: now), or ``None`` when unknown.

    Args:
        provider: our provider or preset name: ``openai``, ``anthropic``, ``gemini``, ``groq``, ``openrouter``;
            for ``openai-compatible``, ``portkey`` and other names the vendor is inferred from the model id
            (``"openai/gpt-4o-mini"``, ``"claude-3-5-haiku-latest"``). Local servers (``ollama``, ``lmstudio``,
            ``vllm``, ``llamacpp``) and ``simulated`` have no list price: give one in config.
        model: the model id as sent to the provider.
        at: when the call was made (prices change over time); naive means UTC.
        embedding: an embedding model, priced by its input rate alone (its output rate is 0).
    """
    if provider.lower() in _UNPRICED_PROVIDERS:
        return None
    when = datetime.now(UTC) if at is None else at if at.tzinfo else at.replace(tzinfo=UTC)
    return _lookup(provider, model, int(when.timestamp() // 60), embedding)


def resolve_price(
    provider: str,
    model: str,
    *,
    input_per_mtok: Decimal | None = None,
    output_per_mtok: Decimal | None = None,
    cached_input_per_mtok: Decimal | None = None,
    at: datetime | None = None,
    embedding: bool = False,
    cache_write_per_mtok: Decimal | None = None,
) -> ModelPrice | None:
    """The price to bill: config overrides (a deployment's ``*_price_per_mtok``) over the table's price.

    Overriding both input and output defines the whole price (flat: no long-prompt tiers; cached tokens at
    ``cached_input_per_mtok``, else at the input rate). Overriding part of it replaces those rates of the table's
    price and drops its tiers (they belong to the table's rates); with no table price, a partial override is not
    enough to price a call and gives ``None``. An ``embedding`` model produces no output: its input rate is its
    whole price.
    """
    if embedding and output_per_mtok is None and input_per_mtok is not None:
        output_per_mtok = Decimal(0)
    if input_per_mtok is not None and output_per_mtok is not None:
        return ModelPrice(input_per_mtok, output_per_mtok, cached_input_per_mtok, (), cache_write_per_mtok)
    table = lookup_price(provider, model, at, embedding=embedding)
    overrides = (input_per_mtok, output_per_mtok, cached_input_per_mtok, cache_write_per_mtok)
    if table is None or all(v is None for v in overrides):
        return table
    return replace(
        table,
        input_per_mtok=table.input_per_mtok if input_per_mtok is None else input_per_mtok,
        output_per_mtok=table.output_per_mtok if output_per_mtok is None else output_per_mtok,
        cached_input_per_mtok=table.cached_input_per_mtok if cached_input_per_mtok is None else cached_input_per_mtok,
        cache_write_per_mtok=table.cache_write_per_mtok if cache_write_per_mtok is None else cache_write_per_mtok,
        tiers=(),
    )


_warned: set[tuple[str, str]] = set()


def warn_unknown_price_once(deployment: str, model: str) -> None:
    """Log (logger ``llm_manager.costs``) that calls to ``deployment`` are not priced; once per (deployment, model)
    per process, so a busy unpriced deployment does not flood the log."""
    key = (deployment, model)
    if key in _warned:
        return
    _warned.add(key)
    log.warning(
        "no known price for model %r of deployment %r: its calls are recorded with cost null (not 0); set "
        "input_price_per_mtok and output_price_per_mtok on the deployment to price them",
        model,
        deployment,
    )


def deployment_price(dep: DeploymentConfig) -> ModelPrice | None:
    """The price of a configured deployment: its overrides over the table; a server you run yourself (LM Studio,
    Ollama, vLLM, llama.cpp) costs nothing per token unless priced in config; ``None`` when unknown."""
    from llm_manager.vendors import PRESETS

    provider = dep.preset or dep.provider
    price = resolve_price(
        provider,
        dep.model_name,
        input_per_mtok=dep.input_price_per_mtok,
        output_per_mtok=dep.output_price_per_mtok,
        cached_input_per_mtok=dep.cached_input_price_per_mtok,
        embedding=dep.resolved_kind == "embedding",
        cache_write_per_mtok=dep.cache_write_price_per_mtok,
    )
    if price is None and PRESETS[provider].local:
        price = ModelPrice(Decimal(0), Decimal(0))
    return price
