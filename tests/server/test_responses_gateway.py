"""``/v1/responses`` through the official ``openai`` SDK, in front of recording fake upstreams (OpenAI Chat
Completions, Anthropic Messages, Gemini) and a simulated model: what the SDK gets back, what reached the upstream,
the stored responses, and errors in the Responses shape."""

from __future__ import annotations

import base64
import json
from collections.abc import Iterator
from typing import Any

import httpx
import openai
import pytest

from llm_manager.config import load_settings
from llm_manager.manager import LLMManager
from llm_manager.server.keys import create_key
from tests.fakes import anthropic_wire, gemini_wire, openai_wire, responses_wire
from tests.fakes.server import FakeUpstream, Recorded, Reply, serve_in_thread
from tests.helpers import instant, sim_settings
from tests.server.conftest import Gateway, start_gateway

PIXEL = base64.b64decode(
    "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mP8z8BQDwAEhQGAhKmMIQAAAABJRU5ErkJggg=="
)
PIXEL_URL = "data:image/png;base64," + base64.b64encode(PIXEL).decode()
WEATHER = {
    "type": "function",
    "name": "weather",
    "description": "The weather in a city",
    "parameters": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]},
    "strict": True,
}


def _openai(req: Recorded) -> Reply:
    body = req.json
    last = body["messages"][-1]
    if body.get("tools") and last["role"] == "user":  # asked with tools: call one
        call = {"id": "call_1", "type": "function", "function": {"name": "weather", "arguments": '{"city":"Oslo"}'}}
        done = openai_wire.completion(None, finish_reason="tool_calls")
        done["choices"][0]["message"]["tool_calls"] = [call]
        return Reply.json(done)
    if body.get("stream"):
        return Reply.sse(openai_wire.stream_events(["Hello", " there"]))
    return Reply.json(openai_wire.completion("Hello there", prompt_tokens=12, completion_tokens=5, cached_tokens=4))


def _anthropic(req: Recorded) -> Reply:
    return Reply.json(anthropic_wire.message("A red pixel."))


def _gemini(req: Recorded) -> Reply:
    return Reply.json(gemini_wire.response("A red pixel."))


def _responses(req: Recorded) -> Reply:
    if req.json.get("stream"):
        return Reply.sse(responses_wire.stream_events(["Hello", " there"]))
    return Reply.json(responses_wire.response([responses_wire.message_item("Hello there")]))


@pytest.fixture(scope="module")
def upstreams() -> Iterator[dict[str, FakeUpstream]]:
    with (
        serve_in_thread(FakeUpstream(_openai)) as oa,
        serve_in_thread(FakeUpstream(_anthropic)) as an,
        serve_in_thread(FakeUpstream(_gemini)) as ge,
        serve_in_thread(FakeUpstream(_responses)) as rs,
    ):
        yield {"gpt": oa, "claude": an, "gemini": ge, "gpt-r": rs}


@pytest.fixture(scope="module")
def gw(upstreams: dict[str, FakeUpstream]) -> Iterator[Gateway]:
    settings = load_settings(
        {
            "models": {
                "gpt": {
                    "provider": "openai",
                    "model": "gpt-4o-mini",
                    "base_url": upstreams["gpt"].url + "/v1",
                    "api_key": "sk-up",
                    "aliases": ["fast"],
                },
                "claude": {
                    "provider": "anthropic",
                    "model": "claude-sonnet-4-5",
                    "base_url": upstreams["claude"].url,
                    "api_key": "sk-ant",
                },
                "gemini": {
                    "provider": "gemini",
                    "model": "gemini-2.5-flash",
                    "base_url": upstreams["gemini"].url + "/v1beta",
                    "api_key": "g-key",
                },
                "gpt-r": {
                    "provider": "openai",
                    "model": "gpt-4.1",
                    "api": "responses",
                    "base_url": upstreams["gpt-r"].url + "/v1",
                    "api_key": "sk-up",
                },
                "sim": {"provider": "simulated", "family": "gpt", "simulate": instant()},
            },
            "routing": {"max_retries": 0},
            "cache": {"enabled": False},
        },
        env={},
    )
    yield from start_gateway(settings)


@pytest.fixture
def client(gw: Gateway, upstreams: dict[str, FakeUpstream]) -> Iterator[openai.OpenAI]:
    for up in upstreams.values():
        up.requests.clear()
        up.queue.clear()
    with openai.OpenAI(base_url=f"{gw.url}/v1", api_key="x", max_retries=0, timeout=10) as c:
        yield c


def _sent(up: FakeUpstream) -> dict[str, Any]:
    assert len(up.requests) == 1, [r.path for r in up.requests]
    body: dict[str, Any] = up.requests[0].json
    return body


def test_whole_answer(client: openai.OpenAI, upstreams: dict[str, FakeUpstream]) -> None:
    raw = client.responses.with_raw_response.create(
        model="fast", input="Say hello", instructions="Be brief.", max_output_tokens=50, temperature=0.2
    )
    resp = raw.parse()
    assert resp.id.startswith("resp_") and resp.object == "response" and resp.status == "completed"
    assert resp.output_text == "Hello there"
    message = resp.output[0]
    assert message.type == "message" and message.id.startswith("msg_") and message.status == "completed"
    assert resp.instructions == "Be brief." and resp.max_output_tokens == 50 and resp.temperature == 0.2
    assert resp.usage is not None
    assert (resp.usage.input_tokens, resp.usage.output_tokens, resp.usage.total_tokens) == (12, 5, 17)
    assert resp.usage.input_tokens_details.cached_tokens == 4
    assert raw.headers["x-llm-model"] == "gpt" and raw.headers["x-request-id"].startswith("req_")
    assert "x-llm-dropped-params" not in raw.headers
    sent = _sent(upstreams["gpt"])
    assert sent["messages"] == [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "Say hello"}]
    assert sent["max_tokens"] == 50 and sent["temperature"] == 0.2


def test_ids_are_unique_per_response(client: openai.OpenAI) -> None:
    ids = {client.responses.create(model="sim", input="same words").id for _ in range(5)}
    assert len(ids) == 5


def test_stream_event_sequence(client: openai.OpenAI, upstreams: dict[str, FakeUpstream]) -> None:
    with client.responses.stream(model="gpt", input="Say hello") as stream:
        events = list(stream)
        final = stream.get_final_response()
    kinds = [e.type for e in events]
    assert kinds == [
        "response.created",
        "response.in_progress",
        "response.output_item.added",
        "response.content_part.added",
        "response.output_text.delta",
        "response.output_text.delta",
        "response.output_text.done",
        "response.content_part.done",
        "response.output_item.done",
        "response.completed",
    ]
    assert [e.sequence_number for e in events] == list(range(len(events)))
    assert final.output_text == "Hello there" and final.status == "completed"
    assert events[0].response.id == final.id  # type: ignore[union-attr]
    assert _sent(upstreams["gpt"])["stream"] is True


def test_function_call_and_its_output(client: openai.OpenAI, upstreams: dict[str, FakeUpstream]) -> None:
    first = client.responses.create(model="gpt", input="Weather in Oslo?", tools=[WEATHER])  # type: ignore[list-item]
    call = first.output[0]
    assert call.type == "function_call" and call.id.startswith("fc_")
    assert (call.call_id, call.name, call.arguments) == ("call_1", "weather", '{"city":"Oslo"}')
    sent = _sent(upstreams["gpt"])
    assert sent["tools"][0]["function"]["name"] == "weather" and sent["tools"][0]["function"]["strict"] is True
    upstreams["gpt"].requests.clear()
    out = {"type": "function_call_output", "call_id": "call_1", "output": "12 C, clear"}
    second = client.responses.create(
        model="gpt",
        input=[{"role": "user", "content": "Weather in Oslo?"}, call.model_dump(), out],  # type: ignore[list-item]
        tools=[WEATHER],  # type: ignore[list-item]
    )
    assert second.output_text == "Hello there"
    messages = _sent(upstreams["gpt"])["messages"]
    assert messages[1]["role"] == "assistant" and messages[1]["tool_calls"][0]["id"] == "call_1"
    assert messages[2] == {"role": "tool", "tool_call_id": "call_1", "content": "12 C, clear"}


def test_stream_of_a_function_call(client: openai.OpenAI) -> None:
    with client.responses.stream(model="gpt", input="Weather?", tools=[WEATHER]) as stream:  # type: ignore[list-item]
        kinds = [e.type for e in stream]
        final = stream.get_final_response()
    assert kinds[2:] == [
        "response.output_item.added",
        "response.function_call_arguments.delta",
        "response.function_call_arguments.done",
        "response.output_item.done",
        "response.completed",
    ]
    call = final.output[0]
    assert call.type == "function_call" and call.arguments == '{"city":"Oslo"}' and call.call_id == "call_1"


@pytest.mark.parametrize(
    ("fmt", "expected"),
    [
        (
            {"type": "json_schema", "name": "answer", "schema": {"type": "object", "properties": {}}, "strict": False},
            {
                "type": "json_schema",
                "json_schema": {"name": "answer", "schema": {"type": "object", "properties": {}}, "strict": False},
            },
        ),
        ({"type": "json_object"}, {"type": "json_object"}),
    ],
)
def test_text_format(
    client: openai.OpenAI, upstreams: dict[str, FakeUpstream], fmt: dict[str, Any], expected: dict[str, Any]
) -> None:
    client.responses.create(model="gpt", input="JSON please", text={"format": fmt})  # type: ignore[typeddict-item]
    assert _sent(upstreams["gpt"])["response_format"] == expected


def test_fields_not_sent_are_named(client: openai.OpenAI, upstreams: dict[str, FakeUpstream]) -> None:
    raw = client.responses.with_raw_response.create(
        model="gpt",
        input="hi",
        truncation="auto",
        text={"verbosity": "low"},
        extra_body={"future_field": 1},
    )
    assert raw.headers["x-llm-dropped-params"].split(",") == ["truncation", "future_field", "text.verbosity"]
    sent = _sent(upstreams["gpt"])
    assert not {"truncation", "future_field", "text", "verbosity"} & set(sent)


@pytest.mark.parametrize("deployment", ["gpt", "claude", "gemini"])
def test_an_image_reaches_every_protocol(
    client: openai.OpenAI, upstreams: dict[str, FakeUpstream], deployment: str
) -> None:
    content = [
        {"type": "input_text", "text": "What is this?"},
        {"type": "input_image", "image_url": PIXEL_URL, "detail": "low"},
    ]
    raw = client.responses.with_raw_response.create(
        model=deployment,
        input=[{"role": "user", "content": content}],  # type: ignore[list-item]
    )
    assert raw.headers["x-llm-model"] == deployment
    parts = _sent(upstreams[deployment])
    if deployment == "gpt":
        image = parts["messages"][0]["content"][1]
        assert image == {"type": "image_url", "image_url": {"url": PIXEL_URL, "detail": "low"}}
    elif deployment == "claude":
        block = parts["messages"][0]["content"][1]
        assert block["type"] == "image" and base64.b64decode(block["source"]["data"]) == PIXEL
        assert block["source"]["media_type"] == "image/png"
    else:
        inline = parts["contents"][0]["parts"][1]["inlineData"]
        assert base64.b64decode(inline["data"]) == PIXEL and inline["mimeType"] == "image/png"


def test_stored_response_get_items_continue_delete(client: openai.OpenAI, upstreams: dict[str, FakeUpstream]) -> None:
    first = client.responses.create(model="gpt", input="My name is Ann.", instructions="Be brief.")
    assert first.store is True
    got = client.responses.retrieve(first.id)
    assert got.model_dump() == first.model_dump()
    upstreams["gpt"].requests.clear()
    second = client.responses.create(model="gpt", input="What is my name?", previous_response_id=first.id)
    assert second.previous_response_id == first.id
    # The stored turn and its answer come first; instructions are not carried over (as at OpenAI).
    assert _sent(upstreams["gpt"])["messages"] == [
        {"role": "user", "content": "My name is Ann."},
        {"role": "assistant", "content": "Hello there"},
        {"role": "user", "content": "What is my name?"},
    ]
    items = client.responses.input_items.list(second.id, order="asc")
    assert [i.type for i in items.data] == ["message", "message", "message"]
    assert all(i.id for i in items.data) and items.data[1].id == first.output[0].id
    page = client.responses.input_items.list(second.id, limit=1)
    assert len(page.data) == 1 and page.has_more and page.data[0].id == items.data[-1].id
    assert client.responses.delete(first.id) is None
    with pytest.raises(openai.NotFoundError):
        client.responses.retrieve(first.id)
    with pytest.raises(openai.BadRequestError) as bad:
        client.responses.create(model="gpt", input="again", previous_response_id=first.id)
    assert bad.value.body["param"] == "previous_response_id"  # type: ignore[index]


def test_streamed_response_is_stored(client: openai.OpenAI) -> None:
    with client.responses.stream(model="gpt", input="Say hello") as stream:
        final = stream.get_final_response()
    assert client.responses.retrieve(final.id).output_text == "Hello there"


def test_store_false_keeps_nothing(client: openai.OpenAI) -> None:
    resp = client.responses.create(model="sim", input="hi", store=False)
    assert resp.store is False
    with pytest.raises(openai.NotFoundError):
        client.responses.retrieve(resp.id)


def test_a_store_failure_does_not_fail_the_answer(gw: Gateway, client: openai.OpenAI) -> None:
    async def drop(llm: LLMManager) -> None:
        db = await llm.database()
        async with db.transaction(write=True) as session:
            await session.execute("ALTER TABLE llm_manager_responses RENAME TO llm_manager_responses_away")

    async def restore(llm: LLMManager) -> None:
        db = await llm.database()
        async with db.transaction(write=True) as session:
            await session.execute("ALTER TABLE llm_manager_responses_away RENAME TO llm_manager_responses")

    gw.run(drop)
    try:
        resp = client.responses.create(model="sim", input="hi")
        assert resp.status == "completed"
        with pytest.raises(openai.InternalServerError) as down:
            client.responses.retrieve(resp.id)
        assert down.value.status_code == 503
    finally:
        gw.run(restore)


def test_bad_bodies_name_the_field(client: openai.OpenAI) -> None:
    cases: list[tuple[dict[str, Any], str]] = [
        ({"input": [{"role": "user", "content": [{"type": "input_image"}]}]}, "input[0].content[0].file_id"),
        ({"input": [{"type": "web_search_call"}]}, "input[0].type"),
        ({"input": "hi", "temperature": "0.5"}, "temperature"),
        ({"input": "hi", "tools": [{"type": "web_search"}]}, "tools[0].type"),
        ({"input": [{"role": "user", "content": [{"type": "input_text", "text": 1}]}]}, "input[0].content[0].text"),
        ({}, "input"),
    ]
    for extra, param in cases:
        with pytest.raises(openai.BadRequestError) as bad:
            client.post("/responses", body={"model": "gpt", **extra}, cast_to=httpx.Response)
        assert bad.value.body["param"] == param, (extra, bad.value.body)  # type: ignore[index]
    with pytest.raises(openai.NotFoundError) as missing:
        client.responses.create(model="nope", input="hi")
    assert missing.value.code == "model_not_found"


def test_a_stream_that_fails_ends_with_response_failed(gw: Gateway, client: openai.OpenAI) -> None:
    gw.script("sim", "cut:2")
    with httpx.stream(
        "POST", f"{gw.url}/v1/responses", json={"model": "sim", "input": "hi", "stream": True}, timeout=10
    ) as resp:
        events = [json.loads(line[6:]) for line in resp.iter_lines() if line.startswith("data: ")]
    assert [e["type"] for e in events[-2:]] == ["error", "response.failed"]
    failed = events[-1]["response"]
    assert failed["status"] == "failed" and failed["error"]["code"] == "server_error"
    assert not any(e["type"] == "response.completed" for e in events)


def test_a_key_sees_only_its_own_responses() -> None:
    gateways = start_gateway(sim_settings({"sim": {"family": "gpt"}}))  # its own: keys close the gateway for good
    gw = next(gateways)

    async def keys(llm: LLMManager) -> tuple[str, str]:
        db = await llm.database()
        return (await create_key(db, "a"))[1], (await create_key(db, "b"))[1]

    a, b = gw.run(keys)
    try:
        with (
            openai.OpenAI(base_url=f"{gw.url}/v1", api_key=a, max_retries=0) as ca,
            openai.OpenAI(base_url=f"{gw.url}/v1", api_key=b, max_retries=0) as cb,
        ):
            resp = ca.responses.create(model="sim", input="hi")
            assert ca.responses.retrieve(resp.id).id == resp.id
            with pytest.raises(openai.NotFoundError):
                cb.responses.retrieve(resp.id)
            with pytest.raises(openai.NotFoundError):
                cb.responses.delete(resp.id)
            with pytest.raises(openai.BadRequestError):
                cb.responses.create(model="sim", input="more", previous_response_id=resp.id)
            assert ca.responses.create(model="sim", input="more", previous_response_id=resp.id).status == "completed"
    finally:
        gateways.close()


def test_responses_fields_pass_through_to_a_responses_deployment(
    client: openai.OpenAI, upstreams: dict[str, FakeUpstream]
) -> None:
    raw = client.responses.with_raw_response.create(
        model="gpt-r",
        input="hi",
        instructions="Be brief.",
        truncation="auto",
        text={"verbosity": "low", "format": {"type": "json_object"}},
        reasoning={"summary": "auto"},
        extra_body={"prompt_cache_key": "k1"},
    )
    assert raw.parse().output_text == "Hello there"
    assert "x-llm-dropped-params" not in raw.headers
    sent = _sent(upstreams["gpt-r"])
    assert sent["input"] == [{"type": "message", "role": "user", "content": "hi"}]
    assert sent["instructions"] == "Be brief." and sent["truncation"] == "auto" and sent["prompt_cache_key"] == "k1"
    assert sent["text"] == {"format": {"type": "json_object"}, "verbosity": "low"}
    assert sent["reasoning"]["summary"] == "auto"


def test_a_responses_deployment_streams_to_a_chat_client(gw: Gateway, upstreams: dict[str, FakeUpstream]) -> None:
    with openai.OpenAI(base_url=f"{gw.url}/v1", api_key="x", max_retries=0) as c:
        chunks = c.chat.completions.create(
            model="gpt-r", messages=[{"role": "user", "content": "hi"}], stream=True, seed=3
        )
        assert "".join(ch.choices[0].delta.content or "" for ch in chunks if ch.choices) == "Hello there"
    assert upstreams["gpt-r"].requests[-1].json["stream"] is True
