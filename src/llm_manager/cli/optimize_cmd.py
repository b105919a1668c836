"""``llm-manager optimize``: shrink a prompt file to a token budget and print it."""

from __future__ import annotations

import sys
from typing import TextIO, cast

import click

__all__ = ["optimize"]


@click.command()
@click.argument("source", type=click.File("r", encoding="utf-8"), default="-")
@click.option(
    "--max-tokens",
    type=click.IntRange(min=1),
    help="Token budget: past it, the head and the tail are kept around a marker of what was cut.",
)
@click.option(
    "--keep-redundancy",
    is_flag=True,
    help="Keep repeated lines and sentences (whitespace is still tidied).",
)
@click.option(
    "--encoding",
    type=click.Choice(["o200k_base", "cl100k_base", "estimate"]),
    default="o200k_base",
    show_default=True,
    help="What counts tokens: OpenAI's current tokenizer, GPT-4's, or the ~4-characters estimate.",
)
@click.option("--json", "as_json", is_flag=True, help="Print the text and the counts as JSON.")
def optimize(source: TextIO, max_tokens: int | None, keep_redundancy: bool, encoding: str, as_json: bool) -> None:
    """Shrink the prompt in SOURCE (a file, or - for standard input) and print it on standard output.

    Whitespace is tidied, repeated lines and sentences dropped, and with --max-tokens a text still over budget keeps
    its beginning and end around a marker; code blocks and JSON are never cut inside. The token counts go to
    standard error. Exit 1 when the budget cannot be met (code and JSON alone are over it)."""
    from llm_manager.prompts import Encoding, PromptOptimizer

    text = source.read()
    chosen = cast("Encoding", encoding)  # click.Choice has checked it
    result = PromptOptimizer(chosen).optimize(text, max_tokens=max_tokens, remove_redundancy=not keep_redundancy)
    if as_json:
        from dataclasses import asdict

        from llm_manager.cli.render import print_json

        print_json(asdict(result))
    else:
        click.echo(result.text)
        summary = f"{result.tokens_before:,} → {result.tokens_after:,} tokens ({result.tokenizer})"
        if result.duplicates_removed:
            summary += f", {result.duplicates_removed} repeated lines/sentences dropped"
        if result.tokens_cut:
            summary += f", ~{result.tokens_cut:,} tokens cut from the middle"
        click.echo(summary, err=True)
    if not result.fits:
        click.echo(
            f"error: cannot fit {max_tokens} tokens: code blocks and JSON are never cut inside "
            f"(the least it came to is {result.tokens_after})",
            err=True,
        )
        sys.exit(1)
