"""Markdown output: tables, number formats, the environment header of a run, and the run history."""

from __future__ import annotations

import datetime as dt
import os
import platform
import subprocess
from collections.abc import Sequence
from importlib import metadata
from pathlib import Path

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


HISTORY = Path(__file__).resolve().parent / "RESULTS.md"


def revision() -> str:
    """The code revision measured: the commit, marked ``+dirty`` when the work tree has uncommitted changes."""
    root = Path(__file__).resolve().parents[1]
    try:
        rev = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=root, capture_output=True, text=True)
        dirty = subprocess.run(["git", "status", "--porcelain", "--", "src"], cwd=root, capture_output=True, text=True)
    except OSError:
        return "unknown"
    return (rev.stdout.strip() or "unknown") + ("+dirty" if dirty.stdout.strip() else "")


def cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown CPU"


def append_history(kind: str, body: str, path: Path = HISTORY) -> None:
    """Append one run to the history (newest last): date, machine, code revision, then the run's own report.

    Runs are kept, never rewritten, so a number quoted anywhere can be traced to the run that produced it."""
    when = dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M UTC")
    head = (
        f"## {when} — {kind}\n\n- Machine: {cpu_model()}, {os.cpu_count()} CPUs; Python {platform.python_version()}\n"
    )
    head += f"- Code: {revision()}\n"
    # The run's own headings move two levels down, under this run's heading.
    nested = "\n".join("#" + line if line.startswith("#") else line for line in body.strip().splitlines())
    with path.open("a", encoding="utf-8") as out:
        out.write("\n" + head + "\n" + nested + "\n")
