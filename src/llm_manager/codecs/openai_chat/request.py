"""Chat Completions requests: a canonical :class:`~llm_manager.types.Request` encoded for an upstream (egress).

Content parts become ``image_url`` (a URL, or inline bytes as a ``data:`` URL), ``input_audio`` (WAV or MP3) and
``file`` parts; reasoning parts of earlier assistant turns are not sent (Chat Completions takes none back). Portable
parameters become their OpenAI fields; the client's OpenAI-only fields (``prediction``, ``verbosity``, ``store`` …)
pass through untouched; what the deployment cannot take is left out and reported (:func:`unsupported`).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

from llm_manager.codecs.openai_chat.tools import calls_to_wire, tool_fields
from llm_manager.codecs.params import Dropped, foreign_fields, has_cache_breakpoints, reasoning_effort
from llm_manager.errors import InvalidRequestError

if TYPE_CHECKING:
    from llm_manager.codecs.base import Target
    from llm_manager.types import Message, Part, Request

__all__ = ["PROTOCOL", "Params", "dropped_by", "encode_request", "reasoning_fields", "unsupported"]

PROTOCOL = "openai_chat"
_AUDIO_FORMATS = {
    "audio/wav": "wav",
    "audio/x-wav": "wav",
    "audio/wave": "wav",
    "audio/mpeg": "mp3",
    "audio/mp3": "mp3",
}
Params = Callable[["Request", "Target", "Dropped | None"], dict[str, Any]]
"""Portable parameters as a protocol's fields; what it cannot take is left out and, with a ``Dropped``, reported."""
_NOT_FOR_REASONING = ("temperature", "top_p", "frequency_penalty", "presence_penalty", "logprobs", "top_logprobs")
"""Sampling fields OpenAI's reasoning models (o-series, gpt-5) refuse with a 400."""


def encode_request(request: Request, target: Target, *, stream: bool) -> dict[str, Any]:
    """The JSON body for ``request`` on ``target``.

    Args:
        request: The canonical request.
        target: Supplies the model id, the output cap, extra body fields and the profile (structured-output mode,
            the field that caps output, whether streamed usage can be asked for, reasoning, extra sampling fields).
        stream: Whether to ask for server-sent events.

    Returns:
        A JSON-ready dict: the generated fields, then the client's OpenAI-only fields, then ``target.extra_body``
        (config has the last word), except the streaming switches, which must match how the answer is read.
    """
    body: dict[str, Any] = {"model": target.model, "messages": _messages(request, target)}
    body.update(_params(request, target, None))
    body.update(tool_fields(request))
    fmt = _response_format(target, request)
    if fmt is not None:
        body["response_format"] = fmt
    body.update(foreign_fields(request, PROTOCOL, None))
    body.update(target.extra_body)
    if not stream:
        body.pop("stream", None)
        body.pop("stream_options", None)
        return body
    body["stream"] = True
    if target.profile.stream_usage:
        # Without this OpenAI sends no usage at all when streaming; servers that reject it opt out in their profile.
        body.setdefault("stream_options", {"include_usage": True})
    return body


def unsupported(request: Request, target: Target) -> Dropped:
    """What :func:`encode_request` leaves out for ``target``, and why."""
    return dropped_by(_params, PROTOCOL, request, target)


def dropped_by(params: Params, protocol: str, request: Request, target: Target) -> Dropped:
    """What an OpenAI protocol leaves out of ``request``: of the portable parameters, what ``params`` reports; cache
    breakpoints (OpenAI caches by itself); the fields of other protocols than ``protocol``. The Responses egress
    shares it with its own ``params``."""
    dropped = Dropped()
    params(request, target, dropped)
    if has_cache_breakpoints(request):
        dropped.add("cache_control", "OpenAI caches prompts by itself and takes no cache breakpoints")
    foreign_fields(request, protocol, dropped)
    return dropped


def _messages(request: Request, target: Target) -> list[dict[str, Any]]:
    system = request.system
    fmt = request.response_format
    if fmt is not None and target.profile.structured != "json_schema" and fmt.type == "json_schema":
        # No native schema support here: the schema travels as instructions (JSON mode also requires the
        # word "JSON" in the prompt, which the instruction contains).
        from llm_manager.codecs.json_schema import instruction

        system = f"{system}\n\n{instruction(fmt.json_schema)}" if system else instruction(fmt.json_schema)
    messages: list[dict[str, Any]] = [{"role": "system", "content": system}] if system else []
    for m in request.messages:
        if m.tool_calls:
            content = _content(m) or None
            messages.append({"role": "assistant", "content": content, "tool_calls": calls_to_wire(m.tool_calls)})
        elif m.tool_call_id is not None:
            messages.append({"role": "tool", "tool_call_id": m.tool_call_id, "content": _content(m)})
        else:
            messages.append({"role": m.role, "content": _content(m)})
    return messages


def _content(m: Message) -> str | list[dict[str, Any]]:
    content = m.content
    if isinstance(content, str):
        return content
    parts = [_part(p) for p in content if p.type != "reasoning"]
    if not parts:
        return ""
    if m.role != "user" and all(p["type"] == "text" for p in parts):
        # Assistant and tool turns take text parts too, but some compatible servers only a string.
        return "".join(p["text"] for p in parts) if len(parts) == 1 else parts
    return parts


def _part(part: Part) -> dict[str, Any]:
    if part.type == "text":
        return {"type": "text", "text": part.text}
    if part.type == "image":
        image: dict[str, Any] = {"url": part.source_url()}
        if part.detail is not None:
            image["detail"] = part.detail
        return {"type": "image_url", "image_url": image}
    if part.type == "audio":
        fmt = _AUDIO_FORMATS.get((part.media_type or "").lower())
        if fmt is None or part.data is None:
            raise InvalidRequestError(
                "OpenAI Chat Completions takes audio input as inline WAV or MP3 bytes only, "
                f"not {part.media_type or 'a URL'}"
            )
        return {"type": "input_audio", "input_audio": {"data": part.b64(), "format": fmt}}
    if part.type == "file":
        return {"type": "file", "file": _file(part)}
    raise InvalidRequestError(f"a {part.type} part cannot be sent in a Chat Completions message")


def _file(part: Any) -> dict[str, Any]:
    if part.file_id is not None:
        return {"file_id": part.file_id}
    if part.data is None:
        raise InvalidRequestError("OpenAI Chat Completions takes files as inline bytes or a file_id, not by URL")
    out: dict[str, Any] = {"file_data": part.source_url()}
    if part.filename:
        out["filename"] = part.filename
    return out


def _response_format(target: Target, request: Request) -> dict[str, Any] | None:
    """Structured output the way this server takes it (its profile's mode: json_schema / json_object / prompt).
    In the last two modes a schema is already in the prompt."""
    fmt = request.response_format
    mode = target.profile.structured
    if fmt is None or mode == "prompt":
        return None
    if mode != "json_schema" or fmt.type == "json_object":
        return {"type": "json_object"}
    schema = fmt.json_schema
    if fmt.strict:
        from llm_manager.codecs.json_schema import strict_schema

        schema = strict_schema(schema)
    return {"type": "json_schema", "json_schema": {"name": fmt.name, "schema": schema, "strict": fmt.strict}}


def _params(request: Request, target: Target, dropped: Dropped | None) -> dict[str, Any]:
    """Sampling and portable fields; what ``target`` cannot take goes into ``dropped`` instead."""
    profile = target.profile
    out: dict[str, Any] = {}
    if request.max_tokens is not None:
        cap = target.max_output_tokens
        # Reasoning models (o-series, gpt-5) reject max_tokens; the profile says which field the model wants.
        out[profile.max_tokens_field] = min(request.max_tokens, cap) if cap is not None else request.max_tokens
    for name in ("temperature", "top_p", "seed", "frequency_penalty", "presence_penalty", "service_tier", "user"):
        value = getattr(request, name)
        if value is not None:
            out[name] = value
    if request.stop:
        out["stop"] = list(request.stop)
    if request.logprobs is not None:
        out["logprobs"] = request.logprobs
        if request.top_logprobs is not None:
            out["top_logprobs"] = request.top_logprobs
    elif request.top_logprobs is not None and dropped is not None:
        dropped.add("top_logprobs", "it needs logprobs")
    _extensions(request, target, out, dropped)
    return out


def _extensions(request: Request, target: Target, out: dict[str, Any], dropped: Dropped | None) -> None:
    """``top_k`` and reasoning: only some OpenAI-protocol endpoints take them."""
    profile = target.profile
    if request.top_k is not None:
        if "top_k" in profile.sampling:
            out["top_k"] = request.top_k
        elif dropped is not None:
            dropped.add("top_k", "the OpenAI protocol has no top_k (only local servers such as vLLM take it)")
    reasoning_fields(request, target, out, dropped, field="reasoning_effort", refused=_NOT_FOR_REASONING)


def reasoning_fields(
    request: Request,
    target: Target,
    out: dict[str, Any],
    dropped: Dropped | None,
    *,
    field: str,
    refused: Sequence[str],
) -> None:
    """The reasoning effort as ``field`` (``reasoning.effort`` is nested) where the model reasons, reported as dropped
    where it does not; for OpenAI's reasoning models, the sampling fields in ``refused`` (which they answer with a
    400) taken out of ``out`` and reported. Both OpenAI protocols, each with its own spelling and list."""
    profile = target.profile
    if request.reasoning is not None:
        if profile.reasoning:
            key, _, inner = field.partition(".")
            effort = reasoning_effort(request.reasoning)
            out[key] = {inner: effort} if inner else effort
        elif dropped is not None:
            dropped.add("reasoning", f"{target.model} takes no reasoning effort (not a reasoning model)")
    if profile.reasoning and profile.max_tokens_field == "max_completion_tokens":
        for name in refused:
            if out.pop(name, None) is not None and dropped is not None:
                dropped.add(name, f"{target.model} is a reasoning model and refuses it")
