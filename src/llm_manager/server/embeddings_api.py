"""``POST /v1/embeddings``: the OpenAI embeddings codec over :meth:`LLMManager.answer_embedding`.

Authentication, gateway-key admission (model list, rates, budget), body limits, deadlines and error rendering are the
chat routes' own (:class:`~llm_manager.server.app._Gateway`); what differs is the wire format, from
:mod:`llm_manager.codecs.openai_embeddings`. ``model`` is a deployment, an alias or ``task:<name>`` of a task that
routes embedding models (``task:embedding``: all of them). ``encoding_format`` ``float`` and ``base64`` are both
answered (the official SDKs ask for ``base64`` by default). Fields the protocol does not define, and an
``input_type`` the answering model cannot honour, are named in ``x-llm-dropped-params``.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from llm_manager.codecs.openai_embeddings import DecodeError, EncodingFormat, decode_request, encode_response
from llm_manager.codecs.openai_embeddings import unknown_fields as unknown_body_fields
from llm_manager.server.asgi import Incoming, Receive, Scope, Send, send_whole
from llm_manager.server.dropped import dropped_headers
from llm_manager.server.openai_api import BadBody, response_headers, route, steer

if TYPE_CHECKING:
    from llm_manager.config import Settings
    from llm_manager.embedding import EmbeddingResponse
    from llm_manager.server.app import _Gateway

__all__ = ["EmbeddingsRoute", "ParsedEmbeddings", "parse_embeddings"]


@dataclass(slots=True)
class ParsedEmbeddings:
    """An embeddings body as ``embed()`` arguments (``inputs``) and routing preferences (``prefs``)."""

    inputs: dict[str, Any]
    prefs: dict[str, Any]
    encoding_format: EncodingFormat
    unknown: list[str] = field(default_factory=list)


def parse_embeddings(body: Any, headers: Mapping[str, str], settings: Settings) -> ParsedEmbeddings:
    """Validate an embeddings body plus the ``x-llm-*`` steering headers; raises :class:`BadBody` or
    :class:`UnknownModel`."""
    try:
        req, fields = decode_request(body)
    except DecodeError as exc:
        raise BadBody(exc.message, exc.param) from None
    # Embeddings are routed by the embedding task; a chat task is refused with the reason by embed().
    prefs = route(req.model, headers, settings, settings.task_names())
    steer(headers, fields.pop("user", None), prefs)
    inputs = {"texts": fields.pop("texts", None), **fields}
    return ParsedEmbeddings(inputs, prefs, req.encoding_format, unknown_body_fields(body))


class EmbeddingsRoute:
    """The handler (plain ASGI, like the chat routes), sharing the gateway's plumbing."""

    def __init__(self, gateway: _Gateway) -> None:
        self.gw = gateway

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        from llm_manager.embedder import as_response
        from llm_manager.server.app import _new_id

        gw, llm = self.gw, self.gw.llm
        rid = _new_id()
        hold = None
        try:
            parsed, hold = await gw._accept(Incoming(scope, receive), parse_embeddings)
            inp, route = llm.embedding_request(**parsed.inputs, **parsed.prefs)
            resp, settle = await gw.life.run(llm.answer_embedding(inp, route, request_id=rid), gw._deadline(route))
        except BaseException as exc:
            await gw.refuse(send, exc, rid, hold)
            return
        body = encode_response(
            resp.vectors,
            model=resp.model,
            prompt_tokens=resp.usage.prompt_tokens,
            encoding_format=parsed.encoding_format,
        )
        try:
            await send_whole(send, 200, _headers(resp, parsed.unknown), body)
        finally:  # the client has its vectors: the bookkeeping is off its clock
            try:
                await settle()
            finally:
                if hold is not None:
                    await hold.settle(as_response(resp))


def _headers(resp: EmbeddingResponse, unknown: list[str]) -> dict[str, str]:
    from llm_manager.embedder import as_response

    return {**response_headers(as_response(resp)), **dropped_headers([*resp.dropped_params, *unknown])}
