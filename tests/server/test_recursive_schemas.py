"""Recursive and union JSON schemas sent to a simulated model through the gateway: a valid answer when one exists,
a 400 naming the field when none does — never a 500 (the generator's recursion is bounded)."""

from __future__ import annotations

import json
import time
from typing import Any

import httpx
import jsonschema
import pytest

from llm_manager.errors import InvalidRequestError
from llm_manager.providers._fake_json import UnsatisfiableSchemaError, fake_from_schema
from tests.server.conftest import Gateway

NODE = {"type": "object", "properties": {"value": {"type": "string"}, "child": {"$ref": "#/$defs/Node"}}}
SATISFIABLE: dict[str, dict[str, Any]] = {
    "optional self-reference": {"$defs": {"Node": {**NODE, "required": ["value"]}}, "$ref": "#/$defs/Node"},
    "anyOf listing itself first": {
        "$defs": {"A": {"anyOf": [{"$ref": "#/$defs/A"}, {"type": "string"}]}},
        "type": "object",
        "properties": {"a": {"$ref": "#/$defs/A"}},
        "required": ["a"],
    },
    "reference to the root": {
        "type": "object",
        "properties": {"next": {"anyOf": [{"$ref": "#"}, {"type": "null"}]}, "n": {"type": "integer"}},
        "required": ["next", "n"],
    },
    "tree of required arrays": {
        "$defs": {
            "T": {
                "type": "object",
                "properties": {"kids": {"type": "array", "items": {"$ref": "#/$defs/T"}}, "name": {"type": "string"}},
                "required": ["name", "kids"],
            }
        },
        "$ref": "#/$defs/T",
    },
}
UNSATISFIABLE: dict[str, dict[str, Any]] = {
    "required self-reference": {"$defs": {"Node": {**NODE, "required": ["child"]}}, "$ref": "#/$defs/Node"},
    "union of only itself": {
        "$defs": {"N": {"anyOf": [{"$ref": "#/$defs/N"}, {"$ref": "#/$defs/N"}]}},
        "$ref": "#/$defs/N",
    },
}


def _valid(value: Any, schema: dict[str, Any]) -> None:
    if schema is SATISFIABLE["anyOf listing itself first"]:
        # jsonschema itself loops on a union whose first branch is itself; its least fixed point is "a string"
        assert isinstance(value["a"], str)
    else:
        jsonschema.validate(value, schema)


def _ask(gw: Gateway, schema: dict[str, Any], stream: bool = False) -> httpx.Response:
    body = {
        "model": "gpt",
        "messages": [{"role": "user", "content": "a structure, please"}],
        "response_format": {"type": "json_schema", "json_schema": {"name": "out", "schema": schema}},
        "stream": stream,
    }
    return httpx.post(f"{gw.url}/v1/chat/completions", json=body, timeout=10)


@pytest.mark.parametrize("name", list(SATISFIABLE))
def test_a_recursive_schema_that_has_a_finite_value_is_answered(gateway: Gateway, name: str) -> None:
    schema = SATISFIABLE[name]
    resp = _ask(gateway, schema)
    assert resp.status_code == 200, resp.text
    _valid(json.loads(resp.json()["choices"][0]["message"]["content"]), schema)


@pytest.mark.parametrize("name", list(UNSATISFIABLE))
@pytest.mark.parametrize("stream", [False, True], ids=["whole", "stream"])
def test_a_schema_no_finite_value_satisfies_is_a_400_naming_the_field(
    gateway: Gateway, name: str, stream: bool
) -> None:
    t0 = time.monotonic()
    resp = _ask(gateway, UNSATISFIABLE[name], stream)
    assert resp.status_code == 400, resp.text
    error = resp.json()["error"]
    assert error["message"].startswith("response_format.json_schema: the schema cannot be satisfied")
    assert time.monotonic() - t0 < 2


def test_recursive_tool_parameters_are_filled_in_or_refused(gateway: Gateway) -> None:
    def call(parameters: dict[str, Any]) -> httpx.Response:
        body = {
            "model": "gpt",
            "messages": [{"role": "user", "content": "build it"}],
            "tools": [{"type": "function", "function": {"name": "build", "parameters": parameters}}],
            "tool_choice": "required",
        }
        return httpx.post(f"{gateway.url}/v1/chat/completions", json=body, timeout=10)

    ok = call(SATISFIABLE["optional self-reference"])
    assert ok.status_code == 200, ok.text
    args = json.loads(ok.json()["choices"][0]["message"]["tool_calls"][0]["function"]["arguments"])
    jsonschema.validate(args, SATISFIABLE["optional self-reference"])
    refused = call(UNSATISFIABLE["required self-reference"])
    assert refused.status_code == 400 and refused.json()["error"]["message"].startswith("tools.build:")


@pytest.mark.parametrize("name", list(SATISFIABLE))
def test_generated_values_validate(name: str) -> None:
    for seed in ("a", "b", "c"):
        _valid(fake_from_schema(SATISFIABLE[name], seed), SATISFIABLE[name])


def test_unsatisfiable_schemas_are_refused_quickly() -> None:
    for schema in UNSATISFIABLE.values():
        t0 = time.perf_counter()
        with pytest.raises(UnsatisfiableSchemaError):
            fake_from_schema(schema, "seed")
        assert time.perf_counter() - t0 < 0.5


async def test_the_library_refuses_a_schema_no_validator_can_evaluate() -> None:
    from llm_manager import LLMManager
    from llm_manager.errors import ConfigError
    from tests.helpers import sim_settings

    async with LLMManager(sim_settings({"m": {"family": "gpt"}})) as llm:
        with pytest.raises(ConfigError, match="refers to itself without end"):
            await llm.query_with_schema("x", SATISFIABLE["anyOf listing itself first"])
        with pytest.raises(InvalidRequestError, match="response_format.json_schema: the schema cannot be satisfied"):
            await llm.query_with_schema("x", UNSATISFIABLE["required self-reference"])
        tree = await llm.query_with_schema("x", SATISFIABLE["tree of required arrays"])
        jsonschema.validate(tree, SATISFIABLE["tree of required arrays"])
