"""Periods of time as users name them (``--since 7d``) and as budgets count them (a UTC day, ISO week, month)."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta

__all__ = ["parse_since", "period_bounds", "period_start"]

_RELATIVE = re.compile(r"^(\d+)\s*([mhdw])$")
_UNITS = {"m": "minutes", "h": "hours", "d": "days", "w": "weeks"}


def _utc(value: datetime) -> datetime:
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def parse_since(text: str, now: datetime) -> datetime:
    """The start of a period, from the forms a user types (CLI ``--since``, a gateway query parameter).

    Accepts ``30m``, ``24h``, ``7d``, ``2w`` (before ``now``); ``today`` and ``month`` (the start of the current
    UTC day / month); an ISO date ``2026-11-01`` (its UTC midnight) or datetime (UTC when it has no offset).
    Returns a UTC-aware datetime.

    Raises:
        ValueError: any other text, with the accepted forms in the message.
    """
    now = _utc(now)
    value = text.strip().lower()
    if match := _RELATIVE.match(value):
        try:
            return now - timedelta(**{_UNITS[match[2]]: int(match[1])})
        except OverflowError:  # "99999999w" reaches back past year 1
            raise ValueError(f"{text.strip()[:40]!r} reaches back further than a date can") from None
    if value == "today":
        return now.replace(hour=0, minute=0, second=0, microsecond=0)
    if value == "month":
        return now.replace(day=1, hour=0, minute=0, second=0, microsecond=0)
    try:
        parsed = datetime.fromisoformat(text.strip())
    except ValueError:
        raise ValueError(
            f"cannot read {text!r} as a start time: use a duration (30m, 24h, 7d, 2w), today, month, "
            "an ISO date (2026-11-01) or an ISO datetime (2026-11-01T09:30:00Z)"
        ) from None
    return _utc(parsed)


def period_bounds(period: str, now: datetime) -> tuple[str, datetime | None]:
    """The counter suffix of the UTC calendar period containing ``now``, and when that period ends (``None`` for
    ``total``, which never ends)."""
    if period == "daily":
        start = now.replace(hour=0, minute=0, second=0, microsecond=0)
        return start.strftime("%Y-%m-%d"), start + timedelta(days=1)
    if period == "weekly":
        start = (now - timedelta(days=now.weekday())).replace(hour=0, minute=0, second=0, microsecond=0)
        year, week, _ = now.isocalendar()
        return f"{year}-W{week:02d}", start + timedelta(days=7)
    if period == "monthly":
        start = now.replace(day=1, hour=0, minute=0, second=0, microsecond=0)
        end = start.replace(year=start.year + 1, month=1) if start.month == 12 else start.replace(month=start.month + 1)
        return start.strftime("%Y-%m"), end
    return "total", None


def period_start(period: str, now: datetime) -> datetime | None:
    """When the UTC calendar period containing ``now`` began (``None`` for ``total``)."""
    _, end = period_bounds(period, now)
    if end is None:
        return None
    length = {"daily": timedelta(days=1), "weekly": timedelta(days=7)}.get(period)
    if length is not None:
        return end - length
    return now.replace(day=1, hour=0, minute=0, second=0, microsecond=0)
