"""Execute a plan: admission (limits, breakers, keys), timeouts, retries, fallback and hedging.

One try-loop (:class:`~llm_manager.attempts.Run`) serves both whole answers and streams. A stream may fail over only
until its first chunk has been handed to the caller; after that, a failure ends the stream with
:class:`~llm_manager.errors.StreamInterruptedError` (never a silently truncated success, never two models' text
spliced together).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncGenerator, AsyncIterator, Awaitable, Callable, Coroutine, Iterator
from contextlib import aclosing
from typing import TYPE_CHECKING, Any, TypeVar

from llm_manager._deadline import deadline
from llm_manager.attempts import Accumulator, Done, Run
from llm_manager.errors import ProviderError, StreamInterruptedError
from llm_manager.routing.queue import PriorityGate
from llm_manager.routing.recovery import RecoveryLearner
from llm_manager.routing.retry import is_reroutable, is_retryable
from llm_manager.types import StreamEvent

if TYPE_CHECKING:
    from llm_manager.config import BackoffConfig, HedgeConfig, RoutingConfig
    from llm_manager.providers.base import Chunk, Completion
    from llm_manager.routing.admission import Admission, Ticket
    from llm_manager.routing.planner import Deployment, Plan
    from llm_manager.routing.stats import LatencyStats
    from llm_manager.types import Attempt, Request, Response

__all__ = ["Executor"]

R = TypeVar("R")
Clock = Callable[[], float]
Sleep = Callable[[float], Awaitable[None]]


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

        self.routing = routing
        self.stats = stats
        self.admission = admission
        self.gate = PriorityGate()
        self.clock = clock
        self.sleep = sleep
        self.rand = rand or random.random
        self.recovery = RecoveryLearner(clock)
        """How long each deployment's 429s and 5xx took to clear (the ``adaptive`` backoff strategy's memory)."""
        self._backoffs: dict[str, BackoffConfig] = {}

    def backoff_for(self, dep: Deployment) -> BackoffConfig:
        """``routing.backoff`` with the fields set in the deployment's own ``backoff`` (computed once)."""
        policy = self._backoffs.get(dep.name)
        if policy is None:
            own = dep.config.backoff
            policy = self.routing.backoff
            if own is not None:
                policy = policy.model_copy(update=own.model_dump(exclude_unset=True))
            self._backoffs[dep.name] = policy
        return policy

    # -- whole answers ------------------------------------------------------------------------------------------

    async def complete(self, request: Request, plan: Plan, request_id: str) -> Response:
        """The first good answer among the candidates, or the error that explains why there is none."""
        run = Run(self, request, plan, request_id)
        try:
            await run.queue_if_others_wait()
            delay = self._hedge_delay(request, plan)
            if delay is not None:
                resp = await self._hedged(run, delay)
                if resp is not None:
                    return resp
            return await self._first(run, self._once)
        finally:
            run.finish()

    async def call(
        self,
        request: Request,
        plan: Plan,
        request_id: str,
        send: Callable[[Ticket], Awaitable[R]],
        used: Callable[[R], Done],
    ) -> tuple[Response, R]:
        """:meth:`complete` for another kind of call (an embedding): the same admission (breakers, limits, key
        pools), retries and fallback, without hedging. ``send`` makes one attempt with the ticket's deployment and
        key (within the attempt's timeout); ``used`` says what the result used, for the limits, usage and cost.
        Returns the response accounted like an answer's, and the result itself."""
        run = Run(self, request, plan, request_id)

        async def attempt(run: Run, ticket: Ticket) -> tuple[Response, R] | None:
            timeout = run.attempt_timeout(ticket.dep)
            t0 = time.perf_counter()
            try:
                async with deadline(timeout):
                    result = await send(ticket)
            except (ProviderError, TimeoutError) as exc:
                await run.failed(ticket, exc, t0, timeout)
                return None
            done = used(result)
            await run.succeeded(ticket, done, time.perf_counter() - t0)
            return run.response(ticket.dep, done, None), result

        try:
            await run.queue_if_others_wait()
            return await self._first(run, attempt)
        finally:
            run.finish()

    @staticmethod
    async def _first(run: Run, attempt: Callable[[Run, Ticket], Awaitable[R | None]]) -> R:
        """Candidates in order, each admitted, then attempted (and retried) until one gives a result; when nothing
        could be called for rate limits, wait for room and go round again."""
        while True:
            for dep in run.tries():
                ticket = await run.admit(dep)
                if ticket is None:
                    continue
                result = await attempt(run, ticket)
                if result is not None:
                    return result
            if not await run.wait_for_room():
                raise run.exhausted()

    async def _once(self, run: Run, ticket: Ticket) -> Response | None:
        dep = ticket.dep
        timeout = run.attempt_timeout(dep)
        t0 = time.perf_counter()
        try:
            comp = await self._call(ticket, run.request, timeout)
        except (ProviderError, TimeoutError) as exc:
            await run.failed(ticket, exc, t0, timeout)
            return None
        done = comp
        await run.succeeded(ticket, done, time.perf_counter() - t0)
        return run.response(dep, done, None)

    @staticmethod
    async def _call(ticket: Ticket, request: Request, timeout: float) -> Completion:
        async with deadline(timeout):
            return await ticket.dep.adapter.complete(request, api_key=ticket.key.key if ticket.key else None)

    # -- hedging ------------------------------------------------------------------------------------------------

    def _hedge_delay(self, request: Request, plan: Plan) -> float | None:
        """Seconds to wait before hedging this request, or ``None`` when it is not hedged."""
        if len(plan.candidates) < 2:
            return None
        cfg: HedgeConfig = self.routing.hedge
        first = plan.candidates[0]
        wanted = first.config.hedge if first.config.hedge is not None else request.task in cfg.tasks
        if not wanted:
            return None
        if cfg.delay_s == "p95":
            p95 = self.stats.get(first.name).percentile(0.95)
            return p95 / 1000 if p95 is not None else cfg.p95_fallback_s
        return float(cfg.delay_s)

    async def _hedged(self, run: Run, delay: float) -> Response | None:
        """Race the first two candidates (see :meth:`_race`) for a whole answer."""
        timeout = run.attempt_timeout(run.plan.candidates[0])
        won = await self._race(run, delay, timeout, lambda t: self._call(t, run.request, timeout), _cancel)
        if won is None:
            return None
        ticket, comp, t0 = won
        done = comp
        await run.succeeded(ticket, done, time.perf_counter() - t0)
        return run.response(ticket.dep, done, None)

    async def _race(
        self,
        run: Run,
        delay: float,
        timeout: float,
        start: Callable[[Ticket], Coroutine[Any, Any, R]],
        close: Callable[[asyncio.Task[R]], Awaitable[None]],
    ) -> tuple[Ticket, R, float] | None:
        """Hedge: start the first candidate; if it has produced nothing after ``delay`` seconds, start the second
        too. The first success wins and the other is stopped with ``close`` (its estimated prompt cost is
        recorded). Without a winner the failures are recorded and ``None`` lets the normal loop go on with the
        candidates not raced; a final error that no other candidate could fix (bad key …) is raised."""
        first, second = run.plan.candidates[0], run.plan.candidates[1]
        t1 = await run.admit(first)
        if t1 is None:
            return None
        run.skip.add(first.name)
        racers: dict[asyncio.Task[R], tuple[Ticket, float]] = {
            asyncio.create_task(start(t1)): (t1, time.perf_counter())
        }
        done, _ = await asyncio.wait(racers, timeout=delay)
        if not done and (t2 := await run.admit(second)) is not None:
            run.skip.add(second.name)
            run.hedged = True
            racers[asyncio.create_task(start(t2))] = (t2, time.perf_counter())
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

    # -- streams ------------------------------------------------------------------------------------------------

    async def stream(
        self, request: Request, plan: Plan, request_id: str, attempts: list[Attempt] | None = None
    ) -> AsyncGenerator[StreamEvent, None]:
        """Yield ``delta`` events, then one ``done`` event with the assembled response. ``attempts``, when given,
        collects every try as it happens (what a caller that stops reading early accounts from)."""
        run = Run(self, request, plan, request_id, attempts)
        try:
            await run.queue_if_others_wait()
            delay = self._hedge_delay(request, plan)
            if delay is not None:
                won = await self._hedged_open(run, delay)
                if won is not None:
                    # aclosing: a caller that stops reading must reach _committed's cleanup now, not at GC.
                    async with aclosing(self._committed(run, *won)) as events:
                        async for event in events:
                            yield event
                    return
            while True:
                for dep in run.tries():
                    ticket = await run.admit(dep)
                    if ticket is None:
                        continue
                    opened = await self._open_stream(run, ticket)
                    if opened is None:
                        continue
                    async with aclosing(self._committed(run, ticket, *opened)) as events:
                        async for event in events:
                            yield event
                    return
                if not await run.wait_for_room():
                    raise run.exhausted()
        finally:
            run.finish()

    async def _open_stream(self, run: Run, ticket: Ticket) -> Opened | None:
        """Start the stream and wait for its first chunk; ``None`` (failure recorded) when that fails."""
        timeout = min(self.routing.first_chunk_timeout_s, run.attempt_timeout(ticket.dep))
        t0 = time.perf_counter()
        try:
            return await _start_stream(ticket, run.request, timeout, t0)
        except (ProviderError, TimeoutError) as exc:
            await run.failed(ticket, exc, t0, timeout)
            return None

    async def _hedged_open(self, run: Run, delay: float) -> tuple[Ticket, *Opened] | None:
        """Race the first chunks of the first two candidates' streams (see :meth:`_race`): the caller sees only
        the winner's text, and the loser is closed before any of its text is sent."""
        timeout = min(self.routing.first_chunk_timeout_s, run.attempt_timeout(run.plan.candidates[0]))
        won = await self._race(
            run, delay, timeout, lambda t: _start_stream(t, run.request, timeout, time.perf_counter()), _close_racer
        )
        if won is None:
            return None
        ticket, opened, _ = won
        return (ticket, *opened)

    async def _committed(
        self, run: Run, ticket: Ticket, agen: AsyncGenerator[Chunk, None], first: Chunk, acc: Accumulator, t0: float
    ) -> AsyncGenerator[StreamEvent, None]:
        # From here on this deployment owns the stream, whatever happens.
        dep = ticket.dep
        ttfc = (time.perf_counter() - t0) * 1000
        try:
            async for event in self._relay(dep, agen, first, acc):
                yield event
        except (ProviderError, TimeoutError) as exc:
            await self.admission.settle(ticket, error=exc, used_tokens=None, latency_s=time.perf_counter() - t0)
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
        yield StreamEvent(type="done", delta="", deployment=dep.name, model=resp.model, response=resp)

    async def _relay(
        self, dep: Deployment, agen: AsyncGenerator[Chunk, None], first: Chunk, acc: Accumulator
    ) -> AsyncIterator[StreamEvent]:
        name, model = dep.name, dep.endpoint.model
        construct = StreamEvent  # validating these is faster than pydantic's model_construct (3.3 vs 7.6 us)
        for event in _events(first, name, model):
            yield event
        idle = self.routing.stream_idle_timeout_s
        while True:
            try:
                async with deadline(idle):
                    chunk = await anext(agen)
            except StopAsyncIteration:
                return
            acc.add(chunk)
            if chunk.text and not chunk.logprobs:
                yield construct(type="delta", delta=chunk.text, deployment=name, model=model, response=None)
            elif chunk.text or chunk.tool_calls or chunk.reasoning or chunk.logprobs:
                for event in _events(chunk, name, model):
                    yield event


def _events(chunk: Chunk, name: str, model: str) -> Iterator[StreamEvent]:
    """The delta events of one chunk: its reasoning, its text (with its log probabilities), then a piece of a tool
    call each."""
    construct = StreamEvent
    if chunk.reasoning:
        yield construct(type="delta", reasoning=chunk.reasoning, deployment=name, model=model, response=None)
    if chunk.text or chunk.logprobs:
        yield construct(
            type="delta", delta=chunk.text, deployment=name, model=model, response=None, logprobs=chunk.logprobs
        )
    for piece in chunk.tool_calls or ():
        yield construct(type="delta", delta="", deployment=name, model=model, response=None, tool_call=piece)


Opened = tuple[AsyncGenerator["Chunk", None], "Chunk", Accumulator, float]
"""An open stream: the generator, its first chunk, what has been accumulated, and when it started."""


async def _start_stream(ticket: Ticket, request: Request, timeout: float, t0: float) -> Opened:
    """Open ``ticket``'s stream and wait for its first chunk; the upstream is closed again on any failure."""
    agen = ticket.dep.adapter.stream(request, api_key=ticket.key.key if ticket.key else None)
    acc = Accumulator()
    try:
        first = await _first_chunk(agen, timeout, acc)
    except BaseException:
        await agen.aclose()
        raise
    return agen, first, acc, t0


async def _cancel(task: asyncio.Task[Any]) -> None:
    """Stop a losing whole-answer call."""
    task.cancel()
    await asyncio.gather(task, return_exceptions=True)


async def _close_racer(task: asyncio.Task[Opened]) -> None:
    """Stop a losing stream: cancel it while it waits, or close it if it had already opened."""
    if not task.done():
        task.cancel()
    try:
        agen, *_ = await task
    except BaseException:  # a loser's failure or cancellation is expected and irrelevant
        return
    await agen.aclose()


async def _first_chunk(agen: AsyncGenerator[Chunk, None], timeout: float, acc: Accumulator) -> Chunk:
    """Wait (up to ``timeout`` in all) for the first chunk with text or a finish reason."""
    async with deadline(timeout):
        while True:
            try:
                chunk = await anext(agen)
            except StopAsyncIteration:
                raise StreamInterruptedError("stream ended before any content") from None
            acc.add(chunk)
            if chunk.text or chunk.finish_reason or chunk.tool_calls or chunk.reasoning:
                return chunk
