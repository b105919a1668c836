"""Token counting on the Messages API (``POST /v1/messages/count_tokens``): the body is the request's own encoding
with the fields counting takes (model, messages, system, tools, tool choice, thinking), the answer ``input_tokens``.
Counting is free and spends no output, so nothing about the answer (``max_tokens``, sampling) is sent."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from llm_manager.codecs.anthropic_messages.request import encode_request
from llm_manager.codecs.base import count_of

if TYPE_CHECKING:
    from llm_manager.codecs.base import Target
    from llm_manager.types import Request

__all__ = ["COUNT_FIELDS", "decode_count", "encode_count_request"]

COUNT_FIELDS = ("model", "messages", "system", "tools", "tool_choice", "thinking", "mcp_servers")
"""What ``count_tokens`` accepts (it refuses ``max_tokens`` and the sampling fields)."""


def encode_count_request(request: Request, target: Target) -> dict[str, Any]:
    """The ``count_tokens`` body for ``request`` sent to ``target``: what the prompt would be, exactly as encoded."""
    body = encode_request(request, target, stream=False)
    return {k: body[k] for k in COUNT_FIELDS if k in body}


def decode_count(status: int, body: bytes) -> int:
    """``input_tokens`` of a 2xx answer."""
    return count_of(status, body, "input_tokens")
