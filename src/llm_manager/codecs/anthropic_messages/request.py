"""Messages requests: a canonical :class:`~llm_manager.types.Request` encoded for an upstream (egress).

Protocol facts relied on: the system prompt is a top-level ``system`` field, not a turn; turns must alternate user /
assistant; ``max_tokens`` is required; ``temperature`` is limited to 0..1. Tools: ``tools[].input_schema``; a call is a
``tool_use`` content block whose result goes back as a ``tool_result`` block in a user turn. Images and documents are
``image`` / ``document`` blocks (base64 or URL sources); signed reasoning goes back as ``thinking`` blocks, first in
their turn. Extended thinking (``thinking.budget_tokens``) must stay below ``max_tokens`` and rules out a forced tool,
a temperature other than 1 and ``top_k``.
"""

from __future__ import annotations

import base64
from typing import TYPE_CHECKING, Any

from llm_manager import _json
from llm_manager.codecs.params import Dropped, foreign_fields, thinking_budget
from llm_manager.content import parse_data_url
from llm_manager.errors import InvalidRequestError

if TYPE_CHECKING:
    from llm_manager.codecs.base import Target
    from llm_manager.types import Message, Part, Request, ResponseFormat

__all__ = ["PROTOCOL", "encode_request", "forced_tool", "tool_input", "unsupported"]

PROTOCOL = "anthropic_messages"
_MIN_THINKING = 1024
"""Anthropic's smallest thinking budget."""
_SERVICE_TIERS = {"auto": "auto", "standard_only": "standard_only", "default": "standard_only"}
_NOT_SENT = ("seed", "frequency_penalty", "presence_penalty")


def encode_request(request: Request, target: Target, *, stream: bool) -> dict[str, Any]:
    """The Messages API body for ``request`` sent to ``target``."""
    max_tokens = _max_tokens(request, target)
    body: dict[str, Any] = {"model": target.model, "max_tokens": max_tokens}
    system = request.system
    if request.response_format is not None and request.tools:
        # Forcing the schema tool would forbid the caller's tools, so the schema travels as instructions.
        from llm_manager.codecs.json_schema import instruction

        extra = instruction(request.response_format.schema_or_object)
        system = f"{system}\n\n{extra}" if system else extra
    if system is not None:
        body["system"] = system
    body["messages"] = _merge_turns(request)
    body.update(_params(request, target, max_tokens, None))
    if request.tools:
        body.update(_tools(request))
    elif request.response_format is not None:
        body.update(_forced_tool(request.response_format))
    body.update(foreign_fields(request, PROTOCOL, None))
    body.update(target.extra_body)
    if stream:
        body["stream"] = True
    return body


def unsupported(request: Request, target: Target) -> Dropped:
    """What :func:`encode_request` leaves out for ``target``, and why."""
    dropped = Dropped()
    _params(request, target, _max_tokens(request, target), dropped)
    foreign_fields(request, PROTOCOL, dropped)
    return dropped


def _params(request: Request, target: Target, max_tokens: int, dropped: Dropped | None) -> dict[str, Any]:
    """Sampling and portable fields; what the Messages API cannot take goes into ``dropped`` instead."""
    out: dict[str, Any] = {}
    thinking = _thinking(request, target, max_tokens, dropped)
    if thinking is not None:
        out["thinking"] = thinking
    if request.temperature is not None:
        # The canonical range is OpenAI's 0..2; Anthropic rejects anything above 1.
        out["temperature"] = min(request.temperature, 1.0)
    if request.top_p is not None:
        out["top_p"] = request.top_p
    if request.top_k is not None:
        out["top_k"] = request.top_k
    if thinking is not None:
        _thinking_rules(out, dropped)
    if request.stop:
        out["stop_sequences"] = list(request.stop)
    if request.user is not None:
        out["metadata"] = {"user_id": request.user}
    if request.service_tier is not None:
        if tier := _SERVICE_TIERS.get(request.service_tier):
            out["service_tier"] = tier
        elif dropped is not None:
            dropped.add("service_tier", f"Anthropic has no {request.service_tier!r} tier (only auto, standard_only)")
    if dropped is not None:
        for name in _NOT_SENT:
            if getattr(request, name) is not None:
                dropped.add(name, "the Anthropic Messages API has no such parameter")
        if request.logprobs:
            dropped.add("logprobs", "the Anthropic Messages API returns no log probabilities")
    return out


def _thinking(request: Request, target: Target, max_tokens: int, dropped: Dropped | None) -> dict[str, Any] | None:
    reasoning = request.reasoning
    if reasoning is None:
        return None
    budget = thinking_budget(reasoning)
    if budget == 0:
        return None  # thinking off is the Messages API's default
    why = None
    if not target.profile.reasoning:
        why = f"{target.model} has no extended thinking"
    elif request.response_format is not None and not request.tools:
        why = "structured output forces a tool, which extended thinking does not allow"
    elif request.tool_choice == "required" or (
        request.tool_choice is not None and not isinstance(request.tool_choice, str)
    ):
        why = "a forced tool choice does not allow extended thinking"
    elif min(budget, max_tokens - 1) < _MIN_THINKING:
        why = f"max_tokens ({max_tokens}) leaves no room for the smallest thinking budget ({_MIN_THINKING})"
    if why is not None:
        if dropped is not None:
            dropped.add("reasoning", why)
        return None
    # The budget counts within max_tokens (as OpenAI's reasoning tokens count within max_completion_tokens).
    return {"type": "enabled", "budget_tokens": max(_MIN_THINKING, min(budget, max_tokens - 1))}


def _thinking_rules(out: dict[str, Any], dropped: Dropped | None) -> None:
    """With thinking on, the API allows temperature 1 only, top_p of at least 0.95 and no top_k."""
    for name, ok in (("temperature", lambda v: v == 1), ("top_p", lambda v: v >= 0.95), ("top_k", lambda _v: False)):
        if name in out and not ok(out[name]):
            del out[name]
            if dropped is not None:
                dropped.add(name, "extended thinking does not allow it")


def forced_tool(request: Request) -> str | None:
    """The name of the tool forced for structured output, if the request is answered that way."""
    return request.response_format.name if request.response_format is not None and not request.tools else None


def _tools(request: Request) -> dict[str, Any]:
    tools = []
    for t in request.tools or ():
        tool: dict[str, Any] = {"name": t.name, "input_schema": t.parameters}
        if t.description:
            tool["description"] = t.description
        if t.cache_control:
            tool["cache_control"] = t.cache_control
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
    """Structured output the Anthropic way: one tool whose input schema is the wanted schema, and force it. JSON mode
    (any object) forces a tool taking any object.

    A tool's input must be an object, so any other schema is wrapped as ``{"value": ...}`` (the extractor
    unwraps a single-key object when the bare value is what validates)."""
    schema = fmt.schema_or_object
    if schema.get("type") != "object":
        schema = {"type": "object", "properties": {"value": schema}, "required": ["value"]}
    tool = {"name": fmt.name, "description": "Return the answer as structured data.", "input_schema": schema}
    return {"tools": [tool], "tool_choice": {"type": "tool", "name": fmt.name}}


def _max_tokens(request: Request, target: Target) -> int:
    # The API refuses a request without max_tokens, so a default always applies.
    wanted = request.max_tokens or target.default_max_tokens
    if target.max_output_tokens is not None:
        wanted = min(wanted, target.max_output_tokens)
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
    content = message.content
    if message.tool_call_id is not None:
        result: str | list[dict[str, Any]] = content if isinstance(content, str) else [_block(p) for p in content]
        return [{"type": "tool_result", "tool_use_id": message.tool_call_id, "content": result}]
    blocks: str | list[dict[str, Any]]
    if isinstance(content, str):
        blocks = content
    else:
        # Signed thinking first (the API wants it to open the turn); unsigned reasoning cannot be sent back.
        ordered = sorted(content, key=lambda p: p.type != "reasoning")
        blocks = [_block(p) for p in ordered if p.type != "reasoning" or p.signature or p.redacted]
    if not message.tool_calls:
        return blocks
    head = _blocks(blocks) if blocks else []
    return head + [
        {"type": "tool_use", "id": c.id, "name": c.name, "input": tool_input(c.arguments)} for c in message.tool_calls
    ]


def _block(part: Part) -> dict[str, Any]:
    if part.type == "text":
        block: dict[str, Any] = {"type": "text", "text": part.text}
    elif part.type == "reasoning":
        if part.redacted:
            return {"type": "redacted_thinking", "data": part.redacted}
        return {"type": "thinking", "thinking": part.text, "signature": part.signature or ""}
    elif part.type == "image":
        block = {"type": "image", "source": _source(part)}
    elif part.type == "file":
        block = {"type": "document", "source": _document_source(part)}
        if part.filename:
            block["title"] = part.filename
    else:
        raise InvalidRequestError("the Anthropic Messages API takes no audio input")
    if part.cache_control:
        block["cache_control"] = part.cache_control
    return block


def _source(part: Any) -> dict[str, Any]:
    if part.data is not None:
        return {"type": "base64", "media_type": part.media_type, "data": part.b64()}
    inline = parse_data_url(part.url) if part.url is not None else None
    if inline is not None:
        return {"type": "base64", "media_type": inline[0], "data": base64.b64encode(inline[1]).decode("ascii")}
    if part.url is None:
        raise InvalidRequestError("the Anthropic Messages API cannot read another provider's file id")
    return {"type": "url", "url": part.url}


def _document_source(part: Any) -> dict[str, Any]:
    if part.data is not None and (part.media_type or "").startswith("text/"):
        return {"type": "text", "media_type": "text/plain", "data": part.data.decode("utf-8", errors="replace")}
    return _source(part)


def _blocks(content: str | list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [{"type": "text", "text": content}] if isinstance(content, str) else content


def tool_input(arguments: str) -> dict[str, Any]:
    """A call's arguments as the ``tool_use.input`` object the API wants: text a model wrote that does not
    parse is repaired rather than dropped, and a non-object value is wrapped as ``{"value": ...}``."""
    try:
        value = _json.loads(arguments or "{}")
    except _json.JSONDecodeError:
        from llm_manager.codecs.json_schema import call_json_repair

        value = call_json_repair(arguments)
    return value if isinstance(value, dict) else {"value": value}
