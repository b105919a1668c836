"""Every problem of a config file in one report: unset variables, schema errors, and the cross-field checks.

Pydantic reports every schema error of a document at once, but the cross-field checks (unknown model in a task
chain, a missing API key …) need a validated :class:`Settings`. So when the schema fails, the offending values are
taken out of a copy of the document (a wrong field goes back to its default; an entry missing a required field goes
as a whole) and the rest is validated and cross-checked too. What is said about an entry taken out as a whole is
left out: it would be noise about a problem already reported.
"""

from __future__ import annotations

import copy
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any

from pydantic import ValidationError

if TYPE_CHECKING:
    from llm_manager.config import Settings

__all__ = ["problems_after_schema_errors"]

_GONE = object()
_ROUNDS = 4  # each round takes out what the last one found; a document is rarely nested deeper than this


def problems_after_schema_errors(
    raw: dict[str, Any],
    exc: ValidationError,
    validate: Callable[[dict[str, Any]], Settings],
    cross_check: Callable[[Settings], list[str]],
) -> list[str]:
    """The cross-check problems of what remains of ``raw`` once the values ``exc`` names are taken out."""
    doc = copy.deepcopy(raw)
    dropped: set[str] = set()
    errors = exc.errors()
    for _ in range(_ROUNDS):
        for err in errors:
            _take_out(doc, [x for x in err["loc"] if not str(x).startswith("function-")], err["type"], dropped)
        doc = _sweep(doc)
        try:
            settings = validate(doc)
        except ValidationError as again:
            errors = again.errors()
            continue
        return [p for p in cross_check(settings) if not _about(p, dropped)]
    return []


def _take_out(doc: Any, loc: list[Any], kind: str, dropped: set[str]) -> None:
    # A missing required field: the entry that lacks it goes. Anything else: the value itself (its default applies).
    path = loc[:-1] if kind == "missing" else loc
    while path and path[-1] == "[key]":
        path = path[:-1]
    if not path:
        return
    parent = doc
    for part in path[:-1]:
        if isinstance(parent, Mapping) and part in parent:
            parent = parent[part]
        elif isinstance(parent, list) and isinstance(part, int) and part < len(parent):
            parent = parent[part]
        else:
            return
    last = path[-1]
    if isinstance(parent, dict) and last in parent:
        del parent[last]
    elif isinstance(parent, list) and isinstance(last, int) and last < len(parent):
        parent[last] = _GONE  # the other errors' indexes stay right; swept out at the end of the round
        return
    else:
        return
    if kind == "missing" and len(path) == 2 and path[0] == "models":
        dropped.add(str(last))


def _sweep(node: Any) -> Any:
    if isinstance(node, dict):
        return {k: _sweep(v) for k, v in node.items()}
    if isinstance(node, list):
        return [_sweep(v) for v in node if v is not _GONE]
    return node


def _about(problem: str, dropped: set[str]) -> bool:
    return any(problem.startswith(f"models.{name}") or f"{name!r}" in problem for name in dropped)
