"""The OpenAI Chat Completions adapter (``POST {base_url}/chat/completions``): its wire format, as data.

One adapter serves OpenAI and every server that copies its API (Groq, OpenRouter, LM Studio, Ollama, vLLM,
llama.cpp, the Portkey gateway). What differs between them arrives as data in the
:class:`~llm_manager.providers.base.Endpoint` (base URL, static headers, extra body fields, the typed profile);
nothing here branches on a vendor's name. The wire format itself is :mod:`llm_manager.codecs.openai_chat`; the
transport (URL, headers, status check, streams, error tagging) is :class:`~llm_manager.providers.http_adapter.HttpAdapter`.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING

from llm_manager.codecs.openai_chat.errors import decode_error
from llm_manager.codecs.openai_chat.request import encode_request, unsupported
from llm_manager.codecs.openai_chat.response import decode_response
from llm_manager.codecs.openai_chat.stream import StreamDecoder
from llm_manager.providers.http_adapter import HttpAdapter

if TYPE_CHECKING:
    from llm_manager._http import HttpResponse
    from llm_manager.providers._stream import EventDecoder
    from llm_manager.providers.base import Completion
    from llm_manager.types import Request

__all__ = ["OpenAIChatAdapter"]


class OpenAIChatAdapter(HttpAdapter):
    """Adapter for the OpenAI Chat Completions API and every OpenAI-compatible server (bearer key, ``GET /models``
    probe; a server that ignores ``stream: true`` and answers whole is read as one chunk)."""

    kind = "openai"
    path = stream_path = "chat/completions"
    probe_path = "models"
    encode = staticmethod(encode_request)
    decode_error = staticmethod(decode_error)
    left_out = staticmethod(unsupported)
    may_answer_whole = True

    def decode(self, request: Request, resp: HttpResponse) -> Completion:  # noqa: ARG002 - one answer shape
        """The completion in a ``chat.completion`` body."""
        return decode_response(resp.body)

    def decoder(self, request: Request, headers: Mapping[str, str]) -> EventDecoder:  # noqa: ARG002
        """The ``chat.completion.chunk`` event decoder."""
        return StreamDecoder(headers)
