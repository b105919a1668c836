"""Markdown output: tables, number formats and the environment header of RESULTS.md."""

from __future__ import annotations

import datetime as dt
import os
import platform
from collections.abc import Sequence
from importlib import metadata

PACKAGES = ("llm-manager", "aiohttp", "httpx", "pyreqwest", "orjson", "openai", "litellm")


def table(headers: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    """A GitHub-flavoured Markdown table; the first column left-aligned, the numbers right-aligned."""
    align = [":---"] + ["---:"] * (len(headers) - 1)
    lines = [_row(headers), _row(align)] + [_row(r) for r in rows]
    return "\n".join(lines)


def _row(cells: Sequence[str]) -> str:
    return "| " + " | ".join(cells) + " |"


def ms(value: float | None, digits: int = 3) -> str:
    return "–" if value is None else f"{value:.{digits}f}"


def signed_ms(value: float | None) -> str:
    return "–" if value is None else f"{value:+.3f}"


def seconds(value: float | None) -> str:
    return "–" if value is None else f"{value:.3f}"


def ratio(value: float | None) -> str:
    return "–" if value is None else f"{value:.1f}×"


def _version(package: str) -> str:
    try:
        return metadata.version(package)
    except metadata.PackageNotFoundError:
        return "not installed"


def environment() -> str:
    """Date, interpreter, machine and library versions: the numbers mean nothing without them."""
    cpus = os.cpu_count()
    usable = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else cpus
    versions = ", ".join(f"{p} {_version(p)}" for p in PACKAGES)
    return "\n".join(
        [
            f"- Date: {dt.datetime.now(dt.UTC).strftime('%Y-%m-%d %H:%M UTC')}",
            f"- Python: {platform.python_implementation()} {platform.python_version()} on {platform.platform()}",
            f"- CPUs: {cpus} (usable by this process: {usable})",
            f"- Packages: {versions}",
            "- Event loop: the default asyncio loop (no uvloop) for the clients and the upstream",
        ]
    )
