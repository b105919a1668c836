"""The attempt loop: admission (breakers, limits, key pools), a timeout per attempt, retries, fallback, hedging.

One loop (:meth:`Executor._first_success`, over a :class:`~llm_manager.attempts.Run`) serves whole answers,
embeddings and streams; hedging wraps it (:meth:`Executor._race`). Only what an attempt is differs: one call for a
whole answer, the opening of a stream up to its first chunk for a stream. A stream may fail over only until that
first chunk has been handed to the caller; after that, a failure ends the stream with
:class:`~llm_manager.errors.StreamInterruptedError` (never a silently truncated success, never two models' text
spliced together).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncGenerator, Awaitable, Callable, Iterator
from functools import partial
from typing import TYPE_CHECKING, Any, TypeVar

from llm_manager._deadline import deadline, idle_timeout
from llm_manager.attempts import Clock, Run, Shared, Sleep
from llm_manager.codecs.base import Accumulator
from llm_manager.errors import ProviderError, StreamInterruptedError
from llm_manager.routing.retry import is_reroutable, is_retryable
from llm_manager.types import StreamEvent

if TYPE_CHECKING:
    from llm_manager.codecs.base import Chunk, Completion
    from llm_manager.config import HedgeConfig, RoutingConfig
    from llm_manager.routing.admission import Admission, Ticket
    from llm_manager.routing.planner import Plan
    from llm_manager.routing.queue import PriorityGate
    from llm_manager.routing.stats import LatencyStats
    from llm_manager.types import Attempt, Request, Response

__all__ = ["Executor"]

R = TypeVar("R")


class Executor:
    """Runs plans. Clock, sleep and randomness are injected so retry timing is testable without waiting."""

    def __init__(
        self,
        routing: RoutingConfig,
        stats: LatencyStats,
        admission: Admission,
        *,
        clock: Clock = time.monotonic,
        sleep: Sleep = asyncio.sleep,
        rand: Callable[[], float] | None = None,
    ) -> None:
        import random

        self.shared = Shared(routing, admission, stats, clock, sleep, rand or random.random)
        """Everything the loop and its runs use; the loop keeps no state of its own."""

    @property
    def gate(self) -> PriorityGate:
        """Requests waiting for room, by priority."""
        return self.shared.gate

    # -- the entry points ---------------------------------------------------------------------------------------

    async def complete(self, request: Request, plan: Plan, request_id: str) -> Response:
        """The first good answer among the candidates, or the error that explains why there is none."""
        resp, _ = await self.call(request, plan, request_id, partial(_complete, request), _same, hedge=True)
        return resp

    async def call(
        self,
        request: Request,
        plan: Plan,
        request_id: str,
        send: Callable[[Ticket], Awaitable[R]],
        used: Callable[[R], Completion],
        *,
        hedge: bool = False,
    ) -> tuple[Response, R]:
        """:meth:`complete` for any kind of call (an embedding): ``send`` makes one attempt with the ticket's
        deployment and key; ``used`` says what its result used, for the limits, usage and cost. Returns the response
        accounted like an answer's, and the result itself."""
        run = Run(self.shared, request, plan, request_id)
        try:
            ticket, result, t0 = await self._first_success(run, send, _cancel, hedge)
            done = used(result)
            await run.succeeded(ticket, done, time.perf_counter() - t0)
            return run.response(ticket.dep, done, None), result
        finally:
            run.finish()

    async def stream(
        self, request: Request, plan: Plan, request_id: str, attempts: list[Attempt] | None = None
    ) -> AsyncGenerator[StreamEvent, None]:
        """Yield ``delta`` events, then one ``done`` event with the assembled response. An attempt is the opening of
        a stream until its first chunk (within ``routing.first_chunk_timeout_s``). ``attempts``, when given,
        collects every try as it happens (what a caller that stops reading early accounts from)."""
        run = Run(self.shared, request, plan, request_id, attempts)
        try:
            cap = self.shared.routing.first_chunk_timeout_s
            ticket, (agen, first, acc), t0 = await self._first_success(run, partial(_open, request), _close, True, cap)
            # From here on this deployment owns the stream, whatever happens.
            dep = ticket.dep
            name, model = dep.name, dep.endpoint.model
            construct = StreamEvent  # validating these is faster than pydantic's model_construct (3.3 vs 7.6 us)
            ttfc = (time.perf_counter() - t0) * 1000
            try:
                for event in _events(first, name, model):
                    yield event
                async with idle_timeout(self.shared.routing.stream_idle_timeout_s) as idle:
                    while True:
                        idle.waiting()
                        try:
                            chunk = await anext(agen)
                        except StopAsyncIteration:
                            break
                        idle.resumed()
                        acc.add(chunk)
                        if chunk.text and not chunk.logprobs:
                            yield construct(type="delta", delta=chunk.text, deployment=name, model=model, response=None)
                        elif (
                            chunk.text
                            or chunk.tool_calls
                            or chunk.reasoning
                            or chunk.logprobs
                            or chunk.reasoning_signature
                        ):
                            for event in _events(chunk, name, model):
                                yield event
            except (ProviderError, TimeoutError) as exc:
                await self.shared.admission.settle(
                    ticket, error=exc, used_tokens=None, latency_s=time.perf_counter() - t0
                )
                raise run.broke(ticket, exc, acc, t0) from exc
            except (GeneratorExit, asyncio.CancelledError):
                # The caller stopped reading: release the slot and record what was spent, then close the upstream.
                await run.cancelled(ticket, acc, t0)
                raise
            finally:
                await agen.aclose()
            done = acc.done()
            await run.succeeded(ticket, done, time.perf_counter() - t0, ttfc)
            resp = run.response(dep, done, ttfc)
            yield StreamEvent(type="done", delta="", deployment=name, model=resp.model, response=resp)
        finally:
            run.finish()

    # -- the attempt loop -------------------------------------------------------------------------------------

    async def _first_success(
        self,
        run: Run,
        start: Callable[[Ticket], Awaitable[R]],
        close: Callable[[asyncio.Task[R]], Awaitable[None]],
        hedge: bool,
        cap: float | None = None,
    ) -> tuple[Ticket, R, float]:
        """The first attempt that succeeds, with its ticket and start time: queue behind requests already waiting;
        race the first two candidates when the request is hedged (:meth:`_race`); then each candidate in order,
        admitted and tried (and retried) within its timeout until one gives a result. When nothing could be called
        for rate limits or ``max_concurrent``, wait for room and go round again."""
        await run.queue_if_others_wait()
        delay = self._hedge_delay(run.request, run.plan) if hedge else None
        if delay is not None and (won := await self._race(run, delay, start, close, cap)) is not None:
            return won
        while True:
            for dep in run.tries():
                ticket = await run.admit(dep)
                if ticket is None:
                    continue
                timeout = run.attempt_timeout(dep, cap)
                t0 = time.perf_counter()
                try:
                    async with deadline(timeout):
                        return ticket, await start(ticket), t0
                except (ProviderError, TimeoutError) as exc:
                    await run.failed(ticket, exc, t0, timeout)
            if not await run.wait_for_room():
                raise run.exhausted()

    # -- hedging ------------------------------------------------------------------------------------------------

    def _hedge_delay(self, request: Request, plan: Plan) -> float | None:
        """Seconds to wait before hedging this request, or ``None`` when it is not hedged."""
        if len(plan.candidates) < 2:
            return None
        cfg: HedgeConfig = self.shared.routing.hedge
        first = plan.candidates[0]
        wanted = first.config.hedge if first.config.hedge is not None else request.task in cfg.tasks
        if not wanted:
            return None
        if cfg.delay_s == "p95":
            p95 = self.shared.stats.get(first.name).percentile(0.95)
            return p95 / 1000 if p95 is not None else cfg.p95_fallback_s
        return float(cfg.delay_s)

    async def _race(
        self,
        run: Run,
        delay: float,
        start: Callable[[Ticket], Awaitable[R]],
        close: Callable[[asyncio.Task[R]], Awaitable[None]],
        cap: float | None,
    ) -> tuple[Ticket, R, float] | None:
        """Hedge: start the first candidate; if it has produced nothing after ``delay`` seconds, start the second
        too. The first success wins and the other is stopped with ``close`` (its estimated prompt cost is
        recorded); a stream's caller sees only the winner's text. Without a winner the failures are recorded and
        ``None`` lets the normal loop go on with the candidates not raced; a final error that no other candidate
        could fix (bad key …) is raised."""
        first, second = run.plan.candidates[0], run.plan.candidates[1]
        timeout = run.attempt_timeout(first, cap)
        t1 = await run.admit(first)
        if t1 is None:
            return None
        run.skip.add(first.name)
        racers = {asyncio.create_task(_within(timeout, start(t1))): (t1, time.perf_counter())}
        done, _ = await asyncio.wait(racers, timeout=delay)
        if not done and (t2 := await run.admit(second)) is not None:
            run.skip.add(second.name)
            run.hedged = True
            racers[asyncio.create_task(_within(timeout, start(t2)))] = (t2, time.perf_counter())
        pending = set(racers)
        try:
            while pending:
                finished, pending = await asyncio.wait(pending, return_when=asyncio.FIRST_COMPLETED)
                for task in finished:
                    ticket, t0 = racers[task]
                    exc = task.exception()
                    if exc is None:
                        for loser in pending:
                            await close(loser)
                            await run.abandoned(*racers[loser])
                        pending = set()
                        return ticket, task.result(), t0
                    if not isinstance(exc, ProviderError | TimeoutError):
                        raise exc
                    err = await run.failed(ticket, exc, t0, timeout, decide_next=False)
                    if not pending and not is_retryable(err) and not is_reroutable(err):
                        err.attempts = list(run.attempts)
                        raise err
        finally:
            for task in pending:
                await close(task)
        return None


def _events(chunk: Chunk, name: str, model: str) -> Iterator[StreamEvent]:
    """The delta events of one chunk: its reasoning, its text (with its log probabilities), then a piece of a tool
    call each."""
    construct = StreamEvent
    if chunk.reasoning or chunk.reasoning_signature:
        yield construct(
            type="delta",
            reasoning=chunk.reasoning,
            reasoning_signature=chunk.reasoning_signature or "",
            deployment=name,
            model=model,
            response=None,
        )
    if chunk.text or chunk.logprobs:
        yield construct(
            type="delta", delta=chunk.text, deployment=name, model=model, response=None, logprobs=chunk.logprobs
        )
    for piece in chunk.tool_calls or ():
        yield construct(type="delta", delta="", deployment=name, model=model, response=None, tool_call=piece)


Opened = tuple[AsyncGenerator["Chunk", None], "Chunk", Accumulator]
"""An open stream: the generator, its first chunk, and what has been accumulated."""


async def _complete(request: Request, ticket: Ticket) -> Completion:
    """One attempt at a whole answer."""
    return await ticket.dep.adapter.complete(request, api_key=ticket.key.key if ticket.key else None)


def _same(done: Completion) -> Completion:
    return done


async def _open(request: Request, ticket: Ticket) -> Opened:
    """One attempt at a stream: open it and wait for the first chunk with text or a finish reason; the upstream is
    closed again on any failure."""
    agen = ticket.dep.adapter.stream(request, api_key=ticket.key.key if ticket.key else None)
    acc = Accumulator()
    try:
        while True:
            try:
                chunk = await anext(agen)
            except StopAsyncIteration:
                raise StreamInterruptedError("stream ended before any content") from None
            acc.add(chunk)
            if chunk.text or chunk.finish_reason or chunk.tool_calls or chunk.reasoning:
                return agen, chunk, acc
    except BaseException:
        await agen.aclose()
        raise


async def _within(timeout: float, attempt: Awaitable[R]) -> R:
    async with deadline(timeout):
        return await attempt


async def _cancel(task: asyncio.Task[Any]) -> None:
    """Stop a losing whole-answer call."""
    task.cancel()
    await asyncio.gather(task, return_exceptions=True)


async def _close(task: asyncio.Task[Opened]) -> None:
    """Stop a losing stream: cancel it while it waits, or close it if it had already opened."""
    if not task.done():
        task.cancel()
    try:
        agen, *_ = await task
    except BaseException:  # a loser's failure or cancellation is expected and irrelevant
        return
    await agen.aclose()
