"""Shared state (circuit breakers, rate-limit buckets, response cache): in this process or in Redis.

:func:`make_state` picks the backend from configuration; both implement :class:`StateBackend` with identical
semantics (see :mod:`llm_manager.state.base`).
"""

from __future__ import annotations

from llm_manager.state.base import BreakerPolicy, BreakerState, BreakerVerdict, BreakerView, StateBackend
from llm_manager.state.memory import MemoryState

__all__ = [
    "BreakerPolicy",
    "BreakerState",
    "BreakerVerdict",
    "BreakerView",
    "MemoryState",
    "StateBackend",
    "make_state",
]


def make_state(redis_url: str | None, prefix: str = "llm-manager") -> StateBackend:
    """In-process state when ``redis_url`` is ``None``, else state shared through Redis under ``prefix``.

    Connecting is lazy (the first operation connects); a missing ``redis`` package raises
    :class:`~llm_manager.errors.ConfigError`.
    """
    if redis_url is None:
        return MemoryState()
    # Imported here so that processes without Redis never load the module (nor the redis package).
    from llm_manager.state.redis import RedisState

    return RedisState.from_url(redis_url, prefix=prefix)
