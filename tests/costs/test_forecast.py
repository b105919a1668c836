"""Budget forecasts on SQLite and PostgreSQL, from ledger rows written at known times and a fixed clock.

Each scenario states its expected figures from the rule in docs/budgets.md (spent, recent rate, day-of-week
profile, the higher remainder, when it runs out), so the numbers below can be checked by hand.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import pytest

from llm_manager import LLMManager
from llm_manager.config import BudgetConfig, load_settings
from llm_manager.costs import Ledger, LedgerRow
from llm_manager.costs import forecast as forecast_module
from llm_manager.costs.forecast import Forecast, forecast_budgets
from llm_manager.errors import ConfigError
from llm_manager.store import Database, open_database
from tests.helpers import instant

WED = datetime(2026, 11, 4, 12, 0, tzinfo=UTC)  # a Wednesday, noon UTC
_ids = iter(range(10**9))


@pytest.fixture
async def ledger(store_url: str) -> AsyncIterator[Ledger]:
    db: Database = await open_database(store_url)
    async with Ledger(db) as opened:
        yield opened
    await db.aclose()


def spend(at: datetime, usd: str, **kw: Any) -> LedgerRow:
    fields: dict[str, Any] = {
        "ts": at,
        "request_id": f"r{next(_ids)}",
        "attempt": 1,
        "deployment": "mini",
        "provider": "openai",
        "model": "gpt-4o-mini",
        "status": "ok",
        "cost": Decimal(usd),
        "latency_ms": 10.0,
    }
    fields.update(kw)
    return LedgerRow(**fields)


async def write(ledger: Ledger, rows: list[LedgerRow]) -> None:
    ledger.record(rows)
    await ledger.flush()


def budget(name: str, limit: str, **kw: Any) -> BudgetConfig:
    return BudgetConfig(name=name, limit_usd=Decimal(limit), **kw)


def one(forecasts: list[Forecast], value: str = "*") -> Forecast:
    [found] = [f for f in forecasts if f.value == value]
    return found


async def test_recent_rate_projects_the_rest_of_the_day(ledger: Ledger) -> None:
    """$0.50 in each of the last six hours: $3 spent today, $0.50/h for the 12 h left: $9 by midnight."""
    rows = [spend(WED - timedelta(days=2, hours=11, minutes=30), "0.01")]  # Monday: history, not today
    rows += [spend(WED - timedelta(hours=h, minutes=30), "0.5") for h in range(6)]
    await write(ledger, rows)
    [roomy, tight] = await forecast_budgets(ledger, [budget("roomy", "10"), budget("tight", "8")], WED)

    assert roomy.spent_usd == Decimal("3") and roomy.projected_usd == Decimal("9")
    assert roomy.basis.method == "recent_rate" and roomy.basis.rate_usd_per_h == Decimal("0.5")
    assert roomy.basis.window_h == 6 and roomy.basis.weeks == 0 and roomy.basis.day_of_week_usd is None
    assert roomy.period_end == datetime(2026, 11, 5, tzinfo=UTC) and not roomy.horizon
    assert not roomy.over and roomy.runs_out_at is None
    assert tight.over and tight.runs_out_at == WED + timedelta(hours=10)  # $5 of room at $0.50/h
    assert tight.as_dict()["projected_pct"] == 112.5


async def test_a_short_history_shortens_the_window_but_not_below_an_hour(ledger: Ledger) -> None:
    """First spend 2 h ago: the rate is over those 2 h, not diluted over 6; one spend a minute ago: over 1 h."""
    await write(ledger, [spend(WED - timedelta(hours=2), "1"), spend(WED - timedelta(minutes=30), "1")])
    [f] = await forecast_budgets(ledger, [budget("d", "100")], WED)
    assert f.basis.window_h == 2 and f.basis.rate_usd_per_h == Decimal("1")
    assert f.projected_usd == Decimal("2") + 12 * Decimal("1")

    await write(ledger, [spend(WED - timedelta(minutes=1), "5", project="new")])
    [p] = await forecast_budgets(ledger, [budget("p", "100", scope="project")], WED)
    assert p.value == "new" and p.basis.window_h == 1 and p.basis.rate_usd_per_h == Decimal("5")


async def test_day_of_week_history_projects_the_hours_as_they_were(ledger: Ledger) -> None:
    """Three past Wednesdays spent $1 in each hour from 12:00 to 17:59 and nothing else; today $0.60 so far.
    The recent rate says $1.20 for the rest of the day, the profile $6: the profile wins, and a $4 budget runs
    out 3.4 profile-hours after noon."""
    now = WED + timedelta(weeks=3)
    rows = [spend(WED - timedelta(hours=1), "0")]  # history starts just over three weeks before now
    for week in range(3):
        rows += [spend(WED + timedelta(weeks=week, hours=h, minutes=30), "1") for h in range(6)]
    rows.append(spend(now - timedelta(hours=3), "0.6"))
    await write(ledger, rows)
    [f] = await forecast_budgets(ledger, [budget("daily", "4")], now)
    assert f.basis.weeks == 3 and f.basis.method == "day_of_week"
    assert f.basis.recent_usd == Decimal("1.2") and f.basis.day_of_week_usd == Decimal("6")
    assert f.spent_usd == Decimal("0.6") and f.projected_usd == Decimal("6.6")
    assert f.runs_out_at == now + timedelta(hours=3, minutes=24)
    # Later in the day, past the busy hours: the profile expects nothing more, the recent rate does.
    evening = now + timedelta(hours=8)
    [e] = await forecast_budgets(ledger, [budget("daily", "4")], evening)
    assert e.basis.day_of_week_usd == Decimal(0) and e.basis.method == "recent_rate"


async def test_scoped_budgets_forecast_each_value_spending_this_period(ledger: Ledger) -> None:
    yesterday = WED - timedelta(days=1)
    await write(
        ledger,
        [
            spend(WED - timedelta(hours=1), "2", project="web", user="ann", api_key_id="gk_1"),
            spend(WED - timedelta(hours=2), "1", project="batch", user="bob", deployment="big"),
            spend(yesterday, "9", project="old"),  # spent only in an earlier period: no forecast today
            spend(WED - timedelta(hours=1), "7", project="web", cost=None),  # unpriced: not counted
        ],
    )
    configs = [
        budget("proj", "10", scope="project"),
        budget("k1", "10", scope="key", match="gk_1"),
        budget("idle", "10", scope="user", match="carol"),
        budget("big", "10", scope="model", match="big"),
        budget("g", "100"),
    ]
    result = await forecast_budgets(ledger, configs, WED)
    assert [(f.budget, f.value) for f in result] == [
        ("proj", "batch"),
        ("proj", "web"),
        ("k1", "gk_1"),
        ("idle", "carol"),
        ("big", "big"),
        ("g", "*"),
    ]
    by = {(f.budget, f.value): f for f in result}
    assert by["proj", "web"].spent_usd == Decimal("2") and by["k1", "gk_1"].spent_usd == Decimal("2")
    assert by["idle", "carol"].spent_usd == 0 and by["idle", "carol"].projected_usd == 0
    assert by["big", "big"].spent_usd == Decimal("1")
    assert by["g", "*"].spent_usd == Decimal("3")


async def test_a_total_budget_is_projected_over_a_horizon(ledger: Ledger) -> None:
    await write(ledger, [spend(WED - timedelta(days=10), "40")] + [spend(WED - timedelta(hours=1), "1.2")])
    [f] = await forecast_budgets(ledger, [budget("all", "50", period="total")], WED)
    assert f.horizon and f.period_end == WED + timedelta(days=30)
    assert f.spent_usd == Decimal("41.2")
    assert f.basis.rate_usd_per_h == Decimal("0.2")  # $1.20 over the last 6 h
    assert f.runs_out_at == WED + timedelta(hours=44)  # $8.80 of room at $0.20/h
    assert f.over


async def test_a_spent_budget_runs_out_now_and_bad_windows_are_refused(ledger: Ledger) -> None:
    await write(ledger, [spend(WED - timedelta(hours=1), "5")])
    [f] = await forecast_budgets(ledger, [budget("d", "5")], WED)
    assert f.runs_out_at == WED and f.over
    for bad in (0.5, 10_000):
        with pytest.raises(ValueError, match="window_h"):
            await forecast_budgets(ledger, [budget("d", "5")], WED, window_h=bad)


# -- through the manager: library API, metrics gauge, log warning --------------------------------------------------


def _settings(store_url: str, budgets: list[dict[str, Any]]) -> Any:
    model = {"provider": "simulated", "simulate": instant(), "input_price_per_mtok": 1, "output_price_per_mtok": 1}
    raw = {"models": {"m": model}, "budgets": budgets, "store": {"url": store_url}, "cache": {"enabled": False}}
    return load_settings(raw, env={})


async def test_the_manager_forecasts_warns_once_and_exports_gauges(
    store_url: str, caplog: pytest.LogCaptureFixture
) -> None:
    budgets = [{"name": "day", "limit_usd": "4", "soft_limit_pct": None}]
    async with LLMManager(_settings(store_url, budgets), wall_clock=WED.timestamp) as llm:
        ledger = await llm._open_ledger()
        assert ledger is not None
        rows = [spend(WED - timedelta(days=2), "0")]
        rows += [spend(WED - timedelta(hours=h, minutes=30), "0.5") for h in range(6)]
        await write(ledger, rows)
        with caplog.at_level(logging.WARNING, logger="llm_manager.budgets"):
            [f] = await llm.forecast()
            await llm.forecast(window_h=3)
        assert f.projected_usd == Decimal("9") and f.over
        warnings = [r.getMessage() for r in caplog.records if "projected" in r.getMessage()]
        assert warnings == [
            "budget day is projected to spend $9.000000 of its $4 limit by the end of its daily period "
            "(recent-rate basis); it runs out at 2026-11-04T14:00+00:00"
        ]
        payload, _ = await llm.metrics()
        text = payload.decode()
        assert gauge(text, "llm_manager_budget_forecast_usd", "day:*") == 9.0
        assert (
            gauge(text, "llm_manager_budget_runs_out_timestamp_seconds", "day:*")
            == (WED + timedelta(hours=2)).timestamp()
        )
        with pytest.raises(ConfigError, match="window_h"):
            await llm.forecast(window_h=0)


def gauge(text: str, name: str, label: str) -> float:
    for line in text.splitlines():
        if line.startswith(f'{name}{{budget="{label}"}} '):
            return float(line.rsplit(" ", 1)[1])
    raise AssertionError(f"no {name} for {label} in {text}")


async def test_a_running_manager_warns_without_being_asked(
    store_url: str, caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(forecast_module, "WATCH_FIRST_S", 0.05)
    budgets = [{"name": "day", "limit_usd": "1", "soft_limit_pct": None}]
    with caplog.at_level(logging.WARNING, logger="llm_manager.budgets"):
        async with LLMManager(_settings(store_url, budgets), wall_clock=WED.timestamp) as llm:
            ledger = await llm._open_ledger()  # the first request opens it; so does this
            assert ledger is not None
            await write(ledger, [spend(WED - timedelta(hours=1), "2")])
            for _ in range(100):
                if any("projected" in r.getMessage() for r in caplog.records):
                    break
                await asyncio.sleep(0.05)
    assert any("budget day is projected to spend" in r.getMessage() for r in caplog.records)


async def test_without_a_ledger_there_is_no_forecast() -> None:
    raw = {"models": {"m": {"provider": "simulated"}}, "budgets": [{"name": "d", "limit_usd": 1}]}
    settings = load_settings({**raw, "ledger": {"enabled": False}}, env={})
    async with LLMManager(settings) as llm:
        with pytest.raises(ConfigError, match="ledger"):
            await llm.forecast()
