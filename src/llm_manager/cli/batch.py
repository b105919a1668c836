"""``llm-manager batch``: many requests from a JSONL file, with bounded concurrency and a progress bar.

Each input line is a JSON object of :class:`~llm_manager.types.Request` fields (``prompt`` or ``messages``, plus
``task``, ``model``, ``max_tokens`` …) and may carry an ``id`` to match answers to questions. Each output line is
``{"id", "ok", "response"}`` or ``{"id", "ok": false, "error"}``, in input order.
"""

from __future__ import annotations

import asyncio
import sys
from typing import IO, TYPE_CHECKING, Any

import click

if TYPE_CHECKING:
    from llm_manager.manager import LLMManager


@click.command()
@click.argument("input_file", type=click.File("r"))
@click.option("--output", "-o", type=click.File("w"), default="-", help="Where to write results (default stdout).")
@click.option(
    "--concurrency", "-j", type=click.IntRange(1, 256), default=8, show_default=True, help="Requests in flight at once."
)
@click.option("--task", "-t", help="Default task for lines that name none.")
@click.pass_obj
def batch(obj: Any, input_file: IO[str], output: IO[str], concurrency: int, task: str | None) -> None:
    """Run every request of a JSONL file (one JSON object per line) and write one JSON result per line."""
    from llm_manager import _json

    items: list[tuple[str, dict[str, Any]]] = []
    for n, line in enumerate(input_file, 1):
        if not line.strip():
            continue
        try:
            data = _json.loads(line)
        except ValueError as exc:
            raise click.BadParameter(f"line {n} is not JSON: {exc}", param_hint="INPUT_FILE") from None
        if not isinstance(data, dict):
            raise click.BadParameter(f"line {n} must be a JSON object", param_hint="INPUT_FILE")
        ident = str(data.pop("id", n))
        if task and "task" not in data:
            data["task"] = task
        items.append((ident, data))
    llm: LLMManager = obj.manager()
    results = asyncio.run(_run(llm, items, concurrency))
    for line in results:
        output.write(line + "\n")
    failed = sum(1 for line in results if '"ok":false' in line)
    click.secho(f"— {len(results) - failed} ok, {failed} failed", err=True, dim=True)
    if failed:
        sys.exit(1)


async def _run(llm: LLMManager, items: list[tuple[str, dict[str, Any]]], concurrency: int) -> list[str]:
    from rich.progress import Progress

    from llm_manager import _json
    from llm_manager.errors import LLMManagerError

    gate = asyncio.Semaphore(concurrency)
    out: list[str] = [""] * len(items)

    async with llm:
        with Progress(transient=True, console=_stderr_console()) as progress:
            bar = progress.add_task("requests", total=len(items))

            async def one(i: int, ident: str, fields: dict[str, Any]) -> None:
                async with gate:
                    try:
                        resp = await llm.generate(llm.request(**fields))
                        out[i] = _json.dumps(
                            {"id": ident, "ok": True, "response": resp.model_dump(mode="json")}
                        ).decode()
                    except LLMManagerError as exc:
                        out[i] = _json.dumps({"id": ident, "ok": False, "error": exc.to_dict()}).decode()
                    progress.advance(bar)

            await asyncio.gather(*(one(i, ident, f) for i, (ident, f) in enumerate(items)))
    return out


def _stderr_console() -> Any:
    from rich.console import Console

    return Console(stderr=True)
