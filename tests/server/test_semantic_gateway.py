"""The semantic cache through the gateway: the official openai SDK against ``serve``'s app, a real upstream over
loopback HTTP."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import openai
import pytest

from llm_manager.config import load_settings
from tests.fakes import openai_wire
from tests.fakes.server import FakeUpstream, Recorded, Reply, serve_in_thread
from tests.server.conftest import Gateway, start_gateway

pytest.importorskip("wordllama", reason="the semantic extra (wordllama) is part of the dev install")


def _answer(req: Recorded) -> Reply:
    if req.json.get("stream"):
        return Reply.sse(openai_wire.stream_events(["Use the ", "reset link."]))
    return Reply.json(openai_wire.completion("Use the reset link."))


@pytest.fixture
def semantic_gateway() -> Iterator[tuple[Gateway, FakeUpstream]]:
    with serve_in_thread(FakeUpstream(_answer)) as ups:
        model = {"provider": "openai-compatible", "base_url": f"{ups.url}/v1", "api_key": "k", "family": "gpt"}
        settings = load_settings({"models": {"gpt": model}, "cache": {"semantic": {"enabled": True}}}, env={})
        for gw in start_gateway(settings):
            yield gw, ups


def _ask(client: openai.OpenAI, prompt: str, **headers: str) -> Any:
    return client.chat.completions.with_raw_response.create(
        model="gpt", messages=[{"role": "user", "content": prompt}], extra_headers=headers
    )


def test_headers_mark_a_semantic_hit_and_a_header_opts_out(semantic_gateway: Any) -> None:
    gw, ups = semantic_gateway
    with openai.OpenAI(base_url=f"{gw.url}/v1", api_key="x", max_retries=0, timeout=30) as client:
        miss = _ask(client, "How do I reset my password?")
        assert miss.headers["x-llm-cache"] == "miss" and "x-llm-cache-similarity" not in miss.headers
        hit = _ask(client, "how can I reset my password")
        assert hit.headers["x-llm-cache"] == "semantic"
        assert 0.8 <= float(hit.headers["x-llm-cache-similarity"]) < 1
        assert hit.parse().choices[0].message.content == "Use the reset link." and len(ups.requests) == 1
        exact = _ask(client, "How do I reset my password?")
        assert exact.headers["x-llm-cache"] == "hit" and "x-llm-cache-similarity" not in exact.headers
        opted = _ask(client, "how can I reset my password", **{"x-llm-cache": "no-semantic"})
        assert opted.headers["x-llm-cache"] == "miss" and len(ups.requests) == 2
        near = _ask(client, "How do I reset my username?")
        assert near.headers["x-llm-cache"] == "miss" and len(ups.requests) == 3
        with client.chat.completions.with_streaming_response.create(
            model="gpt", messages=[{"role": "user", "content": "How can I reset my password, please?"}], stream=True
        ) as resp:
            text = "".join(c.choices[0].delta.content or "" for c in resp.parse() if c.choices)
            assert resp.headers["x-llm-cache"] == "semantic" and float(resp.headers["x-llm-cache-similarity"]) >= 0.8
    assert text == "Use the reset link." and len(ups.requests) == 3
    status = gw.run(lambda llm: llm.status())["cache"]["semantic"]
    assert status["hits"] == 2 and status["embedder"] == "builtin:wordllama-l2-supercat-256"
