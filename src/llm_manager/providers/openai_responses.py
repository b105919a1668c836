"""The OpenAI Responses API adapter (``POST {base_url}/responses``), for deployments with ``api: responses``: some
OpenAI models are served only there. The transport, headers, errors and probing are the Chat Completions
adapter's; the wire format is :mod:`llm_manager.codecs.openai_responses.egress`."""

from __future__ import annotations

from collections.abc import Mapping
from typing import ClassVar

from llm_manager.codecs.openai_chat.stream import completion_as_chunk
from llm_manager.codecs.openai_responses.egress import StreamDecoder, decode_response, encode_request, unsupported
from llm_manager.providers._stream import EventDecoder
from llm_manager.providers.openai_chat import OpenAIChatAdapter

__all__ = ["OpenAIResponsesAdapter"]


class OpenAIResponsesAdapter(OpenAIChatAdapter):
    """Adapter for the OpenAI Responses API (OpenAI, and compatible servers that serve it)."""

    path: ClassVar[str] = "responses"
    encode = staticmethod(encode_request)
    decode = staticmethod(decode_response)
    whole_as_chunk = staticmethod(completion_as_chunk)
    left_out = staticmethod(unsupported)

    def decoder(self, headers: Mapping[str, str]) -> EventDecoder:
        return StreamDecoder(headers)
