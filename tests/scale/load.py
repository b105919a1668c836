"""A small client-side load balancer for the scale tests and the soak: round-robin over live replicas.

A replica whose connection is refused or breaks is marked dead and skipped from then on, as a load balancer's
health check would; the request that met the failure is reported (``status == 0``) and not retried, so a test
can count exactly what a ``kill -9`` cost the callers in flight on that replica.
"""

from __future__ import annotations

import asyncio
import itertools
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import httpx


@dataclass(slots=True)
class Result:
    replica: int
    status: int
    """HTTP status; 0 when the connection failed (the replica died under the request)."""
    request_id: str | None
    at: float
    """``time.monotonic()`` when the answer (or the failure) arrived."""
    headers: dict[str, str] = field(default_factory=dict)
    body: Any = None
    took: float = 0.0
    """Seconds from sending the request to its answer."""


class Balancer:
    """Round-robin over ``urls``; ``dead`` replicas are skipped."""

    def __init__(self, urls: Sequence[str], *, timeout_s: float = 30.0) -> None:
        self.urls = list(urls)
        self.dead: set[int] = set()
        self._next = itertools.cycle(range(len(self.urls)))
        self._client = httpx.AsyncClient(timeout=timeout_s, limits=httpx.Limits(max_connections=256))

    async def __aenter__(self) -> Balancer:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self._client.aclose()

    def pick(self) -> int:
        for _ in range(len(self.urls)):
            i = next(self._next)
            if i not in self.dead:
                return i
        raise RuntimeError("every replica is dead")

    async def post(
        self, path: str, body: dict[str, Any], *, replica: int | None = None, headers: dict[str, str] | None = None
    ) -> Result:
        i = self.pick() if replica is None else replica
        t0 = time.monotonic()
        try:
            r = await self._client.post(self.urls[i] + path, json=body, headers=headers)
        except (httpx.TransportError, httpx.RemoteProtocolError):
            self.dead.add(i)
            return Result(i, 0, None, time.monotonic())
        try:
            payload = r.json()
        except ValueError:
            payload = r.text
        now = time.monotonic()
        return Result(i, r.status_code, r.headers.get("x-request-id"), now, dict(r.headers), payload, now - t0)

    async def many(
        self,
        bodies: Sequence[dict[str, Any]],
        *,
        concurrency: int = 16,
        path: str = "/v1/chat/completions",
        headers: dict[str, str] | None = None,
    ) -> list[Result]:
        """Send every body (round-robin over live replicas), at most ``concurrency`` at once."""
        gate = asyncio.Semaphore(concurrency)

        async def one(body: dict[str, Any]) -> Result:
            async with gate:
                return await self.post(path, body, headers=headers)

        return list(await asyncio.gather(*(one(b) for b in bodies)))

    async def get(self, replica: int, path: str) -> httpx.Response:
        return await self._client.get(self.urls[replica] + path)
