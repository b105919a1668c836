"""Tables and JSON for the CLI (rich is imported only here, only when a table is printed)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from rich.console import Console
    from rich.table import Table

    from llm_manager.config import Settings
    from llm_manager.manager import HealthResult, ModelInfo


def console(stderr: bool = False) -> Console:
    """A rich console (no colour when not a terminal)."""
    from rich.console import Console

    return Console(stderr=stderr, highlight=False)


def table(title: str, *columns: str | tuple[str, str]) -> Table:
    """A table whose cells wrap, and fold a word too long for its column, instead of cutting it with "…": at 80
    columns a name, a price or an error code must still be read whole. A column is a header, or (header, justify)."""
    from rich.table import Table

    t = Table(title=title)
    for col in columns:
        header, justify = col if isinstance(col, tuple) else (col, "left")
        t.add_column(header, justify=justify, overflow="fold")  # type: ignore[arg-type]
    return t


def _tokens(n: int) -> str:
    """A context window in few characters: 8.2k, 200k, 1M."""
    if n >= 1_000_000:
        return f"{n / 1_000_000:.3g}M"
    return f"{n / 1000:.3g}k" if n >= 1000 else str(n)


def snug(t: Table, width: int) -> Table:
    """When ``t`` is wider than ``width``, cap each column at its longest word, so that the columns with room to
    spare give it up (rich shares the shortfall evenly otherwise, folding a name while a short column keeps blank
    space). Nothing is cut either way: cells wrap, and fold a word longer than its column."""
    from rich.text import Text

    cells = [[Text.from_markup(c) if isinstance(c, str) else c for c in col.cells] for col in t.columns]
    heads = [Text.from_markup(str(col.header)) for col in t.columns]
    natural = sum(
        max((len(line) for x in [h, *cs] for line in str(x).splitlines()), default=0)
        for h, cs in zip(heads, cells, strict=True)
    )
    if natural + 3 * len(t.columns) + 1 <= width:
        return t
    for column, head, texts in zip(t.columns, heads, cells, strict=True):
        words = [w for x in [head, *texts] for w in str(x).split()]
        column.max_width = max((len(w) for w in words), default=None)
    return t


def print_json(data: Any) -> None:
    """Pretty JSON on stdout, secrets masked (status, health and error details quote upstream text)."""
    import click

    from llm_manager import _json
    from llm_manager._redact import redact

    click.echo(redact(_json.dumps(data).decode()))


def models_table(infos: Sequence[ModelInfo], settings: Settings) -> None:
    """The ``models`` table plus the routing chain of each task. Six columns that fit 80: the provider and the
    wire model share one (the model only when it differs from the name), prices are two lines, in and out, and
    the number of keys is left to ``health`` and ``status``."""
    t = table(
        f"models ({settings.source}; strategy: {settings.routing.strategy})",
        "name",
        "provider / model",
        "family",
        ("context", "right"),
        ("$/Mtok in, out", "right"),
        "primary for",
    )
    for m in infos:
        price = (
            f"{m.input_price_per_mtok}\n{m.output_price_per_mtok}"
            if m.input_price_per_mtok is not None and m.output_price_per_mtok is not None
            else "unknown"
        )
        t.add_row(
            m.name,
            m.provider + (f"\n{m.model}" if m.model != m.name else ""),
            f"embedding ({m.dimensions})" if m.kind == "embedding" else m.family or "-",
            _tokens(m.context_window),
            price,
            "\n".join(t.removesuffix("#1") for t in m.tasks if t.endswith("#1")) or "-",
        )
    c = console()
    c.print(snug(t, c.width))
    for task in settings.task_names():
        chain = settings.chain(task)
        if chain or task != "embedding":
            c.print(f"  {task:<18} → {' → '.join(chain) or '(no models)'}")


def health_table(results: Sequence[HealthResult], status: dict[str, Any]) -> None:
    """The ``health`` table: probe result, circuit breakers (worst key) and key-pool health."""
    from rich.markup import escape

    t = table(f"health (state: {status['state']})", "model", "provider", "probe", "latency", "breaker", "keys", "error")
    for r in results:
        d = status["deployments"][r.name]
        probe = "[green]ok[/green]" if r.ok else f"[red]{r.error_code}[/red]"
        t.add_row(
            r.name,
            r.provider,
            probe,
            f"{r.latency_ms:.1f} ms",
            _breaker_cell(d["breakers"]),
            _keys_cell(d["keys"]),
            escape((r.error or "")[:80]),
        )
    c = console()
    c.print(snug(t, c.width))


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
