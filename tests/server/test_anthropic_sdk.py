"""``POST /v1/messages`` through the official ``anthropic`` SDK: answers, streams, routing, errors as SDK
exceptions, and every payload checked against the SDK's own types so the emitter cannot drift."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import anthropic
import httpx
import pydantic
import pytest
from anthropic.types import ErrorResponse, Message, MessageParam, RawMessageStreamEvent

from llm_manager.manager import LLMManager
from llm_manager.server.anthropic_api import stop_reason
from llm_manager.server.keys import create_key
from tests.server.conftest import Gateway

HI: list[MessageParam] = [{"role": "user", "content": "hello there"}]
_EVENTS: pydantic.TypeAdapter[Any] = pydantic.TypeAdapter(RawMessageStreamEvent)


@pytest.fixture
def client(gateway: Gateway) -> Iterator[anthropic.Anthropic]:
    with anthropic.Anthropic(base_url=gateway.url, api_key="x", max_retries=0, timeout=10) as c:
        yield c


def _calls(gateway: Gateway) -> int:
    return sum(getattr(gateway.llm.adapter(n), "calls", 0) for n in ("claude", "gpt"))


def _last_request(gateway: Gateway) -> Any:
    sent = [getattr(gateway.llm.adapter(n), "requests", ()) for n in ("claude", "gpt")]
    return next(r[-1] for r in sent if r)


def _conforms(model: pydantic.BaseModel, data: Any) -> None:
    """Every key we sent is a field of the SDK's type (its models accept extras, so validation alone would not
    notice a misspelt or invented field), recursively."""
    for key, value in data.items():
        assert key in type(model).model_fields, f"{type(model).__name__} has no field {key!r}"
        attr = getattr(model, key)
        if isinstance(attr, pydantic.BaseModel):
            _conforms(attr, value)
        elif isinstance(attr, list):
            for item, raw in zip(attr, value, strict=True):
                if isinstance(item, pydantic.BaseModel):
                    _conforms(item, raw)


def _sse(gateway: Gateway, body: dict[str, Any]) -> tuple[httpx.Response, list[tuple[str, dict[str, Any]]]]:
    """The raw stream as (event name, payload) pairs."""
    with httpx.stream("POST", f"{gateway.url}/v1/messages", json=body, timeout=10) as r:
        text = r.read().decode()
    events = []
    for block in filter(None, text.split("\n\n")):
        fields = dict(line.split(": ", 1) for line in block.splitlines())
        events.append((fields["event"], httpx.Response(200, content=fields["data"]).json()))
    return r, events


# -- answers ----------------------------------------------------------------------------------------------------


def test_message_has_text_usage_stop_reason_and_gateway_headers(client: anthropic.Anthropic) -> None:
    raw = client.messages.with_raw_response.create(model="gpt", max_tokens=100, messages=HI)
    msg = raw.parse()
    assert (msg.type, msg.role, msg.stop_reason, msg.stop_sequence) == ("message", "assistant", "end_turn", None)
    assert len(msg.content) == 1 and msg.content[0].type == "text"
    assert msg.content[0].text.startswith("[simulated gpt]")
    assert msg.usage.input_tokens > 0 and msg.usage.output_tokens > 0 and msg.usage.cache_read_input_tokens == 0
    assert msg.model
    assert raw.headers["request-id"] == raw.headers["x-request-id"] == msg.id.replace("msg_", "req_", 1)
    assert msg._request_id == raw.headers["request-id"]  # what the SDK reports as the request id
    assert raw.headers["x-llm-model"] == "gpt" and raw.headers["x-llm-cache"] == "miss"
    assert raw.headers["x-llm-attempts"] == "1" and raw.headers["x-llm-cost"] != ""


def test_message_body_is_exactly_the_sdk_type(gateway: Gateway) -> None:
    r = httpx.post(f"{gateway.url}/v1/messages", json={"model": "gpt", "max_tokens": 50, "messages": HI}, timeout=10)
    assert r.status_code == 200
    _conforms(Message.model_validate(r.json()), r.json())


def test_max_tokens_reached_is_the_max_tokens_stop_reason(client: anthropic.Anthropic) -> None:
    msg = client.messages.create(model="claude", max_tokens=3, messages=HI)
    assert msg.stop_reason == "max_tokens" and msg.usage.output_tokens == 3


def test_stop_reasons_map_from_finish_reasons() -> None:
    got = {r: stop_reason(r) for r in ("stop", "length", "tool_calls", "content_filter", "error", None)}
    assert got == {
        "stop": "end_turn",
        "length": "max_tokens",
        "tool_calls": "tool_use",
        "content_filter": "refusal",
        "error": "end_turn",
        None: "end_turn",
    }


def test_alias_and_task_pseudo_model_route(client: anthropic.Anthropic, gateway: Gateway) -> None:
    create = client.messages.with_raw_response.create
    assert create(model="smart", max_tokens=50, messages=HI).headers["x-llm-model"] == "claude"
    raw = create(model="task:analysis", max_tokens=50, messages=HI)
    assert raw.headers["x-llm-model"] == gateway.llm.settings.chain("analysis")[0]
    assert _last_request(gateway).task == "analysis"


def test_system_blocks_options_and_steering_headers_reach_the_request(
    client: anthropic.Anthropic, gateway: Gateway
) -> None:
    client.messages.create(
        model="task:general",
        max_tokens=60,
        system=[{"type": "text", "text": "be brief"}, {"type": "text", "text": "be kind"}],
        messages=[
            {"role": "user", "content": [{"type": "text", "text": "a"}, {"type": "text", "text": "b"}]},
            {"role": "assistant", "content": "ok"},
            {"role": "user", "content": "c"},
        ],
        extra_body={"temperature": 0.5, "top_p": 0.9},  # this SDK's create() no longer names them
        stop_sequences=["END"],
        metadata={"user_id": "meta-user"},
        extra_headers={"x-llm-task": "analysis", "x-llm-project": "p1"},
    )
    req = _last_request(gateway)
    assert (req.task, req.project, req.user, req.max_tokens, req.stop) == ("general", "p1", "meta-user", 60, ["END"])
    assert (req.temperature, req.top_p) == (0.5, 0.9)
    assert req.system == "be brief\n\nbe kind"
    assert [(m.role, m.content) for m in req.messages] == [("user", "a\n\nb"), ("assistant", "ok"), ("user", "c")]
    client.messages.create(
        model="gpt", max_tokens=60, system="plain", messages=HI, extra_headers={"x-llm-user": "header-user"}
    )
    req = _last_request(gateway)
    assert (req.system, req.user) == ("plain", "header-user")


class Weather(pydantic.BaseModel):
    city: str
    degrees: int


def test_structured_output_through_messages_parse(client: anthropic.Anthropic, gateway: Gateway) -> None:
    parsed = client.messages.parse(model="claude", max_tokens=200, messages=HI, output_format=Weather)
    assert isinstance(parsed.parsed_output, Weather)
    fmt = _last_request(gateway).response_format
    assert fmt is not None and fmt.json_schema["properties"].keys() == {"city", "degrees"}


def test_no_store_header_bypasses_the_cache(cached_gateway: Gateway) -> None:
    with anthropic.Anthropic(base_url=cached_gateway.url, api_key="x", max_retries=0, timeout=10) as c:
        create = c.messages.with_raw_response.create
        assert create(model="gpt", max_tokens=50, messages=HI).headers["x-llm-cache"] == "miss"
        assert create(model="gpt", max_tokens=50, messages=HI).headers["x-llm-cache"] == "hit"
        again = create(model="gpt", max_tokens=50, messages=HI, extra_headers={"x-llm-cache": "no-store"})
        assert again.headers["x-llm-cache"] == "miss"


# -- streams ----------------------------------------------------------------------------------------------------


def test_stream_helper_text_and_final_message(client: anthropic.Anthropic) -> None:
    with client.messages.stream(model="claude", max_tokens=100, messages=HI) as stream:
        text = "".join(stream.text_stream)
        final = stream.get_final_message()
        headers = stream.response.headers
    assert text.startswith("[simulated claude]")
    assert final.content[0].type == "text" and final.content[0].text == text
    assert final.stop_reason == "end_turn" and final.usage.output_tokens > 0 and final.usage.input_tokens > 0
    assert headers["request-id"] == headers["x-request-id"] == final.id.replace("msg_", "req_", 1)
    assert headers["x-llm-model"] == "claude" and headers["content-type"].startswith("text/event-stream")


def test_stream_usage_matches_the_whole_answer(client: anthropic.Anthropic) -> None:
    whole = client.messages.create(model="gpt", max_tokens=100, messages=HI)
    with client.messages.stream(
        model="gpt", max_tokens=100, messages=HI, extra_headers={"x-llm-cache": "no-store"}
    ) as s:
        final = s.get_final_message()
    assert (final.usage.input_tokens, final.usage.output_tokens) == (
        whole.usage.input_tokens,
        whole.usage.output_tokens,
    )
    with client.messages.stream(model="gpt", max_tokens=3, messages=HI) as s:
        assert s.get_final_message().stop_reason == "max_tokens"


def test_raw_stream_events_in_anthropic_order(client: anthropic.Anthropic) -> None:
    events = list(client.messages.create(model="gpt", max_tokens=100, messages=HI, stream=True))
    kinds = [e.type for e in events]
    assert kinds[:2] == ["message_start", "content_block_start"]
    assert kinds[-3:] == ["content_block_stop", "message_delta", "message_stop"]
    assert set(kinds[2:-3]) == {"content_block_delta"} and len(kinds) > 6
    start, delta = events[0], events[-2]
    assert start.type == "message_start" and start.message.content == [] and start.message.stop_reason is None
    assert delta.type == "message_delta" and delta.delta.stop_reason == "end_turn" and delta.usage.output_tokens > 0
    text = "".join(e.delta.text for e in events if e.type == "content_block_delta" and e.delta.type == "text_delta")
    assert text.startswith("[simulated gpt]")


def test_every_stream_event_validates_against_the_sdk_types(gateway: Gateway) -> None:
    r, events = _sse(gateway, {"model": "gpt", "max_tokens": 100, "messages": HI, "stream": True})
    assert r.status_code == 200 and r.headers["request-id"].startswith("req_")
    assert events[2][0] == "ping"
    for name, data in events:
        assert name == data["type"]
        if name != "ping":
            _conforms(_EVENTS.validate_python(data), data)


def test_stream_broken_midway_raises_in_the_sdk(client: anthropic.Anthropic, gateway: Gateway) -> None:
    gateway.script("gpt", "cut:2")
    got: list[str] = []
    with pytest.raises(anthropic.APIStatusError, match="broke after") as info:
        with client.messages.stream(model="gpt", max_tokens=100, messages=HI) as stream:
            got.extend(stream.text_stream)
    assert info.value.type == "overloaded_error"  # the gateway's 503, as Anthropic names a passing outage
    assert len(got) == 2  # what arrived before the cut, and no complete message
    gateway.script("gpt", "cut:2")
    with pytest.raises(anthropic.APIStatusError):
        list(client.messages.create(model="gpt", max_tokens=100, messages=HI, stream=True))


def test_stream_broken_midway_ends_with_an_error_event_and_no_message_stop(gateway: Gateway) -> None:
    gateway.script("gpt", "cut:2")
    _, events = _sse(gateway, {"model": "gpt", "max_tokens": 100, "messages": HI, "stream": True})
    names = [n for n, _ in events]
    assert names[0] == "message_start" and names.count("content_block_delta") == 2
    assert names[-1] == "error" and "message_stop" not in names and "message_delta" not in names
    err = events[-1][1]
    _conforms(ErrorResponse.model_validate(err), err)
    assert "stream_interrupted" not in err["error"]["message"] and "broke after" in err["error"]["message"]


def test_stream_failing_before_its_first_chunk_is_a_json_error(client: anthropic.Anthropic, gateway: Gateway) -> None:
    gateway.script("claude", "500")
    gateway.script("gpt", "500")
    with pytest.raises(anthropic.ServiceUnavailableError) as info:
        with client.messages.stream(model="gpt", max_tokens=100, messages=HI) as stream:
            stream.get_final_message()
    assert info.value.type == "overloaded_error"
    assert info.value.response.headers["x-should-retry"] == "false"


# -- errors -----------------------------------------------------------------------------------------------------


def test_unknown_model_is_not_found(client: anthropic.Anthropic) -> None:
    with pytest.raises(anthropic.NotFoundError) as info:
        client.messages.create(model="nope", max_tokens=10, messages=HI)
    assert info.value.type == "not_found_error" and "nope" in (info.value.api_message or "")
    assert info.value.request_id is not None and info.value.request_id.startswith("req_")
    _conforms(ErrorResponse.model_validate(info.value.body), info.value.body)


def test_missing_max_tokens_is_a_bad_request(client: anthropic.Anthropic) -> None:
    with pytest.raises(anthropic.BadRequestError) as info:
        client.post("/v1/messages", body={"model": "gpt", "messages": HI}, cast_to=Message)
    assert info.value.type == "invalid_request_error" and info.value.api_message == "max_tokens: Field required"


@pytest.mark.parametrize(
    ("extra", "field"),
    [
        ({"temperature": 1.5}, "temperature"),
        ({"max_tokens": 0}, "max_tokens"),
        ({"messages": []}, "messages"),
        ({"messages": [{"role": "system", "content": "x"}]}, "messages.0.role"),
        (
            {"messages": [{"role": "user", "content": [{"type": "image", "source": {}}]}]},
            "messages.0.content.0.source.type",
        ),
        ({"system": [{"type": "image"}]}, "system.0.type"),
        ({"stop_sequences": "END"}, "stop_sequences"),
        ({"output_config": {"format": {"type": "json_object"}}}, "output_config.format.type"),
        ({"tools": [{"type": "web_search_20250305", "name": "web_search"}]}, "tools.0"),
        ({"tools": [{"name": "bad name", "input_schema": {"type": "object"}}]}, "tools.0"),
        ({"tool_choice": {"type": "any"}}, "tool_choice"),
        ({"tools": [{"name": "f", "input_schema": {}}], "tool_choice": {"type": "sometimes"}}, "tool_choice.type"),
    ],
)
def test_bad_fields_are_bad_requests_naming_the_field(
    client: anthropic.Anthropic, gateway: Gateway, extra: dict[str, Any], field: str
) -> None:
    before = _calls(gateway)
    with pytest.raises(anthropic.BadRequestError) as info:
        client.post("/v1/messages", body={"model": "gpt", "max_tokens": 10, "messages": HI, **extra}, cast_to=Message)
    assert (info.value.api_message or "").startswith(f"{field}: ")
    assert _calls(gateway) == before


WEATHER: Any = {
    "name": "get_weather",
    "description": "Current weather for a city",
    "input_schema": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]},
}


def test_tool_use_round_trip(client: anthropic.Anthropic, gateway: Gateway) -> None:
    ask: list[MessageParam] = [{"role": "user", "content": "weather? use get_weather"}]
    first = client.messages.create(
        model="claude", max_tokens=100, messages=ask, tools=[WEATHER], tool_choice={"type": "any"}
    )
    assert first.stop_reason == "tool_use"
    (block,) = [b for b in first.content if b.type == "tool_use"]
    assert block.name == "get_weather" and isinstance(block.input, dict) and "city" in block.input
    sent = _last_request(gateway)
    assert sent.tool_choice == "required" and [t.name for t in sent.tools] == ["get_weather"]

    turns: list[MessageParam] = [
        *ask,
        {
            "role": "assistant",
            "content": [{"type": "tool_use", "id": block.id, "name": block.name, "input": block.input}],
        },
        {
            "role": "user",
            "content": [
                {"type": "tool_result", "tool_use_id": block.id, "content": "sunny", "is_error": False},
                {"type": "text", "text": "and tomorrow?"},
            ],
        },
    ]
    final = client.messages.create(model="claude", max_tokens=100, messages=turns, tools=[WEATHER])
    assert final.stop_reason == "end_turn" and final.content[0].type == "text"
    sent = _last_request(gateway)
    # The result became a tool message answering the call, and the turn's text a user message after it.
    assert [m.role for m in sent.messages] == ["user", "assistant", "tool", "user"]
    assert sent.messages[1].tool_calls[0].id == block.id and sent.messages[2].tool_call_id == block.id
    assert sent.messages[2].content == "sunny" and sent.messages[3].content == "and tomorrow?"


def test_streamed_tool_use_assembles_in_the_sdk(client: anthropic.Anthropic, gateway: Gateway) -> None:
    ask: list[MessageParam] = [{"role": "user", "content": "weather?"}]
    with client.messages.stream(
        model="gpt",
        max_tokens=100,
        messages=ask,
        tools=[WEATHER],
        tool_choice={"type": "tool", "name": "get_weather", "disable_parallel_tool_use": True},
    ) as stream:
        final = stream.get_final_message()
    assert final.stop_reason == "tool_use"
    (block,) = [b for b in final.content if b.type == "tool_use"]
    assert block.name == "get_weather" and isinstance(block.input, dict) and isinstance(block.input["city"], str)
    assert _last_request(gateway).parallel_tool_calls is False
    # Each raw event is the SDK's own type, blocks are numbered in order and each opened block is closed.
    body = {"model": "gpt", "max_tokens": 100, "messages": ask, "tools": [WEATHER], "stream": True}
    body["tool_choice"] = {"type": "any"}
    _, events = _sse(gateway, body)
    adapter = pydantic.TypeAdapter(RawMessageStreamEvent)
    for name, payload in events:
        if name != "ping":
            adapter.validate_python(payload)
    starts = [p["index"] for n, p in events if n == "content_block_start"]
    stops = [p["index"] for n, p in events if n == "content_block_stop"]
    # A forced tool with no text: the tool_use block alone, at index 0 (as Anthropic streams it).
    assert starts == stops == list(range(len(starts))) and len(starts) == 1
    assert events[-1][0] == "message_stop"


def test_every_candidate_rate_limited_is_a_429_the_sdk_does_not_retry(gateway: Gateway) -> None:
    gateway.script("claude", "429:30")
    gateway.script("gpt", "429:30")
    before = _calls(gateway)
    # Retries left to the SDK: x-should-retry: false must stop them (each would also wait out retry-after).
    with anthropic.Anthropic(base_url=gateway.url, api_key="x", max_retries=3, timeout=10) as c:
        with pytest.raises(anthropic.RateLimitError) as info:
            c.messages.create(model="gpt", max_tokens=10, messages=HI)
    assert _calls(gateway) - before == 2  # one attempt per deployment, one gateway request
    headers = info.value.response.headers
    assert headers["x-should-retry"] == "false" and headers["retry-after"] == "30"
    assert headers["retry-after-ms"] == "30000" and headers["request-id"] == info.value.request_id
    assert info.value.type == "rate_limit_error"


@pytest.mark.parametrize(
    ("content", "ctype", "status"),
    [(b"{not json", "application/json", 400), (b"{}", "text/plain", 415), (b"[]", "application/json", 400)],
)
def test_malformed_requests_get_anthropic_shaped_errors(
    gateway: Gateway, content: bytes, ctype: str, status: int
) -> None:
    r = httpx.post(f"{gateway.url}/v1/messages", content=content, headers={"content-type": ctype}, timeout=10)
    assert r.status_code == status
    body = r.json()
    assert body["type"] == "error" and body["error"]["type"] == "invalid_request_error"
    _conforms(ErrorResponse.model_validate(body), body)
    assert r.headers["request-id"] == body["request_id"]


# -- gateway keys -----------------------------------------------------------------------------------------------


def _new_key(gateway: Gateway, **kw: Any) -> str:
    async def make(llm: LLMManager) -> tuple[str, str]:
        return await create_key(await llm.database(), "sdk", **kw)

    secret: str = gateway.run(make)[1]
    return secret


def test_keys_wrong_key_is_an_authentication_error_and_models_are_enforced(gateway: Gateway) -> None:
    secret = _new_key(gateway, models=["gpt"])
    before = _calls(gateway)
    with anthropic.Anthropic(base_url=gateway.url, api_key="llmm-wrong", max_retries=0, timeout=10) as c:
        with pytest.raises(anthropic.AuthenticationError) as info:
            c.messages.create(model="gpt", max_tokens=10, messages=HI)
    assert info.value.type == "authentication_error"
    assert _calls(gateway) == before  # nothing was called for a stranger
    # The SDK sends its key as x-api-key, which the gateway accepts.
    with anthropic.Anthropic(base_url=gateway.url, api_key=secret, max_retries=0, timeout=10) as c:
        assert c.messages.create(model="gpt", max_tokens=10, messages=HI).content
        with pytest.raises(anthropic.PermissionDeniedError) as denied:
            c.messages.create(model="claude", max_tokens=10, messages=HI)
    assert denied.value.type == "permission_error"
