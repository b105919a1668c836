"""The gateway's ASGI app: OpenAI-compatible routes over one :class:`LLMManager`.

The app does not own the manager: whoever built it (``llm-manager serve``, a test, an embedding app) closes it.

Authentication: while the store holds at least one active gateway key (``llm-manager keys create``), every
``/v1/*`` route requires one, as ``Authorization: Bearer <secret>`` or ``x-api-key: <secret>``. With no keys at
all the gateway is open, for local development. ``/health``, ``/health/ready`` and ``/metrics`` are always open.
See :mod:`llm_manager.server.keys`.
"""

from __future__ import annotations

import logging
import math
import os
import time
from collections.abc import AsyncIterator
from typing import TYPE_CHECKING

from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.requests import Request as HttpRequest
from starlette.responses import Response as HttpResponse
from starlette.responses import StreamingResponse
from starlette.routing import Route

from llm_manager import _json
from llm_manager.errors import LLMManagerError
from llm_manager.manager import ResponseStream
from llm_manager.server import keys
from llm_manager.server.errors import ErrorReply, gateway_error, render_error
from llm_manager.server.openai_api import (
    BadBody,
    ChunkWriter,
    UnknownModel,
    completion_body,
    models_body,
    parse_chat,
    response_headers,
)
from llm_manager.types import Request, StreamEvent

if TYPE_CHECKING:
    from llm_manager.manager import LLMManager

__all__ = ["DEFAULT_MAX_BODY_BYTES", "create_app"]

log = logging.getLogger("llm_manager.server")
DEFAULT_MAX_BODY_BYTES = 4 * 1024 * 1024
_JSON = "application/json"
_DONE = b"data: [DONE]\n\n"


class _Gateway:
    """Route handlers sharing the manager and the limits."""

    def __init__(self, llm: LLMManager, max_body_bytes: int) -> None:
        self.llm = llm
        self.max_body_bytes = max_body_bytes
        self.created = int(time.time())

    # -- chat completions ---------------------------------------------------------------------------------------

    async def chat(self, http: HttpRequest) -> HttpResponse:
        rid = _new_id()
        try:
            key = await self._authenticate(http)  # before the body is read: nothing is done for a stranger
            body = await self._body(http)
            chat = parse_chat(body, http.headers, self.llm.settings)
            if key is not None:
                await self._admit(key, body, chat.prefs)
            request = self.llm.request(messages=chat.messages, **chat.prefs)
            if chat.stream:
                return await self._stream(request, rid, chat.include_usage)
            resp = await self.llm.generate(request, request_id=rid)
        except _Reject as rej:
            return _error(rej.reply, rid)
        except BadBody as exc:
            return _error(gateway_error(400, exc.message, param=exc.param), rid)
        except UnknownModel as exc:
            msg = f"The model `{exc.model}` does not exist. GET /v1/models lists the ones this gateway serves."
            return _error(gateway_error(404, msg, code="model_not_found", param="model"), rid)
        except LLMManagerError as exc:
            return _error(render_error(exc, rid), rid)
        except Exception:  # a bug of ours: answer in OpenAI's shape rather than with a bare 500 page
            log.exception("gateway: unexpected error on request %s", rid)
            return _error(gateway_error(500, "internal gateway error", type_="api_error", code="internal_error"), rid)
        return HttpResponse(completion_body(resp), media_type=_JSON, headers=response_headers(resp))

    async def _authenticate(self, http: HttpRequest) -> keys.KeyInfo | None:
        """The caller's key; ``None`` when the gateway has no keys (open). Raises :class:`_Reject` (401)."""
        try:
            db = await self.llm.database()
            if not await keys.any_active(db):
                return None
            secret = _presented_secret(http)
            key = await keys.verify(db, secret) if secret else None
        except Exception as exc:  # keys exist or not: if we cannot tell, refuse rather than open the gateway
            log.warning("gateway: cannot check keys: %s: %s", type(exc).__name__, exc)
            msg = "the gateway cannot verify API keys right now"
            raise _Reject(gateway_error(503, msg, type_="api_error", code="key_store_unavailable")) from None
        if key is None:
            what = "Incorrect API key provided." if secret else "Missing API key."
            msg = f"{what} Send a gateway key as `Authorization: Bearer <key>` or `x-api-key: <key>`."
            raise _Reject(gateway_error(401, msg, code="invalid_api_key"))
        return key

    async def _admit(self, key: keys.KeyInfo, body: object, prefs: dict[str, object]) -> None:
        """The key's model list and request rate; tags the request with the key's id. Raises :class:`_Reject`."""
        sent = body.get("model") if isinstance(body, dict) else None
        if key.models is not None:
            if not key.allows(sent if isinstance(sent, str) else None, _str_or_none(prefs.get("model"))):
                msg = f"This API key may not use the model `{sent}`."
                raise _Reject(gateway_error(403, msg, code="model_not_allowed", param="model"))
            prefs["fallback"] = False  # a fallback could answer with a model the key may not use
        if key.rpm is not None:
            wait = await self.llm.state.limit_acquire(
                f"gatewaykey:{key.id}", time.time(), rpm=key.rpm, tpm=None, tokens=0
            )
            if wait > 0:
                headers = {"retry-after": str(math.ceil(wait)), "retry-after-ms": str(math.ceil(wait * 1000))}
                msg = f"Rate limit reached for this API key ({key.rpm} requests per minute)."
                raise _Reject(
                    gateway_error(429, msg, type_="rate_limit_error", code="rate_limit_exceeded", headers=headers)
                )
        prefs["gateway_key"] = key.id

    async def _body(self, http: HttpRequest) -> object:
        ctype = http.headers.get("content-type", "").split(";", 1)[0].strip().lower()
        if ctype != _JSON:
            raise _Reject(gateway_error(415, f"Content-Type must be {_JSON}, got {ctype or 'none'!r}"))
        too_big = gateway_error(413, f"request body is over the {self.max_body_bytes}-byte limit", code="too_large")
        declared = http.headers.get("content-length")
        if declared is not None and declared.isdigit() and int(declared) > self.max_body_bytes:
            raise _Reject(too_big)  # refuse before reading a byte of it
        parts: list[bytes] = []
        size = 0
        async for part in http.stream():  # a chunked body has no length to check up front
            size += len(part)
            if size > self.max_body_bytes:
                raise _Reject(too_big)
            parts.append(part)
        try:
            return _json.loads(b"".join(parts))
        except _json.JSONDecodeError as exc:
            raise _Reject(gateway_error(400, f"the request body is not valid JSON: {exc}")) from None

    async def _stream(self, request: Request, rid: str, include_usage: bool) -> HttpResponse:
        # The manager's private entry point takes the request id, so chunks and x-request-id carry the id the
        # ledger and logs use; the public stream() makes its own id and exposes it only at the end.
        stream = self.llm.stream(request, request_id=rid)
        try:
            first = await anext(stream)  # a failure before the first chunk is still a plain JSON error
        except StopAsyncIteration:
            raise LLMManagerError("the stream ended without an answer", request_id=rid) from None
        except BaseException:
            await stream.aclose()
            raise
        writer = ChunkWriter(rid, first.model)
        headers = {"x-request-id": rid, "x-llm-model": first.deployment, "cache-control": "no-cache"}
        return StreamingResponse(
            _sse(stream, first, writer, rid, include_usage), media_type="text/event-stream", headers=headers
        )

    # -- the rest -----------------------------------------------------------------------------------------------

    async def models(self, http: HttpRequest) -> HttpResponse:
        try:
            await self._authenticate(http)
        except _Reject as rej:
            return _error(rej.reply, _new_id())
        return HttpResponse(models_body(self.llm.settings, self.created), media_type=_JSON)

    async def health(self, _: HttpRequest) -> HttpResponse:
        return HttpResponse(b'{"status":"ok"}', media_type=_JSON)

    async def ready(self, _: HttpRequest) -> HttpResponse:
        # Settings are validated when the manager is built, so only the store can be missing.
        if self.llm.settings.store.url or os.environ.get("LLM_MANAGER_STORE_URL"):
            try:
                await self.llm.database()
            except Exception as exc:  # any driver error means "not ready", never a crash of the probe
                body = {"status": "unavailable", "reason": f"store: {type(exc).__name__}: {exc}"}
                return HttpResponse(_json.dumps(body), status_code=503, media_type=_JSON)
        return HttpResponse(b'{"status":"ready"}', media_type=_JSON)

    async def metrics(self, _: HttpRequest) -> HttpResponse:
        payload, ctype = await self.llm.metrics()
        return HttpResponse(payload, headers={"content-type": ctype})


class _Reject(Exception):
    """The gateway refuses the HTTP request itself (content type, size, JSON)."""

    def __init__(self, reply: ErrorReply) -> None:
        super().__init__(reply.body["error"]["message"])
        self.reply = reply


async def _sse(
    stream: ResponseStream, first: StreamEvent, writer: ChunkWriter, rid: str, include_usage: bool
) -> AsyncIterator[bytes]:
    """The event stream. A failure once it has started is sent as an ``error`` event and no ``[DONE]``: a broken
    answer must never look complete to the client."""
    yield writer.role()
    event = first
    try:
        while True:
            if event.type == "done":
                resp = event.response
                yield writer.finish((resp.finish_reason if resp else None) or "stop")
                if include_usage and resp is not None:
                    yield writer.usage(resp)
                yield _DONE
                return
            if event.delta:
                yield writer.delta(event.delta)
            event = await anext(stream)
    except StopAsyncIteration:
        exc: LLMManagerError = LLMManagerError("the stream ended without its final event", request_id=rid)
        yield b"data: " + _json.dumps(render_error(exc, rid).body) + b"\n\n"
    except LLMManagerError as err:
        yield b"data: " + _json.dumps(render_error(err, rid).body) + b"\n\n"
    except Exception:
        log.exception("gateway: unexpected error in stream %s", rid)
        body = gateway_error(500, "internal gateway error", type_="api_error", code="internal_error").body
        yield b"data: " + _json.dumps(body) + b"\n\n"
    finally:
        await stream.aclose()  # also when the client went away: releases the upstream and settles accounting


def _presented_secret(http: HttpRequest) -> str | None:
    auth = http.headers.get("authorization", "")
    scheme, _, token = auth.partition(" ")
    if scheme.lower() == "bearer" and token.strip():
        return token.strip()
    return http.headers.get("x-api-key", "").strip() or None


def _str_or_none(value: object) -> str | None:
    return value if isinstance(value, str) else None


def _error(reply: ErrorReply, rid: str) -> HttpResponse:
    headers = {"x-request-id": rid, **reply.headers}
    return HttpResponse(_json.dumps(reply.body), status_code=reply.status, media_type=_JSON, headers=headers)


async def _http_error(_: HttpRequest, exc: Exception) -> HttpResponse:
    """Starlette's own 404 / 405 in OpenAI's shape, so SDK clients parse them like any other error."""
    status = exc.status_code if isinstance(exc, HTTPException) else 500
    detail = exc.detail if isinstance(exc, HTTPException) else "internal gateway error"
    return _error(gateway_error(status, str(detail), code="not_found" if status == 404 else None), _new_id())


def _new_id() -> str:
    return "req_" + os.urandom(12).hex()


def create_app(llm: LLMManager, *, max_body_bytes: int = DEFAULT_MAX_BODY_BYTES) -> Starlette:
    """The OpenAI-compatible gateway over ``llm`` (``/v1/chat/completions``, ``/v1/models``, health, metrics).

    Args:
        llm: the manager answering requests; the caller keeps ownership and closes it.
        max_body_bytes: larger request bodies are refused with 413.
    """
    gw = _Gateway(llm, max_body_bytes)
    from llm_manager.server.admin import Admin

    admin = Admin(gw)
    routes = [
        Route("/v1/chat/completions", gw.chat, methods=["POST"]),
        Route("/v1/models", gw.models, methods=["GET"]),
        Route("/health", gw.health, methods=["GET"]),
        Route("/health/ready", gw.ready, methods=["GET"]),
        Route("/metrics", gw.metrics, methods=["GET"]),
        Route("/admin/status", admin.status, methods=["GET"]),
        Route("/admin/costs", admin.costs, methods=["GET"]),
        Route("/admin/requests", admin.requests, methods=["GET"]),
    ]
    return Starlette(routes=routes, exception_handlers={HTTPException: _http_error})
