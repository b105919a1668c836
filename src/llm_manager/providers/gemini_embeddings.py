"""Gemini embedding models (``models/{model}:batchEmbedContents`` on the Generative Language API).

The transport is the Gemini chat adapter's (URL, ``x-goog-api-key`` header — never the URL — and the ``GET
models/{model}`` probe); the body is built and the answer read by :mod:`llm_manager.codecs.gemini_embeddings`, and
errors (Google RPC statuses: a 429's ``RetryInfo``, a 400 ``API_KEY_INVALID``) are decoded by the Gemini error codec.
Requests of more than 100 texts are sent in slices of 100, concurrently.
"""

from __future__ import annotations

from llm_manager.codecs.gemini_embeddings import MAX_BATCH, DecodeError, decode_response, encode_request
from llm_manager.embedding import EmbedCall, Embedded
from llm_manager.errors import InvalidRequestError
from llm_manager.providers.embedding_base import HttpEmbeddingAdapter
from llm_manager.providers.gemini import GeminiAdapter

__all__ = ["GeminiEmbeddingsAdapter"]


class GeminiEmbeddingsAdapter(HttpEmbeddingAdapter, GeminiAdapter):
    """Adapter for Gemini embedding models; one instance per configured deployment (chat is refused)."""

    kind = "gemini"
    task_types = True
    protocol_max_batch = MAX_BATCH
    embed_path = ":batchEmbedContents"
    malformed = DecodeError
    encode_embeddings = staticmethod(encode_request)
    decode_embeddings = staticmethod(decode_response)

    async def send(self, call: EmbedCall, *, api_key: str | None) -> Embedded:
        """One ``batchEmbedContents`` call for ``call``; token ids are refused (the API takes text only)."""
        if call.tokens is not None:
            raise InvalidRequestError(
                f"{self.endpoint.name} takes text only, not token ids", deployment=self.endpoint.name
            )
        return await super().send(call, api_key=api_key)
