"""Gateway keys: who may call the gateway, which models they may use, and how often.

A key has a short public id (``gk_`` + 8 hex digits: shown in listings, the ledger's ``api_key_id`` and budgets
with scope ``key``) and a secret (``llmm-`` + 32 URL-safe characters) that is shown once, when the key is
created. Only the secret's SHA-256 is stored; the secret itself is never stored nor logged.

>>> key_id, secret = await create_key(db, "ci", models=["gpt"], rpm=60)  # doctest: +SKIP
>>> info = await verify(db, secret)                                        # doctest: +SKIP

Lookups are cached per :class:`~llm_manager.store.Database`, so the request path costs a dict lookup. A key created
or revoked through this module in the same process takes effect at once. One created or revoked by another process
(the CLI against running replicas) takes effect within :data:`CHECK_INTERVAL_S` seconds plus one query: at most that
often, a request first asks the store for the keys table's fingerprint (one aggregate query over a small table) and
drops every cached verdict when it changed. When the store cannot answer that query, cached verdicts are used for up
to :data:`CACHE_TTL_S` seconds after they were read, then the gateway refuses (503) rather than guess.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import logging
import os
import secrets
import time
import weakref
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from decimal import Decimal, InvalidOperation
from typing import Any, Literal, cast

from llm_manager import _json
from llm_manager.store.migrations import Database, from_db_json, from_db_time

__all__ = [
    "CACHE_TTL_S",
    "CHECK_INTERVAL_S",
    "SECRET_PREFIX",
    "KeyInfo",
    "any_active",
    "create_key",
    "hash_secret",
    "list_keys",
    "presented_secret",
    "revoke_key",
    "verify",
]

log = logging.getLogger("llm_manager.server")

CHECK_INTERVAL_S = 0.5
"""How often, at most, a process asks the store whether any key was created or revoked: the bound on how long a
change made by another process takes to reach this one's requests (plus the time of that one query)."""
CACHE_TTL_S = 30.0
"""How long a verification (or the "are there any keys" answer) is reused while the store cannot be asked."""
SECRET_PREFIX = "llmm-"
_TABLE = "llm_manager_gateway_keys"
_COLUMNS = "id, name, hash, created_at, revoked_at, allowed_models, rpm, is_admin, tpm, budget_usd, budget_period"
Period = Literal["daily", "weekly", "monthly", "total"]
PERIODS: tuple[Period, ...] = ("daily", "weekly", "monthly", "total")
_MAX_CACHED = 10_000  # wrong secrets are cached too (a flood of them must not reach the database); bound them


@dataclass(frozen=True, slots=True)
class KeyInfo:
    """A gateway key as listings and the gateway see it: never its secret nor its hash."""

    id: str
    name: str
    created_at: datetime
    revoked_at: datetime | None = None
    models: tuple[str, ...] | None = None
    """The models (deployment names, aliases or ``task:*``) this key may ask for; ``None``: all of them."""
    rpm: int | None = None
    """Requests per minute this key may make; ``None``: unlimited."""
    admin: bool = False
    tpm: int | None = None
    """Tokens per minute (prompt and answer) this key may use; ``None``: unlimited."""
    budget_usd: Decimal | None = None
    """What this key may spend per :attr:`budget_period`; ``None``: no budget of its own (config budgets with
    ``scope: key`` still apply)."""
    budget_period: Period = "monthly"

    @property
    def revoked(self) -> bool:
        return self.revoked_at is not None

    def allows(self, *names: str | None) -> bool:
        """Whether the key may use a model called by any of ``names`` (as sent, or as resolved)."""
        return self.models is None or any(n is not None and n in self.models for n in names)

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready, for ``keys list --json``."""
        return {
            "id": self.id,
            "name": self.name,
            "created_at": self.created_at.isoformat(),
            "revoked_at": self.revoked_at.isoformat() if self.revoked_at else None,
            "models": list(self.models) if self.models is not None else None,
            "rpm": self.rpm,
            "tpm": self.tpm,
            "budget_usd": str(self.budget_usd) if self.budget_usd is not None else None,
            "budget_period": self.budget_period if self.budget_usd is not None else None,
            "admin": self.admin,
        }


@dataclass(slots=True)
class _Cache:
    verified: dict[str, tuple[KeyInfo | None, float]] = field(default_factory=dict)
    active: tuple[bool, float] | None = None
    stamp: tuple[str, ...] | None = None
    """The keys table's fingerprint when the verdicts above were current."""
    checked_at: float = -1e18
    generation: int = 0
    """Bumped by every clear: a lookup that started before a clear must not cache what it read."""
    lock: asyncio.Lock | None = None
    failing: bool = False

    def clear(self) -> None:
        self.verified.clear()
        self.active = None
        self.generation += 1


_caches: weakref.WeakKeyDictionary[Database, _Cache] = weakref.WeakKeyDictionary()


def _cache(db: Database) -> _Cache:
    cache = _caches.get(db)
    if cache is None:
        cache = _caches[db] = _Cache()
    return cache


def hash_secret(secret: str) -> str:
    """The stored form of a secret: its SHA-256, hex."""
    return hashlib.sha256(secret.encode()).hexdigest()


async def create_key(
    db: Database,
    name: str,
    *,
    models: Sequence[str] | None = None,
    rpm: int | None = None,
    admin: bool = False,
    tpm: int | None = None,
    budget_usd: Decimal | str | None = None,
    budget_period: Period = "monthly",
) -> tuple[str, str]:
    """Create a key; returns ``(id, secret)``. The secret cannot be recovered later: show it to the user now.

    Raises:
        ValueError: an empty name, an empty model list, ``rpm`` or ``tpm`` below 1, a budget that is not a
            positive amount, or an unknown period.
    """
    if not name.strip():
        raise ValueError("a key needs a name")
    if models is not None and not models:
        raise ValueError("models: give at least one model, or None for all of them")
    if rpm is not None and rpm < 1:
        raise ValueError("rpm must be at least 1")
    if tpm is not None and tpm < 1:
        raise ValueError("tpm must be at least 1")
    budget = _amount(budget_usd)
    if budget_period not in PERIODS:
        raise ValueError(f"budget_period must be one of {', '.join(PERIODS)}")
    secret = SECRET_PREFIX + secrets.token_urlsafe(24)  # 24 random bytes are 32 URL-safe characters
    allowed = _json.dumps(list(dict.fromkeys(models))).decode() if models is not None else None
    async with db.transaction(True) as session:
        while True:  # 32 bits of id: a clash is rare, but an id must stay unique
            key_id = "gk_" + os.urandom(4).hex()
            if not await session.fetchall(f"SELECT id FROM {_TABLE} WHERE id = ?", (key_id,)):
                break
        await session.execute(
            f"INSERT INTO {_TABLE} ({_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (
                key_id,
                name,
                hash_secret(secret),
                datetime.now(UTC),
                None,
                allowed,
                rpm,
                1 if admin else 0,
                tpm,
                str(budget) if budget is not None else None,
                budget_period,
            ),
        )
    _cache(db).clear()
    return key_id, secret


async def list_keys(db: Database) -> list[KeyInfo]:
    """Every key, revoked ones included, oldest first."""
    async with db.transaction(False) as session:
        rows = await session.fetchall(f"SELECT {_COLUMNS} FROM {_TABLE} ORDER BY created_at, id")
    return [_info(row) for row in rows]


async def revoke_key(db: Database, key_id: str) -> bool:
    """Revoke a key for good; ``False`` when no key with that id is active."""
    async with db.transaction(True) as session:
        changed = await session.execute(
            f"UPDATE {_TABLE} SET revoked_at = ? WHERE id = ? AND revoked_at IS NULL", (datetime.now(UTC), key_id)
        )
    _cache(db).clear()
    return changed > 0


async def verify(db: Database, secret: str) -> KeyInfo | None:
    """The key whose secret is ``secret``, or ``None`` (unknown, malformed or revoked)."""
    if not secret.startswith(SECRET_PREFIX) or len(secret) > 256:
        return None
    digest = hash_secret(secret)
    cache = _cache(db)
    await _check(db, cache)
    now = time.monotonic()
    hit = cache.verified.get(digest)
    if hit is not None and hit[1] > now:
        return hit[0]
    generation = cache.generation
    async with db.transaction(False) as session:
        rows = await session.fetchall(f"SELECT {_COLUMNS} FROM {_TABLE} WHERE hash = ?", (digest,))
    info: KeyInfo | None = None
    for row in rows:
        if hmac.compare_digest(str(row[2]), digest):
            found = _info(row)
            info = None if found.revoked else found
    if cache.generation == generation:  # else a change was seen meanwhile: what was read may predate it
        if len(cache.verified) >= _MAX_CACHED:
            cache.verified.clear()
        cache.verified[digest] = (info, now + CACHE_TTL_S)
    return info


async def any_active(db: Database) -> bool:
    """Whether at least one key is not revoked (then the gateway requires one).

    Also the request path's check for changes made by other processes (see :data:`CHECK_INTERVAL_S`): the
    gateway calls it first on every request, so :func:`verify` right after it sees current verdicts.
    """
    cache = _cache(db)
    await _check(db, cache)
    now = time.monotonic()
    if cache.active is not None and cache.active[1] > now:
        return cache.active[0]
    generation = cache.generation
    async with db.transaction(False) as session:
        rows = await session.fetchall(f"SELECT id FROM {_TABLE} WHERE revoked_at IS NULL LIMIT 1")
    if cache.generation == generation:
        cache.active = (bool(rows), now + CACHE_TTL_S)
    return bool(rows)


async def _check(db: Database, cache: _Cache) -> None:
    """Drop the cached verdicts if the keys table changed since they were read; asks the store at most once per
    :data:`CHECK_INTERVAL_S` however many requests arrive (the others wait for that one answer)."""
    if time.monotonic() - cache.checked_at < CHECK_INTERVAL_S:
        return
    if cache.lock is None:
        cache.lock = asyncio.Lock()
    async with cache.lock:
        if time.monotonic() - cache.checked_at < CHECK_INTERVAL_S:
            return  # checked by the request this one waited for
        try:
            stamp = await _fingerprint(db)
        except Exception as exc:  # keep the cached verdicts (up to CACHE_TTL_S); a lookup past that refuses
            if not cache.failing:
                log.warning("gateway keys: cannot check for changes: %s: %s", type(exc).__name__, exc)
            cache.failing = True
            cache.checked_at = time.monotonic()  # try again next interval, not on every request meanwhile
            return
        if cache.failing:
            log.info("gateway keys: the store answers again")
            cache.failing = False
        if stamp != cache.stamp:
            cache.clear()
            cache.stamp = stamp
        cache.checked_at = time.monotonic()


async def _fingerprint(db: Database) -> tuple[str, ...]:
    """What changes whenever a key is created or revoked. Keys are only ever inserted and revoked (never deleted
    nor edited), so the row count, the revoked count and the latest of each timestamp change with every change;
    a function that edits a key some other way must change one of these too."""
    sql = f"SELECT COUNT(*), COUNT(revoked_at), MAX(created_at), MAX(revoked_at) FROM {_TABLE}"
    async with db.transaction(False) as session:
        rows = await session.fetchall(sql)
    return tuple(str(v) for v in rows[0])


def presented_secret(headers: Mapping[str, str]) -> str | None:
    """The secret a request presents: ``Authorization: Bearer <secret>``, else ``x-api-key: <secret>``."""
    auth = headers.get("authorization", "")
    scheme, _, token = auth.partition(" ")
    if scheme.lower() == "bearer" and token.strip():
        return token.strip()
    return headers.get("x-api-key", "").strip() or None


def _amount(value: Decimal | str | None) -> Decimal | None:
    if value is None:
        return None
    try:
        amount = Decimal(str(value))
    except InvalidOperation:
        raise ValueError(f"budget_usd must be an amount in USD, not {value!r}") from None
    if not amount.is_finite() or amount <= 0:
        raise ValueError("budget_usd must be more than 0")
    return amount


def _info(row: Sequence[Any]) -> KeyInfo:
    key_id, name, _hash, created, revoked, allowed, rpm, admin, tpm, budget, period = row
    models = from_db_json(allowed) if allowed is not None else None
    return KeyInfo(
        id=str(key_id),
        name=str(name),
        created_at=from_db_time(created),
        revoked_at=from_db_time(revoked) if revoked is not None else None,
        models=tuple(str(m) for m in models) if models is not None else None,
        rpm=int(rpm) if rpm is not None else None,
        admin=bool(admin),
        tpm=int(tpm) if tpm is not None else None,
        budget_usd=Decimal(str(budget)) if budget is not None else None,
        budget_period=cast(Period, period) if period in PERIODS else "monthly",
    )
