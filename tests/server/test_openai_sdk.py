"""The gateway through the official ``openai`` SDK: answers, streams, routing, and errors as SDK exceptions."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import httpx
import openai
import pytest
from openai.types.chat import ChatCompletionMessageParam
from prometheus_client.parser import text_string_to_metric_families

from llm_manager.errors import (
    AllCandidatesFailedError,
    AuthenticationError,
    BudgetExceededError,
    CircuitOpenError,
    ConfigError,
    ContentFilterError,
    ContextTooLargeError,
    ExtractionError,
    LLMManagerError,
    ModelUnavailableError,
    ProviderTimeoutError,
    RateLimitError,
)
from llm_manager.server.errors import render_error
from tests.server.conftest import Gateway

HI: list[ChatCompletionMessageParam] = [{"role": "user", "content": "hello there"}]


@pytest.fixture
def client(gateway: Gateway) -> Iterator[openai.OpenAI]:
    with openai.OpenAI(base_url=f"{gateway.url}/v1", api_key="x", max_retries=0, timeout=10) as c:
        yield c


def test_completion_has_content_usage_model_and_gateway_headers(client: openai.OpenAI) -> None:
    raw = client.chat.completions.with_raw_response.create(model="gpt", messages=HI)
    done = raw.parse()
    assert done.object == "chat.completion"
    assert done.choices[0].message.role == "assistant"
    assert (done.choices[0].message.content or "").startswith("[simulated gpt]")
    assert done.choices[0].finish_reason == "stop"
    assert done.usage is not None and done.usage.completion_tokens > 0
    assert done.usage.total_tokens == done.usage.prompt_tokens + done.usage.completion_tokens
    assert done.model
    # The body has OpenAI's id shape; x-request-id names the same request (and the ledger row).
    assert done.id.startswith("chatcmpl-") and raw.headers["x-request-id"] == done.id.replace("chatcmpl-", "req_", 1)
    assert raw.headers["x-llm-model"] == "gpt"
    assert raw.headers["x-llm-cache"] == "miss"
    assert raw.headers["x-llm-attempts"] == "1"
    assert raw.headers["x-llm-cost"] != ""


def test_alias_and_task_pseudo_model_route(client: openai.OpenAI, gateway: Gateway) -> None:
    raw = client.chat.completions.with_raw_response.create(model="smart", messages=HI)
    assert raw.headers["x-llm-model"] == "claude"
    raw = client.chat.completions.with_raw_response.create(model="task:analysis", messages=HI)
    assert raw.headers["x-llm-model"] == gateway.llm.settings.chain("analysis")[0]


def test_steering_headers_reach_the_request(client: openai.OpenAI, gateway: Gateway) -> None:
    client.chat.completions.create(
        model="task:general",
        messages=[
            {"role": "system", "content": "be brief"},
            {"role": "user", "content": [{"type": "text", "text": "a"}]},
        ],
        extra_headers={"x-llm-task": "analysis", "x-llm-user": "u1", "x-llm-project": "p1"},
        max_completion_tokens=50,
        stop="END",
    )
    sent = [getattr(gateway.llm.adapter(n), "requests", ()) for n in ("claude", "gpt")]
    req = next(r[-1] for r in sent if r)
    assert (req.task, req.user, req.project, req.max_tokens, req.stop) == ("general", "u1", "p1", 50, ["END"])
    assert req.system == "be brief" and req.messages[0].content == "a"


def test_stream_assembles_text_and_ends_with_usage(client: openai.OpenAI) -> None:
    chunks = list(
        client.chat.completions.create(model="claude", messages=HI, stream=True, stream_options={"include_usage": True})
    )
    assert chunks[0].choices[0].delta.role == "assistant"
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert text.startswith("[simulated claude]")
    assert [c.choices[0].finish_reason for c in chunks if c.choices][-1] == "stop"
    assert chunks[-1].choices == [] and chunks[-1].usage is not None and chunks[-1].usage.completion_tokens > 0
    assert len({c.id for c in chunks}) == 1


def test_no_store_header_bypasses_the_cache(cached_gateway: Gateway) -> None:
    with openai.OpenAI(base_url=f"{cached_gateway.url}/v1", api_key="x", max_retries=0) as c:
        create = c.chat.completions.with_raw_response.create
        assert create(model="gpt", messages=HI).headers["x-llm-cache"] == "miss"
        assert create(model="gpt", messages=HI).headers["x-llm-cache"] == "hit"
        again = create(model="gpt", messages=HI, extra_headers={"x-llm-cache": "no-store"})
        assert again.headers["x-llm-cache"] == "miss"


def test_a_cached_answer_streamed_says_so_in_its_headers(cached_gateway: Gateway) -> None:
    with openai.OpenAI(base_url=f"{cached_gateway.url}/v1", api_key="x", max_retries=0) as c:
        create = c.chat.completions.with_raw_response.create
        first = create(model="gpt", messages=HI, stream=True)
        text = "".join(ch.choices[0].delta.content or "" for ch in first.parse() if ch.choices)
        assert (first.headers["x-llm-cache"], first.headers["x-llm-attempts"]) == ("miss", "1")
        again = create(model="gpt", messages=HI, stream=True)
        assert "".join(ch.choices[0].delta.content or "" for ch in again.parse() if ch.choices) == text
        # Replayed from the cache: no provider was tried for it.
        assert (again.headers["x-llm-cache"], again.headers["x-llm-attempts"]) == ("hit", "0")


def test_models_lists_deployments_aliases_and_tasks(client: openai.OpenAI) -> None:
    ids = {m.id: m for m in client.models.list()}
    assert {"claude", "gpt", "smart", "fast", "task:analysis", "task:ui-generation", "task:general"} <= set(ids)
    assert ids["gpt"].object == "model" and ids["gpt"].owned_by == "simulated"


def test_unknown_model_is_not_found(client: openai.OpenAI) -> None:
    with pytest.raises(openai.NotFoundError) as info:
        client.chat.completions.create(model="nope", messages=HI)
    assert info.value.code == "model_not_found" and info.value.param == "model"
    assert info.value.response.headers["x-request-id"]


def test_an_image_part_reaches_the_request_and_a_bad_value_is_a_bad_request(
    client: openai.OpenAI, gateway: Gateway
) -> None:
    url = "http://127.0.0.1/x.png"
    parts: Any = [{"type": "text", "text": "what is it?"}, {"type": "image_url", "image_url": {"url": url}}]
    client.chat.completions.create(model="gpt", messages=[{"role": "user", "content": parts}])
    (text, image) = gateway.llm.adapter("gpt").requests[-1].messages[0].content  # type: ignore[attr-defined]
    assert (text.text, image.type, image.url) == ("what is it?", "image", url)
    bad: Any = [{"role": "user", "content": [{"type": "image_url", "image_url": {"url": "data:image/png;base64,%%"}}]}]
    with pytest.raises(openai.BadRequestError) as info:
        client.chat.completions.create(model="gpt", messages=bad)
    assert info.value.param == "messages[0].content[0].image_url.url"
    with pytest.raises(openai.BadRequestError):
        client.chat.completions.create(model="gpt", messages=HI, temperature=9)


def test_every_candidate_rate_limited_is_a_429_not_to_retry(client: openai.OpenAI, gateway: Gateway) -> None:
    gateway.script("claude", "429:30")
    gateway.script("gpt", "429:30")
    with pytest.raises(openai.RateLimitError) as info:
        client.chat.completions.create(model="gpt", messages=HI)
    headers = info.value.response.headers
    assert headers["x-should-retry"] == "false"
    assert headers["retry-after"] == "30" and headers["retry-after-ms"] == "30000"
    assert info.value.code == "rate_limit_exceeded"


def test_every_candidate_down_is_a_503_not_to_retry(client: openai.OpenAI, gateway: Gateway) -> None:
    gateway.script("claude", "500")
    gateway.script("gpt", "500")
    with pytest.raises(openai.InternalServerError) as info:
        client.chat.completions.create(model="gpt", messages=HI)
    assert info.value.status_code == 503
    assert info.value.response.headers["x-should-retry"] == "false"
    assert info.value.response.headers["x-request-id"].startswith("req_")


def test_stream_failing_before_its_first_chunk_is_a_json_error(client: openai.OpenAI, gateway: Gateway) -> None:
    gateway.script("claude", "500")
    gateway.script("gpt", "500")
    with pytest.raises(openai.InternalServerError) as info:
        client.chat.completions.create(model="gpt", messages=HI, stream=True)
    assert info.value.status_code == 503


def test_stream_broken_midway_raises_in_the_sdk(client: openai.OpenAI, gateway: Gateway) -> None:
    gateway.script("gpt", "cut:2")
    with pytest.raises(openai.APIError, match="broke after"):
        for _ in client.chat.completions.create(model="gpt", messages=HI, stream=True):
            pass


def test_stream_broken_midway_sends_an_error_event_and_no_done(gateway: Gateway) -> None:
    gateway.script("gpt", "cut:2")
    body = {"model": "gpt", "messages": HI, "stream": True}
    with httpx.stream("POST", f"{gateway.url}/v1/chat/completions", json=body, timeout=10) as r:
        assert r.status_code == 200 and r.headers["content-type"].startswith("text/event-stream")
        events = [ln for ln in r.iter_lines() if ln.startswith("data: ")]
    assert '"chat.completion.chunk"' in events[0]
    assert events[-1].startswith('data: {"error":') and "stream_interrupted" in events[-1]
    assert "data: [DONE]" not in events


def test_a_complete_raw_stream_ends_with_done(gateway: Gateway) -> None:
    body = {"model": "gpt", "messages": HI, "stream": True}
    with httpx.stream("POST", f"{gateway.url}/v1/chat/completions", json=body, timeout=10) as r:
        events = [ln for ln in r.iter_lines() if ln.startswith("data: ")]
    assert events[-1] == "data: [DONE]"


@pytest.mark.parametrize(
    ("content", "ctype", "status"),
    [
        (b"{not json", "application/json", 400),
        (b"{}", "text/plain", 415),
        (b'{"model": "gpt", "messages": "' + b"x" * (4 * 1024 * 1024) + b'"}', "application/json", 413),
        (b"[]", "application/json", 400),
    ],
)
def test_malformed_requests_get_openai_shaped_errors(gateway: Gateway, content: bytes, ctype: str, status: int) -> None:
    r = httpx.post(f"{gateway.url}/v1/chat/completions", content=content, headers={"content-type": ctype}, timeout=10)
    assert r.status_code == status
    err = r.json()["error"]
    assert set(err) == {"message", "type", "param", "code"} and err["type"] == "invalid_request_error"
    assert r.headers["x-request-id"]


def test_unknown_route_is_openai_shaped(gateway: Gateway) -> None:
    r = httpx.get(f"{gateway.url}/v1/nothing", timeout=10)
    assert r.status_code == 404 and "error" in r.json()


def test_health_ready_and_metrics(client: openai.OpenAI, gateway: Gateway) -> None:
    assert httpx.get(f"{gateway.url}/health").json() == {"status": "ok"}
    assert httpx.get(f"{gateway.url}/health/ready").status_code == 200
    client.chat.completions.create(model="gpt", messages=HI)
    r = httpx.get(f"{gateway.url}/metrics")
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/plain")
    names = {f.name for f in text_string_to_metric_families(r.text)}
    assert names


def test_response_format_json_schema_reaches_the_request(client: openai.OpenAI, gateway: Gateway) -> None:
    schema = {"type": "object", "properties": {"a": {"type": "integer"}}, "required": ["a"]}
    fmt: Any = {"type": "json_schema", "json_schema": {"name": "thing", "schema": schema, "strict": True}}
    client.chat.completions.create(model="claude", messages=HI, response_format=fmt)
    sim: Any = gateway.llm.adapter("claude")
    req = sim.requests[-1]
    assert req.response_format is not None
    assert (req.response_format.name, req.response_format.json_schema) == ("thing", schema)
    client.chat.completions.create(model="claude", messages=HI, response_format={"type": "json_object"})
    assert sim.requests[-1].response_format.type == "json_object"  # JSON mode reaches the request, not dropped


@pytest.mark.parametrize(
    ("exc", "status", "code", "retry_after"),
    [
        (AuthenticationError("bad upstream key"), 502, "upstream_authentication_failed", None),
        (BudgetExceededError("spent", resets_at="2999-01-01T00:00:00+00:00"), 429, "budget_exceeded", "yes"),
        (BudgetExceededError("spent"), 429, "budget_exceeded", None),
        (ContextTooLargeError("too long"), 400, "context_length_exceeded", None),
        (ContentFilterError("no"), 400, "content_filter", None),
        (ProviderTimeoutError("slow"), 504, "timeout", None),
        (ExtractionError("invalid"), 422, "extraction_failed", None),
        (CircuitOpenError("open", retry_after=1.2), 503, "circuit_open", "2"),
        (RateLimitError("slow down", retry_after=0.25), 429, "rate_limit_exceeded", "1"),
        (ConfigError("bad"), 400, "config_error", None),
    ],
)
def test_error_mapping(exc: LLMManagerError, status: int, code: str, retry_after: str | None) -> None:
    reply = render_error(exc, "req_1")
    assert (reply.status, reply.body["error"]["code"]) == (status, code)
    assert reply.headers["x-request-id"] == "req_1" and reply.headers["x-should-retry"] == "false"
    if retry_after == "yes":
        assert int(reply.headers["retry-after"]) > 0
    else:
        assert reply.headers.get("retry-after") == retry_after


def test_mixed_failures_are_a_503_and_alike_ones_keep_their_kind() -> None:
    mixed = AllCandidatesFailedError("all failed", exceptions=[RateLimitError("a"), ModelUnavailableError("b")])
    assert render_error(mixed, "r").status == 503
    timeouts = AllCandidatesFailedError("all failed", exceptions=[ProviderTimeoutError("a"), ProviderTimeoutError("b")])
    assert render_error(timeouts, "r").status == 504
