"""Work that must not be cut half-way when its caller is cancelled: bookkeeping (a ledger row, a budget settlement)
of something already paid for.

:func:`unbroken` runs it as a task of its own behind :func:`asyncio.shield`: a cancelled caller stops waiting, the
work goes on to its end. The task is kept referenced until then (the loop holds tasks only weakly), and its failure,
should nobody be left to receive it, is logged rather than reported as a "Task exception was never retrieved".
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable
from typing import TypeVar

__all__ = ["unbroken"]

log = logging.getLogger("llm_manager")
T = TypeVar("T")
_RUNNING: set[asyncio.Future[object]] = set()


def _done(task: asyncio.Future[object]) -> None:
    _RUNNING.discard(task)
    if not task.cancelled() and (exc := task.exception()) is not None:
        log.debug("work finished after its caller left, with an error: %r", exc)


async def unbroken(aw: Awaitable[T]) -> T:
    """``await aw``, which goes on to its end even if the caller is cancelled meanwhile."""
    task: asyncio.Future[T] = asyncio.ensure_future(aw)
    _RUNNING.add(task)  # type: ignore[arg-type]
    task.add_done_callback(_done)  # type: ignore[arg-type]
    return await asyncio.shield(task)
