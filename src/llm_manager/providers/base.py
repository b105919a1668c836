"""The provider interface: one adapter per wire protocol, constructed per deployment.

An adapter is a transport plus a codec plus a typed model profile: it encodes a canonical
:class:`~llm_manager.types.Request` with its protocol's codec (:mod:`llm_manager.codecs`) for the deployment's
:class:`~llm_manager.profiles.ModelProfile`, sends it once, and decodes the answer (or the error) with the same codec.
It never retries, routes or caches: those wrap it. The adapters of HTTP protocols share their transport
(:class:`~llm_manager.providers.http_adapter.HttpAdapter`) and state only their wire format.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import AsyncGenerator, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, ClassVar

from llm_manager.codecs.base import Chunk, Completion
from llm_manager.profiles import ModelProfile

if TYPE_CHECKING:
    from llm_manager._http import HttpClient
    from llm_manager.codecs.params import Dropped
    from llm_manager.config import SimulatedBehaviour
    from llm_manager.embedding import EmbedCall, Embedded
    from llm_manager.types import Request

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
    max_output_tokens: int | None = None
    default_max_tokens: int = 1024
    """Used where the protocol requires ``max_tokens`` (Anthropic) and the caller gave none."""
    profile: ModelProfile = field(default_factory=ModelProfile)
    """What the model can do (context window, modalities, JSON modes, reasoning …): typed, from the built-in
    profiles, the preset and the deployment's config."""
    via_portkey: bool = False
    """The calls go through the Portkey gateway (in the OpenAI wire format)."""
    simulate: SimulatedBehaviour | None = None
    """The simulated provider's behaviour (``models.<name>.simulate``)."""
    seed: int = 0
    """``simulation.seed``: the simulated provider's outcomes are deterministic under it."""

    @property
    def context_window(self) -> int:
        """Tokens the model can take, prompt and answer together."""
        return self.profile.context_window


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

    def unsupported(self, request: Request) -> Dropped | None:
        """The parameters of ``request`` this deployment cannot honour (left out of what is sent), and why; ``None``
        when it honours all of them. An adapter with a codec asks it, by the same rules it encodes by; one with none
        (the simulated provider) takes every portable parameter and no provider's own fields."""
        if request.passthrough is None:
            return None
        from llm_manager.codecs.params import Dropped, foreign_fields

        dropped = Dropped()
        foreign_fields(request, self.kind, dropped)
        return dropped

    async def count_tokens(self, request: Request, *, api_key: str | None) -> int | None:  # noqa: ARG002
        """The prompt's input tokens as the provider counts them (no tokens spent), or ``None`` when its API has no
        way to count (the caller then estimates). Raises a mapped :class:`ProviderError` when the count fails."""
        return None

    @abstractmethod
    async def probe(self, *, api_key: str | None) -> None:
        """A cheap reachability and credentials check (no tokens spent); raises a mapped error on failure."""

    async def embed(self, call: EmbedCall, *, api_key: str | None) -> Embedded:  # noqa: ARG002
        """Embed ``call``'s inputs once and return a vector per input, or raise a mapped :class:`ProviderError`.

        Only embedding adapters (see :func:`~llm_manager.providers.registry.adapter_class`) implement it; a chat
        adapter is never routed an embedding request, so reaching this is a bug or a direct call.
        """
        from llm_manager.errors import InvalidRequestError

        raise InvalidRequestError(
            f"{self.endpoint.name} is a chat model: it has no embeddings", deployment=self.endpoint.name
        )

    async def aclose(self) -> None:  # noqa: B027 - optional hook, most adapters share the manager's HTTP pool
        """Release adapter-owned resources."""
