"""The OpenAI Chat Completions wire protocol (``POST {base_url}/chat/completions``).

One adapter serves OpenAI and every server that copies its API (Groq, OpenRouter, LM Studio, Ollama, vLLM,
llama.cpp, the Portkey gateway). What differs between them arrives as data in the
:class:`~llm_manager.providers.base.Endpoint` (base URL, static headers, extra body fields, options such as
``stream_usage``); nothing here branches on a vendor's name.

The module is pure translation functions (request building, response parsing, stream parsing, error mapping)
plus the adapter, which sends one call and hands the bytes to them.
"""

from __future__ import annotations

from collections.abc import AsyncGenerator, Mapping
from contextlib import aclosing
from typing import TYPE_CHECKING, Any

from llm_manager import _json
from llm_manager._sse import SSEDecoder, SSEEvent
from llm_manager.errors import (
    ConfigError,
    ContentFilterError,
    ModelUnavailableError,
    ProviderError,
    StreamInterruptedError,
)
from llm_manager.providers._errors import error_from_status, looks_like_context_error, looks_like_filter
from llm_manager.providers.base import Chunk, Completion, ProviderAdapter
from llm_manager.providers.openai_tools import calls_from_wire, calls_to_wire, deltas_from_wire, tool_fields
from llm_manager.types import ToolCallDelta

if TYPE_CHECKING:
    from llm_manager._http import StreamingResponse
    from llm_manager.providers.base import Endpoint
    from llm_manager.types import FinishReason, Request

__all__ = [
    "OpenAIChatAdapter",
    "build_body",
    "build_headers",
    "error_from_response",
    "parse_completion",
]

_FINISH_REASONS: dict[str, FinishReason] = {
    "stop": "stop",
    "length": "length",
    "content_filter": "content_filter",
    "tool_calls": "tool_calls",
    "function_call": "tool_calls",  # the pre-tools name of the same thing
}
_SNIPPET_CHARS = 300


class OpenAIChatAdapter(ProviderAdapter):
    """Adapter for the OpenAI Chat Completions API and every OpenAI-compatible server."""

    kind = "openai"

    async def complete(self, request: Request, *, api_key: str | None) -> Completion:
        """Send ``request`` once and return the whole answer.

        Args:
            request: The canonical request.
            api_key: Sent as a bearer token; ``None`` sends no ``authorization`` header (local servers).

        Returns:
            The answer with its usage.

        Raises:
            ProviderError: The mapped error for a failed call or an unusable answer.
        """
        body = _json.dumps(build_body(self.endpoint, request, stream=False))
        try:
            resp = await self.http.post(self._url("chat/completions"), headers=self._headers(api_key), body=body)
            if not 200 <= resp.status < 300:
                raise error_from_response(resp.status, resp.headers, resp.body)
            return parse_completion(resp.body)
        except ProviderError as exc:
            self._tag(exc)
            raise

    async def stream(self, request: Request, *, api_key: str | None) -> AsyncGenerator[Chunk, None]:
        """Send ``request`` once with ``stream: true`` and yield chunks as they arrive.

        Errors answered before the first byte of the body (any non-2xx) are raised before anything is yielded.

        Args:
            request: The canonical request.
            api_key: Sent as a bearer token; ``None`` sends no ``authorization`` header.

        Yields:
            Text chunks; the last carries the finish reason, and usage when the server reports it.

        Raises:
            StreamInterruptedError: The stream broke, was malformed, or ended before completion.
            ProviderError: The mapped error for an error status or an error event inside the stream.
        """
        body = _json.dumps(build_body(self.endpoint, request, stream=True))
        try:
            async with self.http.stream(
                self._url("chat/completions"), headers=self._headers(api_key), body=body
            ) as resp:
                if not 200 <= resp.status < 300:
                    raise error_from_response(resp.status, resp.headers, await resp.read())
                if resp.headers.get("content-type", "").startswith("application/json"):
                    # Some compatible servers ignore ``stream: true`` and answer with one whole completion.
                    yield _completion_as_chunk(parse_completion(await resp.read()))
                    return
                async with aclosing(_iter_chunks(resp)) as chunks:
                    async for chunk in chunks:
                        yield chunk
        except ProviderError as exc:
            self._tag(exc)
            raise

    async def probe(self, *, api_key: str | None) -> None:
        """List the models (``GET {base_url}/models``): checks reachability and the key without spending tokens.

        Args:
            api_key: The key to check; ``None`` for servers without auth.

        Raises:
            ProviderError: The mapped error when the server is unreachable or refuses.
        """
        headers = {k: v for k, v in self._headers(api_key).items() if k != "content-type"}
        try:
            resp = await self.http.request("GET", self._url("models"), headers=headers)
            if not 200 <= resp.status < 300:
                raise error_from_response(resp.status, resp.headers, resp.body)
        except ProviderError as exc:
            self._tag(exc)
            raise

    def _url(self, path: str) -> str:
        base = self.endpoint.base_url.rstrip("/")
        if not base:
            raise ConfigError(f"deployment {self.endpoint.name!r} has no base_url", deployment=self.endpoint.name)
        return f"{base}/{path}"

    def _headers(self, api_key: str | None) -> dict[str, str]:
        return build_headers(self.endpoint, api_key)

    def _tag(self, exc: ProviderError) -> None:
        # Errors are built by pure functions that know nothing of the deployment; name it once, here. (A try /
        # except at each call, not a generator-based context manager: that costs more on every call.)
        exc.provider = exc.provider or self.endpoint.provider
        exc.model = exc.model or self.endpoint.model
        exc.deployment = exc.deployment or self.endpoint.name


# --- request ---------------------------------------------------------------------------------------------------


def build_headers(endpoint: Endpoint, api_key: str | None) -> dict[str, str]:
    """The headers of one call: JSON content type, bearer auth when a key is given, then the endpoint's own.

    Endpoint headers are applied last (names lower-cased) so a gateway preset can replace the auth scheme.
    """
    headers = {"content-type": "application/json"}
    if api_key is not None:
        headers["authorization"] = f"Bearer {api_key}"
    headers.update({k.lower(): v for k, v in endpoint.headers.items()})
    return headers


def build_body(endpoint: Endpoint, request: Request, *, stream: bool) -> dict[str, Any]:
    """The JSON body for ``request`` on ``endpoint``.

    Args:
        endpoint: Supplies the model id, the output cap, extra body fields and the ``stream_usage`` option.
        request: The canonical request.
        stream: Whether to ask for server-sent events.

    Returns:
        A JSON-ready dict. ``endpoint.extra_body`` is merged over the generated fields, except the streaming
        switches, which must match how the answer is read.
    """
    body: dict[str, Any] = {"model": endpoint.model, "messages": _messages(request, endpoint)}
    body.update(_sampling(endpoint, request))
    body.update(tool_fields(request))
    fmt = _response_format(endpoint, request)
    if fmt is not None:
        body["response_format"] = fmt
    body.update(endpoint.extra_body)
    if not stream:
        body.pop("stream", None)
        body.pop("stream_options", None)
        return body
    body["stream"] = True
    if endpoint.options.get("stream_usage") is not False:
        # Without this OpenAI sends no usage at all when streaming; servers that reject it opt out via options.
        body.setdefault("stream_options", {"include_usage": True})
    return body


def _messages(request: Request, endpoint: Endpoint) -> list[dict[str, Any]]:
    system = request.system
    fmt = request.response_format
    if fmt is not None and endpoint.options.get("structured", "json_schema") != "json_schema":
        # No native schema support here: the schema travels as instructions (JSON mode also requires the
        # word "JSON" in the prompt, which the instruction contains).
        from llm_manager.structured.extract import instruction

        system = f"{system}\n\n{instruction(fmt.json_schema)}" if system else instruction(fmt.json_schema)
    messages: list[dict[str, Any]] = [{"role": "system", "content": system}] if system else []
    for m in request.messages:
        if m.tool_calls:
            messages.append(
                {"role": "assistant", "content": m.content or None, "tool_calls": calls_to_wire(m.tool_calls)}
            )
        elif m.tool_call_id is not None:
            messages.append({"role": "tool", "tool_call_id": m.tool_call_id, "content": m.content})
        else:
            messages.append({"role": m.role, "content": m.content})
    return messages


def _response_format(endpoint: Endpoint, request: Request) -> dict[str, Any] | None:
    """Structured output the way this server takes it (``structured`` option: json_schema / json_object /
    prompt). In the last two modes the caller has already put the schema into the prompt."""
    fmt = request.response_format
    mode = endpoint.options.get("structured", "json_schema")
    if fmt is None or mode == "prompt":
        return None
    if mode == "json_object":
        return {"type": "json_object"}
    schema = fmt.json_schema
    if fmt.strict:
        from llm_manager.structured.extract import strict_schema

        schema = strict_schema(schema)
    return {"type": "json_schema", "json_schema": {"name": fmt.name, "schema": schema, "strict": fmt.strict}}


def _sampling(endpoint: Endpoint, request: Request) -> dict[str, Any]:
    out: dict[str, Any] = {}
    if request.max_tokens is not None:
        cap = endpoint.max_output_tokens
        # Reasoning models (o-series, gpt-5) reject max_tokens; the profile says which field the model wants.
        field = endpoint.options.get("max_tokens_field") or "max_tokens"
        out[field] = min(request.max_tokens, cap) if cap is not None else request.max_tokens
    if request.temperature is not None:
        out["temperature"] = request.temperature
    if request.top_p is not None:
        out["top_p"] = request.top_p
    if request.stop:
        out["stop"] = list(request.stop)
    if request.user is not None:
        out["user"] = request.user
    return out


# --- whole response --------------------------------------------------------------------------------------------


def parse_completion(body: bytes) -> Completion:
    """Translate a 200 answer into a :class:`Completion`.

    Raises:
        ModelUnavailableError: The body is not JSON or has no choices (a broken upstream or proxy).
        ContentFilterError: The filter stopped the answer before any text (or the model refused).
        ProviderError: The body is an error object despite the 200 status.
    """
    try:
        payload = _json.loads(body)
    except _json.JSONDecodeError as exc:
        raise _malformed("malformed response: not JSON", body) from exc
    if isinstance(payload, dict) and payload.get("error"):
        raise _error_from_payload(payload["error"], headers={}, body=body)
    choice = _first_choice(payload.get("choices") if isinstance(payload, dict) else None)
    if choice is None:
        raise _malformed("malformed response: no choices", body)
    message = choice.get("message")
    message = message if isinstance(message, dict) else {}
    text = _str(message.get("content")) or ""
    finish = _finish_reason(choice.get("finish_reason"))
    calls = calls_from_wire(message.get("tool_calls"))
    if calls and finish == "stop":
        finish = "tool_calls"  # some compatible servers say "stop" after a tool call
    if not text and not calls and (finish == "content_filter" or _str(message.get("refusal"))):
        reason = _str(message.get("refusal")) or "completion blocked by the content filter"
        raise ContentFilterError(reason, status_code=200, body=_text(body))
    prompt, completion, cached = _usage(payload.get("usage"))
    return Completion(
        text=text,
        finish_reason=finish,
        prompt_tokens=prompt,
        completion_tokens=completion,
        cached_tokens=cached,
        model=_str(payload.get("model")),
        id=_str(payload.get("id")),
        tool_calls=calls,
    )


def _completion_as_chunk(completion: Completion) -> Chunk:
    calls = completion.tool_calls
    return Chunk(
        text=completion.text,
        finish_reason=completion.finish_reason,
        prompt_tokens=completion.prompt_tokens,
        completion_tokens=completion.completion_tokens,
        cached_tokens=completion.cached_tokens,
        model=completion.model,
        tool_calls=[ToolCallDelta(index=i, id=c.id, name=c.name, arguments=c.arguments) for i, c in enumerate(calls)]
        or None,
    )


def _first_choice(choices: Any) -> dict[str, Any] | None:
    # With ``n`` > 1 (possible through extra_body) only choice 0 is the answer.
    if not isinstance(choices, list):
        return None
    for choice in choices:
        if isinstance(choice, dict) and choice.get("index", 0) == 0:
            return choice
    return None


def _usage(usage: Any) -> tuple[int | None, int | None, int]:
    if not isinstance(usage, dict):
        return None, None, 0
    details = usage.get("prompt_tokens_details")
    cached = _int(details.get("cached_tokens")) if isinstance(details, dict) else None
    return _int(usage.get("prompt_tokens")), _int(usage.get("completion_tokens")), cached or 0


def _finish_reason(raw: Any) -> FinishReason | None:
    return _FINISH_REASONS.get(raw) if isinstance(raw, str) else None


# --- stream ----------------------------------------------------------------------------------------------------


async def _iter_chunks(resp: StreamingResponse) -> AsyncGenerator[Chunk, None]:
    state = _StreamState(resp.headers)
    decoder = SSEDecoder()
    # aclosing: stopping early must close the byte iterator now, not whenever the loop finalises it.
    async with aclosing(resp.iter_bytes()) as pieces:
        while True:
            try:
                piece = await anext(pieces)
            except StopAsyncIteration:
                break
            except StreamInterruptedError:
                if state.finished:
                    return  # dropped after the finish reason: the text is whole, only usage / [DONE] were lost
                raise
            for event in decoder.events(piece):
                chunk = state.on_event(event)
                if chunk is not None:
                    yield chunk
                if state.done:
                    return
    if not state.finished:
        raise StreamInterruptedError("stream ended before completion", status_code=200)
    # A finish reason without ``[DONE]`` is a complete answer: several compatible servers never send the marker.


class _StreamState:
    """What one stream has shown so far; turns each SSE event into at most one chunk."""

    __slots__ = ("done", "finished", "headers")

    def __init__(self, headers: Mapping[str, str]) -> None:
        self.headers = headers
        self.done = False
        """``[DONE]`` arrived."""
        self.finished = False
        """A choice carried a finish reason (even one we do not know)."""

    def on_event(self, event: SSEEvent) -> Chunk | None:
        data = event.data.strip()
        if not data:
            return None
        if data == "[DONE]":
            self.done = True
            return None
        try:
            payload = _json.loads(data)
        except _json.JSONDecodeError as exc:
            raise StreamInterruptedError(f"malformed chunk: {_snippet(data)}", status_code=200, body=data) from exc
        if not isinstance(payload, dict):
            raise StreamInterruptedError(f"malformed chunk: {_snippet(data)}", status_code=200, body=data)
        if payload.get("error") or event.event == "error":
            raise _error_from_payload(payload.get("error") or payload, headers=self.headers, body=data.encode())
        return self._chunk(payload)

    def _chunk(self, payload: dict[str, Any]) -> Chunk | None:
        text, finish, calls = "", None, None
        choice = _first_choice(payload.get("choices"))
        if choice is not None:
            delta = choice.get("delta")
            if isinstance(delta, dict):
                text = _str(delta.get("content")) or ""
                calls = deltas_from_wire(delta.get("tool_calls"))
            raw_finish = choice.get("finish_reason")
            self.finished = self.finished or raw_finish is not None
            finish = _finish_reason(raw_finish)
        prompt, completion, cached = _usage(payload.get("usage"))
        if not text and not calls and finish is None and prompt is None and completion is None:
            return None  # role-only deltas, keep-alives, Azure's prompt-filter preamble
        return Chunk(
            text=text,
            finish_reason=finish,
            prompt_tokens=prompt,
            completion_tokens=completion,
            cached_tokens=cached,
            model=_str(payload.get("model")),
            tool_calls=calls,
        )


# --- errors ----------------------------------------------------------------------------------------------------


def error_from_response(status: int, headers: Mapping[str, str], body: bytes) -> ProviderError:
    """Map a non-2xx answer to the most specific error.

    Understands ``{"error": {"message", "type", "code", "param"}}`` (OpenAI), ``{"error": "text"}`` (Ollama),
    ``{"detail": ...}`` (FastAPI-based servers), ``{"object": "error", "message": ...}`` (vLLM) and bodies that
    are not JSON at all (proxies' HTML pages).
    """
    try:
        payload = _json.loads(body)
    except _json.JSONDecodeError:
        payload = None
    if payload is None:
        snippet = _snippet(_text(body))
        message, error_type, error_code = (f"HTTP {status}: {snippet}" if snippet else f"HTTP {status}"), None, None
    else:
        message, error_type, error_code = _error_fields(payload)
        message = message or f"HTTP {status}"
    return error_from_status(
        status, message, headers=headers, body=_text(body), error_type=error_type, error_code=error_code
    )


def _error_fields(payload: Any) -> tuple[str, str | None, str | None]:
    """``(message, type, code)`` from any of the error shapes compatible servers use."""
    if isinstance(payload, list) and payload:
        payload = payload[0]  # some gateways wrap the error object in a list
    if isinstance(payload, str):
        return payload, None, None
    if not isinstance(payload, dict):
        return "", None, None
    inner = payload.get("error")
    if isinstance(inner, str):
        return inner, _str(payload.get("type")), _code(payload.get("code"))
    if isinstance(inner, dict):
        payload = inner
    elif "detail" in payload and "message" not in payload:
        detail = payload["detail"]
        return (detail if isinstance(detail, str) else _json.dumps(detail).decode()), None, None
    message = payload.get("message")
    if message is not None and not isinstance(message, str):
        message = _json.dumps(message).decode()
    return message or "", _str(payload.get("type")), _code(payload.get("code"))


def _error_from_payload(error: Any, *, headers: Mapping[str, str], body: bytes) -> ProviderError:
    """An error object that arrived with a 200 (inside a stream, or as a whole body): guess its status."""
    message, error_type, error_code = _error_fields(error)
    status = _guess_status(error, message, error_type, error_code)
    return error_from_status(
        status,
        message or "error reported by the provider",
        headers=headers,
        body=_text(body),
        error_type=error_type,
        error_code=error_code,
    )


def _guess_status(error: Any, message: str, error_type: str | None, error_code: str | None) -> int:
    code = error.get("code") if isinstance(error, dict) else None
    if isinstance(code, int) and not isinstance(code, bool) and 400 <= code <= 599:
        return code  # OpenRouter and vLLM put the HTTP status they would have sent in ``code``
    hint = " ".join(x for x in (error_type, error_code, message) if x).lower()
    if "rate_limit" in hint or "rate limit" in hint:
        return 429
    if looks_like_context_error(hint) or looks_like_filter(hint):
        return 400  # error_from_status tells these apart by the same words
    if any(m in hint for m in ("server_error", "server error", "overloaded", "unavailable")):
        return 503
    return 500


# --- small helpers ---------------------------------------------------------------------------------------------


def _malformed(message: str, body: bytes) -> ModelUnavailableError:
    return ModelUnavailableError(f"{message}: {_snippet(_text(body))}", status_code=200, body=_text(body))


def _text(body: bytes) -> str:
    return body[:4000].decode("utf-8", errors="replace")


def _snippet(text: str) -> str:
    flat = " ".join(text.split())
    return flat if len(flat) <= _SNIPPET_CHARS else flat[:_SNIPPET_CHARS] + "…"


def _str(value: Any) -> str | None:
    return value if isinstance(value, str) else None


def _int(value: Any) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def _code(value: Any) -> str | None:
    # ``code`` is a string at OpenAI, an int (the HTTP status) at vLLM and OpenRouter.
    if value is None or isinstance(value, bool):
        return None
    return str(value)
