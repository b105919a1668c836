"""The Google Gemini adapter (Generative Language API, ``v1beta``).

Speaks ``models/{model}:generateContent`` for whole answers and ``models/{model}:streamGenerateContent?alt=sse`` for
streams. Wire facts this module relies on:

* Turns are ``contents`` with roles ``user`` / ``model``; the system prompt is a separate ``systemInstruction``;
  sampling settings live in ``generationConfig`` (camelCase on the wire).
* The key travels in the ``x-goog-api-key`` header, never in the URL, so it cannot leak into access logs.
* A refused prompt is a 200 with no candidates and ``promptFeedback.blockReason``; a refused answer is a candidate
  whose ``finishReason`` is ``SAFETY`` (or a sibling) and whose text is empty.
* Each SSE ``data:`` payload is a complete ``GenerateContentResponse`` fragment. There is no end marker: the
  fragment carrying ``finishReason`` is the last one, so a stream that closes before it was cut short.
* Errors are Google RPC statuses, ``{"error": {"code", "message", "status", "details"}}``; a 429 says how long to
  wait in a ``google.rpc.RetryInfo`` detail (``"retryDelay": "12s"``) rather than in a ``Retry-After`` header, and a
  bad key is a 400 whose ``google.rpc.ErrorInfo`` reason is ``API_KEY_INVALID``.
"""

from __future__ import annotations

import re
from collections.abc import AsyncGenerator, Mapping, Sequence
from typing import TYPE_CHECKING, Any

from llm_manager import _json
from llm_manager._sse import SSEDecoder
from llm_manager.errors import (
    AuthenticationError,
    ContentFilterError,
    ContextTooLargeError,
    InvalidRequestError,
    ModelUnavailableError,
    ProviderError,
    StreamInterruptedError,
)
from llm_manager.providers._errors import error_from_status
from llm_manager.providers.base import Chunk, Completion, Endpoint, ProviderAdapter
from llm_manager.types import ToolCall, ToolCallDelta

if TYPE_CHECKING:
    from llm_manager.types import FinishReason, Message, Request, Tool

__all__ = ["GeminiAdapter", "build_body", "finish_reason", "map_error", "parse_completion"]

_FINISH_REASONS: dict[str, FinishReason] = {
    "STOP": "stop",
    "MAX_TOKENS": "length",
    "SAFETY": "content_filter",
    "RECITATION": "content_filter",
    "BLOCKLIST": "content_filter",
    "PROHIBITED_CONTENT": "content_filter",
    "SPII": "content_filter",
    "IMAGE_SAFETY": "content_filter",
    "IMAGE_PROHIBITED_CONTENT": "content_filter",
    "IMAGE_RECITATION": "content_filter",
    # The model produced a tool call it could not express: the answer is unusable, not merely cut short.
    "MALFORMED_FUNCTION_CALL": "error",
    "UNEXPECTED_TOOL_CALL": "error",
    "TOO_MANY_TOOL_CALLS": "error",
}
"""Gemini ``finishReason`` → canonical reason. Absent (``OTHER``, ``LANGUAGE``, unknown values) means ``None``."""

_RETRY_INFO = "type.googleapis.com/google.rpc.RetryInfo"
_ERROR_INFO = "type.googleapis.com/google.rpc.ErrorInfo"
_DURATION = re.compile(r"^\s*(\d+(?:\.\d*)?|\.\d+)s\s*$")
_TOKEN_COUNT = re.compile(r"input token count\D{0,4}(\d+)", re.IGNORECASE)
_TOKEN_LIMIT = re.compile(r"tokens allowed\D{0,4}(\d+)", re.IGNORECASE)


class GeminiAdapter(ProviderAdapter):
    """Adapter for the Gemini API; one instance per configured deployment."""

    kind = "gemini"

    async def complete(self, request: Request, *, api_key: str | None) -> Completion:
        """Call ``generateContent`` once.

        Args:
            request: The canonical request.
            api_key: Sent as ``x-goog-api-key``; ``None`` sends none (e.g. a proxy adds it).

        Returns:
            The whole answer.

        Raises:
            ProviderError: The mapped subclass for an error status, a blocked prompt or a malformed answer.
        """
        body = _json.dumps(build_body(request, self.endpoint))
        resp = await self.http.post(self._url("generateContent"), headers=self._headers(api_key), body=body)
        if not _ok(resp.status):
            raise map_error(resp.status, resp.headers, resp.body)
        try:
            payload = _json.loads(resp.body)
        except _json.JSONDecodeError as exc:
            raise ModelUnavailableError("malformed response", status_code=resp.status, body=_text(resp.body)) from exc
        return parse_completion(payload, body=_text(resp.body))

    async def stream(self, request: Request, *, api_key: str | None) -> AsyncGenerator[Chunk, None]:
        """Call ``streamGenerateContent?alt=sse`` once and yield text pieces, then one finishing chunk.

        Args:
            request: The canonical request.
            api_key: Sent as ``x-goog-api-key``; ``None`` sends none.

        Yields:
            Text chunks as they arrive; the last chunk carries the finish reason and usage.

        Raises:
            ProviderError: The mapped subclass for an error status (before anything is yielded) or an ``error``
                payload in the stream.
            ContentFilterError: The prompt or the whole answer was blocked.
            StreamInterruptedError: The stream broke, carried malformed JSON or ended without a ``finishReason``.
        """
        body = _json.dumps(build_body(request, self.endpoint))
        url = self._url("streamGenerateContent") + "?alt=sse"
        async with self.http.stream(url, headers=self._headers(api_key), body=body) as resp:
            if not _ok(resp.status):
                raise map_error(resp.status, resp.headers, await resp.read())
            state = _StreamState()
            decoder = SSEDecoder()
            try:
                async for raw in resp.iter_bytes():
                    for event in decoder.events(raw):
                        for chunk in state.feed(event.data):
                            yield chunk
            except StreamInterruptedError:
                # A connection dropped after the final fragment loses nothing: the answer is already complete.
                if not state.finished:
                    raise
        if not state.finished:
            raise StreamInterruptedError("stream ended before finishReason")

    async def probe(self, *, api_key: str | None) -> None:
        """``GET models/{model}``: checks reachability, the key and the model name without spending tokens.

        Raises:
            ProviderError: The mapped subclass when the answer is not 2xx.
        """
        url = f"{self._base()}/{_model_path(self.endpoint.model)}"
        resp = await self.http.request("GET", url, headers=self._headers(api_key, with_body=False))
        if not _ok(resp.status):
            raise map_error(resp.status, resp.headers, resp.body)

    def _base(self) -> str:
        return self.endpoint.base_url.rstrip("/")

    def _url(self, method: str) -> str:
        return f"{self._base()}/{_model_path(self.endpoint.model)}:{method}"

    def _headers(self, api_key: str | None, *, with_body: bool = True) -> dict[str, str]:
        headers = {"content-type": "application/json"} if with_body else {}
        headers.update(self.endpoint.headers)
        if api_key is not None:
            headers["x-goog-api-key"] = api_key
        return headers


# --- request -------------------------------------------------------------------------------------------------------


def build_body(request: Request, endpoint: Endpoint) -> dict[str, Any]:
    """Translate a canonical request into a ``GenerateContentRequest`` body.

    ``endpoint.extra_body`` supplies defaults: its top-level fields are added, and where both it and the request
    set an object (``generationConfig``) the two are merged one level deep with the request's own values winning,
    so a deployment can add e.g. ``thinkingConfig`` without losing the caller's ``temperature``.

    Args:
        request: The canonical request.
        endpoint: The deployment (output-token cap, extra body fields).

    Returns:
        The JSON-ready body.
    """
    body: dict[str, Any] = {"contents": _contents(request.messages)}
    if request.system:
        body["systemInstruction"] = {"parts": [{"text": request.system}]}
    config = _generation_config(request, endpoint)
    if config:
        body["generationConfig"] = config
    if request.tools:
        body["tools"] = [{"functionDeclarations": [_declaration(t) for t in request.tools]}]
    if (tool_config := _tool_config(request)) is not None:
        body["toolConfig"] = tool_config
    return _with_defaults(body, endpoint.extra_body)


def _declaration(tool: Tool) -> dict[str, Any]:
    # parametersJsonSchema takes plain JSON Schema (``parameters`` wants Gemini's OpenAPI subset).
    out: dict[str, Any] = {"name": tool.name, "parametersJsonSchema": tool.parameters}
    if tool.description:
        out["description"] = tool.description
    return out


def _tool_config(request: Request) -> dict[str, Any] | None:
    choice = request.tool_choice
    if choice is None:
        return None
    if isinstance(choice, str):
        return {"functionCallingConfig": {"mode": {"auto": "AUTO", "required": "ANY", "none": "NONE"}[choice]}}
    return {"functionCallingConfig": {"mode": "ANY", "allowedFunctionNames": [choice.name]}}


def _contents(messages: Sequence[Message]) -> list[dict[str, Any]]:
    # Gemini wants user and model turns to alternate, so consecutive turns of one role become one turn with
    # several parts rather than being rejected. A function's result goes back in a user turn, by name.
    contents: list[dict[str, Any]] = []
    names = {c.id: c.name for m in messages for c in m.tool_calls}
    for message in messages:
        role = "model" if message.role == "assistant" else "user"
        parts = _parts(message, names)
        if contents and contents[-1]["role"] == role:
            contents[-1]["parts"].extend(parts)
        else:
            contents.append({"role": role, "parts": parts})
    return contents


def _parts(message: Message, names: Mapping[str, str]) -> list[dict[str, Any]]:
    if message.tool_call_id is not None:
        try:
            result = _json.loads(message.content)
        except _json.JSONDecodeError:
            result = message.content
        response = result if isinstance(result, dict) else {"result": result}  # the API wants an object
        name = names.get(message.tool_call_id, message.tool_call_id)
        return [{"functionResponse": {"id": message.tool_call_id, "name": name, "response": response}}]
    parts: list[dict[str, Any]] = [{"text": message.content}] if message.content or not message.tool_calls else []
    for call in message.tool_calls:
        try:
            args = _json.loads(call.arguments or "{}")
        except _json.JSONDecodeError:
            args = {}
        parts.append(
            {"functionCall": {"id": call.id, "name": call.name, "args": args if isinstance(args, dict) else {}}}
        )
    return parts


def _generation_config(request: Request, endpoint: Endpoint) -> dict[str, Any]:
    config: dict[str, Any] = {}
    max_tokens = request.max_tokens
    if max_tokens is not None and endpoint.max_output_tokens is not None:
        max_tokens = min(max_tokens, endpoint.max_output_tokens)
    if max_tokens is not None:
        config["maxOutputTokens"] = max_tokens
    if request.temperature is not None:
        config["temperature"] = request.temperature
    if request.top_p is not None:
        config["topP"] = request.top_p
    if request.stop:
        config["stopSequences"] = list(request.stop)
    if request.response_format is not None:
        # Native structured output: JSON mode constrained by a plain JSON Schema.
        config["responseMimeType"] = "application/json"
        config["responseJsonSchema"] = request.response_format.json_schema
    return config


def _with_defaults(body: dict[str, Any], defaults: Mapping[str, Any]) -> dict[str, Any]:
    merged = dict(defaults)
    for key, value in body.items():
        base = merged.get(key)
        # New dicts only: the endpoint's mapping is shared by every request and must never be mutated.
        merged[key] = {**base, **value} if isinstance(base, Mapping) and isinstance(value, dict) else value
    return merged


def _model_path(model: str) -> str:
    # Accept "gemini-2.0-flash" as well as the API's own resource names ("models/…", "tunedModels/…").
    return model if "/" in model else f"models/{model}"


# --- response ------------------------------------------------------------------------------------------------------


def parse_completion(payload: Any, *, body: str = "") -> Completion:
    """Translate a ``GenerateContentResponse`` into a :class:`Completion`.

    Args:
        payload: The decoded JSON answer.
        body: The raw answer, kept on errors for diagnosis.

    Returns:
        The first candidate's text, finish reason, usage, model version and response id.

    Raises:
        ContentFilterError: The prompt was blocked, or the answer was filtered before any text was produced.
        ModelUnavailableError: The answer is not a ``GenerateContentResponse`` or has no candidate.
    """
    if not isinstance(payload, dict):
        raise ModelUnavailableError("malformed response", status_code=200, body=body)
    candidate = _first_candidate(payload)
    if candidate is None:
        _raise_if_blocked(payload, body)
        raise ModelUnavailableError("response has no candidates", status_code=200, body=body)
    text = _candidate_text(candidate)
    finish = finish_reason(candidate.get("finishReason"))
    calls = _calls(candidate, 0)
    if calls and finish == "stop":
        finish = "tool_calls"  # Gemini ends a turn that calls functions with STOP
    if finish == "content_filter" and not text:
        raise ContentFilterError(f"answer blocked: {candidate.get('finishReason')}", status_code=200, body=body)
    prompt_tokens, completion_tokens, cached_tokens = _usage(payload)
    return Completion(
        text=text,
        finish_reason=finish,
        prompt_tokens=prompt_tokens,
        completion_tokens=completion_tokens,
        cached_tokens=cached_tokens,
        model=_str_or_none(payload.get("modelVersion")),
        id=_str_or_none(payload.get("responseId")),
        tool_calls=calls,
    )


def finish_reason(raw: Any) -> FinishReason | None:
    """Map a Gemini ``finishReason`` to the canonical one (``None`` when it has no canonical equivalent)."""
    return _FINISH_REASONS.get(raw) if isinstance(raw, str) else None


def _first_candidate(payload: Mapping[str, Any]) -> dict[str, Any] | None:
    candidates = payload.get("candidates")
    if not isinstance(candidates, list):
        return None
    # Only one candidate is ever requested; ``index`` is omitted when 0 (proto3 JSON drops default values).
    for candidate in candidates:
        if isinstance(candidate, dict) and candidate.get("index", 0) == 0:
            return candidate
    return None


def _candidate_text(candidate: Mapping[str, Any]) -> str:
    content = candidate.get("content")
    parts = content.get("parts") if isinstance(content, dict) else None
    if not isinstance(parts, list):
        return ""
    # Thought summaries (``thought: true``) are the model's reasoning, not its answer.
    return "".join(
        part["text"]
        for part in parts
        if isinstance(part, dict) and isinstance(part.get("text"), str) and not part.get("thought")
    )


def _calls(candidate: Mapping[str, Any], first: int) -> list[ToolCall]:
    """The candidate's function calls; ``first`` numbers them on from earlier stream fragments. Gemini sends
    each call whole (arguments as an object) and may leave out its id."""
    content = candidate.get("content")
    parts = content.get("parts") if isinstance(content, dict) else None
    calls: list[ToolCall] = []
    for part in parts if isinstance(parts, list) else ():
        call = part.get("functionCall") if isinstance(part, dict) else None
        if isinstance(call, dict) and isinstance(name := call.get("name"), str):
            args = call.get("args")
            calls.append(
                ToolCall(
                    id=_str_or_none(call.get("id")) or f"call_{first + len(calls)}",
                    name=name,
                    arguments=_json.dumps(args if isinstance(args, dict) else {}).decode(),
                )
            )
    return calls


def _usage(payload: Mapping[str, Any]) -> tuple[int | None, int | None, int]:
    meta = payload.get("usageMetadata")
    if not isinstance(meta, dict):
        return None, None, 0
    # proto3 JSON omits zero counts, so a missing field inside usageMetadata means 0, not "unknown".
    prompt = _int(meta.get("promptTokenCount"))
    # Thinking tokens are billed as output, so they count as completion tokens.
    completion = _int(meta.get("candidatesTokenCount")) + _int(meta.get("thoughtsTokenCount"))
    return prompt, completion, _int(meta.get("cachedContentTokenCount"))


def _raise_if_blocked(payload: Mapping[str, Any], body: str) -> None:
    feedback = payload.get("promptFeedback")
    reason = feedback.get("blockReason") if isinstance(feedback, dict) else None
    if reason:
        raise ContentFilterError(f"prompt blocked: {reason}", status_code=200, body=body[:4000])


class _StreamState:
    """What a stream has shown so far; turns each SSE payload into the chunks to yield."""

    __slots__ = ("calls", "finished", "model", "text_seen", "usage")

    def __init__(self) -> None:
        self.calls = 0
        """Function calls seen so far (each arrives whole in one fragment)."""
        self.finished = False
        """A ``finishReason`` arrived: the answer is complete."""
        self.text_seen = False
        self.model: str | None = None
        self.usage: tuple[int | None, int | None, int] = (None, None, 0)
        """From the latest ``usageMetadata``: each fragment repeats it, cumulatively, so the last one wins."""

    def feed(self, data: str) -> list[Chunk]:
        """Chunks for one ``data:`` payload (none once finished or for an empty payload)."""
        if self.finished or not data.strip():
            return []
        payload = _stream_payload(data)
        if "error" in payload:
            raise _stream_error(payload["error"], data)
        self.model = _str_or_none(payload.get("modelVersion")) or self.model
        if "usageMetadata" in payload:
            self.usage = _usage(payload)
        candidate = _first_candidate(payload)
        if candidate is None:
            _raise_if_blocked(payload, data)
            return []
        chunks: list[Chunk] = []
        text = _candidate_text(candidate)
        if text:
            self.text_seen = True
            chunks.append(Chunk(text=text, model=self.model))
        if calls := _calls(candidate, self.calls):
            pieces = [
                ToolCallDelta(index=self.calls + i, id=c.id, name=c.name, arguments=c.arguments)
                for i, c in enumerate(calls)
            ]
            self.calls += len(calls)
            chunks.append(Chunk(tool_calls=pieces, model=self.model))
        raw_finish = candidate.get("finishReason")
        if raw_finish:
            chunks.append(self._finish(raw_finish, data))
        return chunks

    def _finish(self, raw_finish: Any, data: str) -> Chunk:
        finish = finish_reason(raw_finish)
        if finish == "stop" and self.calls:
            finish = "tool_calls"
        if finish == "content_filter" and not self.text_seen:
            raise ContentFilterError(f"answer blocked: {raw_finish}", status_code=200, body=data[:4000])
        self.finished = True
        prompt_tokens, completion_tokens, cached_tokens = self.usage
        return Chunk(
            finish_reason=finish,
            prompt_tokens=prompt_tokens,
            completion_tokens=completion_tokens,
            cached_tokens=cached_tokens,
            model=self.model,
        )


def _stream_payload(data: str) -> dict[str, Any]:
    try:
        payload = _json.loads(data)
    except _json.JSONDecodeError as exc:
        raise StreamInterruptedError("malformed stream payload", body=data[:4000]) from exc
    if not isinstance(payload, dict):
        raise StreamInterruptedError("malformed stream payload", body=data[:4000])
    return payload


def _stream_error(error: Any, data: str) -> ProviderError:
    # An error inside a 200 stream has no HTTP status of its own; its RPC code stands in for one.
    code = error.get("code") if isinstance(error, dict) else None
    status = code if isinstance(code, int) and 400 <= code <= 599 else 500
    return _from_error_object(status, {}, data, error if isinstance(error, dict) else {})


# --- errors --------------------------------------------------------------------------------------------------------


def map_error(status: int, headers: Mapping[str, str], body: bytes) -> ProviderError:
    """Turn a non-2xx Gemini answer into the most specific :class:`ProviderError`.

    Args:
        status: The HTTP status.
        headers: The response headers (``retry-after`` wins over a ``RetryInfo`` detail).
        body: The raw response body: a Google RPC status, possibly wrapped in a one-element list, or anything a
            proxy in between chose to send.

    Returns:
        The error to raise.
    """
    text = _text(body)
    try:
        parsed = _json.loads(body) if body else None
    except _json.JSONDecodeError:
        parsed = None
    # The streaming endpoint has been seen to wrap its error in a JSON array.
    if isinstance(parsed, list) and parsed:
        parsed = parsed[0]
    error = parsed.get("error") if isinstance(parsed, dict) else None
    return _from_error_object(status, headers, text, error if isinstance(error, dict) else {})


def _from_error_object(status: int, headers: Mapping[str, str], text: str, error: Mapping[str, Any]) -> ProviderError:
    message = _str_or_none(error.get("message")) or ""
    rpc_status = _str_or_none(error.get("status"))
    details = error.get("details")
    details = [d for d in details if isinstance(d, dict)] if isinstance(details, list) else []
    reason = _error_reason(details)
    err = error_from_status(status, message, headers=headers, body=text, error_type=rpc_status, error_code=reason)
    if reason is not None and reason.startswith("API_KEY_") and not isinstance(err, AuthenticationError):
        # Google answers a wrong or expired key with 400 INVALID_ARGUMENT; only the ErrorInfo reason tells.
        err = _recast(err, AuthenticationError)
    elif isinstance(err, ContentFilterError) and _names_safety_settings(message):
        # A malformed ``safetySettings`` field is a bad request, not a filtered one; Gemini reports real blocks
        # in a 200 answer, never as an error status.
        err = _recast(err, InvalidRequestError)
    if isinstance(err, ContextTooLargeError):
        err.token_count = _first_int(_TOKEN_COUNT, message)
        err.max_tokens = _first_int(_TOKEN_LIMIT, message)
    if err.retry_after is None:
        err.retry_after = _retry_delay(details)
    return err


def _error_reason(details: list[dict[str, Any]]) -> str | None:
    for detail in details:
        if detail.get("@type") == _ERROR_INFO:
            return _str_or_none(detail.get("reason"))
    return None


def _retry_delay(details: list[dict[str, Any]]) -> float | None:
    for detail in details:
        if detail.get("@type") == _RETRY_INFO:
            return _duration_seconds(detail.get("retryDelay"))
    return None


def _duration_seconds(value: Any) -> float | None:
    """Seconds in a protobuf JSON ``Duration`` (``"12s"``, ``"1.5s"``, ``"47.434392449s"``); ``None`` if invalid."""
    if not isinstance(value, str):
        return None
    match = _DURATION.match(value)
    return float(match.group(1)) if match else None


def _recast(err: ProviderError, cls: type[ProviderError]) -> ProviderError:
    return cls(
        err.message, status_code=err.status_code, body=err.body, retry_after=err.retry_after, headers=err.headers
    )


def _names_safety_settings(message: str) -> bool:
    low = message.lower()
    return "safety_setting" in low or "safetysetting" in low


# --- small helpers -------------------------------------------------------------------------------------------------


def _ok(status: int) -> bool:
    return 200 <= status < 300


def _text(body: bytes) -> str:
    return body[:4000].decode("utf-8", errors="replace")


def _int(value: Any) -> int:
    # Counts are int64, which proto3 JSON may render as strings.
    if isinstance(value, bool):
        return 0
    if isinstance(value, int):
        return value
    if isinstance(value, str) and value.isdigit():
        return int(value)
    return 0


def _str_or_none(value: Any) -> str | None:
    return value if isinstance(value, str) and value else None


def _first_int(pattern: re.Pattern[str], text: str) -> int | None:
    match = pattern.search(text)
    return int(match.group(1)) if match else None
