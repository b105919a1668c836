"""The published OpenAPI document: valid OpenAPI 3.1, and exactly the gateway's routes."""

from __future__ import annotations

import re

import httpx
import schemathesis
from openapi_spec_validator import validate
from starlette.routing import Route

from llm_manager.server import create_app
from tests.server.conftest import Gateway


def test_every_route_is_documented_and_nothing_else(gateway: Gateway) -> None:
    served = set()
    for route in create_app(gateway.llm).routes:
        assert isinstance(route, Route), f"{route!r}: describe it in server/openapi.py and extend this test"
        path = re.sub(r":\w+}", "}", route.path)  # {model_id:path} is {model_id} in OpenAPI
        served |= {(path, m.lower()) for m in route.methods or () if m != "HEAD"}
    doc = httpx.get(f"{gateway.url}/openapi.json").json()
    documented = {(path, method) for path, ops in doc["paths"].items() for method in ops}
    assert served - documented == set(), "routes missing from the OpenAPI document (server/openapi.py)"
    assert documented - served == set(), "the OpenAPI document describes routes the gateway does not serve"


def test_the_document_is_valid_openapi_3_1(gateway: Gateway) -> None:
    resp = httpx.get(f"{gateway.url}/openapi.json")  # open, like /health: no key needed even once keys exist
    assert resp.status_code == 200 and resp.headers["content-type"] == "application/json"
    doc = resp.json()
    assert doc["openapi"].startswith("3.1")
    validate(doc)  # raises with the offending path on any error
    schema = schemathesis.openapi.from_dict(doc)
    operations = [op.ok() for op in schema.get_all_operations()]
    assert {f"{op.method.upper()} {op.path}" for op in operations} >= {
        "POST /v1/chat/completions",
        "POST /v1/messages",
        "GET /health/ready",
        "GET /admin/requests",
    }
    chat = doc["paths"]["/v1/chat/completions"]["post"]
    body = doc["components"]["schemas"]["ChatCompletionRequest"]["properties"]
    assert {"messages", "stream", "stream_options", "response_format", "tools"} <= body.keys()
    assert {"x-llm-task", "x-llm-timeout"} <= {p["$ref"].rsplit("/", 1)[1] for p in chat["parameters"]}
    assert {"bearer", "apiKey"} == doc["components"]["securitySchemes"].keys()
