"""Where semantic cache entries live: this process only, or a Redis log every replica follows.

Redis 7.0 has no vector search here (no search module, no pgvector either), so Redis only keeps the entries and
each replica searches its own :class:`~llm_manager.cache.semantic_index.LocalIndex`, kept in sync incrementally:

* ``P:sc:log`` — a stream, one entry per cached answer: ``s`` scope, ``t`` prompt, ``v`` unit vector (float32
  bytes, little-endian), ``r`` the response (JSON bytes), ``e`` expiry time. Trimmed to ``max_entries`` on every
  add (oldest first, as the local index evicts), and expiring with its newest entry.
* ``P:sc:gen`` — a generation number, bumped by :meth:`RedisLog.clear`.

Before each lookup a replica reads, in one round trip, the generation and the stream entries after the last one
it has seen (``XRANGE (last +``); a new generation means "start again from the beginning". A replica that starts
late reads the whole (bounded) stream once. An entry written by one replica can answer on every replica from their
next lookup on.
"""

from __future__ import annotations

import asyncio
import logging
import sys
from typing import Any

import numpy as np

from llm_manager.cache.semantic_index import Entry, LocalIndex

__all__ = ["MemoryLog", "RedisLog"]

log = logging.getLogger("llm_manager.cache")

_PAGE = 500
_LE = np.dtype("<f4")


class MemoryLog:
    """Entries of this process only."""

    shared = False
    errors: tuple[type[BaseException], ...] = ()

    def __init__(self, index: LocalIndex) -> None:
        self.index = index
        self._next = 0

    async def sync(self, now: float) -> None:  # noqa: ARG002 - nothing to follow
        return None

    async def add(self, scope: str, text: str, vector: np.ndarray, value: bytes, expires: float, ttl_s: float) -> None:  # noqa: ARG002
        self._next += 1
        self.index.add(Entry(str(self._next), scope, text, vector, value, expires))

    async def clear(self) -> None:
        self.index.clear()

    async def aclose(self) -> None:
        return None


class RedisLog:
    """Entries in a Redis stream, mirrored into this replica's index."""

    shared = True

    def __init__(self, index: LocalIndex, url: str, prefix: str, timeout_s: float) -> None:
        try:
            import redis.asyncio as redis
            from redis.exceptions import ConnectionError as RedisConnectionError
            from redis.exceptions import ResponseError
            from redis.exceptions import TimeoutError as RedisTimeoutError
        except ImportError:
            from llm_manager.errors import ConfigError

            raise ConfigError(
                "state.redis_url is set, but the redis package is not installed. Fix: pip install 'llm-manager[redis]'"
            ) from None
        self.errors: tuple[type[BaseException], ...] = (RedisConnectionError, RedisTimeoutError, ResponseError, OSError)
        self.index = index
        self._client: Any = redis.Redis.from_url(url, socket_timeout=timeout_s, socket_connect_timeout=timeout_s)
        self._log = f"{prefix}:sc:log"
        self._gen = f"{prefix}:sc:gen"
        self._last = "0-0"
        self._generation: bytes | None = None
        self._lock = asyncio.Lock()
        self._syncs = 0

    async def sync(self, now: float) -> None:
        """Bring the index up to date. Concurrent lookups share one read: a caller that had to wait for another's
        sync uses its result (one round trip for a burst of requests, and the read position only moves forward)."""
        seen = self._syncs
        async with self._lock:
            if self._syncs == seen:
                await self._pull(now)
                self._syncs += 1

    async def _pull(self, now: float) -> None:
        while True:
            pipe = self._client.pipeline(transaction=False)
            pipe.get(self._gen)
            pipe.xrange(self._log, min=f"({self._last}", max="+", count=_PAGE)
            generation, rows = await pipe.execute()
            if generation != self._generation:
                # Cleared (or first contact): forget what we had and read the log from its start.
                self.index.clear()
                self._generation, self._last = generation, "0-0"
                continue
            for entry_id, fields in rows:
                self._last = entry_id.decode()
                entry = _decode(self._last, fields)
                if entry is not None and entry.expires > now:
                    self.index.add(entry)
            if len(rows) < _PAGE:
                return

    async def add(self, scope: str, text: str, vector: np.ndarray, value: bytes, expires: float, ttl_s: float) -> None:
        fields = {"s": scope, "t": text, "v": vector.astype(_LE).tobytes(), "r": value, "e": repr(expires)}
        pipe = self._client.pipeline(transaction=False)
        pipe.xadd(self._log, fields, maxlen=self.index.max_entries, approximate=False)
        pipe.pexpire(self._log, max(1, int(ttl_s * 1000)))
        entry_id, _ = await pipe.execute()
        # Ours is in the index at once; the next sync skips it (it is there already).
        self.index.add(Entry(entry_id.decode(), scope, text, vector, value, expires))

    async def clear(self) -> None:
        pipe = self._client.pipeline(transaction=True)
        pipe.incr(self._gen)
        pipe.delete(self._log)
        await pipe.execute()
        self.index.clear()

    async def aclose(self) -> None:
        await self._client.aclose()


def _decode(entry_id: str, fields: dict[bytes, bytes]) -> Entry | None:
    """The entry, or ``None`` for one that is not ours (another version's, a damaged one)."""
    try:
        vector = np.frombuffer(fields[b"v"], dtype=_LE)
        if sys.byteorder != "little":
            vector = vector.astype(np.float32)
        return Entry(
            entry_id,
            fields[b"s"].decode(),
            fields[b"t"].decode(),
            vector,
            fields[b"r"],
            float(fields[b"e"]),
        )
    except (KeyError, ValueError, UnicodeDecodeError):
        log.warning("semantic cache: skipped an unreadable log entry %s", entry_id)
        return None
