"""generateContent requests: a canonical :class:`~llm_manager.types.Request` encoded for an upstream (egress).

Turns are ``contents`` with roles ``user`` / ``model``; the system prompt is a separate ``systemInstruction``;
sampling settings live in ``generationConfig`` (camelCase on the wire), thinking in its ``thinkingConfig``. Images,
audio and documents are ``inlineData`` parts (base64 with a MIME type) or ``fileData`` parts (a URI); signed reasoning
goes back as ``thought`` parts with their ``thoughtSignature``.
"""

from __future__ import annotations

import base64
import mimetypes
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

from llm_manager import _json
from llm_manager.codecs.params import Dropped, foreign_fields, has_cache_breakpoints, thinking_budget
from llm_manager.content import parse_data_url
from llm_manager.errors import InvalidRequestError

if TYPE_CHECKING:
    from llm_manager.codecs.base import Target
    from llm_manager.types import Message, Part, Reasoning, Request, Tool

__all__ = ["PROTOCOL", "encode_request", "model_path", "unsupported"]

PROTOCOL = "gemini_generate"


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
    config = _generation_config(request, target, None)
    if config:
        body["generationConfig"] = config
    if request.tools:
        body["tools"] = [{"functionDeclarations": [_declaration(t) for t in request.tools]}]
    if (tool_config := _tool_config(request)) is not None:
        body["toolConfig"] = tool_config
    body = _with_defaults(body, foreign_fields(request, PROTOCOL, None))
    return _with_defaults(body, target.extra_body)


def unsupported(request: Request, target: Target) -> Dropped:
    """What :func:`encode_request` leaves out for ``target``, and why."""
    dropped = Dropped()
    _generation_config(request, target, dropped)
    if request.service_tier is not None:
        dropped.add("service_tier", "the Gemini API has no service tiers")
    if request.parallel_tool_calls is False and request.tools:
        dropped.add("parallel_tool_calls", "the Gemini API cannot be asked for one function call at most")
    if has_cache_breakpoints(request):
        dropped.add("cache_control", "Gemini caches prompts by itself and takes no cache breakpoints")
    foreign_fields(request, PROTOCOL, dropped)
    return dropped


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
        text = message.text
        try:
            result = _json.loads(text)
        except _json.JSONDecodeError:
            result = text
        response = result if isinstance(result, dict) else {"result": result}  # the API wants an object
        name = names.get(message.tool_call_id, message.tool_call_id)
        return [{"functionResponse": {"id": message.tool_call_id, "name": name, "response": response}}]
    content = message.content
    parts: list[dict[str, Any]]
    if isinstance(content, str):
        parts = [{"text": content}] if content or not message.tool_calls else []
    else:
        parts = [_part(p) for p in content if p.type != "reasoning" or p.signature]
    for call in message.tool_calls:
        try:
            args = _json.loads(call.arguments or "{}")
        except _json.JSONDecodeError:
            args = {}
        parts.append(
            {"functionCall": {"id": call.id, "name": call.name, "args": args if isinstance(args, dict) else {}}}
        )
    return parts


def _part(part: Part) -> dict[str, Any]:
    if part.type == "text":
        return {"text": part.text}
    if part.type == "reasoning":
        return {"text": part.text, "thought": True, "thoughtSignature": part.signature}
    if part.data is not None:
        return {"inlineData": {"mimeType": part.media_type, "data": part.b64()}}
    url = part.url or ""
    inline = parse_data_url(url)
    if inline is not None:
        return {"inlineData": {"mimeType": inline[0], "data": base64.b64encode(inline[1]).decode("ascii")}}
    if not url:
        raise InvalidRequestError("the Gemini API cannot read another provider's file id")
    media_type = part.media_type or mimetypes.guess_type(url)[0] or "application/octet-stream"
    return {"fileData": {"mimeType": media_type, "fileUri": url}}


def _generation_config(request: Request, target: Target, dropped: Dropped | None) -> dict[str, Any]:
    config: dict[str, Any] = {}
    max_tokens = request.max_tokens
    if max_tokens is not None and target.max_output_tokens is not None:
        max_tokens = min(max_tokens, target.max_output_tokens)
    if max_tokens is not None:
        config["maxOutputTokens"] = max_tokens
    for name, field in _SAMPLING:
        value = getattr(request, name)
        if value is not None:
            config[field] = value
    if request.stop:
        config["stopSequences"] = list(request.stop)
    if request.logprobs:
        config["responseLogprobs"] = True
        if request.top_logprobs is not None:
            config["logprobs"] = request.top_logprobs
    fmt = request.response_format
    if fmt is not None:
        # Native structured output: JSON mode, constrained by a plain JSON Schema when there is one.
        config["responseMimeType"] = "application/json"
        if fmt.type == "json_schema":
            config["responseJsonSchema"] = fmt.json_schema
    if request.reasoning is not None:
        if target.profile.reasoning:
            config["thinkingConfig"] = _thinking(request.reasoning)
        elif dropped is not None:
            dropped.add("reasoning", f"{target.model} has no thinking budget")
    return config


_SAMPLING = (
    ("temperature", "temperature"),
    ("top_p", "topP"),
    ("top_k", "topK"),
    ("seed", "seed"),
    ("presence_penalty", "presencePenalty"),
    ("frequency_penalty", "frequencyPenalty"),
)


def _thinking(reasoning: Reasoning) -> dict[str, Any]:
    budget = thinking_budget(reasoning)
    # Thoughts come back as summaries (``thought: true`` parts), so reasoning reaches the caller as with the others.
    return {"thinkingBudget": budget, "includeThoughts": budget > 0}


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
