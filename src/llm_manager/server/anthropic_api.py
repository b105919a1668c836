"""The Anthropic Messages wire format (``POST /v1/messages``): bodies in, ``message`` objects and events out.

Pure functions over dicts and bytes, like :mod:`llm_manager.server.openai_api`, whose model routing
(deployment | alias | ``task:<type>``, ``x-llm-task``) and errors this module reuses: an error is mapped once, to
an :class:`ErrorReply`, and only re-shaped here.

Protocol facts relied on (they are what the official SDK parses):

- ``max_tokens`` is required; ``temperature`` is 0..1; ``system`` is a top-level string or text blocks;
  ``output_config.format`` asks for JSON matching a schema (our :class:`ResponseFormat`).
- A stream is SSE with named events: ``message_start``, ``content_block_start``, ``ping``,
  ``content_block_delta`` (``text_delta``), ``content_block_stop``, ``message_delta`` (stop reason and cumulative
  usage, which overwrites what ``message_start`` said), ``message_stop``; or an ``error`` event once the 200 is
  sent, after which nothing follows.
- Usage splits the prompt: ``input_tokens`` excludes ``cache_read_input_tokens``; their sum is the prompt.
- Tools: ``tools[]`` (name, description, ``input_schema``), ``tool_choice`` (auto / any / none / tool, with
  ``disable_parallel_tool_use``); a call is a ``tool_use`` block in an assistant turn (streamed as a block start
  and ``input_json_delta`` pieces), a result a ``tool_result`` block in the next user turn.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from llm_manager import _json
from llm_manager.codecs.anthropic_messages.errors import encode_error
from llm_manager.codecs.anthropic_messages.ingress import decode_client_request
from llm_manager.codecs.anthropic_messages.request import tool_input
from llm_manager.config import Settings
from llm_manager.server.errors import ErrorReply
from llm_manager.server.openai_api import body_id, client_prefs, response_headers
from llm_manager.types import FinishReason, Message, Response, ToolCallDelta

__all__ = [
    "MessageEvents",
    "ParsedMessages",
    "error_body",
    "message_body",
    "message_headers",
    "parse_messages",
    "stop_reason",
]

_STOP: dict[FinishReason, str] = {
    # A matched stop sequence also finishes as "stop": providers drop the sequence from the text and ours do not
    # say which one matched, so end_turn (with stop_sequence null) is all that can be told truthfully.
    "stop": "end_turn",
    "length": "max_tokens",
    "tool_calls": "tool_use",
    "content_filter": "refusal",
}


@dataclass(slots=True)
class ParsedMessages:
    """A Messages request turned into :class:`Request` preferences."""

    messages: list[Message]
    prefs: dict[str, Any]
    stream: bool


def parse_messages(body: Any, headers: Mapping[str, str], settings: Settings) -> ParsedMessages:
    """Decode a Messages body with the Messages codec, plus the ``x-llm-*`` steering headers.

    Raises :class:`BadBody` naming the field (what Anthropic answers with 400) or ``UnknownModel``.
    """
    client = decode_client_request(body)
    # Who pays: metadata.user_id (the codec's ``user``), unless the x-llm-* headers say otherwise.
    messages, prefs = client_prefs(client, headers, settings)
    return ParsedMessages(messages, prefs, client.stream)


def stop_reason(finish: FinishReason | None) -> str:
    """Anthropic's ``stop_reason`` for our finish reason."""
    return _STOP.get(finish, "end_turn") if finish is not None else "end_turn"


def _usage(resp: Response) -> dict[str, int]:
    u = resp.usage
    cached = min(u.cached_tokens, u.prompt_tokens)
    written = min(u.cache_write_tokens, u.prompt_tokens - cached)
    return {
        "input_tokens": u.prompt_tokens - cached - written,
        "output_tokens": u.completion_tokens,
        "cache_read_input_tokens": cached,
        "cache_creation_input_tokens": written,
    }


def message_body(resp: Response) -> bytes:
    """A ``message`` object for a whole answer."""
    return _json.dumps(
        {
            "id": body_id("msg_", resp.id),
            "type": "message",
            "role": "assistant",
            "content": _content(resp),
            "model": resp.model,
            "stop_reason": stop_reason(resp.finish_reason),
            "stop_sequence": None,
            "usage": _usage(resp),
        }
    )


def _content(resp: Response) -> list[dict[str, Any]]:
    blocks: list[dict[str, Any]] = []
    if resp.reasoning or resp.reasoning_signature:
        # First, as Anthropic answers: a client sends it back, signed, when it continues after a tool call.
        blocks.append(
            {"type": "thinking", "thinking": resp.reasoning or "", "signature": resp.reasoning_signature or ""}
        )
    if resp.content or not resp.tool_calls:
        blocks.append({"type": "text", "text": resp.content})
    return blocks + [
        {"type": "tool_use", "id": c.id, "name": c.name, "input": tool_input(c.arguments)} for c in resp.tool_calls
    ]


def message_headers(resp: Response) -> dict[str, str]:
    """The gateway's ``x-llm-*`` headers plus Anthropic's ``request-id`` (what the SDK reports as the id)."""
    return {**response_headers(resp), "request-id": resp.id}


def error_body(reply: ErrorReply, request_id: str) -> bytes:
    """``reply`` (status and message already mapped for OpenAI clients) in Anthropic's error shape."""
    return _json.dumps(_error(reply, request_id))


def _error(reply: ErrorReply, request_id: str) -> dict[str, Any]:
    # The type follows the status, with the codec's table (the one the upstream side reads).
    return encode_error(reply.status, reply.body["error"]["message"], request_id)


def _event(name: bytes, payload: Any) -> bytes:
    return b"event: " + name + b"\ndata: " + _json.dumps(payload) + b"\n\n"


_PING = _event(b"ping", {"type": "ping"})
_DELTA_HEAD = (
    b'event: content_block_delta\ndata: {"type":"content_block_delta","index":0,"delta":{"type":"text_delta","text":'
)
_DELTA_TAIL = b"}}\n\n"
_MESSAGE_STOP = _event(b"message_stop", {"type": "message_stop"})
_OPENING: dict[str, dict[str, Any]] = {
    "text": {"type": "text", "text": ""},
    "thinking": {"type": "thinking", "thinking": "", "signature": ""},
}


class MessageEvents:
    """The events of one streamed message, from byte templates: per piece of text only the text is serialised.

    Blocks open as their first piece arrives: thinking (the model's reasoning) first, then text, then a
    ``tool_use`` block per tool call, whose arguments stream as ``input_json_delta`` pieces. ``message_start``
    carries an estimate of the input tokens, since the provider reports usage only at the end; ``message_delta``
    then gives the real counts, which replace it.
    """

    __slots__ = ("_block", "_id", "_kind", "_signature", "_start", "_thought")

    def __init__(self, message_id: str, model: str, input_tokens: int) -> None:
        self._id = message_id
        self._block = -1
        """Index of the open content block (-1: none yet)."""
        self._kind: str | None = None
        """What the open block holds: text, thinking or tool_use."""
        self._thought = False
        """Whether a thinking block was opened."""
        self._signature = ""
        """The open thinking block's signature so far."""
        message: dict[str, Any] = {
            "id": body_id("msg_", message_id),
            "type": "message",
            "role": "assistant",
            "content": [],
            "model": model,
            "stop_reason": None,
            "stop_sequence": None,
            "usage": {"input_tokens": input_tokens, "output_tokens": 0},
        }
        self._start = _event(b"message_start", {"type": "message_start", "message": message})

    def opening(self) -> bytes:
        """``message_start`` (the first block's start follows with a ping, as Anthropic opens a stream)."""
        return self._start

    def delta(self, text: str, _logprobs: object = None) -> bytes:
        """One piece of text (the Messages API has no log probabilities)."""
        if self._kind == "text" and self._block == 0:
            return _DELTA_HEAD + _json.dumps_str(text) + _DELTA_TAIL
        opened = b"" if self._kind == "text" else self._next("text", _OPENING["text"])
        return opened + self._block_delta({"type": "text_delta", "text": text})

    def reasoning(self, text: str, signature: str) -> bytes:
        """A piece of the model's thinking, or of its signature. The signature is sent whole, as one
        ``signature_delta`` just before its thinking block closes (as Anthropic ends one; the SDK keeps the last
        ``signature_delta``, not their sum), so a client can send the signed block back after a tool call. A
        signature that comes after its thinking block was closed (an OpenAI reasoning model signs at the very
        end) cannot join it; one with no thinking before it comes in a thinking block of its own."""
        out = b""
        if self._kind != "thinking" and (text or (signature and not self._thought)):
            out = self._next("thinking", _OPENING["thinking"])
            self._thought = True
        if text:
            out += self._block_delta({"type": "thinking_delta", "thinking": text})
        if signature and self._kind == "thinking":
            self._signature += signature
        return out

    def tool_call(self, piece: ToolCallDelta) -> bytes:
        """A call's first piece opens its ``tool_use`` block; later pieces are its arguments."""
        out = b""
        if piece.id is not None or piece.name is not None:
            block = {
                "type": "tool_use",
                "id": piece.id or f"toolu_{piece.index}",
                "name": piece.name or "",
                "input": {},
            }
            out = self._next("tool_use", block)
        if piece.arguments:
            out += self._block_delta({"type": "input_json_delta", "partial_json": piece.arguments})
        return out

    def _next(self, kind: str, block: dict[str, Any]) -> bytes:
        stop = self._stop()
        self._block += 1
        self._kind = kind
        start = {"type": "content_block_start", "index": self._block, "content_block": block}
        return stop + _event(b"content_block_start", start) + (_PING if self._block == 0 else b"")

    def _stop(self) -> bytes:
        if self._block < 0:
            return b""
        signed = b""
        if self._signature:
            signed = self._block_delta({"type": "signature_delta", "signature": self._signature})
            self._signature = ""
        return signed + _event(b"content_block_stop", {"type": "content_block_stop", "index": self._block})

    def _block_delta(self, delta: dict[str, Any]) -> bytes:
        return _event(b"content_block_delta", {"type": "content_block_delta", "index": self._block, "delta": delta})

    def closing(self, resp: Response | None) -> bytes:
        """The open block's end (an empty text block when the answer had none), the stop reason with the whole
        request's usage, and ``message_stop``."""
        delta = {"stop_reason": stop_reason(resp.finish_reason if resp else None), "stop_sequence": None}
        usage = _usage(resp) if resp is not None else {"output_tokens": 0}
        end = _event(b"message_delta", {"type": "message_delta", "delta": delta, "usage": usage})
        empty = self._next("text", _OPENING["text"]) if self._block < 0 else b""
        return empty + self._stop() + end + _MESSAGE_STOP

    def failure(self, reply: ErrorReply) -> bytes:
        """The ``error`` event that ends a stream which broke after it started (no ``message_stop`` follows)."""
        return _event(b"error", _error(reply, self._id))
