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
    """Pretty JSON on stdout."""
    import click

    from llm_manager import _json

    click.echo(_json.dumps(data).decode())


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
            m.family or "-",
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


def health_table(results: Sequence[HealthResult]) -> None:
    """The ``health`` table."""
    from rich.markup import escape
    from rich.table import Table

    t = Table(title="health")
    for col in ("model", "provider", "status", "latency", "error"):
        t.add_column(col)
    for r in results:
        status = "[green]ok[/green]" if r.ok else f"[red]{r.error_code}[/red]"
        t.add_row(
            r.name + (" \\[simulated]" if r.simulated else ""),
            r.provider,
            status,
            f"{r.latency_ms:.1f} ms",
            escape((r.error or "")[:80]),
        )
    console().print(t)
