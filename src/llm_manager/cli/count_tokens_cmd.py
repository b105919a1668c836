"""``llm-manager count-tokens``: how many input tokens a prompt is for the model that would answer it."""

from __future__ import annotations

import asyncio
import sys
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import click

from llm_manager.cli.calls import opened

if TYPE_CHECKING:
    from llm_manager.manager import LLMManager

__all__ = ["count_tokens"]


@click.command("count-tokens")
@click.argument("prompt")
@click.option("--model", "-m", help="Deployment name or alias (default: the head of the task's chain).")
@click.option("--task", "-t", default="general", show_default=True, help="Task type: picks the chain.")
@click.option("--system", "-s", help="System prompt (counted too).")
@click.option("--json", "as_json", is_flag=True, help="Print the count as JSON.")
@click.pass_obj
def count_tokens(obj: Any, prompt: str, model: str | None, task: str, system: str | None, as_json: bool) -> None:
    """Count the input tokens of PROMPT (- reads it from standard input).

    Counted by the provider where its API can (Anthropic, Gemini: free, nothing generated), else estimated; the
    output says which. Exit 2 for a bad model or task."""
    text = sys.stdin.read() if prompt == "-" else prompt
    asyncio.run(_run(obj.manager, text, {"model": model, "task": task, "system": system}, as_json=as_json))


async def _run(make: Callable[[], LLMManager], prompt: str, prefs: dict[str, Any], *, as_json: bool) -> None:
    async with opened(make, as_json=as_json) as llm:
        counted = await llm.count_tokens(prompt, **prefs)
    if as_json:
        from dataclasses import asdict

        from llm_manager.cli.render import print_json

        print_json(asdict(counted))
        return
    click.echo(counted.input_tokens)
    how = "counted by the provider" if counted.source == "provider" else "estimated (~4 characters a token)"
    click.secho(f"— {counted.deployment} ({counted.model}): {how}", err=True, dim=True)
