"""What every codec shares: the canonical answer an upstream gave (:class:`Completion`, :class:`Chunk`), what a codec
needs to know about the deployment it encodes for (:class:`Target`), and the error a client's malformed body raises
(:class:`WireError`).

The canonical *request* is :class:`llm_manager.types.Request`; these are the provider-neutral pieces one level below
it, between a codec and the executor.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol

if TYPE_CHECKING:
    from llm_manager.profiles import ModelProfile
    from llm_manager.types import FinishReason, TokenLogprob, ToolCall, ToolCallDelta

__all__ = ["Chunk", "Completion", "Target", "WireError", "as_int", "as_str", "count_of", "snippet"]


@dataclass(slots=True)
class Completion:
    """A whole answer, in canonical form."""

    text: str
    finish_reason: FinishReason | None = None
    prompt_tokens: int | None = None
    completion_tokens: int | None = None
    cached_tokens: int = 0
    model: str | None = None
    """The model as the provider named it in its answer."""
    id: str | None = None
    tool_calls: list[ToolCall] = field(default_factory=list)
    reasoning: str = ""
    """The model's reasoning (thinking), when the provider returns it."""
    reasoning_signature: str | None = None
    cache_write_tokens: int = 0
    """Prompt tokens written to the provider's prompt cache (part of ``prompt_tokens``)."""
    reasoning_tokens: int = 0
    """Completion tokens spent reasoning (part of ``completion_tokens``)."""
    logprobs: list[TokenLogprob] | None = None
    system_fingerprint: str | None = None


@dataclass(slots=True)
class Chunk:
    """One streamed piece. The last piece of a healthy stream has ``finish_reason`` and, if sent, usage."""

    text: str = ""
    finish_reason: FinishReason | None = None
    prompt_tokens: int | None = None
    completion_tokens: int | None = None
    cached_tokens: int = 0
    model: str | None = None
    tool_calls: list[ToolCallDelta] | None = None
    """Pieces of tool calls (OpenAI's streaming shape: ``index`` says which call a piece belongs to)."""
    reasoning: str = ""
    """A piece of the model's reasoning (thinking)."""
    reasoning_signature: str | None = None
    cache_write_tokens: int = 0
    reasoning_tokens: int = 0
    logprobs: list[TokenLogprob] | None = None
    system_fingerprint: str | None = None


class Target(Protocol):
    """The deployment a request is encoded for (an adapter's :class:`~llm_manager.providers.base.Endpoint`)."""

    @property
    def model(self) -> str:
        """Model id sent on the wire."""

    @property
    def profile(self) -> ModelProfile:
        """What the model can do (modalities, JSON modes, reasoning …)."""

    @property
    def extra_body(self) -> Mapping[str, Any]:
        """Fields merged into every request body (config's ``extra_body``)."""

    @property
    def max_output_tokens(self) -> int | None:
        """A cap on the answer's length, whatever the caller asks for."""

    @property
    def default_max_tokens(self) -> int:
        """The answer's limit where the protocol requires one and the caller gave none."""


class WireError(ValueError):
    """A client's body does not follow the wire format: ``param`` names the field (the gateway answers 400)."""

    def __init__(self, message: str, param: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.param = param


_SNIPPET_CHARS = 300


def snippet(text: str) -> str:
    """``text`` on one line, cut to a few hundred characters (for error messages)."""
    flat = " ".join(text.split())
    return flat if len(flat) <= _SNIPPET_CHARS else flat[:_SNIPPET_CHARS] + "…"


def as_str(value: Any) -> str | None:
    """``value`` if it is a string (an upstream's JSON is read leniently: a wrong type counts as absent)."""
    return value if isinstance(value, str) else None


def as_int(value: Any) -> int | None:
    """``value`` if it is an integer (``true`` is not)."""
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def count_of(status: int, body: bytes, name: str) -> int:
    """The integer field ``name`` of a token-counting answer (``input_tokens``, ``totalTokens``); raises
    :class:`~llm_manager.errors.ModelUnavailableError` for a body without it."""
    from llm_manager import _json
    from llm_manager.errors import ModelUnavailableError

    try:
        data = _json.loads(body)
    except _json.JSONDecodeError:
        data = None
    count = as_int(data.get(name)) if isinstance(data, dict) else None
    if count is None:
        text = snippet(body.decode("utf-8", "replace"))
        raise ModelUnavailableError(f"the token count has no {name}", status_code=status, body=text)
    return count
