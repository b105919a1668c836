"""Waiting for rate-limit room, high priority first.

When every candidate is at its limit, requests queue here. Only the head of the queue (highest priority, then
earliest) retries admission; the others wait their turn, and a new request does not overtake anyone queued at
its own priority or above. Ordering is per process; with a shared Redis the budget itself is still exact.
"""

from __future__ import annotations

import asyncio
import heapq
import itertools

from llm_manager.types import Priority

__all__ = ["PriorityGate", "Waiter"]

_RANK: dict[str, int] = {"high": 0, "medium": 1, "low": 2}


class Waiter:
    """A place in the queue."""

    __slots__ = ("fut", "rank", "seq")

    def __init__(self, rank: int, seq: int) -> None:
        self.rank = rank
        self.seq = seq
        self.fut: asyncio.Future[None] = asyncio.get_running_loop().create_future()

    def __lt__(self, other: Waiter) -> bool:
        return (self.rank, self.seq) < (other.rank, other.seq)


class PriorityGate:
    """A priority queue of waiting requests."""

    def __init__(self) -> None:
        self._heap: list[Waiter] = []
        self._seq = itertools.count()

    def __len__(self) -> int:
        return len(self._heap)

    def must_queue(self, priority: Priority) -> bool:
        """Whether a newcomer has to queue behind someone of its own priority or higher."""
        return bool(self._heap) and self._heap[0].rank <= _RANK[priority]

    def enter(self, priority: Priority) -> Waiter:
        """Join the queue."""
        w = Waiter(_RANK[priority], next(self._seq))
        heapq.heappush(self._heap, w)
        self._wake_head()
        return w

    async def turn(self, w: Waiter) -> None:
        """Return once ``w`` is at the head of the queue (a higher-priority arrival sends it back to waiting)."""
        while self._heap and self._heap[0] is not w:
            if w.fut.done():
                w.fut = asyncio.get_running_loop().create_future()
            await w.fut

    def leave(self, w: Waiter) -> None:
        """Leave the queue (admitted, or given up) and let the next head go."""
        try:
            self._heap.remove(w)
        except ValueError:
            return
        heapq.heapify(self._heap)
        self._wake_head()

    def _wake_head(self) -> None:
        if self._heap and not self._heap[0].fut.done():
            self._heap[0].fut.set_result(None)
