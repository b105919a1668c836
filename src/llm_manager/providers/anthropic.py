"""The Anthropic Messages adapter (``POST /v1/messages``, ``/v1/messages/count_tokens``, ``GET /v1/models``): its
wire format, as data. The format itself is :mod:`llm_manager.codecs.anthropic_messages`; the transport is
:class:`~llm_manager.providers.http_adapter.HttpAdapter`.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING

from llm_manager.codecs.anthropic_messages import count
from llm_manager.codecs.anthropic_messages.errors import decode_error
from llm_manager.codecs.anthropic_messages.request import encode_request, forced_tool, unsupported
from llm_manager.codecs.anthropic_messages.response import decode_response
from llm_manager.codecs.anthropic_messages.stream import StreamDecoder
from llm_manager.providers.http_adapter import HttpAdapter

if TYPE_CHECKING:
    from llm_manager._http import HttpResponse
    from llm_manager.providers._stream import EventDecoder
    from llm_manager.providers.base import Completion
    from llm_manager.types import Request

__all__ = ["API_VERSION", "AnthropicAdapter"]

API_VERSION = "2023-06-01"
"""The ``anthropic-version`` sent unless the endpoint's headers name another."""


class AnthropicAdapter(HttpAdapter):
    """Speaks the Anthropic Messages API for one endpoint (key in ``x-api-key``)."""

    kind = "anthropic"
    path = stream_path = "v1/messages"
    probe_path = "v1/models"
    count_path = "v1/messages/count_tokens"
    auth_header, auth_prefix = "x-api-key", ""
    protocol_headers = {"anthropic-version": API_VERSION}
    encode = staticmethod(encode_request)
    decode_error = staticmethod(decode_error)
    left_out = staticmethod(unsupported)
    encode_count = staticmethod(count.encode_count_request)
    decode_count = staticmethod(count.decode_count)

    def decode(self, request: Request, resp: HttpResponse) -> Completion:
        """The completion in a ``message`` body (a forced tool's input is the answer's text)."""
        return decode_response(resp.status, resp.headers, resp.body, forced_tool(request))

    def decoder(self, request: Request, headers: Mapping[str, str]) -> EventDecoder:
        """The Messages event decoder."""
        return StreamDecoder(headers=headers, forced_tool=forced_tool(request))
