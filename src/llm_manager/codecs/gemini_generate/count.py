"""Token counting on the Gemini API (``models/{model}:countTokens``): the body wraps the request's own encoding as a
``generateContentRequest`` (so the system instruction and the tools are counted too), the answer is ``totalTokens``."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from llm_manager.codecs.base import count_of
from llm_manager.codecs.gemini_generate.request import encode_request, model_path

if TYPE_CHECKING:
    from llm_manager.codecs.base import Target
    from llm_manager.types import Request

__all__ = ["decode_count", "encode_count_request"]

_COUNTED = ("contents", "systemInstruction", "tools", "toolConfig")


def encode_count_request(request: Request, target: Target) -> dict[str, Any]:
    """The ``countTokens`` body for ``request`` sent to ``target``."""
    body = encode_request(request, target)
    inner = {"model": model_path(target.model), **{k: body[k] for k in _COUNTED if k in body}}
    return {"generateContentRequest": inner}


def decode_count(status: int, body: bytes) -> int:
    """``totalTokens`` of a 2xx answer."""
    return count_of(status, body, "totalTokens")
