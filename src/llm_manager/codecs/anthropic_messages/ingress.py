"""Messages requests from a client (ingress): a body validated against the wire model and decoded into canonical
:class:`~llm_manager.types.Request` fields.

``image`` / ``document`` blocks become image / file parts, ``thinking`` blocks reasoning parts (signature kept),
``tool_use`` / ``tool_result`` blocks tool calls and tool turns, ``cache_control`` marks stay on their parts and
tools; ``thinking.budget_tokens`` becomes a :class:`Reasoning` budget, ``top_k``, ``service_tier`` and
``metadata.user_id`` their canonical fields. What has no canonical counterpart (a cache mark on the system prompt,
fields this version does not know) travels in :class:`Passthrough` to Messages deployments.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import partial
from typing import Any

from llm_manager import _json
from llm_manager.codecs import _validate
from llm_manager.codecs.anthropic_messages import wire
from llm_manager.codecs.anthropic_messages.request import PROTOCOL
from llm_manager.codecs.base import WireError
from llm_manager.content import FilePart, ImagePart, Part, ReasoningPart, TextPart
from llm_manager.types import Message, Passthrough, Reasoning, ResponseFormat, Tool, ToolCall, ToolChoice

__all__ = ["ClientRequest", "decode_client_request"]

_UNITS = re.compile(r"^tools\.\d+(?=$|\.)")
_CHOICES = {"auto": "auto", "any": "required", "none": "none"}


@dataclass(slots=True)
class ClientRequest:
    """A client's Messages request, decoded."""

    model: str
    fields: dict[str, Any]
    """Canonical :class:`Request` fields (``messages`` among them)."""
    user: str | None
    stream: bool


def decode_client_request(body: Any) -> ClientRequest:
    """Validate and decode a client's body. Raises :class:`WireError` naming the field (as ``messages.0.content``:
    Anthropic's way, the message starting with it)."""
    if isinstance(body, dict) and isinstance(body.get("tools"), list):
        for i, t in enumerate(body["tools"]):
            if isinstance(t, dict) and t.get("type") not in (None, "custom"):
                kind = t.get("type")
                raise WireError(
                    f"tools.{i}: only client tools are supported, not server tools ({kind!r})", f"tools.{i}"
                )
    req = _validate.validate(wire.MessagesRequest, body, style="dots", units=_UNITS)
    fields: dict[str, Any] = {
        "max_tokens": req.max_tokens,
        "messages": [
            m
            for i, turn in enumerate(req.messages)
            for m in _validate.canonical(f"messages.{i}", partial(_turn, turn, i))
        ],
    }
    passthrough: dict[str, Any] = {k: v for k, v in (req.model_extra or {}).items() if v is not None}
    if isinstance(req.system, str):
        fields["system"] = req.system
    elif req.system:
        fields["system"] = "\n\n".join(b.text for b in req.system)
        if any(b.cache_control for b in req.system):
            passthrough["system"] = body["system"]  # the cache mark has no canonical place: the blocks go as sent
    for name in ("temperature", "top_p", "top_k", "service_tier"):
        value = getattr(req, name)
        if value is not None:
            fields[name] = value
    if req.stop_sequences:
        fields["stop"] = req.stop_sequences
    if isinstance(req.thinking, wire.ThinkingEnabled):
        fields["reasoning"] = Reasoning(budget_tokens=req.thinking.budget_tokens)
    elif isinstance(req.thinking, wire.ThinkingDisabled):
        fields["reasoning"] = Reasoning(budget_tokens=0)
    fmt = req.output_config.format if req.output_config is not None else None
    if fmt is not None:
        try:
            fields["response_format"] = ResponseFormat(json_schema=fmt.schema_)
        except ValueError as exc:
            raise WireError(f"output_config.format: {exc}", "output_config.format") from None
    fields.update(_tools(req))
    if passthrough:
        fields["passthrough"] = Passthrough(protocol=PROTOCOL, fields=passthrough)
    user = req.metadata.user_id if req.metadata is not None else None
    return ClientRequest(req.model, fields, user, bool(req.stream))


def _tools(req: wire.MessagesRequest) -> dict[str, Any]:
    out: dict[str, Any] = {}
    tools = []
    for i, t in enumerate(req.tools or ()):
        spec: dict[str, Any] = {"name": t.name, "parameters": t.input_schema, "cache_control": t.cache_control}
        if t.description is not None:
            spec["description"] = t.description
        try:
            tools.append(Tool(**spec))
        except ValueError as exc:
            raise WireError(f"tools.{i}: {exc}", f"tools.{i}") from None
    if tools:
        out["tools"] = tools
    choice = req.tool_choice
    if choice is None:
        return out
    if isinstance(choice, wire.ToolChoiceNamed):
        try:
            out["tool_choice"] = ToolChoice(name=choice.name)
        except ValueError:
            raise WireError(f"tool_choice.name: {choice.name!r} is not a valid tool name", "tool_choice.name") from None
    else:
        out["tool_choice"] = _CHOICES[choice.type]
    if not isinstance(choice, wire.NoneChoice) and choice.disable_parallel_tool_use:
        out["parallel_tool_calls"] = False
    if not tools and out["tool_choice"] != "none":
        raise WireError("tool_choice: requires tools", "tool_choice")
    return out


def _turn(turn: wire.Turn, i: int) -> list[Message]:
    """The canonical messages of one turn: an assistant turn with its tool calls, or a user turn's tool results (one
    ``tool`` message each) followed by the rest of it."""
    if isinstance(turn.content, str):
        return [Message(role=turn.role, content=turn.content)]
    where = f"messages.{i}.content"
    parts: list[Part] = []
    calls: list[ToolCall] = []
    results: list[Message] = []
    for j, block in enumerate(turn.content):
        at = f"{where}.{j}"
        if isinstance(block, wire.ToolUseBlock):
            _only(turn.role, "assistant", block.type, at)
            calls.append(ToolCall(id=block.id, name=block.name, arguments=_json.dumps(block.input).decode()))
        elif isinstance(block, wire.ToolResultBlock):
            _only(turn.role, "user", block.type, at)
            results.append(_result(block, at))
        elif isinstance(block, wire.ThinkingBlock | wire.RedactedThinkingBlock):
            _only(turn.role, "assistant", block.type, at)
            parts.append(_reasoning(block))
        else:
            if block.type != "text":
                _only(turn.role, "user", block.type, at)
            parts.append(_part(block, at))
    out = results
    if parts or calls or not results:
        content: str | tuple[Part, ...] = tuple(parts)
        if all(isinstance(p, TextPart) and p.cache_control is None for p in parts):
            # Blocks are separate pieces (a reminder, a document, the question): kept apart as paragraphs.
            content = "\n\n".join(p.text for p in parts if isinstance(p, TextPart))
        out = [*out, Message(role=turn.role, content=content, tool_calls=tuple(calls))]
    return out


def _only(role: str, allowed: str, kind: str, where: str) -> None:
    if role != allowed:
        raise WireError(f"{where}: a {kind} block belongs in an {allowed} turn", where)


def _reasoning(block: wire.ThinkingBlock | wire.RedactedThinkingBlock) -> ReasoningPart:
    if isinstance(block, wire.RedactedThinkingBlock):
        return ReasoningPart(redacted=block.data)
    return ReasoningPart(text=block.thinking, signature=block.signature or None)


def _result(block: wire.ToolResultBlock, where: str) -> Message:
    content: str | tuple[Part, ...]
    if isinstance(block.content, str):
        content = block.content
    else:
        parts = [_part(p, f"{where}.content.{k}") for k, p in enumerate(block.content)]
        content = tuple(parts)
        if all(isinstance(p, TextPart) and p.cache_control is None for p in parts):
            content = "\n\n".join(p.text for p in parts if isinstance(p, TextPart))
    if block.is_error:
        # The canonical tool message has no error flag; the model still learns it failed.
        content = f"Error: {content}" if isinstance(content, str) else (TextPart(text="Error:"), *content)
    return Message(role="tool", content=content, tool_call_id=block.tool_use_id)


def _part(block: Any, where: str) -> Part:
    if isinstance(block, wire.TextBlock):
        return TextPart(text=block.text, cache_control=block.cache_control)
    source = block.source
    if isinstance(source, wire.URLSource):
        data: bytes | None = None
        url: str | None = source.url
        media: str | None = None
    elif isinstance(source, wire.TextSource):
        data, url, media = source.data.encode(), None, "text/plain"
    else:
        data, url, media = _validate.base64_bytes(source.data, f"{where}.source.data"), None, source.media_type
    if isinstance(block, wire.ImageBlock):
        return ImagePart(url=url, data=data, media_type=media, cache_control=block.cache_control)
    return FilePart(url=url, data=data, media_type=media, filename=block.title, cache_control=block.cache_control)
