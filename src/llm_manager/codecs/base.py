"""What every codec shares: the canonical answer an upstream gave (:class:`Completion`, :class:`Chunk`, and the
:class:`Accumulator` that assembles chunks into a completion), what a codec
needs to know about the deployment it encodes for (:class:`Target`), and the error a client's malformed body raises
(:class:`WireError`).

The canonical *request* is :class:`llm_manager.types.Request`; these are the provider-neutral pieces one level below
it, between a codec and the executor.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, fields
from typing import TYPE_CHECKING, Any, Protocol

from llm_manager import _json
from llm_manager.errors import ModelUnavailableError, StreamInterruptedError
from llm_manager.types import ToolCall, ToolCallDelta

if TYPE_CHECKING:
    from llm_manager.profiles import ModelProfile
    from llm_manager.types import FinishReason, TokenLogprob

__all__ = [
    "Accumulator",
    "Chunk",
    "Completion",
    "Target",
    "WireError",
    "as_int",
    "as_str",
    "completion_as_chunk",
    "count_of",
    "snippet",
    "text_of",
]


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

    def used_tokens(self) -> int | None:
        """Prompt plus completion tokens, when the provider reported both (what rate limits are settled with)."""
        if self.prompt_tokens is None or self.completion_tokens is None:
            return None
        return self.prompt_tokens + self.completion_tokens


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


class Accumulator:
    """Assembles a stream's chunks into one :class:`Completion` (a streamed answer ends as the same type as a whole
    one, from the adapter to the response)."""

    __slots__ = ("calls", "chunks", "parts", "reasoning", "so_far")

    def __init__(self) -> None:
        self.parts: list[str] = []
        self.reasoning: list[str] = []
        self.calls: dict[int, list[str]] = {}
        """Tool calls by index: ``[id, name, arguments…]``."""
        self.so_far = Completion("")
        """Everything but the text, reasoning and calls, as the chunks tell it (the last word wins)."""
        self.chunks = 0

    def add(self, chunk: Chunk) -> None:
        if chunk.text:
            self.parts.append(chunk.text)
            self.chunks += 1
        if chunk.reasoning:
            self.reasoning.append(chunk.reasoning)
            self.chunks += 1
        if chunk.tool_calls:
            self.chunks += 1
            for d in chunk.tool_calls:
                call = self.calls.setdefault(d.index, ["", ""])
                call[0] = d.id or call[0]
                call[1] = d.name or call[1]
                if d.arguments:
                    call.append(d.arguments)
        _note(self.so_far, chunk)

    def done(self) -> Completion:
        done = self.so_far
        done.text = "".join(self.parts)
        done.reasoning = "".join(self.reasoning)
        done.tool_calls = [
            ToolCall(id=c[0] or f"call_{i}", name=c[1], arguments="".join(c[2:]) or "{}")
            for i, c in sorted(self.calls.items())
        ]
        return done


def _note(done: Completion, chunk: Chunk) -> None:
    """What a chunk says besides text (the last word wins, except for the pieces of a signature and the log
    probabilities, which add up)."""
    if chunk.finish_reason:
        done.finish_reason = chunk.finish_reason
    if chunk.model:
        done.model = chunk.model
    if chunk.prompt_tokens is not None:
        done.prompt_tokens = chunk.prompt_tokens
    if chunk.completion_tokens is not None:
        done.completion_tokens = chunk.completion_tokens
    if chunk.cached_tokens:
        done.cached_tokens = chunk.cached_tokens
    if chunk.cache_write_tokens:
        done.cache_write_tokens = chunk.cache_write_tokens
    if chunk.reasoning_tokens:
        done.reasoning_tokens = chunk.reasoning_tokens
    if chunk.reasoning_signature:
        done.reasoning_signature = (done.reasoning_signature or "") + chunk.reasoning_signature
    if chunk.logprobs:
        done.logprobs = [*(done.logprobs or ()), *chunk.logprobs]
    if chunk.system_fingerprint:
        done.system_fingerprint = chunk.system_fingerprint


def completion_as_chunk(completion: Completion) -> Chunk:
    """A whole answer as one chunk (for a server that ignores ``stream: true`` and answers whole)."""
    calls = [
        ToolCallDelta(index=i, id=c.id, name=c.name, arguments=c.arguments) for i, c in enumerate(completion.tool_calls)
    ]
    return Chunk(tool_calls=calls or None, **{name: getattr(completion, name) for name in _CARRIED})


_CARRIED = tuple(f.name for f in fields(Chunk) if f.name != "tool_calls")
"""What a chunk takes from a whole answer as it is (every field of :class:`Chunk` is one of :class:`Completion`)."""


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


def text_of(body: bytes) -> str:
    """The start of a body as text, for error messages and ``ProviderError.body`` (the first 4,000 bytes: enough to
    diagnose, and an error never carries a whole large body)."""
    return body[:4000].decode("utf-8", errors="replace")


def event_object(data: str, what: str) -> dict[str, Any]:
    """The JSON object of one stream event's data; anything else (broken JSON, a list) raises
    :class:`~llm_manager.errors.StreamInterruptedError` naming ``what`` (``chunk``, ``event`` …) and quoting it."""
    try:
        payload = _json.loads(data)
    except _json.JSONDecodeError:
        payload = None
    if isinstance(payload, dict):
        return payload
    raise StreamInterruptedError(f"malformed {what}: {snippet(data)}", status_code=200, body=data[:4000])


def as_str(value: Any) -> str | None:
    """``value`` if it is a string (an upstream's JSON is read leniently: a wrong type counts as absent)."""
    return value if isinstance(value, str) else None


def as_int(value: Any) -> int | None:
    """``value`` if it is an integer (``true`` is not)."""
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def count_of(status: int, body: bytes, name: str) -> int:
    """The integer field ``name`` of a token-counting answer (``input_tokens``, ``totalTokens``); raises
    :class:`~llm_manager.errors.ModelUnavailableError` for a body without it."""
    try:
        data = _json.loads(body)
    except _json.JSONDecodeError:
        data = None
    count = as_int(data.get(name)) if isinstance(data, dict) else None
    if count is None:
        text = snippet(body.decode("utf-8", "replace"))
        raise ModelUnavailableError(f"the token count has no {name}", status_code=status, body=text)
    return count
