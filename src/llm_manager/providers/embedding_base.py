"""The shared half of every embedding adapter: the input type translated (or reported as dropped), large requests
sent in slices the model takes, the slices' answers joined, and chat refused.

An embedding adapter implements :meth:`EmbeddingAdapter.send` (one wire call for at most ``max_batch`` inputs)
and :meth:`~llm_manager.providers.base.ProviderAdapter.probe`. One over HTTP states only its wire format as data
(:class:`HttpEmbeddingAdapter`), on top of its protocol's chat adapter for the transport, headers and probe.
"""

from __future__ import annotations

import asyncio
from abc import abstractmethod
from collections.abc import AsyncGenerator
from dataclasses import replace
from typing import TYPE_CHECKING, Any, ClassVar, NoReturn

from llm_manager import _json
from llm_manager.codecs.base import text_of
from llm_manager.embedding import EmbedCall, Embedded
from llm_manager.embedding_profiles import EmbeddingProfile, embedding_profile_for
from llm_manager.errors import InvalidRequestError, ModelUnavailableError, ProviderError
from llm_manager.providers.base import Chunk, Completion, ProviderAdapter
from llm_manager.providers.http_adapter import HttpAdapter

if TYPE_CHECKING:
    from llm_manager.types import Request

__all__ = ["EmbeddingAdapter", "HttpEmbeddingAdapter", "join", "prepare", "slices"]


def prepare(call: EmbedCall, profile: EmbeddingProfile | None, *, task_types: bool) -> tuple[EmbedCall, list[str]]:
    """``call`` as this model takes it: an input type becomes the model's prefix (nomic's ``search_query: ``), stays
    a field for a protocol that carries it (``task_types``), or is dropped and reported."""
    if call.input_type is None:
        return call, []
    if task_types and profile is not None and profile.task_types:
        return call, []
    prefix = profile.prefixes.get(call.input_type) if profile is not None else None
    if prefix and call.tokens is None:
        return replace(call, texts=[prefix + t for t in call.texts], input_type=None), []
    return replace(call, input_type=None), ["input_type"]


def slices(call: EmbedCall, size: int | None) -> list[EmbedCall]:
    """``call`` cut into calls of at most ``size`` inputs each (one call when ``size`` is ``None`` or enough)."""
    count = len(call.tokens) if call.tokens is not None else len(call.texts)
    if size is None or count <= size:
        return [call]
    if call.tokens is not None:
        return [replace(call, tokens=call.tokens[i : i + size]) for i in range(0, count, size)]
    return [replace(call, texts=call.texts[i : i + size]) for i in range(0, count, size)]


def join(parts: list[Embedded], dropped: list[str]) -> Embedded:
    """The answers of a call's slices, in order, as one answer (tokens unknown if any slice did not count)."""
    if len(parts) == 1:
        parts[0].dropped = dropped
        return parts[0]
    counts = [p.prompt_tokens for p in parts]
    return Embedded(
        vectors=[v for p in parts for v in p.vectors],
        prompt_tokens=None if any(c is None for c in counts) else sum(c or 0 for c in counts),
        model=next((p.model for p in parts if p.model), None),
        dropped=dropped,
    )


class EmbeddingAdapter(ProviderAdapter):
    """Base of the adapters of embedding models."""

    task_types = False
    """Whether the protocol carries an input type as a field (Gemini's ``taskType``)."""
    protocol_max_batch: int | None = None
    """Most inputs one call of the protocol takes, whatever the model."""

    @property
    def profile(self) -> EmbeddingProfile | None:
        """The model's built-in profile, when it is a known model."""
        return embedding_profile_for(self.endpoint.model)

    async def embed(self, call: EmbedCall, *, api_key: str | None) -> Embedded:
        """Embed ``call`` in as many wire calls as the model's batch limit needs (concurrently; one failure fails
        the whole call, and the other slices are cancelled)."""
        profile = self.profile
        call, dropped = prepare(call, profile, task_types=self.task_types)
        limits = [n for n in (self.protocol_max_batch, profile.max_batch if profile else None) if n is not None]
        parts = slices(call, min(limits) if limits else None)
        if len(parts) == 1:
            return join([await self.send(parts[0], api_key=api_key)], dropped)
        tasks = [asyncio.ensure_future(self.send(p, api_key=api_key)) for p in parts]
        try:
            answers = await asyncio.gather(*tasks)
        except BaseException:
            # The first failure is the attempt's error (a plain ProviderError, which the executor maps); the other
            # slices are stopped rather than left running.
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
            raise
        return join(list(answers), dropped)

    @abstractmethod
    async def send(self, call: EmbedCall, *, api_key: str | None) -> Embedded:
        """One wire call for ``call`` (within the batch limit); raises a mapped :class:`ProviderError`."""

    async def complete(self, request: Request, *, api_key: str | None) -> Completion:  # noqa: ARG002
        """Refused: an embedding model does not answer prompts."""
        self._refuse()

    def stream(self, request: Request, *, api_key: str | None) -> AsyncGenerator[Chunk, None]:  # noqa: ARG002
        """Refused: an embedding model does not answer prompts."""
        self._refuse()

    def _refuse(self) -> NoReturn:
        raise InvalidRequestError(
            f"{self.endpoint.name} is an embedding model: it returns vectors (use embed()), not answers",
            deployment=self.endpoint.name,
        )


class HttpEmbeddingAdapter(EmbeddingAdapter, HttpAdapter):
    """An embedding adapter over HTTP: its wire format as data, the transport its chat adapter's (listed after this
    class in the subclass's bases: ``class X(HttpEmbeddingAdapter, ChatAdapter)``)."""

    embed_path: ClassVar[str]
    """Where one batch is embedded (relative, as :attr:`HttpAdapter.path`)."""
    malformed: ClassVar[type[Exception]]
    """What the codec raises for an answer that is not one vector per input (a retryable upstream fault)."""

    @staticmethod
    @abstractmethod
    def encode_embeddings(model: str, call: EmbedCall) -> dict[str, Any]:
        """The body asking for ``call``'s vectors (``extra_body`` is merged after)."""

    @staticmethod
    @abstractmethod
    def decode_embeddings(body: bytes, expected: int) -> Embedded:
        """The vectors of a 2xx answer, in input order; raises :attr:`malformed` for an unusable one."""

    async def send(self, call: EmbedCall, *, api_key: str | None) -> Embedded:
        """One wire call for ``call``.

        Raises:
            ProviderError: The mapped error for an error status, or :class:`ModelUnavailableError` for an answer
                that is not one vector per input.
        """
        body = self.encode_embeddings(self.endpoint.model, call)
        body.update(self.endpoint.extra_body)
        expected = len(call.tokens) if call.tokens is not None else len(call.texts)
        try:
            resp = await self.post(self.embed_path, _json.dumps(body), api_key)
            try:
                return self.decode_embeddings(resp.body, expected)
            except self.malformed as exc:
                raise ModelUnavailableError(str(exc), status_code=resp.status, body=text_of(resp.body)) from None
        except ProviderError as exc:
            self.tag(exc)
            raise
