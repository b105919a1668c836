"""``POST /v1/messages/count_tokens`` through the official ``anthropic`` SDK: the provider's own count for Anthropic
and Gemini deployments (checked on the wire of loopback fakes), our estimate elsewhere, and which one it was in
``x-llm-token-count-source``; plus the Anthropic surface's unknown paths answered in Anthropic's error shape."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from typing import Any

import anthropic
import httpx
import pytest
from anthropic.types import MessageParam

from llm_manager.config import load_settings
from llm_manager.manager import LLMManager
from llm_manager.server.keys import create_key
from llm_manager.tokens import estimate_prompt_tokens
from tests.fakes.server import FakeUpstream, Reply, serve_in_thread
from tests.server.conftest import Gateway, start_gateway

HI: list[MessageParam] = [{"role": "user", "content": "How many tokens is this?"}]
WEATHER: Any = {
    "name": "get_weather",
    "description": "Current weather for a city",
    "input_schema": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]},
}


@dataclass
class Rig:
    gateway: Gateway
    ups: dict[str, FakeUpstream]

    def client(self, api_key: str = "x") -> anthropic.Anthropic:
        return anthropic.Anthropic(base_url=self.gateway.url, api_key=api_key, max_retries=0, timeout=10)


@pytest.fixture(scope="module")
def rig() -> Iterator[Rig]:
    with ExitStack() as stack:
        ups = {name: stack.enter_context(serve_in_thread(FakeUpstream())) for name in ("gpt", "claude", "gemini")}
        settings = load_settings(
            {
                "models": {
                    "gpt": {"provider": "openai-compatible", "base_url": f"{ups['gpt'].url}/v1", "model": "gpt-4o"},
                    "claude": {
                        "provider": "anthropic",
                        "base_url": ups["claude"].url,
                        "model": "claude-sonnet-4-5",
                        "api_key": "sk-ant",
                        "aliases": ["smart"],
                    },
                    "gemini": {
                        "provider": "gemini",
                        "base_url": f"{ups['gemini'].url}/v1beta",
                        "model": "gemini-2.5-flash",
                        "api_key": "g-key",
                    },
                },
                "routing": {"max_retries": 0, "tasks": {"analysis": ["gemini", "claude"], "general": ["gpt"]}},
                "cache": {"enabled": False},
            },
            env={},
        )
        gateway = stack.enter_context(contextmanager(start_gateway)(settings))
        yield Rig(gateway, ups)


@pytest.fixture
def fresh(rig: Rig) -> Rig:
    for up in rig.ups.values():
        up.requests.clear()
        up.queue.clear()
    return rig


def test_an_anthropic_deployment_counts_with_anthropics_endpoint(fresh: Rig) -> None:
    fresh.ups["claude"].push(Reply.json({"input_tokens": 1234}))
    with fresh.client() as c:
        raw = c.messages.with_raw_response.count_tokens(
            model="smart", system="Be brief.", messages=HI, tools=[WEATHER], tool_choice={"type": "auto"}
        )
    assert raw.parse().input_tokens == 1234
    assert raw.headers["x-llm-token-count-source"] == "provider" and raw.headers["x-llm-model"] == "claude"
    assert raw.headers["request-id"] == raw.headers["x-request-id"]
    (sent,) = fresh.ups["claude"].requests
    assert (sent.method, sent.path) == ("POST", "/v1/messages/count_tokens")
    assert sent.headers["x-api-key"] == "sk-ant" and sent.headers["anthropic-version"]
    body = sent.json
    assert body["model"] == "claude-sonnet-4-5" and body["system"] == "Be brief."
    assert body["messages"] == [{"role": "user", "content": "How many tokens is this?"}]
    assert [t["name"] for t in body["tools"]] == ["get_weather"] and body["tool_choice"] == {"type": "auto"}
    assert "max_tokens" not in body and "stream" not in body  # count_tokens refuses them


def test_a_gemini_deployment_counts_with_count_tokens(fresh: Rig) -> None:
    fresh.ups["gemini"].push(Reply.json({"totalTokens": 77, "promptTokensDetails": []}))
    with fresh.client() as c:
        raw = c.messages.with_raw_response.count_tokens(model="task:analysis", system="Be brief.", messages=HI)
    assert raw.parse().input_tokens == 77
    assert raw.headers["x-llm-token-count-source"] == "provider" and raw.headers["x-llm-model"] == "gemini"
    (sent,) = fresh.ups["gemini"].requests
    assert sent.path == "/v1beta/models/gemini-2.5-flash:countTokens" and sent.headers["x-goog-api-key"] == "g-key"
    inner = sent.json["generateContentRequest"]
    assert inner["model"] == "models/gemini-2.5-flash"
    assert inner["contents"] == [{"role": "user", "parts": [{"text": "How many tokens is this?"}]}]
    assert inner["systemInstruction"] == {"parts": [{"text": "Be brief."}]}


def test_an_openai_deployment_is_estimated_and_says_so(fresh: Rig) -> None:
    with fresh.client() as c:
        raw = c.messages.with_raw_response.count_tokens(model="gpt", messages=HI)
    estimate = fresh.gateway.llm.request(messages=[dict(m) for m in HI]).model_copy()
    assert raw.parse().input_tokens == estimate_prompt_tokens(estimate)
    assert raw.headers["x-llm-token-count-source"] == "estimate" and raw.headers["x-llm-model"] == "gpt"
    assert fresh.ups["gpt"].requests == []  # OpenAI has no counting endpoint: nothing was sent


def test_a_failed_provider_count_falls_back_to_the_estimate(fresh: Rig) -> None:
    fresh.ups["claude"].push(Reply.error(500, {"type": "error", "error": {"type": "api_error", "message": "boom"}}))
    with fresh.client() as c:
        raw = c.messages.with_raw_response.count_tokens(model="claude", messages=HI)
    assert raw.headers["x-llm-token-count-source"] == "estimate" and raw.parse().input_tokens > 0
    assert len(fresh.ups["claude"].requests) == 1


def test_the_library_counts_the_same_way(fresh: Rig) -> None:
    fresh.ups["claude"].push(Reply.json({"input_tokens": 42}))

    async def count(llm: LLMManager) -> Any:
        return await llm.count_tokens("hello", model="claude"), await llm.count_tokens("hello", model="gpt")

    counted, estimated = fresh.gateway.run(count)
    assert (counted.input_tokens, counted.source, counted.deployment, counted.model) == (
        42,
        "provider",
        "claude",
        "claude-sonnet-4-5",
    )
    assert (estimated.source, estimated.deployment) == ("estimate", "gpt") and estimated.input_tokens > 0


def test_errors_are_anthropic_shaped(fresh: Rig) -> None:
    with fresh.client() as c:
        with pytest.raises(anthropic.NotFoundError) as missing:
            c.messages.count_tokens(model="nope", messages=HI)
        assert missing.value.body["error"]["type"] == "not_found_error"  # type: ignore[index]
        with pytest.raises(anthropic.BadRequestError) as bad:
            c.messages.count_tokens(model="claude", messages=[])
        assert "messages" in bad.value.message


def test_a_key_limited_to_other_models_is_refused(fresh: Rig) -> None:
    async def make(llm: LLMManager) -> tuple[str, str]:
        return await create_key(await llm.database(), "counter", models=["gpt"])

    _, secret = fresh.gateway.run(make)
    try:
        with fresh.client(secret) as c:
            assert c.messages.count_tokens(model="gpt", messages=HI).input_tokens > 0
            with pytest.raises(anthropic.PermissionDeniedError):
                c.messages.count_tokens(model="claude", messages=HI)
        with fresh.client("wrong") as c, pytest.raises(anthropic.AuthenticationError):
            c.messages.count_tokens(model="gpt", messages=HI)
    finally:

        async def revoke_all(llm: LLMManager) -> None:
            from llm_manager.server.keys import list_keys, revoke_key

            db = await llm.database()
            for key in await list_keys(db):
                await revoke_key(db, key.id)

        fresh.gateway.run(revoke_all)  # the module's other tests run against an open gateway


@pytest.mark.parametrize(
    ("method", "path", "status"),
    [("POST", "/v1/messages/batches", 404), ("GET", "/v1/messages/msg_1", 404), ("GET", "/v1/messages", 405)],
)
def test_unknown_paths_on_the_anthropic_surface_are_anthropic_shaped(
    rig: Rig, method: str, path: str, status: int
) -> None:
    r = httpx.request(method, f"{rig.gateway.url}{path}", json={})
    assert r.status_code == status
    body = r.json()
    assert body["type"] == "error" and body["error"]["type"] == (
        "not_found_error" if status == 404 else "invalid_request_error"
    )
    assert body["request_id"] == r.headers["request-id"]


def test_unknown_paths_elsewhere_stay_openai_shaped(rig: Rig) -> None:
    r = httpx.get(f"{rig.gateway.url}/v1/nope")
    assert r.status_code == 404 and r.json()["error"]["code"] == "not_found"
