"""Shared state (circuit breakers, rate-limit buckets, response cache): in this process or in Redis.

:func:`make_state` picks the backend from configuration; both implement :class:`StateBackend` with identical
semantics (see :mod:`llm_manager.state.base`).
"""

from __future__ import annotations

from typing import Literal

from llm_manager.state.base import (
    BreakerPolicy,
    BreakerState,
    BreakerVerdict,
    BreakerView,
    StateBackend,
    StateHealth,
)
from llm_manager.state.memory import MemoryState

__all__ = [
    "BreakerPolicy",
    "BreakerState",
    "BreakerVerdict",
    "BreakerView",
    "MemoryState",
    "StateBackend",
    "StateHealth",
    "make_state",
]


def make_state(
    redis_url: str | None,
    prefix: str = "llm-manager",
    *,
    on_unavailable: Literal["fail_closed", "fail_open"] = "fail_closed",
    timeout_s: float = 1.0,
    heartbeat_s: float = 1.0,
) -> StateBackend:
    """In-process state when ``redis_url`` is ``None``, else state shared through Redis under ``prefix``, each
    operation bounded by ``timeout_s`` and the ``on_unavailable`` policy applied while Redis does not answer
    (:mod:`llm_manager.state.guarded`; the ``state:`` section of the config sets all of these).

    Connecting is lazy (the first operation connects); a missing ``redis`` package raises
    :class:`~llm_manager.errors.ConfigError`.
    """
    if redis_url is None:
        return MemoryState()
    # Imported here so that processes without Redis never load the module (nor the redis package).
    from llm_manager.state.guarded import GuardedState
    from llm_manager.state.redis import RedisState

    return GuardedState(
        RedisState.from_url(redis_url, prefix=prefix),
        policy=on_unavailable,
        timeout_s=timeout_s,
        heartbeat_s=heartbeat_s,
    )
