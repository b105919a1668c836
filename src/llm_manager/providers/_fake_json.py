"""Deterministic example values for a JSON Schema: what the simulated provider answers for structured output.

Schemas may be recursive (``$ref`` to an enclosing definition, or to ``#``) and unions may list themselves first,
so generation is bounded: past :data:`SHALLOW_DEPTH` levels only what the schema requires is built (optional
properties are left out, arrays get their ``minItems``, a union takes the first option that terminates), and a value
that would need more than :data:`MAX_DEPTH` levels — a required property that always contains itself — cannot be
built at all: :class:`UnsatisfiableSchemaError`, which the simulated provider answers as a 400.
"""

from __future__ import annotations

import hashlib
from typing import Any

__all__ = ["MAX_DEPTH", "SHALLOW_DEPTH", "UnsatisfiableSchemaError", "fake_from_schema"]

_WORDS = ("alpha", "latency", "checkout", "anomaly", "gateway", "replica", "budget", "trace")
SHALLOW_DEPTH = 6
"""Deeper than this, optional properties and array items beyond ``minItems`` are left out."""
MAX_DEPTH = 48
"""A value nested deeper than this is not built (each ``$ref`` and union counts as a level)."""
MAX_STEPS = 5_000
"""Schemas visited per value at most: unions of unsatisfiable branches would otherwise be explored exponentially."""


class UnsatisfiableSchemaError(ValueError):
    """No finite value is valid against the schema (or none this generator can find); ``path`` is where."""

    def __init__(self, path: str, why: str) -> None:
        where = path if len(path) <= 60 else path[:60] + "…"
        super().__init__(f"{where or '(root)'}: {why}")
        self.path = path


class _TooComplexError(UnsatisfiableSchemaError):
    """The step budget is spent: give up on the whole value, not only on the branch being tried."""


def fake_from_schema(schema: dict[str, Any], seed: str) -> Any:
    """A value valid against ``schema`` (the common subset: objects, arrays, scalars, enums, refs, unions).

    Raises:
        UnsatisfiableSchemaError: the schema admits no finite value (e.g. a required property that refers back to
            its own object with no way out).
    """
    return _Generator(schema).value(schema, seed, 0, "")


def _pick(seed: str, n: int) -> int:
    return hashlib.sha256(seed.encode()).digest()[0] % max(n, 1)


class _Generator:
    __slots__ = ("root", "steps")

    def __init__(self, root: dict[str, Any]) -> None:
        self.root = root
        self.steps = 0

    def value(self, schema: Any, seed: str, depth: int, path: str) -> Any:
        self.steps += 1
        if self.steps > MAX_STEPS:
            raise _TooComplexError(path, f"too complex to fill in (more than {MAX_STEPS} subschemas visited)")
        if depth > MAX_DEPTH:
            raise UnsatisfiableSchemaError(path, f"a required value contains itself without end ({MAX_DEPTH} levels)")
        if schema is True or not isinstance(schema, dict):
            return {}  # `true` (or junk) accepts anything
        if "$ref" in schema:
            return self.value(self._resolve(schema["$ref"], path), seed, depth + 1, path)
        if "const" in schema:
            return schema["const"]
        if "enum" in schema:
            return schema["enum"][_pick(seed, len(schema["enum"]))]
        if isinstance(schema.get("allOf"), list):
            return self.value(self._merge(schema), seed, depth + 1, path)
        for key in ("anyOf", "oneOf"):
            if isinstance(schema.get(key), list):
                return self._first(schema[key], seed, depth + 1, path)
        kind = schema.get("type", "object")
        if isinstance(kind, list):
            kinds = [k for k in kind if k != "null"] + [k for k in kind if k == "null"]
            return self._first([{**schema, "type": k} for k in kinds], seed, depth, path)
        if kind == "object":
            return self._object(schema, seed, depth, path)
        if kind == "array":
            return self._array(schema, seed, depth, path)
        return _scalar(kind, schema, seed)

    def _resolve(self, ref: Any, path: str) -> Any:
        if ref == "#":
            return self.root
        if not isinstance(ref, str) or not ref.startswith("#/"):
            return {}  # an external reference: nothing to resolve it against, so anything goes
        node: Any = self.root
        for part in ref[2:].split("/"):
            part = part.replace("~1", "/").replace("~0", "~")
            if not isinstance(node, dict) or part not in node:
                raise UnsatisfiableSchemaError(path, f"$ref {ref!r} points at nothing")
            node = node[part]
        return node

    def _first(self, options: list[Any], seed: str, depth: int, path: str) -> Any:
        """The first option that yields a finite value: non-null ones before null, and once deep, options that
        end at once (scalars, enums) before those that may nest further."""
        ordered = [o for o in options if not _is_null(o)] + [o for o in options if _is_null(o)]
        if depth > SHALLOW_DEPTH:
            ordered.sort(key=lambda o: not _is_leaf(o))  # stable: the schema's order among equals
        problem: UnsatisfiableSchemaError | None = None
        for option in ordered:
            try:
                return self.value(option, seed, depth, path)
            except _TooComplexError:
                raise
            except UnsatisfiableSchemaError as exc:
                problem = problem or exc
        raise problem or UnsatisfiableSchemaError(path, "a union with no options")

    def _merge(self, schema: dict[str, Any]) -> dict[str, Any]:
        """``allOf`` as one schema: the parts' keywords, their properties and required lists united."""
        merged: dict[str, Any] = {k: v for k, v in schema.items() if k != "allOf"}
        for part in schema["allOf"]:
            part = self._resolve(part["$ref"], "") if isinstance(part, dict) and "$ref" in part else part
            if not isinstance(part, dict):
                continue
            props = {**merged.get("properties", {}), **part.get("properties", {})}
            required = list(dict.fromkeys([*merged.get("required", []), *part.get("required", [])]))
            merged.update({k: v for k, v in part.items() if k not in ("properties", "required")})
            merged.update({"properties": props, "required": required} if props or required else {})
        return merged

    def _object(self, schema: dict[str, Any], seed: str, depth: int, path: str) -> dict[str, Any]:
        props: dict[str, Any] = schema.get("properties", {}) if isinstance(schema.get("properties"), dict) else {}
        required = set(schema.get("required", [])) if isinstance(schema.get("required"), list) else set()
        out: dict[str, Any] = {}
        for name, sub in props.items():
            where = f"{path}.{name}" if path else name
            if name in required:
                out[name] = self.value(sub, f"{seed}.{name}", depth + 1, where)
            elif depth < SHALLOW_DEPTH:
                try:
                    out[name] = self.value(sub, f"{seed}.{name}", depth + 1, where)
                except _TooComplexError:
                    raise
                except UnsatisfiableSchemaError:
                    continue  # optional: leaving it out is valid
        for name in sorted(required - out.keys()):  # required but not described: any value will do
            out[name] = f"{_WORDS[_pick(seed + name, len(_WORDS))]}"
        return out

    def _array(self, schema: dict[str, Any], seed: str, depth: int, path: str) -> list[Any]:
        least = int(schema.get("minItems", 0))
        count = max(least, 1 + _pick(seed, 3)) if depth < SHALLOW_DEPTH else least
        if "maxItems" in schema:
            count = min(count, int(schema["maxItems"]))
        items = schema.get("items", {})
        out: list[Any] = []
        for i in range(count):
            try:
                out.append(self.value(items, f"{seed}[{i}]", depth + 1, f"{path}[{i}]"))
            except _TooComplexError:
                raise
            except UnsatisfiableSchemaError:
                if len(out) >= least:
                    break  # the extra items were optional
                raise
        return out


def _is_null(schema: Any) -> bool:
    return isinstance(schema, dict) and schema.get("type") == "null"


_SCALARS = ("string", "integer", "number", "boolean", "null")


def _is_leaf(schema: Any) -> bool:
    """A schema whose value is built without descending further."""
    if not isinstance(schema, dict):
        return False
    return "const" in schema or "enum" in schema or ("$ref" not in schema and schema.get("type") in _SCALARS)


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
