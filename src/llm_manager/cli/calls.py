"""What the commands that call a model share: the manager opened for one call, its error reported with an exit
code (2: configuration, 1: the call failed), and a stream printed as it arrives."""

from __future__ import annotations

import sys
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from typing import TYPE_CHECKING

import click

from llm_manager.errors import ConfigError, LLMManagerError

if TYPE_CHECKING:
    from llm_manager import ResponseStream
    from llm_manager.manager import LLMManager
    from llm_manager.types import Response

__all__ = ["echo_stream", "opened", "report_error"]


@asynccontextmanager
async def opened(make: Callable[[], LLMManager], *, as_json: bool) -> AsyncIterator[LLMManager]:
    """The manager, closed afterwards. A configuration problem met on opening, or our error raised inside, is
    printed (as JSON with ``as_json``) and ends the command with its exit code."""
    try:
        llm = make()
    except ConfigError as exc:
        click.echo(f"error: {exc.message}", err=True)
        raise click.exceptions.Exit(2) from None
    async with llm:
        try:
            yield llm
        except LLMManagerError as exc:
            report_error(exc, as_json)
            raise click.exceptions.Exit(2 if isinstance(exc, ConfigError) else 1) from None


def report_error(exc: LLMManagerError, as_json: bool) -> None:
    """The error and each attempt behind it on stderr, or ``{"error": …}`` on stdout for ``--json``."""
    if as_json:
        from llm_manager import _json

        click.echo(_json.dumps({"error": exc.to_dict()}).decode())
        return
    click.echo(f"error [{exc.code}]: {exc.message}", err=True)
    for a in exc.attempts:
        what = "skipped" if a.skipped else (a.error_code or "ok")
        click.echo(f"  - {a.deployment}: {what}{' — ' + a.error if a.error else ''}", err=True)


async def echo_stream(s: ResponseStream) -> Response | None:
    """Print the stream's text as it arrives, then a newline; its response once it has ended."""
    async with s:
        async for event in s:
            if event.delta:
                sys.stdout.write(event.delta)
                sys.stdout.flush()
    sys.stdout.write("\n")
    return s.response
