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

from llm_manager.codecs.openai_embeddings import DecodeError, decode_response, encode_request
from llm_manager.providers.embedding_base import HttpEmbeddingAdapter
from llm_manager.providers.openai_chat import OpenAIChatAdapter

__all__ = ["OpenAIEmbeddingsAdapter"]


class OpenAIEmbeddingsAdapter(HttpEmbeddingAdapter, OpenAIChatAdapter):
    """Adapter for OpenAI-style embedding endpoints; one instance per configured deployment (chat is refused)."""

    kind = "openai"
    protocol_max_batch = 2048
    embed_path = "embeddings"
    malformed = DecodeError
    encode_embeddings = staticmethod(encode_request)
    decode_embeddings = staticmethod(decode_response)
