"""The Google Gemini adapter (Generative Language API, ``v1beta``): its wire format, as data.

Speaks ``models/{model}:generateContent`` for whole answers and ``models/{model}:streamGenerateContent?alt=sse`` for
streams; the format is :mod:`llm_manager.codecs.gemini_generate`, the transport
:class:`~llm_manager.providers.http_adapter.HttpAdapter`. The key travels in the ``x-goog-api-key`` header, never in
the URL, so it cannot leak into access logs.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from llm_manager import _json
from llm_manager.codecs.base import text_of
from llm_manager.codecs.gemini_generate import count
from llm_manager.codecs.gemini_generate.errors import decode_error
from llm_manager.codecs.gemini_generate.request import encode_request, model_path, unsupported
from llm_manager.codecs.gemini_generate.response import decode_response
from llm_manager.codecs.gemini_generate.stream import StreamDecoder
from llm_manager.errors import ModelUnavailableError
from llm_manager.providers.http_adapter import HttpAdapter

if TYPE_CHECKING:
    from llm_manager._http import HttpResponse
    from llm_manager.codecs.base import Target
    from llm_manager.providers._stream import EventDecoder
    from llm_manager.providers.base import Completion
    from llm_manager.types import Request

__all__ = ["GeminiAdapter"]


class GeminiAdapter(HttpAdapter):
    """Adapter for the Gemini API; one instance per configured deployment. Paths are methods of the model's URL
    (``…/models/{model}:generateContent``); the probe is ``GET models/{model}`` itself."""

    kind = "gemini"
    path = ":generateContent"
    stream_path = ":streamGenerateContent?alt=sse"
    probe_path = ""
    count_path = ":countTokens"
    auth_header, auth_prefix = "x-goog-api-key", ""
    decode_error = staticmethod(decode_error)
    left_out = staticmethod(unsupported)
    encode_count = staticmethod(count.encode_count_request)
    decode_count = staticmethod(count.decode_count)

    @staticmethod
    def encode(request: Request, target: Target, *, stream: bool) -> dict[str, Any]:  # noqa: ARG004
        """The ``generateContent`` body (the same for a stream: the URL asks for one)."""
        return encode_request(request, target)

    def decode(self, request: Request, resp: HttpResponse) -> Completion:  # noqa: ARG002
        """The completion in a ``GenerateContentResponse``."""
        try:
            payload = _json.loads(resp.body)
        except _json.JSONDecodeError as exc:
            raise ModelUnavailableError("malformed response", status_code=resp.status, body=text_of(resp.body)) from exc
        return decode_response(payload, body=text_of(resp.body))

    def decoder(self, request: Request, headers: Mapping[str, str]) -> EventDecoder:  # noqa: ARG002
        """The ``GenerateContentResponse`` event decoder."""
        return StreamDecoder()

    def url(self, path: str) -> str:
        """``{base_url}/models/{model}{path}``: the model is part of every URL."""
        return f"{self.root()}/{model_path(self.endpoint.model)}{path}"
