"""The ``x-llm-dropped-params`` header: the request fields the answer was made without (never dropped silently)."""

from __future__ import annotations

from collections.abc import Sequence
from urllib.parse import quote

__all__ = ["DROPPED_HEADER", "dropped_headers"]

DROPPED_HEADER = "x-llm-dropped-params"
_MAX_NAMES = 20


def dropped_headers(names: Sequence[str]) -> dict[str, str]:
    """``{"x-llm-dropped-params": "a,b"}`` for ``names``, or nothing when there are none. A client's field names may be
    any text: percent-encoded (a header is latin-1) and bounded in number (``+N more`` after the first 20)."""
    if not names:
        return {}
    shown = [quote(name, safe="") for name in names[:_MAX_NAMES]]
    more = len(names) - len(shown)
    return {DROPPED_HEADER: ",".join(shown) + (f",+{more} more" if more else "")}
