"""Budget forecasts on the gateway (``/admin/costs?forecast=1``, ``/metrics``) and in ``llm-manager costs --forecast``.

The figures themselves are checked in tests/costs/test_forecast.py; here: the same numbers reach each surface, and
bad parameters are 400s naming them.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml
from click.testing import CliRunner

from llm_manager.cli.main import cli
from llm_manager.config import load_settings
from llm_manager.costs import Ledger, LedgerRow
from llm_manager.manager import LLMManager
from llm_manager.store import open_database
from tests.helpers import instant
from tests.server.conftest import Gateway, start_gateway

NOW = datetime(2026, 11, 4, 12, 0, tzinfo=UTC)


def _rows(now: datetime) -> list[LedgerRow]:
    """$0.50 in each of the six hours before ``now`` (history from two days before): $3 spent, $0.50/h."""
    hours = [now - timedelta(days=2)] + [now - timedelta(hours=h, minutes=30) for h in range(6)]
    return [
        LedgerRow(
            ts=at,
            request_id=f"f{i}",
            attempt=1,
            deployment="gpt",
            provider="simulated",
            model="gpt",
            status="ok",
            cost=Decimal(0) if i == 0 else Decimal("0.5"),
            latency_ms=5.0,
            project="web",
        )
        for i, at in enumerate(hours)
    ]


def _config(tmp_path: Path, period: str = "daily") -> dict[str, Any]:
    return {
        "models": {"gpt": {"provider": "simulated", "family": "gpt", "simulate": instant()}},
        "store": {"url": f"sqlite:///{tmp_path}/forecast.db"},
        "budgets": [
            {"name": "daily", "period": period, "limit_usd": "8", "soft_limit_pct": None},
            {"name": "web", "scope": "project", "match": "web", "period": "daily", "limit_usd": "20"},
        ],
    }


@pytest.fixture
def forecasting(tmp_path: Path) -> Iterator[Gateway]:
    settings = load_settings(_config(tmp_path), env={})
    yield from start_gateway(settings, wall_clock=NOW.timestamp)


def test_admin_costs_adds_forecasts_and_metrics_export_them(forecasting: Gateway) -> None:
    async def write(llm: LLMManager) -> None:
        ledger = await llm._open_ledger()
        assert ledger is not None
        ledger.record(_rows(NOW))
        await ledger.flush()

    forecasting.run(write)
    plain = httpx.get(f"{forecasting.url}/admin/costs").json()
    assert "forecast" not in plain
    body = httpx.get(f"{forecasting.url}/admin/costs", params={"forecast": "1"}).json()
    daily, web = body["forecast"]
    assert (daily["budget"], daily["value"], daily["spent_usd"], daily["projected_usd"]) == (
        "daily",
        "*",
        "3.000000",
        "9.000000",
    )
    assert daily["over_limit"] and daily["runs_out_at"] == (NOW + timedelta(hours=10)).isoformat()
    assert daily["basis"]["method"] == "recent_rate" and daily["basis"]["rate_usd_per_h"] == "0.500000"
    assert (web["value"], web["over_limit"], web["runs_out_at"]) == ("web", False, None)
    wide = httpx.get(f"{forecasting.url}/admin/costs", params={"forecast": "true", "window_h": "12"}).json()
    assert wide["forecast"][0]["basis"]["window_h"] == 12 and wide["forecast"][0]["projected_usd"] == "6.000000"

    metrics = httpx.get(f"{forecasting.url}/metrics").text
    assert 'llm_manager_budget_forecast_usd{budget="daily:*"}' in metrics
    assert 'llm_manager_budget_runs_out_timestamp_seconds{budget="daily:*"}' in metrics
    assert 'llm_manager_budget_runs_out_timestamp_seconds{budget="web:web"}' not in metrics  # it does not run out


@pytest.mark.parametrize(
    ("params", "param"),
    [
        ({"forecast": "yes"}, "forecast"),
        ({"forecast": "1", "window_h": "0.5"}, "window_h"),
        ({"forecast": "1", "window_h": "nan"}, "window_h"),
        ({"forecast": "1", "window_h": "six"}, "window_h"),
    ],
)
def test_bad_forecast_parameters_are_400s_naming_them(forecasting: Gateway, params: dict[str, str], param: str) -> None:
    resp = httpx.get(f"{forecasting.url}/admin/costs", params=params)
    assert resp.status_code == 400 and resp.json()["error"]["param"] == param, resp.text


def test_the_openapi_document_describes_the_forecast(forecasting: Gateway) -> None:
    doc = httpx.get(f"{forecasting.url}/openapi.json").json()
    names = [p.get("name") for p in doc["paths"]["/admin/costs"]["get"]["parameters"]]
    assert "forecast" in names and "window_h" in names
    assert "runs_out_at" in doc["components"]["schemas"]["BudgetForecast"]["properties"]


def test_cli_costs_forecast(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("LLM_MANAGER_STORE_URL", raising=False)
    config = tmp_path / "llm-manager.yaml"
    # A total budget: what the rows add up to does not depend on the hour of the day the test runs at.
    config.write_text(yaml.safe_dump(_config(tmp_path, period="total")), encoding="utf-8")

    async def write() -> None:  # the CLI reads the clock: rows just before now
        db = await open_database(f"sqlite:///{tmp_path}/forecast.db")
        async with Ledger(db) as ledger:
            ledger.record(_rows(datetime.now(UTC)))
        await db.aclose()

    asyncio.run(write())

    runner = CliRunner()
    as_json = runner.invoke(cli, ["--config", str(config), "costs", "--forecast", "--json"], catch_exceptions=False)
    assert as_json.exit_code == 0, as_json.output
    daily = json.loads(as_json.stdout)[0]
    assert daily["budget"] == "daily" and daily["spent_usd"] == "3.000000"
    assert daily["basis"]["rate_usd_per_h"] == "0.500000"
    table = runner.invoke(cli, ["--config", str(config), "costs", "--forecast", "--window-h", "3"])
    assert table.exit_code == 0, table.output
    assert "budget forecast" in table.stdout and "daily" in table.stdout and "$3.00" in table.stdout
    bad = runner.invoke(cli, ["--config", str(config), "costs", "--forecast", "--window-h", "0"])
    assert bad.exit_code == 2 and "--window-h" in bad.output
