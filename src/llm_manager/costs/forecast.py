"""Budget forecasts: each budget's spend projected to the end of its period, from the ledger, and when it runs out.

For every budget and scope value (the global ``*``, the budget's ``match``, else every user / project / key /
model that spent in the current period), from the ledger's priced rows only:

* **spent**: what the ledger recorded since the period began (all of it for ``total`` budgets);
* **recent rate**: the spend of the last ``window_h`` hours divided by that window — shortened to the time since
  the value's first priced row when that is more recent, but never below one hour — projected flat over what is
  left of the period;
* **day of week**, where there is history: with ``weeks`` ≥ 1 full weeks of ledger behind the value (its first
  priced row at least that many weeks before the current hour; at most :data:`HISTORY_WEEKS` are used), each
  hour left in the period is expected to cost the mean of the same hour of the week over those weeks (so a quiet
  night and a busy Monday morning are projected as they were);
* **projection** = spent + the higher of the two remainders (a budget warning should come early rather than
  late); ``basis.method`` says which one it was, and both are shown;
* **runs out at**: the moment the projection reaches the limit, walking the chosen basis hour by hour (``None``
  when it does not within the period; the current time when the limit is already reached).

A ``total`` budget has no period end: it is projected over the next :data:`TOTAL_HORIZON_DAYS` days instead
(``period_end`` is then that horizon and ``horizon`` is true).

Reservations in flight are not counted: the ledger is the record of what was spent.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import defaultdict
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import TYPE_CHECKING, Any, Literal

from llm_manager.costs.periods import period_bounds, period_start
from llm_manager.store.migrations import from_db_time

if TYPE_CHECKING:
    from llm_manager.config import BudgetConfig
    from llm_manager.costs.ledger import Ledger

__all__ = [
    "DEFAULT_WINDOW_H",
    "HISTORY_WEEKS",
    "MAX_WINDOW_H",
    "TOTAL_HORIZON_DAYS",
    "WATCH_EVERY_S",
    "WATCH_FIRST_S",
    "Basis",
    "Forecast",
    "Forecaster",
    "forecast_budgets",
]

log = logging.getLogger("llm_manager.budgets")

DEFAULT_WINDOW_H = 6.0
"""The recent-rate window, in hours, unless the caller gives another."""
MAX_WINDOW_H = 24 * 28.0
HISTORY_WEEKS = 4
"""Full weeks of history at most behind a day-of-week profile."""
TOTAL_HORIZON_DAYS = 30
"""How far ahead a ``total`` budget (which never resets) is projected."""
WATCH_FIRST_S = 30.0
WATCH_EVERY_S = 300.0
"""A running manager (the gateway) recomputes its forecasts this often, after :data:`WATCH_FIRST_S`, so that a
projection passing its limit is logged without anyone asking."""
_HOUR = timedelta(hours=1)
_WEEK_H = 168
_PICO = Decimal(10**12)
_COLUMNS = {"user": "user_id", "project": "project", "key": "api_key_id", "model": "deployment"}


@dataclass(frozen=True, slots=True)
class Basis:
    """How a projection was made, with both bases' numbers."""

    method: Literal["recent_rate", "day_of_week"]
    """The basis whose remainder was used: the higher of the two."""
    window_h: float
    """The recent-rate window actually used (hours)."""
    rate_usd_per_h: Decimal
    recent_usd: Decimal
    """What the recent rate projects for the rest of the period."""
    weeks: int
    """Full weeks of history behind the day-of-week profile (0: none, no day-of-week projection)."""
    day_of_week_usd: Decimal | None

    def as_dict(self) -> dict[str, Any]:
        return {
            "method": self.method,
            "window_h": round(self.window_h, 3),
            "rate_usd_per_h": str(_cents6(self.rate_usd_per_h)),
            "recent_usd": str(_cents6(self.recent_usd)),
            "weeks": self.weeks,
            "day_of_week_usd": str(_cents6(self.day_of_week_usd)) if self.day_of_week_usd is not None else None,
        }


@dataclass(frozen=True, slots=True)
class Forecast:
    """One budget counter's projection."""

    budget: str
    scope: str
    value: str
    """The scope value (``*`` for a global budget)."""
    period: str
    limit_usd: Decimal
    spent_usd: Decimal
    projected_usd: Decimal
    """``spent_usd`` plus the projected spend up to :attr:`period_end`."""
    period_end: datetime
    horizon: bool
    """``True`` for a ``total`` budget: :attr:`period_end` is the projection's horizon, not a reset."""
    runs_out_at: datetime | None
    basis: Basis
    at: datetime
    """When the forecast was made."""

    @property
    def over(self) -> bool:
        """Whether the projection reaches the limit before the period ends (or the horizon)."""
        return self.projected_usd >= self.limit_usd

    @property
    def label(self) -> str:
        """``budget:value``, as the budget gauges of ``/metrics`` name a counter."""
        return f"{self.budget}:{self.value}"

    def as_dict(self) -> dict[str, Any]:
        return {
            "budget": self.budget,
            "scope": self.scope,
            "value": self.value,
            "period": self.period,
            "limit_usd": str(self.limit_usd),
            "spent_usd": str(_cents6(self.spent_usd)),
            "projected_usd": str(_cents6(self.projected_usd)),
            "projected_pct": round(float(self.projected_usd / self.limit_usd * 100), 2),
            "over_limit": self.over,
            "period_end": self.period_end.isoformat(),
            "horizon": self.horizon,
            "runs_out_at": self.runs_out_at.isoformat() if self.runs_out_at else None,
            "basis": self.basis.as_dict(),
            "at": self.at.isoformat(),
        }


async def forecast_budgets(
    ledger: Ledger,
    budgets: Sequence[BudgetConfig],
    now: datetime,
    *,
    window_h: float = DEFAULT_WINDOW_H,
) -> list[Forecast]:
    """Forecasts for ``budgets`` as of ``now`` (UTC), from the committed rows of ``ledger``, in budget order.

    Raises:
        ValueError: ``window_h`` outside 1 … :data:`MAX_WINDOW_H` hours.
    """
    if not 1 <= window_h <= MAX_WINDOW_H:
        raise ValueError(f"window_h must be between 1 and {MAX_WINDOW_H:g} hours")
    now = now.astimezone(UTC)
    reader = _Reader(ledger, now, window_h)
    out: list[Forecast] = []
    for budget in budgets:
        out.extend(await reader.budget(budget))
    return out


class _Reader:
    """The ledger figures one forecast run needs, read once per scope dimension (a run covers many budgets)."""

    def __init__(self, ledger: Ledger, now: datetime, window_h: float) -> None:
        self.ledger = ledger
        self.now = now
        self.window_h = window_h
        self.hour = now.replace(minute=0, second=0, microsecond=0)
        self._hourly: dict[str | None, dict[str, dict[datetime, Decimal]]] = {}
        self._first: dict[str | None, dict[str, datetime]] = {}
        self._recent: dict[str | None, dict[str, Decimal]] = {}

    async def budget(self, budget: BudgetConfig) -> list[Forecast]:
        column = None if budget.scope == "global" else _COLUMNS[budget.scope]
        start = period_start(budget.period, self.now)
        hourly = await self._hourly_by(column)
        if budget.scope == "global":
            values = ["*"]
        elif budget.match is not None:
            values = [budget.match]
        elif start is None:
            values = sorted(v for v, spent in (await self._spent_total(column)).items() if spent > 0)
        else:
            values = sorted(v for v, hours in hourly.items() if any(h >= start and c for h, c in hours.items()))
        totals = await self._spent_total(column) if start is None else {}
        forecasts = []
        for value in values:
            hours = hourly.get(value, {})
            if start is None:
                spent = totals.get(value, Decimal(0))
            else:
                spent = sum((c for h, c in hours.items() if h >= start), Decimal(0))
            forecasts.append(await self._one(budget, column, value, spent, hours))
        return forecasts

    async def _one(
        self, budget: BudgetConfig, column: str | None, value: str, spent: Decimal, hours: dict[datetime, Decimal]
    ) -> Forecast:
        now = self.now
        _, end = period_bounds(budget.period, now)
        horizon = end is None
        if end is None:
            end = now + timedelta(days=TOTAL_HORIZON_DAYS)
        first = (await self._first_seen(column)).get(value)
        # The rate's window: shortened to the value's own history, but at least an hour (one request a minute old
        # is no rate to project a month from).
        window_h = self.window_h
        if first is not None:
            window_h = min(window_h, max(1.0, (now - first).total_seconds() / 3600))
        recent = (await self._recent_by(column, window_h)).get(value, Decimal(0))
        rate = recent / Decimal(repr(window_h))
        left_h = Decimal(repr(max(0.0, (end - now).total_seconds() / 3600)))
        recent_rest = rate * left_h
        weeks = 0
        if first is not None:
            weeks = min(HISTORY_WEEKS, int((self.hour - first) / timedelta(weeks=1)))
        profile = _profile(hours, self.hour, weeks) if weeks else None
        dow_rest = _walk(profile, now, end) if profile is not None else None
        use_dow = dow_rest is not None and dow_rest > recent_rest
        rest = dow_rest if use_dow and dow_rest is not None else recent_rest
        basis = Basis(
            method="day_of_week" if use_dow else "recent_rate",
            window_h=window_h,
            rate_usd_per_h=rate,
            recent_usd=recent_rest,
            weeks=weeks,
            day_of_week_usd=dow_rest,
        )
        room = budget.limit_usd - spent
        if room <= 0:
            runs_out: datetime | None = now
        elif use_dow and profile is not None:
            runs_out = _when(profile, now, end, room)
        elif rate > 0 and room / rate <= left_h:
            runs_out = now + timedelta(hours=float(room / rate))
        else:
            runs_out = None
        return Forecast(
            budget=budget.name,
            scope=budget.scope,
            value=value,
            period=budget.period,
            limit_usd=budget.limit_usd,
            spent_usd=spent,
            projected_usd=spent + rest,
            period_end=end,
            horizon=horizon,
            runs_out_at=runs_out,
            basis=basis,
            at=now,
        )

    # -- queries (one of each per dimension and run) ------------------------------------------------------------------

    async def _hourly_by(self, column: str | None) -> dict[str, dict[datetime, Decimal]]:
        """Priced spend per value and UTC hour, from the start of the longest period (a month) or the history
        weeks, whichever is earlier, up to now."""
        if column in self._hourly:
            return self._hourly[column]
        month = period_start("monthly", self.now)
        since = min(self.hour - timedelta(weeks=HISTORY_WEEKS), month) if month else self.hour
        db = self.ledger.db
        bucket = (
            "substr(ts, 1, 13)"
            if db.dialect.name == "sqlite"
            else "to_char(ts AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24')"
        )
        sql = (
            f"SELECT {column or _STAR}, {bucket}, {_COST} FROM llm_manager_ledger "
            f"WHERE ts >= ? AND ts < ? AND cost_pusd IS NOT NULL {_group(column, bucket)}"
        )
        async with db.transaction(False) as session:
            rows = await session.fetchall(sql, (since, self.now))
        out: dict[str, dict[datetime, Decimal]] = defaultdict(dict)
        for value, hour, micros, picos in rows:
            if value is None:
                continue
            at = datetime.strptime(str(hour), "%Y-%m-%dT%H").replace(tzinfo=UTC)
            out[str(value)][at] = _usd(micros, picos)
        self._hourly[column] = out
        return out

    async def _first_seen(self, column: str | None) -> dict[str, datetime]:
        if column in self._first:
            return self._first[column]
        sql = (
            f"SELECT {column or _STAR}, MIN(ts) FROM llm_manager_ledger WHERE cost_pusd IS NOT NULL AND ts < ? "
            + _group(column)
        )
        async with self.ledger.db.transaction(False) as session:
            rows = await session.fetchall(sql, (self.now,))
        self._first[column] = {str(v): from_db_time(t) for v, t in rows if v is not None and t is not None}
        return self._first[column]

    async def _recent_by(self, column: str | None, window_h: float) -> dict[str, Decimal]:
        """Spend per value over the last ``window_h`` hours (windows differ per value: not cached)."""
        return await self._sums(column, self.now - timedelta(hours=window_h))

    async def _spent_total(self, column: str | None) -> dict[str, Decimal]:
        if column not in self._recent:
            self._recent[column] = await self._sums(column, None)
        return self._recent[column]

    async def _sums(self, column: str | None, since: datetime | None) -> dict[str, Decimal]:
        where = "ts < ? AND cost_pusd IS NOT NULL" + (" AND ts >= ?" if since is not None else "")
        params: tuple[object, ...] = (self.now, since) if since is not None else (self.now,)
        sql = f"SELECT {column or _STAR}, {_COST} FROM llm_manager_ledger WHERE {where} {_group(column)}"
        async with self.ledger.db.transaction(False) as session:
            rows = await session.fetchall(sql, params)
        return {str(v): _usd(m, p) for v, m, p in rows if v is not None}


# Exact sums, as the ledger's own totals: whole microdollars and picodollar remainders summed apart (SQLite's
# 64-bit integers would overflow past $9.2M in one SUM).
_COST = "SUM(cost_pusd / 1000000), SUM(cost_pusd - (cost_pusd / 1000000) * 1000000)"
_STAR = "'*'"
"""The scope value of a global budget, selected as a constant (there is no column to group by)."""


def _group(column: str | None, *more: str) -> str:
    """A GROUP BY over the scope column (none for a global budget: PostgreSQL refuses a constant there) and
    ``more``."""
    terms = [t for t in (column, *more) if t]
    return f"GROUP BY {', '.join(terms)}" if terms else ""


def _profile(hours: dict[datetime, Decimal], hour: datetime, weeks: int) -> list[Decimal]:
    """The mean spend of each hour of the week (index: hours since the Unix epoch, modulo 168) over the ``weeks``
    full weeks before ``hour``."""
    slots = [Decimal(0)] * _WEEK_H
    since = hour - timedelta(weeks=weeks)
    for at, cost in hours.items():
        if since <= at < hour:
            slots[_slot(at)] += cost
    return [s / weeks for s in slots]


def _slot(at: datetime) -> int:
    return int(at.timestamp() // 3600) % _WEEK_H


def _hours_left(now: datetime, end: datetime) -> list[tuple[datetime, Decimal]]:
    """Each hour from ``now`` to ``end`` with the share of it still to come (the current hour in part)."""
    out = []
    at = now.replace(minute=0, second=0, microsecond=0)
    while at < end:
        begin, stop = max(at, now), min(at + _HOUR, end)
        share = Decimal(repr((stop - begin).total_seconds() / 3600))
        if share > 0:
            out.append((at, share))
        at += _HOUR
    return out


def _walk(profile: list[Decimal], now: datetime, end: datetime) -> Decimal:
    return sum((profile[_slot(at)] * share for at, share in _hours_left(now, end)), Decimal(0))


def _when(profile: list[Decimal], now: datetime, end: datetime, room: Decimal) -> datetime | None:
    """When the profile's cumulative spend from ``now`` reaches ``room`` (linear within an hour), else ``None``."""
    for at, share in _hours_left(now, end):
        cost = profile[_slot(at)] * share
        if cost >= room and cost > 0:
            begin = max(at, now)
            return begin + timedelta(hours=float(share * room / cost))
        room -= cost
    return None


def _usd(micros: Any, picos: Any) -> Decimal:
    return (Decimal(int(micros or 0)) * 1_000_000 + int(picos or 0)) / _PICO


def _cents6(value: Decimal) -> Decimal:
    """Six decimal places for display (a projection's long tail of digits means nothing)."""
    return value.quantize(Decimal("0.000001"))


class Forecaster:
    """Forecasts on demand, kept for ``max_age_s`` (metrics scrapes and admin pages come often), with a warning
    logged once per budget counter and period when the projection reaches the limit."""

    def __init__(
        self,
        open_ledger: Callable[[], Any],
        budgets: Callable[[], Sequence[BudgetConfig]],
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._open_ledger = open_ledger
        self._budgets = budgets
        self.clock = clock
        self._last: tuple[float, float, list[Forecast]] | None = None
        self._warned: set[tuple[str, str, str]] = set()
        self._task: asyncio.Task[None] | None = None

    async def forecast(self, *, window_h: float = DEFAULT_WINDOW_H, max_age_s: float = 0.0) -> list[Forecast]:
        """Forecasts now (or ones at most ``max_age_s`` old, made with the same window); ``[]`` without budgets.

        Raises:
            ValueError: the ledger is disabled, or ``window_h`` is out of range.
        """
        t = self.clock()
        if self._last is not None and self._last[1] == window_h and t - self._last[0] <= max_age_s:
            return self._last[2]
        budgets = list(self._budgets())
        if not budgets:
            return []
        ledger = await self._open_ledger()
        if ledger is None:
            raise ValueError("forecasts need the ledger (ledger.enabled: false)")
        result = await forecast_budgets(ledger, budgets, datetime.fromtimestamp(t, UTC), window_h=window_h)
        self._last = (t, window_h, result)
        self._warn(result)
        return result

    def gauges(self) -> dict[str, tuple[float, float | None]]:
        """For ``/metrics``: ``budget:value -> (projected USD, when it runs out as epoch seconds or None)`` of the
        last forecasts made."""
        if self._last is None:
            return {}
        return {
            f.label: (float(f.projected_usd), f.runs_out_at.timestamp() if f.runs_out_at else None)
            for f in self._last[2]
        }

    def watch(self) -> None:
        """Recompute in the background every :data:`WATCH_EVERY_S` (idempotent; stopped by :meth:`aclose`)."""
        if self._task is None:
            self._task = asyncio.get_running_loop().create_task(self._watch(), name="llm-manager-forecasts")

    async def _watch(self) -> None:
        await asyncio.sleep(WATCH_FIRST_S)
        failing = False
        while True:
            try:
                await self.forecast(max_age_s=WATCH_EVERY_S / 2)
                failing = False
            except Exception as exc:  # the store away: said once, tried again next round
                if not failing:
                    log.warning("budget forecasts: cannot read the ledger: %s: %s", type(exc).__name__, exc)
                failing = True
            await asyncio.sleep(WATCH_EVERY_S)

    async def aclose(self) -> None:
        task, self._task = self._task, None
        if task is not None and not task.done():
            task.cancel()
            if task.get_loop() is asyncio.get_running_loop():  # a manager closed at exit may be on another loop
                await asyncio.wait([task])

    def _warn(self, forecasts: Sequence[Forecast]) -> None:
        for f in forecasts:
            tag = (f.budget, f.value, period_bounds(f.period, f.at)[0])
            if not f.over or tag in self._warned:
                continue
            if len(self._warned) > 10_000:
                self._warned.clear()  # many users × periods: bounded (a repeat warning is harmless)
            self._warned.add(tag)
            who = "" if f.value == "*" else f" ({f.scope} {f.value})"
            until = f"the next {TOTAL_HORIZON_DAYS} days" if f.horizon else f"its {f.period} period"
            out = f"; it runs out at {f.runs_out_at.isoformat(timespec='minutes')}" if f.runs_out_at else ""
            log.warning(
                "budget %s%s is projected to spend $%s of its $%s limit by the end of %s (%s basis)%s",
                f.budget,
                who,
                _cents6(f.projected_usd),
                f.limit_usd,
                until,
                f.basis.method.replace("_", "-"),
                out,
            )
