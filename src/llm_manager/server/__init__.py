"""The gateway: an OpenAI-compatible HTTP API over :class:`~llm_manager.manager.LLMManager` (Starlette, ASGI).

``create_app(llm)`` returns the ASGI app; ``llm-manager serve`` runs it with uvicorn.
"""

from __future__ import annotations

from llm_manager.server.app import DEFAULT_MAX_BODY_BYTES, create_app

__all__ = ["DEFAULT_MAX_BODY_BYTES", "create_app"]
