"""The canonical form of a request: one key for the cache and for in-flight de-duplication."""

from __future__ import annotations

import hashlib
from typing import TYPE_CHECKING

from llm_manager import _json

if TYPE_CHECKING:
    from llm_manager.types import Request

__all__ = ["request_key"]

_VERSION = "v1"


def request_key(request: Request) -> str:
    """SHA-256 over what shapes the answer: task (it picks the model), preferred model, system prompt,
    messages and sampling parameters. Who asks (user, project, priority, metadata) does not change the answer,
    so it is left out: identical questions from two users share a cached answer."""
    canonical = [
        _VERSION,
        request.task,
        request.model,
        request.fallback,
        request.system,
        [(m.role, m.content) for m in request.messages],
        request.max_tokens,
        request.temperature,
        request.top_p,
        request.stop,
        request.response_format.model_dump() if request.response_format else None,
    ]
    return hashlib.sha256(_json.dumps(canonical)).hexdigest()
