"""The shared half of every HTTP adapter: URL, headers, sending, the status check, streams and error tagging.

An adapter subclass states only its wire format: paths, how the key travels and the protocol's fixed headers as
class data, and its codec (:meth:`~HttpAdapter.encode`, :meth:`~HttpAdapter.decode`, :meth:`~HttpAdapter.decoder`,
:meth:`~HttpAdapter.decode_error`, :meth:`~HttpAdapter.left_out`, and the token count's pair) as hooks. Here, once:
a non-2xx answer becomes the codec's mapped error before anything is read or yielded, and every
:class:`~llm_manager.errors.ProviderError` leaving an adapter names its provider, model and deployment.
"""

from __future__ import annotations

from abc import abstractmethod
from collections.abc import AsyncGenerator, Mapping
from typing import TYPE_CHECKING, Any, ClassVar

from llm_manager import _json
from llm_manager._http import HttpResponse
from llm_manager._sse import SSEDecoder
from llm_manager.codecs.base import completion_as_chunk
from llm_manager.errors import ConfigError, ProviderError, StreamInterruptedError
from llm_manager.providers.base import Chunk, Completion, ProviderAdapter

if TYPE_CHECKING:
    from llm_manager.codecs.base import Target
    from llm_manager.codecs.params import Dropped
    from llm_manager.providers._stream import EventDecoder
    from llm_manager.types import Request

__all__ = ["HttpAdapter"]


class HttpAdapter(ProviderAdapter):
    """Base of the adapters that speak a JSON-over-HTTP protocol (with SSE streams)."""

    # -- the wire format, as data ----------------------------------------------------------------------------------
    path: ClassVar[str]
    """Where a whole answer is asked for, relative to :meth:`url`'s root."""
    stream_path: ClassVar[str]
    """Where a stream is asked for (the same as :attr:`path` where the body says ``stream: true``)."""
    probe_path: ClassVar[str]
    """A ``GET`` that checks reachability and the key without spending tokens."""
    count_path: ClassVar[str | None] = None
    """Where the prompt's tokens are counted; ``None`` when the API cannot count."""
    auth_header: ClassVar[str] = "authorization"
    auth_prefix: ClassVar[str] = "Bearer "
    """The key is sent as ``{auth_header}: {auth_prefix}{key}``."""
    protocol_headers: ClassVar[Mapping[str, str]] = {}
    """Fixed headers of the protocol (lower-case names), such as Anthropic's ``anthropic-version``."""
    may_answer_whole: ClassVar[bool] = False
    """Servers of the protocol may ignore ``stream: true`` and answer one whole JSON body: that answer, decoded
    with :meth:`decode`, is then streamed as one chunk."""

    # -- the wire format, as hooks (codec functions) ---------------------------------------------------------------
    @staticmethod
    @abstractmethod
    def encode(request: Request, target: Target, *, stream: bool) -> dict[str, Any]:
        """The JSON body asking for ``request``."""

    @abstractmethod
    def decode(self, request: Request, resp: HttpResponse) -> Completion:
        """The whole answer in a 2xx response; raises the codec's mapped error for an unusable one."""

    @abstractmethod
    def decoder(self, request: Request, headers: Mapping[str, str]) -> EventDecoder:
        """A fresh decoder for the events of one stream."""

    @staticmethod
    @abstractmethod
    def decode_error(status: int, headers: Mapping[str, str], body: bytes) -> ProviderError:
        """The mapped error of a non-2xx answer."""

    @staticmethod
    @abstractmethod
    def left_out(request: Request, target: Target) -> Dropped:
        """What :meth:`encode` leaves out of ``request`` for ``target``, and why."""

    @staticmethod
    def encode_count(request: Request, target: Target) -> dict[str, Any]:
        """The body of a token count (only where :attr:`count_path` is set)."""
        raise NotImplementedError

    @staticmethod
    def decode_count(status: int, body: bytes) -> int:
        """The count in a 2xx token-count answer (only where :attr:`count_path` is set)."""
        raise NotImplementedError

    # -- the transport ---------------------------------------------------------------------------------------------
    async def complete(self, request: Request, *, api_key: str | None) -> Completion:
        """Send ``request`` once and return the whole answer, or raise the mapped, tagged error."""
        # The post and status check are inline (not :meth:`post`): one coroutine less on every call.
        try:
            body = _json.dumps(self.encode(request, self.endpoint, stream=False))
            resp = await self.http.post(self.url(self.path), headers=self.headers(api_key), body=body)
            if not 200 <= resp.status < 300:
                raise self.decode_error(resp.status, resp.headers, resp.body)
            return self.decode(request, resp)
        except ProviderError as exc:
            self.tag(exc)
            raise

    async def stream(self, request: Request, *, api_key: str | None) -> AsyncGenerator[Chunk, None]:
        """Send ``request`` once as a stream and yield chunks as they arrive; an error status is raised before
        anything is yielded."""
        try:
            body = _json.dumps(self.encode(request, self.endpoint, stream=True))
            async with self.http.stream(self.url(self.stream_path), headers=self.headers(api_key), body=body) as resp:
                if not 200 <= resp.status < 300:
                    raise self.decode_error(resp.status, resp.headers, await resp.read())
                if self.may_answer_whole and resp.headers.get("content-type", "").startswith("application/json"):
                    whole = HttpResponse(resp.status, resp.headers, await resp.read())
                    yield completion_as_chunk(self.decode(request, whole))
                    return
                # The SSE loop runs here, not in a generator of its own: one layer less for every chunk to cross.
                decoder = self.decoder(request, resp.headers)
                sse = SSEDecoder()
                read = resp.next_bytes
                while True:
                    try:
                        piece = await read()
                    except StreamInterruptedError:
                        if decoder.finished:
                            return  # dropped after the answer was whole: only usage or the end marker were lost
                        raise
                    if not piece:
                        break
                    for event in sse.events(piece):
                        chunk = decoder.decode(event)
                        if chunk is not None:
                            yield chunk
                        if decoder.done:
                            return
                decoder.close()
        except ProviderError as exc:
            self.tag(exc)
            raise

    async def count_tokens(self, request: Request, *, api_key: str | None) -> int | None:
        """The prompt's input tokens as the provider counts them (the body :meth:`complete` would send, without
        the answer's settings); ``None`` where the API has no count."""
        if self.count_path is None:
            return None
        try:
            body = _json.dumps(self.encode_count(request, self.endpoint))
            resp = await self.post(self.count_path, body, api_key)
            return self.decode_count(resp.status, resp.body)
        except ProviderError as exc:
            self.tag(exc)
            raise

    async def probe(self, *, api_key: str | None) -> None:
        """``GET`` :attr:`probe_path`: checks reachability and the key without spending tokens."""
        try:
            headers = self.headers(api_key, with_body=False)
            resp = await self.http.request("GET", self.url(self.probe_path), headers=headers)
            if not 200 <= resp.status < 300:
                raise self.decode_error(resp.status, resp.headers, resp.body)
        except ProviderError as exc:
            self.tag(exc)
            raise

    def unsupported(self, request: Request) -> Dropped | None:
        """What the codec leaves out of ``request`` for this deployment, and why."""
        dropped = self.left_out(request, self.endpoint)
        return dropped if dropped.reasons else None

    async def post(self, path: str, body: bytes, api_key: str | None) -> HttpResponse:
        """POST ``body`` (JSON) to ``path`` and return the 2xx answer, or raise its mapped error (untagged: the
        caller's ``except`` tags it)."""
        resp = await self.http.post(self.url(path), headers=self.headers(api_key), body=body)
        if not 200 <= resp.status < 300:
            raise self.decode_error(resp.status, resp.headers, resp.body)
        return resp

    def url(self, path: str) -> str:
        """The URL of ``path`` on this deployment."""
        return f"{self.root()}/{path}"

    def root(self) -> str:
        """The deployment's base URL, without a trailing slash."""
        base = self.endpoint.base_url.rstrip("/")
        if not base:
            raise ConfigError(f"deployment {self.endpoint.name!r} has no base_url", deployment=self.endpoint.name)
        return base

    def headers(self, api_key: str | None, *, with_body: bool = True) -> dict[str, str]:
        """The headers of one call: JSON content type (with a body), the protocol's own, the key, then the
        endpoint's (names lower-cased, applied last: config has the last word, so a gateway preset can replace the
        auth scheme or the protocol's version)."""
        headers = (
            {"content-type": "application/json", **self.protocol_headers} if with_body else {**self.protocol_headers}
        )
        if api_key is not None:
            headers[self.auth_header] = self.auth_prefix + api_key
        for name, value in self.endpoint.headers.items():
            headers[name.lower()] = value
        return headers

    def tag(self, exc: ProviderError) -> None:
        """Name this deployment on ``exc``, keeping what a lower layer already knew."""
        # Errors are built by pure functions that know nothing of the deployment; name it once, here. (A try /
        # except at each call, not a generator-based context manager: that costs more on every call.)
        exc.provider = exc.provider or self.endpoint.provider
        exc.model = exc.model or self.endpoint.model
        exc.deployment = exc.deployment or self.endpoint.name
