"""What we know about models, as data: family (for the default task table) and context window.

Prices are not here: they come from the maintained price table (:mod:`llm_manager.costs.prices`), overridable
per deployment in config, so there is one source of truth for money.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

__all__ = ["Family", "Profile", "context_window_for", "family_for", "max_tokens_field", "profile_for"]

Family = Literal["claude", "gpt", "gemini", "llama"]


@dataclass(frozen=True, slots=True)
class Profile:
    """Capabilities of a model family member."""

    family: Family
    context_window: int


def _p(family: Family, window: int) -> Profile:
    return Profile(family, window)


# Longest prefix wins. Kept short on purpose: unknown models still route, they just sort last on cost.
_PROFILES: dict[str, Profile] = {
    "gpt-4o-mini": _p("gpt", 128_000),
    "gpt-4o": _p("gpt", 128_000),
    "gpt-4.1-nano": _p("gpt", 1_047_576),
    "gpt-4.1-mini": _p("gpt", 1_047_576),
    "gpt-4.1": _p("gpt", 1_047_576),
    "gpt-5-nano": _p("gpt", 400_000),
    "gpt-5-mini": _p("gpt", 400_000),
    "gpt-5": _p("gpt", 400_000),
    "gpt-4": _p("gpt", 8_192),
    "gpt-3.5": _p("gpt", 16_385),
    "o1": _p("gpt", 200_000),
    "o3-mini": _p("gpt", 200_000),
    "o3": _p("gpt", 200_000),
    "o4-mini": _p("gpt", 200_000),
    "claude-3-haiku": _p("claude", 200_000),
    "claude-3-5-haiku": _p("claude", 200_000),
    "claude-haiku-4": _p("claude", 200_000),
    "claude-3-opus": _p("claude", 200_000),
    "claude-opus-4": _p("claude", 200_000),
    "claude-opus-4-5": _p("claude", 200_000),
    "claude-3-5-sonnet": _p("claude", 200_000),
    "claude-3-7-sonnet": _p("claude", 200_000),
    "claude-sonnet-4": _p("claude", 200_000),
    "claude": _p("claude", 200_000),
    "gemini-2.5-pro": _p("gemini", 1_048_576),
    "gemini-2.5-flash-lite": _p("gemini", 1_048_576),
    "gemini-2.5-flash": _p("gemini", 1_048_576),
    "gemini-2.0-flash": _p("gemini", 1_048_576),
    "gemini": _p("gemini", 1_048_576),
    "llama-3.3-70b": _p("llama", 131_072),
    "llama-3.1-8b": _p("llama", 131_072),
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
