"""What we know about models, as data: family (for the default task table), context window and list price.

Prices here only order candidates for the ``cost`` strategy and estimate spend; a deployment's own
``input_price_per_mtok`` / ``output_price_per_mtok`` in config always wins.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal
from typing import Literal

__all__ = ["Family", "Profile", "context_window_for", "family_for", "max_tokens_field", "profile_for"]

Family = Literal["claude", "gpt", "gemini", "llama"]


@dataclass(frozen=True, slots=True)
class Profile:
    """Capabilities and list price of a model family member (USD per million tokens)."""

    family: Family
    context_window: int
    input_per_mtok: Decimal | None = None
    output_per_mtok: Decimal | None = None


def _p(family: Family, window: int, inp: str | None = None, out: str | None = None) -> Profile:
    return Profile(family, window, Decimal(inp) if inp else None, Decimal(out) if out else None)


# Longest prefix wins. Kept short on purpose: unknown models still route, they just sort last on cost.
_PROFILES: dict[str, Profile] = {
    "gpt-4o-mini": _p("gpt", 128_000, "0.15", "0.60"),
    "gpt-4o": _p("gpt", 128_000, "2.50", "10.00"),
    "gpt-4.1-nano": _p("gpt", 1_047_576, "0.10", "0.40"),
    "gpt-4.1-mini": _p("gpt", 1_047_576, "0.40", "1.60"),
    "gpt-4.1": _p("gpt", 1_047_576, "2.00", "8.00"),
    "gpt-5-nano": _p("gpt", 400_000, "0.05", "0.40"),
    "gpt-5-mini": _p("gpt", 400_000, "0.25", "2.00"),
    "gpt-5": _p("gpt", 400_000, "1.25", "10.00"),
    "gpt-4": _p("gpt", 8_192, "30.00", "60.00"),
    "gpt-3.5": _p("gpt", 16_385, "0.50", "1.50"),
    "o1": _p("gpt", 200_000, "15.00", "60.00"),
    "o3-mini": _p("gpt", 200_000, "1.10", "4.40"),
    "o3": _p("gpt", 200_000, "2.00", "8.00"),
    "o4-mini": _p("gpt", 200_000, "1.10", "4.40"),
    "claude-3-haiku": _p("claude", 200_000, "0.25", "1.25"),
    "claude-3-5-haiku": _p("claude", 200_000, "0.80", "4.00"),
    "claude-haiku-4": _p("claude", 200_000, "1.00", "5.00"),
    "claude-3-opus": _p("claude", 200_000, "15.00", "75.00"),
    "claude-opus-4": _p("claude", 200_000, "15.00", "75.00"),
    "claude-opus-4-5": _p("claude", 200_000, "5.00", "25.00"),
    "claude-3-5-sonnet": _p("claude", 200_000, "3.00", "15.00"),
    "claude-3-7-sonnet": _p("claude", 200_000, "3.00", "15.00"),
    "claude-sonnet-4": _p("claude", 200_000, "3.00", "15.00"),
    "claude": _p("claude", 200_000),
    "gemini-2.5-pro": _p("gemini", 1_048_576, "1.25", "10.00"),
    "gemini-2.5-flash-lite": _p("gemini", 1_048_576, "0.10", "0.40"),
    "gemini-2.5-flash": _p("gemini", 1_048_576, "0.30", "2.50"),
    "gemini-2.0-flash": _p("gemini", 1_048_576, "0.10", "0.40"),
    "gemini": _p("gemini", 1_048_576),
    "llama-3.3-70b": _p("llama", 131_072, "0.59", "0.79"),
    "llama-3.1-8b": _p("llama", 131_072, "0.05", "0.08"),
    "llama": _p("llama", 8_192),
    "mistral": _p("llama", 32_768),
    "mixtral": _p("llama", 32_768),
    "qwen": _p("llama", 32_768),
    "gemma": _p("llama", 8_192),
    "phi": _p("llama", 16_384),
    "deepseek": _p("llama", 65_536),
}
_ORDERED = sorted(_PROFILES, key=len, reverse=True)
_DEFAULT_WINDOW = 8_192


def profile_for(model: str) -> Profile | None:
    """The profile of ``model`` (``vendor/model`` ids are matched on the part after the slash)."""
    name = model.lower().rsplit("/", 1)[-1]
    for prefix in _ORDERED:
        if name.startswith(prefix):
            return _PROFILES[prefix]
    return None


def context_window_for(model: str) -> int:
    """Known context window, else a conservative 8k."""
    p = profile_for(model)
    return p.context_window if p else _DEFAULT_WINDOW


def family_for(model: str) -> Family | None:
    """Which family (claude / gpt / gemini / llama) a model id belongs to, if recognisable."""
    p = profile_for(model)
    return p.family if p else None


_COMPLETION_TOKENS_PREFIXES = ("o1", "o3", "o4", "gpt-5")


def max_tokens_field(model: str) -> str:
    """The OpenAI request field that caps output: reasoning models accept only ``max_completion_tokens``."""
    name = model.lower().rsplit("/", 1)[-1]
    return "max_completion_tokens" if name.startswith(_COMPLETION_TOKENS_PREFIXES) else "max_tokens"
