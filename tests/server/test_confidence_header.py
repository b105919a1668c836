"""``x-llm-confidence`` on the gateway: on whole answers whose request asked for log probabilities, equal to
exp(mean logprob) of the tokens in the body; absent otherwise; described in the OpenAPI document."""

from __future__ import annotations

import math

import httpx

from tests.server.conftest import Gateway


def test_a_completion_with_logprobs_carries_its_confidence(gateway: Gateway) -> None:
    body = {"model": "gpt", "prompt": "Why is the sky blue?", "logprobs": 2}
    resp = httpx.post(f"{gateway.url}/v1/completions", json=body, timeout=10)
    assert resp.status_code == 200, resp.text
    tokens = resp.json()["choices"][0]["logprobs"]["token_logprobs"]
    expected = math.exp(sum(tokens) / len(tokens))
    header = resp.headers["x-llm-confidence"]
    assert len(header) == 6 and abs(float(header) - expected) < 5e-5, (header, expected)

    again = httpx.post(f"{gateway.url}/v1/completions", json=body, timeout=10)
    assert again.headers["x-llm-confidence"] == header  # the simulated models are deterministic


def test_no_logprobs_no_header(gateway: Gateway) -> None:
    plain = httpx.post(f"{gateway.url}/v1/completions", json={"model": "gpt", "prompt": "hi"}, timeout=10)
    chat = {"model": "gpt", "messages": [{"role": "user", "content": "hi"}]}
    whole = httpx.post(f"{gateway.url}/v1/chat/completions", json=chat, timeout=10)
    stream = {"model": "gpt", "prompt": "hi", "stream": True, "logprobs": 1}
    streamed = httpx.post(f"{gateway.url}/v1/completions", json=stream, timeout=10)
    for resp in (plain, whole):
        assert resp.status_code == 200 and "x-llm-confidence" not in resp.headers
    assert (
        streamed.status_code == 200 and "x-llm-confidence" not in streamed.headers
    )  # a stream's headers leave before its tokens


def test_the_header_is_in_the_openapi_document(gateway: Gateway) -> None:
    doc = httpx.get(f"{gateway.url}/openapi.json", timeout=10).json()
    assert "x-llm-confidence" in doc["components"]["headers"]
    answer = doc["paths"]["/v1/chat/completions"]["post"]["responses"]["200"]["headers"]
    assert "x-llm-confidence" in answer
