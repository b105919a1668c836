"""Vectors for the semantic cache: the built-in offline model, or an embedding deployment.

The built-in model is WordLlama's ``l2_supercat`` at 256 dimensions (MIT licence): its weights (16 MB) and tokenizer
ship inside the ``wordllama`` wheel, so it loads with no download, and embedding a short prompt takes ~0.3 ms on
one core. It is imported on first use only (importing it takes ~1 s); ``llm-manager[semantic]`` installs it.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Awaitable, Callable, Mapping, Sequence
from typing import TYPE_CHECKING, Any, Protocol

import numpy as np

from llm_manager.errors import ConfigError

if TYPE_CHECKING:
    from llm_manager.config import DeploymentConfig
    from llm_manager.embedding import EmbeddingResponse
    from llm_manager.types import Request

__all__ = ["BuiltinEmbedder", "DeploymentEmbedder", "Embedder", "builtin", "make_embedder"]

BUILTIN = "builtin"
EmbedFn = Callable[..., Awaitable["EmbeddingResponse"]]
"""The manager's ``embed()``."""
_WORDS_KEPT = 20_000
"""Word vectors remembered for the lexical guard (each 1 KB)."""


class Embedder(Protocol):
    name: str
    """Identifies the vector space: entries of another embedder are never compared."""

    async def embed(self, text: str, request: Request) -> np.ndarray: ...

    def word_similarity(self, a: Sequence[str], b: Sequence[str]) -> list[list[float]] | None: ...


_model: Any = None
_loading = threading.Lock()  # noqa: TID251 - taken only in worker threads (to_thread, preload), never on the loop


def _load() -> Any:
    """The model, loaded once per process (blocking: ~1.5 s the first time, imports included)."""
    global _model
    with _loading:
        if _model is None:
            from pathlib import Path

            import wordllama  # type: ignore[import-untyped]

            _model = wordllama.WordLlama.load(cache_dir=Path(wordllama.__file__).parent, disable_download=True)
    return _model


class BuiltinEmbedder:
    """WordLlama, loaded from its own package (``disable_download``: it never goes to the network)."""

    name = "builtin:wordllama-l2-supercat-256"

    def __init__(self) -> None:
        self._model: Any = None
        self._words: dict[str, np.ndarray] = {}

    def preload(self) -> None:
        """Start loading the model in a background thread, so that the first lookup need not wait for all of it."""
        threading.Thread(target=_load, name="llm-manager-semantic-load", daemon=True).start()

    async def ready(self) -> Any:
        if self._model is None:
            self._model = await asyncio.to_thread(_load)
        return self._model

    async def embed(self, text: str, request: Request) -> np.ndarray:  # noqa: ARG002 - no attribution: it is free
        model = await self.ready()
        vector: np.ndarray = model.embed([text], norm=True)[0]
        return vector.astype(np.float32, copy=False)

    def word_similarity(self, a: Sequence[str], b: Sequence[str]) -> list[list[float]] | None:
        if self._model is None:
            return None
        va, vb = self._word_vectors(a), self._word_vectors(b)
        return (va @ vb.T).tolist()  # type: ignore[no-any-return]

    def _word_vectors(self, words: Sequence[str]) -> np.ndarray:
        missing = [w for w in words if w not in self._words]
        if missing:
            if len(self._words) + len(missing) > _WORDS_KEPT:
                self._words.clear()
            for w, v in zip(missing, self._model.embed(missing, norm=True), strict=True):
                self._words[w] = v
        return np.stack([self._words[w] for w in words])


class DeploymentEmbedder:
    """An embedding deployment of this manager: ``llm.embed()`` (its budgets, ledger and embedding cache apply,
    attributed to the asking user and project). The lexical guard uses the built-in model's word vectors when it is
    installed, else it accepts no changed word at all."""

    def __init__(self, embed: EmbedFn, deployment: str, words: BuiltinEmbedder | None) -> None:
        self._embed = embed
        self.deployment = deployment
        self.name = f"deployment:{deployment}"
        self._words = words

    async def embed(self, text: str, request: Request) -> np.ndarray:
        if self._words is not None:
            await self._words.ready()
        resp = await self._embed(
            text, model=self.deployment, fallback=False, user=request.user, project=request.project
        )
        vector = np.asarray(resp.vectors[0], dtype=np.float32)
        norm = float(np.linalg.norm(vector))
        return vector / norm if norm > 0 else vector

    def word_similarity(self, a: Sequence[str], b: Sequence[str]) -> list[list[float]] | None:
        return self._words.word_similarity(a, b) if self._words is not None else None


def builtin() -> BuiltinEmbedder | None:
    """The built-in model when its package is installed."""
    from importlib.util import find_spec

    return BuiltinEmbedder() if find_spec("wordllama") is not None else None


def make_embedder(name: str, deployments: Mapping[str, DeploymentConfig], embed: EmbedFn) -> Embedder:
    """The embedder ``cache.semantic.embedder`` names; raises :class:`ConfigError` naming the field and the fix."""
    if name == BUILTIN:
        found = builtin()
        if found is None:
            raise ConfigError(
                "cache.semantic.embedder is builtin, but the wordllama package is not installed. Fix: pip install "
                "'llm-manager[semantic]', or set cache.semantic.embedder to an embedding deployment"
            )
        found.preload()
        return found
    from llm_manager.embedding_profiles import embedding_spec

    dep = deployments.get(name)
    if dep is None or embedding_spec(dep) is None:
        known = sorted(n for n, d in deployments.items() if embedding_spec(d) is not None)
        raise ConfigError(
            f"cache.semantic.embedder: {name!r} is not an embedding deployment. Fix: use builtin or one of "
            f"{', '.join(known) or '(none configured: add a model with kind: embedding)'}"
        )
    words = builtin()
    if words is not None:
        words.preload()
    return DeploymentEmbedder(embed, name, words)
