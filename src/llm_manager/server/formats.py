"""The wire formats of the gateway's two answering routes (``/v1/chat/completions``, ``/v1/messages``).

Everything else on those routes is one code path (:mod:`llm_manager.server.app`); a :class:`Format` holds what
differs: parsing the body, the whole answer's body and headers, the stream's events as bytes, and the error shape.
``/v1/completions`` brings its own (``completions_api``).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, Protocol

from llm_manager import _json
from llm_manager.server.anthropic_api import MessageEvents, error_body, message_body, message_headers, parse_messages
from llm_manager.server.choices import merged
from llm_manager.server.openai_api import (
    ChunkWriter,
    completion_body,
    completion_document,
    parse_chat,
    response_headers,
)
from llm_manager.tokens import estimate_prompt_tokens

if TYPE_CHECKING:
    from llm_manager.config import Settings
    from llm_manager.server.errors import ErrorReply
    from llm_manager.types import Request, Response, StreamEvent, TokenLogprob, ToolCallDelta

__all__ = ["ANTHROPIC", "OPENAI", "ChatEvents", "Events", "Format"]

_DONE = b"data: [DONE]\n\n"


class Events(Protocol):
    """A wire format's stream events as bytes (:class:`ChatEvents`, ``anthropic_api.MessageEvents``)."""

    def opening(self) -> bytes: ...

    def delta(self, text: str, logprobs: list[TokenLogprob] | None, /) -> bytes: ...

    def reasoning(self, text: str, signature: str, /) -> bytes: ...

    def tool_call(self, piece: ToolCallDelta) -> bytes: ...

    def closing(self, resp: Response | None) -> bytes: ...

    def failure(self, reply: ErrorReply) -> bytes: ...


class ChatEvents:
    """OpenAI ``chat.completion.chunk`` events; the stream ends with ``[DONE]``, which a failure never sends."""

    __slots__ = ("_include_usage", "_writer")

    def __init__(self, writer: ChunkWriter, include_usage: bool) -> None:
        self._writer = writer
        self._include_usage = include_usage

    def opening(self) -> bytes:
        return self._writer.role()

    def delta(self, text: str, logprobs: list[TokenLogprob] | None) -> bytes:
        return self._writer.delta(text, logprobs)

    def reasoning(self, text: str, _signature: str) -> bytes:
        # Chat Completions has no field for a signature: a client continuing after a tool call cannot send one back.
        return self._writer.reasoning(text) if text else b""

    def tool_call(self, piece: ToolCallDelta) -> bytes:
        return self._writer.tool_call(piece)

    def closing(self, resp: Response | None) -> bytes:
        end = self._writer.finish((resp.finish_reason if resp else None) or "stop")
        if self._include_usage and resp is not None:
            end += self._writer.usage(resp)
        return end + _DONE

    def failure(self, reply: ErrorReply) -> bytes:
        return b"data: " + _json.dumps(reply.body) + b"\n\n"


class Format(Protocol):
    """What differs between the wire formats on the two answering routes."""

    def parse(self, body: Any, headers: Mapping[str, str], settings: Settings, /) -> Any: ...

    def body(self, resp: Response, /) -> bytes: ...

    def headers(self, resp: Response, /) -> dict[str, str]: ...

    def events(self, rid: str, first: StreamEvent, parsed: Any, request: Request, /) -> Events: ...

    def stream_headers(self, rid: str, /) -> dict[str, str]: ...

    def error_body(self, reply: ErrorReply, rid: str, /) -> bytes: ...

    def error_headers(self, reply: ErrorReply, rid: str, /) -> dict[str, str]: ...


class OpenAIFormat:
    parse = staticmethod(parse_chat)
    body = staticmethod(completion_body)
    headers = staticmethod(response_headers)

    @staticmethod
    def body_many(resps: list[Response], /) -> bytes:
        return merged([completion_document(r) for r in resps])

    @staticmethod
    def events(rid: str, first: StreamEvent, parsed: Any, _request: Request, /) -> Events:
        return ChatEvents(ChunkWriter(rid, first.model), parsed.include_usage)

    @staticmethod
    def stream_headers(_rid: str, /) -> dict[str, str]:
        return {}

    @staticmethod
    def error_body(reply: ErrorReply, _rid: str, /) -> bytes:
        return _json.dumps(reply.body)

    @staticmethod
    def error_headers(reply: ErrorReply, rid: str) -> dict[str, str]:
        return {"x-request-id": rid, **reply.headers}


class AnthropicFormat:
    parse = staticmethod(parse_messages)
    body = staticmethod(message_body)
    headers = staticmethod(message_headers)
    error_body = staticmethod(error_body)

    @staticmethod
    def events(rid: str, first: StreamEvent, _parsed: Any, request: Request, /) -> Events:
        return MessageEvents(rid, first.model, estimate_prompt_tokens(request))

    @staticmethod
    def stream_headers(rid: str) -> dict[str, str]:
        return {"request-id": rid}

    @staticmethod
    def error_headers(reply: ErrorReply, rid: str) -> dict[str, str]:
        return {"x-request-id": rid, "request-id": rid, **reply.headers}


OPENAI: Format = OpenAIFormat()
ANTHROPIC: Format = AnthropicFormat()
