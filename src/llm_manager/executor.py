"""Execute a plan: try candidates in order with timeouts, retries, backoff and fallback.

One try-loop (:class:`_Run`) serves both whole answers and streams. A stream may fail over only until its first
chunk has been handed to the caller; after that, a failure ends the stream with
:class:`~llm_manager.errors.StreamInterruptedError` (never a silently truncated success, never two models' text
spliced together).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncGenerator, AsyncIterator, Awaitable, Callable, Iterator
from typing import TYPE_CHECKING

from llm_manager.errors import (
    AllCandidatesFailedError,
    LLMManagerError,
    ProviderError,
    ProviderTimeoutError,
    StreamInterruptedError,
)
from llm_manager.routing.retry import Decision, backoff_delay, decide
from llm_manager.tokens import estimate_prompt_tokens
from llm_manager.types import Attempt, Response, ResponseMetadata, StreamEvent, Usage

if TYPE_CHECKING:
    from llm_manager.config import RoutingConfig
    from llm_manager.providers.base import Chunk, Completion
    from llm_manager.routing.planner import Deployment, Plan
    from llm_manager.routing.stats import LatencyStats
    from llm_manager.types import Request

__all__ = ["Executor"]

Clock = Callable[[], float]
Sleep = Callable[[float], Awaitable[None]]


class Executor:
    """Runs plans. Clock, sleep and randomness are injected so retry timing is testable without waiting."""

    def __init__(
        self,
        routing: RoutingConfig,
        stats: LatencyStats,
        *,
        clock: Clock = time.monotonic,
        sleep: Sleep = asyncio.sleep,
        rand: Callable[[], float] | None = None,
    ) -> None:
        import random

        self.routing = routing
        self.stats = stats
        self.clock = clock
        self.sleep = sleep
        self.rand = rand or random.random

    async def complete(self, request: Request, plan: Plan, request_id: str) -> Response:
        """The first good answer among the candidates, or :class:`AllCandidatesFailedError`."""
        run = _Run(self, request, plan, request_id)
        for dep in run.tries():
            timeout = run.attempt_timeout(dep)
            t0 = time.perf_counter()
            try:
                async with asyncio.timeout(timeout):
                    comp = await dep.adapter.complete(request, api_key=dep.api_key)
            except (ProviderError, TimeoutError) as exc:
                await run.failed(dep, exc, t0, timeout)
                continue
            latency = (time.perf_counter() - t0) * 1000
            run.succeeded(dep, latency)
            return run.response(dep, _from_completion(comp), None)
        raise run.exhausted()

    async def stream(self, request: Request, plan: Plan, request_id: str) -> AsyncIterator[StreamEvent]:
        """Yield ``delta`` events, then one ``done`` event with the assembled response."""
        run = _Run(self, request, plan, request_id)
        for dep in run.tries():
            timeout = min(self.routing.first_chunk_timeout_s, run.attempt_timeout(dep))
            t0 = time.perf_counter()
            agen = dep.adapter.stream(request, api_key=dep.api_key)
            acc = _Accumulator()
            try:
                first = await _first_chunk(agen, timeout, acc)
            except (ProviderError, TimeoutError) as exc:
                await agen.aclose()
                await run.failed(dep, exc, t0, timeout)
                continue
            # Committed: from here on this deployment owns the stream, whatever happens.
            ttfc = (time.perf_counter() - t0) * 1000
            try:
                async for event in self._relay(dep, agen, first, acc):
                    yield event
            except (ProviderError, TimeoutError) as exc:
                raise run.broke(dep, exc, acc, t0) from exc
            finally:
                await agen.aclose()
            latency = (time.perf_counter() - t0) * 1000
            run.succeeded(dep, latency, ttfc)
            resp = run.response(dep, acc.completion(), ttfc)
            yield StreamEvent.model_construct(
                type="done", delta="", deployment=dep.name, model=resp.model, response=resp
            )
            return
        raise run.exhausted()

    async def _relay(
        self, dep: Deployment, agen: AsyncGenerator[Chunk, None], first: Chunk, acc: _Accumulator
    ) -> AsyncIterator[StreamEvent]:
        name, model = dep.name, dep.endpoint.model
        construct = StreamEvent.model_construct
        if first.text:
            yield construct(type="delta", delta=first.text, deployment=name, model=model, response=None)
        idle = self.routing.stream_idle_timeout_s
        while True:
            try:
                async with asyncio.timeout(idle):
                    chunk = await anext(agen)
            except StopAsyncIteration:
                return
            acc.add(chunk)
            if chunk.text:
                yield construct(type="delta", delta=chunk.text, deployment=name, model=model, response=None)


async def _first_chunk(agen: AsyncGenerator[Chunk, None], timeout: float, acc: _Accumulator) -> Chunk:
    """Wait (up to ``timeout`` in all) for the first chunk with text or a finish reason."""
    async with asyncio.timeout(timeout):
        while True:
            try:
                chunk = await anext(agen)
            except StopAsyncIteration:
                raise StreamInterruptedError("stream ended before any content") from None
            acc.add(chunk)
            if chunk.text or chunk.finish_reason:
                return chunk


class _Accumulator:
    """Collects a stream into a completion."""

    __slots__ = ("finish_reason", "model", "parts", "prompt_tokens", "completion_tokens", "cached_tokens", "chunks")

    def __init__(self) -> None:
        self.parts: list[str] = []
        self.finish_reason: str | None = None
        self.model: str | None = None
        self.prompt_tokens: int | None = None
        self.completion_tokens: int | None = None
        self.cached_tokens = 0
        self.chunks = 0

    def add(self, chunk: Chunk) -> None:
        if chunk.text:
            self.parts.append(chunk.text)
            self.chunks += 1
        if chunk.finish_reason:
            self.finish_reason = chunk.finish_reason
        if chunk.model:
            self.model = chunk.model
        if chunk.prompt_tokens is not None:
            self.prompt_tokens = chunk.prompt_tokens
        if chunk.completion_tokens is not None:
            self.completion_tokens = chunk.completion_tokens
        if chunk.cached_tokens:
            self.cached_tokens = chunk.cached_tokens

    def completion(self) -> _Done:
        return _Done(
            "".join(self.parts),
            self.finish_reason,
            self.prompt_tokens,
            self.completion_tokens,
            self.cached_tokens,
            self.model,
        )


class _Done:
    """The provider-neutral result handed to :meth:`_Run.response` (a completion or an assembled stream)."""

    __slots__ = ("cached_tokens", "completion_tokens", "finish_reason", "model", "prompt_tokens", "text")

    def __init__(
        self,
        text: str,
        finish_reason: str | None,
        prompt_tokens: int | None,
        completion_tokens: int | None,
        cached_tokens: int,
        model: str | None,
    ) -> None:
        self.text = text
        self.finish_reason = finish_reason
        self.prompt_tokens = prompt_tokens
        self.completion_tokens = completion_tokens
        self.cached_tokens = cached_tokens
        self.model = model


def _from_completion(c: Completion) -> _Done:
    return _Done(c.text, c.finish_reason, c.prompt_tokens, c.completion_tokens, c.cached_tokens, c.model)


class _Run:
    """State of one request's tries: attempts so far, the deadline, and what to do next."""

    def __init__(self, ex: Executor, request: Request, plan: Plan, request_id: str) -> None:
        self.ex = ex
        self.request = request
        self.plan = plan
        self.request_id = request_id
        self.attempts: list[Attempt] = list(plan.skipped)
        self.errors: list[BaseException] = []
        self.started = time.perf_counter()
        self.deadline = ex.clock() + (request.timeout_s or ex.routing.deadline_s)
        self.min_window = 0
        self.retry_same = False
        self.retries_left = 0
        self.retry_index = 0
        self.waited_s = 0.0
        self.cut_by_deadline = False

    def tries(self) -> Iterator[Deployment]:
        """Each deployment to try next, in order; a deployment repeats while :meth:`failed` asks to retry it."""
        for dep in self.plan.candidates:
            if dep.endpoint.context_window <= self.min_window:
                self.attempts.append(
                    _skipped(
                        dep,
                        f"window {dep.endpoint.context_window} not larger than {self.min_window}, which was too small",
                    )
                )
                continue
            self.retries_left, self.retry_index = self.ex.routing.max_retries, 0
            while True:
                self.retry_same = False
                yield dep
                if not self.retry_same:
                    break

    def attempt_timeout(self, dep: Deployment) -> float:
        """Seconds this attempt may take: its own timeout, cut by what is left of the request's deadline."""
        remaining = self.deadline - self.ex.clock()
        if remaining <= 0:
            raise self.exhausted(deadline=True)
        return min(dep.timeout_s, remaining)

    async def failed(self, dep: Deployment, exc: BaseException, t0: float, timeout: float) -> None:
        """Record a failed attempt and decide: retry the same deployment (after sleeping), move on, or raise."""
        err = _normalise(exc, dep, timeout, self.request_id)
        self.errors.append(err)
        self.attempts.append(_attempt(dep, err, t0, self.waited_s))
        self.waited_s = 0.0
        self.ex.stats.failure(dep.name, err.code)
        decision = decide(err, retries_left=self.retries_left, retry_after_cap_s=self.ex.routing.retry_after_cap_s)
        if decision is Decision.RAISE:
            err.attempts = list(self.attempts)
            raise err
        if decision is Decision.NEXT_LARGER:
            self.min_window = max(self.min_window, dep.endpoint.context_window)
        if decision is not Decision.RETRY_SAME:
            return
        delay = backoff_delay(
            self.retry_index, err, self.ex.routing.backoff, self.ex.rand, self.ex.routing.retry_after_cap_s
        )
        if self.ex.clock() + delay >= self.deadline:
            self.cut_by_deadline = True
            return  # waiting would blow the deadline: the next candidate is the better bet
        await self.ex.sleep(delay)
        self.waited_s = delay
        self.retries_left -= 1
        self.retry_index += 1
        self.retry_same = True

    def succeeded(self, dep: Deployment, latency_ms: float, ttfc_ms: float | None = None) -> None:
        self.ex.stats.success(dep.name, latency_ms, ttfc_ms)
        self.attempts.append(
            Attempt(
                deployment=dep.name,
                provider=dep.provider,
                model=dep.endpoint.model,
                ok=True,
                latency_ms=round(latency_ms, 3),
                waited_ms=round(self.waited_s * 1000, 3),
            )
        )

    def broke(self, dep: Deployment, exc: BaseException, acc: _Accumulator, t0: float) -> StreamInterruptedError:
        """The error a caller sees when a committed stream fails."""
        cause = _normalise(exc, dep, self.ex.routing.stream_idle_timeout_s, self.request_id)
        self.attempts.append(_attempt(dep, cause, t0, self.waited_s))
        self.ex.stats.failure(dep.name, cause.code)
        what = "stalled" if isinstance(cause, ProviderTimeoutError) else "broke"
        err = StreamInterruptedError(
            f"stream from {dep.name} {what} after {acc.chunks} chunks ({len(''.join(acc.parts))} chars): "
            f"{cause.message}",
            status_code=getattr(cause, "status_code", None),
            provider=dep.provider,
            model=dep.endpoint.model,
            deployment=dep.name,
            request_id=self.request_id,
        )
        err.attempts = list(self.attempts)
        return err

    def exhausted(self, *, deadline: bool = False) -> AllCandidatesFailedError:
        tried = [a for a in self.attempts if not a.skipped]
        if deadline:
            why = f"deadline of {self.request.timeout_s or self.ex.routing.deadline_s:g}s exceeded"
        elif not tried:
            why = "no candidate could take the request"
        else:
            why = "every candidate failed"
        if self.cut_by_deadline and not deadline:
            why += f" (retries cut short by the {self.request.timeout_s or self.ex.routing.deadline_s:g}s deadline)"
        lines = "; ".join(
            f"{a.deployment}: {'skipped, ' if a.skipped else ''}{a.error_code}" + (f" ({a.error})" if a.error else "")
            for a in self.attempts
        )
        return AllCandidatesFailedError(
            f"{why} after {len(tried)} attempt(s): {lines}",
            attempts=self.attempts,
            exceptions=self.errors,
            request_id=self.request_id,
        )

    def response(self, dep: Deployment, done: _Done, ttfc_ms: float | None) -> Response:
        usage = _usage(dep, done, self.request)
        tried = sum(1 for a in self.attempts if not a.skipped)
        meta = ResponseMetadata(
            request_id=self.request_id,
            latency_ms=round((time.perf_counter() - self.started) * 1000, 3),
            time_to_first_chunk_ms=round(ttfc_ms, 3) if ttfc_ms is not None else None,
            retries=tried - 1,
            attempts=self.attempts,
            simulated=dep.simulated,
            task=self.request.task,
        )
        return Response(
            id=self.request_id,
            content=done.text,
            model=done.model or dep.endpoint.model,
            deployment=dep.name,
            provider=dep.provider,
            finish_reason=done.finish_reason,  # type: ignore[arg-type]
            usage=usage,
            metadata=meta,
        )


def _usage(dep: Deployment, done: _Done, request: Request) -> Usage:
    estimated = done.prompt_tokens is None or done.completion_tokens is None
    prompt = done.prompt_tokens if done.prompt_tokens is not None else estimate_prompt_tokens(request)
    completion = done.completion_tokens if done.completion_tokens is not None else max(1, len(done.text) // 4)
    return Usage(
        prompt_tokens=prompt,
        completion_tokens=completion,
        total_tokens=prompt + completion,
        cached_tokens=done.cached_tokens,
        cost=dep.estimate_cost(prompt, completion),
        estimated=estimated,
    )


def _normalise(exc: BaseException, dep: Deployment, timeout: float, request_id: str) -> LLMManagerError:
    """Turn a raw failure into our error with the deployment filled in."""
    if isinstance(exc, TimeoutError) and not isinstance(exc, LLMManagerError):
        err: LLMManagerError = ProviderTimeoutError(f"no answer from {dep.name} within {timeout:g}s", timeout_s=timeout)
    elif isinstance(exc, LLMManagerError):
        err = exc
    else:  # pragma: no cover - callers only pass ProviderError / TimeoutError
        raise exc
    err.deployment = err.deployment or dep.name
    err.provider = err.provider or dep.provider
    err.model = err.model or dep.endpoint.model
    err.request_id = err.request_id or request_id
    return err


def _attempt(dep: Deployment, err: LLMManagerError, t0: float, waited_s: float) -> Attempt:
    return Attempt(
        deployment=dep.name,
        provider=dep.provider,
        model=dep.endpoint.model,
        ok=False,
        error_code=err.code,
        error=err.message[:300],
        status_code=getattr(err, "status_code", None),
        retry_after=getattr(err, "retry_after", None),
        latency_ms=round((time.perf_counter() - t0) * 1000, 3),
        waited_ms=round(waited_s * 1000, 3),
    )


def _skipped(dep: Deployment, why: str) -> Attempt:
    return Attempt(
        deployment=dep.name,
        provider=dep.provider,
        model=dep.endpoint.model,
        ok=False,
        skipped=True,
        error_code="context_too_large",
        error=why,
    )
