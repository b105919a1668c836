"""Messages requests: a canonical :class:`~llm_manager.types.Request` encoded for an upstream (egress).

Protocol facts relied on: the system prompt is a top-level ``system`` field, not a turn; turns must alternate user /
assistant; ``max_tokens`` is required; ``temperature`` is limited to 0..1. Tools: ``tools[].input_schema``; a call is a
``tool_use`` content block whose result goes back as a ``tool_result`` block in a user turn.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from llm_manager import _json

if TYPE_CHECKING:
    from llm_manager.codecs.base import Target
    from llm_manager.types import Message, Request, ResponseFormat

__all__ = ["encode_request", "forced_tool", "tool_input"]


def encode_request(request: Request, target: Target, *, stream: bool) -> dict[str, Any]:
    """The Messages API body for ``request`` sent to ``target``."""
    body: dict[str, Any] = {"model": target.model, "max_tokens": _max_tokens(request, target)}
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
    body.update(target.extra_body)
    if stream:
        body["stream"] = True
    return body


def forced_tool(request: Request) -> str | None:
    """The name of the tool forced for structured output, if the request is answered that way."""
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
