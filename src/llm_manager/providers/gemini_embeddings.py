"""Gemini embedding models (``models/{model}:batchEmbedContents`` on the Generative Language API).

The transport is the Gemini chat adapter's (URL, ``x-goog-api-key`` header — never the URL — and the ``GET
models/{model}`` probe); the body is built and the answer read by :mod:`llm_manager.codecs.gemini_embeddings`, and
errors (Google RPC statuses: a 429's ``RetryInfo``, a 400 ``API_KEY_INVALID``) are decoded by the Gemini error codec.
Requests of more than 100 texts are sent in slices of 100, concurrently.
"""

from __future__ import annotations

from llm_manager import _json
from llm_manager.codecs.gemini_embeddings import MAX_BATCH, DecodeError, decode_response, encode_request
from llm_manager.codecs.gemini_generate.errors import decode_error, text_of
from llm_manager.embedding import EmbedCall, Embedded
from llm_manager.errors import InvalidRequestError, ModelUnavailableError, ProviderError
from llm_manager.providers.embedding_base import EmbeddingAdapter
from llm_manager.providers.gemini import GeminiAdapter

__all__ = ["GeminiEmbeddingsAdapter"]


class GeminiEmbeddingsAdapter(EmbeddingAdapter, GeminiAdapter):
    """Adapter for Gemini embedding models; one instance per configured deployment (chat is refused)."""

    kind = "gemini"
    task_types = True
    protocol_max_batch = MAX_BATCH

    async def send(self, call: EmbedCall, *, api_key: str | None) -> Embedded:
        """One ``batchEmbedContents`` call for ``call``.

        Raises:
            ProviderError: The mapped error for an error status, or :class:`ModelUnavailableError` for an answer
                that is not one vector per input.
        """
        if call.tokens is not None:
            raise InvalidRequestError(
                f"{self.endpoint.name} takes text only, not token ids", deployment=self.endpoint.name
            )
        body = encode_request(self.endpoint.model, call)
        body.update(self.endpoint.extra_body)
        try:
            url = self._url("batchEmbedContents")
            resp = await self.http.post(url, headers=self._headers(api_key), body=_json.dumps(body))
            if not 200 <= resp.status < 300:
                raise decode_error(resp.status, resp.headers, resp.body)
            try:
                return decode_response(resp.body, len(call.texts))
            except DecodeError as exc:
                raise ModelUnavailableError(str(exc), status_code=resp.status, body=text_of(resp.body)) from None
        except ProviderError as exc:
            self.tag(exc)
            raise
