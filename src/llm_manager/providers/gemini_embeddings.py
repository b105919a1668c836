"""Gemini embedding models (``models/{model}:batchEmbedContents`` on the Generative Language API).

The body is built and the answer read by :mod:`llm_manager.codecs.gemini_embeddings`; errors are Google RPC
statuses, mapped by the Gemini chat adapter's :func:`~llm_manager.providers.gemini.map_error` (a 429's
``RetryInfo``, a 400 ``API_KEY_INVALID``). The key travels in ``x-goog-api-key``, never in the URL. Requests of
more than 100 texts are sent in slices of 100, concurrently.
"""

from __future__ import annotations

from llm_manager import _json
from llm_manager.codecs.gemini_embeddings import MAX_BATCH, DecodeError, decode_response, encode_request, model_path
from llm_manager.embedding import EmbedCall, Embedded
from llm_manager.errors import InvalidRequestError, ModelUnavailableError, ProviderError
from llm_manager.providers.embedding_base import EmbeddingAdapter
from llm_manager.providers.gemini import map_error

__all__ = ["GeminiEmbeddingsAdapter"]


class GeminiEmbeddingsAdapter(EmbeddingAdapter):
    """Adapter for Gemini embedding models; one instance per configured deployment."""

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
            resp = await self.http.post(self._url(), headers=self._headers(api_key), body=_json.dumps(body))
            if not 200 <= resp.status < 300:
                raise map_error(resp.status, resp.headers, resp.body)
            try:
                return decode_response(resp.body, len(call.texts))
            except DecodeError as exc:
                text = resp.body[:4000].decode("utf-8", errors="replace")
                raise ModelUnavailableError(str(exc), status_code=resp.status, body=text) from None
        except ProviderError as exc:
            self.tag(exc)
            raise

    async def probe(self, *, api_key: str | None) -> None:
        """``GET models/{model}``: reachability, the key and the model name, without spending tokens."""
        url = f"{self.endpoint.base_url.rstrip('/')}/{model_path(self.endpoint.model)}"
        headers = {k: v for k, v in self._headers(api_key).items() if k != "content-type"}
        try:
            resp = await self.http.request("GET", url, headers=headers)
            if not 200 <= resp.status < 300:
                raise map_error(resp.status, resp.headers, resp.body)
        except ProviderError as exc:
            self.tag(exc)
            raise

    def _url(self) -> str:
        return f"{self.endpoint.base_url.rstrip('/')}/{model_path(self.endpoint.model)}:batchEmbedContents"

    def _headers(self, api_key: str | None) -> dict[str, str]:
        headers = {"content-type": "application/json", **self.endpoint.headers}
        if api_key is not None:
            headers["x-goog-api-key"] = api_key
        return headers
