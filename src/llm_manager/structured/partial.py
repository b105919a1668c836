"""Best-effort values of JSON that is still streaming in, for yielding partially filled objects.

:class:`PartialJSON` takes text deltas and answers, after each, the value so far: prose before the first ``{`` /
``[`` (and so a leading fenced-block opener) is skipped, an unfinished string shows what has arrived, an unfinished
key or literal is left out until it completes. The final, validated result is not this class's job: the caller
runs :func:`~llm_manager.structured.extract.extract` over the whole reply once the stream ends.

Parsing. Well-formed JSON, the usual case, is re-parsed with pydantic-core's partial mode (``from_json(...,
allow_partial="trailing-strings")``, the maintained jiter parser that Pydantic itself ships, written in Rust). Once
the stream proves malformed (single quotes, trailing commas: the strict partial parser rejects the prefix, and a
prefix never heals), it switches to ``json_repair``, which is pure Python and so runs only on deltas that can end
a value (a bracket, comma, colon or quote outside a string).

Cost. The incremental scanner (string-aware bracket depth) sees each character once: O(n) in total for n
characters. A re-parse reads the whole buffer (O(b) for b buffered characters), at most once per delta, never for
a whitespace-only delta, and, once the buffer passes 4 KB, only after it grew by 1/256 since the last parse (past 1 KB
and 1/8 on the ``json_repair`` path). Growth-triggered re-parsing bounds the total to a constant number of whole-buffer reads
per doubling of the buffer, so O(n) overall rather than O(n * deltas); the price is that a partial value of a
20 KB buffer lags by at most ~80 characters. Measured: a 20 KB object fed as 5,000 deltas of 4 characters takes
about 0.06 s on the strict path and 0.3 s when malformed (single quotes, so ``json_repair``), against 0.26 s and
45 s when re-parsing on every delta.
"""

from __future__ import annotations

import json
import re
import types
import typing
from collections.abc import Mapping
from typing import Any, TypeVar, get_args, get_origin, overload

from pydantic import BaseModel, TypeAdapter
from pydantic_core import from_json

from llm_manager.codecs.json_schema import call_json_repair

__all__ = ["PartialJSON", "partial_model"]

M = TypeVar("M", bound=BaseModel)

_OPENER = re.compile(r"[{\[]")
_SCANNED = re.compile(r'[{}\[\]",:\\]')
_CLOSER = {"{": "}", "[": "]"}
_ALWAYS_PARSE_BELOW = 4096  # characters; re-parsing this much with jiter takes ~25 microseconds
_STRICT_STEP_DIVISOR = 256  # beyond that, re-parse after 1/256 growth (every 16+ characters)
_REPAIR_STEP_DIVISOR = 8  # json_repair is pure Python (~1 MB/s): re-parse after 1/8 growth
_REPAIR_ALWAYS_BELOW = 1024  # about a millisecond for json_repair


class PartialJSON:
    """Feed text deltas; get the best-effort partial value (dict or list) of the JSON in them so far.

    >>> p = PartialJSON()
    >>> p.feed('Sure: {"name": "Ad'), p.feed('a", "tags": ["x"'), p.feed("]}")
    ({'name': 'Ad'}, {'name': 'Ada', 'tags': ['x']}, {'name': 'Ada', 'tags': ['x']})
    >>> p.done
    True
    """

    def __init__(self) -> None:
        self._chunks: list[str] = []  # the JSON text so far, from its first bracket
        self._started = False
        self._stack: list[str] = []  # expected closers
        self._in_string = False
        self._escape = False  # a backslash ended the previous delta inside a string
        self._value: Any = None
        self._done = False
        self._repairing = False
        self._size = 0  # characters in the buffer
        self._parsed_size = 0  # ... when it was last parsed

    @property
    def value(self) -> Any:
        """The latest partial value, or ``None`` while no JSON has started."""
        return self._value

    @property
    def done(self) -> bool:
        """The top-level value has closed and parsed; later deltas are ignored."""
        return self._done

    @property
    def repairing(self) -> bool:
        """The stream proved not to be strict JSON, so partial values now come from ``json_repair``."""
        return self._repairing

    def feed(self, delta: str) -> Any | None:
        """Add ``delta``; return the partial value so far (``None`` until a ``{`` or ``[`` has arrived)."""
        while delta and not self._done:
            if not self._started:
                found = _OPENER.search(delta)
                if found is None:
                    break
                delta = delta[found.start() :]
                self._started = True
            consumed, closed, structural = self._scan(delta)
            piece, delta = delta[:consumed], delta[consumed:]
            self._chunks.append(piece)
            self._size += len(piece)
            if closed:
                self._close()
            elif piece.strip() and (structural or not self._repairing) and self._grown_enough():
                self._reparse()
        return self._value

    def _scan(self, delta: str) -> tuple[int, bool, bool]:
        """Advance the scanner over ``delta``: (characters consumed, top-level value closed, value may have ended)."""
        structural = False
        skip_to = 1 if self._escape else 0
        self._escape = False
        for match in _SCANNED.finditer(delta):
            i = match.start()
            if i < skip_to:
                continue
            ch = match.group()
            if self._in_string:
                if ch == "\\":
                    skip_to = i + 2
                    self._escape = skip_to > len(delta)
                elif ch == '"':
                    self._in_string = False
                    structural = True
                continue
            structural = True
            if ch == '"':
                self._in_string = True
            elif ch in _CLOSER:
                self._stack.append(_CLOSER[ch])
            elif ch in "}]" and ch in self._stack:
                # A mismatched closer closes the nearest matching opener, as extract's scanner does.
                del self._stack[len(self._stack) - 1 - self._stack[::-1].index(ch) :]
                if not self._stack:
                    return i + 1, True, True
        return len(delta), False, structural

    def _grown_enough(self) -> bool:
        # Re-parse only after the buffer grew by a fixed fraction since the last parse: each parse reads the
        # whole buffer, so this caps the total at a constant number of whole-buffer reads per doubling (O(n)
        # overall) however small the deltas. Small buffers are always re-parsed (microseconds with jiter).
        grown = self._size - self._parsed_size
        if self._repairing:
            return self._size <= _REPAIR_ALWAYS_BELOW or grown >= self._size // _REPAIR_STEP_DIVISOR
        return self._size <= _ALWAYS_PARSE_BELOW or grown >= self._size // _STRICT_STEP_DIVISOR

    def _text(self) -> str:
        text = "".join(self._chunks)
        self._chunks = [text]  # keeps the next join cheap
        return text

    def _reparse(self) -> None:
        text = self._text()
        self._parsed_size = self._size
        if not self._repairing:
            try:
                self._value = from_json(text, allow_partial="trailing-strings")
                return
            except ValueError:
                self._repairing = True
        repaired = call_json_repair(text)
        if isinstance(repaired, dict | list):
            self._value = repaired

    def _close(self) -> None:
        text = self._text()
        try:
            value: Any = json.loads(text)  # not orjson, which turns integers beyond 64 bits into floats
        except ValueError:
            value = call_json_repair(text)
        if isinstance(value, dict | list):
            self._value = value
        if _conclusive(self._value):
            self._done = True
            return
        # Probably a bracket in prose ("see [1]"): keep the value, but look for a real answer in what follows.
        self._chunks, self._stack, self._started, self._in_string, self._escape = [], [], False, False, False
        self._repairing = False
        self._size = self._parsed_size = 0


def _conclusive(value: Any) -> bool:
    """Whether a closed top-level value is the answer rather than a bracket in prose like "[1]" or "{}"."""
    if isinstance(value, dict):
        return bool(value)
    if isinstance(value, list):
        return len(value) > 1 or any(isinstance(v, dict | list) for v in value)
    return False


@overload
def partial_model(value: Any, target: type[M]) -> M | None: ...
@overload
def partial_model(value: Any, target: TypeAdapter[Any] | Mapping[str, Any]) -> Any: ...


def partial_model(value: Any, target: Any) -> Any:
    """A partially filled view of ``value`` for yielding while a stream is in progress.

    For a model target: an instance built with ``model_construct`` (no validation), recursively for nested models
    (also inside lists, dicts, optionals and unions); fields that have not arrived are absent (``model_fields_set``
    tells which arrived; unset fields with defaults read as their default). ``None`` when ``value`` is not an object
    yet. For a ``TypeAdapter`` or JSON-schema target, ``value`` itself.
    """
    if isinstance(target, type) and issubclass(target, BaseModel):
        return _construct(target, value) if isinstance(value, dict) else None
    return value


def _construct(model: type[M], data: dict[str, Any]) -> M:
    fields: dict[str, Any] = {}
    for name, info in model.model_fields.items():
        names = [name, info.alias, info.validation_alias]
        key = next((k for k in names if isinstance(k, str) and k in data), None)
        if key is not None:
            fields[name] = _shaped(data[key], info.annotation)
    return model.model_construct(**fields)


def _shaped(value: Any, annotation: Any) -> Any:
    """``value`` with nested objects built as the models ``annotation`` names, where it names one."""
    origin = get_origin(annotation)
    args = get_args(annotation)
    if origin is typing.Annotated:
        return _shaped(value, args[0])
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return _construct(annotation, value) if isinstance(value, dict) else value
    if origin in (typing.Union, types.UnionType):
        return _shaped(value, _best_arm(value, args))
    if isinstance(value, list) and args and origin in (list, set, frozenset, tuple):
        if origin is tuple and not (len(args) == 2 and args[1] is Ellipsis):
            return [_shaped(v, a) for v, a in zip(value, args, strict=False)] + value[len(args) :]
        return [_shaped(v, args[0]) for v in value]
    if isinstance(value, dict) and len(args) == 2 and origin is dict:
        return {k: _shaped(v, args[1]) for k, v in value.items()}
    return value


def _best_arm(value: Any, arms: tuple[Any, ...]) -> Any:
    """The union member to shape ``value`` by: for an object, the model sharing the most keys with it."""
    if not isinstance(value, dict):
        return next((a for a in arms if get_origin(a) in (list, set, frozenset, tuple)), Any)
    models = [a for a in arms if isinstance(a, type) and issubclass(a, BaseModel)]
    if not models:
        return Any
    return max(models, key=lambda m: sum(1 for f in m.model_fields if f in value))
