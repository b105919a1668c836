"""A live gateway for tests: uvicorn on 127.0.0.1 (ephemeral port) in a background thread.

The manager is built inside the server's own thread and event loop, as ``llm-manager serve`` does: its locks and
connections belong to the loop that uses them.
"""

from __future__ import annotations

import asyncio
import os
import socket
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from starlette.applications import Starlette

from llm_manager.config import Settings
from llm_manager.manager import LLMManager
from llm_manager.providers.simulated import SimulatedAdapter
from tests.helpers import sim_settings

MODELS: dict[str, dict[str, Any]] = {
    "claude": {"family": "claude", "context_window": 200_000, "aliases": ["smart"]},
    "gpt": {"family": "gpt", "context_window": 128_000, "aliases": ["fast"]},
    "emb": {"kind": "embedding", "dimensions": 8, "aliases": ["vectors"]},
}


@dataclass
class Gateway:
    """A running gateway: its base URL and the manager behind it (to script simulated outcomes)."""

    url: str
    llm: LLMManager
    loop: asyncio.AbstractEventLoop
    app: Starlette

    def script(self, name: str, *outcomes: str) -> None:
        """Queue outcomes (``429:30``, ``500``, ``cut:2`` …) for deployment ``name``'s next calls."""
        adapter = self.llm.adapter(name)
        assert isinstance(adapter, SimulatedAdapter)

        async def push() -> None:  # on the server's loop, which owns the adapter, and done before we return
            adapter.push(*outcomes)

        asyncio.run_coroutine_threadsafe(push(), self.loop).result(timeout=10)

    def run(self, fn: Callable[[LLMManager], Any]) -> Any:
        """Await ``fn(llm)`` on the server's loop and return its result."""
        return asyncio.run_coroutine_threadsafe(fn(self.llm), self.loop).result(timeout=10)


def start_gateway(settings: Settings, *, http: str = "auto", **manager_kw: Any) -> Iterator[Gateway]:
    """Serve ``settings`` until the generator is closed, with ``serve``'s HTTP protocol for ``--http`` ``http``;
    ``manager_kw`` go to :class:`LLMManager` (clocks …)."""
    import uvicorn

    from llm_manager.cli.serve import http_protocol
    from llm_manager.server import create_app

    # proto=IPPROTO_TCP, not the default 0: asyncio sets TCP_NODELAY only on sockets that say they are TCP, and
    # without it every response waits ~40 ms for a delayed ACK (headers and body are written separately).
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    ready = threading.Event()
    holder: dict[str, Any] = {}

    async def main() -> None:
        llm = LLMManager(settings, **manager_kw)
        app = create_app(llm)
        # The HTTP protocol ``serve`` runs (with its connection guards), so that every gateway test goes through it.
        protocol = http_protocol(http, settings.gateway)
        config = uvicorn.Config(app, log_level="warning", lifespan="off", http=protocol)
        server = uvicorn.Server(config)
        holder.update(llm=llm, app=app, server=server, loop=asyncio.get_running_loop())
        try:
            task = asyncio.create_task(server.serve(sockets=[sock]))
            while not server.started and not task.done():
                await asyncio.sleep(0.005)
            ready.set()
            await task
        finally:
            await llm.aclose()
            ready.set()

    thread = threading.Thread(target=asyncio.run, args=(main(),), daemon=True)
    thread.start()
    assert ready.wait(10), "gateway did not start"
    server = holder["server"]
    assert server.started, "gateway failed to start"
    try:
        yield Gateway(f"http://127.0.0.1:{port}", holder["llm"], holder["loop"], holder["app"])
    finally:
        server.should_exit = True
        thread.join(10)
        sock.close()


@pytest.fixture
def gateway() -> Iterator[Gateway]:
    """Two instant simulated models; retries quick and a 429's Retry-After above the cap moves on at once."""
    settings = sim_settings(
        {k: dict(v) for k, v in MODELS.items()},
        max_retries=0,
        retry_after_cap_s=0.01,
        queue_timeout_s=0,
    )
    yield from start_gateway(settings)


@pytest.fixture
def cached_gateway() -> Iterator[Gateway]:
    """Like :func:`gateway`, with the response cache on."""
    yield from start_gateway(sim_settings({k: dict(v) for k, v in MODELS.items()}, cache={"enabled": True}))


CHROMIUM = Path("/usr/bin/chromium")


@pytest.fixture(scope="module")
def chromium() -> Iterator[Any]:
    """Debian's Chromium, headless, shared by a module's browser tests (starting it takes seconds)."""
    if not CHROMIUM.exists():
        msg = f"{CHROMIUM} is missing: `make test` installs it (or: apt-get install chromium)"
        if os.environ.get("CI") == "true":
            pytest.fail(msg)
        pytest.skip(msg)
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        # --no-sandbox: the tests run as root, where Chromium's sandbox refuses to start.
        browser = pw.chromium.launch(executable_path=str(CHROMIUM), args=["--no-sandbox"])
        yield browser
        browser.close()
