"""The gateway as an ASGI app factory, for servers that import the app themselves (``granian``, ``uvicorn
--workers``): ``bench.gateway_app:app`` with ``LLM_MANAGER_CONFIG`` set.

``llm-manager serve`` builds the manager inside its own serving loop before it listens. A server that forks
workers and runs each one's loop itself cannot be handed a manager, so here each worker builds its own on the ASGI
lifespan startup (inside that worker's loop) and closes it on shutdown. Used by ``bench.gateway`` to compare ASGI
servers and worker counts on the very same app.
"""

from __future__ import annotations

import os
from typing import Any

from llm_manager.manager import LLMManager
from llm_manager.server import create_app

Scope = dict[str, Any]


class _PerWorker:
    def __init__(self) -> None:
        self.llm: LLMManager | None = None
        self.inner: Any = None

    async def __call__(self, scope: Scope, receive: Any, send: Any) -> None:
        if scope["type"] != "lifespan":
            await self.inner(scope, receive, send)
            return
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                self.llm = LLMManager.from_config(os.environ["LLM_MANAGER_CONFIG"])
                self.inner = create_app(self.llm)
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                if self.llm is not None:
                    await self.llm.aclose()
                await send({"type": "lifespan.shutdown.complete"})
                return


def app() -> _PerWorker:
    """A fresh app per worker (``--factory``)."""
    return _PerWorker()
