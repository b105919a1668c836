"""``llm-manager keys``: create, list and revoke the gateway's API keys (kept hashed in the store)."""

from __future__ import annotations

import asyncio
import sys
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any, TypeVar

import click

from llm_manager.errors import ConfigError

if TYPE_CHECKING:
    from llm_manager.manager import LLMManager
    from llm_manager.store import Database

__all__ = ["keys_group"]

T = TypeVar("T")


def _with_db(obj: Any, fn: Callable[[Database], Awaitable[T]]) -> T:
    """Run ``fn`` over the configured store's database (``store.url`` or ``$LLM_MANAGER_STORE_URL``)."""

    async def go() -> T:
        llm: LLMManager = obj.manager(calls_model=False)  # gateway keys: no model is called
        async with llm:
            return await fn(await llm.database())

    try:
        return asyncio.run(go())
    except ConfigError as exc:
        click.echo(f"error: {exc}", err=True)
        sys.exit(2)


@click.group("keys")
def keys_group() -> None:
    """Gateway API keys. While at least one key is active, the gateway's /v1 routes require one."""


@keys_group.command("create")
@click.argument("name")
@click.option("--model", "-m", "models", multiple=True, help="A model the key may use (repeat); default: all.")
@click.option("--rpm", type=click.IntRange(min=1), help="Requests per minute the key may make; default: unlimited.")
@click.option("--tpm", type=click.IntRange(min=1), help="Tokens per minute (prompt + answer); default: unlimited.")
@click.option("--budget-usd", help="What the key may spend per --budget-period (USD); default: no budget of its own.")
@click.option(
    "--budget-period",
    type=click.Choice(["daily", "weekly", "monthly", "total"]),
    default="monthly",
    show_default=True,
    help="The UTC calendar period of --budget-usd (total: never resets).",
)
@click.option("--admin", is_flag=True, help="Mark the key as an admin key.")
@click.pass_obj
def create(
    obj: Any,
    name: str,
    models: tuple[str, ...],
    rpm: int | None,
    tpm: int | None,
    budget_usd: str | None,
    budget_period: str,
    admin: bool,
) -> None:
    """Create a key named NAME and print its secret (shown this once only)."""
    from llm_manager.server.keys import create_key

    if not name.strip():
        raise click.BadParameter("the name must not be empty", param_hint="NAME")
    options: dict[str, Any] = {"models": models or None, "rpm": rpm, "tpm": tpm, "admin": admin}
    options.update(budget_usd=budget_usd, budget_period=budget_period)
    try:
        key_id, secret = _with_db(obj, lambda db: create_key(db, name, **options))
    except ValueError as exc:
        raise click.BadParameter(str(exc)) from None
    click.echo(f"created key {key_id} ({name})", err=True)
    click.echo(secret)
    click.echo("Store this secret now: it cannot be shown again.", err=True)


@keys_group.command("list")
@click.option("--json", "as_json", is_flag=True, help="Print as JSON.")
@click.pass_obj
def list_(obj: Any, as_json: bool) -> None:
    """Every key (ids, names, dates, limits); never a secret."""
    from llm_manager.server.keys import list_keys

    found = _with_db(obj, list_keys)
    if as_json:
        from llm_manager.cli.render import print_json

        print_json([k.as_dict() for k in found])
        return
    if not found:
        click.echo("no keys: the gateway is open to anyone who can reach it")
        return
    rows = [["ID", "NAME", "CREATED", "REVOKED", "MODELS", "RPM", "TPM", "BUDGET", "ADMIN"]]
    for k in found:
        rows.append(
            [
                k.id,
                k.name,
                k.created_at.strftime("%Y-%m-%d %H:%M"),
                k.revoked_at.strftime("%Y-%m-%d %H:%M") if k.revoked_at else "-",
                ",".join(k.models) if k.models is not None else "all",
                str(k.rpm) if k.rpm is not None else "-",
                str(k.tpm) if k.tpm is not None else "-",
                f"${k.budget_usd} {k.budget_period}" if k.budget_usd is not None else "-",
                "yes" if k.admin else "no",
            ]
        )
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    for r in rows:
        click.echo("  ".join(cell.ljust(w) for cell, w in zip(r, widths, strict=True)).rstrip())


@keys_group.command("revoke")
@click.argument("key_id", metavar="ID")
@click.pass_obj
def revoke(obj: Any, key_id: str) -> None:
    """Revoke the key ID for good (running gateways refuse it within about a second)."""
    from llm_manager.server.keys import revoke_key

    if not _with_db(obj, lambda db: revoke_key(db, key_id)):
        click.echo(f"error: no active key {key_id!r}", err=True)
        sys.exit(1)
    click.echo(f"revoked {key_id}")
