"""How ``health --warmup`` and ``serve --warmup`` show what warming each deployment took."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from llm_manager.warmup import WarmupResult

__all__ = ["warmup_line", "warmup_table"]


def _ms(value: float | None) -> str:
    return "-" if value is None else f"{value:.1f} ms"


def _what(r: WarmupResult) -> str:
    if r.mode == "off":
        return "off"
    if r.origin is None:
        return "in process"
    return "reused" if r.reused else "opened"


def warmup_line(r: WarmupResult) -> str:
    """One plain line per deployment (``serve`` prints these to stderr before it listens)."""
    if not r.ok:
        return f"warm-up {r.name}: FAILED {r.error_code}: {r.error}"
    line = f"warm-up {r.name}: {_what(r)}"
    if r.origin is not None:
        line += f" {r.origin} (dns {_ms(r.dns_ms)}, tcp+tls {_ms(r.connect_ms)}, total {_ms(r.connection_ms)})"
    if r.request_ms is not None:
        line += f"; one-token request {_ms(r.request_ms)}"
    return line


def warmup_table(results: Sequence[WarmupResult]) -> None:
    """The warm-up table of ``health --warmup``."""
    from rich.markup import escape

    from llm_manager.cli.render import console, snug, table

    t = table(
        "warm-up (connections left open for the next requests)",
        "model",
        "origin",
        "connection",
        "dns",
        "tcp+tls",
        "total",
        "1-token request",
        "error",
    )
    for r in results:
        t.add_row(
            r.name + (" \\[simulated]" if r.simulated else ""),
            r.origin or "-",
            _what(r) if r.ok else f"[red]{r.error_code}[/red]",
            _ms(r.dns_ms),
            _ms(r.connect_ms),
            _ms(r.connection_ms),
            _ms(r.request_ms),
            escape((r.error or "")[:80]),
        )
    c = console()
    c.print(snug(t, c.width))
