"""The canonical form of a request: one key for the cache and for in-flight de-duplication.

Inline bytes (images, audio, files) enter the key as their content address (``sha256:…``), not themselves: a key
costs one hash of them, and two requests with the same picture share an answer.
"""

from __future__ import annotations

import hashlib
from typing import TYPE_CHECKING, Any

from llm_manager import _json
from llm_manager.content import digest

if TYPE_CHECKING:
    from llm_manager.types import Message, Part, Request

__all__ = ["request_key", "scope_key"]

_VERSION = "v1"


def request_key(request: Request) -> str:
    """SHA-256 over what shapes the answer: task (it picks the model), preferred model, system prompt,
    messages and sampling parameters. Who asks (user, project, priority, metadata) does not change the answer,
    so it is left out: identical questions from two users share a cached answer."""
    return hashlib.sha256(_json.dumps(_canonical(request, request.messages, _VERSION))).hexdigest()


def scope_key(request: Request, embedder: str) -> str:
    """The semantic cache's scope: :func:`request_key` of everything but the last message (the prompt compared by
    meaning), plus the embedder whose vectors are compared. Only prompts of one scope can answer each other."""
    canonical = _canonical(request, request.messages[:-1], "scope-v1")
    canonical.append(embedder)
    return hashlib.sha256(_json.dumps(canonical)).hexdigest()


def _canonical(request: Request, messages: list[Message], version: str) -> list[Any]:
    canonical: list[Any] = [
        version,
        request.task,
        request.model,
        request.fallback,
        request.system,
        [_message(m) for m in messages],
        request.max_tokens,
        request.temperature,
        request.top_p,
        request.stop,
        request.response_format.model_dump() if request.response_format else None,
    ]
    extra = _extras(request)
    if extra:
        # Only requests that set these carry them, so keys of plain requests stay what they were.
        canonical.append(extra)
    if request.tools or request.tool_choice is not None or request.parallel_tool_calls is not None:
        # Only requests with tools carry these, so keys of plain requests stay what they were.
        choice = request.tool_choice
        canonical.append(
            [
                [t.model_dump() for t in request.tools or ()],
                choice.model_dump() if choice is not None and not isinstance(choice, str) else choice,
                request.parallel_tool_calls,
            ]
        )
    return canonical


_EXTRAS = (
    "seed",
    "frequency_penalty",
    "presence_penalty",
    "top_k",
    "logprobs",
    "top_logprobs",
    "reasoning",
    "service_tier",
    "passthrough",
)
"""Request fields that shape the answer, keyed only when set."""


def _extras(request: Request) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for name in _EXTRAS:
        value = getattr(request, name)
        if value is not None:
            out[name] = value.model_dump() if hasattr(value, "model_dump") else value
    return out


def _message(m: Message) -> list[Any]:
    content = m.content if isinstance(m.content, str) else [_part(p) for p in m.content]
    if m.tool_calls or m.tool_call_id is not None:
        return [m.role, content, [c.model_dump() for c in m.tool_calls], m.tool_call_id]
    return [m.role, content]


def _part(part: Part) -> dict[str, Any]:
    fields = part.model_dump(exclude_none=True)
    data = fields.pop("data", None)
    if data is not None:
        fields["data"] = digest(data)
    return fields
