"""Strict request types on the OpenAI and Anthropic surfaces, and the Host allow-list of an open gateway.

Driven over HTTP only (bodies in, status and error shape out), so these keep holding whatever validates the bodies
behind the routes. A value of the wrong JSON type is a 400 naming the field — never coerced (``"stream": "false"``
must not turn streaming on).
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from llm_manager.server.hosts import host_allowed, host_name
from tests.helpers import sim_settings
from tests.server.conftest import MODELS, Gateway, start_gateway

HELLO = [{"role": "user", "content": "hello"}]
CALL = {"id": "call_1", "type": "function", "function": {"name": "f", "arguments": "{}"}}
TOOL = {"type": "function", "function": {"name": "f", "parameters": {"type": "object", "properties": {}}}}


def _with_calls(*calls: Any) -> list[dict[str, Any]]:
    return [*HELLO, {"role": "assistant", "content": None, "tool_calls": list(calls)}]


OPENAI_CASES: list[tuple[dict[str, Any], str]] = [
    ({"stream": "false"}, "stream"),
    ({"stream": 1}, "stream"),
    ({"messages": _with_calls(1)}, "messages[1].tool_calls[0]"),
    (
        {"messages": _with_calls({**CALL, "function": {"name": "f", "arguments": {"a": 1}}})},
        "messages[1].tool_calls[0].function.arguments",
    ),
    ({"messages": _with_calls({**CALL, "function": {"arguments": "{}"}})}, "messages[1].tool_calls[0].function.name"),
    ({"messages": _with_calls({**CALL, "id": 7})}, "messages[1].tool_calls[0].id"),
    ({"messages": [*HELLO, {"role": "assistant", "content": "", "tool_calls": {"id": "x"}}]}, "messages[1].tool_calls"),
    ({"n": True}, "n"),
    ({"max_tokens": "10"}, "max_tokens"),
    ({"max_tokens": 10.5}, "max_tokens"),
    ({"max_completion_tokens": True}, "max_completion_tokens"),
    ({"temperature": "0.5"}, "temperature"),
    ({"top_p": False}, "top_p"),
    ({"stop": 5}, "stop"),
    ({"stop": ["ok", 1]}, "stop"),
    ({"user": 5}, "user"),
    ({"stream": True, "stream_options": {"include_usage": "yes"}}, "stream_options.include_usage"),
    ({"stream_options": []}, "stream_options"),
    (
        {"response_format": {"type": "json_schema", "json_schema": {"name": "o", "schema": {}, "strict": "false"}}},
        "response_format.json_schema.strict",
    ),
    (
        {"response_format": {"type": "json_schema", "json_schema": {"name": 3, "schema": {}}}},
        "response_format.json_schema.name",
    ),
    ({"tools": [{**TOOL, "function": {**TOOL["function"], "strict": "false"}}]}, "tools[0].function"),
    ({"tools": [TOOL], "parallel_tool_calls": "true"}, "parallel_tool_calls"),
]


@pytest.mark.parametrize(("change", "field"), OPENAI_CASES, ids=[f for _, f in OPENAI_CASES])
def test_openai_wrong_types_are_a_400_naming_the_field(gateway: Gateway, change: dict[str, Any], field: str) -> None:
    body = {"model": "gpt", "messages": HELLO, **change}
    resp = httpx.post(f"{gateway.url}/v1/chat/completions", json=body, timeout=10)
    assert resp.status_code == 400, resp.text
    error = resp.json()["error"]
    assert error["param"] == field and error["message"].startswith(field), error
    assert error["type"] == "invalid_request_error"


def test_openai_stream_false_is_not_a_stream(gateway: Gateway) -> None:
    resp = httpx.post(f"{gateway.url}/v1/chat/completions", json={"model": "gpt", "messages": HELLO, "stream": False})
    assert resp.status_code == 200 and resp.headers["content-type"] == "application/json"
    assert resp.json()["object"] == "chat.completion"


def test_openai_well_typed_tool_history_is_accepted(gateway: Gateway) -> None:
    messages = [*_with_calls(CALL), {"role": "tool", "tool_call_id": "call_1", "content": "42"}]
    body = {"model": "gpt", "messages": messages, "tools": [TOOL], "max_tokens": 20, "stop": "x", "n": 1}
    resp = httpx.post(f"{gateway.url}/v1/chat/completions", json=body, timeout=10)
    assert resp.status_code == 200, resp.text


ANTHROPIC_CASES: list[tuple[dict[str, Any], str]] = [
    ({"stream": "false"}, "stream"),
    ({"top_p": "0.5"}, "top_p"),
    ({"metadata": {"user_id": 5}}, "metadata.user_id"),
    (
        {
            "tools": [{"name": "f", "input_schema": {"type": "object"}}],
            "tool_choice": {"type": "auto", "disable_parallel_tool_use": "yes"},
        },
        "tool_choice.disable_parallel_tool_use",
    ),
    ({"tools": [{"name": "f", "input_schema": "object"}]}, "tools.0"),
    (
        {
            "messages": [
                *HELLO,
                {"role": "assistant", "content": [{"type": "tool_use", "id": "t1", "name": "f", "input": {}}]},
                {
                    "role": "user",
                    "content": [{"type": "tool_result", "tool_use_id": "t1", "content": "x", "is_error": "true"}],
                },
            ]
        },
        "messages.2.content.0.is_error",
    ),
]


@pytest.mark.parametrize(("change", "field"), ANTHROPIC_CASES, ids=[f for _, f in ANTHROPIC_CASES])
def test_anthropic_wrong_types_are_a_400_naming_the_field(gateway: Gateway, change: dict[str, Any], field: str) -> None:
    body = {"model": "claude", "max_tokens": 20, "messages": HELLO, **change}
    resp = httpx.post(f"{gateway.url}/v1/messages", json=body, timeout=10)
    assert resp.status_code == 400, resp.text
    error = resp.json()["error"]
    assert error["type"] == "invalid_request_error" and error["message"].startswith(field), error


def test_anthropic_stream_false_is_not_a_stream(gateway: Gateway) -> None:
    body = {"model": "claude", "max_tokens": 20, "messages": HELLO, "stream": False}
    resp = httpx.post(f"{gateway.url}/v1/messages", json=body, timeout=10)
    assert resp.status_code == 200 and resp.json()["type"] == "message"


# -- Host allow-list -------------------------------------------------------------------------------------------------


@pytest.fixture
def listed_gateway() -> Iterator[Gateway]:
    """An open gateway whose allow-list adds one name and one domain to the loopback names."""
    settings = sim_settings({k: dict(v) for k, v in MODELS.items()})
    settings.gateway.allowed_hosts = [*settings.gateway.allowed_hosts, "llm.internal", ".corp.example"]
    yield from start_gateway(settings)


def _chat(gw: Gateway, host: str | None) -> httpx.Response:
    headers = {"host": host} if host is not None else {}
    return httpx.post(
        f"{gw.url}/v1/chat/completions", json={"model": "gpt", "messages": HELLO}, headers=headers, timeout=10
    )


@pytest.mark.parametrize(
    "host", ["localhost:4000", "127.0.0.1", "[::1]:4000", "LOCALHOST.", "llm.internal:80", "a.corp.example"]
)
def test_an_open_gateway_answers_allowed_hosts(listed_gateway: Gateway, host: str) -> None:
    assert _chat(listed_gateway, host).status_code == 200


@pytest.mark.parametrize("host", ["evil.example", "evil.example:4000", "localhost.evil.example", "corp.example.evil"])
def test_an_open_gateway_refuses_other_hosts_on_every_protected_route(listed_gateway: Gateway, host: str) -> None:
    resp = _chat(listed_gateway, host)
    assert resp.status_code == 403 and resp.json()["error"]["code"] == "host_not_allowed"
    assert "gateway.allowed_hosts" in resp.json()["error"]["message"]
    body = {"model": "claude", "max_tokens": 20, "messages": HELLO}
    msgs = httpx.post(f"{listed_gateway.url}/v1/messages", json=body, headers={"host": host})
    assert msgs.status_code == 403 and msgs.json()["error"]["type"] == "permission_error"
    for path in ("/v1/models", "/admin/status", "/admin/requests"):
        assert httpx.get(f"{listed_gateway.url}{path}", headers={"host": host}).status_code == 403, path
    for path in ("/health", "/health/ready", "/metrics", "/openapi.json"):  # probes and scrapers use any address
        assert httpx.get(f"{listed_gateway.url}{path}", headers={"host": host}).status_code == 200, path


def test_default_allows_only_loopback_names(gateway: Gateway) -> None:
    assert _chat(gateway, "127.0.0.1:9").status_code == 200
    assert _chat(gateway, "llm.internal").status_code == 403


def test_a_star_allows_any_host() -> None:
    settings = sim_settings({k: dict(v) for k, v in MODELS.items()})
    settings.gateway.allowed_hosts = ["*"]
    for gw in start_gateway(settings):
        assert _chat(gw, "anything.example").status_code == 200


def test_with_keys_the_host_is_not_checked(gateway: Gateway) -> None:
    from llm_manager.server import keys

    async def create(llm: Any) -> str:
        return (await keys.create_key(await llm.database(), "ci"))[1]

    secret = gateway.run(create)
    resp = httpx.post(
        f"{gateway.url}/v1/chat/completions",
        json={"model": "gpt", "messages": HELLO},
        headers={"host": "gateway.example", "authorization": f"Bearer {secret}"},
    )
    assert resp.status_code == 200, resp.text


def test_host_names() -> None:
    assert (
        host_name("[::1]:8080") == "::1" and host_name("::1") == "::1" and host_name("Example.COM.:1") == "example.com"
    )
    assert host_allowed(None, []) and not host_allowed("", ["localhost"])
