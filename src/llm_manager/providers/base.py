"""The provider interface: one adapter per wire protocol, constructed per deployment.

An adapter translates a canonical :class:`~llm_manager.types.Request` into its protocol, sends it once, and
translates the answer (or the error) back. It never retries, routes or caches: those wrap it.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import AsyncGenerator, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, ClassVar

if TYPE_CHECKING:
    from llm_manager._http import HttpClient
    from llm_manager.types import FinishReason, Request, ToolCall, ToolCallDelta

__all__ = ["Chunk", "Completion", "Endpoint", "ProviderAdapter"]


@dataclass(slots=True)
class Endpoint:
    """Everything an adapter needs to reach one deployment (resolved from config and presets)."""

    name: str
    """Deployment name in config."""
    provider: str
    """Adapter kind: ``openai``, ``anthropic``, ``gemini``, ``simulated`` (…), as registered."""
    model: str
    """Model id sent on the wire."""
    base_url: str = ""
    headers: Mapping[str, str] = field(default_factory=dict)
    """Static headers sent with every call (e.g. Portkey routing headers)."""
    extra_body: Mapping[str, Any] = field(default_factory=dict)
    """Extra top-level fields merged into every request body."""
    context_window: int = 8192
    max_output_tokens: int | None = None
    default_max_tokens: int = 1024
    """Used where the protocol requires ``max_tokens`` (Anthropic) and the caller gave none."""
    options: Mapping[str, Any] = field(default_factory=dict)
    """Adapter-specific settings (e.g. the simulated model's behaviour)."""


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


class ProviderAdapter(ABC):
    """Base class of every adapter. Subclasses set :attr:`kind` and implement the three methods."""

    kind: ClassVar[str]
    simulated: ClassVar[bool] = False
    """True for adapters whose answers are not from a real model."""

    def __init__(self, endpoint: Endpoint, http: HttpClient) -> None:
        self.endpoint = endpoint
        self.http = http

    @abstractmethod
    async def complete(self, request: Request, *, api_key: str | None) -> Completion:
        """Send ``request`` once and return the whole answer, or raise a mapped :class:`ProviderError`."""

    @abstractmethod
    def stream(self, request: Request, *, api_key: str | None) -> AsyncGenerator[Chunk, None]:
        """Send ``request`` once and yield chunks as they arrive.

        Implemented as an async generator: the upstream response is closed in ``finally`` when the caller stops
        early. A stream that ends without the protocol's end marker raises
        :class:`~llm_manager.errors.StreamInterruptedError` rather than ending quietly.
        """

    @abstractmethod
    async def probe(self, *, api_key: str | None) -> None:
        """A cheap reachability and credentials check (no tokens spent); raises a mapped error on failure."""

    async def aclose(self) -> None:  # noqa: B027 - optional hook, most adapters share the manager's HTTP pool
        """Release adapter-owned resources."""
