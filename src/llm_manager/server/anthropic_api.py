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
from llm_manager.codecs.anthropic_messages.request import tool_input
from llm_manager.codecs.openai_chat.tools import first_error
from llm_manager.config import Settings
from llm_manager.server.errors import ErrorReply
from llm_manager.server.openai_api import BadBody, response_headers, route, steer, typed
from llm_manager.types import FinishReason, Response, ResponseFormat, Tool, ToolCall, ToolCallDelta

__all__ = [
    "MessageEvents",
    "ParsedMessages",
    "error_body",
    "message_body",
    "message_headers",
    "parse_messages",
    "stop_reason",
]

_ROLES = ("user", "assistant")
_CHOICES = {"auto": "auto", "any": "required", "none": "none"}

_STOP: dict[FinishReason, str] = {
    # A matched stop sequence also finishes as "stop": providers drop the sequence from the text and ours do not
    # say which one matched, so end_turn (with stop_sequence null) is all that can be told truthfully.
    "stop": "end_turn",
    "length": "max_tokens",
    "tool_calls": "tool_use",
    "content_filter": "refusal",
}

# Anthropic's error type for each status the gateway answers with; the status itself is kept as mapped.
_ERROR_TYPES: dict[int, str] = {
    400: "invalid_request_error",
    401: "authentication_error",
    402: "billing_error",
    403: "permission_error",
    404: "not_found_error",
    413: "request_too_large",
    429: "rate_limit_error",
    500: "api_error",
    502: "api_error",
    503: "overloaded_error",
    504: "timeout_error",
    529: "overloaded_error",
}


@dataclass(slots=True)
class ParsedMessages:
    """A Messages request turned into :class:`Request` preferences."""

    messages: list[dict[str, Any]]
    prefs: dict[str, Any]
    stream: bool


def parse_messages(body: Any, headers: Mapping[str, str], settings: Settings) -> ParsedMessages:
    """Validate a Messages body plus the ``x-llm-*`` steering headers.

    Raises :class:`BadBody` naming the field (what Anthropic answers with 400) or ``UnknownModel``.
    """
    if not isinstance(body, dict):
        raise BadBody("the request body must be a JSON object")
    prefs: dict[str, Any] = route(body.get("model"), headers, settings)
    prefs["max_tokens"] = _max_tokens(body.get("max_tokens"))
    messages = [turn for i, m in enumerate(_list(body.get("messages"))) for turn in _turn(m, i)]
    system = _system(body.get("system"))
    if system:
        prefs["system"] = system
    _sampling(body, prefs)
    _attribution(body, headers, prefs)
    fmt = _output_format(body.get("output_config"))
    if fmt is not None:
        prefs["response_format"] = fmt
    _tools(body, prefs)
    return ParsedMessages(messages, prefs, bool(typed(body.get("stream"), bool, "stream")))


def _tools(body: dict[str, Any], prefs: dict[str, Any]) -> None:
    raw, choice = body.get("tools"), body.get("tool_choice")
    if raw is not None:
        if not isinstance(raw, list):
            raise BadBody("tools: must be an array", "tools")
        tools = []
        for i, t in enumerate(raw):
            if not isinstance(t, dict) or t.get("type", "custom") != "custom":
                kind = t.get("type") if isinstance(t, dict) else type(t).__name__
                raise BadBody(f"tools.{i}: only client tools are supported, not server tools ({kind!r})", f"tools.{i}")
            try:
                spec = {"name": t.get("name"), "description": t.get("description"), "parameters": t.get("input_schema")}
                tools.append(Tool.model_validate({k: v for k, v in spec.items() if v is not None}, strict=True))
            except ValueError as exc:
                raise BadBody(f"tools.{i}: {first_error(exc)}", f"tools.{i}") from None
        if tools:
            prefs["tools"] = tools
    if choice is None:
        return
    kind = choice.get("type") if isinstance(choice, dict) else None
    if kind == "tool" and isinstance(choice.get("name"), str):
        prefs["tool_choice"] = {"name": choice["name"]}
    elif kind in _CHOICES:
        prefs["tool_choice"] = _CHOICES[kind]
    else:
        raise BadBody("tool_choice: must be {type: auto | any | none | tool, name?}", "tool_choice")
    if typed(choice.get("disable_parallel_tool_use"), bool, "tool_choice.disable_parallel_tool_use"):
        prefs["parallel_tool_calls"] = False
    if "tools" not in prefs and prefs["tool_choice"] != "none":
        raise BadBody("tool_choice: requires tools", "tool_choice")


def _sampling(body: dict[str, Any], prefs: dict[str, Any]) -> None:
    temperature = body.get("temperature")
    if temperature is not None:
        if isinstance(temperature, bool) or not isinstance(temperature, int | float) or not 0 <= temperature <= 1:
            raise BadBody("temperature: must be a number between 0 and 1", "temperature")
        prefs["temperature"] = temperature
    top_p = typed(body.get("top_p"), float, "top_p")
    if top_p is not None:
        prefs["top_p"] = top_p  # its range is checked by LLMManager.request, which names the field
    stops = body.get("stop_sequences")
    if stops is not None:
        if not isinstance(stops, list) or not all(isinstance(s, str) for s in stops):
            raise BadBody("stop_sequences: must be an array of strings", "stop_sequences")
        if stops:
            prefs["stop"] = stops


def _attribution(body: dict[str, Any], headers: Mapping[str, str], prefs: dict[str, Any]) -> None:
    """Who pays and whether a cached answer will do: ``metadata.user_id`` and the ``x-llm-*`` headers, which win
    (as on the OpenAI route, where they win over ``user``)."""
    metadata = body.get("metadata")
    if metadata is not None and not isinstance(metadata, dict):
        raise BadBody("metadata: must be an object", "metadata")
    steer(headers, typed((metadata or {}).get("user_id"), str, "metadata.user_id"), prefs)


def _max_tokens(value: Any) -> int:
    if value is None:
        raise BadBody("max_tokens: Field required", "max_tokens")
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise BadBody("max_tokens: must be a positive integer", "max_tokens")
    return value


def _list(raw: Any) -> list[Any]:
    if not isinstance(raw, list) or not raw:
        raise BadBody("messages: must be a non-empty array", "messages")
    return raw


def _turn(m: Any, i: int) -> list[dict[str, Any]]:
    """The canonical messages for one Messages turn: an assistant turn with its tool calls, or a user turn's
    tool results (one ``tool`` message each) followed by its text."""
    if not isinstance(m, dict) or m.get("role") not in _ROLES:
        raise BadBody(f"messages.{i}.role: must be one of {', '.join(_ROLES)}", f"messages.{i}.role")
    role, content, where = m["role"], m.get("content"), f"messages.{i}.content"
    if isinstance(content, str):
        return [{"role": role, "content": content}]
    if not isinstance(content, list):
        raise BadBody(f"{where}: must be a string or an array of blocks", where)
    tool_kind = "tool_use" if role == "assistant" else "tool_result"
    blocks = [b for b in content if not (isinstance(b, dict) and b.get("type") == tool_kind)]
    tools = [(j, b) for j, b in enumerate(content) if isinstance(b, dict) and b.get("type") == tool_kind]
    text = _texts(blocks, where)
    if role == "assistant":
        calls = [_call(b, f"{where}.{j}") for j, b in tools]
        return [{"role": role, "content": text, "tool_calls": calls} if calls else {"role": role, "content": text}]
    out = [_result(b, f"{where}.{j}") for j, b in tools]
    if text or not out:
        out.append({"role": role, "content": text})
    return out


def _call(block: dict[str, Any], where: str) -> ToolCall:
    call_id, name, args = block.get("id"), block.get("name"), block.get("input", {})
    if not isinstance(call_id, str) or not isinstance(name, str) or not isinstance(args, dict):
        raise BadBody(f"{where}: a tool_use block needs id, name and an input object", where)
    return ToolCall(id=call_id, name=name, arguments=_json.dumps(args).decode())


def _result(block: dict[str, Any], where: str) -> dict[str, Any]:
    call_id, content = block.get("tool_use_id"), block.get("content", "")
    if not isinstance(call_id, str):
        raise BadBody(f"{where}.tool_use_id: required", f"{where}.tool_use_id")
    text = (
        content
        if isinstance(content, str)
        else _texts(content, f"{where}.content")
        if isinstance(content, list)
        else None
    )
    if text is None:
        raise BadBody(f"{where}.content: must be a string or an array of text blocks", f"{where}.content")
    if typed(block.get("is_error"), bool, f"{where}.is_error"):
        text = f"Error: {text}"  # the canonical tool message has no error flag; the model still learns it failed
    return {"role": "tool", "tool_call_id": call_id, "content": text}


def _system(raw: Any) -> str | None:
    if raw is None or isinstance(raw, str):
        return raw
    if not isinstance(raw, list):
        raise BadBody("system: must be a string or an array of text blocks", "system")
    return _texts(raw, "system")


def _texts(blocks: list[Any], where: str) -> str:
    # Blocks are separate pieces (a reminder, a document, the question): kept apart as paragraphs.
    texts: list[str] = []
    for j, block in enumerate(blocks):
        kind = block.get("type") if isinstance(block, dict) else type(block).__name__
        field = f"{where}.{j}"
        if kind != "text" or not isinstance(block.get("text"), str):
            raise BadBody(f"{field}: only text blocks are supported, got {kind!r}", field)
        texts.append(block["text"])
    return "\n\n".join(texts)


def _output_format(raw: Any) -> ResponseFormat | None:
    """Structured output (``output_config.format``): JSON valid against the schema, by whichever model answers.
    ``output_config.effort`` has no counterpart across providers and is left out."""
    if raw is None:
        return None
    if not isinstance(raw, dict):
        raise BadBody("output_config: must be an object", "output_config")
    fmt = raw.get("format")
    if fmt is None:
        return None
    if not isinstance(fmt, dict) or fmt.get("type") != "json_schema" or not isinstance(fmt.get("schema"), dict):
        raise BadBody("output_config.format: must be {type: json_schema, schema: {...}}", "output_config.format")
    try:
        return ResponseFormat(json_schema=fmt["schema"])
    except ValueError as exc:
        raise BadBody(f"output_config.format: {exc}", "output_config.format") from None


def stop_reason(finish: FinishReason | None) -> str:
    """Anthropic's ``stop_reason`` for our finish reason."""
    return _STOP.get(finish, "end_turn") if finish is not None else "end_turn"


def _usage(resp: Response) -> dict[str, int]:
    u = resp.usage
    cached = min(u.cached_tokens, u.prompt_tokens)
    return {
        "input_tokens": u.prompt_tokens - cached,
        "output_tokens": u.completion_tokens,
        "cache_read_input_tokens": cached,
    }


def message_body(resp: Response) -> bytes:
    """A ``message`` object for a whole answer."""
    return _json.dumps(
        {
            "id": resp.id,
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
    blocks: list[dict[str, Any]] = (
        [{"type": "text", "text": resp.content}] if resp.content or not resp.tool_calls else []
    )
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
    status = reply.status
    kind = _ERROR_TYPES.get(status, "api_error" if status >= 500 else "invalid_request_error")
    message = reply.body["error"]["message"]
    return {"type": "error", "error": {"type": kind, "message": message}, "request_id": request_id}


def _event(name: bytes, payload: Any) -> bytes:
    return b"event: " + name + b"\ndata: " + _json.dumps(payload) + b"\n\n"


_BLOCK_START = _event(
    b"content_block_start", {"type": "content_block_start", "index": 0, "content_block": {"type": "text", "text": ""}}
)
_PING = _event(b"ping", {"type": "ping"})
_DELTA_HEAD = (
    b'event: content_block_delta\ndata: {"type":"content_block_delta","index":0,"delta":{"type":"text_delta","text":'
)
_DELTA_TAIL = b"}}\n\n"
_BLOCK_STOP = _event(b"content_block_stop", {"type": "content_block_stop", "index": 0})
_MESSAGE_STOP = _event(b"message_stop", {"type": "message_stop"})


class MessageEvents:
    """The events of one streamed message, from byte templates: per piece of text only the text is serialised.

    Text goes in block 0; each tool call opens a ``tool_use`` block after it, whose arguments stream as
    ``input_json_delta`` pieces. ``message_start`` carries an estimate of the input tokens, since the provider
    reports usage only at the end; ``message_delta`` then gives the real counts, which replace it.
    """

    __slots__ = ("_block", "_id", "_start", "_text")

    def __init__(self, message_id: str, model: str, input_tokens: int) -> None:
        self._id = message_id
        self._block = 0
        """Index of the open content block."""
        self._text = True
        """Whether the open block is text (else a tool call's)."""
        message: dict[str, Any] = {
            "id": message_id,
            "type": "message",
            "role": "assistant",
            "content": [],
            "model": model,
            "stop_reason": None,
            "stop_sequence": None,
            "usage": {"input_tokens": input_tokens, "output_tokens": 0},
        }
        self._start = _event(b"message_start", {"type": "message_start", "message": message}) + _BLOCK_START + _PING

    def opening(self) -> bytes:
        """``message_start``, the text block's start, and a ping (as Anthropic opens a stream)."""
        return self._start

    def delta(self, text: str) -> bytes:
        """One piece of text."""
        if self._block == 0:
            return _DELTA_HEAD + _json.dumps(text) + _DELTA_TAIL
        opened = b"" if self._text else self._next({"type": "text", "text": ""})
        self._text = True
        return opened + self._block_delta({"type": "text_delta", "text": text})

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
            out = self._next(block)
            self._text = False
        if piece.arguments:
            out += self._block_delta({"type": "input_json_delta", "partial_json": piece.arguments})
        return out

    def _next(self, block: dict[str, Any]) -> bytes:
        stop = _event(b"content_block_stop", {"type": "content_block_stop", "index": self._block})
        self._block += 1
        start = {"type": "content_block_start", "index": self._block, "content_block": block}
        return stop + _event(b"content_block_start", start)

    def _block_delta(self, delta: dict[str, Any]) -> bytes:
        return _event(b"content_block_delta", {"type": "content_block_delta", "index": self._block, "delta": delta})

    def closing(self, resp: Response | None) -> bytes:
        """The open block's end, the stop reason with the whole request's usage, and ``message_stop``."""
        delta = {"stop_reason": stop_reason(resp.finish_reason if resp else None), "stop_sequence": None}
        usage = _usage(resp) if resp is not None else {"output_tokens": 0}
        end = _event(b"message_delta", {"type": "message_delta", "delta": delta, "usage": usage})
        last = _event(b"content_block_stop", {"type": "content_block_stop", "index": self._block})
        return (_BLOCK_STOP if self._block == 0 else last) + end + _MESSAGE_STOP

    def failure(self, reply: ErrorReply) -> bytes:
        """The ``error`` event that ends a stream which broke after it started (no ``message_stop`` follows)."""
        return _event(b"error", _error(reply, self._id))
