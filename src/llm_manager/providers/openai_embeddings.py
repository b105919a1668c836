"""Embedding models behind OpenAI's ``POST {base_url}/embeddings``: OpenAI itself and every server that copies its
API (Ollama, vLLM, LM Studio, llama.cpp, OpenRouter, the Portkey gateway). What differs between them is data (the
endpoint's URL, headers, ``extra_body``; the model's embedding profile), as for chat.

The transport is the chat adapter's (URL, headers, the ``GET /models`` probe, error tagging); the body is built and
the answer read by :mod:`llm_manager.codecs.openai_embeddings`, and errors are decoded by the OpenAI error codec, so a
429's ``Retry-After`` or a bad key mean the same thing for both. Vectors are asked for as base64 (a quarter of the
bytes); a server that answers with JSON numbers instead is read just the same, and ``extra_body: {encoding_format:
float}`` on the deployment asks for numbers outright.
"""

from __future__ import annotations

from llm_manager import _json
from llm_manager.codecs.openai_chat.errors import decode_error, text_of
from llm_manager.codecs.openai_embeddings import DecodeError, decode_response, encode_request
from llm_manager.embedding import EmbedCall, Embedded
from llm_manager.errors import ModelUnavailableError, ProviderError
from llm_manager.providers.embedding_base import EmbeddingAdapter
from llm_manager.providers.openai_chat import OpenAIChatAdapter

__all__ = ["OpenAIEmbeddingsAdapter"]


class OpenAIEmbeddingsAdapter(EmbeddingAdapter, OpenAIChatAdapter):
    """Adapter for OpenAI-style embedding endpoints; one instance per configured deployment (chat is refused)."""

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
            resp = await self.http.post(self._url("embeddings"), headers=self._headers(api_key), body=_json.dumps(body))
            if not 200 <= resp.status < 300:
                raise decode_error(resp.status, resp.headers, resp.body)
            try:
                return decode_response(resp.body, expected)
            except DecodeError as exc:
                raise ModelUnavailableError(str(exc), status_code=resp.status, body=text_of(resp.body)) from None
        except ProviderError as exc:
            self.tag(exc)
            raise
