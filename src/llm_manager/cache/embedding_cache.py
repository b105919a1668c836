"""Embeddings in the state backend's cache, next to whole answers (same TTL and bound, same Redis when shared).

An entry is a small JSON header (who answered, the usage) and the vectors as raw float32 bytes: a 1,536-dimension
vector is 6 KB instead of ~30 KB of JSON numbers, and decoding it is one copy. Vectors are float32 values already
(see :mod:`llm_manager.codecs._float32`), so a hit returns exactly what the provider returned.
"""

from __future__ import annotations

import hashlib
import sys
import time
from array import array
from collections.abc import Callable
from decimal import Decimal
from typing import TYPE_CHECKING, Any

from llm_manager import _json
from llm_manager.embedding import EmbeddingResponse
from llm_manager.types import ResponseMetadata, Usage

if TYPE_CHECKING:
    from llm_manager.config import CacheConfig
    from llm_manager.embedding import EmbeddingInput
    from llm_manager.state.base import StateBackend
    from llm_manager.types import Request

__all__ = ["EmbeddingCache", "embedding_key"]

_VERSION = "emb-v1"
_SWAP = sys.byteorder != "little"


def embedding_key(inp: EmbeddingInput, route: Request) -> str:
    """SHA-256 over what decides the vectors: the route (task, model, fallback), the size, the input type and the
    inputs. Who asks does not change them, so two users share an entry."""
    canonical: list[Any] = [
        _VERSION,
        route.task,
        route.model,
        route.fallback,
        inp.dimensions,
        inp.input_type,
        inp.texts if inp.tokens is None else inp.tokens,
    ]
    return hashlib.sha256(_json.dumps(canonical)).hexdigest()


class EmbeddingCache:
    """Get and put embedding responses. A hit is marked ``metadata.cached`` and carries the caller's request id."""

    def __init__(self, state: StateBackend, cfg: CacheConfig, clock: Callable[[], float] = time.time) -> None:
        self.state = state
        self.cfg = cfg
        self.clock = clock

    async def get(self, key: str, request_id: str) -> EmbeddingResponse | None:
        raw = await self.state.cache_get(key, self.clock())
        if raw is None:
            return None
        try:
            return _decode(raw, request_id)
        except (KeyError, TypeError, ValueError):
            return None  # not an entry of ours (or of another version): a miss

    async def put(self, key: str, resp: EmbeddingResponse) -> None:
        head = {
            "model": resp.model,
            "deployment": resp.deployment,
            "provider": resp.provider,
            "dimensions": resp.dimensions,
            "count": len(resp.vectors),
            "usage": {
                "prompt_tokens": resp.usage.prompt_tokens,
                "cost": resp.usage.cost,
                "estimated": resp.usage.estimated,
            },
            "simulated": resp.metadata.simulated,
            "dropped": resp.dropped_params,
        }
        flat = array("f")
        for vector in resp.vectors:
            flat.extend(vector)
        if _SWAP:
            flat.byteswap()
        value = _json.dumps(head) + b"\n" + flat.tobytes()
        await self.state.cache_set(key, value, self.clock(), ttl_s=self.cfg.ttl_s, max_entries=self.cfg.max_entries)


def _decode(raw: bytes, request_id: str) -> EmbeddingResponse | None:
    head, _, body = raw.partition(b"\n")
    meta = _json.loads(head)
    flat = array("f")
    flat.frombytes(body)
    if _SWAP:
        flat.byteswap()
    size, count = meta["dimensions"], meta["count"]
    if size * count != len(flat):
        return None
    values = flat.tolist()
    usage = meta["usage"]
    return EmbeddingResponse.model_construct(
        id=request_id,
        vectors=[values[i * size : (i + 1) * size] for i in range(count)],
        model=meta["model"],
        deployment=meta["deployment"],
        provider=meta["provider"],
        dimensions=size,
        usage=Usage(
            prompt_tokens=usage["prompt_tokens"],
            total_tokens=usage["prompt_tokens"],
            cost=Decimal(usage["cost"]) if usage["cost"] is not None else None,
            estimated=usage["estimated"],
        ),
        metadata=ResponseMetadata(
            request_id=request_id, latency_ms=0.0, cached=True, simulated=meta["simulated"], task="embedding"
        ),
        dropped_params=meta["dropped"],
    )
