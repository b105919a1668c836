"""The gateway's ASGI app: OpenAI-compatible and Anthropic Messages routes over one :class:`LLMManager`.

``/v1/chat/completions`` and ``/v1/messages`` share everything but the wire format: authentication, key
admission, body limits, routing, error mapping and the streaming loop are one code path each.

The app does not own the manager: whoever built it (``llm-manager serve``, a test, an embedding app) closes it.

Authentication: while the store holds at least one active gateway key (``llm-manager keys create``), every
``/v1/*`` route requires one, as ``Authorization: Bearer <secret>`` or ``x-api-key: <secret>``. With no keys at
all the gateway is open, for local development. ``/health``, ``/health/ready``, ``/metrics`` and ``/openapi.json`` are
always open, and so is the dashboard page ``/ui`` (its data comes from the admin routes, see
:mod:`llm_manager.server.ui`).

Deadlines and shutdown: see :mod:`llm_manager.server.lifecycle`.
See :mod:`llm_manager.server.keys`.
"""

from __future__ import annotations

import asyncio
import logging
import math
import os
import random
import time
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from functools import partial
from typing import TYPE_CHECKING, Any, Protocol, TypeVar

from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.requests import Request as HttpRequest
from starlette.responses import Response as HttpResponse
from starlette.routing import Route

from llm_manager import _json
from llm_manager._redact import redact
from llm_manager.config import BudgetConfig
from llm_manager.errors import LLMManagerError
from llm_manager.response_stream import ResponseStream, Settle
from llm_manager.server import choices, cors, keys
from llm_manager.server.asgi import (
    ASGIApp,
    BodyError,
    Dispatch,
    Endpoint,
    Incoming,
    Receive,
    Scope,
    Send,
    read_body,
    send_stream_start,
    send_whole,
    watch_disconnect,
)
from llm_manager.server.dropped import dropped_headers
from llm_manager.server.errors import ErrorReply, gateway_error, render_error
from llm_manager.server.formats import ANTHROPIC, OPENAI, Events, Format
from llm_manager.server.hosts import host_allowed, host_refused
from llm_manager.server.lifecycle import TIMEOUT_HEADER, BadTimeout, Cut, Guard, Lifecycle, request_timeout
from llm_manager.server.openai_api import BadBody, UnknownModel, cache_headers, models_body, prompt_headers
from llm_manager.server.openapi import endpoint as openapi_document
from llm_manager.tokens import estimate_tokens
from llm_manager.types import Request, Response, StreamEvent

if TYPE_CHECKING:
    from llm_manager.config import Settings
    from llm_manager.manager import LLMManager

__all__ = ["DEFAULT_MAX_BODY_BYTES", "create_app"]

log = logging.getLogger("llm_manager.server")
DEFAULT_MAX_BODY_BYTES = 4 * 1024 * 1024
_JSON = "application/json"


class _Parsed(Protocol):
    """What every wire format's parser yields (``parse_chat``, ``parse_messages``)."""

    @property
    def prefs(self) -> dict[str, Any]: ...


_P = TypeVar("_P", bound=_Parsed)


class _Gateway:
    """Route handlers sharing the manager and the limits."""

    def __init__(self, llm: LLMManager, max_body_bytes: int) -> None:
        self.llm = llm
        self.max_body_bytes = max_body_bytes
        self.created = int(time.time())
        self.limits = llm.settings.gateway
        self.life = Lifecycle()
        self._budgeted: dict[str, keys.KeyInfo] = {}
        """Keys whose own budget is registered with the manager, as they were then."""

    # -- the two wire formats ----------------------------------------------------------------------------------

    async def chat(self, scope: Scope, receive: Receive, send: Send) -> None:
        """``POST /v1/chat/completions`` (plain ASGI, see :mod:`llm_manager.server.asgi`)."""
        await self._answer(scope, receive, send, OPENAI)

    async def messages(self, scope: Scope, receive: Receive, send: Send) -> None:
        """``POST /v1/messages``, Anthropic's Messages API."""
        await self._answer(scope, receive, send, ANTHROPIC)

    async def _answer(self, scope: Scope, receive: Receive, send: Send, fmt: Format) -> None:
        """One request in either wire format: accepted, answered whole or streamed, or refused in its error shape."""
        rid = _new_id()
        http = Incoming(scope, receive)
        hold: _TokenHold | None = None
        opened: _Opened | None = None
        answers: list[tuple[Response, Settle]] | None = None
        try:
            parsed, hold = await self._accept(http, fmt.parse)
            if (asks := choices.several(parsed)) is not None:
                answers = await choices.answer_all(self, asks, rid, hold)
            else:
                request = self.request(parsed.messages, parsed.prefs)
                if parsed.stream:
                    opened = await self._open(request, rid, hold)
                else:
                    resp, settle = await self.answer_one(request, rid)
        except BaseException as exc:
            await self.refuse(send, exc, rid, hold, fmt)
            return
        if answers is not None:
            await choices.send_all(send, fmt, answers, hold)
            return
        if opened is not None:
            events = fmt.events(rid, opened.first, parsed, request)
            await self._pump(send, receive, opened, events, rid, request, fmt.stream_headers(rid))
            return
        await self.send_answer(send, fmt.headers(resp), fmt.body(resp), settle, hold, resp)

    def request(self, messages: list[Any], prefs: dict[str, Any]) -> Request:
        return self.llm.request(messages=messages, **prefs)

    async def answer_one(self, request: Request, rid: str) -> tuple[Response, Settle]:
        """A whole answer under the request's deadline and the shutdown cut."""
        return await self.life.run(self.llm.answer(request, request_id=rid), self._deadline(request))

    # -- shared plumbing ----------------------------------------------------------------------------------------

    async def refuse(
        self, send: Send, exc: BaseException, rid: str, hold: _TokenHold | None, fmt: Format | None = None
    ) -> None:
        """A request that failed before its answer: what it held on its key settled, the error sent in ``fmt``'s
        shape (OpenAI's by default). A cancellation is re-raised, not answered."""
        fmt = fmt or OPENAI
        if hold is not None:
            await hold.settle(None)  # once: a stream that failed to open has settled it already
        if not isinstance(exc, Exception):
            raise exc
        reply = _reply(exc, rid)
        await send_whole(send, reply.status, fmt.error_headers(reply, rid), fmt.error_body(reply, rid))

    @staticmethod
    async def send_answer(
        send: Send,
        headers: Mapping[str, str],
        body: bytes,
        settle: Callable[[], Awaitable[None]],
        hold: _TokenHold | None,
        resp: Response,
    ) -> None:
        """Send a whole answer; then its bookkeeping, off the client's clock (it has its answer)."""
        try:
            await send_whole(send, 200, headers, body)
        finally:
            try:
                await settle()
            finally:
                if hold is not None:
                    await hold.settle(resp)

    async def _accept(
        self, http: Incoming, parse: Callable[[Any, Mapping[str, str], Settings], _P]
    ) -> tuple[_P, _TokenHold | None]:
        """Authenticate, read and parse the body, admit the key (and what it holds on the key's token rate).
        Raises what :func:`_reply` maps."""
        headers = http.headers
        key = await self._authenticate(headers)  # before the body is read: nothing is done for a stranger
        body, size = await self._body(http)
        parsed = parse(body, headers, self.llm.settings)
        try:
            timeout = request_timeout(headers, self.limits.request_timeout_s, self.limits.max_request_timeout_s)
        except BadTimeout as exc:
            raise _Reject(gateway_error(400, str(exc), param=TIMEOUT_HEADER)) from None
        if timeout is not None:
            parsed.prefs["timeout_s"] = timeout
        hold = await self._admit(key, body, size, parsed.prefs) if key is not None else None
        return parsed, hold

    async def _authenticate(self, headers: Mapping[str, str]) -> keys.KeyInfo | None:
        """The caller's key; ``None`` when the gateway has no keys (open). Raises :class:`_Reject` (401)."""
        secret = keys.presented_secret(headers)
        try:
            db = await self.llm.database()
            active = await keys.any_active(db)
            key = await keys.verify(db, secret) if active and secret else None
        except Exception as exc:  # keys exist or not: if we cannot tell, refuse rather than open the gateway
            log.warning("gateway: cannot check keys: %s: %s", type(exc).__name__, exc)
            msg = "the gateway cannot verify API keys right now"
            raise _Reject(gateway_error(503, msg, type_="api_error", code="key_store_unavailable")) from None
        if not active:
            if not host_allowed(headers.get("host"), self.limits.allowed_hosts):
                raise _Reject(host_refused(headers.get("host", ""), self.limits.allowed_hosts))
            return None
        if key is None:
            what = "Incorrect API key provided." if secret else "Missing API key."
            msg = f"{what} Send a gateway key as `Authorization: Bearer <key>` or `x-api-key: <key>`."
            raise _Reject(gateway_error(401, msg, code="invalid_api_key"))
        return key

    async def _admit(self, key: keys.KeyInfo, body: object, size: int, prefs: dict[str, object]) -> _TokenHold | None:
        """The key's model list, request and token rates and budget; tags the request with the key's id. Returns
        the tokens held on the key's TPM (to settle once the usage is known). Raises :class:`_Reject`."""
        sent = body.get("model") if isinstance(body, dict) else None
        if key.models is not None:
            if not key.allows(sent if isinstance(sent, str) else None, _str_or_none(prefs.get("model"))):
                msg = f"This API key may not use the model `{sent}`."
                raise _Reject(gateway_error(403, msg, code="model_not_allowed", param="model"))
            prefs["fallback"] = False  # a fallback could answer with a model the key may not use
        hold = None
        if key.rpm is not None or key.tpm is not None:
            # The prompt is held now, estimated from the body's size (its JSON framing errs on the high side); the
            # answer's tokens are charged when it is done.
            held = estimate_tokens(size) if key.tpm is not None else 0
            name = f"gatewaykey:{key.id}"
            wait = await self.llm.state.limit_acquire(name, time.time(), rpm=key.rpm, tpm=key.tpm, tokens=held)
            if wait > 0:
                headers = {"retry-after": str(math.ceil(wait)), "retry-after-ms": str(math.ceil(wait * 1000))}
                limits = [f"{key.rpm} requests" if key.rpm else "", f"{key.tpm} tokens" if key.tpm else ""]
                msg = f"Rate limit reached for this API key ({' and '.join(filter(None, limits))} per minute)."
                raise _Reject(
                    gateway_error(429, msg, type_="rate_limit_error", code="rate_limit_exceeded", headers=headers)
                )
            hold = _TokenHold(self.llm, name, key.tpm, held) if key.tpm is not None else None
        await self.register_budget(key)
        prefs["gateway_key"] = key.id
        return hold

    async def register_budget(self, key: keys.KeyInfo) -> None:
        """The key's own budget joins the configured ones (scope key, matching this key only); registered again
        only when the key's settings change, not on every request."""
        if key.budget_usd is None or key.revoked or self._budgeted.get(key.id) == key:
            return
        self._budgeted[key.id] = key
        budget = BudgetConfig(
            name=f"key:{key.id}",
            scope="key",
            match=key.id,
            period=key.budget_period,
            limit_usd=key.budget_usd,
            soft_limit_pct=None,
        )
        await self.llm.accounting.add_budget(budget)

    async def _body(self, http: Incoming) -> tuple[object, int]:
        """The decoded JSON body and its size in bytes."""
        headers = http.headers
        ctype = headers.get("content-type", "").split(";", 1)[0].strip().lower()
        if ctype != _JSON:
            raise _Reject(gateway_error(415, f"Content-Type must be {_JSON}, got {ctype or 'none'!r}"))
        declared = headers.get("content-length")
        if declared is not None and declared.isdigit() and int(declared) > self.max_body_bytes:
            raise _Reject(self._too_big())  # refuse before reading a byte of it
        try:
            raw = await read_body(
                http.receive, self.max_body_bytes, self.limits.body_timeout_s, timed_by_server=http.body_timed
            )
        except BodyError as exc:
            if exc.kind == "too_large":  # a chunked body has no length to check up front
                raise _Reject(self._too_big()) from None
            if exc.kind == "slow":
                msg = f"the request body did not arrive within {self.limits.body_timeout_s:g}s"
                reply = gateway_error(408, msg, code="request_timeout", headers={"connection": "close"})
                raise _Reject(reply) from None
            raise _Reject(gateway_error(400, "the client closed the connection before sending its body")) from None
        try:
            return _json.loads(raw), len(raw)
        except _json.JSONDecodeError as exc:
            raise _Reject(gateway_error(400, f"the request body is not valid JSON: {exc}")) from None

    def _too_big(self) -> ErrorReply:
        return gateway_error(413, f"request body is over the {self.max_body_bytes}-byte limit", code="too_large")

    async def _open(self, request: Request, rid: str, hold: _TokenHold | None) -> _Opened:
        """Start the stream and wait for its first event: a failure before it is still a plain JSON error."""
        # The request id goes in, so chunks and x-request-id carry the id the ledger and logs use.
        stream = self.llm.stream(request, request_id=rid)
        # A deadline the client (or the gateway's config) set covers the whole stream, not only its first chunk.
        deadline = asyncio.get_running_loop().time() + request.timeout_s if request.timeout_s else None
        try:
            first = await self.life.run(anext(stream), self._deadline(request))
        except StopAsyncIteration:
            if hold is not None:
                await hold.settle(None)
            raise LLMManagerError("the stream ended without an answer", request_id=rid) from None
        except BaseException:
            await stream.aclose()
            if hold is not None:
                await hold.settle(None)
            raise
        return _Opened(stream, first, deadline, hold)

    async def _pump(
        self,
        send: Send,
        receive: Receive,
        opened: _Opened,
        events: Events,
        rid: str,
        request: Request,
        headers: Mapping[str, str],
    ) -> None:
        """Send the event stream. A failure once it has started — the deadline or a shutdown cutting it included —
        is sent as the wire format's error event and the stream ends without its end marker: a broken answer must
        never look complete to the client."""
        stream = opened.stream
        guard = self.life.guard(opened.deadline)
        watcher = asyncio.ensure_future(watch_disconnect(receive, partial(guard.cut, _GONE)))
        # The answering attempt is recorded when it ends: so far, the candidates that failed before it, plus it (a
        # cached answer, replayed, made no attempt at all).
        tried = 0 if stream.cached else 1 + sum(1 for a in stream.attempts if not a.skipped)
        head = {
            "x-request-id": rid,
            "x-llm-model": opened.first.deployment,
            **cache_headers(stream.cached, stream.cache_similarity),
            "x-llm-attempts": str(tried),
            **prompt_headers(stream.prompt),
            # Known before the first byte: the answering deployment is, and what it cannot take depends on it only.
            **dropped_headers(self._dropped(request, opened.first.deployment)),
        }
        try:
            await send_stream_start(send, {**head, "cache-control": "no-cache", **headers})
            last = await self._events(send, stream, guard, opened.first, events, rid)
            if last is not None:
                await send({"type": "http.response.body", "body": last, "more_body": False})
        finally:
            watcher.cancel()
            guard.close()
            try:
                if stream.response is not None:
                    # Finished: let the generators under it run to their end. Closing them at their last `yield`
                    # instead leaves each nested one to the loop's async-generator finaliser: a task and a loop
                    # wake-up apiece, on the loop while the client's next request comes in.
                    await anext(stream, None)
            finally:
                await stream.aclose()  # also when the client went away: releases the upstream, settles accounting
                if opened.hold is not None:
                    await opened.hold.settle(stream.response)

    @staticmethod
    async def _events(
        send: Send, stream: ResponseStream, guard: Guard, event: StreamEvent, events: Events, rid: str
    ) -> bytes | None:
        """Send events until the last one, and return it (``None`` when the client has gone): the caller sends it
        with the end of the response, in one write."""
        pending = events.opening()
        try:
            while True:
                if event.type == "done":
                    return pending + events.closing(event.response)
                if event.reasoning or event.reasoning_signature:
                    pending += events.reasoning(event.reasoning, event.reasoning_signature)
                if event.delta:
                    pending += events.delta(event.delta, event.logprobs)
                elif event.tool_call is not None:
                    pending += events.tool_call(event.tool_call)
                if pending:
                    await send({"type": "http.response.body", "body": pending, "more_body": True})
                    pending = b""
                event = await guard.wait(anext(stream))
        except StopAsyncIteration:
            exc: LLMManagerError = LLMManagerError("the stream ended without its final event", request_id=rid)
            return pending + events.failure(render_error(exc, rid))
        except Cut as cut:
            if cut.reason == _GONE:
                return None
            return pending + events.failure(cut.reply())
        except Exception as err:
            return pending + events.failure(_reply(err, rid))

    def _dropped(self, request: Request, deployment: str) -> list[str]:
        """What ``deployment`` cannot honour of ``request``: its answer's ``metadata.dropped_params``, which a stream's
        headers need before the answer is done (a cached answer replayed names the deployment that gave it)."""
        if deployment not in self.llm.deployments:
            return []
        dropped = self.llm.adapter(deployment).unsupported(request)
        return dropped.names if dropped is not None else []

    def _deadline(self, request: Request) -> float:
        return request.timeout_s or self.llm.settings.routing.deadline_s

    # -- the rest -----------------------------------------------------------------------------------------------

    async def models(self, http: HttpRequest) -> HttpResponse:
        try:
            key = await self._authenticate(http.headers)
        except _Reject as rej:
            return _error(rej.reply, _new_id())
        allows = key.allows if key is not None and key.models is not None else None
        return HttpResponse(models_body(self.llm.settings, self.created, allows), media_type=_JSON)

    async def health(self, _: HttpRequest) -> HttpResponse:
        return HttpResponse(b'{"status":"ok"}', media_type=_JSON)

    async def ready(self, _: HttpRequest) -> HttpResponse:
        if self.life.draining:  # shutting down: load balancers must stop sending before the listener closes
            return HttpResponse(b'{"status":"draining"}', status_code=503, media_type=_JSON)
        # Settings are validated when the manager is built, so only the store and the shared state can be missing.
        if self.llm.settings.store.url or os.environ.get("LLM_MANAGER_STORE_URL"):
            try:
                await self.llm.database()
                if self.llm.settings.ledger.durability == "strict":
                    await self.llm._open_ledger()  # replays what a killed process left in the spool, before traffic
            except Exception as exc:  # any driver error means "not ready", never a crash of the probe
                body = {"status": "unavailable", "reason": redact(f"store: {type(exc).__name__}: {exc}")}
                return HttpResponse(_json.dumps(body), status_code=503, media_type=_JSON)
        state = await self.llm.state.check()
        if not state.available:
            if state.policy == "fail_closed":  # every request would get 503: let the load balancer drain us
                body = {"status": "unavailable", "reason": "state: Redis does not answer (on_unavailable: fail_closed)"}
                return HttpResponse(_json.dumps(body), status_code=503, media_type=_JSON)
            return HttpResponse(b'{"status":"ready","state":"degraded"}', media_type=_JSON)
        return HttpResponse(b'{"status":"ready"}', media_type=_JSON)

    async def metrics(self, _: HttpRequest) -> HttpResponse:
        payload, ctype = await self.llm.metrics()  # never raises: a scrape must work when things are broken
        return HttpResponse(payload, headers={"content-type": ctype})


class _Reject(Exception):
    """The gateway refuses the HTTP request itself (content type, size, JSON)."""

    def __init__(self, reply: ErrorReply) -> None:
        super().__init__(reply.body["error"]["message"])
        self.reply = reply


_GONE = "disconnect"
"""The reason a stream's guard is cut with when its client goes away."""


@dataclass(slots=True)
class _Opened:
    """A stream whose first event has arrived."""

    stream: ResponseStream
    first: StreamEvent
    deadline: float | None
    hold: _TokenHold | None


class _TokenHold:
    """Tokens held on a gateway key's TPM when the request was admitted, settled to what it really used."""

    __slots__ = ("_held", "_llm", "_name", "_settled", "_tpm")

    def __init__(self, llm: LLMManager, name: str, tpm: int, held: int) -> None:
        self._llm, self._name, self._tpm, self._held = llm, name, tpm, held
        self._settled = False

    async def settle(self, resp: Response | None) -> None:
        """Once: a second call (a failure path settling what another already has) changes nothing."""
        await self.settle_used(resp.usage.total_tokens if resp is not None and not resp.metadata.cached else 0)

    async def settle_used(self, used: int) -> None:
        """:meth:`settle` to ``used`` tokens (several choices settle their sum)."""
        if self._settled:
            return
        self._settled = True
        if used != self._held:
            await self._llm.state.limit_adjust(self._name, time.time(), tpm=self._tpm, delta_tokens=used - self._held)


def _reply(exc: Exception, rid: str) -> ErrorReply:
    """The error reply for anything a handler raised, in OpenAI's shape (other wire formats re-shape it)."""
    if isinstance(exc, _Reject):
        return exc.reply
    if isinstance(exc, Cut):
        return exc.reply()
    if isinstance(exc, BadBody):
        return gateway_error(400, exc.message, param=exc.param)
    if isinstance(exc, UnknownModel):
        msg = f"The model `{exc.model}` does not exist. GET /v1/models lists the ones this gateway serves."
        return gateway_error(404, msg, code="model_not_found", param="model")
    if isinstance(exc, LLMManagerError):
        return render_error(exc, rid)
    # A bug of ours: answered in the wire's error shape rather than with a bare 500 page.
    log.error("gateway: unexpected error on request %s", rid, exc_info=exc)
    return gateway_error(500, "internal gateway error", type_="api_error", code="internal_error")


def _str_or_none(value: object) -> str | None:
    return value if isinstance(value, str) else None


def _error(reply: ErrorReply, rid: str) -> HttpResponse:
    """An OpenAI-shaped error from a Starlette route (the answering routes send theirs through ``Format``)."""
    headers = OPENAI.error_headers(reply, rid)
    return HttpResponse(OPENAI.error_body(reply, rid), status_code=reply.status, media_type=_JSON, headers=headers)


async def _http_error(http: HttpRequest, exc: Exception) -> HttpResponse:
    """Starlette's own 404 / 405 (and a bug's 500) in the shape of the surface asked (Anthropic's under
    ``/v1/messages``, OpenAI's elsewhere), so SDK clients parse them like any other error."""
    if not isinstance(exc, HTTPException):  # Starlette logs it and re-raises it to the server after this reply
        reply = gateway_error(500, "internal gateway error", type_="api_error", code="internal_error")
    else:
        status = exc.status_code
        reply = gateway_error(status, str(exc.detail), code="not_found" if status == 404 else None)
    rid = _new_id()
    path: str = http.scope.get("path", "")
    root: str = http.scope.get("root_path", "")
    if (path[len(root) :] if root and path.startswith(root) else path).startswith("/v1/messages"):
        body, headers = ANTHROPIC.error_body(reply, rid), ANTHROPIC.error_headers(reply, rid)
        return HttpResponse(body, status_code=reply.status, media_type=_JSON, headers=headers)
    return _error(reply, rid)


def _new_id() -> str:
    # 96 random bits from the process's generator: unique enough for an id, and no system call per request.
    return f"req_{random.getrandbits(96):024x}"


def create_app(llm: LLMManager, *, max_body_bytes: int = DEFAULT_MAX_BODY_BYTES) -> Dispatch:
    """The gateway over ``llm`` (``/v1/chat/completions``, ``/v1/messages``, ``/v1/models``, health, metrics).

    Args:
        llm: the manager answering requests; the caller keeps ownership and closes it.
        max_body_bytes: larger request bodies are refused with 413.
    """
    gw = _Gateway(llm, max_body_bytes)
    from llm_manager.server import completions_api, count_tokens_api, embeddings_api, models_api, responses_api, ui
    from llm_manager.server.admin import Admin

    admin = Admin(gw)
    routes = [
        Route("/v1/chat/completions", Endpoint(gw.chat), methods=["POST"]),
        Route("/v1/messages", Endpoint(gw.messages), methods=["POST"]),
        Route("/v1/messages/count_tokens", Endpoint(count_tokens_api.CountTokensRoute(gw)), methods=["POST"]),
        Route("/v1/embeddings", Endpoint(embeddings := embeddings_api.EmbeddingsRoute(gw)), methods=["POST"]),
        Route("/v1/responses", Endpoint(responses := responses_api.ResponsesRoute(gw)), methods=["POST"]),
        Route("/v1/responses/{response_id}", responses.get, methods=["GET"]),
        Route("/v1/responses/{response_id}", responses.delete, methods=["DELETE"]),
        Route("/v1/responses/{response_id}/input_items", responses.input_items, methods=["GET"]),
        Route("/v1/completions", Endpoint(completions := completions_api.CompletionsRoute(gw)), methods=["POST"]),
        Route("/v1/models", gw.models, methods=["GET"]),
        Route("/v1/models/{model_id:path}", models_api.ModelRoute(gw).get, methods=["GET"]),
        Route("/health", gw.health, methods=["GET"]),
        Route("/health/ready", gw.ready, methods=["GET"]),
        Route("/metrics", gw.metrics, methods=["GET"]),
        Route("/admin/status", admin.status, methods=["GET"]),
        Route("/admin/costs", admin.costs, methods=["GET"]),
        Route("/admin/requests", admin.requests, methods=["GET"]),
        Route("/admin/timeseries", admin.timeseries, methods=["GET"]),
        *ui.routes(),
        Route("/openapi.json", openapi_document, methods=["GET"]),
    ]
    # Starlette's own 404 / 405, and any bug of ours on any route, answered in OpenAI's shape (JSON, not text).
    app = Starlette(routes=routes, exception_handlers={HTTPException: _http_error, Exception: _http_error})
    app.state.lifecycle = gw.life  # `llm-manager serve` drains it on SIGTERM / SIGINT
    hot: dict[str, ASGIApp] = {
        "/v1/chat/completions": gw.chat,
        "/v1/messages": gw.messages,
        "/v1/embeddings": embeddings,
        "/v1/responses": responses,
        "/v1/completions": completions,
    }
    return cors.dispatch(app, hot, llm.settings.gateway.cors_origins)
