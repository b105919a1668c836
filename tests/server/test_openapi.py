"""The published OpenAPI document: valid OpenAPI 3.1, and exactly the gateway's routes."""

from __future__ import annotations

import re

import httpx
import schemathesis
from openapi_spec_validator import validate
from starlette.routing import Route

from llm_manager.server import create_app
from llm_manager.server.openapi import CODEC_ROUTES
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


def test_codec_routes_are_described_by_their_codecs_models(gateway: Gateway) -> None:
    """Generated, not written by hand: a codec route's request, answer and events are its wire models' schemas."""
    doc = httpx.get(f"{gateway.url}/openapi.json").json()
    schemas = doc["components"]["schemas"]
    for route in CODEC_ROUTES:
        op = doc["paths"][route.path]["post"]
        assert op["requestBody"]["content"]["application/json"]["schema"]["$ref"].endswith(f"/{route.request.__name__}")
        if route.schemas is not None:  # the codec names its shapes its own way
            assert all(schemas[name] == schema for name, schema in route.schemas().items())
            continue
        for model in route.schema_models():
            generated = model.model_json_schema(ref_template="#/components/schemas/{model}")
            generated.pop("$defs", None)
            assert schemas[model.__name__] == generated, model.__name__
    # what clients send beyond text is described: image, audio and file parts; Anthropic image and document blocks
    user_parts = {
        ref["$ref"].rsplit("/", 1)[1]
        for ref in schemas["UserMessage"]["properties"]["content"]["anyOf"][1]["items"]["oneOf"]
    }
    assert {"TextContent", "ImageContent", "AudioContent", "FileContent"} == user_parts
    assert {"seed", "logprobs", "reasoning_effort", "prediction"} <= schemas["ChatCompletionRequest"][
        "properties"
    ].keys()
    assert {"thinking", "top_k"} <= schemas["MessagesRequest"]["properties"].keys()
