"""The Anthropic Messages adapter (``POST /v1/messages``), whole and streamed: transport + codec + profile.

The wire format is :mod:`llm_manager.codecs.anthropic_messages`; this module sends one call and hands the bytes to it.
"""

from __future__ import annotations

from collections.abc import AsyncGenerator
from contextlib import aclosing
from typing import TYPE_CHECKING

from llm_manager import _json
from llm_manager.codecs.anthropic_messages.count import decode_count, encode_count_request
from llm_manager.codecs.anthropic_messages.errors import decode_error
from llm_manager.codecs.anthropic_messages.request import encode_request, forced_tool, unsupported
from llm_manager.codecs.anthropic_messages.response import decode_response
from llm_manager.codecs.anthropic_messages.stream import StreamDecoder
from llm_manager.errors import ProviderError
from llm_manager.providers._stream import sse_chunks
from llm_manager.providers.base import Chunk, Completion, Endpoint, ProviderAdapter

if TYPE_CHECKING:
    from llm_manager.codecs.params import Dropped
    from llm_manager.types import Request

__all__ = ["API_VERSION", "AnthropicAdapter", "build_headers"]

API_VERSION = "2023-06-01"
"""The ``anthropic-version`` sent unless the endpoint's headers name another."""


def build_headers(endpoint: Endpoint, api_key: str | None) -> dict[str, str]:
    """Headers for every call: JSON, the API version (overridable by the endpoint), the endpoint's own, the key."""
    overridden = {k.lower() for k in endpoint.headers}
    defaults = {"content-type": "application/json", "anthropic-version": API_VERSION}
    headers = {k: v for k, v in defaults.items() if k not in overridden}
    headers.update(endpoint.headers)
    if api_key is not None:
        headers["x-api-key"] = api_key
    return headers


class AnthropicAdapter(ProviderAdapter):
    """Speaks the Anthropic Messages API for one endpoint."""

    kind = "anthropic"

    @property
    def _base(self) -> str:
        return self.endpoint.base_url.rstrip("/")

    async def complete(self, request: Request, *, api_key: str | None) -> Completion:
        """Send ``request`` once; return the whole answer or raise a mapped error."""
        try:
            resp = await self.http.post(
                f"{self._base}/v1/messages",
                headers=build_headers(self.endpoint, api_key),
                body=_json.dumps(encode_request(request, self.endpoint, stream=False)),
            )
            if not 200 <= resp.status < 300:
                raise decode_error(resp.status, resp.headers, resp.body)
            return decode_response(resp.status, resp.headers, resp.body, forced_tool(request))
        except ProviderError as exc:
            self._tag(exc)
            raise

    async def stream(self, request: Request, *, api_key: str | None) -> AsyncGenerator[Chunk, None]:
        """Send ``request`` once and yield text chunks, then one chunk with finish reason and usage."""
        try:
            async with self.http.stream(
                f"{self._base}/v1/messages",
                headers=build_headers(self.endpoint, api_key),
                body=_json.dumps(encode_request(request, self.endpoint, stream=True)),
            ) as resp:
                if not 200 <= resp.status < 300:
                    raise decode_error(resp.status, resp.headers, await resp.read())
                decoder = StreamDecoder(headers=resp.headers, forced_tool=forced_tool(request))
                async with aclosing(sse_chunks(resp, decoder)) as chunks:
                    async for chunk in chunks:
                        yield chunk
        except ProviderError as exc:
            self._tag(exc)
            raise

    async def count_tokens(self, request: Request, *, api_key: str | None) -> int | None:
        """``POST /v1/messages/count_tokens`` with the prompt as :meth:`complete` would send it."""
        try:
            resp = await self.http.post(
                f"{self._base}/v1/messages/count_tokens",
                headers=build_headers(self.endpoint, api_key),
                body=_json.dumps(encode_count_request(request, self.endpoint)),
            )
            if not 200 <= resp.status < 300:
                raise decode_error(resp.status, resp.headers, resp.body)
            return decode_count(resp.status, resp.body)
        except ProviderError as exc:
            self._tag(exc)
            raise

    def unsupported(self, request: Request) -> Dropped | None:
        """What the codec leaves out of ``request`` for this deployment, and why."""
        dropped = unsupported(request, self.endpoint)
        return dropped if dropped.reasons else None

    async def probe(self, *, api_key: str | None) -> None:
        """List models: checks reachability and the key without spending tokens."""
        try:
            resp = await self.http.request(
                "GET", f"{self._base}/v1/models", headers=build_headers(self.endpoint, api_key)
            )
            if not 200 <= resp.status < 300:
                raise decode_error(resp.status, resp.headers, resp.body)
        except ProviderError as exc:
            self._tag(exc)
            raise

    def _tag(self, err: ProviderError) -> ProviderError:
        # Say where the error came from, without overwriting what a lower layer already knew.
        err.provider = err.provider or self.kind
        err.deployment = err.deployment or self.endpoint.name
        err.model = err.model or self.endpoint.model
        return err
