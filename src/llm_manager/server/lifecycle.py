"""How in-flight gateway work ends early: a request's deadline, and the drain when the gateway shuts down.

A :class:`Guard` watches one wait of the current task — a whole answer being generated, or a stream's next event —
and can *cut* it: cancel the task while it waits, keeping the reason, so the wait raises :class:`Cut` (an ordinary
exception the handler turns into a 504 / 503 or a stream's error event) instead of the connection just dropping.
Cancelling the one task that waits costs nothing per chunk, where racing every chunk against a shutdown event
would cost a task and a wait each.

:meth:`Lifecycle.drain` is the shutdown: ``/health/ready`` answers 503 from its start, in-flight work runs on up
to the drain timeout, then whatever is left is cut (a stream ends with an error event, never a clean end marker).
"""

from __future__ import annotations

import asyncio
import math
from collections.abc import Awaitable, Mapping
from typing import TypeVar

from llm_manager._deadline import arm
from llm_manager.errors import AllCandidatesFailedError, ProviderTimeoutError
from llm_manager.server.errors import ErrorReply, gateway_error

__all__ = ["TIMEOUT_HEADER", "BadTimeout", "Cut", "Guard", "Lifecycle", "request_timeout"]

T = TypeVar("T")

TIMEOUT_HEADER = "x-llm-timeout"
"""The request header a client sets its deadline with, in seconds."""
BACKSTOP_GRACE_S = 0.25
"""The gateway's own timer on a whole answer fires this long after its deadline: the manager enforces the deadline
itself (and records the attempts), the timer only ends waits the manager does not bound (a queue turn, a store)."""


class BadTimeout(ValueError):
    """The ``x-llm-timeout`` header is not a positive number of seconds."""


def request_timeout(headers: Mapping[str, str], default: float | None, cap: float) -> float | None:
    """The deadline (seconds) a request asks for with ``x-llm-timeout``, cut to ``cap``; ``default`` without one.

    Raises :class:`BadTimeout` for anything but a finite positive number.
    """
    raw = headers.get(TIMEOUT_HEADER)
    if raw is None:
        return default
    try:
        seconds = float(raw)
    except ValueError:
        raise BadTimeout(f"{TIMEOUT_HEADER} must be a number of seconds, got {raw[:40]!r}") from None
    if not math.isfinite(seconds) or seconds <= 0:
        raise BadTimeout(f"{TIMEOUT_HEADER} must be a positive number of seconds, got {raw[:40]!r}")
    return min(seconds, cap)


class Cut(Exception):
    """A wait was cut: its deadline passed (``reason == "timeout"``) or the gateway is shutting down."""

    def __init__(self, reason: str, detail: str | None = None) -> None:
        super().__init__(reason)
        self.reason = reason
        self.detail = detail

    def reply(self) -> ErrorReply:
        """The error a client gets for it, in OpenAI's shape."""
        if self.reason == "timeout":
            msg = "the request's deadline passed before it was answered"
            # The deadline is the client's own: retrying at once, with the same deadline, would only repeat it.
            return gateway_error(
                504,
                f"{msg}: {self.detail}" if self.detail else msg,
                type_="api_error",
                code="timeout",
                headers={"x-should-retry": "false"},
            )
        # Nothing is wrong with the request: another replica (or this one, restarted) can answer it.
        return gateway_error(
            503,
            "the gateway is shutting down; retry the request",
            type_="api_error",
            code="shutting_down",
            headers={"x-should-retry": "true", "retry-after": "1", "connection": "close"},
        )


class Guard:
    """One wait (or a run of them, like a stream's) of the task that created it, which the lifecycle may cut."""

    __slots__ = ("_busy", "_cancelled", "_life", "_task", "_timer", "reason")

    def __init__(self, life: Lifecycle, deadline: float | None) -> None:
        self._life = life
        task = asyncio.current_task()
        assert task is not None, "a guard watches the current task"
        self._task = task
        self._busy = False
        self._cancelled = False
        self.reason: str | None = "shutdown" if life.cutting else None
        self._timer = arm(deadline, self._expire) if deadline else None
        life._guards.add(self)

    def _expire(self) -> None:
        self.cut("timeout")

    def cut(self, reason: str) -> None:
        """End the wait now (or, between waits, make the next one raise) with :class:`Cut`."""
        if self.reason is not None:
            return
        self.reason = reason
        if self._busy:
            self._cancelled = True
            self._task.cancel()

    async def wait(self, aw: Awaitable[T]) -> T:
        """``await aw``, or raise :class:`Cut` when cut before or while it waits."""
        if self.reason is not None:
            _discard(aw)
            raise Cut(self.reason)
        self._busy = True
        try:
            result = await aw
        except asyncio.CancelledError:
            # Ours only when we asked for it and nobody else did too (the client leaving, the server's own stop).
            if not self._cancelled or self._task.uncancel() > 0:
                raise
            raise Cut(self.reason or "shutdown") from None
        finally:
            self._busy = False
        if self._cancelled:  # the wait swallowed our cancellation: take it back, the next wait raises Cut
            self._cancelled = False
            self._task.uncancel()
        return result

    def close(self) -> None:
        if self._timer is not None:
            self._timer.disarm()
        self._life._guards.discard(self)


class Lifecycle:
    """The gateway's in-flight waits, whether it is draining, and the cut that ends a drain."""

    def __init__(self) -> None:
        self.draining = False
        """Set when shutdown begins: ``/health/ready`` answers 503 so load balancers stop sending."""
        self.cutting = False
        """Set when the drain timeout has passed: every wait, current or new, is cut."""
        self._guards: set[Guard] = set()

    def guard(self, deadline: float | None = None) -> Guard:
        """A guard for the current task; ``deadline`` (event-loop time) cuts it with ``"timeout"``."""
        return Guard(self, deadline)

    async def run(self, aw: Awaitable[T], timeout_s: float | None) -> T:
        """``await aw`` under a deadline of ``timeout_s`` (plus :data:`BACKSTOP_GRACE_S`) and the shutdown cut.

        A whole-answer failure that comes after the deadline (every candidate failed or timed out) is reported as
        the deadline: the client asked for an answer within ``timeout_s`` and that is what it did not get.
        """
        loop = asyncio.get_running_loop()
        start = loop.time()
        g = self.guard(start + timeout_s + BACKSTOP_GRACE_S if timeout_s else None)
        try:
            return await g.wait(aw)
        except (AllCandidatesFailedError, ProviderTimeoutError) as exc:
            if timeout_s and loop.time() - start >= timeout_s:
                raise Cut("timeout", exc.message) from exc
            raise
        finally:
            g.close()

    @property
    def in_flight(self) -> int:
        """How many waits are being watched."""
        return len(self._guards)

    def cut_all(self) -> None:
        """Cut every wait now, and every one that starts from now on."""
        self.cutting = True
        for g in list(self._guards):
            g.cut("shutdown")

    async def drain(self, served: Awaitable[object], timeout_s: float) -> None:
        """Shut down gracefully: report not ready, let ``served`` (the server finishing its in-flight requests)
        complete for up to ``timeout_s``, then cut what is left."""
        self.draining = True
        try:
            await asyncio.wait_for(asyncio.shield(served), timeout_s)
        except TimeoutError:
            self.cut_all()
        except BaseException:  # the server's own failure is reported by whoever awaits it
            return


def _discard(aw: Awaitable[object]) -> None:
    close = getattr(aw, "close", None)
    if close is not None:
        close()  # a coroutine that will never be awaited: close it rather than leave a warning behind
