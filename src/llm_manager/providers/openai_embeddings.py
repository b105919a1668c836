"""Embedding models behind OpenAI's ``POST {base_url}/embeddings``: OpenAI itself and every server that copies its
API (Ollama, vLLM, LM Studio, llama.cpp, OpenRouter, the Portkey gateway). What differs between them is data (the
endpoint's URL, headers, ``extra_body``; the model's profile), as for chat.

The body is built and the answer read by :mod:`llm_manager.codecs.openai_embeddings`; errors are mapped by the
same function as the chat adapter's, so a 429's ``Retry-After`` or a bad key mean the same thing on both.
Vectors are asked for as base64 (a quarter of the bytes); a server that answers with JSON numbers instead is read
just the same, and ``extra_body: {encoding_format: float}`` on the deployment asks for numbers outright.
"""

from __future__ import annotations

from llm_manager import _json
from llm_manager.codecs.openai_embeddings import DecodeError, decode_response, encode_request
from llm_manager.embedding import EmbedCall, Embedded
from llm_manager.errors import ConfigError, ModelUnavailableError, ProviderError
from llm_manager.providers.embedding_base import EmbeddingAdapter
from llm_manager.providers.openai_chat import build_headers, error_from_response

__all__ = ["OpenAIEmbeddingsAdapter"]


class OpenAIEmbeddingsAdapter(EmbeddingAdapter):
    """Adapter for OpenAI-style embedding endpoints; one instance per configured deployment."""

    kind = "openai"
    protocol_max_batch = 2048

    async def send(self, call: EmbedCall, *, api_key: str | None) -> Embedded:
        """One ``POST /embeddings`` for ``call``.

        Raises:
            ProviderError: The mapped error for an error status, or :class:`ModelUnavailableError` for an answer
                that is not a list of one vector per input.
        """
        body = encode_request(self.endpoint.model, call)
        body.update(self.endpoint.extra_body)
        expected = len(call.tokens) if call.tokens is not None else len(call.texts)
        try:
            resp = await self.http.post(
                self._url("embeddings"), headers=build_headers(self.endpoint, api_key), body=_json.dumps(body)
            )
            if not 200 <= resp.status < 300:
                raise error_from_response(resp.status, resp.headers, resp.body)
            try:
                return decode_response(resp.body, expected)
            except DecodeError as exc:
                text = resp.body[:4000].decode("utf-8", errors="replace")
                raise ModelUnavailableError(str(exc), status_code=resp.status, body=text) from None
        except ProviderError as exc:
            self.tag(exc)
            raise

    async def probe(self, *, api_key: str | None) -> None:
        """List the models (``GET {base_url}/models``): reachability and the key, without spending tokens."""
        headers = {k: v for k, v in build_headers(self.endpoint, api_key).items() if k != "content-type"}
        try:
            resp = await self.http.request("GET", self._url("models"), headers=headers)
            if not 200 <= resp.status < 300:
                raise error_from_response(resp.status, resp.headers, resp.body)
        except ProviderError as exc:
            self.tag(exc)
            raise

    def _url(self, path: str) -> str:
        base = self.endpoint.base_url.rstrip("/")
        if not base:
            raise ConfigError(f"deployment {self.endpoint.name!r} has no base_url", deployment=self.endpoint.name)
        return f"{base}/{path}"
