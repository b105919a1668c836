"""The Google Gemini adapter (Generative Language API, ``v1beta``): transport + codec + profile.

Speaks ``models/{model}:generateContent`` for whole answers and ``models/{model}:streamGenerateContent?alt=sse`` for
streams; the wire format is :mod:`llm_manager.codecs.gemini_generate`. The key travels in the ``x-goog-api-key``
header, never in the URL, so it cannot leak into access logs.
"""

from __future__ import annotations

from collections.abc import AsyncGenerator
from contextlib import aclosing
from typing import TYPE_CHECKING

from llm_manager import _json
from llm_manager.codecs.gemini_generate.count import decode_count, encode_count_request
from llm_manager.codecs.gemini_generate.errors import decode_error, text_of
from llm_manager.codecs.gemini_generate.request import encode_request, model_path, unsupported
from llm_manager.codecs.gemini_generate.response import decode_response
from llm_manager.codecs.gemini_generate.stream import StreamDecoder
from llm_manager.errors import ModelUnavailableError
from llm_manager.providers._stream import sse_chunks
from llm_manager.providers.base import Chunk, Completion, ProviderAdapter

if TYPE_CHECKING:
    from llm_manager.codecs.params import Dropped
    from llm_manager.types import Request

__all__ = ["GeminiAdapter"]


class GeminiAdapter(ProviderAdapter):
    """Adapter for the Gemini API; one instance per configured deployment."""

    kind = "gemini"

    async def complete(self, request: Request, *, api_key: str | None) -> Completion:
        """Call ``generateContent`` once.

        Args:
            request: The canonical request.
            api_key: Sent as ``x-goog-api-key``; ``None`` sends none (e.g. a proxy adds it).

        Returns:
            The whole answer.

        Raises:
            ProviderError: The mapped subclass for an error status, a blocked prompt or a malformed answer.
        """
        body = _json.dumps(encode_request(request, self.endpoint))
        resp = await self.http.post(self._url("generateContent"), headers=self._headers(api_key), body=body)
        if not 200 <= resp.status < 300:
            raise decode_error(resp.status, resp.headers, resp.body)
        try:
            payload = _json.loads(resp.body)
        except _json.JSONDecodeError as exc:
            raise ModelUnavailableError("malformed response", status_code=resp.status, body=text_of(resp.body)) from exc
        return decode_response(payload, body=text_of(resp.body))

    async def stream(self, request: Request, *, api_key: str | None) -> AsyncGenerator[Chunk, None]:
        """Call ``streamGenerateContent?alt=sse`` once and yield text pieces, then one finishing chunk.

        Args:
            request: The canonical request.
            api_key: Sent as ``x-goog-api-key``; ``None`` sends none.

        Yields:
            Text chunks as they arrive; the last chunk carries the finish reason and usage.

        Raises:
            ProviderError: The mapped subclass for an error status (before anything is yielded) or an ``error``
                payload in the stream.
            ContentFilterError: The prompt or the whole answer was blocked.
            StreamInterruptedError: The stream broke, carried malformed JSON or ended without a ``finishReason``.
        """
        body = _json.dumps(encode_request(request, self.endpoint))
        url = self._url("streamGenerateContent") + "?alt=sse"
        async with self.http.stream(url, headers=self._headers(api_key), body=body) as resp:
            if not 200 <= resp.status < 300:
                raise decode_error(resp.status, resp.headers, await resp.read())
            async with aclosing(sse_chunks(resp, StreamDecoder())) as chunks:
                async for chunk in chunks:
                    yield chunk

    async def count_tokens(self, request: Request, *, api_key: str | None) -> int | None:
        """``models/{model}:countTokens`` with the prompt as :meth:`complete` would send it (system instruction and
        tools included)."""
        body = _json.dumps(encode_count_request(request, self.endpoint))
        resp = await self.http.post(self._url("countTokens"), headers=self._headers(api_key), body=body)
        if not 200 <= resp.status < 300:
            raise decode_error(resp.status, resp.headers, resp.body)
        return decode_count(resp.status, resp.body)

    def unsupported(self, request: Request) -> Dropped | None:
        """What the codec leaves out of ``request`` for this deployment, and why."""
        dropped = unsupported(request, self.endpoint)
        return dropped if dropped.reasons else None

    async def probe(self, *, api_key: str | None) -> None:
        """``GET models/{model}``: checks reachability, the key and the model name without spending tokens.

        Raises:
            ProviderError: The mapped subclass when the answer is not 2xx.
        """
        url = f"{self._base()}/{model_path(self.endpoint.model)}"
        resp = await self.http.request("GET", url, headers=self._headers(api_key, with_body=False))
        if not 200 <= resp.status < 300:
            raise decode_error(resp.status, resp.headers, resp.body)

    def _base(self) -> str:
        return self.endpoint.base_url.rstrip("/")

    def _url(self, method: str) -> str:
        return f"{self._base()}/{model_path(self.endpoint.model)}:{method}"

    def _headers(self, api_key: str | None, *, with_body: bool = True) -> dict[str, str]:
        headers = {"content-type": "application/json"} if with_body else {}
        headers.update(self.endpoint.headers)
        if api_key is not None:
            headers["x-goog-api-key"] = api_key
        return headers
