"""Traffic over time from the spend ledger, for ``GET /admin/timeseries`` and the dashboard's charts.

Computed from the ledger table, not from this process's memory, so the figures survive restarts and add up the
traffic of every gateway replica sharing the store. Buckets are aligned to multiples of the bucket size (since the
Unix epoch), so successive refreshes of one window show the same buckets moving along rather than jittering.

Per bucket: requests started (a request's first ledger row), failed requests (no answering row), provider calls,
failed calls, latency p50 / p95 of answered calls, and cost, each also per model (or per deployment).
"""

from __future__ import annotations

import math
import re
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import UTC, datetime
from decimal import Decimal, localcontext
from typing import Any, Literal

from llm_manager.store.migrations import Database, from_db_time

__all__ = ["MAX_BUCKETS", "MAX_ROWS", "MAX_WINDOW_S", "BadParameter", "By", "Grid", "parse_duration", "query"]

MAX_WINDOW_S = 24 * 3600
"""The longest window served: the rows of the window are read on every call (a dashboard calls every few s)."""
MAX_BUCKETS = 720
MAX_ROWS = 250_000
"""Rows read at most, newest first; past it the oldest buckets are incomplete and the answer says ``truncated``."""

By = Literal["model", "deployment"]
_ANSWERED = frozenset({"ok", "cached", "deduplicated"})
_CALLS = frozenset({"ok", "error", "hedge_lost"})  # rows that are provider calls (as Ledger's Total.calls)
_DURATION = re.compile(r"^(\d{1,6})([smhd])$")
_UNIT_S = {"s": 1, "m": 60, "h": 3600, "d": 86400}


class BadParameter(ValueError):
    """A query parameter out of bounds or unreadable; :attr:`param` names it."""

    def __init__(self, param: str, message: str) -> None:
        super().__init__(f"{param}: {message}")
        self.param = param


def parse_duration(text: str) -> int:
    """Seconds in ``90s``, ``15m``, ``6h`` or ``1d``. Raises :class:`ValueError`."""
    match = _DURATION.match(text.strip().lower())
    if not match:
        raise ValueError(f"cannot read {text!r} as a duration: use a number and a unit s, m, h or d (15m, 30s)")
    return int(match[1]) * _UNIT_S[match[2]]


@dataclass(frozen=True, slots=True)
class Grid:
    """``count`` buckets of ``bucket_s`` seconds, the last one holding ``now``."""

    start: int
    """Epoch seconds: the first bucket's start."""
    bucket_s: int
    count: int

    @classmethod
    def parse(cls, window: str, bucket: str, now: float) -> Grid:
        """The grid covering the last ``window`` (``15m``) in buckets of ``bucket`` (``15s``).

        Raises:
            BadParameter: an unreadable duration, a window over :data:`MAX_WINDOW_S`, a bucket longer than the
                window, or more than :data:`MAX_BUCKETS` buckets.
        """
        try:
            window_s = parse_duration(window)
        except ValueError as exc:
            raise BadParameter("window", str(exc)) from None
        if not 0 < window_s <= MAX_WINDOW_S:
            raise BadParameter("window", f"must be between 1s and {MAX_WINDOW_S // 3600}h")
        try:
            bucket_s = parse_duration(bucket)
        except ValueError as exc:
            raise BadParameter("bucket", str(exc)) from None
        if not 0 < bucket_s <= window_s:
            raise BadParameter("bucket", "must be at least 1s and no longer than the window")
        count = math.ceil(window_s / bucket_s)
        if count > MAX_BUCKETS:
            raise BadParameter("bucket", f"window / bucket gives {count} buckets; at most {MAX_BUCKETS} are served")
        end = (math.floor(now / bucket_s) + 1) * bucket_s
        return cls(start=end - count * bucket_s, bucket_s=bucket_s, count=count)

    @property
    def end(self) -> int:
        return self.start + self.count * self.bucket_s

    def index(self, ts: datetime) -> int | None:
        i = math.floor((ts.timestamp() - self.start) / self.bucket_s)
        return i if 0 <= i < self.count else None


@dataclass(slots=True)
class _Cell:
    """What one bucket (or one model within it) has seen."""

    calls: int = 0
    call_errors: int = 0
    cost_pusd: int = 0
    latencies: list[float] = field(default_factory=list)

    def add(self, status: str, latency_ms: float, cost_pusd: int | None) -> None:
        if status in _CALLS:
            self.calls += 1
            self.call_errors += status == "error"
        if status == "ok":
            self.latencies.append(latency_ms)
        if cost_pusd is not None:
            self.cost_pusd += cost_pusd

    def as_dict(self) -> dict[str, Any]:
        self.latencies.sort()
        return {
            "calls": self.calls,
            "call_errors": self.call_errors,
            "latency_p50_ms": _percentile(self.latencies, 0.50),
            "latency_p95_ms": _percentile(self.latencies, 0.95),
            "cost": _usd(self.cost_pusd),
        }


async def query(db: Database, grid: Grid, by: By = "model") -> dict[str, Any]:
    """The buckets of ``grid`` from the ledger in ``db`` (only committed rows: flush the ledger first)."""
    column = "model" if by == "model" else "deployment"
    sql = (
        f"SELECT ts, request_id, attempt, {column}, status, latency_ms, cost_pusd FROM llm_manager_ledger"
        " WHERE ts >= ? AND ts < ? ORDER BY ts DESC LIMIT ?"
    )
    params = (datetime.fromtimestamp(grid.start, UTC), datetime.fromtimestamp(grid.end, UTC), MAX_ROWS + 1)
    async with db.transaction(False) as session:
        rows = await session.fetchall(sql, params)
    truncated = len(rows) > MAX_ROWS
    totals = [_Cell() for _ in range(grid.count)]
    per_key: list[defaultdict[str, _Cell]] = [defaultdict(_Cell) for _ in range(grid.count)]
    started: dict[str, int] = {}  # request id -> bucket of its first row
    answered: set[str] = set()
    for ts, request_id, attempt, key, status, latency_ms, cost_pusd in rows[:MAX_ROWS]:
        i = grid.index(from_db_time(ts))
        if i is None:
            continue
        cost = None if cost_pusd is None else int(cost_pusd)
        totals[i].add(status, float(latency_ms), cost)
        per_key[i][str(key)].add(status, float(latency_ms), cost)
        if int(attempt) == 1:
            started[request_id] = i
        if status in _ANSWERED:
            answered.add(request_id)
    requests = [0] * grid.count
    failed = [0] * grid.count
    for request_id, i in started.items():
        requests[i] += 1
        failed[i] += request_id not in answered
    buckets = [
        {
            "t": grid.start + i * grid.bucket_s,
            "start": datetime.fromtimestamp(grid.start + i * grid.bucket_s, UTC).isoformat(),
            "requests": requests[i],
            "errors": failed[i],
            **totals[i].as_dict(),
            by + "s": {k: cell.as_dict() for k, cell in sorted(per_key[i].items())},
        }
        for i in range(grid.count)
    ]
    return {
        "start": datetime.fromtimestamp(grid.start, UTC).isoformat(),
        "end": datetime.fromtimestamp(grid.end, UTC).isoformat(),
        "window_s": grid.count * grid.bucket_s,
        "bucket_s": grid.bucket_s,
        "by": by,
        "keys": sorted({k for cells in per_key for k in cells}),
        "truncated": truncated,
        "buckets": buckets,
    }


def _percentile(ordered: list[float], q: float) -> float | None:
    """Nearest-rank percentile of sorted values; ``None`` for none."""
    if not ordered:
        return None
    return round(ordered[max(0, math.ceil(q * len(ordered)) - 1)], 3)


def _usd(pusd: int) -> Decimal:
    with localcontext(prec=60):  # exact: picodollars to dollars is a shift of the exponent
        usd = Decimal(pusd).scaleb(-12).normalize()
        return usd.quantize(Decimal(1)) if usd == usd.to_integral_value() else usd
