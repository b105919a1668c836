"""Adapters by name. Built-ins are imported lazily; third parties register through the
``llm_manager.providers`` entry-point group (``name = "package.module:AdapterClass"``), the same way."""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING

from llm_manager.errors import ConfigError

if TYPE_CHECKING:
    from llm_manager.providers.base import ProviderAdapter

__all__ = ["BUILTIN", "adapter_class", "known_kinds", "register"]

BUILTIN: dict[str, str] = {
    "openai": "llm_manager.providers.openai_chat:OpenAIChatAdapter",
    "openai-compatible": "llm_manager.providers.openai_chat:OpenAIChatAdapter",
    "portkey": "llm_manager.providers.openai_chat:OpenAIChatAdapter",
    "anthropic": "llm_manager.providers.anthropic:AnthropicAdapter",
    "gemini": "llm_manager.providers.gemini:GeminiAdapter",
    "simulated": "llm_manager.providers.simulated:SimulatedAdapter",
}
_registered: dict[str, type[ProviderAdapter]] = {}


def register(kind: str, cls: type[ProviderAdapter]) -> None:
    """Make ``cls`` the adapter for ``provider: kind`` in config."""
    _registered[kind] = cls


def known_kinds() -> list[str]:
    """Every provider kind a config may name (built-ins, registered, installed plug-ins)."""
    return sorted({*BUILTIN, *_registered, *_entry_points()})


def adapter_class(kind: str) -> type[ProviderAdapter]:
    """Resolve a provider kind to its adapter class, importing it on first use."""
    cls = _registered.get(kind)
    if cls is not None:
        return cls
    target = BUILTIN.get(kind) or _entry_points().get(kind)
    if target is None:
        raise ConfigError(f"unknown provider {kind!r}; known: {', '.join(known_kinds())}")
    module, _, attr = target.partition(":")
    loaded: type[ProviderAdapter] = getattr(importlib.import_module(module), attr)
    _registered[kind] = loaded
    return loaded


def _entry_points() -> dict[str, str]:
    from importlib.metadata import entry_points

    return {ep.name: ep.value for ep in entry_points(group="llm_manager.providers")}
