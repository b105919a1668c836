"""What we know about models, as data: family (for the default task table), context window and capabilities.

A deployment's :class:`ModelProfile` is built from the built-in facts below, overridden by its config (``modalities``,
``reasoning``, ``structured_output``, ``context_window`` …) and its endpoint preset (whether the server takes streamed
usage or ``top_k``). Routing filters candidates on it (a request with an image skips a text-only model) and each codec
translates by it (``max_completion_tokens`` for reasoning models, JSON mode or schema in the prompt).

Prices are not here: they come from the maintained price table (:mod:`llm_manager.costs.prices`), overridable
per deployment in config, so there is one source of truth for money.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

__all__ = [
    "ALL_MODALITIES",
    "Family",
    "Modality",
    "ModelProfile",
    "Profile",
    "StructuredMode",
    "context_window_for",
    "family_for",
    "max_tokens_field",
    "profile_for",
]

Family = Literal["claude", "gpt", "gemini", "llama"]
Modality = Literal["text", "image", "audio", "file"]
"""Kinds of input content: ``file`` is a document (PDF, plain text) sent as a file part."""
StructuredMode = Literal["json_schema", "json_object", "prompt", "tool"]
"""How a schema reaches the model: natively (OpenAI ``json_schema``, Anthropic's forced ``tool``), as JSON mode with
the schema in the prompt (``json_object``), or as instructions only (``prompt``)."""

ALL_MODALITIES: frozenset[Modality] = frozenset({"text", "image", "audio", "file"})
_TEXT: frozenset[Modality] = frozenset({"text"})
_VISION: frozenset[Modality] = frozenset({"text", "image", "file"})


@dataclass(frozen=True, slots=True)
class ModelProfile:
    """A deployment's capabilities, typed (what routing filters on and codecs translate by)."""

    family: Family | None = None
    context_window: int = 8192
    input_modalities: frozenset[Modality] = _TEXT
    """Content the model accepts besides text: images, audio, documents."""
    tools: bool = True
    structured: StructuredMode = "json_schema"
    """How a JSON schema is asked for (see :data:`StructuredMode`)."""
    json_object: bool = True
    """Whether the endpoint has a JSON-object mode (OpenAI ``json_object``, Gemini's JSON MIME type)."""
    reasoning: bool = False
    """Whether the model takes a reasoning effort / thinking budget."""
    max_tokens_field: str = "max_tokens"
    """The OpenAI request field capping output: reasoning models accept only ``max_completion_tokens``."""
    stream_usage: bool = True
    """Whether the server understands ``stream_options.include_usage``."""
    sampling: frozenset[str] = field(default_factory=frozenset)
    """Sampling fields the server takes beyond its protocol's own (``top_k`` on vLLM, Ollama, llama.cpp …)."""

    def missing(self, needed: frozenset[Modality]) -> frozenset[Modality]:
        """The modalities of ``needed`` this model does not accept."""
        return needed - self.input_modalities


@dataclass(frozen=True, slots=True)
class Profile:
    """Built-in facts of a model family member."""

    family: Family
    context_window: int
    modalities: frozenset[Modality] = _TEXT
    reasoning: bool = False


def _p(family: Family, window: int, modalities: frozenset[Modality] = _TEXT, reasoning: bool = False) -> Profile:
    return Profile(family, window, modalities, reasoning)


_GEMINI_INPUT: frozenset[Modality] = ALL_MODALITIES
_AUDIO_CHAT: frozenset[Modality] = frozenset({"text", "audio"})

# Longest prefix wins. Kept short on purpose: unknown models still route (text only), they just sort last on cost.
_PROFILES: dict[str, Profile] = {
    "gpt-4o-mini-audio": _p("gpt", 128_000, _AUDIO_CHAT),
    "gpt-4o-audio": _p("gpt", 128_000, _AUDIO_CHAT),
    "gpt-4o-mini": _p("gpt", 128_000, _VISION),
    "gpt-4o": _p("gpt", 128_000, _VISION),
    "gpt-4.1-nano": _p("gpt", 1_047_576, _VISION),
    "gpt-4.1-mini": _p("gpt", 1_047_576, _VISION),
    "gpt-4.1": _p("gpt", 1_047_576, _VISION),
    "gpt-5-nano": _p("gpt", 400_000, _VISION, True),
    "gpt-5-mini": _p("gpt", 400_000, _VISION, True),
    "gpt-5-chat": _p("gpt", 128_000, _VISION),
    "gpt-5": _p("gpt", 400_000, _VISION, True),
    "gpt-4": _p("gpt", 8_192),
    "gpt-3.5": _p("gpt", 16_385),
    "o1-mini": _p("gpt", 128_000, _TEXT, True),
    "o1": _p("gpt", 200_000, _VISION, True),
    "o3-mini": _p("gpt", 200_000, _TEXT, True),
    "o3": _p("gpt", 200_000, _VISION, True),
    "o4-mini": _p("gpt", 200_000, _VISION, True),
    "claude-3-haiku": _p("claude", 200_000, _VISION),
    "claude-3-5-haiku": _p("claude", 200_000, _VISION),
    "claude-haiku-4": _p("claude", 200_000, _VISION, True),
    "claude-3-opus": _p("claude", 200_000, _VISION),
    "claude-opus-4": _p("claude", 200_000, _VISION, True),
    "claude-opus-4-5": _p("claude", 200_000, _VISION, True),
    "claude-3-5-sonnet": _p("claude", 200_000, _VISION),
    "claude-3-7-sonnet": _p("claude", 200_000, _VISION, True),
    "claude-sonnet-4": _p("claude", 200_000, _VISION, True),
    "claude": _p("claude", 200_000, _VISION),
    "gemini-2.5-pro": _p("gemini", 1_048_576, _GEMINI_INPUT, True),
    "gemini-2.5-flash-lite": _p("gemini", 1_048_576, _GEMINI_INPUT, True),
    "gemini-2.5-flash": _p("gemini", 1_048_576, _GEMINI_INPUT, True),
    "gemini-2.0-flash": _p("gemini", 1_048_576, _GEMINI_INPUT),
    "gemini": _p("gemini", 1_048_576, _GEMINI_INPUT),
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
