"""The gateway's OpenAPI 3.1 document, served at ``GET /openapi.json``.

Written by hand as data, route by route: the app has no framework that could derive it, and the document is a
contract — a test checks that every route of :func:`~llm_manager.server.create_app` is described here and nothing
else is, and the gateway is fuzzed against it (no 5xx, every answer as documented).

Request bodies describe what the gateway accepts; response bodies name the fields clients rely on and leave room
for more (``additionalProperties`` stays open), as OpenAI's and Anthropic's own schemas do.
"""

from __future__ import annotations

from typing import Any

from starlette.requests import Request as HttpRequest
from starlette.responses import Response as HttpResponse

from llm_manager import __version__, _json
from llm_manager.codecs.openai_embeddings import openapi_schemas
from llm_manager.codecs.openai_responses.wire import openapi_schemas as responses_schemas
from llm_manager.server import openapi_surface
from llm_manager.types import TASK_NAME_PATTERN, TASK_TYPES

__all__ = ["DOCUMENT", "endpoint"]

_JSON = "application/json"
_SSE = "text/event-stream"

Json = dict[str, Any]


def _ref(name: str) -> Json:
    return {"$ref": f"#/components/schemas/{name}"}


def _param(name: str) -> Json:
    return {"$ref": f"#/components/parameters/{name}"}


def _header(name: str) -> Json:
    return {"$ref": f"#/components/headers/{name}"}


def _error(description: str, *headers: str) -> Json:
    out: Json = {"description": description, "content": {_JSON: {"schema": _ref("Error")}}}
    if headers:
        out["headers"] = {h: _header(h) for h in headers}
    return out


def _anthropic_error(description: str, *headers: str) -> Json:
    out: Json = {"description": description, "content": {_JSON: {"schema": _ref("AnthropicError")}}}
    if headers:
        out["headers"] = {h: _header(h) for h in headers}
    return out


def _ok(schema: Json, description: str = "OK", media: str = _JSON) -> Json:
    return {"description": description, "content": {media: {"schema": schema}}}


_RETRY = ("retry-after", "retry-after-ms", "x-should-retry", "x-request-id")

# The errors a generation route can answer with, each in OpenAI's shape (``/v1/messages`` re-shapes them).
_GENERATION_ERRORS: dict[str, tuple[str, tuple[str, ...]]] = {
    "400": ("The body, a header or a value in it is invalid (param names which).", ("x-request-id",)),
    "401": ("No gateway key, or a wrong one (only once keys exist).", ("x-request-id",)),
    "403": ("The key may not use this model; or, with no keys, the Host is not allowed.", ("x-request-id",)),
    "404": ("No such model (deployment, alias or task:<type>).", ("x-request-id",)),
    "408": ("The body did not arrive within the body timeout; the connection is closed.", ("x-request-id",)),
    "413": ("The body is over the size limit.", ("x-request-id",)),
    "415": ("The body is not application/json.", ("x-request-id",)),
    "422": ("Structured output still invalid after the re-asks.", _RETRY),
    "429": ("A rate limit (the key's, or every candidate's) or a budget is exhausted.", _RETRY),
    "502": ("An upstream rejected the gateway's own provider key.", _RETRY),
    "503": ("No candidate could answer, or the gateway is shutting down.", _RETRY),
    "504": ("The request's deadline passed (x-llm-timeout, or the gateway's default).", _RETRY),
}


def _generation_errors(anthropic: bool = False) -> Json:
    make = _anthropic_error if anthropic else _error
    return {status: make(text, *headers) for status, (text, headers) in _GENERATION_ERRORS.items()}


_AUTH_ERRORS: Json = {
    "401": _error("No gateway key, or a wrong one (only once keys exist)."),
    "403": _error("No gateway keys exist and the Host is not in gateway.allowed_hosts."),
    "503": _error("The key store cannot be read, so keys cannot be checked."),
}
_STORED_ERRORS: Json = {
    **_AUTH_ERRORS,
    "404": _error("No such stored response (or another key's)."),
    "503": _error("The key store or the response store cannot be read.", "retry-after"),
}
_ADMIN_ERRORS: Json = {
    **_AUTH_ERRORS,
    "400": _error("A query parameter is invalid (param names which)."),
    "403": _error("The key is not an admin key; or, with no keys, the Host is not allowed."),
    "404": _error("The ledger is disabled (ledger.enabled: false)."),
}
# Open with no gateway keys at all; otherwise a gateway key (an admin key on /admin/*) by either scheme.
_KEYED: list[Json] = [{"bearer": []}, {"apiKey": []}, {}]


def _steering() -> list[Json]:
    names = ("x-llm-task", "x-llm-user", "x-llm-project", "x-llm-cache", "x-llm-timeout", "x-llm-max-prompt-tokens")
    return [_param(p) for p in names]


_SCHEMAS: Json = {
    "Error": {
        "type": "object",
        "description": "OpenAI's error shape; a stream that fails after it started sends it as its last event.",
        "required": ["error"],
        "properties": {
            "error": {
                "type": "object",
                "required": ["message", "type", "param", "code"],
                "properties": {
                    "message": {"type": "string"},
                    "type": {"type": "string", "examples": ["invalid_request_error", "api_error"]},
                    "param": {"type": ["string", "null"]},
                    "code": {"type": ["string", "null"], "examples": ["model_not_found", "timeout"]},
                },
            }
        },
    },
    "AnthropicError": {
        "type": "object",
        "required": ["type", "error"],
        "properties": {
            "type": {"const": "error"},
            "error": {
                "type": "object",
                "required": ["type", "message"],
                "properties": {"type": {"type": "string"}, "message": {"type": "string"}},
            },
            "request_id": {"type": "string"},
        },
    },
    "TextPart": {
        "type": "object",
        "required": ["type", "text"],
        "properties": {"type": {"const": "text"}, "text": {"type": "string"}},
    },
    "ToolCall": {
        "type": "object",
        "required": ["id", "type", "function"],
        "properties": {
            "id": {"type": "string"},
            "type": {"const": "function"},
            "function": {
                "type": "object",
                "required": ["name", "arguments"],
                "properties": {"name": {"type": "string"}, "arguments": {"type": "string"}},
            },
        },
    },
    "Content": {
        "oneOf": [{"type": "string"}, {"type": "array", "items": _ref("TextPart")}],
    },
    "ChatMessage": {
        "oneOf": [
            {
                "type": "object",
                "required": ["role", "content"],
                "properties": {
                    "role": {"enum": ["system", "developer", "user"]},
                    "content": _ref("Content"),
                    "name": {"type": "string"},
                },
            },
            {
                "type": "object",
                "required": ["role"],
                "properties": {
                    "role": {"const": "assistant"},
                    "content": {"oneOf": [_ref("Content"), {"type": "null"}]},
                    "tool_calls": {"type": "array", "items": _ref("ToolCall")},
                },
            },
            {
                "type": "object",
                "required": ["role", "content", "tool_call_id"],
                "properties": {
                    "role": {"const": "tool"},
                    "content": _ref("Content"),
                    "tool_call_id": {"type": "string"},
                },
            },
        ]
    },
    "Tool": {
        "type": "object",
        "required": ["type", "function"],
        "properties": {
            "type": {"const": "function"},
            "function": {
                "type": "object",
                "required": ["name"],
                "properties": {
                    "name": {"type": "string", "pattern": "^[A-Za-z0-9_-]{1,64}$"},
                    "description": {"type": "string"},
                    "parameters": {"type": "object", "description": "a JSON Schema"},
                    "strict": {"type": "boolean"},
                },
            },
        },
    },
    "ResponseFormat": {
        "oneOf": [
            {
                "type": "object",
                "required": ["type"],
                "properties": {"type": {"enum": ["text", "json_object"]}},
            },
            {
                "type": "object",
                "required": ["type", "json_schema"],
                "properties": {
                    "type": {"const": "json_schema"},
                    "json_schema": {
                        "type": "object",
                        "required": ["schema"],
                        "properties": {
                            "name": {"type": "string"},
                            "schema": {"type": "object", "description": "a JSON Schema the answer must match"},
                            "strict": {"type": "boolean"},
                        },
                    },
                },
            },
        ]
    },
    "ChatCompletionRequest": {
        "type": "object",
        "required": ["model", "messages"],
        "properties": {
            "model": {
                "type": "string",
                "minLength": 1,
                "description": "a deployment name, an alias, or task:<type> (GET /v1/models lists them)",
            },
            "messages": {
                "type": "array",
                "minItems": 1,
                "items": _ref("ChatMessage"),
                "contains": {"type": "object", "properties": {"role": {"enum": ["user", "assistant"]}}},
                "description": "the conversation, oldest first; at least one user or assistant turn",
            },
            "stream": {"type": "boolean", "description": "answer as server-sent events"},
            "stream_options": {
                "type": "object",
                "properties": {"include_usage": {"type": "boolean"}},
            },
            "response_format": _ref("ResponseFormat"),
            "tools": {"type": "array", "items": _ref("Tool")},
            "tool_choice": {
                "oneOf": [
                    {"enum": ["none", "auto", "required"]},
                    {
                        "type": "object",
                        "required": ["type", "function"],
                        "properties": {
                            "type": {"const": "function"},
                            "function": {
                                "type": "object",
                                "required": ["name"],
                                "properties": {"name": {"type": "string"}},
                            },
                        },
                    },
                ]
            },
            "parallel_tool_calls": {"type": "boolean"},
            "max_tokens": {"type": "integer", "minimum": 1},
            "max_completion_tokens": {"type": "integer", "minimum": 1},
            "temperature": {"type": "number", "minimum": 0, "maximum": 2},
            "top_p": {"type": "number", "exclusiveMinimum": 0, "maximum": 1},
            "stop": {
                "oneOf": [{"type": "string"}, {"type": "array", "items": {"type": "string"}, "maxItems": 4}],
            },
            "user": {"type": "string", "description": "who the request is for (cost attribution)"},
        },
    },
    "Usage": {
        "type": "object",
        "required": ["prompt_tokens", "completion_tokens", "total_tokens"],
        "properties": {
            "prompt_tokens": {"type": "integer"},
            "completion_tokens": {"type": "integer"},
            "total_tokens": {"type": "integer"},
        },
    },
    "ChatCompletion": {
        "type": "object",
        "required": ["id", "object", "created", "model", "choices", "usage"],
        "properties": {
            "id": {"type": "string"},
            "object": {"const": "chat.completion"},
            "created": {"type": "integer"},
            "model": {"type": "string"},
            "choices": {
                "type": "array",
                "items": {
                    "type": "object",
                    "required": ["index", "message", "finish_reason"],
                    "properties": {
                        "index": {"type": "integer"},
                        "message": {
                            "type": "object",
                            "required": ["role", "content"],
                            "properties": {
                                "role": {"const": "assistant"},
                                "content": {"type": ["string", "null"]},
                                "tool_calls": {"type": "array", "items": _ref("ToolCall")},
                            },
                        },
                        "finish_reason": {"type": "string"},
                    },
                },
            },
            "usage": _ref("Usage"),
        },
    },
    "ChatCompletionEvent": {
        "type": "object",
        "description": (
            "One server-sent event of a streamed chat completion: a chat.completion.chunk per piece, one with the "
            "finish reason, with stream_options.include_usage one with empty choices and the usage, then [DONE]. "
            "A stream that fails after it started (an upstream break, its deadline, the gateway shutting down) "
            "ends with an Error instead, and no [DONE]."
        ),
        "required": ["data"],
        "properties": {
            "data": {
                "type": "string",
                "pattern": "^(\\[DONE\\]|\\{.*\\})$",
                "description": "a chat.completion.chunk or an Error, as JSON; or [DONE]",
            }
        },
    },
    "AnthropicTextBlock": {
        "type": "object",
        "required": ["type", "text"],
        "properties": {"type": {"const": "text"}, "text": {"type": "string"}},
    },
    "MessagesRequest": {
        "type": "object",
        "required": ["model", "max_tokens", "messages"],
        "properties": {
            "model": {"type": "string", "minLength": 1},
            "max_tokens": {"type": "integer", "minimum": 1},
            "messages": {
                "type": "array",
                "minItems": 1,
                "items": {
                    "type": "object",
                    "required": ["role", "content"],
                    "properties": {
                        "role": {"enum": ["user", "assistant"]},
                        "content": {
                            "oneOf": [{"type": "string"}, {"type": "array", "items": _ref("AnthropicTextBlock")}]
                        },
                    },
                },
            },
            "system": {"oneOf": [{"type": "string"}, {"type": "array", "items": _ref("AnthropicTextBlock")}]},
            "stream": {"type": "boolean"},
            "temperature": {"type": "number", "minimum": 0, "maximum": 1},
            "top_p": {"type": "number", "exclusiveMinimum": 0, "maximum": 1},
            "stop_sequences": {"type": "array", "items": {"type": "string"}},
            "metadata": {"type": "object", "properties": {"user_id": {"type": "string"}}},
            "output_config": {
                "type": "object",
                "properties": {
                    "format": {
                        "type": "object",
                        "required": ["type", "schema"],
                        "properties": {"type": {"const": "json_schema"}, "schema": {"type": "object"}},
                    }
                },
            },
        },
    },
    "Message": {
        "type": "object",
        "required": ["id", "type", "role", "content", "model", "stop_reason", "usage"],
        "properties": {
            "id": {"type": "string"},
            "type": {"const": "message"},
            "role": {"const": "assistant"},
            "content": {"type": "array", "items": {"type": "object", "required": ["type"]}},
            "model": {"type": "string"},
            "stop_reason": {"type": ["string", "null"]},
            "stop_sequence": {"type": ["string", "null"]},
            "usage": {
                "type": "object",
                "required": ["input_tokens", "output_tokens"],
                "properties": {"input_tokens": {"type": "integer"}, "output_tokens": {"type": "integer"}},
            },
        },
    },
    "MessageEvent": {
        "type": "object",
        "description": (
            "One server-sent event of a streamed message; a stream that fails after it started ends with an error "
            "event and no message_stop."
        ),
        "required": ["event", "data"],
        "properties": {
            "event": {
                "enum": [
                    "message_start",
                    "content_block_start",
                    "ping",
                    "content_block_delta",
                    "content_block_stop",
                    "message_delta",
                    "message_stop",
                    "error",
                ]
            },
            "data": {"type": "string", "pattern": "^\\{.*\\}$", "description": "the event's object, as JSON"},
        },
    },
    "ModelList": {
        "type": "object",
        "required": ["object", "data"],
        "properties": {"object": {"const": "list"}, "data": {"type": "array", "items": _ref("Model")}},
    },
    "Model": {
        "type": "object",
        "required": ["id", "object", "created", "owned_by"],
        "properties": {
            "id": {"type": "string"},
            "object": {"const": "model"},
            "created": {"type": "integer"},
            "owned_by": {"type": "string"},
            "kind": {"enum": ["chat", "embedding"]},
            "dimensions": {"type": ["integer", "null"], "description": "an embedding model's vector length"},
        },
    },
    "Status": {
        "type": "object",
        "required": ["status"],
        "properties": {
            "status": {"enum": ["ok", "ready", "draining", "unavailable"]},
            "reason": {"type": "string"},
        },
    },
    "AdminStatus": {
        "type": "object",
        "description": "breakers, rate limits, key pools, budgets and the cache, per deployment",
        "required": ["deployments"],
    },
    "AdminCosts": {
        "type": "object",
        "required": ["by", "since", "totals", "summary"],
        "properties": {
            "by": {"type": "string"},
            "since": {"type": ["string", "null"]},
            "totals": {"type": "array", "items": {"type": "object"}},
            "summary": {"type": "object"},
            "forecast": {
                "type": "array",
                "description": "With forecast=1: each budget's spend projected to its period's end (docs: budgets).",
                "items": _ref("BudgetForecast"),
            },
        },
    },
    "BudgetForecast": {
        "type": "object",
        "required": ["budget", "scope", "value", "period", "limit_usd", "spent_usd", "projected_usd", "runs_out_at"],
        "properties": {
            "budget": {"type": "string"},
            "scope": {"type": "string"},
            "value": {"type": "string", "description": "the scope value; * for a global budget"},
            "period": {"type": "string"},
            "limit_usd": {"type": "string"},
            "spent_usd": {"type": "string"},
            "projected_usd": {"type": "string", "description": "spent plus the projection to period_end"},
            "projected_pct": {"type": "number"},
            "over_limit": {"type": "boolean"},
            "period_end": {"type": "string", "format": "date-time"},
            "horizon": {"type": "boolean", "description": "a total budget: period_end is the projection's horizon"},
            "runs_out_at": {"type": ["string", "null"], "format": "date-time"},
            "basis": {
                "type": "object",
                "properties": {
                    "method": {"enum": ["recent_rate", "day_of_week"]},
                    "window_h": {"type": "number"},
                    "rate_usd_per_h": {"type": "string"},
                    "recent_usd": {"type": "string"},
                    "weeks": {"type": "integer"},
                    "day_of_week_usd": {"type": ["string", "null"]},
                },
            },
            "at": {"type": "string", "format": "date-time"},
        },
    },
    "AdminRequests": {
        "type": "object",
        "required": ["since", "total", "limit", "offset", "requests"],
        "properties": {
            "since": {"type": ["string", "null"]},
            "total": {"type": "integer"},
            "limit": {"type": "integer"},
            "offset": {"type": "integer"},
            "requests": {
                "type": "array",
                "items": {
                    "type": "object",
                    "required": ["request_id", "status", "attempts"],
                    "properties": {
                        "request_id": {"type": "string"},
                        "status": {"type": "string"},
                        "attempts": {"type": "array", "items": {"type": "object"}},
                    },
                },
            },
        },
    },
    "AdminTimeseries": {
        "type": "object",
        "required": ["start", "end", "window_s", "bucket_s", "by", "keys", "truncated", "buckets"],
        "properties": {
            "start": {"type": "string"},
            "end": {"type": "string"},
            "window_s": {"type": "integer"},
            "bucket_s": {"type": "integer"},
            "by": {"enum": ["model", "deployment"]},
            "keys": {"type": "array", "items": {"type": "string"}},
            "truncated": {"type": "boolean"},
            "buckets": {"type": "array", "items": {"type": "object"}},
        },
    },
}

_PARAMETERS: Json = {
    "x-llm-task": {
        "name": "x-llm-task",
        "in": "header",
        "description": "the task type whose routing chain answers (a task:<type> model wins over it)",
        # Any task the config defines (routing.tasks), not only the built-in ones: a pattern, the built-ins as examples.
        "schema": {"type": "string", "pattern": TASK_NAME_PATTERN, "examples": list(TASK_TYPES)},
    },
    "x-llm-user": {
        "name": "x-llm-user",
        "in": "header",
        "description": "who the request is for (budgets and the ledger)",
        "schema": {"type": "string"},
    },
    "x-llm-project": {
        "name": "x-llm-project",
        "in": "header",
        "description": "which project pays (budgets and the ledger)",
        "schema": {"type": "string"},
    },
    "x-llm-cache": {
        "name": "x-llm-cache",
        "in": "header",
        "description": (
            "no-store: neither a cached nor a de-duplicated answer; no-semantic: only an exactly matching cached "
            "answer (not one for a prompt that means the same)"
        ),
        "schema": {"type": "string", "examples": ["no-store", "no-semantic"]},
    },
    "x-llm-timeout": {
        "name": "x-llm-timeout",
        "in": "header",
        "description": (
            "the request's deadline in seconds, a whole stream included; capped by gateway.max_request_timeout_s. "
            "Past it: 504 (code timeout), or a stream's error event."
        ),
        "schema": {"type": "number", "exclusiveMinimum": 0},
    },
    "x-llm-max-prompt-tokens": {
        "name": "x-llm-max-prompt-tokens",
        "in": "header",
        "description": (
            "shrink the prompt to at most this many tokens before it is sent (tidied, repeats dropped, long texts cut "
            "to head and tail; never inside code or JSON); a budget that cannot be met is a 400"
        ),
        "schema": {"type": "integer", "minimum": 1},
    },
    "response_id": {
        "name": "response_id",
        "in": "path",
        "required": True,
        "description": "a response's id (resp_…)",
        "schema": {"type": "string"},
    },
    "since": {
        "name": "since",
        "in": "query",
        "description": "30m, 24h, 7d, 2w, today, month, or an ISO date / datetime",
        "schema": {
            "type": "string",
            "pattern": "^([0-9]+[mhdw]|today|month|[0-9]{4}-[0-9]{2}-[0-9]{2}(T[0-9]{2}:[0-9]{2}(:[0-9]{2})?(Z|[+-][0-9]{2}:[0-9]{2})?)?)$",
        },
    },
}

_SCHEMAS.update(openapi_schemas())  # /v1/embeddings: generated from the embeddings codec's wire models
_SCHEMAS.update(responses_schemas())  # /v1/responses: from the Responses codec's

_HEADERS: Json = {
    "x-request-id": {"description": "the request's id (ledger, logs, traces)", "schema": {"type": "string"}},
    "x-llm-dropped-params": {
        "description": "request fields the answering model could not honour (comma-separated)",
        "schema": {"type": "string"},
    },
    "x-llm-model": {"description": "the deployment that answered", "schema": {"type": "string"}},
    "x-llm-cost": {"description": "the request's cost in USD, or unknown", "schema": {"type": "string"}},
    "x-llm-cache": {
        "description": "where the answer came from (semantic: cached for a prompt that means the same)",
        "schema": {"enum": ["hit", "semantic", "shared", "miss"]},
    },
    "x-llm-cache-similarity": {
        "description": "with x-llm-cache: semantic, the similarity of the cached prompt that answered",
        "schema": {"type": "string", "pattern": "^[0-9.]+$"},
    },
    "x-llm-attempts": {"description": "provider calls made", "schema": {"type": "string", "pattern": "^[0-9]+$"}},
    "x-llm-confidence": {
        "description": "exp(mean token logprob) of the answer, 0 to 1; only on whole answers whose request asked "
        "for logprobs and whose model returned them",
        "schema": {"type": "string", "pattern": "^[01]\\.[0-9]{4}$"},
    },
    "retry-after": {"description": "seconds to wait before retrying", "schema": {"type": "string"}},
    "retry-after-ms": {"description": "milliseconds to wait before retrying", "schema": {"type": "string"}},
    "x-should-retry": {
        "description": "false once the gateway has spent its own retries and fallbacks",
        "schema": {"enum": ["true", "false"]},
    },
}

_ANSWER_HEADERS = {
    h: _header(h)
    for h in (
        "x-request-id",
        "x-llm-model",
        "x-llm-cost",
        "x-llm-cache",
        "x-llm-cache-similarity",
        "x-llm-attempts",
        "x-llm-confidence",
    )
}

_DURATION: Json = {"type": "string", "pattern": "^[0-9]{1,6}[smhd]$", "examples": ["15m", "6h", "30s"]}

_PATHS: Json = {
    "/v1/chat/completions": {
        "post": {
            "operationId": "createChatCompletion",
            "summary": "OpenAI-compatible chat completion, whole or streamed",
            "security": _KEYED,
            "parameters": _steering(),
            "requestBody": {"required": True, "content": {_JSON: {"schema": _ref("ChatCompletionRequest")}}},
            "responses": {
                "200": {
                    "description": "The answer (application/json), or its stream (text/event-stream) with stream: true.",
                    "headers": _ANSWER_HEADERS,
                    "content": {
                        _JSON: {"schema": _ref("ChatCompletion")},
                        _SSE: {"schema": _ref("ChatCompletionEvent")},
                    },
                },
                **_generation_errors(),
            },
        }
    },
    "/v1/messages": {
        "post": {
            "operationId": "createMessage",
            "summary": "Anthropic Messages ingress, whole or streamed",
            "security": _KEYED,
            "parameters": _steering(),
            "requestBody": {"required": True, "content": {_JSON: {"schema": _ref("MessagesRequest")}}},
            "responses": {
                "200": {
                    "description": "The message (application/json), or its stream (text/event-stream).",
                    "headers": _ANSWER_HEADERS,
                    "content": {_JSON: {"schema": _ref("Message")}, _SSE: {"schema": _ref("MessageEvent")}},
                },
                **_generation_errors(anthropic=True),
            },
        }
    },
    "/v1/embeddings": {
        "post": {
            "operationId": "createEmbedding",
            "summary": "OpenAI-compatible embeddings (float or base64), routed among embedding models",
            "security": _KEYED,
            "parameters": _steering(),
            "requestBody": {"required": True, "content": {_JSON: {"schema": _ref("EmbeddingsRequest")}}},
            "responses": {
                "200": {
                    "description": "One vector per input, in order.",
                    "headers": {**_ANSWER_HEADERS, "x-llm-dropped-params": _header("x-llm-dropped-params")},
                    "content": {_JSON: {"schema": _ref("EmbeddingsResponse")}},
                },
                **_generation_errors(),
            },
        }
    },
    "/v1/responses": {
        "post": {
            "operationId": "createResponse",
            "summary": "OpenAI Responses API, whole or streamed; stored unless store is false",
            "security": _KEYED,
            "parameters": _steering(),
            "requestBody": {"required": True, "content": {_JSON: {"schema": _ref("ResponsesRequest")}}},
            "responses": {
                "200": {
                    "description": "The response (application/json), or its events (text/event-stream).",
                    "headers": {**_ANSWER_HEADERS, "x-llm-dropped-params": _header("x-llm-dropped-params")},
                    "content": {
                        _JSON: {"schema": _ref("ResponseObject")},
                        _SSE: {"schema": _ref("ResponseStreamEvent")},
                    },
                },
                **_generation_errors(),
            },
        }
    },
    "/v1/responses/{response_id}": {
        "get": {
            "operationId": "getResponse",
            "summary": "A stored response (only to the gateway key that created it)",
            "security": _KEYED,
            "parameters": [_param("response_id")],
            "responses": {"200": _ok(_ref("ResponseObject")), **_STORED_ERRORS},
        },
        "delete": {
            "operationId": "deleteResponse",
            "summary": "Delete a stored response",
            "security": _KEYED,
            "parameters": [_param("response_id")],
            "responses": {"200": _ok(_ref("DeletedResponse")), **_STORED_ERRORS},
        },
    },
    "/v1/responses/{response_id}/input_items": {
        "get": {
            "operationId": "listResponseInputItems",
            "summary": "The input items a stored response answered (its whole conversation)",
            "security": _KEYED,
            "parameters": [
                _param("response_id"),
                {"name": "limit", "in": "query", "schema": {"type": "integer", "minimum": 1, "maximum": 100}},
                {"name": "order", "in": "query", "schema": {"enum": ["asc", "desc"]}},
                {"name": "after", "in": "query", "schema": {"type": "string"}},
            ],
            "responses": {
                "200": _ok(_ref("InputItemList")),
                "400": _error("limit or order is invalid."),
                **_STORED_ERRORS,
            },
        }
    },
    "/v1/models": {
        "get": {
            "operationId": "listModels",
            "summary": "Deployments, aliases and task:<type> pseudo-models",
            "security": _KEYED,
            "responses": {"200": _ok(_ref("ModelList")), **_AUTH_ERRORS},
        }
    },
    "/v1/models/{model_id}": {
        "get": {
            "operationId": "retrieveModel",
            "summary": "One model object (its id may hold slashes: openrouter/x)",
            "security": _KEYED,
            "parameters": [{"name": "model_id", "in": "path", "required": True, "schema": {"type": "string"}}],
            "responses": {
                "200": _ok(_ref("Model")),
                **_AUTH_ERRORS,
                "404": _error("No such model, or not one the caller's key may use."),
            },
        }
    },
    "/health": {
        "get": {
            "operationId": "health",
            "summary": "Liveness",
            "security": [],
            "responses": {"200": _ok(_ref("Status"))},
        }
    },
    "/health/ready": {
        "get": {
            "operationId": "ready",
            "summary": "Readiness: the store is reachable and the gateway is not draining",
            "security": [],
            "responses": {
                "200": _ok(_ref("Status")),
                "503": _ok(_ref("Status"), "Not ready: the store cannot be reached, or the gateway is shutting down."),
            },
        }
    },
    "/metrics": {
        "get": {
            "operationId": "metrics",
            "summary": "Prometheus metrics",
            "security": [],
            "responses": {"200": _ok({"type": "string"}, media="text/plain")},
        }
    },
    "/admin/status": {
        "get": {
            "operationId": "adminStatus",
            "summary": "Breakers, limits, key pools, budgets, cache",
            "security": _KEYED,
            "responses": {"200": _ok(_ref("AdminStatus")), **_ADMIN_ERRORS},
        }
    },
    "/admin/costs": {
        "get": {
            "operationId": "adminCosts",
            "summary": "Spend from the ledger, grouped",
            "security": _KEYED,
            "parameters": [
                {
                    "name": "by",
                    "in": "query",
                    "schema": {"enum": ["model", "deployment", "provider", "user", "project", "key", "task"]},
                },
                _param("since"),
                {
                    "name": "forecast",
                    "in": "query",
                    "schema": {"enum": ["0", "1", "true", "false"]},
                    "description": "1: add each budget's projected spend, its basis and when it runs out",
                },
                {
                    "name": "window_h",
                    "in": "query",
                    "schema": {"type": "number", "minimum": 1, "maximum": 672},
                    "description": "with forecast=1: the hours of recent spend the rate is taken from (default 6)",
                },
            ],
            "responses": {"200": _ok(_ref("AdminCosts")), **_ADMIN_ERRORS},
        }
    },
    "/admin/requests": {
        "get": {
            "operationId": "adminRequests",
            "summary": "Recent requests, newest first, each with its attempts",
            "security": _KEYED,
            "parameters": [
                {"name": "limit", "in": "query", "schema": {"type": "integer", "minimum": 1, "maximum": 500}},
                {"name": "offset", "in": "query", "schema": {"type": "integer", "minimum": 0}},
                _param("since"),
            ],
            "responses": {"200": _ok(_ref("AdminRequests")), **_ADMIN_ERRORS},
        }
    },
    "/admin/timeseries": {
        "get": {
            "operationId": "adminTimeseries",
            "summary": "Requests, errors, latency and cost per time bucket (the dashboard's charts)",
            "security": _KEYED,
            "parameters": [
                {"name": "by", "in": "query", "schema": {"enum": ["model", "deployment"]}},
                {"name": "window", "in": "query", "schema": _DURATION, "description": "up to 24h; default 15m"},
                {
                    "name": "bucket",
                    "in": "query",
                    "schema": _DURATION,
                    "description": "at most 720 a window; default 15s",
                },
            ],
            "responses": {"200": _ok(_ref("AdminTimeseries")), **_ADMIN_ERRORS},
        }
    },
    "/ui": {
        "get": {
            "operationId": "dashboard",
            "summary": "The dashboard page (its data comes from /admin/*)",
            "security": [],
            "responses": {"200": _ok({"type": "string"}, media="text/html")},
        }
    },
    "/ui/{name}": {
        "get": {
            "operationId": "dashboardAsset",
            "summary": "The dashboard's script and stylesheet",
            "security": [],
            "parameters": [
                {"name": "name", "in": "path", "required": True, "schema": {"enum": ["dashboard.js", "dashboard.css"]}}
            ],
            "responses": {
                "200": {
                    "description": "The file",
                    "content": {
                        "text/javascript": {"schema": {"type": "string"}},
                        "text/css": {"schema": {"type": "string"}},
                    },
                },
                "404": _error("No such file."),
            },
        }
    },
    "/openapi.json": {
        "get": {
            "operationId": "openapi",
            "summary": "This document",
            "security": [],
            "responses": {"200": _ok({"type": "object"})},
        }
    },
}

_SCHEMAS.update(openapi_surface.schemas(_SCHEMAS))
_HEADERS.update(openapi_surface.HEADERS)
_PATHS.update(
    openapi_surface.paths(
        security=_KEYED,
        steering=_steering(),
        answer_headers={**_ANSWER_HEADERS, "x-llm-dropped-params": _header("x-llm-dropped-params")},
        errors=_generation_errors(),
        anthropic_errors=_generation_errors(anthropic=True),
    )
)

DOCUMENT: Json = {
    "openapi": "3.1.0",
    "info": {
        "title": "llm-manager gateway",
        "version": __version__,
        "description": (
            "An OpenAI-compatible (and Anthropic Messages) gateway over llm-manager's routing, fallback, retries, "
            "budgets and caching. Errors use OpenAI's shape; x-should-retry: false means the gateway has already "
            "spent its own retries and fallbacks."
        ),
    },
    "paths": _PATHS,
    "components": {
        "schemas": _SCHEMAS,
        "parameters": _PARAMETERS,
        "headers": _HEADERS,
        "securitySchemes": {
            "bearer": {"type": "http", "scheme": "bearer", "description": "a gateway key (llm-manager keys create)"},
            "apiKey": {"type": "apiKey", "in": "header", "name": "x-api-key", "description": "the same key"},
        },
    },
}

_BODY = _json.dumps(DOCUMENT)


async def endpoint(_: HttpRequest) -> HttpResponse:
    """``GET /openapi.json`` (open, like ``/health``: it holds nothing secret)."""
    return HttpResponse(_BODY, media_type=_JSON)
