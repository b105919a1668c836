"""``llm-manager costs`` and ``llm-manager replay``: the spend ledger as tables, advice and what-ifs."""

from __future__ import annotations

import asyncio
import sys
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

import click

if TYPE_CHECKING:
    from llm_manager.manager import LLMManager

DIMENSIONS = ["model", "deployment", "provider", "user", "project", "key", "task"]


def _since(text: str | None) -> datetime | None:
    if text is None:
        return None
    from llm_manager.costs.ledger import parse_since

    try:
        return parse_since(text, datetime.now(UTC))
    except ValueError as exc:
        raise click.BadParameter(str(exc), param_hint="--since") from None


def _manager(obj: Any) -> LLMManager:
    manager: LLMManager = obj.manager(calls_model=False)  # reads the ledger: no SIMULATED warning
    return manager


@click.command()
@click.option("--by", type=click.Choice(DIMENSIONS), default="model", show_default=True, help="Group totals by.")
@click.option("--since", help="Period start: 7d, 24h, 30m, 2w, today, month, or an ISO date/time (UTC).")
@click.option("--recommend", is_flag=True, help="Evidence-based savings from the ledger instead of totals.")
@click.option("--dead-letters", is_flag=True, help="The rows the store refused (kept aside with the reason).")
@click.option(
    "--forecast", is_flag=True, help="Each budget's spend projected to its period's end, and when it runs out."
)
@click.option(
    "--window-h",
    type=click.FloatRange(1, 672),
    default=6.0,
    show_default=True,
    help="With --forecast: the hours of recent spend the rate is taken from.",
)
@click.option("--json", "as_json", is_flag=True, help="Print as JSON.")
@click.pass_obj
def costs(
    obj: Any,
    by: str,
    since: str | None,
    recommend: bool,
    dead_letters: bool,
    forecast: bool,
    window_h: float,
    as_json: bool,
) -> None:
    """Spend from the ledger (every provider call, priced): totals by model, user, project, key or task."""
    start = _since(since)
    if dead_letters:
        _dead_letters(obj, as_json)
        return
    if forecast:
        from llm_manager.cli.forecast_view import show_forecast

        show_forecast(lambda: _manager(obj), window_h, as_json)
        return

    async def go() -> tuple[Any, Any, list[dict[str, Any]]]:
        async with _manager(obj) as llm:
            ledger = await llm._open_ledger()
            if ledger is None:
                raise click.ClickException("the ledger is disabled (ledger.enabled: false)")
            if recommend:
                from llm_manager.costs.analysis import recommend as advise

                rows = await ledger.rows(since=start)
                cache = llm.settings.cache
                shared = llm.settings.state.redis_url is not None
                advice = advise(rows, cache_enabled=cache.enabled, cache_ttl_s=cache.ttl_s, shared_cache=shared)
                return advice, None, []
            totals = await ledger.totals(by, since=start)  # type: ignore[arg-type]
            return totals, await ledger.summary(since=start), (await llm.status())["budgets"]

    result, summary, budgets = asyncio.run(go())
    from llm_manager.cli.render import print_json

    if recommend:
        if as_json:
            print_json(
                [
                    {**r.__dict__, "savings_usd": str(r.savings_usd) if r.savings_usd is not None else None}
                    for r in result
                ]
            )
            return
        if not result:
            click.echo("no recommendation: the ledger shows no repeated prompts, cheaper equivalents or failures")
        for r in result:
            saving = f" — saves ${r.savings_usd:.6f}" if r.savings_usd else ""
            click.secho(f"* {r.title}{saving}", bold=True)
            click.echo(f"  {r.detail}")
        return
    if as_json:
        print_json(
            {
                "by": by,
                "since": start.isoformat() if start else None,
                "totals": result,
                "summary": summary,
                "budgets": budgets,
            }
        )
        return
    _table(by, result, summary, budgets)


def _dead_letters(obj: Any, as_json: bool) -> None:
    async def go() -> list[Any]:
        async with _manager(obj) as llm:
            ledger = await llm._open_ledger()
            if ledger is None:
                raise click.ClickException("the ledger is disabled (ledger.enabled: false)")
            return await ledger.dead_letters.recent()

    letters = asyncio.run(go())
    from llm_manager.cli.render import print_json

    if as_json:
        print_json(letters)
        return
    if not letters:
        click.echo("no dead letters: the store has accepted every ledger row")
    for d in letters:
        click.echo(f"{d.failed_at.isoformat()}  {d.request_id} #{d.attempt}: {d.reason}")


def _table(by: str, totals: Any, summary: Any, budgets: list[dict[str, Any]]) -> None:
    from llm_manager.cli.render import console, snug, table

    heads = ("requests", "calls", "errors", "tokens in", "tokens out", "cost (USD)", "unpriced")
    t = table(f"spend by {by}", by, *((h, "right") for h in heads))
    for row in [*totals, summary]:
        name = "(total)" if row is summary else (row.key or "(none)")
        t.add_row(
            name,
            str(row.requests),
            str(row.calls),
            str(row.errors),
            f"{row.prompt_tokens:,}",
            f"{row.completion_tokens:,}",
            f"{row.cost:.6f}",
            str(row.unpriced_calls or ""),
        )
    c = console()
    c.print(snug(t, c.width))
    for b in budgets:
        who = "" if b["value"] == "*" else f" {b['scope']}={b['value']}"
        c.print(
            f"  budget {b['budget']}{who} ({b['period']} {b['period_key']}): ${b['spent_usd']} of "
            f"${b['limit_usd']} = {b['used_pct']}%"
        )


@click.command()
@click.option(
    "--config",
    "other",
    required=True,
    type=click.Path(exists=True, dir_okay=False),
    help="The routing configuration to price the logged traffic under.",
)
@click.option("--since", help="Period start: 7d, 24h, today, month, or an ISO date/time (UTC).")
@click.option("--json", "as_json", is_flag=True, help="Print as JSON.")
@click.pass_obj
def replay(obj: Any, other: str, since: str | None, as_json: bool) -> None:
    """What the logged traffic would have cost under another configuration (no provider is called)."""
    from llm_manager.config import load_settings
    from llm_manager.costs.analysis import replay as reprice
    from llm_manager.errors import ConfigError

    start = _since(since)
    try:
        other_settings = load_settings(other)
    except ConfigError as exc:
        click.echo(exc.message, err=True)
        sys.exit(2)

    async def go() -> Any:
        async with _manager(obj) as llm:
            ledger = await llm._open_ledger()
            if ledger is None:
                raise click.ClickException("the ledger is disabled (ledger.enabled: false)")
            return reprice(await ledger.rows(since=start), other_settings)

    r = asyncio.run(go())
    if as_json:
        from llm_manager.cli.render import print_json

        print_json(r)
        return
    click.echo(f"{r.requests} answered requests{' since ' + start.isoformat() if start else ''}")
    click.echo(f"  actual cost:            ${r.actual_usd:.6f}")
    click.echo(
        f"  under {other}: ${r.estimated_usd:.6f} (range ${r.estimated_low_usd:.6f} – "
        f"${r.estimated_high_usd:.6f}, as answer lengths differ between models)"
    )
    if r.unpriced_requests:
        click.echo(f"  {r.unpriced_requests} requests would go to a model with no known price (not counted)")
    for task, t in sorted(r.by_task.items()):
        click.echo(
            f"  {task:<18} {t['requests']:>5} req  actual ${t['actual_usd']:.6f} → "
            f"${t['estimated_usd']:.6f} on {t['model']}"
        )
