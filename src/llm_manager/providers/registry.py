"""Adapters by name. Built-ins are imported lazily; third parties register through the
``llm_manager.providers`` entry-point group (``name = "package.module:AdapterClass"``), the same way.

Embedding models have adapters of their own (a deployment is one kind or the other), registered in
:data:`EMBEDDING_BUILTIN` and the ``llm_manager.embedding_providers`` group."""

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
    "openai-responses": "llm_manager.providers.openai_responses:OpenAIResponsesAdapter",
    "portkey": "llm_manager.providers.openai_chat:OpenAIChatAdapter",
    "anthropic": "llm_manager.providers.anthropic:AnthropicAdapter",
    "gemini": "llm_manager.providers.gemini:GeminiAdapter",
    "simulated": "llm_manager.providers.simulated:SimulatedAdapter",
}
EMBEDDING_BUILTIN: dict[str, str] = {
    "openai": "llm_manager.providers.openai_embeddings:OpenAIEmbeddingsAdapter",
    "gemini": "llm_manager.providers.gemini_embeddings:GeminiEmbeddingsAdapter",
    "simulated": "llm_manager.providers.simulated_embeddings:SimulatedEmbeddingsAdapter",
}
_registered: dict[str, type[ProviderAdapter]] = {}
_registered_embedding: dict[str, type[ProviderAdapter]] = {}


def register(kind: str, cls: type[ProviderAdapter], *, embedding: bool = False) -> None:
    """Make ``cls`` the adapter for ``provider: kind`` in config (of its embedding models, with ``embedding``)."""
    (_registered_embedding if embedding else _registered)[kind] = cls


def known_kinds() -> list[str]:
    """Every provider kind a config may name (built-ins, registered, installed plug-ins)."""
    return sorted({*BUILTIN, *_registered, *_entry_points()})


def adapter_class(kind: str, *, embedding: bool = False) -> type[ProviderAdapter]:
    """Resolve a provider kind to its adapter class (its embedding adapter, with ``embedding``), importing it on
    first use."""
    registered = _registered_embedding if embedding else _registered
    cls = registered.get(kind)
    if cls is not None:
        return cls
    group = "llm_manager.embedding_providers" if embedding else "llm_manager.providers"
    target = (EMBEDDING_BUILTIN if embedding else BUILTIN).get(kind) or _entry_points(group).get(kind)
    if target is None:
        if embedding:
            known = sorted({*EMBEDDING_BUILTIN, *_registered_embedding, *_entry_points(group)})
            raise ConfigError(
                f"provider {kind!r} has no embedding adapter; embedding models run on: {', '.join(known)}"
            )
        raise ConfigError(f"unknown provider {kind!r}; known: {', '.join(known_kinds())}")
    module, _, attr = target.partition(":")
    loaded: type[ProviderAdapter] = getattr(importlib.import_module(module), attr)
    registered[kind] = loaded
    return loaded


def _entry_points(group: str = "llm_manager.providers") -> dict[str, str]:
    from importlib.metadata import entry_points

    return {ep.name: ep.value for ep in entry_points(group=group)}
