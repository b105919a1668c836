"""Pull a validated value out of whatever a model really replied.

Models asked for JSON answer with a fenced block, with JSON wrapped in prose, with several objects of which only
one is the answer, or with JSON that is cut off or slightly malformed (trailing commas, single quotes, unquoted
keys, Python's ``True``/``None``). :func:`candidates` lists every JSON value the text could mean, best first, and
:func:`extract` returns the first one that validates against the target.

Candidate order (strict parsing (``json.loads``) always before repair; repair only of what strict parsing rejected):

1. bodies of fenced blocks tagged ``json*``, at any nesting depth;
2. bodies of every other fenced block;
3. the whole text, stripped;
4. each balanced top-level ``{...}`` / ``[...]`` span (a string-aware scanner; longest first);
5. repairs (truncation, the malformations above) of the fence bodies, the balanced spans, and the text from the
   first unclosed opener, the first ``{`` and the first ``[``: lossless fixes first (trailing commas dropped by a
   string-aware pass; pydantic-core's partial parser), then ``json_repair``; only a non-empty object or array
   counts (repaired prose is ``""`` or junk);
6. balanced spans *inside* a bracket that never closes: in a truncated answer they are fragments (nested values).

Libraries (docs/libraries.md): ``json_repair`` does the repairs (regexes cannot cover truncation inside nested
strings and arrays; imported lazily, ~40 ms). ``jsonschema``, the reference implementation, validates dict targets
(pydantic cannot validate an arbitrary JSON schema; imported lazily, ~110 ms; validators cached by the schema's
canonical JSON; ``format`` not enforced, matching what providers' native modes guarantee).

:class:`ExtractionFailed` is internal: the manager's re-ask loop catches it, sends :func:`reask_message` with its
``errors``, and raises the public :class:`~llm_manager.errors.ExtractionError` when re-asks run out.
"""

from __future__ import annotations

import copy
import importlib
import json
import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from functools import lru_cache
from typing import Any, Generic, TypeAlias, TypeVar, overload

from pydantic import BaseModel, TypeAdapter, ValidationError
from pydantic_core import from_json

from llm_manager import _json
from llm_manager.codecs.json_schema import call_json_repair, instruction, strict_schema
from llm_manager.errors import ConfigError

__all__ = [
    "ExtractionFailed",
    "Extracted",
    "Target",
    "candidates",
    "extract",
    "instruction",
    "reask_message",
    "schema_of",
    "strict_schema",
]

M = TypeVar("M", bound=BaseModel)
T = TypeVar("T")

Target: TypeAlias = type[BaseModel] | TypeAdapter[Any] | Mapping[str, Any]
"""What structured output validates against: a Pydantic model class, a ``TypeAdapter``, or a JSON schema."""

_MISSING: Any = object()
_MAX_SPANS = 64  # bounds the work on prose full of citation brackets like "[1]"
_MAX_ERRORS = 20  # enough for a re-ask prompt; more only costs tokens
_MAX_MESSAGE = 200


@dataclass(frozen=True, slots=True)
class Extracted(Generic[T]):
    """A value that validated, and the JSON it came from."""

    value: T
    """The validated instance (a model instance, a ``TypeAdapter``'s value, or the validated JSON for a schema)."""
    raw: Any
    """The JSON value (after any repair / unwrapping) that validated."""
    repaired: bool
    """True when the JSON had to be repaired, unwrapped or stripped of nulls before it validated."""


class ExtractionFailed(Exception):
    """No candidate validated. Internal: the re-ask loop turns it into a re-ask or a public ``ExtractionError``."""

    def __init__(self, errors: list[str], *, candidates_tried: int, best: Any) -> None:
        self.errors = errors
        """Validation errors of the best candidate, one ``"field.path: message"`` line each."""
        self.candidates_tried = candidates_tried
        """How many candidate values were validated (0: the reply held no JSON at all)."""
        self.best = best
        """The candidate with the fewest errors (``None`` when there was none)."""
        summary = "; ".join(errors[:3]) + (" ..." if len(errors) > 3 else "")
        super().__init__(f"no valid JSON among {candidates_tried} candidate(s): {summary}")

    def __reduce__(self) -> tuple[Any, ...]:
        # Keyword-only arguments do not survive Exception's default pickling (it replays ``args``).
        return (_rebuild_failed, (self.errors, self.candidates_tried, self.best))


def _rebuild_failed(errors: list[str], candidates_tried: int, best: Any) -> ExtractionFailed:
    return ExtractionFailed(errors, candidates_tried=candidates_tried, best=best)


# -- finding candidates ---------------------------------------------------------------------------------------------

_FENCE_OPEN = re.compile(r"(?P<fence>`{3,}|~{3,})[ \t]*(?P<info>[^\n`]*)\n")


@dataclass(frozen=True, slots=True)
class _Candidate:
    value: Any
    repaired: bool


def candidates(text: str) -> list[Any]:
    """Every JSON value ``text`` could mean, best first, without duplicates (see the module docstring)."""
    return [c.value for c in _iter_candidates(text)]


def _iter_candidates(text: str) -> Iterator[_Candidate]:
    # A generator, so extract() stops parsing (and never imports json_repair) once a candidate validates.
    parsed: set[str] = set()  # sources already parsed strictly (whether or not that worked)
    repaired: set[str] = set()
    strict_ok: set[str] = set()  # never repair what parsed: repair is only for what strict parsing rejected
    seen_values: set[str] = set()
    for source, repair in _sources(text):
        source = source.strip()
        done = repaired if repair else parsed
        if not source or source in done or (repair and source in strict_ok):
            continue
        done.add(source)
        value = _repair(source) if repair else _strict(source)
        if value is _MISSING:
            continue
        if not repair:
            strict_ok.add(source)
        canonical = _canonical(value)
        if canonical in seen_values:
            continue
        seen_values.add(canonical)
        yield _Candidate(value, repair)


def _sources(text: str) -> Iterator[tuple[str, bool]]:
    """(text to parse, repair?) in candidate order."""
    fences = _fences(text)
    bodies = [body for info, body in fences if _is_json_info(info)]
    bodies += [body for info, body in fences if not _is_json_info(info)]
    for body in bodies:
        yield body, False
    yield text, False
    top, enclosed, unclosed = _scan_spans(text)
    for start, end in top:
        yield text[start:end], False
    for body in bodies:
        yield body, True
    for start, end in top:
        yield text[start:end], True
    starts = [unclosed[0]] if unclosed else []
    starts += sorted(i for i in (text.find("{"), text.find("[")) if i >= 0)
    for start in dict.fromkeys(starts):
        yield text[start:], True
    for start, end in enclosed:
        yield text[start:end], False


def _is_json_info(info: str) -> bool:
    return info.strip().lower().startswith("json")


def _fences(text: str, depth: int = 0) -> list[tuple[str, str]]:
    """(info string, body) of fenced blocks in document order, nested ones after their parent.

    An opener may start mid-line ("Sure! ```json"), since models write that. A closer is a run of the same
    character at least as long as the opener, followed by the end of its line; JSON strings cannot hold a raw
    newline, so a closer cannot hide inside valid JSON. An unclosed fence (a truncated reply) runs to the end.
    """
    out: list[tuple[str, str]] = []
    pos = 0
    while (opened := _FENCE_OPEN.search(text, pos)) is not None:
        fence = opened.group("fence")
        closer = re.compile(re.escape(fence[0]) + "{" + str(len(fence)) + r",}[ \t]*(?:\n|\Z)")
        closed = closer.search(text, opened.end())
        body = text[opened.end() : closed.start() if closed else len(text)]
        out.append((opened.group("info"), body))
        if depth < 3:
            out.extend(_fences(body, depth + 1))
        if closed is None:
            break
        pos = closed.end()
    return out


_SPECIAL = re.compile(r'[{}\[\]"\\]')
_CLOSER = {"{": "}", "[": "]"}


def _scan_spans(text: str) -> tuple[list[tuple[int, int]], list[tuple[int, int]], list[int]]:
    """Balanced bracket spans: (top-level, inside-an-unclosed-bracket, positions of unclosed openers).

    Quotes count only inside brackets (prose apostrophes and stray quotes are common), and backslash escapes are
    honoured there, so ``"a } b"`` or ``"say \\"}\\""`` inside a string never closes anything. A closer that
    does not match the innermost opener closes the nearest matching one (the brackets in between were left
    open by the model); a closer matching nothing is ignored.
    """
    stack: list[tuple[str, int]] = []
    spans: list[tuple[int, int]] = []
    in_string = False
    skip_to = -1
    for match in _SPECIAL.finditer(text):
        i = match.start()
        if i < skip_to:
            continue
        ch = match.group()
        if in_string:
            if ch == "\\":
                skip_to = i + 2
            elif ch == '"':
                in_string = False
        elif ch == '"':
            in_string = bool(stack)
        elif ch in _CLOSER:
            stack.append((_CLOSER[ch], i))
        elif ch in "}]":
            for depth in range(len(stack) - 1, -1, -1):
                if stack[depth][0] == ch:
                    spans.append((stack[depth][1], i + 1))
                    del stack[depth:]
                    break
    first_unclosed = stack[0][1] if stack else len(text)
    maximal = _maximal(spans)
    top = [s for s in maximal if s[0] < first_unclosed]
    enclosed = [s for s in maximal if s[0] > first_unclosed]
    by_length = sorted(top, key=lambda s: (s[0] - s[1], s[0]))[:_MAX_SPANS]
    enclosed_by_length = sorted(enclosed, key=lambda s: (s[0] - s[1], s[0]))[:_MAX_SPANS]
    return by_length, enclosed_by_length, [pos for _, pos in stack]


def _maximal(spans: list[tuple[int, int]]) -> list[tuple[int, int]]:
    """Spans not contained in another span."""
    out: list[tuple[int, int]] = []
    reach = -1
    for start, end in sorted(spans, key=lambda s: (s[0], -s[1])):
        if end > reach:
            out.append((start, end))
            reach = end
    return out


def _strict(source: str) -> Any:
    # The standard library, not orjson: orjson turns integers beyond 64 bits into floats (silently losing digits)
    # and rejects lone surrogates. Replies are small, so its speed does not matter here.
    try:
        return json.loads(source)
    except ValueError:
        return _MISSING


def _repair(source: str) -> Any:
    """The best reading of malformed ``source``: a non-empty object or array, or ``_MISSING``.

    Lossless fixes come first, because ``json_repair``'s string heuristics can alter unusual string content
    (control-character escapes, quotes): trailing commas are dropped by a string-aware pass, and a document that
    is merely cut off is read by pydantic-core's partial parser, which keeps every complete value exactly.
    ``json_repair`` handles the rest (quotes, unquoted keys, Python literals, missing commas).
    """
    source = _first_value(source)
    cleaned = _drop_trailing_commas(source)
    value = _strict(cleaned) if cleaned is not source else _MISSING
    if value is _MISSING:
        try:
            value = from_json(cleaned, allow_partial="trailing-strings")
        except ValueError:
            value = call_json_repair(source)
    if isinstance(value, dict | list) and value:
        return value
    return _MISSING


def _first_value(source: str) -> str:
    """``source`` cut after its first balanced value when it starts with one (so trailing prose goes)."""
    if source[:1] not in _CLOSER:
        return source
    stack: list[str] = []
    for i, ch, in_string in _structure(source):
        if in_string:
            continue
        if ch in _CLOSER:
            stack.append(_CLOSER[ch])
        elif ch in "}]" and ch in stack:
            del stack[len(stack) - 1 - stack[::-1].index(ch) :]
            if not stack:
                return source[: i + 1]
    return source


_TRAILING_COMMA = re.compile(r",(?=\s*[}\]])")


def _drop_trailing_commas(source: str) -> str:
    """``source`` without commas (outside strings) that directly precede a closing bracket."""
    if not _TRAILING_COMMA.search(source):
        return source
    drop = [
        i for i, ch, in_string in _structure(source) if ch == "," and not in_string and _TRAILING_COMMA.match(source, i)
    ]
    if not drop:
        return source
    bounds = zip([-1, *drop], [*drop, len(source)], strict=True)
    return "".join(source[start + 1 : end] for start, end in bounds)


_STRUCTURE = re.compile(r'[{}\[\]",\\]')


def _structure(source: str) -> Iterator[tuple[int, str, bool]]:
    """(position, character, inside a string?) for each bracket, comma and quote of JSON-like ``source``."""
    in_string = False
    skip_to = -1
    for match in _STRUCTURE.finditer(source):
        i = match.start()
        if i < skip_to:
            continue
        ch = match.group()
        if ch == "\\":
            skip_to = i + 2 if in_string else skip_to
            continue
        if ch == '"':
            in_string = not in_string
            continue
        yield i, ch, in_string


def _canonical(value: Any) -> str:
    try:
        return _json.dumps(value).decode()
    except TypeError:  # an integer beyond 64 bits
        return repr(value)


# -- validating -----------------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class _Outcome:
    ok: bool
    value: Any
    errors: list[str]


class _Validator:
    """One validation strategy per kind of target.

    ``shape`` is the JSON type the target wants at its root; ``fields`` (for object targets) are its top-level
    keys, which the unwrap rule needs: ``{"x": {...}}`` is a wrapper only when ``x`` is not itself a field.
    """

    shape: type | None = None
    fields: frozenset[str] | None = None

    def __call__(self, value: Any) -> _Outcome:
        raise NotImplementedError


class _PydanticValidator(_Validator):
    def __init__(self, target: type[BaseModel] | TypeAdapter[Any]) -> None:
        self.target = target
        if isinstance(target, type):
            # Models get the unwrap rule (a TypeAdapter may want a list or a mapping, where unwrapping is wrong).
            self.shape = dict
            self.fields = frozenset(
                n
                for name, f in target.model_fields.items()
                for n in (name, f.alias, f.validation_alias)
                if isinstance(n, str)
            )

    def __call__(self, value: Any) -> _Outcome:
        try:
            if isinstance(self.target, type):
                result: Any = self.target.model_validate(value)
            else:
                result = self.target.validate_python(value)
        except ValidationError as exc:
            return _Outcome(False, None, _pydantic_errors(exc))
        return _Outcome(True, result, [])


class _SchemaValidator(_Validator):
    def __init__(self, schema: Mapping[str, Any]) -> None:
        self.validator = _compiled_schema(json.dumps(schema, sort_keys=True, default=str))
        kind = schema.get("type")
        self.shape = {"object": dict, "array": list}.get(kind) if isinstance(kind, str) else None
        properties = schema.get("properties")
        if self.shape is dict:
            self.fields = frozenset(properties) if isinstance(properties, Mapping) else frozenset()

    def __call__(self, value: Any) -> _Outcome:
        errors = _schema_errors(self.validator, value)
        return _Outcome(not errors, value if not errors else None, errors)


@lru_cache(maxsize=64)
def _compiled_schema(canonical: str) -> Any:
    # Keyed by canonical JSON: dict schemas are unhashable, and a re-ask loop validates against one schema often.
    try:
        validators: Any = importlib.import_module("jsonschema.validators")
        exceptions: Any = importlib.import_module("jsonschema.exceptions")
    except ImportError as exc:  # pragma: no cover - only when installed without its dependencies
        raise ConfigError(
            "validating against a JSON schema needs the 'jsonschema' package: pip install jsonschema"
        ) from exc
    schema = json.loads(canonical)
    cls = validators.validator_for(schema)
    try:
        cls.check_schema(schema)
    except exceptions.SchemaError as exc:
        raise ConfigError(f"invalid JSON schema: {exc.message}") from exc
    return cls(schema)


def _validator_for(target: Any) -> _Validator:
    if isinstance(target, type) and issubclass(target, BaseModel):
        return _PydanticValidator(target)
    if isinstance(target, TypeAdapter):
        return _PydanticValidator(target)
    if isinstance(target, Mapping):
        return _SchemaValidator(target)
    raise ConfigError(
        f"a structured-output target must be a Pydantic model, a TypeAdapter or a JSON schema, not {target!r}"
    )


def _path(loc: tuple[int | str, ...] | list[Any]) -> str:
    out = ""
    for part in loc:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out or "(root)"


def _short(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def _pydantic_errors(exc: ValidationError) -> list[str]:
    out = []
    for err in exc.errors(include_url=False):
        line = f"{_path(err['loc'])}: {err['msg']}"
        given = err.get("input", _MISSING)
        # The offending value helps the model fix it; containers and "missing" inputs (the parent) only add noise.
        if err["type"] != "missing" and given is not _MISSING and not isinstance(given, dict | list):
            line += f" (got {_short(given)})"
        out.append(line)
    return out


def _schema_errors(validator: Any, value: Any) -> list[str]:
    lines: list[str] = []
    try:
        found = sorted(validator.iter_errors(value), key=lambda e: [str(p) for p in e.absolute_path])
    except RecursionError:  # a $ref / anyOf cycle that never reaches into the value: no validator can evaluate it
        raise ConfigError("invalid JSON schema: a $ref cycle that refers to itself without end") from None
    for err in found:
        path = list(err.absolute_path)
        if err.validator == "required" and isinstance(err.instance, dict):
            # Name the missing field in the path, as Pydantic does, instead of in a repr inside the message.
            lines += [
                f"{_path([*path, name])}: Field required" for name in err.validator_value if name not in err.instance
            ]
            continue
        message = err.message if len(err.message) <= _MAX_MESSAGE else err.message[: _MAX_MESSAGE - 3] + "..."
        lines.append(f"{_path(path)}: {message}")
    return list(dict.fromkeys(lines))


# -- extracting -----------------------------------------------------------------------------------------------------


@overload
def extract(text: str, target: type[M]) -> Extracted[M]: ...
@overload
def extract(text: str, target: TypeAdapter[T]) -> Extracted[T]: ...
@overload
def extract(text: str, target: Mapping[str, Any]) -> Extracted[Any]: ...


def extract(text: str, target: Any) -> Extracted[Any]:
    """The first candidate in ``text`` that validates against ``target``.

    After every direct candidate fails, two rescues are tried on each of them: unwrapping (model / object-schema
    targets only: a one-element list holding an object, or an object wrapping the answer under a single key such
    as ``{"result": {...}}``), and dropping ``null`` members (what OpenAI's strict mode sends for an optional
    field, see :func:`strict_schema`, and a model field with a non-null default rejects).

    Raises:
        ExtractionFailed: nothing validated; ``errors`` are those of the candidate with the fewest errors.
        ConfigError: ``target`` is not a model, a ``TypeAdapter`` or a valid JSON schema.
    """
    validator = _validator_for(target)
    tried: list[tuple[Any, _Outcome]] = []
    direct: list[_Candidate] = []
    for candidate in _iter_candidates(text):
        outcome = validator(candidate.value)
        if outcome.ok:
            return Extracted(outcome.value, candidate.value, candidate.repaired)
        tried.append((candidate.value, outcome))
        direct.append(candidate)
    for variant in _rescues(direct, validator.fields):
        outcome = validator(variant)
        if outcome.ok:
            return Extracted(outcome.value, variant, True)
        tried.append((variant, outcome))
    raise _failure(tried, validator.shape)


def _rescues(direct: list[_Candidate], fields: frozenset[str] | None) -> Iterator[Any]:
    seen: set[str] = {_canonical(c.value) for c in direct}
    unwrapped = [u for c in direct if (u := _unwrap(c.value, fields)) is not _MISSING] if fields is not None else []
    for variant in [*unwrapped, *(_drop_nulls(v) for v in [*(c.value for c in direct), *unwrapped])]:
        if variant is _MISSING or (key := _canonical(variant)) in seen:
            continue
        seen.add(key)
        yield variant


def _unwrap(value: Any, fields: frozenset[str]) -> Any:
    if isinstance(value, list) and len(value) == 1 and isinstance(value[0], dict):
        return value[0]
    if isinstance(value, dict) and len(value) == 1:
        key, inner = next(iter(value.items()))
        if isinstance(inner, dict) and key not in fields:
            return inner
    return _MISSING


def _drop_nulls(value: Any) -> Any:
    """``value`` with every ``null`` object member removed (recursively), or ``_MISSING`` if it had none."""

    def strip(node: Any) -> Any:
        if isinstance(node, dict):
            return {k: strip(v) for k, v in node.items() if v is not None}
        if isinstance(node, list):
            return [strip(v) for v in node]
        return node

    stripped = strip(value)
    return stripped if stripped != value else _MISSING


def _failure(tried: list[tuple[Any, _Outcome]], shape: type | None) -> ExtractionFailed:
    if not tried:
        return ExtractionFailed(["(root): the reply contains no JSON value"], candidates_tried=0, best=None)

    def rank(item: tuple[int, tuple[Any, _Outcome]]) -> tuple[bool, int, int]:
        # A candidate of the wrong JSON type (say a citation "[1]" for an object) has one error but is useless
        # feedback; prefer candidates of the right shape, then the fewest errors, then the earliest.
        index, (value, outcome) = item
        return (shape is not None and not isinstance(value, shape), len(outcome.errors), index)

    _, (best, outcome) = min(enumerate(tried), key=rank)
    errors = outcome.errors[:_MAX_ERRORS]
    if len(outcome.errors) > _MAX_ERRORS:
        errors.append(f"... and {len(outcome.errors) - _MAX_ERRORS} more")
    return ExtractionFailed(errors, candidates_tried=len(tried), best=best)


# -- schemas and prompts --------------------------------------------------------------------------------------------


def schema_of(target: Any) -> dict[str, Any]:
    """The JSON schema of ``target``, for prompts and native modes (a fresh copy: callers may mutate it)."""
    if isinstance(target, type) and issubclass(target, BaseModel):
        return target.model_json_schema()
    if isinstance(target, TypeAdapter):
        schema: dict[str, Any] = target.json_schema()
        return schema
    if isinstance(target, Mapping):
        return copy.deepcopy(dict(target))
    raise ConfigError(
        f"a structured-output target must be a Pydantic model, a TypeAdapter or a JSON schema, not {target!r}"
    )


def reask_message(raw_reply: str, errors: list[str]) -> str:
    """The follow-up user message after an invalid reply (send ``raw_reply`` as the assistant turn before it)."""
    unclosed = _scan_spans(raw_reply)[2]
    if not any(ch in raw_reply for ch in "{["):
        reason = "it contained no JSON."
    elif unclosed:
        reason = "its JSON was cut off before the end. Keep the values shorter so the whole object fits."
    else:
        reason = "its JSON does not match the schema."
    problems = "\n".join(f"- {line}" for line in errors) or "- (no details)"
    return (
        f"Your previous reply could not be used: {reason}\n"
        f"Problems:\n{problems}\n"
        "Reply again with only the corrected JSON value: no explanations and no Markdown code fences."
    )
