"""Deterministic example values for a JSON Schema: what the simulated provider answers for structured output."""

from __future__ import annotations

import hashlib
from typing import Any

__all__ = ["fake_from_schema"]

_WORDS = ("alpha", "latency", "checkout", "anomaly", "gateway", "replica", "budget", "trace")


def fake_from_schema(schema: dict[str, Any], seed: str) -> Any:
    """A value valid against ``schema`` (the common subset: objects, arrays, scalars, enums, refs, unions)."""
    return _value(schema, schema.get("$defs", {}), seed, 0)


def _pick(seed: str, n: int) -> int:
    return hashlib.sha256(seed.encode()).digest()[0] % max(n, 1)


def _value(schema: dict[str, Any], defs: dict[str, Any], seed: str, depth: int) -> Any:
    if "$ref" in schema:
        name = str(schema["$ref"]).rsplit("/", 1)[-1]
        return _value(defs.get(name, {}), defs, seed, depth + 1)
    if "const" in schema:
        return schema["const"]
    if "enum" in schema:
        return schema["enum"][_pick(seed, len(schema["enum"]))]
    for key in ("anyOf", "oneOf", "allOf"):
        if key in schema:
            options = [s for s in schema[key] if s.get("type") != "null"] or schema[key]
            return _value(options[0], defs, seed, depth + 1)
    kind = schema.get("type", "object")
    if isinstance(kind, list):
        kind = next((k for k in kind if k != "null"), "null")
    if kind == "object":
        props: dict[str, Any] = schema.get("properties", {})
        if depth > 6:
            return {}
        return {name: _value(sub, defs, f"{seed}.{name}", depth + 1) for name, sub in props.items()}
    if kind == "array":
        count = max(int(schema.get("minItems", 0)), 1 + _pick(seed, 3))
        if "maxItems" in schema:
            count = min(count, int(schema["maxItems"]))
        return [_value(schema.get("items", {}), defs, f"{seed}[{i}]", depth + 1) for i in range(count)]
    return _scalar(kind, schema, seed)


def _scalar(kind: str, schema: dict[str, Any], seed: str) -> Any:
    if kind == "string":
        text = f"{_WORDS[_pick(seed, len(_WORDS))]}-{_pick(seed + 's', 100)}"
        if "minLength" in schema:
            text = text.ljust(int(schema["minLength"]), "x")
        return text[: int(schema["maxLength"])] if "maxLength" in schema else text
    if kind in ("integer", "number"):
        low = schema.get("minimum", schema.get("exclusiveMinimum", 0))
        high = schema.get("maximum", schema.get("exclusiveMaximum", low + 100))
        value = low + _pick(seed, max(int(high - low), 1))
        if "exclusiveMinimum" in schema and value <= schema["exclusiveMinimum"]:
            value = schema["exclusiveMinimum"] + 1
        return int(value) if kind == "integer" else float(value)
    if kind == "boolean":
        return _pick(seed, 2) == 1
    return None
