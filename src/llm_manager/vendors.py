"""Where each provider lives, as data: base URL, the variables that may hold its key, and what its server takes.

Every OpenAI-compatible server is a preset over the one OpenAI adapter; adding a vendor is adding a row. A table
at the bottom of the layers: configuration validation, prices and the adapters' endpoint resolution
(:mod:`llm_manager.providers.presets`) all read it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from llm_manager.profiles import StructuredMode

__all__ = ["PRESETS", "Preset"]


@dataclass(frozen=True, slots=True)
class Preset:
    """One endpoint's facts."""

    adapter: str
    """Wire protocol (adapter kind)."""
    base_url: str
    key_env: tuple[str, ...] = ()
    """Variables that may hold the API key, in order of preference."""
    needs_key: bool = True
    local: bool = False
    """Runs on the user's machine (free, usually small context)."""
    headers: tuple[tuple[str, str], ...] = ()
    stream_usage: bool = True
    """Whether the server understands ``stream_options.include_usage``."""
    structured: StructuredMode = "json_schema"
    """Native structured-output mode: ``json_schema``, ``json_object``, ``tool`` (Anthropic) or ``prompt``."""
    sampling: tuple[str, ...] = ()
    """Sampling fields the server takes beyond the OpenAI protocol's own (``top_k``)."""


_TOP_K = ("top_k",)
"""Local OpenAI-compatible servers take ``top_k`` next to the OpenAI sampling fields."""

PRESETS: dict[str, Preset] = {
    "openai": Preset("openai", "https://api.openai.com/v1", ("OPENAI_API_KEY",)),
    "anthropic": Preset("anthropic", "https://api.anthropic.com", ("ANTHROPIC_API_KEY",), structured="tool"),
    "gemini": Preset(
        "gemini", "https://generativelanguage.googleapis.com/v1beta", ("GEMINI_API_KEY", "GOOGLE_API_KEY")
    ),
    "groq": Preset("openai", "https://api.groq.com/openai/v1", ("GROQ_API_KEY",), structured="json_object"),
    "openrouter": Preset(
        "openai", "https://openrouter.ai/api/v1", ("OPENROUTER_API_KEY",), headers=(("x-title", "llm-manager"),)
    ),
    "lmstudio": Preset("openai", "http://localhost:1234/v1", needs_key=False, local=True, sampling=_TOP_K),
    "ollama": Preset("openai", "http://localhost:11434/v1", needs_key=False, local=True, sampling=_TOP_K),
    "vllm": Preset(
        "openai", "http://localhost:8000/v1", ("VLLM_API_KEY",), needs_key=False, local=True, sampling=_TOP_K
    ),
    "llamacpp": Preset(
        "openai", "http://localhost:8080/v1", needs_key=False, local=True, stream_usage=False, sampling=_TOP_K
    ),
    "portkey": Preset("openai", "http://localhost:8787/v1", ("PORTKEY_API_KEY",), needs_key=False),
    "openai-compatible": Preset("openai", "", needs_key=False),
    "simulated": Preset("simulated", "", needs_key=False),
}
