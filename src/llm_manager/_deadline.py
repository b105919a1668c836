"""Cheap deadlines for the request path: :func:`deadline` is ``asyncio.timeout`` at a fraction of the cost.

Every attempt has a timeout, every streamed chunk an idle timeout and every gateway request a deadline. Measured
under uvloop, ``asyncio.timeout`` costs ~12 us per use and arming plus cancelling a loop timer ~7 us, because each
is a timer of the event loop. Here, all of a loop's deadlines share one loop timer (:class:`_Wheel`): arming one is
a heap push, disarming it clears a slot, and the shared timer is re-armed only when an earlier deadline comes in.
The price is precision: a deadline fires up to :data:`RESOLUTION_S` late. They bound waits of seconds.
"""

from __future__ import annotations

import asyncio
import heapq
import math
from collections.abc import Callable
from types import TracebackType

__all__ = ["RESOLUTION_S", "Deadline", "arm", "deadline"]

RESOLUTION_S = 0.005
"""How late a deadline may fire: the shared timer is set on a grid this fine, so deadlines close together share
one wake-up."""

_COMPACT_AT = 4096
"""Disarmed entries are left in the heap (removing one is O(n)); past this many, and half the heap, it is rebuilt."""


class Deadline:
    """One armed deadline; :meth:`disarm` stops it (cheap, idempotent)."""

    __slots__ = ("callback", "wheel", "when")

    def __init__(self, wheel: _Wheel, when: float, callback: Callable[[], object]) -> None:
        self.wheel = wheel
        self.when = when
        self.callback: Callable[[], object] | None = callback

    def __lt__(self, other: Deadline) -> bool:
        return self.when < other.when

    def disarm(self) -> None:
        if self.callback is not None:
            self.callback = None
            self.wheel.dead += 1


class _Wheel:
    """One event loop's deadlines: a heap, and one loop timer at the earliest of them."""

    __slots__ = ("dead", "heap", "loop", "timer", "timer_at")

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self.loop = loop
        self.heap: list[Deadline] = []
        self.dead = 0
        self.timer: asyncio.TimerHandle | None = None
        self.timer_at = math.inf

    def arm(self, when: float, callback: Callable[[], object]) -> Deadline:
        entry = Deadline(self, when, callback)
        heapq.heappush(self.heap, entry)
        if when < self.timer_at:
            self._schedule(when)
        return entry

    def _schedule(self, when: float) -> None:
        if self.timer is not None:
            self.timer.cancel()
        at = math.ceil(when / RESOLUTION_S) * RESOLUTION_S
        self.timer_at = at
        self.timer = self.loop.call_at(at, self._tick)

    def _tick(self) -> None:
        self.timer, self.timer_at = None, math.inf
        heap = self.heap
        now = self.loop.time()
        due: list[Callable[[], object]] = []
        while heap and heap[0].when <= now:
            entry = heapq.heappop(heap)
            if entry.callback is None:
                self.dead -= 1
            else:
                due.append(entry.callback)
                entry.callback = None
        if self.dead > _COMPACT_AT and self.dead * 2 > len(heap):
            self.heap = heap = [e for e in heap if e.callback is not None]
            heapq.heapify(heap)
            self.dead = 0
        if heap:
            self._schedule(heap[0].when)
        for callback in due:  # after the heap is consistent: a callback may arm a new deadline
            callback()


_wheels: dict[asyncio.AbstractEventLoop, _Wheel] = {}


def _wheel(loop: asyncio.AbstractEventLoop) -> _Wheel:
    wheel = _wheels.get(loop)
    if wheel is None:
        for old in [lp for lp in list(_wheels) if lp.is_closed()]:  # loops come and go (tests, the sync facade)
            _wheels.pop(old, None)
        wheel = _wheels[loop] = _Wheel(loop)
    return wheel


def arm(when: float, callback: Callable[[], object]) -> Deadline:
    """Call ``callback`` at loop time ``when`` (up to :data:`RESOLUTION_S` later) unless disarmed first."""
    return _wheel(asyncio.get_running_loop()).arm(when, callback)


class deadline:  # lower case: used like asyncio.timeout, which it replaces
    """``async with deadline(seconds):`` — the body is cancelled once ``seconds`` have passed, and
    :class:`TimeoutError` raised from the ``async with``; ``None`` means no deadline (like ``asyncio.timeout``)."""

    __slots__ = ("_cancelling", "_delay", "_entry", "_expired", "_task")

    def __init__(self, delay: float | None) -> None:
        self._delay = delay
        self._entry: Deadline | None = None
        self._expired = False

    async def __aenter__(self) -> deadline:
        if self._delay is not None:
            task = asyncio.current_task()
            if task is None:
                raise RuntimeError("deadline() must be used inside a task")
            self._task = task
            self._cancelling = task.cancelling()
            loop = asyncio.get_running_loop()
            self._entry = _wheel(loop).arm(loop.time() + self._delay, self._expire)
        return self

    def _expire(self) -> None:
        self._expired = True
        self._task.cancel()

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        if self._entry is not None:
            self._entry.disarm()
        if self._expired and self._task.uncancel() <= self._cancelling and exc_type is asyncio.CancelledError:
            raise TimeoutError from exc

    @property
    def expired(self) -> bool:
        """Whether the deadline passed (and cancelled the body)."""
        return self._expired
