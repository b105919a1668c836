"""Masking secrets in any text: by shape (vendor key formats, bearer tokens) and by value (every secret a live
configuration holds, whatever its format).

A key without a vendor prefix (a self-hosted server's token, a Portkey virtual key, a password inside a database
URL) has no shape to recognise: only its value identifies it. So every :class:`~llm_manager.manager.LLMManager`
registers its configuration's secrets here (:class:`SecretSet`), and :func:`redact` replaces each of them — and
its JSON-escaped and URL-encoded forms — wherever it appears.

The registry is process-wide on purpose: log records are formatted by handlers that belong to the application, not
to a manager, and an exception can outlive the call that raised it. A secret known to any live manager is masked
in every line, whichever manager (or library) wrote it. Sets are held weakly, so a manager that is gone stops
contributing its secrets; masking another manager's secret too is harmless.

This module is a leaf (standard library only): :mod:`llm_manager.errors` masks every exception message with it.
"""

from __future__ import annotations

import itertools
import json
import re
import weakref
from collections.abc import Iterable
from urllib.parse import quote, unquote, urlsplit, urlunsplit

__all__ = ["MASK", "MIN_SECRET_LENGTH", "SecretSet", "redact", "url_password", "url_with_password_masked"]

MASK = "***"
MIN_SECRET_LENGTH = 6
"""Shorter values are not masked by value: replacing a 3-letter word everywhere would garble every message, and a
secret that short is guessable anyway."""

_SHAPES = re.compile(
    r"""
      (?P<bearer>\bBearer\s+)[A-Za-z0-9._~+/\-]{8,}=*                          # Authorization: Bearer <token>
    | (?P<vendor>\b(?:sk-ant-|sk-proj-|sk-or-v1-|sk-|AIza|gsk_|xai-|llmm-))[A-Za-z0-9_\-]{16,}  # known key formats
    | (?P<header>\b(?:x-api-key|api-key|x-goog-api-key|x-portkey-api-key|x-portkey-virtual-key)["']?\s*[:=]\s*["']?)
      [^\s"',;&\\]{8,}                                                          # key headers
    | (?P<query>[?&](?:key|api_key|apikey)=)[^&\s"'\\]{8,}                    # keys in URLs
    | (?P<userinfo>\b[a-z][a-z0-9+.\-]*://[^\s/:@"'\\]*:)[^\s/@"'\\]+(?=@)      # scheme://user:PASSWORD@host
    """,
    re.VERBOSE | re.IGNORECASE,
)

# Live sets by a never-reused token. Dict updates and copies are atomic under the GIL, so no lock is needed for the
# sync facade's loop thread and the caller's thread to register and read at once.
_tokens = itertools.count()
_live: dict[int, weakref.ref[SecretSet]] = {}
_compiled: tuple[frozenset[int], re.Pattern[str] | None] = (frozenset(), None)


class SecretSet:
    """The secrets of one configuration, masked by :func:`redact` for as long as this object is alive.

    >>> secrets = SecretSet(["tok3n-without-any-prefix"])
    >>> redact("upstream said: bad key tok3n-without-any-prefix")
    'upstream said: bad key ***'
    """

    __slots__ = ("__weakref__", "values")

    def __init__(self, secrets: Iterable[str | None]) -> None:
        self.values = frozenset(v for s in secrets if s for v in _forms(s) if len(v) >= MIN_SECRET_LENGTH)
        """Each secret in every form it may be written in (raw, JSON-escaped, URL-encoded, URL-decoded)."""
        if self.values:
            token = next(_tokens)
            _live[token] = weakref.ref(self, lambda _ref: _live.pop(token, None))

    def __repr__(self) -> str:  # never the values
        return f"SecretSet({len(self.values)} values)"


def _forms(secret: str) -> set[str]:
    """The ways a secret shows up in text: as configured, JSON-escaped (inside an error body), URL-encoded (in a
    URL or a form) and URL-decoded (a URL's password, as the server saw it)."""
    forms = {secret, json.dumps(secret)[1:-1], quote(secret, safe=""), unquote(secret)}
    return {f for f in forms if f}


def _pattern() -> re.Pattern[str] | None:
    """One alternation of every live secret (longest first, so a secret containing another is masked whole),
    compiled again only when the live sets change."""
    global _compiled
    live = frozenset(_live)
    tokens, pattern = _compiled
    if live == tokens:
        return pattern
    sets = [s for ref in list(_live.values()) if (s := ref()) is not None]
    values = sorted({v for s in sets for v in s.values}, key=lambda v: (-len(v), v))
    pattern = re.compile("|".join(map(re.escape, values))) if values else None
    _compiled = (live, pattern)
    return pattern


def _mask_shape(m: re.Match[str]) -> str:
    # Keep the recognisable prefix ("sk-ant-", "Bearer "): it tells a reader which key leaked, not the key.
    return next(g for g in m.groups() if g is not None) + MASK


def redact(text: str) -> str:
    """Mask every secret in ``text``: the configured ones by value, whatever their format, and anything shaped like
    a key — ``sk-…``, ``sk-ant-…``, ``AIza…``, ``gsk_…``, ``xai-…``, a gateway key ``llmm-…``, ``Bearer …``,
    ``x-api-key: …``, ``?key=…`` and the password of ``scheme://user:password@host``. A recognisable prefix is
    kept, the secret is not. Safe on serialised JSON: no mask ends inside an escape sequence.

    >>> redact("401 from upstream: invalid key sk-proj-abcdefghijklmnop1234")
    '401 from upstream: invalid key sk-proj-***'
    >>> redact("cannot connect to redis://:hunter2hunter2@10.0.0.5:6379/0")
    'cannot connect to redis://:***@10.0.0.5:6379/0'
    """
    pattern = _pattern()
    if pattern is not None:
        text = pattern.sub(MASK, text)
    return _SHAPES.sub(_mask_shape, text)


def url_password(url: str | None) -> str | None:
    """The password inside ``scheme://user:password@host…``, as written, or ``None``."""
    if not url or "@" not in url:
        return None
    try:
        return urlsplit(url).password
    except ValueError:
        return None


def url_with_password_masked(url: str) -> str:
    """``url`` with the password of its user part replaced by :data:`MASK` (for printing a configuration)."""
    if not url_password(url):
        return url
    parts = urlsplit(url)
    userinfo, _, hostport = parts.netloc.rpartition("@")
    user = userinfo.split(":", 1)[0]
    return urlunsplit(parts._replace(netloc=f"{user}:{MASK}@{hostport}"))
