"""The OpenAI Chat Completions adapter (``POST {base_url}/chat/completions``): transport + codec + profile.

One adapter serves OpenAI and every server that copies its API (Groq, OpenRouter, LM Studio, Ollama, vLLM,
llama.cpp, the Portkey gateway). What differs between them arrives as data in the
:class:`~llm_manager.providers.base.Endpoint` (base URL, static headers, extra body fields, the typed profile);
nothing here branches on a vendor's name. The wire format itself is :mod:`llm_manager.codecs.openai_chat`.
"""

from __future__ import annotations

from collections.abc import AsyncGenerator, Mapping
from contextlib import aclosing
from typing import TYPE_CHECKING, ClassVar

from llm_manager import _json
from llm_manager.codecs.openai_chat.errors import decode_error
from llm_manager.codecs.openai_chat.request import encode_request, unsupported
from llm_manager.codecs.openai_chat.response import decode_response
from llm_manager.codecs.openai_chat.stream import StreamDecoder, completion_as_chunk
from llm_manager.errors import ConfigError, ProviderError
from llm_manager.providers._stream import EventDecoder, sse_chunks
from llm_manager.providers.base import Chunk, Completion, ProviderAdapter

if TYPE_CHECKING:
    from llm_manager.codecs.params import Dropped
    from llm_manager.providers.base import Endpoint
    from llm_manager.types import Request

__all__ = ["OpenAIChatAdapter", "build_headers"]


class OpenAIChatAdapter(ProviderAdapter):
    """Adapter for the OpenAI Chat Completions API and every OpenAI-compatible server."""

    kind = "openai"
    # The wire format, as data: the Responses adapter is this transport with another path and codec.
    path: ClassVar[str] = "chat/completions"
    encode = staticmethod(encode_request)
    decode = staticmethod(decode_response)
    whole_as_chunk = staticmethod(completion_as_chunk)
    left_out = staticmethod(unsupported)

    async def complete(self, request: Request, *, api_key: str | None) -> Completion:
        """Send ``request`` once and return the whole answer.

        Args:
            request: The canonical request.
            api_key: Sent as a bearer token; ``None`` sends no ``authorization`` header (local servers).

        Returns:
            The answer with its usage.

        Raises:
            ProviderError: The mapped error for a failed call or an unusable answer.
        """
        body = _json.dumps(self.encode(request, self.endpoint, stream=False))
        try:
            resp = await self.http.post(self._url(self.path), headers=self._headers(api_key), body=body)
            if not 200 <= resp.status < 300:
                raise decode_error(resp.status, resp.headers, resp.body)
            return self.decode(resp.body)
        except ProviderError as exc:
            self._tag(exc)
            raise

    async def stream(self, request: Request, *, api_key: str | None) -> AsyncGenerator[Chunk, None]:
        """Send ``request`` once with ``stream: true`` and yield chunks as they arrive.

        Errors answered before the first byte of the body (any non-2xx) are raised before anything is yielded.

        Args:
            request: The canonical request.
            api_key: Sent as a bearer token; ``None`` sends no ``authorization`` header.

        Yields:
            Text chunks; the last carries the finish reason, and usage when the server reports it.

        Raises:
            StreamInterruptedError: The stream broke, was malformed, or ended before completion.
            ProviderError: The mapped error for an error status or an error event inside the stream.
        """
        body = _json.dumps(self.encode(request, self.endpoint, stream=True))
        try:
            async with self.http.stream(self._url(self.path), headers=self._headers(api_key), body=body) as resp:
                if not 200 <= resp.status < 300:
                    raise decode_error(resp.status, resp.headers, await resp.read())
                if resp.headers.get("content-type", "").startswith("application/json"):
                    # Some compatible servers ignore ``stream: true`` and answer with one whole completion.
                    yield self.whole_as_chunk(self.decode(await resp.read()))
                    return
                async with aclosing(sse_chunks(resp, self.decoder(resp.headers))) as chunks:
                    async for chunk in chunks:
                        yield chunk
        except ProviderError as exc:
            self._tag(exc)
            raise

    def unsupported(self, request: Request) -> Dropped | None:
        """What the codec leaves out of ``request`` for this deployment, and why."""
        dropped = self.left_out(request, self.endpoint)
        return dropped if dropped.reasons else None

    async def probe(self, *, api_key: str | None) -> None:
        """List the models (``GET {base_url}/models``): checks reachability and the key without spending tokens.

        Args:
            api_key: The key to check; ``None`` for servers without auth.

        Raises:
            ProviderError: The mapped error when the server is unreachable or refuses.
        """
        headers = {k: v for k, v in self._headers(api_key).items() if k != "content-type"}
        try:
            resp = await self.http.request("GET", self._url("models"), headers=headers)
            if not 200 <= resp.status < 300:
                raise decode_error(resp.status, resp.headers, resp.body)
        except ProviderError as exc:
            self._tag(exc)
            raise

    def decoder(self, headers: Mapping[str, str]) -> EventDecoder:
        """The stream decoder of this wire format."""
        return StreamDecoder(headers)

    def _url(self, path: str) -> str:
        base = self.endpoint.base_url.rstrip("/")
        if not base:
            raise ConfigError(f"deployment {self.endpoint.name!r} has no base_url", deployment=self.endpoint.name)
        return f"{base}/{path}"

    def _headers(self, api_key: str | None) -> dict[str, str]:
        return build_headers(self.endpoint, api_key)

    def _tag(self, exc: ProviderError) -> None:
        # Errors are built by pure functions that know nothing of the deployment; name it once, here. (A try /
        # except at each call, not a generator-based context manager: that costs more on every call.)
        exc.provider = exc.provider or self.endpoint.provider
        exc.model = exc.model or self.endpoint.model
        exc.deployment = exc.deployment or self.endpoint.name


def build_headers(endpoint: Endpoint, api_key: str | None) -> dict[str, str]:
    """The headers of one call: JSON content type, bearer auth when a key is given, then the endpoint's own.

    Endpoint headers are applied last (names lower-cased) so a gateway preset can replace the auth scheme.
    """
    headers = {"content-type": "application/json"}
    if api_key is not None:
        headers["authorization"] = f"Bearer {api_key}"
    headers.update({k.lower(): v for k, v in endpoint.headers.items()})
    return headers
