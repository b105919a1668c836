"""``llm-manager costs --forecast``: each budget's projected spend, its basis, and when it runs out."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from decimal import Decimal
from typing import TYPE_CHECKING

import click

if TYPE_CHECKING:
    from llm_manager.costs.forecast import Forecast
    from llm_manager.manager import LLMManager

__all__ = ["show_forecast"]


def show_forecast(make: Callable[[], LLMManager], window_h: float, as_json: bool) -> None:
    """Print the forecasts of the budgets of the manager ``make()`` builds (a table, or JSON); exits 1 when the
    ledger is disabled."""
    from llm_manager.errors import ConfigError

    async def go() -> list[Forecast]:
        async with make() as llm:  # built in the loop that uses it
            return await llm.forecast(window_h=window_h)

    try:
        forecasts = asyncio.run(go())
    except ConfigError as exc:
        raise click.ClickException(str(exc)) from None
    if as_json:
        from llm_manager.cli.render import print_json

        print_json([f.as_dict() for f in forecasts])
        return
    if not forecasts:
        click.echo("no budgets configured: nothing to forecast (see `budgets:` in the configuration)")
        return
    _table(forecasts)


def _table(forecasts: list[Forecast]) -> None:
    from rich.table import Table

    from llm_manager.cli.render import console

    t = Table(title="budget forecast (from the ledger; --json for exact figures)")
    for col in ("budget", "until", "spent", "projected", "limit", "%", "runs out (UTC)", "basis"):
        t.add_column(col, justify="right" if col in ("spent", "projected", "limit", "%") else "left")
    for f in forecasts:
        who = f.budget if f.value == "*" else f"{f.budget} {f.scope}={f.value}"
        until = f"+{(f.period_end - f.at).days}d" if f.horizon else f.period_end.strftime("%m-%d %H:%M")
        pct = f"{f.projected_usd / f.limit_usd * 100:.0f}"
        t.add_row(
            who,
            until,
            _money(f.spent_usd),
            _money(f.projected_usd),
            _money(f.limit_usd),
            f"[red]{pct}[/red]" if f.over else pct,
            f.runs_out_at.strftime("%m-%d %H:%M") if f.runs_out_at else "-",
            _basis(f),
        )
    console().print(t)


def _money(usd: Decimal) -> str:
    return f"${usd:.2f}" if abs(usd) >= 1 else f"${usd:.4f}"


def _basis(f: Forecast) -> str:
    """``rate 6h $0.50/h`` or ``weekday 3wk`` (the projection's basis; both bases' figures are in --json)."""
    b = f.basis
    if b.method == "day_of_week":
        return f"weekday {b.weeks}wk"
    return f"rate {b.window_h:g}h {_money(b.rate_usd_per_h)}/h"
