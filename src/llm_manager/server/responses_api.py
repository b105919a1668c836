"""``/v1/responses``: OpenAI's Responses API over :class:`LLMManager`, with its own store of answers.

``POST /v1/responses`` is routed like a chat completion (deployment, alias or ``task:<name>``; fallback, budgets,
the ledger, gateway keys and their limits, the ``x-llm-*`` headers): the wire format is the Responses codec's
(:mod:`llm_manager.codecs.openai_responses`), the plumbing the chat routes' own (:class:`~.app._Gateway`).
Streamed answers use the Responses event sequence.

``store`` (default true, as at OpenAI) keeps the answer and the conversation it answered (:mod:`.store.responses`)
for ``GET`` / ``DELETE /v1/responses/{id}``, ``GET /v1/responses/{id}/input_items`` and ``previous_response_id``,
which puts a stored conversation and its answer before the new input. A response belongs to the gateway key that
created it. It is kept just before the answer's last bytes go out (so a ``GET`` right after the answer finds it);
a store that fails is logged and the answer stands (a later ``GET`` finds nothing).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Awaitable, Callable, Mapping, MutableMapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, TypeVar

from starlette.requests import Request as HttpRequest
from starlette.responses import Response as HttpResponse

from llm_manager import _json
from llm_manager.codecs.base import WireError
from llm_manager.codecs.openai_responses.request import Decoded, decode_request, messages_from_items
from llm_manager.codecs.openai_responses.response import Echo, new_id, response_object
from llm_manager.codecs.openai_responses.stream import ResponseEvents
from llm_manager.server.asgi import Incoming, Receive, Scope, Send
from llm_manager.server.errors import ErrorReply, gateway_error
from llm_manager.server.openai_api import BadBody, response_headers, route, steer
from llm_manager.store.responses import StoredResponse, delete_response, load_response, save_response

if TYPE_CHECKING:
    from llm_manager.config import Settings
    from llm_manager.server.app import _Gateway

__all__ = ["ParsedResponses", "ResponsesRoute", "parse_responses"]

log = logging.getLogger("llm_manager.server")
_JSON = "application/json"
_MAX_ITEMS_PAGE = 100
T = TypeVar("T")


@dataclass(slots=True)
class ParsedResponses:
    """A Responses body: the decoded request and the :class:`Request` preferences."""

    decoded: Decoded
    prefs: dict[str, Any]
    stream: bool


def parse_responses(body: Any, headers: Mapping[str, str], settings: Settings) -> ParsedResponses:
    """Validate a Responses body plus the ``x-llm-*`` steering headers; raises :class:`BadBody` or
    ``UnknownModel``."""
    try:
        decoded = decode_request(body)
    except WireError as exc:
        raise BadBody(exc.message, exc.param) from None
    prefs = route(decoded.wire.model, headers, settings)
    prefs.update(decoded.prefs)
    steer(headers, decoded.wire.user, prefs)
    return ParsedResponses(decoded, prefs, bool(decoded.wire.stream))


def _messages(earlier: list[dict[str, Any]], items: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Canonical messages for the stored items and the client's (converted apart, so that an error's path points
    into the client's ``input``)."""
    try:
        new = messages_from_items(items)
    except WireError as exc:
        raise BadBody(exc.message, exc.param) from None
    return [*messages_from_items(earlier), *new]


class _Events(ResponseEvents):
    """:class:`ResponseEvents` as the gateway's stream loop drives it (a failure arrives as an :class:`ErrorReply`)."""

    __slots__ = ()

    def delta(self, text: str, _logprobs: object = None) -> bytes:
        return super().delta(text)

    def failure(self, reply: ErrorReply) -> bytes:
        error = reply.body["error"]
        return self.failed(reply.status, error.get("message") or "error", error.get("param"))


class ResponsesRoute:
    """The handlers, sharing the gateway's plumbing."""

    def __init__(self, gateway: _Gateway) -> None:
        self.gw = gateway

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """``POST /v1/responses`` (plain ASGI, like the chat routes)."""
        from llm_manager.server.app import _new_id

        gw, llm = self.gw, self.gw.llm
        rid = _new_id()
        response_id = new_id("resp")
        created = int(time.time())
        hold = opened = None
        try:
            parsed, hold = await gw._accept(Incoming(scope, receive), parse_responses)
            owner = parsed.prefs.get("gateway_key")
            earlier = await self._earlier(parsed.decoded, owner)
            items = [*earlier, *parsed.decoded.items]
            request = llm.request(messages=_messages(earlier, parsed.decoded.items), **parsed.prefs)
            if parsed.stream:
                opened = await gw._open(request, rid, hold)
            else:
                resp, settle = await gw.life.run(llm.answer(request, request_id=rid), gw._deadline(request))
        except BaseException as exc:
            await gw.refuse(send, exc, rid, hold)
            return
        echo = Echo(parsed.decoded.wire, parsed.decoded.wire.store is not False)
        # A response is stored before the client has all of it, so that a GET right after the answer finds it.
        if opened is not None:
            events = _Events(response_id, created, opened.first.model, echo)

            async def keep_then_send(message: MutableMapping[str, Any]) -> None:
                if message["type"] == "http.response.body" and not message.get("more_body"):
                    if events.final is not None and echo.store:  # the stream completed: its last bytes go now
                        await self._keep(events.final, items, owner)
                await send(message)

            await gw._pump(keep_then_send, receive, opened, events, rid, request, {})
            return
        body = response_object(response_id, created, echo, resp)
        headers = response_headers(resp)  # x-llm-dropped-params among them
        if echo.store:
            await self._keep(body, items, owner)
        await gw.send_answer(send, headers, _json.dumps(body), settle, hold, resp)

    async def _earlier(self, decoded: Decoded, owner: str | None) -> list[dict[str, Any]]:
        """With ``previous_response_id``: the stored conversation and its answer, as items (else none)."""
        previous = decoded.wire.previous_response_id
        if previous is None:
            return []
        stored = await _store(load_response(await _store(self.gw.llm.database()), previous, owner))
        if stored is None:
            raise BadBody(f"Previous response with id '{previous}' not found.", "previous_response_id")
        return [*stored.input, *stored.response["output"]]

    async def _keep(self, response: dict[str, Any], items: list[dict[str, Any]], owner: str | None) -> None:
        # Input items get ids, as OpenAI gives them (input_items lists them, and paging is by item id).
        with_ids = [item if item.get("id") else {**item, "id": new_id("msg")} for item in items]
        try:
            await save_response(await self.gw.llm.database(), response, with_ids, owner)
        except Exception as exc:  # the answer was given: a store failure must not turn it into an error
            log.warning("gateway: response %s not stored: %s: %s", response["id"], type(exc).__name__, exc)

    # -- the stored responses -----------------------------------------------------------------------------------

    async def _handle(self, http: HttpRequest, op: _StoredOp) -> HttpResponse:
        """Authenticate, then run ``op`` on the database for the caller's key and the path's response id; a
        refusal (no key, not found, the store down) is answered in OpenAI's shape."""
        from llm_manager.server.app import _error, _new_id, _Reject

        try:
            key = await self.gw._authenticate(http.headers)
            db = await _store(self.gw.llm.database())
            return await op(db, key.id if key is not None else None, http.path_params["response_id"], http)
        except _Reject as rej:
            return _error(rej.reply, _new_id())

    async def get(self, http: HttpRequest) -> HttpResponse:
        """``GET /v1/responses/{response_id}``."""
        return await self._handle(http, _get)

    async def delete(self, http: HttpRequest) -> HttpResponse:
        """``DELETE /v1/responses/{response_id}``."""
        return await self._handle(http, _delete)

    async def input_items(self, http: HttpRequest) -> HttpResponse:
        """``GET /v1/responses/{response_id}/input_items`` (``limit``, ``order``, ``after``)."""
        return await self._handle(http, _input_items)


_StoredOp = Callable[[Any, "str | None", str, HttpRequest], Awaitable[HttpResponse]]


async def _found(db: Any, owner: str | None, response_id: str) -> StoredResponse:
    from llm_manager.server.app import _Reject

    stored = await _store(load_response(db, response_id, owner))
    if stored is None:
        msg = f"Response with id '{response_id}' not found."
        raise _Reject(gateway_error(404, msg, code="not_found", param="response_id"))
    return stored


async def _get(db: Any, owner: str | None, response_id: str, _: HttpRequest) -> HttpResponse:
    return HttpResponse(_json.dumps((await _found(db, owner, response_id)).response), media_type=_JSON)


async def _delete(db: Any, owner: str | None, response_id: str, _: HttpRequest) -> HttpResponse:
    from llm_manager.server.app import _Reject

    if not await _store(delete_response(db, response_id, owner)):
        msg = f"Response with id '{response_id}' not found."
        raise _Reject(gateway_error(404, msg, code="not_found", param="response_id"))
    body = {"id": response_id, "object": "response.deleted", "deleted": True}
    return HttpResponse(_json.dumps(body), media_type=_JSON)


async def _input_items(db: Any, owner: str | None, response_id: str, http: HttpRequest) -> HttpResponse:
    from llm_manager.server.app import _Reject

    query = http.query_params
    limit, order = query.get("limit", "20"), query.get("order", "desc")
    if not limit.isdigit() or not 1 <= int(limit) <= _MAX_ITEMS_PAGE:
        msg = f"limit must be a whole number from 1 to {_MAX_ITEMS_PAGE}"
        raise _Reject(gateway_error(400, msg, param="limit"))
    if order not in ("asc", "desc"):
        raise _Reject(gateway_error(400, "order must be asc or desc", param="order"))
    stored = await _found(db, owner, response_id)
    items = stored.input if order == "asc" else stored.input[::-1]
    after = query.get("after")
    if after is not None:
        ids = [i.get("id") for i in items]
        items = items[ids.index(after) + 1 :] if after in ids else []
    page, size = items[: int(limit)], int(limit)
    body = {
        "object": "list",
        "data": page,
        "first_id": page[0]["id"] if page else None,
        "last_id": page[-1]["id"] if page else None,
        "has_more": len(items) > size,
    }
    return HttpResponse(_json.dumps(body), media_type=_JSON)


async def _store(op: Awaitable[T]) -> T:
    """``op``'s result; a store that fails is a 503 (a database down is not a bug of the request)."""
    from llm_manager.server.app import _Reject

    try:
        return await op
    except Exception as exc:
        log.warning("gateway: response store failed: %s: %s", type(exc).__name__, exc)
        raise _Reject(_store_down()) from None


def _store_down() -> ErrorReply:
    msg = "the response store cannot be read right now; retry later"
    return gateway_error(503, msg, type_="api_error", code="store_unavailable", headers={"retry-after": "1"})
