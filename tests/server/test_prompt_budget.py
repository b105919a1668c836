"""``x-llm-max-prompt-tokens`` through the gateway: the official SDKs' requests shrunk on the way upstream."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import httpx
import openai
import pytest

from llm_manager.config import load_settings
from tests.fakes import openai_wire
from tests.fakes.server import FakeUpstream, Recorded, Reply, serve_in_thread
from tests.server.conftest import Gateway, start_gateway

DOC = "".join(f"Entry {i}: the sensor on rack r{i % 9} read {i * 3} degrees at step {i}.\n" for i in range(500))


def _answer(req: Recorded) -> Reply:
    if req.json.get("stream"):
        return Reply.sse(openai_wire.stream_events(["sh", "ort"]))
    return Reply.json(openai_wire.completion("short"))


@pytest.fixture
def upstream_gateway() -> Iterator[tuple[Gateway, FakeUpstream]]:
    with serve_in_thread(FakeUpstream(_answer)) as ups:
        model = {"provider": "openai-compatible", "base_url": f"{ups.url}/v1", "api_key": "k", "family": "gpt"}
        settings = load_settings({"models": {"gpt": model}, "cache": {"enabled": False}}, env={})
        for gw in start_gateway(settings):
            yield gw, ups


def _client(gw: Gateway) -> openai.OpenAI:
    return openai.OpenAI(base_url=f"{gw.url}/v1", api_key="x", max_retries=0, timeout=10)


def test_header_shrinks_the_prompt_and_the_answer_says_by_how_much(upstream_gateway: Any) -> None:
    gw, ups = upstream_gateway
    with _client(gw) as client:
        raw = client.chat.completions.with_raw_response.create(
            model="gpt",
            messages=[{"role": "user", "content": "Which rack ran hottest?\n" + DOC}],
            extra_headers={"x-llm-max-prompt-tokens": "400"},
        )
    completion = raw.parse()
    before, after = int(raw.headers["x-llm-prompt-tokens-before"]), int(raw.headers["x-llm-prompt-tokens-after"])
    assert completion.choices[0].message.content == "short"
    assert before > 8000 and after <= 400
    sent = ups.requests[0].json["messages"][0]["content"]
    assert sent.startswith("Which rack ran hottest?\nEntry 0:") and "tokens) cut …]" in sent


def test_streams_carry_the_counts_in_their_headers(upstream_gateway: Any) -> None:
    gw, ups = upstream_gateway
    with _client(gw) as client:
        with client.chat.completions.with_streaming_response.create(
            model="gpt",
            messages=[{"role": "user", "content": DOC}],
            stream=True,
            extra_headers={"x-llm-max-prompt-tokens": "300"},
        ) as resp:
            text = "".join(c.choices[0].delta.content or "" for c in resp.parse() if c.choices)
            assert int(resp.headers["x-llm-prompt-tokens-after"]) <= 300
    assert text == "short" and "cut …]" in ups.requests[0].json["messages"][0]["content"]


@pytest.mark.parametrize("value", ["many", "0", "-5", "1.5"])
def test_a_bad_header_is_a_400_naming_it(upstream_gateway: Any, value: str) -> None:
    gw, ups = upstream_gateway
    with _client(gw) as client, pytest.raises(openai.BadRequestError) as err:
        client.chat.completions.create(
            model="gpt", messages=[{"role": "user", "content": "hi"}], extra_headers={"x-llm-max-prompt-tokens": value}
        )
    assert err.value.body["param"] == "x-llm-max-prompt-tokens"  # type: ignore[index]
    assert ups.requests == []


def test_a_budget_code_alone_exceeds_is_a_400_and_nothing_is_sent(upstream_gateway: Any) -> None:
    gw, ups = upstream_gateway
    code = "```\n" + "".join(f"v{i} = g({i})\n" for i in range(300)) + "```"
    with _client(gw) as client, pytest.raises(openai.BadRequestError, match="max_prompt_tokens=60"):
        client.chat.completions.create(
            model="gpt", messages=[{"role": "user", "content": code}], extra_headers={"x-llm-max-prompt-tokens": "60"}
        )
    assert ups.requests == []


def test_the_anthropic_route_reads_the_same_header(upstream_gateway: Any) -> None:
    gw, ups = upstream_gateway
    resp = httpx.post(
        f"{gw.url}/v1/messages",
        json={"model": "gpt", "max_tokens": 50, "messages": [{"role": "user", "content": DOC}]},
        headers={"x-llm-max-prompt-tokens": "250", "anthropic-version": "2023-06-01"},
        timeout=10,
    )
    assert resp.status_code == 200, resp.text
    assert int(resp.headers["x-llm-prompt-tokens-after"]) <= 250
    assert "cut …]" in ups.requests[0].json["messages"][0]["content"]
