"""Chat Completions requests: a canonical :class:`~llm_manager.types.Request` encoded for an upstream (egress)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from llm_manager.codecs.openai_chat.tools import calls_to_wire, tool_fields

if TYPE_CHECKING:
    from llm_manager.codecs.base import Target
    from llm_manager.types import Request

__all__ = ["encode_request"]


def encode_request(request: Request, target: Target, *, stream: bool) -> dict[str, Any]:
    """The JSON body for ``request`` on ``target``.

    Args:
        request: The canonical request.
        target: Supplies the model id, the output cap, extra body fields and the profile (structured-output mode,
            the field that caps output, whether streamed usage can be asked for).
        stream: Whether to ask for server-sent events.

    Returns:
        A JSON-ready dict. ``target.extra_body`` is merged over the generated fields, except the streaming
        switches, which must match how the answer is read.
    """
    body: dict[str, Any] = {"model": target.model, "messages": _messages(request, target)}
    body.update(_sampling(target, request))
    body.update(tool_fields(request))
    fmt = _response_format(target, request)
    if fmt is not None:
        body["response_format"] = fmt
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


def _messages(request: Request, target: Target) -> list[dict[str, Any]]:
    system = request.system
    fmt = request.response_format
    if fmt is not None and target.profile.structured != "json_schema":
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


def _response_format(target: Target, request: Request) -> dict[str, Any] | None:
    """Structured output the way this server takes it (its profile's mode: json_schema / json_object / prompt).
    In the last two modes the schema is already in the prompt."""
    fmt = request.response_format
    mode = target.profile.structured
    if fmt is None or mode == "prompt":
        return None
    if mode != "json_schema":
        return {"type": "json_object"}
    schema = fmt.json_schema
    if fmt.strict:
        from llm_manager.structured.extract import strict_schema

        schema = strict_schema(schema)
    return {"type": "json_schema", "json_schema": {"name": fmt.name, "schema": schema, "strict": fmt.strict}}


def _sampling(target: Target, request: Request) -> dict[str, Any]:
    out: dict[str, Any] = {}
    if request.max_tokens is not None:
        cap = target.max_output_tokens
        # Reasoning models (o-series, gpt-5) reject max_tokens; the profile says which field the model wants.
        out[target.profile.max_tokens_field] = min(request.max_tokens, cap) if cap is not None else request.max_tokens
    if request.temperature is not None:
        out["temperature"] = request.temperature
    if request.top_p is not None:
        out["top_p"] = request.top_p
    if request.stop:
        out["stop"] = list(request.stop)
    if request.user is not None:
        out["user"] = request.user
    return out
