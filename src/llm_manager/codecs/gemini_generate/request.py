"""generateContent requests: a canonical :class:`~llm_manager.types.Request` encoded for an upstream (egress).

Turns are ``contents`` with roles ``user`` / ``model``; the system prompt is a separate ``systemInstruction``;
sampling settings live in ``generationConfig`` (camelCase on the wire).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

from llm_manager import _json

if TYPE_CHECKING:
    from llm_manager.codecs.base import Target
    from llm_manager.types import Message, Request, Tool

__all__ = ["encode_request", "model_path"]


def encode_request(request: Request, target: Target) -> dict[str, Any]:
    """Translate a canonical request into a ``GenerateContentRequest`` body.

    ``target.extra_body`` supplies defaults: its top-level fields are added, and where both it and the request
    set an object (``generationConfig``) the two are merged one level deep with the request's own values winning,
    so a deployment can add e.g. ``thinkingConfig`` without losing the caller's ``temperature``.

    Args:
        request: The canonical request.
        target: The deployment (output-token cap, extra body fields).

    Returns:
        The JSON-ready body.
    """
    body: dict[str, Any] = {"contents": _contents(request.messages)}
    if request.system:
        body["systemInstruction"] = {"parts": [{"text": request.system}]}
    config = _generation_config(request, target)
    if config:
        body["generationConfig"] = config
    if request.tools:
        body["tools"] = [{"functionDeclarations": [_declaration(t) for t in request.tools]}]
    if (tool_config := _tool_config(request)) is not None:
        body["toolConfig"] = tool_config
    return _with_defaults(body, target.extra_body)


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


def _generation_config(request: Request, target: Target) -> dict[str, Any]:
    config: dict[str, Any] = {}
    max_tokens = request.max_tokens
    if max_tokens is not None and target.max_output_tokens is not None:
        max_tokens = min(max_tokens, target.max_output_tokens)
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


def model_path(model: str) -> str:
    """The model's resource name: accepts "gemini-2.0-flash" as well as "models/…", "tunedModels/…"."""
    return model if "/" in model else f"models/{model}"
