"""The Anthropic Messages protocol (``POST /v1/messages``), whole and streamed.

Translation is done by small pure functions (request body, answer, error body, one stream event) so each can be
read and tested on its own; :class:`AnthropicAdapter` only sends and wires them together.

Protocol facts this module relies on:

- The system prompt is a top-level ``system`` field, not a turn; turns must alternate user / assistant.
- ``max_tokens`` is required; ``temperature`` is limited to 0..1.
- A stream is SSE with named events: ``message_start`` (input usage), ``content_block_delta`` (text),
  ``message_delta`` (stop reason, cumulative output usage), ``message_stop`` (the end marker), ``ping``, and an
  ``error`` event that may arrive after a 200 (typically ``overloaded_error``).
- Error bodies are ``{"type": "error", "error": {"type": ..., "message": ...}}``.
- Tools: ``tools[].input_schema``; a call is a ``tool_use`` content block (``input`` is an object, streamed as
  ``input_json_delta`` pieces after a ``content_block_start``); its result goes back as a ``tool_result`` block
  in a user turn.
"""

from __future__ import annotations

import re
from collections.abc import AsyncGenerator, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from llm_manager import _json
from llm_manager._sse import SSEDecoder, SSEEvent
from llm_manager.errors import (
    ContentFilterError,
    ContextTooLargeError,
    ModelUnavailableError,
    ProviderError,
    StreamInterruptedError,
)
from llm_manager.providers._errors import error_from_status
from llm_manager.providers.base import Chunk, Completion, Endpoint, ProviderAdapter
from llm_manager.types import ToolCall, ToolCallDelta

if TYPE_CHECKING:
    from llm_manager._http import HttpResponse
    from llm_manager.types import FinishReason, Message, Request, ResponseFormat

__all__ = [
    "API_VERSION",
    "AnthropicAdapter",
    "build_body",
    "build_headers",
    "error_from_response",
    "parse_completion",
    "tool_input",
]

API_VERSION = "2023-06-01"
"""The ``anthropic-version`` sent unless the endpoint's headers name another."""

_FINISH: dict[str, FinishReason] = {
    "end_turn": "stop",
    "stop_sequence": "stop",
    # A paused turn is a complete answer as far as a text caller is concerned.
    "pause_turn": "stop",
    "max_tokens": "length",
    "model_context_window_exceeded": "length",
    "tool_use": "tool_calls",
    "refusal": "content_filter",
}

# An ``error`` event arrives after the 200 headers, so it has no status of its own: borrow the one the API
# uses for the same error type when it can answer before streaming, so the mapping stays in error_from_status.
_STATUS_OF_TYPE: dict[str, int] = {
    "invalid_request_error": 400,
    "authentication_error": 401,
    "billing_error": 402,
    "permission_error": 403,
    "not_found_error": 404,
    "request_too_large": 413,
    "rate_limit_error": 429,
    "api_error": 500,
    "timeout_error": 504,
    "overloaded_error": 529,
}

# "prompt is too long: 210000 tokens > 200000 maximum": worth keeping as data for re-routing.
_TOO_LONG = re.compile(r"(\d+)\s*tokens\s*>\s*(\d+)\s*maximum")


# --- request -------------------------------------------------------------------------------------------------


def build_headers(endpoint: Endpoint, api_key: str | None) -> dict[str, str]:
    """Headers for every call: JSON, the API version (overridable by the endpoint), the endpoint's own, the key."""
    overridden = {k.lower() for k in endpoint.headers}
    defaults = {"content-type": "application/json", "anthropic-version": API_VERSION}
    headers = {k: v for k, v in defaults.items() if k not in overridden}
    headers.update(endpoint.headers)
    if api_key is not None:
        headers["x-api-key"] = api_key
    return headers


def build_body(request: Request, endpoint: Endpoint, *, stream: bool) -> dict[str, Any]:
    """The Messages API body for ``request`` sent to ``endpoint``."""
    body: dict[str, Any] = {"model": endpoint.model, "max_tokens": _max_tokens(request, endpoint)}
    system = request.system
    if request.response_format is not None and request.tools:
        # Forcing the schema tool would forbid the caller's tools, so the schema travels as instructions.
        from llm_manager.structured.extract import instruction

        extra = instruction(request.response_format.json_schema)
        system = f"{system}\n\n{extra}" if system else extra
    if system is not None:
        body["system"] = system
    body["messages"] = _merge_turns(request)
    if request.temperature is not None:
        # The canonical range is OpenAI's 0..2; Anthropic rejects anything above 1.
        body["temperature"] = min(request.temperature, 1.0)
    if request.top_p is not None:
        body["top_p"] = request.top_p
    if request.stop:
        body["stop_sequences"] = list(request.stop)
    if request.user is not None:
        body["metadata"] = {"user_id": request.user}
    if request.tools:
        body.update(_tools(request))
    elif request.response_format is not None:
        body.update(_forced_tool(request.response_format))
    body.update(endpoint.extra_body)
    if stream:
        body["stream"] = True
    return body


def _forced_name(request: Request) -> str | None:
    return request.response_format.name if request.response_format is not None and not request.tools else None


def _tools(request: Request) -> dict[str, Any]:
    tools = []
    for t in request.tools or ():
        tool: dict[str, Any] = {"name": t.name, "input_schema": t.parameters}
        if t.description:
            tool["description"] = t.description
        tools.append(tool)
    choice: dict[str, Any] | None
    match request.tool_choice:
        case None:
            choice = None
        case "auto":
            choice = {"type": "auto"}
        case "required":
            choice = {"type": "any"}
        case "none":
            choice = {"type": "none"}
        case named:
            choice = {"type": "tool", "name": named.name}
    if request.parallel_tool_calls is False:
        choice = {**(choice or {"type": "auto"}), "disable_parallel_tool_use": True}
    return {"tools": tools, "tool_choice": choice} if choice is not None else {"tools": tools}


def _forced_tool(fmt: ResponseFormat) -> dict[str, Any]:
    """Structured output the Anthropic way: one tool whose input schema is the wanted schema, and force it.

    A tool's input must be an object, so any other schema is wrapped as ``{"value": ...}`` (the extractor
    unwraps a single-key object when the bare value is what validates)."""
    schema = fmt.json_schema
    if schema.get("type") != "object":
        schema = {"type": "object", "properties": {"value": schema}, "required": ["value"]}
    tool = {"name": fmt.name, "description": "Return the answer as structured data.", "input_schema": schema}
    return {"tools": [tool], "tool_choice": {"type": "tool", "name": fmt.name}}


def _max_tokens(request: Request, endpoint: Endpoint) -> int:
    # The API refuses a request without max_tokens, so a default always applies.
    wanted = request.max_tokens or endpoint.default_max_tokens
    if endpoint.max_output_tokens is not None:
        wanted = min(wanted, endpoint.max_output_tokens)
    return wanted


def _merge_turns(request: Request) -> list[dict[str, Any]]:
    # The API wants user / assistant alternation; consecutive turns of one role are joined rather than rejected
    # (tool results are user turns, so a run of them becomes one turn of tool_result blocks).
    turns: list[dict[str, Any]] = []
    for message in request.messages:
        role = "user" if message.role == "tool" else message.role
        content = _content(message)
        if not turns or turns[-1]["role"] != role:
            turns.append({"role": role, "content": content})
            continue
        last = turns[-1]
        if isinstance(last["content"], str) and isinstance(content, str):
            last["content"] += "\n\n" + content
        else:
            last["content"] = _blocks(last["content"]) + _blocks(content)
    return turns


def _content(message: Message) -> str | list[dict[str, Any]]:
    if message.tool_call_id is not None:
        return [{"type": "tool_result", "tool_use_id": message.tool_call_id, "content": message.content}]
    if not message.tool_calls:
        return message.content
    blocks = _blocks(message.content) if message.content else []
    return blocks + [
        {"type": "tool_use", "id": c.id, "name": c.name, "input": tool_input(c.arguments)} for c in message.tool_calls
    ]


def _blocks(content: str | list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [{"type": "text", "text": content}] if isinstance(content, str) else content


def tool_input(arguments: str) -> dict[str, Any]:
    """A call's arguments as the ``tool_use.input`` object the API wants: text a model wrote that does not
    parse is repaired rather than dropped, and a non-object value is wrapped as ``{"value": ...}``."""
    try:
        value = _json.loads(arguments or "{}")
    except _json.JSONDecodeError:
        from llm_manager.structured.extract import call_json_repair

        value = call_json_repair(arguments)
    return value if isinstance(value, dict) else {"value": value}


# --- whole answers -------------------------------------------------------------------------------------------


def parse_completion(resp: HttpResponse, forced_tool: str | None = None) -> Completion:
    """Translate a 2xx Messages answer; raise a mapped error for anything that is not a usable message.

    With ``forced_tool`` (structured output), that tool's input is the answer; otherwise tool calls, like
    thinking blocks, are not part of the text."""
    data = _load_object(resp.body)
    if data is not None and data.get("type") == "error":
        raise _error_from_payload(data, headers=resp.headers, body=resp.body)
    content = data.get("content") if data is not None else None
    if data is None or not isinstance(content, list):
        raise ModelUnavailableError("malformed response", status_code=resp.status, body=_text(resp.body))
    text = "".join(b["text"] for b in content if isinstance(b, dict) and b.get("type") == "text" and "text" in b)
    stop_reason = data.get("stop_reason")
    tool_input = next(
        (
            b.get("input")
            for b in content
            if forced_tool and isinstance(b, dict) and b.get("type") == "tool_use" and b.get("name") == forced_tool
        ),
        None,
    )
    if tool_input is not None:
        # A forced tool call is how structured output arrives: its input is the answer.
        text, stop_reason = _json.dumps(tool_input).decode(), "end_turn"
    calls = [
        ToolCall(
            id=str(b.get("id") or f"toolu_{i}"), name=b["name"], arguments=_json.dumps(b.get("input") or {}).decode()
        )
        for i, b in enumerate(content)
        if isinstance(b, dict)
        and b.get("type") == "tool_use"
        and isinstance(b.get("name"), str)
        and (forced_tool is None or b.get("name") != forced_tool)
    ]
    if stop_reason == "refusal" and not text:
        raise ContentFilterError("the model refused to answer", status_code=resp.status, body=_text(resp.body))
    usage = _Usage()
    usage.update(data.get("usage"))
    return Completion(
        text=text,
        finish_reason=_FINISH.get(stop_reason) if isinstance(stop_reason, str) else None,
        prompt_tokens=usage.prompt_tokens,
        completion_tokens=usage.output,
        cached_tokens=usage.cache_read,
        model=_str_or_none(data.get("model")),
        id=_str_or_none(data.get("id")),
        tool_calls=calls,
    )


@dataclass(slots=True)
class _Usage:
    """Token counts as the API splits them; the canonical prompt count is their sum."""

    input: int | None = None
    cache_read: int = 0
    cache_creation: int = 0
    output: int | None = None

    def update(self, raw: object) -> None:
        # Stream usage is cumulative and partial: only the fields present replace what is known.
        if not isinstance(raw, dict):
            return
        if isinstance(v := raw.get("input_tokens"), int):
            self.input = v
        if isinstance(v := raw.get("cache_read_input_tokens"), int):
            self.cache_read = v
        if isinstance(v := raw.get("cache_creation_input_tokens"), int):
            self.cache_creation = v
        if isinstance(v := raw.get("output_tokens"), int):
            self.output = v

    @property
    def prompt_tokens(self) -> int | None:
        # Anthropic reports cached input apart from input_tokens; every one of them was part of the prompt.
        if self.input is None:
            return None
        return self.input + self.cache_read + self.cache_creation


# --- errors --------------------------------------------------------------------------------------------------


def error_from_response(status: int, headers: Mapping[str, str], body: bytes) -> ProviderError:
    """The mapped error for a non-2xx answer; tolerates bodies that are not Anthropic's JSON (proxies, HTML)."""
    data = _load_object(body)
    error = data.get("error") if data is not None else None
    if isinstance(error, dict):
        message = _str_or_none(error.get("message")) or ""
        error_type = _str_or_none(error.get("type"))
    else:
        message, error_type = _text(body).strip()[:500], None
    return _with_token_counts(
        error_from_status(status, message, headers=headers, body=_text(body), error_type=error_type)
    )


def _error_from_payload(data: Mapping[str, Any], *, headers: Mapping[str, str], body: bytes) -> ProviderError:
    # An error object without an HTTP status (stream event or 200 body): take the status its type implies.
    error = data.get("error")
    error_type = _str_or_none(error.get("type")) if isinstance(error, dict) else None
    message = (_str_or_none(error.get("message")) if isinstance(error, dict) else None) or "upstream error"
    status = _STATUS_OF_TYPE.get(error_type or "", 500 if error_type is None else 400)
    return _with_token_counts(
        error_from_status(status, message, headers=headers, body=_text(body), error_type=error_type)
    )


def _with_token_counts(err: ProviderError) -> ProviderError:
    if isinstance(err, ContextTooLargeError) and (m := _TOO_LONG.search(err.message)):
        err.token_count, err.max_tokens = int(m.group(1)), int(m.group(2))
    return err


# --- streams -------------------------------------------------------------------------------------------------


@dataclass(slots=True)
class _StreamState:
    """What a stream has told us so far."""

    headers: Mapping[str, str]
    usage: _Usage = field(default_factory=_Usage)
    model: str | None = None
    stop_reason: str | None = None
    done: bool = False
    forced_tool: str | None = None
    """Structured output was requested through this (forced) tool: its input JSON is the answer."""
    tool_input: bool = False
    """The answer streamed as the forced tool's input: it ends with ``tool_use``, which means done here."""
    blocks: dict[int, int | None] = field(default_factory=dict)
    """Tool-use content blocks by block index: the call's ordinal, or ``None`` for the forced tool."""

    def final_chunk(self) -> Chunk:
        """The closing chunk: finish reason and usage."""
        stop = "end_turn" if self.tool_input and self.stop_reason == "tool_use" else self.stop_reason
        reason = _FINISH.get(stop) if stop else None
        return Chunk(
            finish_reason=reason,
            prompt_tokens=self.usage.prompt_tokens,
            completion_tokens=self.usage.output,
            cached_tokens=self.usage.cache_read,
            model=self.model,
        )


def _handle_event(state: _StreamState, event: SSEEvent) -> Chunk | None:
    """Apply one SSE event to ``state``; return a chunk to yield, if any. Raises on ``error`` and bad data."""
    try:
        payload = _json.loads(event.data)
    except _json.JSONDecodeError as exc:
        raise StreamInterruptedError(f"malformed stream event: {event.data[:200]!r}") from exc
    if not isinstance(payload, dict):
        raise StreamInterruptedError(f"malformed stream event: {event.data[:200]!r}")
    kind = payload.get("type") or event.event
    if kind == "content_block_delta":
        return _on_delta(state, payload)
    if kind == "content_block_start":
        return _on_block_start(state, payload)
    if kind == "message_start":
        message = payload.get("message")
        if isinstance(message, dict):
            state.model = _str_or_none(message.get("model"))
            state.usage.update(message.get("usage"))
    elif kind == "message_delta":
        delta = payload.get("delta")
        if isinstance(delta, dict) and isinstance(reason := delta.get("stop_reason"), str):
            state.stop_reason = reason
        state.usage.update(payload.get("usage"))
    elif kind == "message_stop":
        state.done = True
        return state.final_chunk()
    elif kind == "error":
        raise _error_from_payload(payload, headers=state.headers, body=event.data.encode())
    # ping, content_block_stop and event types added later carry nothing we need.
    return None


def _on_delta(state: _StreamState, payload: dict[str, Any]) -> Chunk | None:
    delta = payload.get("delta")
    if not isinstance(delta, dict):
        return None
    # Text reaches the caller, and so does tool-input JSON (a call's arguments, or structured output when the
    # schema tool was forced); thinking and signatures are not part of the answer.
    if delta.get("type") == "text_delta" and (text := delta.get("text")):
        return Chunk(text=str(text), model=state.model)
    if delta.get("type") == "input_json_delta" and (part := delta.get("partial_json")):
        index = payload.get("index")
        ordinal = state.blocks.get(index) if isinstance(index, int) else None
        if ordinal is not None:
            return Chunk(tool_calls=[ToolCallDelta(index=ordinal, arguments=str(part))], model=state.model)
        if state.forced_tool:
            state.tool_input = True
            return Chunk(text=str(part), model=state.model)
    return None


def _on_block_start(state: _StreamState, payload: dict[str, Any]) -> Chunk | None:
    block, index = payload.get("content_block"), payload.get("index")
    if not isinstance(block, dict) or block.get("type") != "tool_use" or not isinstance(index, int):
        return None
    name = _str_or_none(block.get("name")) or ""
    if state.forced_tool is not None and name == state.forced_tool:
        state.blocks[index] = None
        return None
    ordinal = sum(1 for v in state.blocks.values() if v is not None)
    state.blocks[index] = ordinal
    call_id = _str_or_none(block.get("id")) or f"toolu_{ordinal}"
    return Chunk(tool_calls=[ToolCallDelta(index=ordinal, id=call_id, name=name)], model=state.model)


# --- the adapter ---------------------------------------------------------------------------------------------


class AnthropicAdapter(ProviderAdapter):
    """Speaks the Anthropic Messages API for one endpoint."""

    kind = "anthropic"

    @property
    def _base(self) -> str:
        return self.endpoint.base_url.rstrip("/")

    async def complete(self, request: Request, *, api_key: str | None) -> Completion:
        """Send ``request`` once; return the whole answer or raise a mapped error."""
        try:
            resp = await self.http.post(
                f"{self._base}/v1/messages",
                headers=build_headers(self.endpoint, api_key),
                body=_json.dumps(build_body(request, self.endpoint, stream=False)),
            )
            if not 200 <= resp.status < 300:
                raise error_from_response(resp.status, resp.headers, resp.body)
            return parse_completion(resp, _forced_name(request))
        except ProviderError as exc:
            self._tag(exc)
            raise

    async def stream(self, request: Request, *, api_key: str | None) -> AsyncGenerator[Chunk, None]:
        """Send ``request`` once and yield text chunks, then one chunk with finish reason and usage."""
        try:
            async with self.http.stream(
                f"{self._base}/v1/messages",
                headers=build_headers(self.endpoint, api_key),
                body=_json.dumps(build_body(request, self.endpoint, stream=True)),
            ) as resp:
                if not 200 <= resp.status < 300:
                    raise error_from_response(resp.status, resp.headers, await resp.read())
                state = _StreamState(headers=resp.headers, forced_tool=_forced_name(request))
                decoder = SSEDecoder()
                async for data in resp.iter_bytes():
                    for event in decoder.events(data):
                        chunk = _handle_event(state, event)
                        if chunk is not None:
                            yield chunk
                        if state.done:
                            return
            raise StreamInterruptedError("stream ended before message_stop")
        except ProviderError as exc:
            self._tag(exc)
            raise

    async def probe(self, *, api_key: str | None) -> None:
        """List models: checks reachability and the key without spending tokens."""
        try:
            resp = await self.http.request(
                "GET", f"{self._base}/v1/models", headers=build_headers(self.endpoint, api_key)
            )
            if not 200 <= resp.status < 300:
                raise error_from_response(resp.status, resp.headers, resp.body)
        except ProviderError as exc:
            self._tag(exc)
            raise

    def _tag(self, err: ProviderError) -> ProviderError:
        # Say where the error came from, without overwriting what a lower layer already knew.
        err.provider = err.provider or self.kind
        err.deployment = err.deployment or self.endpoint.name
        err.model = err.model or self.endpoint.model
        return err


# --- helpers -------------------------------------------------------------------------------------------------


def _load_object(body: bytes) -> dict[str, Any] | None:
    try:
        data = _json.loads(body) if body else None
    except _json.JSONDecodeError:
        return None
    return data if isinstance(data, dict) else None


def _str_or_none(value: object) -> str | None:
    return value if isinstance(value, str) else None


def _text(body: bytes) -> str:
    return body.decode("utf-8", errors="replace")
