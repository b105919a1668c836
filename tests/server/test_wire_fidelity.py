"""What a client sends reaches the upstream: the gateway decodes with the codecs, so content parts and every parameter
are translated to the answering deployment's protocol, passed through untouched when it speaks the client's own, or
named in ``x-llm-dropped-params`` — never silently dropped. Checked on the upstream's wire (loopback fakes recording
the bodies they receive), across protocols: OpenAI-shaped requests answered by Anthropic and Gemini deployments, an
Anthropic request with ``thinking`` answered by an OpenAI reasoning deployment.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from typing import Any

import httpx
import pytest

from llm_manager.config import load_settings
from tests.fakes import anthropic_wire, gemini_wire, openai_wire
from tests.fakes.server import FakeUpstream, Recorded, Reply, serve_in_thread
from tests.server.conftest import Gateway, start_gateway

PNG = b"\x89PNG\r\n\x1a\n" + b"\x00" * 16
PNG_URL = "data:image/png;base64," + base64.b64encode(PNG).decode()
FINGERPRINT_KEY = "system_fingerprint"


def _openai(req: Recorded) -> Reply:
    if req.json.get("stream"):
        return Reply.sse(openai_wire.stream_events(["Hel", "lo"]))
    return Reply.json(openai_wire.completion("Hello"))


def _anthropic(req: Recorded) -> Reply:
    if req.json.get("stream"):
        return Reply.sse(anthropic_wire.stream_events(["Hel", "lo"]))
    return Reply.json(anthropic_wire.message("Hello"))


def _gemini(_req: Recorded) -> Reply:
    return Reply.json(gemini_wire.response("Hello"))


@contextmanager
def _rig() -> Iterator[tuple[Gateway, dict[str, FakeUpstream]]]:
    with ExitStack() as stack:
        fakes = {"gpt": _openai, "o3": _openai, "claude": _anthropic, "gemini": _gemini}
        ups = {n: stack.enter_context(serve_in_thread(FakeUpstream(default=f))) for n, f in fakes.items()}
        models = {
            "gpt": {"provider": "openai-compatible", "base_url": f"{ups['gpt'].url}/v1", "model": "gpt-4o"},
            "o3": {"provider": "openai", "base_url": f"{ups['o3'].url}/v1", "model": "o3-mini"},
            "claude": {"provider": "anthropic", "base_url": ups["claude"].url, "model": "claude-sonnet-4-5"},
            "gemini": {"provider": "gemini", "base_url": f"{ups['gemini'].url}/v1beta", "model": "gemini-2.5-flash"},
        }
        for spec in models.values():
            spec["api_key"] = "k"
        settings = load_settings(
            {
                "models": models,
                "routing": {"tasks": {"general": ["gpt"]}, "max_retries": 0},
                "cache": {"enabled": False},
            },
            env={},
        )
        gateway = stack.enter_context(contextmanager(start_gateway)(settings))
        yield gateway, ups


@pytest.fixture(scope="module")
def rig() -> Iterator[tuple[Gateway, dict[str, FakeUpstream]]]:
    with _rig() as r:
        yield r


def _send(rig: tuple[Gateway, dict[str, FakeUpstream]], path: str, body: dict[str, Any]) -> tuple[httpx.Response, Any]:
    """POST ``body`` to the gateway's ``path``; its answer and the one body an upstream received for it."""
    gateway, ups = rig
    before = {n: len(u.requests) for n, u in ups.items()}
    resp = httpx.post(f"{gateway.url}{path}", json=body, timeout=10)
    assert resp.status_code == 200, resp.text
    (sent,) = [u.requests[-1].json for n, u in ups.items() if len(u.requests) > before[n]]
    return resp, sent


def _dropped(resp: httpx.Response) -> set[str]:
    header = resp.headers.get("x-llm-dropped-params", "")
    return set(header.split(",")) if header else set()


# -- same protocol: translated and passed through -------------------------------------------------------------------


def test_every_openai_parameter_reaches_an_openai_upstream(rig: Any) -> None:
    tool = {"type": "function", "function": {"name": "f", "parameters": {"type": "object", "properties": {}}}}
    body = {
        "model": "gpt",
        "messages": [
            {"role": "user", "content": [{"type": "text", "text": "Hello"}, {"type": "text", "text": "world"}]}
        ],
        "max_completion_tokens": None,
        "max_tokens": 20,
        "seed": 7,
        "stop": "END",
        "frequency_penalty": 0.5,
        "presence_penalty": -0.5,
        "logprobs": True,
        "top_logprobs": 2,
        "response_format": {"type": "json_object"},
        "tools": [tool],
        "parallel_tool_calls": False,
        "service_tier": "flex",
        "user": "u-1",
        "logit_bias": {"50256": -100},
        "prediction": {"type": "content", "content": "Hello world"},
        "verbosity": "low",
        "store": True,
        "metadata": {"team": "a"},
        "a_future_field": {"x": 1},
    }
    resp, sent = _send(rig, "/v1/chat/completions", body)
    assert sent["max_tokens"] == 20  # a null max_completion_tokens does not hide max_tokens
    assert sent["messages"][-1]["content"] == [{"type": "text", "text": "Hello"}, {"type": "text", "text": "world"}]
    for name in ("seed", "frequency_penalty", "presence_penalty", "logprobs", "top_logprobs", "parallel_tool_calls"):
        assert sent[name] == body[name], name
    assert sent["stop"] == ["END"] and sent["response_format"] == {"type": "json_object"}
    assert (sent["service_tier"], sent["user"]) == ("flex", "u-1")
    for name in ("logit_bias", "prediction", "verbosity", "store", "metadata", "a_future_field"):
        assert sent[name] == body[name], name  # passed through untouched
    assert "x-llm-dropped-params" not in resp.headers
    answer = resp.json()
    assert answer["id"].startswith("chatcmpl-") and answer[FINGERPRINT_KEY] == openai_wire.FINGERPRINT
    assert "logprobs" in answer["choices"][0] and answer["choices"][0]["logprobs"] is None


def test_anthropic_thinking_top_k_and_cache_marks_reach_an_anthropic_upstream(rig: Any) -> None:
    system = [{"type": "text", "text": "You are terse.", "cache_control": {"type": "ephemeral"}}]
    content = [
        {"type": "text", "text": "Describe", "cache_control": {"type": "ephemeral"}},
        {
            "type": "image",
            "source": {"type": "base64", "media_type": "image/png", "data": base64.b64encode(PNG).decode()},
        },
    ]
    body = {
        "model": "claude",
        "max_tokens": 4000,
        "system": system,
        "messages": [{"role": "user", "content": content}],
        "thinking": {"type": "enabled", "budget_tokens": 2048},
        "top_k": 5,
        "metadata": {"user_id": "u-2"},
        "container": "c-1",
    }
    resp, sent = _send(rig, "/v1/messages", body)
    assert sent["system"] == system and sent["messages"][0]["content"] == content
    assert sent["thinking"] == {"type": "enabled", "budget_tokens": 2048}
    assert sent["metadata"] == {"user_id": "u-2"} and sent["container"] == "c-1"
    assert "top_k" not in sent and _dropped(resp) == {"top_k"}  # extended thinking forbids top_k: said so
    message = resp.json()
    assert message["id"].startswith("msg_") and resp.headers["request-id"].startswith("req_")


# -- across protocols -----------------------------------------------------------------------------------------------


def _image_question(model: str, **params: Any) -> dict[str, Any]:
    parts = [{"type": "text", "text": "What is this?"}, {"type": "image_url", "image_url": {"url": PNG_URL}}]
    return {"model": model, "messages": [{"role": "user", "content": parts}], **params}


def test_an_openai_image_request_answered_by_anthropic(rig: Any) -> None:
    body = _image_question("claude", max_tokens=3000, reasoning_effort="low", seed=1)
    body["prediction"] = {"type": "content", "content": "x"}
    resp, sent = _send(rig, "/v1/chat/completions", body)
    (turn,) = sent["messages"]
    assert turn["content"][0] == {"type": "text", "text": "What is this?"}
    assert turn["content"][1] == {
        "type": "image",
        "source": {"type": "base64", "media_type": "image/png", "data": base64.b64encode(PNG).decode()},
    }
    assert sent["thinking"] == {"type": "enabled", "budget_tokens": 2048}  # effort low is a 2,048-token budget
    assert "seed" not in sent and "prediction" not in sent
    assert _dropped(resp) == {"seed", "prediction"}
    assert resp.json()["choices"][0]["message"]["content"] == "Hello"


def test_an_openai_image_request_answered_by_gemini(rig: Any) -> None:
    body = _image_question("gemini", max_tokens=50, response_format={"type": "json_object"}, top_k=4)
    body["logit_bias"] = {"1": 1}
    resp, sent = _send(rig, "/v1/chat/completions", body)
    parts = sent["contents"][0]["parts"]
    assert parts[0] == {"text": "What is this?"}
    assert parts[1] == {"inlineData": {"mimeType": "image/png", "data": base64.b64encode(PNG).decode()}}
    config = sent["generationConfig"]
    assert (config["maxOutputTokens"], config["topK"], config["responseMimeType"]) == (50, 4, "application/json")
    assert _dropped(resp) == {"logit_bias"}


def test_an_anthropic_thinking_request_answered_by_an_openai_reasoning_deployment(rig: Any) -> None:
    body = {
        "model": "o3",
        "max_tokens": 5000,
        "messages": [{"role": "user", "content": "Think, then answer."}],
        "thinking": {"type": "enabled", "budget_tokens": 10000},
        "top_k": 3,
        "temperature": 0.2,
    }
    resp, sent = _send(rig, "/v1/messages", body)
    assert sent["reasoning_effort"] == "high"  # a budget above 8,192 tokens is effort high
    assert sent["max_completion_tokens"] == 5000 and "max_tokens" not in sent
    assert "temperature" not in sent and "top_k" not in sent
    assert _dropped(resp) == {"temperature", "top_k"}
    assert resp.json()["content"][0] == {"type": "text", "text": "Hello"}


def test_a_stream_names_what_was_dropped_in_its_headers(rig: Any) -> None:
    gateway, ups = rig
    body = {
        "model": "claude",
        "max_tokens": 100,
        "stream": True,
        "messages": [{"role": "user", "content": "hi"}],
        "prediction": {"type": "content", "content": "x"},
        "logprobs": True,
    }
    with httpx.stream("POST", f"{gateway.url}/v1/chat/completions", json=body, timeout=10) as resp:
        assert resp.status_code == 200
        assert _dropped(resp) == {"prediction", "logprobs"}
        chunks = [json.loads(line[6:]) for line in resp.iter_lines() if line.startswith("data: {")]
    assert "".join(c["choices"][0]["delta"].get("content") or "" for c in chunks if c["choices"]) == "Hello"
    assert all(c["id"].startswith("chatcmpl-") for c in chunks)
    assert "prediction" not in ups["claude"].requests[-1].json
