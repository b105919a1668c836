"""Cheap deadlines for the request path: :func:`deadline` is ``asyncio.timeout`` at a fraction of the cost, and
:class:`idle_timeout` a stream's idle timeout at a fraction of a deadline per chunk.

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

__all__ = ["RESOLUTION_S", "Deadline", "arm", "deadline", "idle_timeout"]

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


class idle_timeout:  # lower case: used like deadline()
    """``async with idle_timeout(seconds) as idle:`` around a relay loop that calls :meth:`waiting` before each wait
    for the next piece and :meth:`resumed` after it: the body is cancelled, and :class:`TimeoutError` raised, once
    one wait has lasted ``seconds``. Time spent between waits (the consumer writing to its client) never counts.

    One wheel entry per loop rather than one :func:`deadline` per wait: a wait only notes the time, and the entry
    is re-armed for the rest when it fires early (a stream's chunks cost ~0.3 us each here instead of ~3 us)."""

    __slots__ = ("_cancelling", "_delay", "_entry", "_expired", "_loop", "_since", "_task")

    def __init__(self, delay: float) -> None:
        self._delay = delay
        self._entry: Deadline | None = None
        self._since: float | None = None
        self._expired = False

    async def __aenter__(self) -> idle_timeout:
        task = asyncio.current_task()
        if task is None:
            raise RuntimeError("idle_timeout() must be used inside a task")
        self._task = task
        self._cancelling = task.cancelling()
        self._loop = asyncio.get_running_loop()
        return self

    def waiting(self) -> None:
        """A wait for the next piece begins."""
        self._since = now = self._loop.time()
        if self._entry is None:
            self._entry = _wheel(self._loop).arm(now + self._delay, self._check)

    def resumed(self) -> None:
        """The wait ended (a piece came, or the stream ended)."""
        self._since = None

    def _check(self) -> None:
        self._entry = None
        since = self._since
        if since is None:
            return  # not waiting: the next wait arms it again
        due = since + self._delay
        if self._loop.time() >= due:
            self._expired = True
            self._task.cancel()
        else:
            self._entry = _wheel(self._loop).arm(due, self._check)

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        if self._entry is not None:
            self._entry.disarm()
            self._entry = None
        if self._expired and self._task.uncancel() <= self._cancelling and exc_type is asyncio.CancelledError:
            raise TimeoutError from exc
