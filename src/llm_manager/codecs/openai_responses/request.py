"""Responses API requests from a client (ingress): a ``POST /v1/responses`` body as canonical messages and
:class:`~llm_manager.types.Request` fields.

``input`` is a string (one user turn) or items: messages (``input_text``, ``input_image``, ``input_file`` and
``input_audio`` parts; ``output_text`` on assistant turns), ``function_call`` items (merged into the assistant turn
before them) and their ``function_call_output``, and ``reasoning`` items (kept on the next assistant turn, with a
provider's signature in ``encrypted_content``). ``instructions`` is the system prompt; ``text.format`` asks for JSON
(a schema or any object); ``reasoning.effort`` is the canonical reasoning effort.

Fields this codec does not translate (``truncation``, ``include``, ``prompt_cache_key`` …, and unknown ones) are the
client's Responses-only fields: sent untouched to Responses deployments, named as not sent by any other. Nothing is
dropped without a word.
"""

from __future__ import annotations

import base64
from dataclasses import dataclass, field
from typing import Any

from pydantic import ValidationError

from llm_manager.codecs.base import WireError
from llm_manager.codecs.openai_responses import wire
from llm_manager.content import parse_data_url

__all__ = ["LOGPROBS_INCLUDE", "PROTOCOL", "Decoded", "decode_request", "input_items", "messages_from_items"]

PROTOCOL = "openai_responses"
_GATEWAY_FIELDS = frozenset({"model", "input", "store", "previous_response_id", "stream", "user"})
"""Fields the gateway itself acts on (routing, storage, streaming, attribution): never passed on."""
_TRANSLATED = frozenset(
    {
        "instructions",
        "tools",
        "tool_choice",
        "parallel_tool_calls",
        "text",
        "max_output_tokens",
        "temperature",
        "top_p",
        "top_logprobs",
        "reasoning",
        "metadata",
        "service_tier",
    }
)
_TAGS = frozenset(
    {"input_text", "input_image", "input_file", "input_audio", "output_text", "refusal", "text", "json_object"}
    | {"json_schema"}
)
"""The ``type`` values of the discriminated unions: pydantic puts the member's tag in an error's path."""
LOGPROBS_INCLUDE = "message.output_text.logprobs"
_AUDIO_MEDIA = {"wav": "audio/wav", "mp3": "audio/mpeg"}
_ITEMS: dict[str, type[Any]] = {
    "message": wire.InputMessage,
    "function_call": wire.FunctionCallItem,
    "function_call_output": wire.FunctionCallOutputItem,
    "reasoning": wire.ReasoningItem,
}


@dataclass(slots=True)
class Decoded:
    """A client's body: the wire request, its input items (normalised), and the canonical request fields."""

    wire: wire.ResponsesRequest
    items: list[dict[str, Any]]
    """``input`` as items (a string becomes one user message), as the client sent them."""
    prefs: dict[str, Any] = field(default_factory=dict)
    """:class:`~llm_manager.types.Request` fields: ``system``, ``max_tokens``, ``tools``, ``response_format`` …"""


def decode_request(body: Any) -> Decoded:
    """Validate a client's body. Raises :class:`~llm_manager.codecs.base.WireError` naming the field."""
    if not isinstance(body, dict):
        raise WireError("the request body must be a JSON object")
    try:
        req = wire.ResponsesRequest.model_validate({**body, "input": None})
    except ValidationError as exc:
        raise _wire_error(exc, "") from None
    if body.get("background"):
        raise WireError("background responses are not supported: leave background unset and wait", "background")
    items = input_items(body.get("input"))
    if not items and req.previous_response_id is None:
        raise WireError("input is required (a string or a non-empty array of items)", "input")
    prefs: dict[str, Any] = {}
    if req.instructions:
        prefs["system"] = req.instructions
    _sampling(req, prefs)
    if wants_logprobs(body) or req.top_logprobs is not None:
        prefs["logprobs"] = True
        if req.top_logprobs is not None:
            prefs["top_logprobs"] = req.top_logprobs
    _tools(req, prefs)
    _text(req, prefs)
    passthrough = _passthrough(body, req)
    if passthrough:
        prefs["passthrough"] = {"protocol": PROTOCOL, "fields": passthrough}
    return Decoded(req, items, prefs)


def input_items(raw: Any) -> list[dict[str, Any]]:
    """``input`` as a list of items, each checked against its wire model (a string is one user message)."""
    if raw is None:
        return []
    if isinstance(raw, str):
        return [{"type": "message", "role": "user", "content": raw}]
    if not isinstance(raw, list):
        raise WireError("input must be a string or an array of items", "input")
    raw = [_without_nulls(item) for item in raw]
    for i, item in enumerate(raw):
        kind = item.get("type", "message") if isinstance(item, dict) else None
        model = _ITEMS.get(kind) if isinstance(kind, str) else None
        if model is None:
            shown = kind if isinstance(kind, str) else type(item).__name__
            raise WireError(
                f"input[{i}]: items of type {shown!r} are not supported (use message, function_call, "
                "function_call_output or reasoning)",
                f"input[{i}].type",
            )
        try:
            model.model_validate(item)
        except ValidationError as exc:
            raise _wire_error(exc, f"input[{i}]") from None
    return list(raw)


def _without_nulls(item: Any) -> Any:
    """An item without its ``null`` fields: SDKs send an earlier output item back as dumped, with every field its
    model knows (``"namespace": null`` …); a null says nothing, and it must not make a field this codec does not
    know an error. A field with a value is checked."""
    if not isinstance(item, dict):
        return item
    out = {k: v for k, v in item.items() if v is not None}
    content = out.get("content")
    if isinstance(content, list):
        out["content"] = [_without_nulls(p) for p in content]
    output = out.get("output")
    if isinstance(output, list):
        out["output"] = [_without_nulls(p) for p in output]
    return out


def messages_from_items(items: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Canonical messages (dicts for :class:`~llm_manager.types.Message`) for checked items.

    Consecutive assistant output — a message, reasoning, function calls — is one assistant turn, as every other
    protocol has it; each ``function_call_output`` is a tool turn.
    """
    out: list[dict[str, Any]] = []
    turn: dict[str, Any] | None = None  # the assistant turn being assembled
    for i, item in enumerate(items):
        kind = item.get("type", "message")
        role = item.get("role")
        if kind == "function_call" or kind == "reasoning" or (kind == "message" and role == "assistant"):
            if turn is None or (turn["tool_calls"] and kind != "function_call"):
                turn = {"role": "assistant", "content": [], "tool_calls": []}
                out.append(turn)
            if kind == "function_call":
                turn["tool_calls"].append({"id": item["call_id"], "name": item["name"], "arguments": item["arguments"]})
            elif kind == "reasoning":
                turn["content"].append(_reasoning(item))
            else:
                turn["content"].extend(_assistant_parts(item["content"]))
            continue
        turn = None
        if kind == "function_call_output":
            output = item["output"]
            content = output if isinstance(output, str) else _parts(output, f"input[{i}].output")
            out.append({"role": "tool", "tool_call_id": item["call_id"], "content": content})
        else:
            where = f"input[{i}].content"
            content = item["content"]
            parts = content if isinstance(content, str) else _parts(content, where)
            if role in ("system", "developer"):
                if not isinstance(parts, str) and any(p["type"] != "text" for p in parts):
                    raise WireError(f"{where}: a {role} message takes text only", where)
                out.append({"role": "system", "content": parts})
            else:
                out.append({"role": "user", "content": parts})
    for m in out:
        if m["role"] == "assistant":
            m["content"] = tuple(m["content"]) if m["content"] else ""
    return out


def _assistant_parts(content: str | list[dict[str, Any]]) -> list[dict[str, Any]]:
    if isinstance(content, str):
        return [{"type": "text", "text": content}] if content else []
    out = []
    for p in content:
        text = p["refusal"] if p["type"] == "refusal" else p["text"]
        if text:
            out.append({"type": "text", "text": text})
    return out


def _reasoning(item: dict[str, Any]) -> dict[str, Any]:
    texts = [s["text"] for s in item.get("content") or ()] or [s["text"] for s in item.get("summary") or ()]
    return {"type": "reasoning", "text": "\n\n".join(texts), "signature": item.get("encrypted_content")}


def _parts(content: list[dict[str, Any]], where: str) -> list[dict[str, Any]]:
    return [_part(p, f"{where}[{j}]") for j, p in enumerate(content)]


def _part(p: dict[str, Any], where: str) -> dict[str, Any]:
    kind = p["type"]
    if kind in ("input_text", "output_text"):
        return {"type": "text", "text": p["text"]}
    if kind == "refusal":
        return {"type": "text", "text": p["refusal"]}
    if kind == "input_image":
        url = p.get("image_url")
        if url is None:
            raise WireError(
                f"{where}: images by file_id are not supported: send image_url (an https: or data: URL)",
                f"{where}.file_id",
            )
        image = _media("image", url, f"{where}.image_url")
        if p.get("detail", "auto") != "auto":
            image["detail"] = p["detail"]
        return image
    if kind == "input_audio":
        audio = p["input_audio"]
        return {
            "type": "audio",
            "data": _b64(audio["data"], f"{where}.input_audio.data"),
            "media_type": _AUDIO_MEDIA[audio["format"]],
        }
    return _file(p, where)


def _file(p: dict[str, Any], where: str) -> dict[str, Any]:
    out: dict[str, Any] = {"type": "file"}
    if p.get("filename"):
        out["filename"] = p["filename"]
    if p.get("file_id") is not None:
        return {**out, "file_id": p["file_id"]}
    if p.get("file_url") is not None:
        return {**out, "url": p["file_url"]}
    data = p.get("file_data")
    if data is None:
        raise WireError(f"{where}: give file_data, file_url or file_id", where)
    if data.startswith("data:"):
        return {**out, **_media("file", data, f"{where}.file_data")}
    # Bare base64 (OpenAI's own examples send a data: URL; some clients the bytes alone): a PDF unless it says not.
    raw = _b64(data, f"{where}.file_data")
    from llm_manager.content import sniff_media_type

    return {**out, "data": raw, "media_type": sniff_media_type(raw) or "application/pdf"}


def _media(kind: str, url: str, where: str) -> dict[str, Any]:
    try:
        inline = parse_data_url(url)
    except ValueError as exc:
        raise WireError(f"{where}: {exc}", where) from None
    if inline is None:
        return {"type": kind, "url": url}
    return {"type": kind, "media_type": inline[0], "data": inline[1]}


def _b64(data: str, where: str) -> bytes:
    try:
        return base64.b64decode(data, validate=True)
    except ValueError:
        raise WireError(f"{where} is not valid base64", where) from None


def _sampling(req: wire.ResponsesRequest, prefs: dict[str, Any]) -> None:
    for name, value in (
        ("max_tokens", req.max_output_tokens),
        ("temperature", req.temperature),
        ("top_p", req.top_p),
        ("service_tier", req.service_tier),
    ):
        if value is not None:
            prefs[name] = value
    if req.metadata:
        prefs["metadata"] = dict(req.metadata)
    if req.reasoning is not None and req.reasoning.effort is not None:
        effort = req.reasoning.effort
        prefs["reasoning"] = {"effort": "high" if effort == "xhigh" else effort}


def _tools(req: wire.ResponsesRequest, prefs: dict[str, Any]) -> None:
    if req.tools:
        prefs["tools"] = [
            {
                k: v
                for k, v in (
                    ("name", t.name),
                    ("description", t.description),
                    ("parameters", t.parameters),
                    ("strict", t.strict),
                )
                if v is not None
            }
            for t in req.tools
        ]
        if req.parallel_tool_calls is not None:
            prefs["parallel_tool_calls"] = req.parallel_tool_calls
    choice = req.tool_choice
    if choice is None or (choice == "auto" and not req.tools):
        return
    if not req.tools and choice != "none":
        raise WireError("tool_choice is set but no tools were given", "tool_choice")
    if isinstance(choice, wire.FunctionChoice):
        if choice.name not in {t.name for t in req.tools or ()}:
            raise WireError(f"tool_choice names {choice.name!r}, which is not among the tools", "tool_choice.name")
        prefs["tool_choice"] = {"name": choice.name}
    else:
        prefs["tool_choice"] = choice


def _text(req: wire.ResponsesRequest, prefs: dict[str, Any]) -> None:
    fmt = req.text.format if req.text is not None else None
    if isinstance(fmt, wire.TextFormatJsonObject):
        prefs["response_format"] = {"type": "json_object"}
    elif isinstance(fmt, wire.TextFormatJsonSchema):
        if not fmt.schema_:
            raise WireError("text.format.schema must be a non-empty JSON schema", "text.format.schema")
        prefs["response_format"] = {"name": fmt.name, "json_schema": fmt.schema_, "strict": fmt.strict is not False}


def _passthrough(body: dict[str, Any], req: wire.ResponsesRequest) -> dict[str, Any]:
    """The client's fields no canonical field carries: unknown ones, and the parts of known ones left over.
    Nested leftovers are named by their path (``text.verbosity``), so a report says exactly what was not sent."""
    out = {
        k: v
        for k, v in body.items()
        if k not in _GATEWAY_FIELDS and k not in _TRANSLATED and v is not None and v != [] and v != {}
    }
    include = out.get("include")
    if isinstance(include, list) and LOGPROBS_INCLUDE in include:
        rest = [x for x in include if x != LOGPROBS_INCLUDE]
        if rest:
            out["include"] = rest
        else:
            del out["include"]
    if req.text is not None and req.text.verbosity is not None:
        out["text.verbosity"] = req.text.verbosity
    if req.reasoning is not None:
        if req.reasoning.effort == "xhigh":
            out["reasoning.effort"] = "xhigh"
        summary = req.reasoning.summary or req.reasoning.generate_summary
        if summary is not None:
            out["reasoning.summary"] = summary
    return out


def wants_logprobs(body: dict[str, Any]) -> bool:
    """Whether the client asked for the answer's token log probabilities (``include`` or ``top_logprobs``)."""
    include = body.get("include")
    return isinstance(include, list) and LOGPROBS_INCLUDE in include


def _wire_error(exc: ValidationError, prefix: str) -> WireError:
    """The deepest problem (of a union, the member that came closest), named by its path
    (``input[2].content[0].image_url``) without pydantic's union tags."""
    err = max(exc.errors(), key=lambda e: len(e["loc"]))
    path = prefix
    previous: int | str | None = None
    for part in err["loc"]:
        tag = part in _TAGS and (isinstance(previous, int) or previous == "format")
        previous = part
        if isinstance(part, int):
            path += f"[{part}]"
        elif tag or "[" in part or part[:1].isupper() or part in ("str", "int", "float", "bool", "dict", "list"):
            continue  # which member of a union pydantic tried: not a field
        else:
            path += f".{part}" if path else part
    if path.endswith("schema_"):
        path = path[:-1]
    message = err["msg"]
    if err["type"] == "extra_forbidden":
        message = "unknown field"
    return WireError(f"{path}: {message}" if path else message, path or None)
