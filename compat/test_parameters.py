"""Parameters reach the upstream: translated for the answering deployment's protocol, passed through untouched when it
speaks the client's own, or named in ``x-llm-dropped-params`` — asserted on the bodies the fake upstreams received.
"""

from __future__ import annotations

from typing import Any

import anthropic
import openai

from compat.conftest import Gateway


def _openai(gateway: Gateway) -> openai.OpenAI:
    return openai.OpenAI(base_url=gateway.v1, api_key="unused", max_retries=0)


def _anthropic(gateway: Gateway) -> anthropic.Anthropic:
    return anthropic.Anthropic(base_url=gateway.url, api_key="unused", max_retries=0)


def _dropped(headers: Any) -> set[str]:
    value = headers.get("x-llm-dropped-params") or ""
    return set(value.split(",")) if value else set()


def test_openai_sampling_parameters_and_openai_only_fields_reach_an_openai_deployment(gateway: Gateway) -> None:
    mark = gateway.upstreams.mark()
    raw = _openai(gateway).chat.completions.with_raw_response.create(
        model="gpt",
        messages=[{"role": "user", "content": "Say hello"}],
        seed=42,
        frequency_penalty=0.4,
        presence_penalty=-0.2,
        logprobs=True,
        top_logprobs=3,
        stop=["END"],
        service_tier="flex",
        user="alice",
        logit_bias={"50256": -100},
        prediction={"type": "content", "content": "Hello"},
        store=False,
        metadata={"team": "search"},
        extra_body={"verbosity": "low"},
    )
    completion = raw.parse()
    [sent] = gateway.upstreams.openai_since(mark)
    assert (sent["seed"], sent["frequency_penalty"], sent["presence_penalty"]) == (42, 0.4, -0.2)
    assert (sent["logprobs"], sent["top_logprobs"], sent["stop"]) == (True, 3, ["END"])
    assert (sent["service_tier"], sent["user"]) == ("flex", "alice")
    assert sent["logit_bias"] == {"50256": -100} and sent["prediction"] == {"type": "content", "content": "Hello"}
    assert (sent["store"], sent["metadata"], sent["verbosity"]) == (False, {"team": "search"}, "low")
    assert _dropped(raw.headers) == set()
    assert completion.id.startswith("chatcmpl-") and completion.system_fingerprint


def test_openai_reasoning_effort_becomes_an_anthropic_thinking_budget(gateway: Gateway) -> None:
    mark = gateway.upstreams.mark()
    raw = _openai(gateway).chat.completions.with_raw_response.create(
        model="claude",
        messages=[{"role": "user", "content": "Think first"}],
        max_tokens=4096,
        reasoning_effort="low",
        seed=1,
        prediction={"type": "content", "content": "x"},
    )
    [sent] = gateway.upstreams.anthropic_since(mark)
    assert sent["thinking"] == {"type": "enabled", "budget_tokens": 2048} and sent["max_tokens"] == 4096
    assert "seed" not in sent and "prediction" not in sent
    assert _dropped(raw.headers) == {"seed", "prediction"}  # what Anthropic cannot take is named, not lost


def test_anthropic_thinking_top_k_and_cache_control_reach_an_anthropic_deployment(gateway: Gateway) -> None:
    client = _anthropic(gateway)
    system: Any = [{"type": "text", "text": "You are terse.", "cache_control": {"type": "ephemeral"}}]
    content: Any = [{"type": "text", "text": "Say hello", "cache_control": {"type": "ephemeral"}}]
    mark = gateway.upstreams.mark()
    client.messages.create(
        model="claude",
        max_tokens=4096,
        system=system,
        messages=[{"role": "user", "content": content}],
        thinking={"type": "enabled", "budget_tokens": 1500},
    )
    # This SDK version has no top_k argument: sent as the field it is on the wire.
    client.messages.create(
        model="claude", max_tokens=64, messages=[{"role": "user", "content": "Hi"}], extra_body={"top_k": 5}
    )
    thinking, top_k = gateway.upstreams.anthropic_since(mark)
    assert thinking["thinking"] == {"type": "enabled", "budget_tokens": 1500}
    assert thinking["system"] == system and thinking["messages"][0]["content"] == content
    assert top_k["top_k"] == 5


def test_anthropic_thinking_becomes_an_openai_reasoning_effort_or_is_named_as_dropped(gateway: Gateway) -> None:
    mark = gateway.upstreams.mark()
    raw = _anthropic(gateway).messages.with_raw_response.create(
        model="gpt",
        max_tokens=256,
        messages=[{"role": "user", "content": "Hi"}],
        thinking={"type": "enabled", "budget_tokens": 1024},
        extra_body={"top_k": 3},
    )
    [sent] = gateway.upstreams.openai_since(mark)
    # gpt-4o-mini is no reasoning model and Chat Completions has no top_k: neither is sent, both are named.
    assert "reasoning_effort" not in sent and "top_k" not in sent
    assert _dropped(raw.headers) == {"reasoning", "top_k"}
    assert raw.parse().id.startswith("msg_")
