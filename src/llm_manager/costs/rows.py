"""A ledger row: its type, its exact encodings (SQL parameters and JSON), and the SQL that reads rows and totals back.

Costs are stored as integer picodollars (10^-12 USD): exact for every price with up to 6 decimals per million tokens
(all of the bundled price table but a few repeating fractions, which the table itself has already rounded), one
column type and one exact ``SUM`` on both dialects, where SQLite has no exact decimal type (its ``SUM`` over text
would go through float).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field, fields
from datetime import UTC, datetime
from decimal import ROUND_HALF_EVEN, Context, Decimal, localcontext
from typing import Any, Literal, cast, get_args

from llm_manager import _json
from llm_manager.store.migrations import from_db_time

__all__ = [
    "BILLED_STATUSES",
    "Dimension",
    "LedgerRow",
    "LedgerStatus",
    "Total",
    "row_from_json",
    "row_json",
]

LedgerStatus = Literal["ok", "error", "skipped", "hedge_lost", "cached", "deduplicated"]
"""``ok``: answered; ``error``: failed (maybe retried); ``skipped``: not called (breaker open, at its limit, window
too small); ``hedge_lost``: lost a hedge race (paid for, answer discarded); ``cached`` / ``deduplicated``: answered
without a provider call of its own."""
_STATUSES = frozenset(get_args(LedgerStatus))
BILLED_STATUSES: tuple[LedgerStatus, ...] = ("ok", "error", "hedge_lost")
"""The statuses of rows that are provider calls (``Total.calls``)."""

Dimension = Literal["model", "deployment", "user", "project", "key", "task", "provider"]
_COLUMNS: dict[Dimension, str] = {
    "model": "model",
    "deployment": "deployment",
    "user": "user_id",
    "project": "project",
    "key": "api_key_id",
    "task": "task",
    "provider": "provider",
}

_PICO = 12
_MICRO_IN_PICO = 1_000_000


@dataclass(slots=True, kw_only=True)
class LedgerRow:
    """One provider call (or one answer that needed none)."""

    ts: datetime
    """When the call started (UTC-aware)."""
    request_id: str
    attempt: int
    """1-based position of this call among the request's calls; ``(request_id, attempt)`` is unique."""
    deployment: str
    provider: str
    model: str
    status: LedgerStatus
    user: str | None = None
    project: str | None = None
    api_key_id: str | None = None
    """The gateway key that made the request (``None`` in library use)."""
    task: str = "general"
    prompt_tokens: int = 0
    completion_tokens: int = 0
    cached_tokens: int = 0
    """Prompt tokens served from the provider's prompt cache (part of ``prompt_tokens``)."""
    cost: Decimal | None = None
    """USD; ``None`` when the model's price is unknown (never 0 for "unknown")."""
    latency_ms: float = 0.0
    error_code: str | None = None
    cached: bool = False
    """Answered from the response cache."""
    request_key: str | None = None
    """Hash of the canonical request, to find repeated identical prompts."""
    cache_similarity: float | None = None
    """A semantic cache hit: the similarity of the cached prompt that answered."""

    def __post_init__(self) -> None:
        # Checked here, on the caller's stack: a bad row buffered would fail its whole batch on every retry.
        if self.ts.tzinfo is None:
            raise ValueError("LedgerRow.ts must be timezone-aware (UTC)")
        if self.status not in _STATUSES:
            raise ValueError(f"LedgerRow.status {self.status!r} is not one of {sorted(_STATUSES)}")
        if self.attempt < 1:
            raise ValueError(f"LedgerRow.attempt is 1-based, not {self.attempt}")
        if min(self.prompt_tokens, self.completion_tokens, self.cached_tokens) < 0:
            raise ValueError("LedgerRow token counts must be >= 0")
        if self.cost is not None and (not self.cost.is_finite() or self.cost < 0):
            raise ValueError(f"LedgerRow.cost must be a finite, non-negative Decimal or None, not {self.cost!r}")
        if not math.isfinite(self.latency_ms):
            raise ValueError("LedgerRow.latency_ms must be finite")


_ROW_FIELDS = tuple(f.name for f in fields(LedgerRow))


@dataclass(frozen=True, slots=True)
class Total:
    """Aggregates over the ledger rows of one key (or of all rows, for :meth:`Ledger.summary`)."""

    key: str | None
    """The dimension's value (``None``: rows without one, e.g. no user; always ``None`` in a summary)."""
    requests: int = 0
    """Distinct request ids."""
    calls: int = 0
    """Provider calls: rows with status ``ok``, ``error`` or ``hedge_lost``."""
    errors: int = 0
    prompt_tokens: int = 0
    completion_tokens: int = 0
    cost: Decimal = field(default_factory=Decimal)
    """Exact sum of the known costs (USD)."""
    unpriced_calls: int = 0
    """Successful calls whose cost is unknown: :attr:`cost` leaves them out."""


# -- conversions ---------------------------------------------------------------------------------------------------


_EXACT = Context(prec=60)


def _to_pico(cost: Decimal | None) -> int | None:
    if cost is None:
        return None
    # scaleb is exact with enough digits; only the 13th decimal on is rounded. The context is passed rather than
    # swapped in with localcontext(): this runs for every ledger row.
    return int(cost.scaleb(_PICO, _EXACT).to_integral_value(rounding=ROUND_HALF_EVEN, context=_EXACT))


def _from_pico(value: Any) -> Decimal:
    with localcontext(prec=60):  # exact: an int64 sum has at most ~30 digits
        # No trailing zeros ("0.123", not "0.123000000000"); whole dollars in plain digits ("15", not "1.5E+1").
        usd = Decimal(int(value)).scaleb(-_PICO).normalize()
        return usd.quantize(Decimal(1)) if usd == usd.to_integral_value() else usd


def _text(value: str | None) -> str | None:
    # PostgreSQL text cannot hold NUL; one such character (say in a gateway caller's `user`) would otherwise fail
    # its batch on every retry.
    return value.replace("\x00", "\ufffd") if value is not None and "\x00" in value else value


def _utc(value: datetime) -> datetime:
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def _params(row: LedgerRow) -> tuple[object, ...]:
    return (
        _utc(row.ts),
        _text(row.request_id),
        row.attempt,
        _text(row.deployment),
        _text(row.provider),
        _text(row.model),
        _text(row.user),
        _text(row.project),
        _text(row.api_key_id),
        _text(row.task),
        row.prompt_tokens,
        row.completion_tokens,
        row.cached_tokens,
        _to_pico(row.cost),
        float(row.latency_ms),
        row.status,
        _text(row.error_code),
        int(row.cached),
        _text(row.request_key),
        row.cache_similarity,
    )


_COLUMN_LIST = (
    "ts, request_id, attempt, deployment, provider, model, user_id, project, api_key_id, task, prompt_tokens,"
    " completion_tokens, cached_tokens, cost_pusd, latency_ms, status, error_code, cached, request_key,"
    " cache_similarity"
)
_ROW_PLACEHOLDERS = "(" + ", ".join("?" * 20) + ")"


def _insert_sql(rows: int) -> str:
    # One multi-row INSERT per chunk: the session interface has no executemany, and one statement of 500 rows is
    # one round trip instead of 500. A row already present (a batch retried after an ambiguous commit) is skipped.
    values = ", ".join([_ROW_PLACEHOLDERS] * rows)
    return (
        f"INSERT INTO llm_manager_ledger ({_COLUMN_LIST}) VALUES {values} ON CONFLICT (request_id, attempt) DO NOTHING"
    )


def _row_from_db(r: Sequence[Any]) -> LedgerRow:
    return LedgerRow(
        ts=from_db_time(r[0]),
        request_id=r[1],
        attempt=int(r[2]),
        deployment=r[3],
        provider=r[4],
        model=r[5],
        user=r[6],
        project=r[7],
        api_key_id=r[8],
        task=r[9],
        prompt_tokens=int(r[10]),
        completion_tokens=int(r[11]),
        cached_tokens=int(r[12]),
        cost=None if r[13] is None else _from_pico(r[13]),
        latency_ms=float(r[14]),
        status=cast(LedgerStatus, r[15]),
        error_code=r[16],
        cached=bool(r[17]),
        request_key=r[18],
        cache_similarity=None if r[19] is None else float(r[19]),
    )


_INT_FIELDS = ("attempt", "prompt_tokens", "completion_tokens", "cached_tokens")
_INT64 = 2**63


def row_json(row: LedgerRow) -> bytes:
    """The row as one line of JSON, exactly: the cost as a decimal string, the time in ISO-8601 with its offset, and
    an integer past 64 bits (which JSON encoders refuse) as a string."""
    data = {name: getattr(row, name) for name in _ROW_FIELDS}
    for name in _INT_FIELDS:
        if not -_INT64 <= data[name] < _INT64:
            data[name] = str(data[name])
    return _json.dumps(data)


def row_from_json(text: bytes | str) -> LedgerRow:
    """The row :func:`row_json` wrote (raises ``ValueError`` / ``TypeError`` / ``KeyError`` for anything else)."""
    data = _json.loads(text)
    data["ts"] = datetime.fromisoformat(data["ts"])
    data["cost"] = None if data["cost"] is None else Decimal(data["cost"])
    for name in _INT_FIELDS:
        data[name] = int(data[name])
    return LedgerRow(**data)


# SUM(cost_pusd) would overflow SQLite's 64-bit integers past $9.2M; summing whole microdollars and the picodollar
# remainders separately (integer division on both dialects, costs are never negative) is exact up to $9.2 trillion.
_AGGREGATES = """COUNT(DISTINCT request_id),
    SUM(CASE WHEN status IN ('ok', 'error', 'hedge_lost') THEN 1 ELSE 0 END),
    SUM(CASE WHEN status = 'error' THEN 1 ELSE 0 END),
    SUM(prompt_tokens),
    SUM(completion_tokens),
    SUM(cost_pusd / 1000000),
    SUM(cost_pusd - (cost_pusd / 1000000) * 1000000),
    SUM(CASE WHEN cost_pusd IS NULL AND status = 'ok' THEN 1 ELSE 0 END)"""


def _total(key: str | None, r: Sequence[Any]) -> Total:
    """A :class:`Total` from the columns of :data:`_AGGREGATES` (SUMs are NULL over no rows)."""
    micros, picos = int(r[5] or 0), int(r[6] or 0)
    return Total(
        key=key,
        requests=int(r[0] or 0),
        calls=int(r[1] or 0),
        errors=int(r[2] or 0),
        prompt_tokens=int(r[3] or 0),
        completion_tokens=int(r[4] or 0),
        cost=_from_pico(micros * _MICRO_IN_PICO + picos),
        unpriced_calls=int(r[7] or 0),
    )


def _period(since: datetime | None, until: datetime | None) -> tuple[str, list[object]]:
    """A WHERE clause for ``since <= ts < until`` (either bound optional; naive means UTC)."""
    conditions: list[str] = []
    params: list[object] = []
    if since is not None:
        conditions.append("ts >= ?")
        params.append(_utc(since))
    if until is not None:
        conditions.append("ts < ?")
        params.append(_utc(until))
    return (" WHERE " + " AND ".join(conditions) if conditions else ""), params
