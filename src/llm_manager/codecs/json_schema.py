"""JSON Schema as the providers' wire formats take it: OpenAI's strict ``json_schema`` form, the prompt text for a
provider without a structured-output mode, and the lenient JSON reading of a tool call's arguments.

A leaf (no imports from the package but its JSON helper; ``json_repair`` is imported lazily), so that the codecs and adapters can use it without
importing the structured-output layer above them; :mod:`llm_manager.structured.extract` uses it too.
"""

from __future__ import annotations

import copy
import json
from collections.abc import Mapping
from typing import Any

from llm_manager import _json

__all__ = ["call_json_repair", "instruction", "strict_schema"]

_MISSING: Any = object()


def call_json_repair(source: str) -> Any:
    """The one call into ``json_repair`` (``Any`` at this boundary): its reading of ``source``, ``None`` if none."""
    import json_repair

    try:
        result: Any = json_repair.repair_json(source, return_objects=True, skip_json_loads=True)
    except (ValueError, RecursionError):
        return None
    return result


# Keywords OpenAI's strict mode rejects (checked against its structured-outputs "supported schemas" list and the
# transformers pydantic-ai / the openai SDK apply). They are removed, and the constraint is restated in the
# description so the model still sees it; extract() validates the full original schema afterwards anyway.
_STRICT_UNSUPPORTED = (
    "default",
    "minLength",
    "maxLength",
    "patternProperties",
    "unevaluatedProperties",
    "unevaluatedItems",
    "propertyNames",
    "minProperties",
    "maxProperties",
    "contains",
    "minContains",
    "maxContains",
    "uniqueItems",
)
_STRICT_FORMATS = frozenset({"date-time", "time", "date", "duration", "email", "hostname", "ipv4", "ipv6", "uuid"})
_STRICT_METADATA = ("$schema", "discriminator")  # meaningless to the model and not accepted by the API


def strict_schema(schema: Mapping[str, Any]) -> dict[str, Any]:
    """A copy of ``schema`` that OpenAI's strict ``json_schema`` response format accepts.

    Every object (``$defs`` / ``definitions`` included, recursively) gets ``additionalProperties: false`` and all
    its properties listed in ``required``; a property that was optional and does not already accept ``null``
    becomes ``anyOf: [<schema>, {"type": "null"}]``, so the model sends ``null`` for "not given" (and
    :func:`extract` drops those nulls when the target rejects them). ``oneOf`` becomes ``anyOf``, a one-item
    ``allOf`` is merged, and a ``$ref`` with sibling keywords moves into an ``anyOf`` (strict mode forbids
    ``$ref`` siblings). Dropped: ``$schema``, ``discriminator``, ``default``, the length / count / uniqueness
    keywords listed in ``_STRICT_UNSUPPORTED``, and a ``format`` outside date-time, time, date, duration, email,
    hostname, ipv4, ipv6, uuid; all but the first two are restated in the description. Map-like objects
    (``additionalProperties`` holding a schema) cannot be expressed in strict mode and become closed objects.
    The root must be an object for OpenAI to accept it; that is the caller's choice of target.
    """
    out = copy.deepcopy(dict(schema))
    _make_strict(out)
    return out


def _make_strict(node: Any) -> None:
    if not isinstance(node, dict):
        return
    for defs_key in ("$defs", "definitions"):
        defs = node.get(defs_key)
        if isinstance(defs, dict):
            for sub in defs.values():
                _make_strict(sub)
    _drop_unsupported(node)
    if "oneOf" in node and "anyOf" not in node:
        node["anyOf"] = node.pop("oneOf")
    all_of = node.get("allOf")
    if isinstance(all_of, list) and len(all_of) == 1 and isinstance(all_of[0], dict):
        del node["allOf"]
        node.update({k: v for k, v in all_of[0].items() if k not in node})
    if "$ref" in node and len(node) > 1 and "anyOf" not in node:
        node["anyOf"] = [{"$ref": node.pop("$ref")}]
    if "object" in _types(node) or ("properties" in node and "type" not in node):
        _make_object_strict(node)
    for key in ("items", "additionalItems", "not"):
        _make_strict(node.get(key))
    for key in ("anyOf", "allOf", "prefixItems"):
        subs = node.get(key)
        if isinstance(subs, list):
            for sub in subs:
                _make_strict(sub)


def _make_object_strict(node: dict[str, Any]) -> None:
    properties = node.setdefault("properties", {})
    required = set(node.get("required", []))
    for name in list(properties):
        _make_strict(properties[name])
        if name not in required and not _accepts_null(properties[name]):
            properties[name] = {"anyOf": [properties[name], {"type": "null"}]}
    node["required"] = list(properties)
    node["additionalProperties"] = False


def _drop_unsupported(node: dict[str, Any]) -> None:
    notes = []
    for key in _STRICT_UNSUPPORTED:
        if key in node:
            value = node.pop(key)
            if not (key == "default" and value is None):  # a null default says nothing the anyOf doesn't
                notes.append(f"{key}: {_canonical(value)}")
    fmt = node.get("format")
    if isinstance(fmt, str) and fmt not in _STRICT_FORMATS:
        notes.append(f"format: {node.pop('format')}")
    for key in _STRICT_METADATA:
        node.pop(key, None)
    if notes:
        described = node.get("description")
        note = "; ".join(notes)
        node["description"] = f"{described} ({note})" if isinstance(described, str) and described else note


def _types(node: dict[str, Any]) -> set[str]:
    kind = node.get("type")
    if isinstance(kind, str):
        return {kind}
    return {k for k in kind if isinstance(k, str)} if isinstance(kind, list) else set()


def _accepts_null(node: Any) -> bool:
    if not isinstance(node, dict):
        return node is True
    if "null" in _types(node) or node.get("const", _MISSING) is None:
        return True
    if isinstance(node.get("enum"), list) and None in node["enum"]:
        return True
    return any(_accepts_null(sub) for key in ("anyOf", "oneOf") for sub in node.get(key) or [])


def instruction(schema: Mapping[str, Any]) -> str:
    """Text appended to the prompt when a provider has no native structured-output mode."""
    return (
        "Reply with only a JSON value that matches this JSON schema:\n"
        f"{json.dumps(schema, ensure_ascii=False, separators=(',', ':'))}\n"
        "Fill it with real values; do not repeat the schema. "
        "Write nothing before or after the JSON: no explanations and no Markdown code fences."
    )


def _canonical(value: Any) -> str:
    try:
        return _json.dumps(value).decode()
    except TypeError:  # an integer beyond 64 bits
        return repr(value)
