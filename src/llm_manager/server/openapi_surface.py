"""The OpenAPI description of ``POST /v1/completions`` (legacy text completions) and ``POST /v1/messages/count_tokens``,
merged into the gateway's document by :mod:`llm_manager.server.openapi`, whose shared pieces (errors, steering headers,
security, the Messages request schema) it is given."""

from __future__ import annotations

from typing import Any

__all__ = ["HEADERS", "SCHEMAS", "paths", "schemas"]

Json = dict[str, Any]
_JSON = "application/json"
_SSE = "text/event-stream"


def _ref(name: str) -> Json:
    return {"$ref": f"#/components/schemas/{name}"}


_NUMBER_OR_NULL: Json = {"type": ["number", "null"]}
_STOP: Json = {"oneOf": [{"type": "string"}, {"type": "array", "items": {"type": "string"}}, {"type": "null"}]}

HEADERS: Json = {
    "x-llm-token-count-source": {
        "description": "provider: counted by the deployment's own API; estimate: the gateway's estimate",
        "schema": {"enum": ["provider", "estimate"]},
    },
}

SCHEMAS: Json = {
    "MessageTokensCount": {
        "type": "object",
        "required": ["input_tokens"],
        "properties": {"input_tokens": {"type": "integer", "minimum": 0}},
    },
    "CompletionRequest": {
        "type": "object",
        "description": (
            "A legacy completion: the prompt is one user turn to a chat model. Fields that cannot be honoured "
            "(best_of above 1, suffix, logprobs on a stream, fields not listed here, what the answering model "
            "cannot take) are named in x-llm-dropped-params."
        ),
        "required": ["model", "prompt"],
        "properties": {
            "model": {"type": "string", "description": "a deployment, an alias or task:<type>"},
            "prompt": {
                "oneOf": [
                    {"type": "string"},
                    {"type": "array", "items": {"type": "string"}, "minItems": 1, "maxItems": 128},
                ]
            },
            "max_tokens": {"type": ["integer", "null"], "minimum": 1},
            "temperature": _NUMBER_OR_NULL,
            "top_p": _NUMBER_OR_NULL,
            "frequency_penalty": _NUMBER_OR_NULL,
            "presence_penalty": _NUMBER_OR_NULL,
            "seed": {"type": ["integer", "null"]},
            "stop": _STOP,
            "n": {"type": ["integer", "null"], "minimum": 1, "maximum": 128},
            "echo": {"type": ["boolean", "null"], "description": "put the prompt before the answer"},
            "logprobs": {"type": ["integer", "null"], "minimum": 0, "maximum": 5},
            "logit_bias": {"type": ["object", "null"], "additionalProperties": {"type": "number"}},
            "best_of": {"type": ["integer", "null"], "minimum": 1},
            "suffix": {"type": ["string", "null"]},
            "user": {"type": ["string", "null"]},
            "stream": {"type": ["boolean", "null"]},
            "stream_options": {
                "type": ["object", "null"],
                "properties": {"include_usage": {"type": ["boolean", "null"]}},
            },
        },
    },
    "TextCompletion": {
        "type": "object",
        "required": ["id", "object", "created", "model", "choices"],
        "properties": {
            "id": {"type": "string", "pattern": "^cmpl-"},
            "object": {"const": "text_completion"},
            "created": {"type": "integer"},
            "model": {"type": "string"},
            "choices": {
                "type": "array",
                "items": {
                    "type": "object",
                    "required": ["text", "index", "logprobs", "finish_reason"],
                    "properties": {
                        "text": {"type": "string"},
                        "index": {"type": "integer"},
                        "logprobs": {
                            "type": ["object", "null"],
                            "properties": {
                                "tokens": {"type": "array", "items": {"type": "string"}},
                                "token_logprobs": {"type": "array", "items": {"type": "number"}},
                                "top_logprobs": {
                                    "type": "array",
                                    "items": {"type": "object", "additionalProperties": {"type": "number"}},
                                },
                                "text_offset": {"type": "array", "items": {"type": "integer"}},
                            },
                        },
                        "finish_reason": {"enum": ["stop", "length", "content_filter", None]},
                    },
                },
            },
            "usage": _ref("Usage"),
        },
    },
    "TextCompletionEvent": {
        "type": "object",
        "description": (
            "One server-sent event of a streamed completion: a text_completion chunk per piece (the echoed prompt "
            "first, with echo), one with the finish reason, with stream_options.include_usage one with empty "
            "choices and the usage, then [DONE]; or an Error, and no [DONE], when it fails after it started."
        ),
        "required": ["data"],
        "properties": {"data": {"type": "string", "pattern": "^(\\[DONE\\]|\\{.*\\})$"}},
    },
}


def schemas(existing: Json) -> Json:
    """:data:`SCHEMAS`, plus the count request: the Messages request without a required ``max_tokens``."""
    messages = existing["MessagesRequest"]
    count = {**messages, "required": [f for f in messages.get("required", []) if f != "max_tokens"]}
    return {**SCHEMAS, "CountTokensRequest": count}


def paths(
    *, security: list[Json], steering: list[Json], answer_headers: Json, errors: Json, anthropic_errors: Json
) -> Json:
    """The path items, built with the document's shared pieces."""
    count_headers = {
        h: {"$ref": f"#/components/headers/{h}"} for h in ("x-request-id", "x-llm-model", "x-llm-token-count-source")
    }
    return {
        "/v1/messages/count_tokens": {
            "post": {
                "operationId": "countMessageTokens",
                "summary": "Input tokens of a Messages request: the provider's count where it has one, else estimated",
                "security": security,
                "parameters": steering,
                "requestBody": {"required": True, "content": {_JSON: {"schema": _ref("CountTokensRequest")}}},
                "responses": {
                    "200": {
                        "description": "The count; x-llm-token-count-source says who counted.",
                        "headers": count_headers,
                        "content": {_JSON: {"schema": _ref("MessageTokensCount")}},
                    },
                    **anthropic_errors,
                },
            }
        },
        "/v1/completions": {
            "post": {
                "operationId": "createCompletion",
                "summary": "Legacy text completion (prompt in, text out), answered by chat models, whole or streamed",
                "security": security,
                "parameters": steering,
                "requestBody": {"required": True, "content": {_JSON: {"schema": _ref("CompletionRequest")}}},
                "responses": {
                    "200": {
                        "description": "The completion (application/json), or its stream (text/event-stream).",
                        "headers": answer_headers,
                        "content": {
                            _JSON: {"schema": _ref("TextCompletion")},
                            _SSE: {"schema": _ref("TextCompletionEvent")},
                        },
                    },
                    **errors,
                },
            }
        },
    }
