"""``llm-manager serve``: run the OpenAI-compatible gateway with uvicorn."""

from __future__ import annotations

import asyncio
import sys
from typing import TYPE_CHECKING, Protocol

import click

from llm_manager.errors import ConfigError

if TYPE_CHECKING:
    from llm_manager.manager import LLMManager

__all__ = ["serve"]


class _ManagerFactory(Protocol):
    # The group's context object (cli.main._Ctx), described structurally: importing it would be circular.
    def manager(self) -> LLMManager: ...


@click.command()
@click.option("--host", default="127.0.0.1", show_default=True, help="Interface to listen on.")
@click.option("--port", default=4000, show_default=True, type=click.IntRange(0, 65535), help="TCP port.")
@click.pass_obj
def serve(obj: _ManagerFactory, host: str, port: int) -> None:
    """Serve the OpenAI-compatible API (/v1/chat/completions, /v1/models, /health, /metrics)."""
    try:
        asyncio.run(_serve(obj, host, port))
    except ConfigError as exc:
        click.echo(f"error: {exc}", err=True)
        sys.exit(2)


async def _serve(obj: _ManagerFactory, host: str, port: int) -> None:
    import uvicorn

    from llm_manager.server import create_app

    # Built inside the serving loop: the manager's connections and locks belong to the loop that uses them.
    llm = obj.manager()
    try:
        config = uvicorn.Config(create_app(llm), host=host, port=port, log_level="warning", lifespan="off")
        server = uvicorn.Server(config)
        click.echo(f"llm-manager gateway on http://{host}:{port}/v1", err=True)
        # uvicorn handles SIGINT / SIGTERM itself: it stops accepting, lets in-flight requests finish, returns.
        await server.serve()
    finally:
        await llm.aclose()  # flushes the ledger and telemetry, closes provider connections
