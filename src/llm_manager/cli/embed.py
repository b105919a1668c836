"""``llm-manager embed``: vectors for one or more texts, routed among the embedding models."""

from __future__ import annotations

import asyncio
import sys
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import click

from llm_manager.cli.calls import opened
from llm_manager.embedding import INPUT_TYPES

if TYPE_CHECKING:
    from llm_manager.embedding import EmbeddingResponse
    from llm_manager.manager import LLMManager

__all__ = ["embed"]

_SHOWN = 4
"""Values of each vector printed in the plain output (the rest: --json)."""


@click.command()
@click.argument("texts", nargs=-1, required=True)
@click.option("--model", "-m", help="Embedding model (deployment name or alias); others of its size stay as fallback.")
@click.option("--task", "-t", default="embedding", show_default=True, help="A task routing embedding models.")
@click.option("--dimensions", "-d", type=click.IntRange(min=1), help="Vector size wanted (models that can shorten).")
@click.option("--input-type", type=click.Choice(INPUT_TYPES), help="What the vectors are for (query, document …).")
@click.option("--no-fallback", is_flag=True, help="With --model: fail instead of falling back.")
@click.option("--no-cache", is_flag=True, help="Neither read nor fill the cache.")
@click.option(
    "--timeout", "timeout_s", type=click.FloatRange(min=0, min_open=True), help="Overall deadline in seconds."
)
@click.option("--json", "as_json", is_flag=True, help="Print the whole response, every vector in full, as JSON.")
@click.pass_obj
def embed(
    obj: Any,
    texts: tuple[str, ...],
    model: str | None,
    task: str,
    dimensions: int | None,
    input_type: str | None,
    no_fallback: bool,
    no_cache: bool,
    timeout_s: float | None,
    as_json: bool,
) -> None:
    """Embed TEXTS (one vector each). A single - reads the texts from standard input, one per line.

    Prints each vector's size and first values (all of them with --json), and a summary on standard error."""
    given = [line for line in sys.stdin.read().splitlines() if line.strip()] if texts == ("-",) else list(texts)
    prefs: dict[str, Any] = {
        "model": model,
        "task": task,
        "dimensions": dimensions,
        "input_type": input_type,
        "timeout_s": timeout_s,
    }
    if no_fallback:
        prefs["fallback"] = False
    if no_cache:
        prefs["cache"] = False
    asyncio.run(_run(obj.manager, given, prefs, as_json=as_json))


async def _run(make: Callable[[], LLMManager], texts: list[str], prefs: dict[str, Any], *, as_json: bool) -> None:
    async with opened(make, as_json=as_json) as llm:
        resp = await llm.embed(texts, **prefs)
    if as_json:
        click.echo(resp.model_dump_json())  # one line: vectors are long, and the output is for programs
        return
    for i, (text, vector) in enumerate(zip(texts, resp.vectors, strict=True)):
        head = ", ".join(f"{v:.4f}" for v in vector[:_SHOWN])
        more = ", …" if len(vector) > _SHOWN else ""
        preview = text if len(text) <= 40 else text[:39] + "…"
        click.echo(f"[{i}] {len(vector)} dims  [{head}{more}]  {preview!r}")
    _summary(resp)


def _summary(resp: EmbeddingResponse) -> None:
    u = resp.usage
    parts = [
        f"{resp.deployment} ({resp.provider}/{resp.model})",
        f"{u.prompt_tokens} tokens{' (estimated)' if u.estimated else ''}",
        f"${u.cost:.8f}" if u.cost is not None else "cost unknown",
        "cached" if resp.metadata.cached else f"{resp.metadata.latency_ms:.0f} ms",
    ]
    if resp.dropped_params:
        parts.append(f"not honoured: {', '.join(resp.dropped_params)}")
    if resp.metadata.simulated:
        parts.append("SIMULATED (offline model; configure a provider for real vectors)")
    click.secho("— " + " · ".join(parts), err=True, dim=True)
