"""Tools in OpenAI's chat-completions shape, both ways: the OpenAI adapter sends them, the gateway's OpenAI
ingress reads and writes them. Reading is lenient (what a provider sent); :func:`tools_from_wire` and
:func:`choice_from_wire` validate (what a client sent) and raise ``ValueError`` naming the field."""

from __future__ import annotations

from typing import Any

from llm_manager.types import Request, Tool, ToolCall, ToolCallDelta, ToolChoice

__all__ = [
    "calls_from_wire",
    "calls_to_wire",
    "choice_from_wire",
    "deltas_from_wire",
    "first_error",
    "tool_fields",
    "tools_from_wire",
]


def tool_fields(request: Request) -> dict[str, Any]:
    """``tools``, ``tool_choice`` and ``parallel_tool_calls`` for a request body (empty without tools)."""
    out: dict[str, Any] = {}
    if request.tools:
        out["tools"] = [_tool(t) for t in request.tools]
        if request.parallel_tool_calls is not None:
            out["parallel_tool_calls"] = request.parallel_tool_calls
    choice = request.tool_choice
    if choice is not None and (request.tools or choice == "none"):
        out["tool_choice"] = (
            choice if isinstance(choice, str) else {"type": "function", "function": {"name": choice.name}}
        )
    return out


def _tool(t: Tool) -> dict[str, Any]:
    function: dict[str, Any] = {"name": t.name, "parameters": t.parameters}
    if t.description:
        function["description"] = t.description
    if t.strict is not None:
        function["strict"] = t.strict
    return {"type": "function", "function": function}


def calls_to_wire(calls: tuple[ToolCall, ...] | list[ToolCall]) -> list[dict[str, Any]]:
    """An assistant message's ``tool_calls``."""
    return [{"id": c.id, "type": "function", "function": {"name": c.name, "arguments": c.arguments}} for c in calls]


def calls_from_wire(raw: Any) -> list[ToolCall]:
    """A message's ``tool_calls`` (entries without a function name are dropped: nothing could run them)."""
    calls: list[ToolCall] = []
    for i, item in enumerate(raw if isinstance(raw, list) else ()):
        function = item.get("function") if isinstance(item, dict) else None
        name = function.get("name") if isinstance(function, dict) else None
        if not isinstance(name, str) or not name:
            continue
        args = function.get("arguments") if isinstance(function, dict) else None
        call_id = item.get("id")
        calls.append(
            ToolCall(
                id=call_id if isinstance(call_id, str) and call_id else f"call_{i}",
                name=name,
                arguments=args if isinstance(args, str) else "{}",
            )
        )
    return calls


def deltas_from_wire(raw: Any) -> list[ToolCallDelta] | None:
    """A stream delta's ``tool_calls`` pieces, or ``None`` when it has none."""
    if not isinstance(raw, list) or not raw:
        return None
    out: list[ToolCallDelta] = []
    for item in raw:
        if not isinstance(item, dict):
            continue
        function = item.get("function")
        function = function if isinstance(function, dict) else {}
        index, call_id, name, args = item.get("index"), item.get("id"), function.get("name"), function.get("arguments")
        out.append(
            ToolCallDelta(
                index=index if isinstance(index, int) else 0,
                id=call_id if isinstance(call_id, str) else None,
                name=name if isinstance(name, str) else None,
                arguments=args if isinstance(args, str) else "",
            )
        )
    return out or None


def tools_from_wire(raw: Any) -> list[Tool] | None:
    """A client's ``tools`` array. Raises ``ValueError`` with the offending field's path."""
    if raw is None:
        return None
    if not isinstance(raw, list):
        raise ValueError("tools: must be an array")
    tools: list[Tool] = []
    for i, item in enumerate(raw):
        function = item.get("function") if isinstance(item, dict) and item.get("type") == "function" else None
        if not isinstance(function, dict):
            raise ValueError(f"tools[{i}]: must be {{'type': 'function', 'function': {{...}}}}")
        try:
            spec = {k: function[k] for k in ("name", "description", "parameters", "strict") if k in function}
            tools.append(Tool.model_validate(spec, strict=True))  # "strict": "false" is not false
        except ValueError as exc:
            raise ValueError(f"tools[{i}].function: {first_error(exc)}") from None
    return tools or None


def choice_from_wire(raw: Any) -> str | ToolChoice | None:
    """A client's ``tool_choice``: ``auto`` / ``none`` / ``required`` or a named function."""
    if raw is None or raw in ("auto", "none", "required"):
        return raw  # type: ignore[no-any-return]
    function = raw.get("function") if isinstance(raw, dict) else None
    name = function.get("name") if isinstance(function, dict) else None
    if isinstance(name, str):
        try:
            return ToolChoice(name=name)
        except ValueError:
            pass
    raise ValueError("tool_choice: must be auto, none, required or {'type': 'function', 'function': {'name': ...}}")


def first_error(exc: ValueError) -> str:
    """The first problem of a (pydantic) validation error, with where it is: for messages naming the field."""
    errors = getattr(exc, "errors", None)
    if callable(errors):
        first = errors()[0]
        where = ".".join(str(p) for p in first.get("loc", ()))
        return f"{where}: {first.get('msg')}" if where else str(first.get("msg"))
    return str(exc)
