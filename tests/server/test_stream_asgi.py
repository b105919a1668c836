"""The plain-ASGI hot paths (``POST /v1/chat/completions``, ``POST /v1/messages``) driven directly: a hand-built
scope, a ``receive`` the test controls and a ``send`` that records every message. No sockets, no server."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator
from typing import Any

import pytest

from llm_manager.manager import LLMManager
from llm_manager.providers.simulated import SimulatedAdapter
from llm_manager.server import create_app
from tests.helpers import sim_settings
from tests.server.conftest import MODELS

REPLY = "alpha beta gamma delta"
ANSWER = "[simulated gpt] " + REPLY  # a simulated answer always says so first
# 40 pieces at 20 a second: a stream that takes two seconds when nobody leaves.
SLOW_SIM: dict[str, Any] = {"tokens_per_s": 20, "reply": " ".join(["word"] * 40)}
CHAT = "/v1/chat/completions"
MESSAGES = "/v1/messages"
HELLO = [{"role": "user", "content": "hello"}]


class Client:
    """One request's ``receive`` and ``send``: the body in ``parts``, then ``http.disconnect`` once ``send`` has
    recorded ``leave_after_body`` body messages (never, when it is ``None``)."""

    def __init__(self, parts: list[bytes], *, leave_after_body: int | None = None) -> None:
        self.parts = list(parts)
        self.sent: list[dict[str, Any]] = []
        self.gone = asyncio.Event()
        self.leave_after_body = leave_after_body

    async def receive(self) -> dict[str, Any]:
        if self.parts:
            chunk = self.parts.pop(0)
            return {"type": "http.request", "body": chunk, "more_body": bool(self.parts)}
        await self.gone.wait()  # the body is read: only a lost connection answers now
        return {"type": "http.disconnect"}

    async def send(self, message: dict[str, Any]) -> None:
        self.sent.append(message)
        if self.leave_after_body is not None and len(self.bodies) >= self.leave_after_body:
            self.gone.set()

    @property
    def start(self) -> dict[str, Any]:
        assert self.sent[0]["type"] == "http.response.start"
        return self.sent[0]

    @property
    def headers(self) -> dict[str, str]:
        return {k.decode(): v.decode() for k, v in self.start["headers"]}

    @property
    def bodies(self) -> list[dict[str, Any]]:
        return [m for m in self.sent if m["type"] == "http.response.body"]

    @property
    def body(self) -> bytes:
        return b"".join(m.get("body", b"") for m in self.bodies)


def scope(path: str, headers: dict[str, str]) -> dict[str, Any]:
    return {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": "POST",
        "scheme": "http",
        "path": path,
        "raw_path": path.encode(),
        "query_string": b"",
        "root_path": "",
        "headers": [(k.encode(), v.encode()) for k, v in headers.items()],
        "client": ("127.0.0.1", 50000),
        "server": ("127.0.0.1", 8000),
    }


async def call(
    app: Any,
    path: str,
    payload: Any,
    *,
    parts: int = 1,
    ctype: str = "application/json",
    length: bool = True,
    leave_after_body: int | None = None,
) -> Client:
    raw = payload if isinstance(payload, bytes) else json.dumps(payload).encode()
    size = -(-len(raw) // parts)
    client = Client([raw[i : i + size] for i in range(0, len(raw), size)] or [b""], leave_after_body=leave_after_body)
    headers = {"content-type": ctype, **({"content-length": str(len(raw))} if length else {})}
    await asyncio.wait_for(app(scope(path, headers), client.receive, client.send), timeout=5)
    return client


@pytest.fixture
async def llm() -> AsyncIterator[LLMManager]:
    models: dict[str, dict[str, Any]] = {k: dict(v) for k, v in MODELS.items()}
    models["gpt"]["simulate"] = {"reply": REPLY}
    models["slow"] = {"family": "llama", "simulate": dict(SLOW_SIM)}
    async with LLMManager(sim_settings(models, max_retries=0, queue_timeout_s=0)) as manager:
        yield manager


def sim(llm: LLMManager, name: str) -> SimulatedAdapter:
    adapter = llm.adapter(name)
    assert isinstance(adapter, SimulatedAdapter)
    return adapter


def assert_one_end(client: Client) -> None:
    """Every body message but the last says more is coming; the last one ends the response."""
    flags = [m.get("more_body", False) for m in client.bodies]
    assert flags == [True] * (len(flags) - 1) + [False], flags


async def test_an_openai_stream_opens_with_its_first_piece_and_ends_with_done_in_one_message(llm: LLMManager) -> None:
    client = await call(create_app(llm), CHAT, {"model": "gpt", "messages": HELLO, "stream": True})
    assert client.start["status"] == 200
    headers = client.headers
    assert headers["content-type"].startswith("text/event-stream")
    assert headers["x-request-id"].startswith("req_") and headers["x-llm-model"] == "gpt"
    assert headers["x-llm-attempts"] == "1"
    assert_one_end(client)
    assert len(client.bodies) >= 2
    first = [json.loads(line[6:]) for line in client.bodies[0]["body"].decode().split("\n\n") if line]
    assert [c["choices"][0]["delta"] for c in first] == [
        {"role": "assistant", "content": ""},
        {"content": "[simulated gpt]"},
    ]
    assert all(c["id"] == headers["x-request-id"].replace("req_", "chatcmpl-", 1) for c in first)
    last = client.bodies[-1]["body"]
    assert last.endswith(b"data: [DONE]\n\n") and b'"finish_reason":"stop"' in last
    assert client.body.count(b"[DONE]") == 1
    text = "".join(
        json.loads(line[6:])["choices"][0]["delta"].get("content") or ""
        for line in client.body.decode().split("\n\n")
        if line.startswith("data: {")
    )
    assert text == ANSWER


async def test_an_anthropic_stream_ends_with_message_stop_in_one_final_message(llm: LLMManager) -> None:
    body = {"model": "gpt", "max_tokens": 100, "messages": HELLO, "stream": True}
    client = await call(create_app(llm), MESSAGES, body)
    assert client.start["status"] == 200
    headers = client.headers
    assert headers["content-type"].startswith("text/event-stream")
    assert headers["x-llm-model"] == "gpt" and headers["x-llm-attempts"] == "1"
    assert headers["request-id"] == headers["x-request-id"]
    assert_one_end(client)
    opening = client.bodies[0]["body"]
    assert opening.startswith(b"event: message_start\n") and b'"text_delta","text":"[simulated gpt]"' in opening
    last = client.bodies[-1]["body"]
    assert b"event: message_delta\n" in last and last.endswith(
        b'event: message_stop\ndata: {"type":"message_stop"}\n\n'
    )
    assert client.body.count(b"event: message_stop") == 1


async def test_a_whole_answer_is_two_messages_with_the_right_length(llm: LLMManager) -> None:
    client = await call(create_app(llm), CHAT, {"model": "gpt", "messages": HELLO})
    assert [m["type"] for m in client.sent] == ["http.response.start", "http.response.body"]
    assert client.start["status"] == 200
    assert client.bodies[0].get("more_body", False) is False
    assert client.headers["content-type"] == "application/json"
    assert int(client.headers["content-length"]) == len(client.body)
    doc = json.loads(client.body)
    assert doc["object"] == "chat.completion" and doc["id"] == client.headers["x-request-id"].replace(
        "req_", "chatcmpl-", 1
    )
    assert doc["choices"][0]["message"] == {"role": "assistant", "content": ANSWER}


async def test_a_client_that_leaves_mid_stream_stops_it_and_the_attempt_is_cancelled(llm: LLMManager) -> None:
    t0 = time.monotonic()
    body = {"model": "slow", "messages": HELLO, "stream": True}
    client = await call(create_app(llm), CHAT, body, leave_after_body=1)
    took = time.monotonic() - t0
    assert took < 1.0, took  # the whole stream would take two seconds
    assert client.start["status"] == 200
    assert b"[DONE]" not in client.body and b'"finish_reason":"' not in client.body
    assert all(m.get("more_body") is True for m in client.bodies)  # nothing pretends the answer is complete
    assert len(client.bodies) <= 2 and b'"content":"[simulated slow]"' in client.bodies[0]["body"]
    assert llm.ledger is not None
    await llm.ledger.flush()
    rows = [r for r in await llm.ledger.rows() if r.request_id == client.headers["x-request-id"]]
    assert [(r.deployment, r.status, r.error_code) for r in rows] == [("slow", "error", "cancelled")]


async def test_a_stream_that_breaks_ends_with_an_error_event_and_no_done(llm: LLMManager) -> None:
    sim(llm, "gpt").push("cut:2")
    client = await call(create_app(llm), CHAT, {"model": "gpt", "messages": HELLO, "stream": True})
    assert client.start["status"] == 200
    assert_one_end(client)
    last = client.bodies[-1]["body"]
    assert b"[DONE]" not in client.body
    assert last.startswith(b'data: {"error":') and last.endswith(b"\n\n")
    assert b'"content":"[simulated gpt]"' in client.bodies[0]["body"]  # it broke after it had started
    assert json.loads(last[6:])["error"]["message"]


def _too_big() -> dict[str, Any]:
    return {"model": "gpt", "max_tokens": 10, "messages": [{"role": "user", "content": "x" * 500}]}


@pytest.mark.parametrize("length", [True, False], ids=["declared", "chunked"])
@pytest.mark.parametrize(
    ("payload", "ctype", "status"),
    [
        (None, "application/json", 413),
        (b'{"model": "gpt"', "application/json", 400),
        (b'{"model": "gpt", "messages": []}', "text/plain", 415),
    ],
    ids=["too-large", "bad-json", "wrong-type"],
)
@pytest.mark.parametrize("path", [CHAT, MESSAGES])
async def test_a_refused_body_is_answered_in_the_wire_formats_error_shape(
    llm: LLMManager, path: str, payload: bytes | None, ctype: str, status: int, length: bool
) -> None:
    app = create_app(llm, max_body_bytes=200)
    client = await call(app, path, _too_big() if payload is None else payload, ctype=ctype, length=length, parts=3)
    assert [m["type"] for m in client.sent] == ["http.response.start", "http.response.body"]
    assert client.start["status"] == status
    headers = client.headers
    assert headers["x-request-id"].startswith("req_")
    assert headers["content-type"] == "application/json" and int(headers["content-length"]) == len(client.body)
    doc = json.loads(client.body)
    if path == CHAT:
        assert set(doc) == {"error"} and doc["error"]["type"] == "invalid_request_error"
        message = doc["error"]["message"]
    else:
        assert doc["type"] == "error" and doc["request_id"] == headers["x-request-id"]
        assert headers["request-id"] == headers["x-request-id"]
        # Anthropic's own type for an over-size body; the rest are invalid requests.
        assert doc["error"]["type"] == ("request_too_large" if status == 413 else "invalid_request_error")
        message = doc["error"]["message"]
    expected = {413: "200-byte limit", 400: "not valid JSON", 415: "text/plain"}[status]
    assert expected in message
    assert sim(llm, "gpt").calls == 0  # nothing reached a model


@pytest.mark.parametrize("stream", [False, True])
async def test_a_body_in_several_messages_is_put_back_together(llm: LLMManager, stream: bool) -> None:
    prompt = "a prompt long enough to be cut in pieces: " + "é" * 40
    body = {"model": "gpt", "messages": [{"role": "user", "content": prompt}], "stream": stream}
    client = await call(create_app(llm), CHAT, body, parts=7, length=False)
    assert client.start["status"] == 200, client.body
    assert sim(llm, "gpt").requests[-1].messages[-1].content == prompt
    if stream:
        assert client.body.endswith(b"data: [DONE]\n\n")
    else:
        assert json.loads(client.body)["choices"][0]["message"]["content"] == ANSWER


async def test_the_hot_routes_are_found_behind_a_root_path(llm: LLMManager) -> None:
    app = create_app(llm)
    sent: list[dict[str, Any]] = []
    body = json.dumps({"model": "gpt", "messages": [{"role": "user", "content": "hi"}]}).encode()
    scope = {
        "type": "http",
        "method": "POST",
        "path": "/llm/v1/chat/completions",
        "root_path": "/llm",
        "headers": [(b"content-type", b"application/json")],
    }

    async def receive() -> dict[str, Any]:
        return {"type": "http.request", "body": body, "more_body": False}

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    await app(scope, receive, send)
    assert sent[0]["status"] == 200 and json.loads(sent[1]["body"])["object"] == "chat.completion"
