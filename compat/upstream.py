"""Fake provider upstreams that answer whatever a client's request asks for, and record every body they receive.

The client compatibility suite drives real clients through the gateway; the gateway forwards to these. Each
answers in its provider's exact wire format (built by ``tests/fakes/*_wire.py``, which are checked against the
official SDKs' types) and decides *what* to answer from the request itself, the way a model would:

- tools offered and not yet answered by a tool result → a call of the forced tool, else the first one, with
  arguments valid against its schema;
- a JSON schema asked for (OpenAI ``response_format``, Anthropic's forced tool) → JSON valid against it;
- JSON mode (``{"type": "json_object"}``) → a JSON object;
- otherwise a fixed sentence, streamed in three pieces when ``stream`` is set;
- ``POST /v1/embeddings`` → one deterministic vector per input, of the size asked for (``dimensions``), as JSON
  numbers or base64 as ``encoding_format`` says.

Tests then assert on :attr:`FakeUpstream.requests`: what really reached the provider.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from typing import Any

from tests.fakes import anthropic_wire, embeddings_wire, openai_wire
from tests.fakes.server import FakeUpstream, Recorded, Reply, serve_in_thread

from llm_manager.providers._fake_json import fake_from_schema

__all__ = [
    "ANSWER",
    "EMBEDDING_MODEL",
    "Upstreams",
    "anthropic_reply",
    "image_sent",
    "openai_reply",
    "running_upstreams",
]

ANSWER = "Hello from the fake upstream."
PIECES = ["Hello ", "from the ", "fake upstream."]
OPENAI_MODEL = "gpt-4o-mini-2024-07-18"
EMBEDDING_MODEL = "text-embedding-3-small"


def _tool_args(tool_schema: dict[str, Any], name: str) -> str:
    return json.dumps(fake_from_schema(tool_schema or {"type": "object", "properties": {}}, name))


# -- OpenAI Chat Completions ----------------------------------------------------------------------------------------


def openai_reply(req: Recorded) -> Reply:
    """Answer a ``POST /v1/chat/completions`` (or list models for ``GET /v1/models``)."""
    if req.method == "GET":
        return Reply.json(openai_wire.models_list(OPENAI_MODEL))
    body = req.json
    if req.path.endswith("/embeddings"):
        return _embeddings_reply(body)
    call = _openai_tool_call(body)
    if call is not None:
        return _openai_tool_reply(body, call)
    text = _openai_text(body)
    if body.get("stream"):
        pieces = PIECES if text == ANSWER else [text[: len(text) // 2], text[len(text) // 2 :]]
        usage = bool((body.get("stream_options") or {}).get("include_usage"))
        return Reply.sse(openai_wire.stream_events(pieces, model=OPENAI_MODEL, usage=usage))
    return Reply.json(openai_wire.completion(text, model=OPENAI_MODEL))


def _embeddings_reply(body: dict[str, Any]) -> Reply:
    inputs = body["input"] if isinstance(body["input"], list) else [body["input"]]
    size = body.get("dimensions", 1536)
    vectors = [embeddings_wire.vector(i + 1, size) for i in range(len(inputs))]
    b64 = body.get("encoding_format") == "base64"
    return Reply.json(
        embeddings_wire.openai_list(vectors, model=EMBEDDING_MODEL, prompt_tokens=2 * len(inputs), b64=b64)
    )


def _openai_text(body: dict[str, Any]) -> str:
    fmt = body.get("response_format") or {}
    if fmt.get("type") == "json_schema":
        schema = fmt["json_schema"].get("schema") or {}
        return json.dumps(fake_from_schema(schema, "answer"))
    if fmt.get("type") == "json_object":
        # JSON mode carries its schema, if any, in the prompt (instructor's Mode.JSON does): follow it like a model.
        schema = _schema_in_messages(body["messages"])
        return json.dumps(fake_from_schema(schema, "answer") if schema else {"answer": ANSWER})
    return ANSWER


def _schema_in_messages(messages: list[dict[str, Any]]) -> dict[str, Any] | None:
    decoder = json.JSONDecoder()
    for m in messages:
        content = m.get("content")
        texts = [content] if isinstance(content, str) else [p.get("text", "") for p in content or ()]
        for text in texts:
            start = text.find("{")
            while start != -1:
                try:
                    found, _ = decoder.raw_decode(text, start)
                except ValueError:
                    found = None
                if isinstance(found, dict) and "properties" in found:
                    return found
                start = text.find("{", start + 1)
    return None


def _openai_tool_call(body: dict[str, Any]) -> dict[str, Any] | None:
    tools = body.get("tools") or []
    if not tools or body.get("tool_choice") == "none":
        return None
    if body["messages"] and body["messages"][-1].get("role") == "tool":
        return None  # the tool has answered: now the model speaks
    choice = body.get("tool_choice")
    wanted = choice.get("function", {}).get("name") if isinstance(choice, dict) else None
    fn = next((t["function"] for t in tools if t["function"]["name"] == wanted), tools[0]["function"])
    args = _tool_args(fn.get("parameters") or {}, fn["name"])
    return {"id": "call_fake0001", "type": "function", "function": {"name": fn["name"], "arguments": args}}


def _openai_tool_reply(body: dict[str, Any], call: dict[str, Any]) -> Reply:
    if not body.get("stream"):
        out = openai_wire.completion(None, model=OPENAI_MODEL, finish_reason="tool_calls")
        out["choices"][0]["message"]["tool_calls"] = [call]
        return Reply.json(out)
    cid = "chatcmpl-faketools0001"
    first = {"index": 0, **call, "function": {"name": call["function"]["name"], "arguments": ""}}
    rest = {"index": 0, "function": {"arguments": call["function"]["arguments"]}}
    events = [
        openai_wire.sse(
            openai_wire.chunk(id=cid, model=OPENAI_MODEL, delta={"role": "assistant", "tool_calls": [first]})
        ),
        openai_wire.sse(openai_wire.chunk(id=cid, model=OPENAI_MODEL, delta={"tool_calls": [rest]})),
        openai_wire.sse(openai_wire.chunk(id=cid, model=OPENAI_MODEL, finish_reason="tool_calls")),
    ]
    if (body.get("stream_options") or {}).get("include_usage"):
        u = openai_wire.usage(12, 9)
        events.append(openai_wire.sse(openai_wire.chunk(id=cid, model=OPENAI_MODEL, choices=False, usage=u)))
    return Reply.sse([*events, openai_wire.DONE])


# -- Anthropic Messages ---------------------------------------------------------------------------------------------


def anthropic_reply(req: Recorded) -> Reply:
    """Answer a ``POST /v1/messages``."""
    body = req.json
    tool = _anthropic_tool(body)
    if tool is not None:
        return _anthropic_tool_reply(body, tool)
    if body.get("stream"):
        return Reply.sse(anthropic_wire.stream_events(PIECES))
    return Reply.json(anthropic_wire.message(ANSWER))


def _anthropic_tool(body: dict[str, Any]) -> dict[str, Any] | None:
    tools = body.get("tools") or []
    choice = body.get("tool_choice") or {}
    if not tools or choice.get("type") == "none":
        return None
    last = body["messages"][-1]
    content = last.get("content")
    if isinstance(content, list) and any(b.get("type") == "tool_result" for b in content):
        return None
    wanted = choice.get("name") if choice.get("type") == "tool" else None
    return next((t for t in tools if t["name"] == wanted), tools[0])


def _anthropic_tool_reply(body: dict[str, Any], tool: dict[str, Any]) -> Reply:
    args = fake_from_schema(tool.get("input_schema") or {}, tool["name"])
    block = {"type": "tool_use", "id": "toolu_01fake0001", "name": tool["name"], "input": args}
    if not body.get("stream"):
        msg = anthropic_wire.message("", stop_reason="tool_use")
        msg["content"] = [block]
        return Reply.json(msg)
    start = anthropic_wire.message("", stop_reason=None, output_tokens=1)
    sse = anthropic_wire.sse
    opened = {**block, "input": {}}
    delta = {"type": "input_json_delta", "partial_json": json.dumps(args)}
    return Reply.sse(
        [
            sse("message_start", {"type": "message_start", "message": start}),
            sse("content_block_start", {"type": "content_block_start", "index": 0, "content_block": opened}),
            sse("content_block_delta", {"type": "content_block_delta", "index": 0, "delta": delta}),
            *anthropic_wire.stream_end(0, "tool_use", 9),
        ]
    )


# -- what reached them ---------------------------------------------------------------------------------------------


def image_sent(body: dict[str, Any]) -> str | None:
    """The base64 data of the first inline image in an upstream body (an OpenAI ``image_url`` data URL or an
    Anthropic base64 ``image`` block), ``None`` when it holds none."""
    for message in body.get("messages", ()):
        content = message.get("content")
        for part in content if isinstance(content, list) else ():
            if part.get("type") == "image_url":
                return str(part["image_url"]["url"]).split(";base64,", 1)[-1]
            if part.get("type") == "image" and part["source"].get("type") == "base64":
                return str(part["source"]["data"])
    return None


# -- both, running --------------------------------------------------------------------------------------------------


@dataclass
class Upstreams:
    """The running fakes. ``mark()`` then ``since(mark)`` gives the bodies one client call produced."""

    openai: FakeUpstream
    anthropic: FakeUpstream

    def mark(self) -> tuple[int, int]:
        return len(self.openai.requests), len(self.anthropic.requests)

    def openai_since(self, mark: tuple[int, int]) -> list[dict[str, Any]]:
        return [r.json for r in self.openai.requests[mark[0] :] if r.method == "POST"]

    def anthropic_since(self, mark: tuple[int, int]) -> list[dict[str, Any]]:
        return [r.json for r in self.anthropic.requests[mark[1] :] if r.method == "POST"]


@contextmanager
def running_upstreams() -> Iterator[Upstreams]:
    with ExitStack() as stack:
        oa = stack.enter_context(serve_in_thread(FakeUpstream(openai_reply)))
        an = stack.enter_context(serve_in_thread(FakeUpstream(anthropic_reply)))
        yield Upstreams(oa, an)
