"""The gateway's OpenAPI 3.1 document, served at ``GET /openapi.json``.

A route that speaks a wire protocol (chat completions, messages, embeddings …) is described by its codec's models:
its request body, its answer and its stream events are ``model_json_schema`` of the pydantic models the gateway
validates with and answers by, so the document cannot drift from what is decoded. To describe a new one, add a
:class:`CodecRoute` to :data:`CODEC_ROUTES`. The routes no codec speaks (models, health, metrics, admin, the
dashboard) are described by hand in :mod:`llm_manager.server.openapi_static`.

The document is a contract: a test checks that every route of :func:`~llm_manager.server.create_app` is described
here and nothing else is, and the gateway is fuzzed against it (no 5xx, every answer as documented).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from functools import cache

from pydantic import BaseModel
from pydantic.json_schema import models_json_schema
from starlette.requests import Request as HttpRequest
from starlette.responses import Response as HttpResponse

from llm_manager import __version__, _json
from llm_manager.codecs.anthropic_messages import wire as messages
from llm_manager.codecs.openai_chat import wire as chat
from llm_manager.codecs.openai_embeddings import EmbeddingsRequest, EmbeddingsResponse
from llm_manager.codecs.openai_responses import wire as responses
from llm_manager.server import openapi_surface
from llm_manager.server.openapi_static import (
    ANSWER_HEADERS,
    HEADERS,
    JSON,
    KEYED,
    PARAMETERS,
    PATHS,
    SCHEMAS,
    SSE,
    Json,
    generation_errors,
    header,
    ref,
    steering,
)

__all__ = ["CODEC_ROUTES", "CodecRoute", "build_document", "document", "endpoint"]


@dataclass(frozen=True, slots=True)
class CodecRoute:
    """A ``POST`` route that speaks a wire protocol, described by its codec's models."""

    path: str
    operation_id: str
    summary: str
    request: type[BaseModel]
    """The body the route validates with."""
    answer: type[BaseModel]
    """The whole answer (``application/json``)."""
    answer_description: str
    events: type[BaseModel] | None = None
    """One server-sent event of its stream (``text/event-stream``), if it streams."""
    anthropic_errors: bool = False
    """Errors in Anthropic's shape (else OpenAI's)."""
    headers: Sequence[str] = ("x-llm-dropped-params",)
    """Answer headers besides the gateway's usual ones."""
    models: Sequence[type[BaseModel]] = field(default=())
    """More models to publish in ``components.schemas`` (shapes referred to in descriptions, or by other routes)."""
    schemas: Callable[[], Json] | None = None
    """The codec's own schema generator (its models' names prefixed its way), instead of the shared one."""

    def operation(self) -> Json:
        content: Json = {JSON: {"schema": ref(self.answer.__name__)}}
        if self.events is not None:
            content[SSE] = {"schema": ref(self.events.__name__)}
        return {
            "operationId": self.operation_id,
            "summary": self.summary,
            "security": KEYED,
            "parameters": steering(),
            "requestBody": {"required": True, "content": {JSON: {"schema": ref(self.request.__name__)}}},
            "responses": {
                "200": {
                    "description": self.answer_description,
                    "headers": {**ANSWER_HEADERS, **{h: header(h) for h in self.headers}},
                    "content": content,
                },
                **generation_errors(anthropic=self.anthropic_errors),
            },
        }

    def schema_models(self) -> list[type[BaseModel]]:
        return [m for m in (self.request, self.answer, self.events, *self.models) if m is not None]


CODEC_ROUTES: list[CodecRoute] = [
    CodecRoute(
        "/v1/chat/completions",
        "createChatCompletion",
        "OpenAI-compatible chat completion, whole or streamed",
        chat.ChatCompletionRequest,
        chat.ChatCompletion,
        "The answer (application/json), or its stream (text/event-stream) with stream: true.",
        events=chat.ChatCompletionEvent,
        models=(chat.ChatCompletionChunk,),
    ),
    CodecRoute(
        "/v1/messages",
        "createMessage",
        "Anthropic Messages ingress, whole or streamed",
        messages.MessagesRequest,
        messages.Message,
        "The message (application/json), or its stream (text/event-stream).",
        events=messages.MessageEvent,
        anthropic_errors=True,
    ),
    CodecRoute(
        "/v1/responses",
        "createResponse",
        "OpenAI Responses API, whole or streamed; stored unless store is false",
        responses.ResponsesRequest,
        responses.ResponseObject,
        "The response (application/json), or its events (text/event-stream).",
        events=responses.ResponseStreamEvent,
        schemas=responses.openapi_schemas,  # also InputItemList and DeletedResponse, for the stored-response routes
    ),
    CodecRoute(
        "/v1/embeddings",
        "createEmbedding",
        "OpenAI-compatible embeddings (float or base64), routed among embedding models",
        EmbeddingsRequest,
        EmbeddingsResponse,
        "One vector per input, in order.",
    ),
]
"""The codec routes, in the document's order."""

_ERRORS: tuple[type[BaseModel], ...] = (chat.Error, messages.AnthropicError)
"""Every route's error replies refer to these."""


def component_schemas(models: Iterable[type[BaseModel]]) -> Json:
    """``components.schemas`` for ``models``: each model's schema under its class name, and every model it refers to
    (pydantic gives shapes of the same name in two codecs distinct names)."""
    unique = list(dict.fromkeys(models))
    keyed, defs = models_json_schema([(m, "validation") for m in unique], ref_template="#/components/schemas/{model}")
    out: Json = dict(defs.get("$defs", {}))
    for model in unique:
        reference = keyed[(model, "validation")]["$ref"].rsplit("/", 1)[1]
        if reference != model.__name__:  # a top-level model is referred to by its own name in the paths
            out[model.__name__] = out.pop(reference)
    return out


def build_document(routes: Sequence[CodecRoute]) -> Json:
    """The whole document: ``routes`` and the hand-described ones."""
    models = [m for r in routes if r.schemas is None for m in r.schema_models()]
    codec: Json = component_schemas([*models, *_ERRORS])
    for r in routes:
        if r.schemas is not None:
            codec.update(r.schemas())
    paths: Json = {r.path: {"post": r.operation()} for r in routes}
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "llm-manager gateway",
            "version": __version__,
            "description": (
                "An OpenAI-compatible (and Anthropic Messages) gateway over llm-manager's routing, fallback, retries, "
                "budgets and caching. Errors use OpenAI's shape; x-should-retry: false means the gateway has already "
                "spent its own retries and fallbacks. Parameters the answering model cannot honour are named in "
                "x-llm-dropped-params."
            ),
        },
        "paths": {**paths, **_surface(), **PATHS},
        "components": {
            "schemas": {**codec, **openapi_surface.schemas(codec), **SCHEMAS},
            "parameters": PARAMETERS,
            "headers": {**HEADERS, **openapi_surface.HEADERS},
            "securitySchemes": {
                "bearer": {
                    "type": "http",
                    "scheme": "bearer",
                    "description": "a gateway key (llm-manager keys create)",
                },
                "apiKey": {"type": "apiKey", "in": "header", "name": "x-api-key", "description": "the same key"},
            },
        },
    }


def _surface() -> Json:
    """``POST /v1/completions`` and ``/v1/messages/count_tokens``, described by hand in
    :mod:`llm_manager.server.openapi_surface`."""
    return openapi_surface.paths(
        security=KEYED,
        steering=steering(),
        answer_headers={**ANSWER_HEADERS, "x-llm-dropped-params": header("x-llm-dropped-params")},
        errors=generation_errors(),
        anthropic_errors=generation_errors(anthropic=True),
    )


@cache
def _serialised() -> tuple[Json, bytes]:
    # Built on first use, not at import: generating the schemas takes a good part of a second on a busy machine.
    document = build_document(CODEC_ROUTES)
    return document, _json.dumps(document)


def document() -> Json:
    """The document (built once, on first use)."""
    return _serialised()[0]


def __getattr__(name: str) -> Json:
    """``DOCUMENT``, the same as :func:`document`."""
    if name == "DOCUMENT":
        return document()
    raise AttributeError(name)


async def endpoint(_: HttpRequest) -> HttpResponse:
    """``GET /openapi.json`` (open, like ``/health``: it holds nothing secret)."""
    return HttpResponse(_serialised()[1], media_type=JSON)
