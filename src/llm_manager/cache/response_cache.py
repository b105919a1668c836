"""Responses in the state backend's cache (bytes, TTL + LRU bound), and in-flight de-duplication."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any, Generic, TypeVar

from llm_manager.types import Response

if TYPE_CHECKING:
    from llm_manager.config import CacheConfig
    from llm_manager.state.base import StateBackend

__all__ = ["Inflight", "ResponseCache", "as_hit"]

T = TypeVar("T")
S = TypeVar("S")


class ResponseCache:
    """Get and put whole responses. A hit is a copy marked ``metadata.cached`` with the caller's request id."""

    def __init__(self, state: StateBackend, cfg: CacheConfig, clock: Callable[[], float] = time.time) -> None:
        self.state = state
        self.cfg = cfg
        self.clock = clock
        self._decoded: dict[str, tuple[bytes, Response]] = {}
        """Last decoded response per key: a hot entry is parsed once, not on every hit (checked byte for byte, so
        a value replaced in a shared Redis is decoded afresh)."""

    async def get(self, key: str, request_id: str) -> Response | None:
        raw = await self.state.cache_get(key, self.clock())
        if raw is None:
            return None
        memo = self._decoded.get(key)
        if memo is not None and (memo[0] is raw or memo[0] == raw):
            resp = memo[1]
        else:
            resp = Response.model_validate_json(raw)
            if len(self._decoded) >= self.cfg.max_entries:
                self._decoded.clear()
            self._decoded[key] = (raw, resp)
        return as_hit(resp, request_id)

    async def put(self, key: str, resp: Response) -> None:
        if resp.finish_reason not in ("stop", "length", None):
            return  # never cache a filtered or broken answer
        await self.state.cache_set(
            key, resp.model_dump_json().encode(), self.clock(), ttl_s=self.cfg.ttl_s, max_entries=self.cfg.max_entries
        )


def as_hit(resp: Response, request_id: str, **marks: Any) -> Response:
    """A cached response as the answer to ``request_id``: marked ``cached``, no latency, no attempts of its own."""
    meta = resp.metadata.model_copy(
        update={"request_id": request_id, "cached": True, "latency_ms": 0.0, "attempts": [], "retries": 0, **marks}
    )
    return resp.model_copy(update={"id": request_id, "metadata": meta})


class Inflight(Generic[T]):
    """Identical requests that arrive while one is in flight share its provider call (this process)."""

    def __init__(self) -> None:
        self._calls: dict[str, asyncio.Future[T]] = {}

    def __len__(self) -> int:
        return len(self._calls)

    async def run(self, key: str, call: Callable[[], Awaitable[T]]) -> tuple[T, bool]:
        """The response, and whether it was shared from another caller's call."""
        fut = self._calls.get(key)
        if fut is not None:
            try:
                return await asyncio.shield(fut), True
            except asyncio.CancelledError:
                if not fut.cancelled():
                    raise  # we were cancelled ourselves
                return await call(), False  # the leader was cancelled (its caller left): make our own call
        fut = asyncio.get_running_loop().create_future()
        self._calls[key] = fut
        try:
            resp = await call()
        except asyncio.CancelledError:
            fut.cancel()
            raise
        except BaseException as exc:
            fut.set_exception(exc)
            fut.exception()  # mark retrieved: followers re-raise it; nobody else must log it as lost
            raise
        else:
            fut.set_result(resp)
            return resp, False
        finally:
            del self._calls[key]

    async def once(self, key: str, request_id: str, call: Callable[[], Awaitable[tuple[T, S]]]) -> tuple[T, S | None]:
        """``call()``: an answer and the bookkeeping it owes. When an identical call is already in flight, its answer
        instead: a copy under ``request_id``, marked ``deduplicated``, owing no bookkeeping of a call (``None``)."""
        owed: list[S] = []

        async def lead() -> T:
            answer, settle = await call()
            owed.append(settle)
            return answer

        answer, shared = await self.run(key, lead)
        if not shared:
            return answer, owed[0]
        copy: Any = answer
        meta = copy.metadata.model_copy(update={"request_id": request_id, "deduplicated": True})
        return copy.model_copy(update={"id": request_id, "metadata": meta}), None
