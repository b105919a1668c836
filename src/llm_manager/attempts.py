"""The state of one request's tries (:class:`Run`): attempts so far, the deadline, admission tickets, what to do
after a failure, and the response or error they end in. The loop that drives it is :mod:`llm_manager.executor`;
what every run of one manager shares (admission, latency stats, the priority queue, clocks) is :class:`Shared`, so
a run depends on those services and never on the loop that drives it.
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from llm_manager.errors import (
    AllCandidatesFailedError,
    AuthenticationError,
    CircuitOpenError,
    LLMManagerError,
    ProviderError,
    ProviderTimeoutError,
    RateLimitError,
    StreamInterruptedError,
)
from llm_manager.routing.admission import AT_CAPACITY_RETRY_S, Refusal, Ticket
from llm_manager.routing.queue import PriorityGate
from llm_manager.routing.recovery import RecoveryLearner
from llm_manager.routing.retry import Decision, backoff_delay, decide
from llm_manager.tokens import estimate_prompt_tokens
from llm_manager.types import Attempt, Response, ResponseMetadata, Usage

if TYPE_CHECKING:
    from llm_manager.codecs.base import Accumulator, Completion
    from llm_manager.config import BackoffConfig, RoutingConfig
    from llm_manager.routing.admission import Admission
    from llm_manager.routing.planner import Deployment, Plan
    from llm_manager.routing.queue import Waiter
    from llm_manager.routing.stats import LatencyStats
    from llm_manager.types import Request

__all__ = ["Run", "Shared"]

Clock = Callable[[], float]
Sleep = Callable[[float], Awaitable[None]]


@dataclass(slots=True)
class Shared:
    """What every run of one manager uses: the routing settings, admission (breakers, limits, key pools), latency
    stats, the priority queue, how long failures took to clear, and the clock, sleep and randomness (injected so
    retry timing is testable without waiting)."""

    routing: RoutingConfig
    admission: Admission
    stats: LatencyStats
    clock: Clock
    sleep: Sleep
    rand: Callable[[], float]
    gate: PriorityGate = field(default_factory=PriorityGate)
    recovery: RecoveryLearner = field(init=False)
    """How long each deployment's 429s and 5xx took to clear (the ``adaptive`` backoff strategy's memory)."""
    backoffs: dict[str, BackoffConfig] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.recovery = RecoveryLearner(self.clock)

    def backoff_for(self, dep: Deployment) -> BackoffConfig:
        """``routing.backoff`` with the fields set in the deployment's own ``backoff`` (computed once)."""
        policy = self.backoffs.get(dep.name)
        if policy is None:
            own = dep.config.backoff
            policy = self.routing.backoff
            if own is not None:
                policy = policy.model_copy(update=own.model_dump(exclude_unset=True))
            self.backoffs[dep.name] = policy
        return policy


class Run:
    """One request's journey through its candidates."""

    def __init__(
        self, shared: Shared, request: Request, plan: Plan, request_id: str, attempts: list[Attempt] | None = None
    ) -> None:
        self.shared = shared
        self.request = request
        self.plan = plan
        self.request_id = request_id
        self.attempts: list[Attempt] = attempts if attempts is not None else []
        """Every try so far; the caller may pass its own list to see them when a stream is abandoned."""
        self.attempts.extend(plan.skipped)
        self.errors: list[BaseException] = []
        self.refusals: list[tuple[Deployment, Refusal]] = []
        self.started = time.perf_counter()
        routing = shared.routing
        self.deadline = shared.clock() + (request.timeout_s or routing.deadline_s)
        self.queue_deadline = shared.clock() + routing.queue_timeout_s
        self.tokens = plan.needed_tokens
        self.min_window = 0
        self.retry_same = False
        self.retries_left = 0
        self.retry_index = 0
        self.rotations = 0
        self.waited_s = 0.0
        self.cut_by_deadline = False
        self.attempted = False
        self.skip: set[str] = set()
        self.waiter: Waiter | None = None
        self.hedged = False
        self.tickets: list[Ticket] = []
        """Every ticket admitted, so that :meth:`finish` can free a slot that no outcome settled (a cancellation)."""

    # -- order of tries -----------------------------------------------------------------------------------------

    def tries(self) -> Iterator[Deployment]:
        """Each deployment to try next, in order; a deployment repeats while :meth:`failed` asks to retry it."""
        for dep in self.plan.candidates:
            if dep.name in self.skip:
                continue
            if dep.endpoint.context_window <= self.min_window:
                why = f"window {dep.endpoint.context_window} not larger than {self.min_window}, which was too small"
                self.attempts.append(dep.passed_over("context_too_large", why))
                continue
            self.retries_left, self.retry_index, self.rotations = self.shared.routing.max_retries, 0, 0
            while True:
                self.retry_same = False
                yield dep
                if not self.retry_same:
                    break

    def attempt_timeout(self, dep: Deployment, cap: float | None = None) -> float:
        """Seconds this attempt may take: its own timeout (or ``cap``, when shorter: a stream's first-chunk
        timeout), cut by what is left of the request's deadline."""
        remaining = self.deadline - self.shared.clock()
        if remaining <= 0:
            raise self.exhausted(deadline=True)
        return min(dep.timeout_s, remaining) if cap is None else min(dep.timeout_s, remaining, cap)

    # -- admission ----------------------------------------------------------------------------------------------

    async def admit(self, dep: Deployment) -> Ticket | None:
        """A ticket for ``dep``, or ``None`` (the refusal is remembered) when it may not be called now."""
        verdict = await self.shared.admission.admit(dep, self.tokens)
        if isinstance(verdict, Refusal):
            self.refusals.append((dep, verdict))
            self.attempts.append(dep.passed_over(verdict.kind, verdict.detail))
            return None
        self.attempted = True
        self.tickets.append(verdict)
        self.leave_queue()  # admitted: the next in the queue may try now, while this call runs
        return verdict

    async def wait_for_room(self) -> bool:
        """After a pass where nothing was called and some candidate was only at its rate limit or its
        ``max_concurrent``: queue (by priority) and wait until there may be room (the rate limit's wait, or a call
        ending), then allow another pass. False when waiting cannot help."""
        waits = [r.retry_in_s for _, r in self.refusals if r.kind == "rate_limited"]
        busy = any(r.kind == "at_capacity" for _, r in self.refusals)
        if self.attempted or not (waits or busy):
            return False
        until = min(self.queue_deadline, self.deadline)
        wait = min(waits) if waits else None
        if wait is not None and self.shared.clock() + wait > until:
            wait = None
        if wait is None and (not busy or self.shared.clock() >= until):
            return False
        gate = self.shared.gate
        if self.waiter is None:
            self.waiter = gate.enter(self.request.priority)
        await gate.turn(self.waiter)
        if busy:
            freed = await self.shared.admission.slot_freed(wait if wait is not None else until - self.shared.clock())
            if not freed and wait is None:
                return False
        elif wait is not None:
            await self.shared.sleep(wait)
        # Someone of higher priority may have queued while we slept: they go first.
        await gate.turn(self.waiter)
        self.refusals.clear()
        return True

    async def queue_if_others_wait(self) -> None:
        """A newcomer waits behind queued requests of its priority or higher before its first pass."""
        gate = self.shared.gate
        if gate.must_queue(self.request.priority):
            self.waiter = gate.enter(self.request.priority)
            await gate.turn(self.waiter)

    def leave_queue(self) -> None:
        if self.waiter is not None:
            self.shared.gate.leave(self.waiter)
            self.waiter = None

    def finish(self) -> None:
        """Leave the queue and free every in-flight slot still held (settled tickets have freed theirs)."""
        self.leave_queue()
        for ticket in self.tickets:
            self.shared.admission.release(ticket)

    # -- outcomes -----------------------------------------------------------------------------------------------

    async def failed(
        self, ticket: Ticket, exc: BaseException, t0: float, timeout: float, *, decide_next: bool = True
    ) -> LLMManagerError:
        """Record a failed attempt; unless ``decide_next`` is off, choose what comes next (and maybe sleep)."""
        dep = ticket.dep
        latency_s = time.perf_counter() - t0
        err = normalise(exc, dep, timeout, self.request_id)
        self.errors.append(err)
        self._record(ticket, latency_s, self.hedged, **_failure(err))
        self.waited_s = 0.0
        self.shared.stats.failure(dep.name, err.code)
        self.shared.recovery.failed(dep.name, err)
        other_key = await self.shared.admission.settle(ticket, error=err, used_tokens=None, latency_s=latency_s)
        if not decide_next:
            return err
        if other_key and isinstance(err, RateLimitError | AuthenticationError) and self.rotations < 8:
            # Another key of the same deployment may not share this key's limit or problem: try it at once.
            self.rotations += 1
            self.retry_same = True
            return err
        decision = decide(err, retries_left=self.retries_left, retry_after_cap_s=self.shared.routing.retry_after_cap_s)
        if decision is Decision.RAISE:
            err.attempts = list(self.attempts)
            raise err
        if decision is Decision.NEXT_LARGER:
            self.min_window = max(self.min_window, dep.endpoint.context_window)
        if decision is Decision.RETRY_SAME:
            await self._backoff(err, dep)
        return err

    async def _backoff(self, err: LLMManagerError, dep: Deployment) -> None:
        routing = self.shared.routing
        policy = self.shared.backoff_for(dep)
        learned = self.shared.recovery.wait(dep.name, err) if policy.strategy == "adaptive" else None
        delay = backoff_delay(self.retry_index, err, policy, self.shared.rand, routing.retry_after_cap_s, learned)
        if learned is not None and delay > routing.retry_after_cap_s:
            return  # expected to stay down longer than a Retry-After we would honour: the next candidate it is
        if self.shared.clock() + delay >= self.deadline:
            self.cut_by_deadline = True
            return  # waiting would blow the deadline: the next candidate is the better bet
        await self.shared.sleep(delay)
        self.waited_s = delay
        self.retries_left -= 1
        self.retry_index += 1
        self.retry_same = True

    async def succeeded(self, ticket: Ticket, done: Completion, latency_s: float, ttfc_ms: float | None = None) -> None:
        dep = ticket.dep
        self.shared.stats.success(dep.name, latency_s * 1000, ttfc_ms)
        self.shared.recovery.succeeded(dep.name, self.shared.clock() - latency_s)
        await self.shared.admission.settle(ticket, error=None, used_tokens=done.used_tokens(), latency_s=latency_s)
        self._record(ticket, latency_s, self.hedged, ok=True)

    def _record(self, ticket: Ticket, latency_s: float, hedge: bool, *, waited: bool = True, **outcome: Any) -> None:
        """Add an attempt that called ``ticket``'s deployment (``outcome``: its :class:`Attempt` fields)."""
        dep = ticket.dep
        self.attempts.append(
            Attempt(
                deployment=dep.name,
                provider=dep.provider,
                model=dep.endpoint.model,
                latency_ms=round(latency_s * 1000, 3),
                waited_ms=round(self.waited_s * 1000, 3) if waited else 0.0,
                key=ticket.key.fp if ticket.key else None,
                hedge=hedge,
                **outcome,
            )
        )

    async def abandoned(self, ticket: Ticket, t0: float) -> None:
        """A hedge's loser, cancelled: its prompt was (probably) paid for, so record an estimated cost."""
        why = "cancelled: the other candidate answered first"
        await self._paid_unanswered(ticket, t0, estimate_prompt_tokens(self.request), 0, "hedge_lost", why, True)

    async def cancelled(self, ticket: Ticket, acc: Accumulator, t0: float) -> None:
        """The caller stopped reading a stream that was answering. Not the provider's failure (breakers and
        stats are left alone), but it billed the prompt and what it had generated: record an estimated cost."""
        done = acc.done()
        prompt = done.prompt_tokens if done.prompt_tokens is not None else estimate_prompt_tokens(self.request)
        chars = len(done.text) + sum(len(c.name) + len(c.arguments) for c in done.tool_calls)
        completion = done.completion_tokens if done.completion_tokens is not None else max(1, chars // 4)
        why = f"the caller stopped reading after {acc.chunks} chunks"
        await self._paid_unanswered(ticket, t0, prompt, completion, "cancelled", why, self.hedged)

    async def _paid_unanswered(
        self, ticket: Ticket, t0: float, prompt: int, completion: int, code: str, why: str, hedge: bool
    ) -> None:
        """An attempt that cost money but gave no answer: settle its slot as a success (the provider worked) and
        record it with its estimated cost."""
        latency_s = time.perf_counter() - t0
        await self.shared.admission.settle(ticket, error=None, used_tokens=prompt + completion, latency_s=latency_s)
        cost = ticket.dep.estimate_cost(prompt, completion)
        self._record(ticket, latency_s, hedge, waited=not hedge, ok=False, error_code=code, error=why, cost=cost)

    def broke(self, ticket: Ticket, exc: BaseException, acc: Accumulator, t0: float) -> StreamInterruptedError:
        """The error a caller sees when a committed stream fails."""
        dep = ticket.dep
        cause = normalise(exc, dep, self.shared.routing.stream_idle_timeout_s, self.request_id)
        self._record(ticket, time.perf_counter() - t0, False, **_failure(cause))
        self.shared.stats.failure(dep.name, cause.code)
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

    def exhausted(self, *, deadline: bool = False) -> LLMManagerError:
        """The error when no candidate answered."""
        tried = [a for a in self.attempts if not a.skipped]
        if not tried and self.refusals and not deadline:
            return self._refused_error()
        if deadline:
            why = f"deadline of {self.request.timeout_s or self.shared.routing.deadline_s:g}s exceeded"
        elif not tried:
            why = "no candidate could take the request"
        else:
            why = "every candidate failed"
        if self.cut_by_deadline and not deadline:
            why += f" (retries cut short by the {self.request.timeout_s or self.shared.routing.deadline_s:g}s deadline)"
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

    def _refused_error(self) -> LLMManagerError:
        kinds = {r.kind for _, r in self.refusals}
        soonest = min(r.retry_in_s for _, r in self.refusals)
        names = ", ".join(dict.fromkeys(d.name for d, _ in self.refusals))
        err: LLMManagerError
        if "rate_limited" in kinds:
            err = RateLimitError(
                f"every candidate is at its rate limit ({names}); waited up to the "
                f"{self.shared.routing.queue_timeout_s:g}s queue timeout",
                retry_after=round(soonest, 3),
                request_id=self.request_id,
            )
        elif "at_capacity" in kinds:
            err = RateLimitError(
                f"every candidate has its max_concurrent calls in flight ({names}); waited up to the "
                f"{self.shared.routing.queue_timeout_s:g}s queue timeout",
                retry_after=AT_CAPACITY_RETRY_S,
                request_id=self.request_id,
            )
        elif kinds == {"circuit_open"}:
            err = CircuitOpenError(
                f"every candidate's circuit is open ({names}); retry in {soonest:.1f}s",
                retry_after=round(soonest, 3),
                request_id=self.request_id,
            )
        else:
            why = "; ".join(dict.fromkeys(f"{d.name}: {r.detail}" for d, r in self.refusals))
            return AllCandidatesFailedError(
                f"no candidate could take the request: {why}", attempts=self.attempts, request_id=self.request_id
            )
        err.attempts = list(self.attempts)
        return err

    def response(self, dep: Deployment, done: Completion, ttfc_ms: float | None) -> Response:
        usage = _usage(dep, done, self.request)
        tried = sum(1 for a in self.attempts if not a.skipped)
        dropped = dep.adapter.unsupported(self.request)
        meta = ResponseMetadata(
            request_id=self.request_id,
            latency_ms=round((time.perf_counter() - self.started) * 1000, 3),
            time_to_first_chunk_ms=round(ttfc_ms, 3) if ttfc_ms is not None else None,
            retries=max(0, tried - 1),
            attempts=self.attempts,
            simulated=dep.simulated,
            hedged=self.hedged,
            task=self.request.task,
            dropped_params=dropped.names if dropped is not None else [],
            warnings=dropped.warnings(dep.name) if dropped is not None else [],
        )
        return Response(
            id=self.request_id,
            content=done.text,
            model=done.model or dep.endpoint.model,
            deployment=dep.name,
            provider=dep.provider,
            finish_reason=done.finish_reason,
            tool_calls=done.tool_calls,
            reasoning=done.reasoning or None,
            reasoning_signature=done.reasoning_signature,
            logprobs=done.logprobs,
            system_fingerprint=done.system_fingerprint,
            usage=usage,
            metadata=meta,
        )


def _usage(dep: Deployment, done: Completion, request: Request) -> Usage:
    estimated = done.prompt_tokens is None or done.completion_tokens is None
    prompt = done.prompt_tokens if done.prompt_tokens is not None else estimate_prompt_tokens(request)
    chars = len(done.text) + sum(len(c.name) + len(c.arguments) for c in done.tool_calls)
    completion = done.completion_tokens if done.completion_tokens is not None else max(1, chars // 4)
    # What the provider says it read from or wrote to its cache is part of the prompt; an estimated prompt may be
    # smaller than that, and a price never bills more cached tokens than prompt tokens.
    cached = min(done.cached_tokens, prompt)
    written = min(done.cache_write_tokens, prompt - cached)
    return Usage(
        prompt_tokens=prompt,
        completion_tokens=completion,
        total_tokens=prompt + completion,
        cached_tokens=done.cached_tokens,
        cache_write_tokens=done.cache_write_tokens,
        reasoning_tokens=done.reasoning_tokens,
        cost=dep.estimate_cost(prompt, completion, cached, written),
        estimated=estimated,
    )


def normalise(exc: BaseException, dep: Deployment, timeout: float, request_id: str) -> LLMManagerError:
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


def _failure(err: LLMManagerError) -> dict[str, Any]:
    """The :class:`Attempt` fields of a failed attempt."""
    return {
        "ok": False,
        "error_code": err.code,
        "error": err.message[:300],
        "status_code": err.status_code if isinstance(err, ProviderError) else None,
        "retry_after": getattr(err, "retry_after", None),
    }
