"""A manager its owner never closed: the program still ends, warned, with the manager closed where it can be.

The official SDK clients let a script end without closing them, so ``llm = LLMManager.from_config(...)`` then
``await llm.generate(...)`` inside ``asyncio.run(main())`` must end too. What used to hold such a program was the
SQLite store's worker thread: aiosqlite (>= 0.22) runs it as a non-daemon thread that ends only when its connection
is closed, and the interpreter joins non-daemon threads before anything else at exit. That thread is now a daemon
(:mod:`llm_manager.store.sqlite`), and this module closes what the owner left open, so that what the ledger had
buffered is written:

* **The loop ends through** ``asyncio.run()`` / ``asyncio.Runner`` (the usual script, and pytest-asyncio): they
  cancel every task still pending before closing the loop. A guard task, started when the manager first does
  something on a loop, turns that cancellation into :meth:`LLMManager.aclose` (the ledger is flushed, the store,
  HTTP sessions and Redis connections are closed), after a :class:`ResourceWarning` like aiohttp's "Unclosed client
  session".
* **The loop is still open at interpreter exit** (the sync facade's background loop; a loop a script ran with
  ``run_until_complete`` and never closed): an :mod:`atexit` hook closes the manager on its loop, with the same
  warning. It runs only because no thread of ours keeps the interpreter in its shutdown join any more.
* **The manager is garbage-collected unclosed** while its loop lives: a :class:`ResourceWarning`; its parts have
  their own finalizers, and the ledger's flusher writes its buffer when the loop finally cancels it.

Each close is bounded by :data:`CLOSE_TIMEOUT_S`, so a store that does not answer cannot hold the exit either.
"""

from __future__ import annotations

import asyncio
import atexit
import contextlib
import logging
import warnings
import weakref
from typing import TYPE_CHECKING, Protocol

if TYPE_CHECKING:
    from collections.abc import Coroutine
    from typing import Any

__all__ = ["CLOSE_TIMEOUT_S", "LoopGuard"]

log = logging.getLogger("llm_manager")

CLOSE_TIMEOUT_S = 5.0
"""The longest an unclosed manager's close may take at loop shutdown or interpreter exit."""


class Closable(Protocol):
    """What the guard needs of a manager."""

    @property
    def closed(self) -> bool: ...

    async def aclose(self) -> None: ...


_OPEN: weakref.WeakKeyDictionary[Closable, LoopGuard] = weakref.WeakKeyDictionary()
"""Managers with a guard that are not closed yet (the atexit hook's work list), each with its guard."""
_atexit_registered = False


class LoopGuard:
    """Closes ``owner`` when the loop it runs on is torn down with the owner still open.

    Holds the owner weakly: the guard never keeps an abandoned manager alive. The owner holds the guard (a task
    referenced by nothing else would be collected while pending).
    """

    def __init__(self, owner: Closable) -> None:
        global _atexit_registered
        self.loop = asyncio.get_running_loop()
        self._task = self.loop.create_task(_watch(weakref.ref(owner)), name="llm-manager-unclosed-guard")
        _OPEN[owner] = self
        if not _atexit_registered:
            _atexit_registered = True
            atexit.register(_close_at_exit)

    async def release(self, owner: Closable) -> None:
        """The owner is closing: end the guard (at once when called on its loop, so no task is left pending)."""
        _OPEN.pop(owner, None)
        task = self._task
        if task.done() or task is asyncio.current_task():
            return
        if asyncio.get_running_loop() is not self.loop:
            self.cancel()
            return
        task.cancel()
        await asyncio.wait([task])

    def cancel(self) -> None:
        """End the guard from any thread, without waiting (a finalizer, another loop)."""
        if not self._task.done() and not self.loop.is_closed():
            with contextlib.suppress(RuntimeError):  # the loop closed in between
                self.loop.call_soon_threadsafe(self._task.cancel)


def warn_unclosed(owner: object, why: str) -> None:
    """The :class:`ResourceWarning` for an owner that was not closed (shown with ``-X dev`` or ``-W default``)."""
    warnings.warn(
        f"unclosed {owner!r}: {why}. Use `async with LLMManager.from_config(...)` (or `with "
        "LLMManager.sync_from_config(...)`), or call `await llm.aclose()` / `llm.close()` when done",
        ResourceWarning,
        source=owner,
        stacklevel=2,
    )


async def _watch(ref: weakref.ref[Closable]) -> None:
    try:
        await asyncio.get_running_loop().create_future()  # only a cancellation ends this wait
    except asyncio.CancelledError:
        owner = ref()
        if owner is not None and not owner.closed:
            task = asyncio.current_task()
            if task is not None:
                task.uncancel()  # what follows awaits: let timeouts inside aclose() see a task not being cancelled
            await _close(owner, "closed for you as its event loop shut down")
        raise


async def _close(owner: Closable, why: str) -> None:
    try:
        warn_unclosed(owner, why)
    finally:  # closed even when warnings are errors (the warning is then raised after the close)
        try:
            async with asyncio.timeout(CLOSE_TIMEOUT_S):
                await owner.aclose()
        except Exception:
            log.exception("closing an unclosed %r failed", owner)


def _close_at_exit() -> None:
    """At interpreter exit: close each manager still open whose loop can still run its close."""
    for owner in list(_OPEN):
        guard = _OPEN.get(owner)
        if owner.closed or guard is None:
            continue
        try:
            _run_on(guard.loop, _close(owner, "closed for you at interpreter exit"))
        except Exception:
            log.exception("closing an unclosed %r at exit failed", owner)


def _run_on(loop: asyncio.AbstractEventLoop, coro: Coroutine[Any, Any, None]) -> None:
    if loop.is_closed():
        coro.close()
        log.warning("an unclosed LLM manager's event loop was closed before it: what it had buffered is lost")
    elif loop.is_running():  # in another thread (the sync facade's, a daemon): hand the close over
        asyncio.run_coroutine_threadsafe(coro, loop).result(CLOSE_TIMEOUT_S + 1)
    else:  # a loop left open, not running: run it once more for the close
        loop.run_until_complete(coro)
