"""The hand-described part of the gateway's OpenAPI document: the routes no codec speaks (models, health, metrics,
admin, the dashboard, the document itself), their schemas, and what every route shares (parameters, headers, error
replies). The codec routes' schemas are generated from the codecs' models: see :mod:`llm_manager.server.openapi`.
"""

from __future__ import annotations

from typing import Any

from llm_manager.types import TASK_NAME_PATTERN, TASK_TYPES

__all__ = [
    "ANSWER_HEADERS",
    "HEADERS",
    "JSON",
    "KEYED",
    "PARAMETERS",
    "PATHS",
    "SCHEMAS",
    "SSE",
    "Json",
    "generation_errors",
    "header",
    "ref",
    "steering",
]

Json = dict[str, Any]

JSON = "application/json"
SSE = "text/event-stream"


def ref(name: str) -> Json:
    return {"$ref": f"#/components/schemas/{name}"}


def _param(name: str) -> Json:
    return {"$ref": f"#/components/parameters/{name}"}


def header(name: str) -> Json:
    return {"$ref": f"#/components/headers/{name}"}


def _error(description: str, *headers: str) -> Json:
    out: Json = {"description": description, "content": {JSON: {"schema": ref("Error")}}}
    if headers:
        out["headers"] = {h: header(h) for h in headers}
    return out


def _anthropic_error(description: str, *headers: str) -> Json:
    out: Json = {"description": description, "content": {JSON: {"schema": ref("AnthropicError")}}}
    if headers:
        out["headers"] = {h: header(h) for h in headers}
    return out


def _ok(schema: Json, description: str = "OK", media: str = JSON) -> Json:
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


def generation_errors(anthropic: bool = False) -> Json:
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
KEYED: list[Json] = [{"bearer": []}, {"apiKey": []}, {}]


def steering() -> list[Json]:
    names = ("x-llm-task", "x-llm-user", "x-llm-project", "x-llm-cache", "x-llm-timeout", "x-llm-max-prompt-tokens")
    return [_param(p) for p in names]


SCHEMAS: Json = {
    "ModelList": {
        "type": "object",
        "required": ["object", "data"],
        "properties": {"object": {"const": "list"}, "data": {"type": "array", "items": ref("Model")}},
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
                "items": ref("BudgetForecast"),
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

PARAMETERS: Json = {
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

HEADERS: Json = {
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
    "x-llm-confidence": {
        "description": "exp(mean token logprob) of the answer, 0 to 1; only on whole answers whose request asked "
        "for logprobs and whose model returned them",
        "schema": {"type": "string", "pattern": "^[01]\\.[0-9]{4}$"},
    },
    "x-llm-cache-similarity": {
        "description": "with x-llm-cache: semantic, the similarity of the cached prompt that answered",
        "schema": {"type": "string", "pattern": "^[0-9.]+$"},
    },
    "x-llm-attempts": {"description": "provider calls made", "schema": {"type": "string", "pattern": "^[0-9]+$"}},
    "retry-after": {"description": "seconds to wait before retrying", "schema": {"type": "string"}},
    "retry-after-ms": {"description": "milliseconds to wait before retrying", "schema": {"type": "string"}},
    "x-should-retry": {
        "description": "false once the gateway has spent its own retries and fallbacks",
        "schema": {"enum": ["true", "false"]},
    },
}

ANSWER_HEADERS = {
    h: header(h)
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

PATHS: Json = {
    "/v1/responses/{response_id}": {
        "get": {
            "operationId": "getResponse",
            "summary": "A stored response (only to the gateway key that created it)",
            "security": KEYED,
            "parameters": [_param("response_id")],
            "responses": {"200": _ok(ref("ResponseObject")), **_STORED_ERRORS},
        },
        "delete": {
            "operationId": "deleteResponse",
            "summary": "Delete a stored response",
            "security": KEYED,
            "parameters": [_param("response_id")],
            "responses": {"200": _ok(ref("DeletedResponse")), **_STORED_ERRORS},
        },
    },
    "/v1/responses/{response_id}/input_items": {
        "get": {
            "operationId": "listResponseInputItems",
            "summary": "The input items a stored response answered (its whole conversation)",
            "security": KEYED,
            "parameters": [
                _param("response_id"),
                {"name": "limit", "in": "query", "schema": {"type": "integer", "minimum": 1, "maximum": 100}},
                {"name": "order", "in": "query", "schema": {"enum": ["asc", "desc"]}},
                {"name": "after", "in": "query", "schema": {"type": "string"}},
            ],
            "responses": {
                "200": _ok(ref("InputItemList")),
                "400": _error("limit or order is invalid."),
                **_STORED_ERRORS,
            },
        }
    },
    "/v1/models": {
        "get": {
            "operationId": "listModels",
            "summary": "Deployments, aliases and task:<type> pseudo-models",
            "security": KEYED,
            "responses": {"200": _ok(ref("ModelList")), **_AUTH_ERRORS},
        }
    },
    "/v1/models/{model_id}": {
        "get": {
            "operationId": "retrieveModel",
            "summary": "One model object (its id may hold slashes: openrouter/x)",
            "security": KEYED,
            "parameters": [{"name": "model_id", "in": "path", "required": True, "schema": {"type": "string"}}],
            "responses": {
                "200": _ok(ref("Model")),
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
            "responses": {"200": _ok(ref("Status"))},
        }
    },
    "/health/ready": {
        "get": {
            "operationId": "ready",
            "summary": "Readiness: the store is reachable and the gateway is not draining",
            "security": [],
            "responses": {
                "200": _ok(ref("Status")),
                "503": _ok(ref("Status"), "Not ready: the store cannot be reached, or the gateway is shutting down."),
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
            "security": KEYED,
            "responses": {"200": _ok(ref("AdminStatus")), **_ADMIN_ERRORS},
        }
    },
    "/admin/costs": {
        "get": {
            "operationId": "adminCosts",
            "summary": "Spend from the ledger, grouped",
            "security": KEYED,
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
            "responses": {"200": _ok(ref("AdminCosts")), **_ADMIN_ERRORS},
        }
    },
    "/admin/requests": {
        "get": {
            "operationId": "adminRequests",
            "summary": "Recent requests, newest first, each with its attempts",
            "security": KEYED,
            "parameters": [
                {"name": "limit", "in": "query", "schema": {"type": "integer", "minimum": 1, "maximum": 500}},
                {"name": "offset", "in": "query", "schema": {"type": "integer", "minimum": 0}},
                _param("since"),
            ],
            "responses": {"200": _ok(ref("AdminRequests")), **_ADMIN_ERRORS},
        }
    },
    "/admin/timeseries": {
        "get": {
            "operationId": "adminTimeseries",
            "summary": "Requests, errors, latency and cost per time bucket (the dashboard's charts)",
            "security": KEYED,
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
            "responses": {"200": _ok(ref("AdminTimeseries")), **_ADMIN_ERRORS},
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
