"""The sole importer of the HTTP client library (aiohttp; see docs/libraries.md).

Exposes one small seam: :meth:`HttpClient.post` for a whole body and :meth:`HttpClient.stream` for an incremental
one. Transport failures are translated here, once, into our errors; callers never see aiohttp's exceptions.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Mapping
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, NoReturn

from llm_manager.errors import LLMManagerError, ModelUnavailableError, ProviderTimeoutError, StreamInterruptedError

if TYPE_CHECKING:
    import aiohttp

__all__ = ["HttpClient", "HttpResponse", "Preconnected", "StreamingResponse"]

_MAX_URLS = 1024
"""URLs whose proxy is remembered as such (Gemini puts the model in the path, so there are a few per host)."""


@dataclass(slots=True)
class HttpResponse:
    """A fully read response."""

    status: int
    headers: Mapping[str, str]
    body: bytes


@dataclass(slots=True)
class Preconnected:
    """What opening (or finding) a pooled connection took; times in milliseconds."""

    reused: bool
    """A connection to this origin was already open in the pool: nothing new was opened."""
    dns_ms: float | None
    """Name resolution (``None``: an IP address, a cached answer, or a reused connection)."""
    connect_ms: float | None
    """TCP and TLS handshakes, after resolution (``None`` for a reused connection)."""
    total_ms: float


class StreamingResponse:
    """A response whose body is read incrementally, with :meth:`next_bytes`."""

    __slots__ = ("_resp", "headers", "status")

    def __init__(self, resp: aiohttp.ClientResponse) -> None:
        self._resp = resp
        self.status = resp.status
        self.headers: Mapping[str, str] = resp.headers

    async def read(self) -> bytes:
        """The whole remaining body (for error responses)."""
        async with _mapped(mid_stream=False):
            return await self._resp.read()

    async def next_bytes(self) -> bytes:
        """The body's next bytes as they arrive, one HTTP chunk (or what has come of it) at a time; ``b""`` at the
        end of the body.

        Not ``readany()``: that joins everything buffered, and a fast upstream's whole stream is often buffered at
        once, as one buffer piece per HTTP chunk; joining them all took ~30 us before the first event could be
        decoded. One chunk at a time, the first event moves at once. A method called per piece rather than an async
        generator: one layer less for every chunk of every stream to pass through.
        """
        content = self._resp.content
        try:
            while True:
                chunk, boundary = await content.readchunk()
                if chunk or not boundary:  # an empty piece at a chunk boundary is not the end
                    return chunk
        except Exception as exc:
            import aiohttp

            if isinstance(exc, aiohttp.ClientPayloadError | aiohttp.ClientConnectionError | ConnectionError):
                raise StreamInterruptedError(f"stream broke: {_describe(exc)}") from exc
            raise


class HttpClient:
    """One pooled aiohttp session, created lazily inside the running loop.

    The pool does not cap connections (``max_connections=0``): a request waiting inside the pool would wait outside
    the admission queue, its priorities and its ``queue_timeout_s``. Concurrency is capped per deployment by
    ``max_concurrent``, in :mod:`llm_manager.routing.admission`.
    """

    def __init__(self, *, connect_timeout_s: float = 10.0, max_connections: int = 0) -> None:
        import os

        self._connect_timeout_s = connect_timeout_s
        self._max_connections = max_connections
        self._session: aiohttp.ClientSession | None = None
        # The test suite sets this so that no test can ever reach a real provider by accident.
        self._loopback_only = os.environ.get("LLM_MANAGER_LOOPBACK_ONLY") == "1"
        self._proxy_by_host: dict[tuple[str, str], str | None] = {}
        self._proxy_by_url: dict[str, str | None] = {}

    def _proxy(self, url: str) -> str | None:
        """The proxy for ``url`` from HTTP(S)_PROXY / NO_PROXY, resolved once per scheme and host.

        aiohttp's ``trust_env`` does this lookup (plus a netrc read) in a worker thread on every request, which
        costs about half a millisecond per call; provider hosts are few, so a per-host cache is exact enough.
        """
        if url in self._proxy_by_url:
            return self._proxy_by_url[url]  # a deployment's URL is the same on every call: no parsing per request
        from urllib.parse import urlsplit

        parts = urlsplit(url)
        key = (parts.scheme, parts.netloc)
        if key not in self._proxy_by_host:
            import urllib.request

            proxies = urllib.request.getproxies()
            host = parts.hostname or ""
            bypass = urllib.request.proxy_bypass(host) if proxies else True
            self._proxy_by_host[key] = None if bypass else proxies.get(parts.scheme)
        proxy = self._proxy_by_host[key]
        if len(self._proxy_by_url) < _MAX_URLS:
            self._proxy_by_url[url] = proxy
        return proxy

    def _check(self, url: str) -> None:
        if self._loopback_only:
            from urllib.parse import urlsplit

            host = urlsplit(url).hostname or ""
            if host not in ("127.0.0.1", "::1", "localhost"):
                raise ModelUnavailableError(f"refused {host}: LLM_MANAGER_LOOPBACK_ONLY=1 allows loopback only")

    def _get_session(self) -> aiohttp.ClientSession:
        session = self._session
        if session is None or session.closed:
            import aiohttp

            session = aiohttp.ClientSession(
                connector=aiohttp.TCPConnector(limit=self._max_connections, limit_per_host=0, ttl_dns_cache=300),
                timeout=aiohttp.ClientTimeout(total=None, sock_connect=self._connect_timeout_s),
                auto_decompress=True,
                trust_env=False,  # proxies are resolved once per host by _proxy(), not per request
            )
            self._session = session
        return session

    async def request(
        self, method: str, url: str, *, headers: Mapping[str, str], body: bytes | None = None
    ) -> HttpResponse:
        """Send a request and read the whole response. Deadlines are the caller's (``asyncio.timeout``)."""
        self._check(url)
        session = self._get_session()
        try:  # not `async with _mapped()`: a generator-based context manager per call costs more than this
            async with session.request(method, url, data=body, headers=headers, proxy=self._proxy(url)) as resp:
                data = await resp.read()
                return HttpResponse(resp.status, resp.headers, data)
        except Exception as exc:
            _reraise(exc, mid_stream=False)

    async def post(self, url: str, *, headers: Mapping[str, str], body: bytes) -> HttpResponse:
        """POST ``body`` and read the whole response."""
        return await self.request("POST", url, headers=headers, body=body)

    def stream(self, url: str, *, headers: Mapping[str, str], body: bytes) -> _Streaming:
        """``async with client.stream(...) as resp``: POST, and get the response before its body is read; the
        connection is released on exit."""
        return _Streaming(self, url, headers, body)

    async def preconnect(self, url: str) -> Preconnected:
        """Open a connection to ``url``'s origin (DNS, TCP, TLS) and leave it in the pool for the next request,
        without sending anything; a connection already pooled is reported as ``reused``. Idle pooled
        connections are closed after aiohttp's keep-alive timeout (15 s); DNS answers are cached for 5 min."""
        import time

        import aiohttp
        from aiohttp.tracing import Trace
        from yarl import URL

        self._check(url)
        session = self._get_session()
        marks: dict[str, float] = {}
        config = aiohttp.TraceConfig()
        for signal in (
            "dns_resolvehost_start",
            "dns_resolvehost_end",
            "connection_create_start",
            "connection_reuseconn",
        ):
            getattr(config, f"on_{signal}").append(_marker(marks, signal))
        config.freeze()
        proxy = self._proxy(url)
        # The same connection key as session.request() computes (proxy, ssl), so the pooled connection is the one
        # the next request to this origin takes.
        request = aiohttp.ClientRequest(
            "GET",
            URL(url),
            loop=asyncio.get_running_loop(),
            proxy=URL(proxy) if proxy else None,
            ssl=True,
            session=session,
        )
        t0 = time.perf_counter()
        try:
            connection = await session.connector.connect(  # type: ignore[union-attr]
                request, traces=[Trace(session, config, config.trace_config_ctx())], timeout=session.timeout
            )
        except Exception as exc:
            _reraise(exc, mid_stream=False)
        done = time.perf_counter()
        connection.release()
        dns = _span(marks, "dns_resolvehost_start", "dns_resolvehost_end")
        created = marks.get("connection_create_start")
        connect = None if created is None else (done - max(created, marks.get("dns_resolvehost_end", created))) * 1000
        return Preconnected(
            reused="connection_reuseconn" in marks,
            dns_ms=None if dns is None else round(dns, 3),
            connect_ms=None if connect is None else round(connect, 3),
            total_ms=round((done - t0) * 1000, 3),
        )

    async def aclose(self) -> None:
        """Close the pool."""
        if self._session is not None and not self._session.closed:
            await self._session.close()
        self._session = None


class _Streaming:
    """The context manager :meth:`HttpClient.stream` returns. A class, not ``@asynccontextmanager``: it is on every
    stream's way to its first chunk, and a generator-based context manager costs more per use."""

    __slots__ = ("_body", "_client", "_headers", "_resp", "_url")

    def __init__(self, client: HttpClient, url: str, headers: Mapping[str, str], body: bytes) -> None:
        self._client = client
        self._url = url
        self._headers = headers
        self._body = body
        self._resp: aiohttp.ClientResponse | None = None

    async def __aenter__(self) -> StreamingResponse:
        client, url = self._client, self._url
        client._check(url)
        session = client._get_session()
        try:
            resp = await session.post(url, data=self._body, headers=self._headers, proxy=client._proxy(url))
        except Exception as exc:
            _reraise(exc, mid_stream=False)
        self._resp = resp
        return StreamingResponse(resp)

    async def __aexit__(self, *exc: object) -> None:
        if self._resp is not None:
            # Closing (not releasing) an unfinished body drops the connection instead of draining a long stream.
            self._resp.close()


def _marker(marks: dict[str, float], name: str) -> Any:
    """A trace callback that notes when ``name`` happened."""
    import time

    async def mark(*_: object) -> None:
        marks[name] = time.perf_counter()

    return mark


def _span(marks: dict[str, float], start: str, end: str) -> float | None:
    if start in marks and end in marks:
        return (marks[end] - marks[start]) * 1000
    return None


def _describe(exc: BaseException) -> str:
    return f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__


def _translate(exc: Exception, *, mid_stream: bool) -> LLMManagerError | None:
    """Our error for a transport failure; ``None`` for anything else (which propagates as it is)."""
    import aiohttp

    if isinstance(exc, aiohttp.ServerTimeoutError):
        return ProviderTimeoutError(f"transport timeout: {_describe(exc)}")
    if isinstance(exc, aiohttp.ClientConnectorError | ConnectionRefusedError):
        return ModelUnavailableError(f"cannot connect: {_describe(exc)}")
    if isinstance(exc, aiohttp.ClientError | ConnectionError | asyncio.IncompleteReadError):
        cls = StreamInterruptedError if mid_stream else ModelUnavailableError
        return cls(f"connection failed: {_describe(exc)}")
    return None


@asynccontextmanager
async def _mapped(*, mid_stream: bool) -> AsyncIterator[None]:
    try:
        yield
    except Exception as exc:
        _reraise(exc, mid_stream=mid_stream)


def _reraise(exc: Exception, *, mid_stream: bool) -> NoReturn:
    """Raise our error for ``exc`` (a transport failure), or ``exc`` itself when it is not one."""
    mapped = _translate(exc, mid_stream=mid_stream)
    if mapped is None:
        raise exc
    raise mapped from exc
