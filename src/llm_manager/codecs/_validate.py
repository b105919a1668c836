"""A client's body validated against a codec's wire model, with a :class:`WireError` naming the field.

Pydantic reports where a problem is as a ``loc`` that mixes the body's keys and indices with the names of union
members (``str``, ``list[...]``, a discriminator's value). The field a client wrote is recovered by walking ``loc``
through the body itself: a step that is a key or an index of what the client sent is part of the path, any other
step is a union member and is left out. Among several errors (one per union member tried) the deepest path wins:
the member whose shape the client used is the one whose error goes furthest in.
"""

from __future__ import annotations

import base64
import binascii
import re
from collections.abc import Callable
from typing import Any, Literal, TypeVar

from pydantic import BaseModel, ConfigDict, ValidationError

from llm_manager import _json
from llm_manager.codecs.base import WireError

__all__ = ["TOOL_NAME", "AnswerObject", "ClientObject", "base64_bytes", "canonical", "field_path", "validate"]

TOOL_NAME = r"^[A-Za-z0-9_-]{1,64}$"
"""A tool's name, as both OpenAI and Anthropic restrict it."""

M = TypeVar("M", bound=BaseModel)
T = TypeVar("T")


class ClientObject(BaseModel):
    """An object of a client's request: strict (nothing is coerced), other fields kept (``model_extra``: the client's
    provider-specific fields, passed through)."""

    model_config = ConfigDict(strict=True, extra="allow")


class AnswerObject(BaseModel):
    """An object the gateway answers with: the fields clients rely on; more may come."""

    model_config = ConfigDict(extra="allow")


Style = Literal["brackets", "dots"]
"""``messages[0].content[1]`` (OpenAI's way of naming a field) or ``messages.0.content.1`` (Anthropic's)."""


def validate(model: type[M], body: Any, *, style: Style, units: re.Pattern[str] | None = None) -> M:
    """``body`` as ``model`` (strict: nothing is coerced, ``"false"`` is not a boolean).

    Args:
        model: The wire model.
        body: The decoded JSON body.
        style: How a field's path is written.
        units: Paths matching this pattern (from the start) are named as a whole: a problem anywhere inside
            ``tools[0].function`` names ``tools[0].function``, as the protocol's own server does.

    Raises:
        WireError: Naming the field, its message starting with the field's path.
    """
    if not isinstance(body, dict):
        raise WireError("the request body must be a JSON object")
    try:
        return model.model_validate(body, strict=True)
    except ValidationError as exc:
        raise _error(exc, body, style, units) from None


def _error(exc: ValidationError, body: Any, style: Style, units: re.Pattern[str] | None) -> WireError:
    best: tuple[list[str | int], Any] | None = None
    for err in exc.errors(include_url=False):
        path = field_path(err, body)
        if best is None or len(path) > len(best[0]):
            best = (path, err)
    assert best is not None  # a ValidationError has at least one error
    path, err = best
    where = _format(path, style)
    if units is not None and (unit := units.match(where)):
        where = unit.group(0)
    message = err.get("msg", "invalid")
    if err.get("type") not in ("missing", "union_tag_invalid", "union_tag_not_found") and "input" in err:
        shown = _json.dumps(err["input"])[:60].decode(errors="replace") if _jsonable(err["input"]) else ""
        message = f"{message}, got {shown}" if shown else message
    return WireError(f"{where}: {message}" if where else message, where or None)


def field_path(err: Any, body: Any) -> list[str | int]:
    """The path, in the client's body, of one pydantic error."""
    loc = list(err.get("loc", ()))
    path: list[str | int] = []
    here = body
    for i, step in enumerate(loc):
        if isinstance(here, dict) and isinstance(step, str) and step in here:
            path.append(step)
            here = here[step]
        elif isinstance(here, list) and isinstance(step, int) and 0 <= step < len(here):
            path.append(step)
            here = here[step]
        elif isinstance(here, dict) and isinstance(step, str) and i == len(loc) - 1 and err.get("type") == "missing":
            path.append(step)  # a required field the client left out
    if err.get("type") in ("union_tag_invalid", "union_tag_not_found"):
        tag = str((err.get("ctx") or {}).get("discriminator", "")).strip("'")
        if tag:
            path.append(tag)  # the field that picks the shape (role, type) has a value no shape has
    return path


def _format(path: list[str | int], style: Style) -> str:
    out = ""
    for step in path:
        if isinstance(step, int):
            out += f"[{step}]" if style == "brackets" else f".{step}"
        else:
            out += f".{step}" if out else step
    return out


def _jsonable(value: Any) -> bool:
    try:
        _json.dumps(value)
    except (TypeError, ValueError):
        return False
    return True


def base64_bytes(text: str, where: str) -> bytes:
    """Inline data a client sent as base64. Raises :class:`WireError` naming ``where``."""
    try:
        return base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError):
        raise WireError(f"{where}: not valid base64", where) from None


def canonical(where: str, build: Callable[[], T]) -> T:
    """``build()``, whose canonical models check what the wire model cannot (a part with neither URL nor data, a
    tool message without its call): their ``ValueError`` becomes a :class:`WireError` naming ``where``."""
    try:
        return build()
    except WireError:
        raise
    except ValidationError as exc:
        first = exc.errors(include_url=False)[0]
        raise WireError(f"{where}: {first.get('msg', 'invalid')}", where) from None
    except ValueError as exc:
        raise WireError(f"{where}: {exc}", where) from None
