"""Tables and JSON for the CLI (rich is imported only here, only when a table is printed)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from rich.console import Console

    from llm_manager.config import Settings
    from llm_manager.manager import HealthResult, ModelInfo


def console(stderr: bool = False) -> Console:
    """A rich console (no colour when not a terminal)."""
    from rich.console import Console

    return Console(stderr=stderr, highlight=False)


def print_json(data: Any) -> None:
    """Pretty JSON on stdout, secrets masked (status, health and error details quote upstream text)."""
    import click

    from llm_manager import _json
    from llm_manager._redact import redact

    click.echo(redact(_json.dumps(data).decode()))


def models_table(infos: Sequence[ModelInfo], settings: Settings) -> None:
    """The ``models`` table plus the routing chain of each task."""
    from rich.table import Table

    t = Table(title=f"models ({settings.source}; strategy: {settings.routing.strategy})")
    for col in ("name", "provider", "model", "family", "context", "$/Mtok in/out", "keys", "primary for"):
        t.add_column(col)
    for m in infos:
        price = (
            f"{m.input_price_per_mtok}/{m.output_price_per_mtok}"
            if m.input_price_per_mtok is not None and m.output_price_per_mtok is not None
            else "unknown"
        )
        t.add_row(
            m.name + (" \\[simulated]" if m.simulated else ""),
            m.provider,
            m.model,
            f"embedding ({m.dimensions})" if m.kind == "embedding" else m.family or "-",
            f"{m.context_window:,}",
            price,
            str(m.keys),
            " ".join(t.removesuffix("#1") for t in m.tasks if t.endswith("#1")) or "-",
        )
    c = console()
    c.print(t)
    from llm_manager.types import TASK_TYPES

    for task in TASK_TYPES:
        c.print(f"  {task:<18} → {' → '.join(settings.chain(task)) or '(no models)'}")
    if settings.chain("embedding"):
        c.print(f"  {'embedding':<18} → {' → '.join(settings.chain('embedding'))}")


def health_table(results: Sequence[HealthResult], status: dict[str, Any]) -> None:
    """The ``health`` table: probe result, circuit breakers (worst key) and key-pool health."""
    from rich.markup import escape
    from rich.table import Table

    t = Table(title=f"health (state: {status['state']})")
    for col in ("model", "provider", "probe", "latency", "breaker", "keys", "error"):
        t.add_column(col)
    for r in results:
        d = status["deployments"][r.name]
        probe = "[green]ok[/green]" if r.ok else f"[red]{r.error_code}[/red]"
        t.add_row(
            r.name + (" \\[simulated]" if r.simulated else ""),
            r.provider,
            probe,
            f"{r.latency_ms:.1f} ms",
            _breaker_cell(d["breakers"]),
            _keys_cell(d["keys"]),
            escape((r.error or "")[:80]),
        )
    console().print(t)


def _breaker_cell(breakers: dict[str, dict[str, Any]]) -> str:
    rank = {"open": 0, "half_open": 1, "closed": 2}
    worst = min(breakers.values(), key=lambda b: rank[b["state"]])
    if worst["state"] == "open":
        return f"[red]open[/red] ({worst['cooldown_left_s']:.0f}s left)"
    return "[yellow]half-open[/yellow]" if worst["state"] == "half_open" else "[green]closed[/green]"


def _keys_cell(keys: list[dict[str, Any]]) -> str:
    if not keys:
        return "-"
    ok = sum(k["state"] == "ok" for k in keys)
    bad = ", ".join(f"{k['key']} {k['state']}" for k in keys if k["state"] != "ok")
    return f"{ok}/{len(keys)} ok" + (f" ({bad})" if bad else "")
