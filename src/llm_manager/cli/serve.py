"""``llm-manager serve``: run the OpenAI-compatible gateway with uvicorn.

SIGTERM / SIGINT drain it: the listener closes (new connections are refused), ``/health/ready`` answers 503, in-flight
requests and streams run on for up to the drain timeout, then the rest are cut (a stream ends with an error event),
and only then is the manager closed, flushing the ledger. The process exits 0. A second signal cuts at once.
"""

from __future__ import annotations

import asyncio
import contextlib
import math
import signal
import sys
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any, Protocol

import click

from llm_manager.errors import ConfigError

if TYPE_CHECKING:
    from llm_manager.config import GatewayConfig
    from llm_manager.manager import LLMManager

__all__ = ["serve"]


class _ManagerFactory(Protocol):
    # The group's context object (cli.main._Ctx), described structurally: importing it would be circular.
    def manager(self, *, calls_model: bool = True) -> LLMManager: ...


@click.command()
@click.option("--host", default="127.0.0.1", show_default=True, help="Interface to listen on.")
@click.option("--port", default=4000, show_default=True, type=click.IntRange(0, 65535), help="TCP port.")
@click.option(
    "--drain-timeout",
    type=click.FloatRange(min=0),
    default=None,
    help="Seconds in-flight requests may run on after SIGTERM / SIGINT [default: gateway.drain_timeout_s, 30].",
)
@click.option(
    "--loop",
    type=click.Choice(["auto", "uvloop", "asyncio"]),
    default="auto",
    show_default=True,
    help="Event loop. auto: uvloop when installed (measured faster: docs/speed.md).",
)
@click.option(
    "--http",
    "http_parser",
    type=click.Choice(["auto", "httptools", "h11"]),
    default="auto",
    show_default=True,
    help="uvicorn's HTTP/1.1 parser. auto: httptools when installed.",
)
@click.option(
    "--warmup",
    is_flag=True,
    help="Before listening, open a connection to every model's endpoint (and send the one-token requests of "
    "models with `warmup: request`); print what each took.",
)
@click.pass_obj
def serve(
    obj: _ManagerFactory,
    host: str,
    port: int,
    drain_timeout: float | None,
    loop: str,
    http_parser: str,
    warmup: bool,
) -> None:
    """Serve the gateway: /v1/chat/completions, /v1/messages, /v1/models, health, /metrics, /admin/*, /ui."""
    try:
        with _runner(loop) as runner:
            runner.run(_serve(obj, host, port, drain_timeout, http_parser, warmup))
    except ConfigError as exc:
        click.echo(f"error: {exc}", err=True)
        sys.exit(2)


# After the cut, what is left gets this long to end before uvicorn cancels it (a client that stopped reading).
_CUT_GRACE_S = 5


def _runner(loop: str) -> asyncio.Runner:
    """The serving loop: uvloop unless asked otherwise (uvicorn's own ``loop`` setting only applies to the loop
    uvicorn creates itself, and this loop is ours: the manager must be built inside it)."""
    if loop != "asyncio":
        try:
            import uvloop
        except ImportError:
            if loop == "uvloop":
                raise click.UsageError("--loop uvloop: uvloop is not installed") from None
        else:
            return asyncio.Runner(loop_factory=uvloop.new_event_loop)
    return asyncio.Runner()


_GC_GEN0_THRESHOLD = 50_000


def _freeze_startup_objects() -> None:
    """Tune the garbage collector for serving: everything built so far (modules, config, the app) lives as long as
    the process, so it is moved out of the collector's reach (rescanning it in every full collection costs the
    request path; measured: docs/speed.md), and young objects are collected in larger batches."""
    import gc

    gc.collect()
    gc.freeze()
    # A request allocates a few hundred short-lived containers, nearly all freed by reference counting; with the
    # default first-generation threshold (700) the collector still ran every few requests and cost ~15 us per call
    # (measured in-process), against none with this one. Cycles are still collected, just in larger batches.
    gc.set_threshold(_GC_GEN0_THRESHOLD, 20, 100)


def http_protocol(http_parser: str, limits: GatewayConfig | None = None) -> Any:
    """What uvicorn's ``http`` setting gets for ``--http``: with httptools, our protocol that writes a response's
    head together with its first body bytes (``server/http_protocol.py``); with ``limits``, guarded by their header and
    body clocks and per-client connection cap (``server/connections.py``: uvicorn has neither)."""
    base: Any = None
    if http_parser != "h11":
        try:
            from llm_manager.server.http_protocol import JoinedHttpToolsProtocol
        except ImportError:  # httptools is missing
            if http_parser == "httptools":
                raise click.UsageError("--http httptools: httptools is not installed") from None
        else:
            base = JoinedHttpToolsProtocol
    if base is None:
        from uvicorn.protocols.http.h11_impl import H11Protocol

        base = H11Protocol
    if limits is None:
        return base
    from llm_manager.server.connections import guarded

    return guarded(
        base,
        header_timeout_s=limits.header_timeout_s,
        body_timeout_s=limits.body_timeout_s,
        max_connections_per_client=limits.max_connections_per_client,
    )


async def _serve(
    obj: _ManagerFactory, host: str, port: int, drain_timeout: float | None, http_parser: str, warmup: bool = False
) -> None:
    import uvicorn

    from llm_manager.server import create_app
    from llm_manager.server.lifecycle import Lifecycle

    class Server(uvicorn.Server):
        @contextlib.contextmanager
        def capture_signals(self) -> Iterator[None]:
            # The signals are ours (below): uvicorn's handler would re-raise them once it has stopped, killing the
            # process before the manager is closed and the ledger flushed.
            yield

    # Built inside the serving loop: the manager's connections and locks belong to the loop that uses them.
    llm = obj.manager()
    try:
        if warmup:
            from llm_manager.cli.warmup_view import warmup_line

            for result in await llm.warmup():
                click.echo(warmup_line(result), err=True)
        app = create_app(llm)
        life: Lifecycle = app.state.lifecycle
        _freeze_startup_objects()
        drain_s = llm.settings.gateway.drain_timeout_s if drain_timeout is None else drain_timeout
        config = uvicorn.Config(
            app,
            host=host,
            port=port,
            log_level="warning",
            log_config=None,  # uvicorn's records go to the CLI's handler, which masks secrets, not to its own
            lifespan="off",
            http=http_protocol(http_parser, llm.settings.gateway),
            access_log=False,  # never shown at log level warning, yet uvicorn would format its fields per request
            proxy_headers=False,  # nothing here reads the client's address: no X-Forwarded-For rewriting per request
            timeout_graceful_shutdown=math.ceil(drain_s + _CUT_GRACE_S),
        )
        server = Server(config)
        serving = asyncio.ensure_future(server.serve())
        drains: list[asyncio.Task[None]] = []

        def stop(sig: signal.Signals) -> None:
            if drains:  # a second signal: no more waiting
                life.cut_all()
                return
            click.echo(f"{sig.name}: draining (up to {drain_s:g}s), then stopping", err=True)
            server.should_exit = True  # uvicorn closes the listener and waits for in-flight requests
            drains.append(asyncio.ensure_future(life.drain(serving, drain_s)))

        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, stop, sig)
        click.echo(f"llm-manager gateway on http://{host}:{port}/v1", err=True)
        try:
            await serving
        finally:
            for sig in (signal.SIGTERM, signal.SIGINT):
                loop.remove_signal_handler(sig)
            for task in drains:
                task.cancel()
    finally:
        await llm.aclose()  # flushes the ledger and telemetry, closes provider connections
