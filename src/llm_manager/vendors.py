"""Where each provider lives, as data: base URL, the variables that may hold its key, and what its server takes.

Every OpenAI-compatible server is a preset over the one OpenAI adapter; adding a vendor is adding a row. A table
at the bottom of the layers: configuration validation, prices and the adapters' endpoint resolution
(:mod:`llm_manager.providers.presets`) all read it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from llm_manager.config import DeploymentConfig, Settings
    from llm_manager.profiles import StructuredMode

__all__ = ["PRESETS", "Preset", "is_hosted_portkey", "portkey_key_problems"]


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


def is_hosted_portkey(url: str) -> bool:
    """Whether ``url`` is Portkey's hosted API (``api.portkey.ai``, or another ``*.portkey.ai`` host)."""
    from urllib.parse import urlsplit

    host = (urlsplit(url).hostname or "").lower()
    return host == "portkey.ai" or host.endswith(".portkey.ai")


def portkey_key_problems(s: Settings, name: str, dep: DeploymentConfig) -> list[str]:
    """A deployment routed through Portkey's hosted API without a Portkey key. Only the hosted API wants one: any
    other URL (127.0.0.1, a compose service name such as http://portkey:8787, an internal host) is a self-hosted
    gateway, which needs none."""
    via_portkey = dep.provider == "portkey" or (
        s.portkey is not None and s.portkey.route_all and dep.provider in ("openai", "anthropic", "gemini")
    )
    own_url = dep.base_url if dep.provider == "portkey" else None
    url = own_url or (s.portkey.base_url if s.portkey else PRESETS["portkey"].base_url)
    if not via_portkey or not is_hosted_portkey(url):
        return []
    if (s.portkey and s.portkey.api_key) or (dep.portkey and dep.portkey.api_key):
        return []
    return [
        f"models.{name}: routing through hosted Portkey (api.portkey.ai) needs `portkey.api_key` (or "
        f"models.{name}.portkey.api_key). A self-hosted gateway needs none: point base_url at it."
    ]
