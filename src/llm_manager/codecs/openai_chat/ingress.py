"""Chat Completions requests from a client (ingress): a body validated against the wire model and decoded into
canonical :class:`~llm_manager.types.Request` fields.

Content parts become canonical parts (``image_url`` → image, ``input_audio`` → audio, ``file`` → file); portable
parameters become canonical fields (``reasoning_effort`` → :class:`Reasoning`, ``json_object`` → JSON mode, legacy
``functions`` / ``function_call`` → tools); the OpenAI-only ones and fields this version does not know travel in
:class:`Passthrough`, untouched, to deployments speaking this protocol.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import partial
from typing import Any

from llm_manager.codecs import _validate
from llm_manager.codecs.base import WireError
from llm_manager.codecs.openai_chat import wire
from llm_manager.codecs.openai_chat.request import PROTOCOL
from llm_manager.content import AudioPart, FilePart, ImagePart, Part, TextPart, parse_data_url
from llm_manager.types import Message, Passthrough, Reasoning, ResponseFormat, Tool, ToolCall, ToolChoice

__all__ = ["ClientRequest", "decode_client_request"]

_UNITS = re.compile(r"^(tools\[\d+\]\.function|functions\[\d+\]|stop)(?=$|[.\[])")
"""Fields named as a whole in errors (as OpenAI's own server names them)."""
_AUDIO_TYPES = {"wav": "audio/wav", "mp3": "audio/mpeg"}


@dataclass(slots=True)
class ClientRequest:
    """A client's Chat Completions request, decoded."""

    model: str
    """As the client named it (a deployment, an alias or ``task:<type>``: the gateway resolves it)."""
    fields: dict[str, Any]
    """Canonical :class:`Request` fields (``messages`` among them)."""
    user: str | None
    stream: bool
    include_usage: bool
    n: int = 1
    """How many choices (each one a call of its own; a whole answer only)."""


def decode_client_request(body: Any) -> ClientRequest:
    """Validate and decode a client's body. Raises :class:`WireError` naming the field."""
    req = _validate.validate(wire.ChatCompletionRequest, body, style="brackets", units=_UNITS)
    n = req.n or 1
    if n > 1 and req.stream:
        # Several streams in one would interleave their chunks by index: refused rather than half served.
        raise WireError("n above 1 is answered whole: send stream: false, or n streaming requests", "n")
    fields: dict[str, Any] = {
        "messages": [
            m
            for i, raw in enumerate(req.messages)
            for m in _validate.canonical(f"messages[{i}]", partial(_message, raw, i))
        ]
    }
    # max_completion_tokens wins when both are given, but a null one does not hide max_tokens.
    limit = req.max_completion_tokens if req.max_completion_tokens is not None else req.max_tokens
    if limit is not None:
        fields["max_tokens"] = limit
    for name in ("temperature", "top_p", "top_k", "seed", "frequency_penalty", "presence_penalty", "service_tier"):
        value = getattr(req, name)
        if value is not None:
            fields[name] = value
    if req.stop is not None:
        fields["stop"] = [req.stop] if isinstance(req.stop, str) else req.stop
    if req.logprobs is not None:
        fields["logprobs"] = req.logprobs
    if req.top_logprobs is not None:
        fields["top_logprobs"] = req.top_logprobs
    if req.reasoning_effort is not None:
        fields["reasoning"] = Reasoning(effort=req.reasoning_effort)
    fmt = _response_format(req.response_format)
    if fmt is not None:
        fields["response_format"] = fmt
    fields.update(_tools(req))
    passthrough = _passthrough(req, body)
    if passthrough:
        fields["passthrough"] = Passthrough(protocol=PROTOCOL, fields=passthrough)
    include_usage = bool(req.stream_options and req.stream_options.include_usage)
    return ClientRequest(req.model, fields, req.user, bool(req.stream), include_usage, n)


def _passthrough(req: wire.ChatCompletionRequest, body: dict[str, Any]) -> dict[str, Any]:
    """The client's OpenAI-only fields, exactly as sent (known ones, then unknown ones)."""
    out = {name: body[name] for name in wire.PASSTHROUGH if body.get(name) is not None}
    out.update((k, v) for k, v in (req.model_extra or {}).items() if v is not None)
    return out


def _message(m: Any, i: int) -> list[Message]:
    where = f"messages[{i}]"
    if isinstance(m, wire.SystemMessage):
        # o-series clients send developer; the system prompt is one string, its parts kept apart as paragraphs
        return [Message(role="system", content=_texts(m.content))]
    if isinstance(m, wire.UserMessage):
        if isinstance(m.content, str):
            return [Message(role="user", content=m.content)]
        parts = tuple(_part(p, f"{where}.content[{j}]") for j, p in enumerate(m.content))
        # One plain text part is a string; several stay parts (joined, their words would run together).
        one = parts[0] if len(parts) == 1 else None
        if isinstance(one, TextPart) and one.cache_control is None:
            return [Message(role="user", content=one.text)]
        return [Message(role="user", content=parts)]
    if isinstance(m, wire.AssistantMessage):
        calls = [ToolCall(id=c.id, name=c.function.name, arguments=c.function.arguments) for c in m.tool_calls or ()]
        if m.function_call is not None:
            calls.append(
                ToolCall(
                    id=_legacy_id(m.function_call.name), name=m.function_call.name, arguments=m.function_call.arguments
                )
            )
        text = m.content if isinstance(m.content, str) or m.content is None else _assistant_parts(m.content)
        return [Message(role="assistant", content=text or "", tool_calls=tuple(calls))]
    if isinstance(m, wire.ToolMessage):
        return [Message(role="tool", content=_texts(m.content), tool_call_id=m.tool_call_id)]
    return [Message(role="tool", content=m.content or "", tool_call_id=_legacy_id(m.name))]


def _legacy_id(name: str) -> str:
    """The call id of a legacy ``function_call`` (which has none): its result names the function, not a call."""
    return f"call_{name}"


def _texts(content: str | list[wire.TextContent]) -> str:
    return content if isinstance(content, str) else "\n\n".join(p.text for p in content)


def _assistant_parts(parts: list[Any]) -> str:
    return "\n\n".join(p.text if isinstance(p, wire.TextContent) else p.refusal for p in parts)


def _part(p: Any, where: str) -> Part:
    cache = (p.model_extra or {}).get("cache_control")
    cache = cache if isinstance(cache, dict) else None  # some clients mark OpenAI parts for Anthropic's cache
    if isinstance(p, wire.TextContent):
        return TextPart(text=p.text, cache_control=cache)
    if isinstance(p, wire.ImageContent):
        inline = _data_url(p.image_url.url, f"{where}.image_url.url")
        if inline is not None:
            return ImagePart(data=inline[1], media_type=inline[0], detail=p.image_url.detail, cache_control=cache)
        return ImagePart(url=p.image_url.url, detail=p.image_url.detail, cache_control=cache)
    if isinstance(p, wire.AudioContent):
        data = _validate.base64_bytes(p.input_audio.data, f"{where}.input_audio.data")
        return AudioPart(data=data, media_type=_AUDIO_TYPES[p.input_audio.format], cache_control=cache)
    return _file(p.file, where, cache)


def _file(f: wire.FileData, where: str, cache: dict[str, Any] | None) -> FilePart:
    if f.file_id is not None:
        return FilePart(file_id=f.file_id, url=None, filename=f.filename, cache_control=cache)
    if f.file_data is None:
        raise WireError(f"{where}.file: give file_data or file_id", f"{where}.file")
    inline = _data_url(f.file_data, f"{where}.file.file_data")
    if inline is not None:
        return FilePart(data=inline[1], media_type=inline[0], filename=f.filename, cache_control=cache)
    # OpenAI also takes bare base64 (a PDF).
    data = _validate.base64_bytes(f.file_data, f"{where}.file.file_data")
    return FilePart(data=data, media_type="application/pdf", filename=f.filename, cache_control=cache)


def _data_url(url: str, where: str) -> tuple[str, bytes] | None:
    try:
        return parse_data_url(url)
    except ValueError as exc:
        raise WireError(f"{where}: {exc}", where) from None


def _response_format(raw: Any) -> ResponseFormat | None:
    if raw is None or isinstance(raw, wire.TextFormat):
        return None
    if isinstance(raw, wire.JsonObjectFormat):
        return ResponseFormat(type="json_object")
    spec = raw.json_schema
    try:
        return ResponseFormat(name=spec.name or "response", json_schema=spec.schema_, strict=spec.strict is not False)
    except ValueError as exc:
        raise WireError(f"response_format.json_schema: {exc}", "response_format.json_schema") from None


def _tools(req: wire.ChatCompletionRequest) -> dict[str, Any]:
    out: dict[str, Any] = {}
    defs = [("tools", i, t.function) for i, t in enumerate(req.tools or ())]
    defs += [("functions", i, f) for i, f in enumerate(req.functions or ())]
    tools = [_tool(f, f"{field}[{i}]" + (".function" if field == "tools" else "")) for field, i, f in defs]
    if tools:
        out["tools"] = tools
    choice: Any = req.tool_choice
    where = "tool_choice"
    if choice is None and req.function_call is not None:
        choice, where = req.function_call, "function_call"
    if isinstance(choice, wire.NamedToolChoice | wire.NamedFunction):
        name = choice.function.name if isinstance(choice, wire.NamedToolChoice) else choice.name
        try:
            choice = ToolChoice(name=name)
        except ValueError:
            raise WireError(f"{where}: {name!r} is not a valid function name", where) from None
    if choice is not None and (tools or choice == "none"):
        out["tool_choice"] = choice
    elif choice is not None and choice != "auto":
        raise WireError(f"{where} is set but no tools were given", where)
    if req.parallel_tool_calls is not None:
        out["parallel_tool_calls"] = req.parallel_tool_calls
    return out


def _tool(f: wire.FunctionDef, where: str) -> Tool:
    spec: dict[str, Any] = {"name": f.name, "description": f.description, "strict": f.strict}
    if f.parameters is not None:
        spec["parameters"] = f.parameters
    try:
        return Tool(**{k: v for k, v in spec.items() if v is not None})
    except ValueError as exc:
        raise WireError(f"{where}: {exc}", where) from None
