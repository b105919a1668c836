"""Embedding payloads as the real services send them, for scripting :class:`tests.fakes.server.FakeUpstream`.

Written out by hand, not with our codecs (a fake built with the code under test could not catch its mistakes);
``tests/codecs/test_embeddings_sdk_contract.py`` checks them against the official ``openai`` and ``google-genai``
SDKs, which parse them as their own.
"""

from __future__ import annotations

import base64
import struct
from typing import Any

__all__ = ["gemini_batch", "openai_list", "vector", "vectors_b64"]


def vector(seed: int, size: int) -> list[float]:
    """A deterministic vector of float32-exact values (so a base64 round trip is exact)."""
    return [struct.unpack("<f", struct.pack("<f", ((seed * 31 + i * 7) % 97 - 48) / 97))[0] for i in range(size)]


def vectors_b64(vec: list[float]) -> str:
    return base64.b64encode(struct.pack(f"<{len(vec)}f", *vec)).decode()


def openai_list(
    vectors: list[list[float]],
    *,
    model: str = "text-embedding-3-small",
    prompt_tokens: int = 8,
    b64: bool = False,
    order: list[int] | None = None,
) -> dict[str, Any]:
    """``POST /v1/embeddings``'s answer; ``order`` lists the indexes in the order the items are sent."""
    idx = order if order is not None else list(range(len(vectors)))
    data = [
        {"object": "embedding", "index": i, "embedding": vectors_b64(vectors[i]) if b64 else vectors[i]} for i in idx
    ]
    return {
        "object": "list",
        "data": data,
        "model": model,
        "usage": {"prompt_tokens": prompt_tokens, "total_tokens": prompt_tokens},
    }


def gemini_batch(vectors: list[list[float]], *, prompt_tokens: int | None = None) -> dict[str, Any]:
    """``batchEmbedContents``'s answer (``usageMetadata`` only where the API sends it)."""
    out: dict[str, Any] = {"embeddings": [{"values": v} for v in vectors]}
    if prompt_tokens is not None:
        out["usageMetadata"] = {"promptTokenCount": prompt_tokens, "totalTokenCount": prompt_tokens}
    return out
