"""The OpenAI Responses API adapter (``POST {base_url}/responses``), for deployments with ``api: responses``: some
OpenAI models are served only there. The transport, headers, errors and probing are the Chat Completions
adapter's; the wire format is :mod:`llm_manager.codecs.openai_responses.egress`."""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING

from llm_manager.codecs.openai_responses.egress import StreamDecoder, decode_response, encode_request, unsupported
from llm_manager.providers.openai_chat import OpenAIChatAdapter

if TYPE_CHECKING:
    from llm_manager._http import HttpResponse
    from llm_manager.providers._stream import EventDecoder
    from llm_manager.providers.base import Completion
    from llm_manager.types import Request

__all__ = ["OpenAIResponsesAdapter"]


class OpenAIResponsesAdapter(OpenAIChatAdapter):
    """Adapter for the OpenAI Responses API (OpenAI, and compatible servers that serve it)."""

    path = stream_path = "responses"
    encode = staticmethod(encode_request)
    left_out = staticmethod(unsupported)

    def decode(self, request: Request, resp: HttpResponse) -> Completion:  # noqa: ARG002
        """The completion in a ``response`` object."""
        return decode_response(resp.body)

    def decoder(self, request: Request, headers: Mapping[str, str]) -> EventDecoder:  # noqa: ARG002
        """The Responses event decoder."""
        return StreamDecoder(headers)
