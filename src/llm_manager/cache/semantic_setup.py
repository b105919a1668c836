"""Whether this manager has a semantic cache, and building it (numpy and the embedder are imported only then)."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING

from llm_manager.errors import ConfigError

if TYPE_CHECKING:
    from llm_manager.cache.semantic import SemanticCache
    from llm_manager.cache.semantic_embed import EmbedFn
    from llm_manager.config import DeploymentConfig, Settings

__all__ = ["semantic_cache"]


def semantic_cache(
    settings: Settings, deployments: Mapping[str, DeploymentConfig], embed: EmbedFn, clock: Callable[[], float]
) -> SemanticCache | None:
    """The manager's semantic cache, or ``None`` when ``cache.semantic`` (or the cache itself) is off.
    ``deployments`` and ``embed`` (the manager's ``embed()``) serve an embedding deployment as the embedder."""
    cfg = settings.cache
    if not (cfg.enabled and cfg.semantic.enabled):
        return None
    try:
        from llm_manager.cache.semantic import build
    except ImportError as exc:
        raise ConfigError(
            f"cache.semantic.enabled is true, but {exc.name or 'numpy'} is not installed. Fix: pip install "
            "'llm-manager[semantic]'"
        ) from None
    return build(settings, deployments, embed, clock)
