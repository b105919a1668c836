"""The semantic cache: a prompt that means the same as a cached one, in the same scope, answers from the cache.

The scope is everything the exact cache keys on except the last user message (task, preferred model, system prompt,
earlier turns, tools, response format, sampling parameters; :func:`~llm_manager.cache.keys.scope_key`), plus the
embedder. Within it, the last user message is compared by meaning: the cached prompt must be at least the task's
threshold similar (cosine of unit vectors) *and* pass the lexical guard
(:mod:`llm_manager.cache.semantic_guard`), which refuses prompts that differ in a negation, a number, a name or a
content word with no synonym in the other. A hit is a copy of the cached response marked ``metadata.cached`` with
``metadata.cache_similarity``.

Only plain-text prompts up to ``max_prompt_chars`` take part; any other request is left to the exact cache.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

from llm_manager.cache.keys import scope_key
from llm_manager.cache.response_cache import as_hit
from llm_manager.cache.semantic_guard import blocks, words
from llm_manager.cache.semantic_index import LocalIndex
from llm_manager.types import Response, TextPart

if TYPE_CHECKING:
    from llm_manager.cache.semantic_embed import Embedder, EmbedFn
    from llm_manager.cache.semantic_store import MemoryLog, RedisLog
    from llm_manager.config import CacheConfig, DeploymentConfig, Settings
    from llm_manager.types import Request

__all__ = ["Probe", "SemanticCache", "build"]

log = logging.getLogger("llm_manager.cache")

CANDIDATES = 8
"""The most similar cached prompts the lexical guard examines per lookup: a bound on a lookup's cost when many
entries of one scope are close (prompts from one template), at the price of a rare miss."""


@dataclass(slots=True)
class Probe:
    """What a lookup worked out, kept to store the answer of a miss without embedding the prompt again."""

    scope: str
    text: str
    vector: np.ndarray


@dataclass(slots=True)
class SemanticStats:
    hits: int = 0
    misses: int = 0
    guarded: int = 0
    """Lookups where a cached prompt was similar enough but the lexical guard refused it."""
    errors: int = 0
    """Lookups and stores that failed (Redis unreachable, the embedding deployment failing): counted as misses."""


class SemanticCache:
    """Look up and store answers by the meaning of their prompt."""

    def __init__(
        self, cfg: CacheConfig, embedder: Embedder, store: MemoryLog | RedisLog, clock: Callable[[], float] = time.time
    ) -> None:
        self.cfg = cfg.semantic
        self.ttl_s = self.cfg.ttl_s or cfg.ttl_s
        self.embedder = embedder
        self.store = store
        self.clock = clock
        self.stats = SemanticStats()

    def prompt(self, request: Request) -> str | None:
        """The text compared by meaning: the last message, when it is the user's and plain text."""
        last = request.messages[-1]
        if last.role != "user" or last.tool_calls:
            return None
        content = last.content
        if not isinstance(content, str):
            texts = [p.text for p in content if isinstance(p, TextPart)]
            if len(texts) != len(content):
                return None
            content = "\n".join(texts)
        text = content.strip()
        return text if 0 < len(text) <= self.cfg.max_prompt_chars else None

    async def lookup(self, request: Request, request_id: str) -> tuple[Response | None, Probe | None]:
        """A cached answer for a prompt that means the same (or ``None``), and the probe to store a miss's answer
        with (``None`` when this request does not take part)."""
        text = self.prompt(request)
        if text is None:
            return None, None
        try:
            probe = Probe(scope_key(request, self.embedder.name), text, await self.embedder.embed(text, request))
            now = self.clock()
            await self.store.sync(now)
        except Exception as exc:
            self._failed("lookup", exc)
            return None, None
        found = self.store.index.search(probe.scope, probe.vector, now, self.cfg.threshold_for(request.task))
        if found:
            mine = words(text)
            for similarity, entry in found[:CANDIDATES]:
                if blocks(mine, entry.words, self.embedder.word_similarity, self.cfg.word_threshold) is None:
                    self.stats.hits += 1
                    return _hit(entry.value, request_id, similarity), probe
            self.stats.guarded += 1
        self.stats.misses += 1
        return None, probe

    async def put(self, probe: Probe, resp: Response) -> None:
        if resp.finish_reason not in ("stop", "length", None) or resp.metadata.cached:
            return  # never cache a filtered or broken answer
        value = resp.model_dump_json().encode()
        now = self.clock()
        try:
            await self.store.add(probe.scope, probe.text, probe.vector, value, now + self.ttl_s, self.ttl_s)
        except Exception as exc:
            self._failed("store", exc)

    async def compare(self, a: str, b: str, request: Request) -> tuple[float, str | None, bool]:
        """How ``a`` and ``b`` would fare as prompts of ``request``'s scope: their similarity, what the lexical guard
        found different (``None``: nothing), and whether one would answer the other (the labelled set's measure)."""
        va, vb = await self.embedder.embed(a, request), await self.embedder.embed(b, request)
        similarity = float(va @ vb)
        why = blocks(words(a), words(b), self.embedder.word_similarity, self.cfg.word_threshold)
        return similarity, why, why is None and similarity >= self.cfg.threshold_for(request.task)

    async def clear(self) -> None:
        await self.store.clear()

    async def view(self) -> dict[str, Any]:
        """For ``status``: size (of the shared log, when shared), bounds, where entries live, and this process's
        counters since it started."""
        try:
            await self.store.sync(self.clock())
        except Exception as exc:
            self._failed("sync", exc)
        s = self.stats
        return {
            "enabled": True,
            "embedder": self.embedder.name,
            "shared": self.store.shared,
            "threshold": self.cfg.threshold,
            "thresholds": dict(self.cfg.thresholds),
            "entries": len(self.store.index),
            "max_entries": self.store.index.max_entries,
            "ttl_s": self.ttl_s,
            "hits": s.hits,
            "misses": s.misses,
            "guarded": s.guarded,
            "errors": s.errors,
        }

    async def aclose(self) -> None:
        await self.store.aclose()

    def _failed(self, what: str, exc: BaseException) -> None:
        self.stats.errors += 1
        log.warning("semantic cache %s failed (answering without it): %s: %s", what, type(exc).__name__, exc)


def _hit(value: bytes, request_id: str, similarity: float) -> Response:
    return as_hit(Response.model_validate_json(value), request_id, cache_similarity=round(similarity, 4))


def build(
    settings: Settings, deployments: Mapping[str, DeploymentConfig], embed: EmbedFn, clock: Callable[[], float]
) -> SemanticCache:
    """The semantic cache ``settings.cache.semantic`` describes (shared through Redis when ``state.redis_url`` is
    set); raises :class:`~llm_manager.errors.ConfigError` naming the field and the fix."""
    from llm_manager.cache.semantic_embed import make_embedder
    from llm_manager.cache.semantic_store import MemoryLog, RedisLog

    cfg = settings.cache
    index = LocalIndex(cfg.semantic.max_entries or cfg.max_entries)
    embedder = make_embedder(cfg.semantic.embedder, deployments, embed)
    state = settings.state
    store: MemoryLog | RedisLog = (
        RedisLog(index, state.redis_url, state.prefix, state.timeout_s) if state.redis_url else MemoryLog(index)
    )
    return SemanticCache(cfg, embedder, store, clock=clock)
