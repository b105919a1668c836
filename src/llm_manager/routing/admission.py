"""Admission: may this attempt go to this deployment now, and with which key?

Per attempt, in order: the deployment's concurrency cap (``max_concurrent``, a slot held until the call or its
stream ends), its rate-limit buckets (RPM / TPM, reserved with a token estimate), then the circuit breaker of each
usable key (weighted round-robin order) until one admits. After the attempt, :meth:`Admission.settle` frees the
slot, reconciles tokens with the real usage, records the outcome on the breaker, and updates the key pool (a 429
cools the key, an authentication failure removes it).

The concurrency cap lives here, not in the HTTP connection pool: a request beyond it waits in the admission queue,
where priorities, deadlines and ``queue_timeout_s`` apply, instead of silently inside the pool.
"""

from __future__ import annotations

import asyncio
import math
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

from llm_manager.errors import (
    AuthenticationError,
    ModelUnavailableError,
    ProviderTimeoutError,
    RateLimitError,
)
from llm_manager.routing.keypool import KeyEntry, KeyPool
from llm_manager.state.base import BreakerPolicy, StateBackend

if TYPE_CHECKING:
    from llm_manager.config import CircuitBreakerConfig
    from llm_manager.routing.planner import Deployment

__all__ = ["AT_CAPACITY_RETRY_S", "Admission", "Refusal", "Ticket", "breaker_counts_as_failure"]

AT_CAPACITY_RETRY_S = 1.0
"""The ``retry_after`` suggested when every candidate stays at its ``max_concurrent``: a slot frees when some call
ends, which nobody can predict; a second is a polite first guess for a client."""


@dataclass(slots=True)
class Ticket:
    """Permission for one attempt."""

    dep: Deployment
    key: KeyEntry | None
    breaker_key: str
    probe: bool
    reserved_tokens: int
    holds_slot: bool = True
    """Counts in its deployment's in-flight calls until :meth:`Admission.release` (once)."""


@dataclass(slots=True, frozen=True)
class Refusal:
    """Why an attempt may not go now."""

    kind: str
    """``rate_limited`` (local RPM/TPM), ``at_capacity`` (``max_concurrent`` calls in flight), ``circuit_open``, or
    ``no_key`` (every key removed)."""
    retry_in_s: float
    detail: str


def breaker_counts_as_failure(exc: BaseException) -> bool:
    """Only signs of an unhealthy deployment trip breakers: 5xx, resets, timeouts. A 429 is back-pressure (the
    key pool and retry policy handle it); auth and request errors say nothing about the deployment's health."""
    return isinstance(exc, ModelUnavailableError | ProviderTimeoutError | TimeoutError)


class Admission:
    """Breakers, limiters and key pools for every deployment, over one state backend."""

    def __init__(
        self,
        state: StateBackend,
        breaker: CircuitBreakerConfig,
        pools: dict[str, KeyPool],
        *,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.state = state
        self.breaker_on = breaker.enabled
        self.slow_call_s = breaker.slow_call_s
        self.policy = BreakerPolicy(
            failure_threshold=breaker.failure_threshold,
            failure_rate=breaker.failure_rate,
            min_calls=breaker.min_calls,
            window_s=breaker.window_s,
            cooldown_s=breaker.cooldown_s,
            half_open_probes=breaker.half_open_probes,
            half_open_successes=breaker.half_open_successes,
        )
        self.pools = pools
        self.clock = clock
        self.in_flight: dict[str, int] = {}
        """Calls admitted and not yet settled, by deployment (this process only)."""
        self._freed: asyncio.Event | None = None

    @staticmethod
    def breaker_key(dep: Deployment, key: KeyEntry | None) -> str:
        """Breakers are per deployment and key: one bad key must not black out its siblings."""
        return f"{dep.name}:{key.fp}" if key is not None else dep.name

    async def admit(self, dep: Deployment, tokens: int) -> Ticket | Refusal:
        """Reserve capacity and pick a key, or say why not (nothing stays reserved on refusal)."""
        name = dep.name
        busy = self.in_flight.get(name, 0)
        cap = dep.config.max_concurrent
        if cap is not None and busy >= cap:
            return Refusal("at_capacity", AT_CAPACITY_RETRY_S, f"{busy} calls in flight (max_concurrent)")
        self.in_flight[name] = busy + 1  # taken before any await, so that concurrent admits cannot overshoot
        try:
            verdict = await self._admit(dep, tokens)
        except BaseException:  # the state failed or the caller was cancelled: the slot is not kept
            self._free(name)
            raise
        if isinstance(verdict, Refusal):
            self._free(name)
        return verdict

    async def _admit(self, dep: Deployment, tokens: int) -> Ticket | Refusal:
        now = self.clock()
        cfg = dep.config
        limited = cfg.rpm is not None or cfg.tpm is not None
        if limited:
            wait = await self.state.limit_acquire(dep.name, now, rpm=cfg.rpm, tpm=cfg.tpm, tokens=tokens)
            if wait > 0:
                return Refusal("rate_limited", wait, f"local rpm/tpm limit; room in {wait:.2f}s")
        pool = self.pools[dep.name]
        keys: list[KeyEntry | None] = list(pool.candidates(now)) if len(pool) else [None]
        if not keys:
            await self._unreserve(dep, now, tokens, limited)
            wait = pool.next_reprobe_in(now)
            if not math.isfinite(wait):  # removed for good (routing.key_reprobe_s: null)
                return Refusal("no_key", 0.0, "every key was removed after authentication failures")
            detail = f"every key was removed after authentication failures; the first is tried again in {wait:.0f}s"
            return Refusal("no_key", wait, detail)
        soonest = float("inf")
        for key in keys:
            bkey = self.breaker_key(dep, key)
            if not self.breaker_on:
                return self._ticket(dep, key, bkey, False, tokens)
            verdict = await self.state.breaker_allow(bkey, now, self.policy)
            if verdict.allowed:
                return self._ticket(dep, key, bkey, verdict.probe, tokens)
            soonest = min(soonest, verdict.retry_in_s)
        await self._unreserve(dep, now, tokens, limited)
        return Refusal("circuit_open", soonest, f"circuit open; probes allowed in {soonest:.1f}s")

    def _ticket(self, dep: Deployment, key: KeyEntry | None, bkey: str, probe: bool, tokens: int) -> Ticket:
        if key is not None:
            key.uses += 1
        return Ticket(dep, key, bkey, probe, tokens)

    def release(self, ticket: Ticket) -> None:
        """Free the ticket's in-flight slot (a second call does nothing)."""
        if ticket.holds_slot:
            ticket.holds_slot = False
            self._free(ticket.dep.name)

    def _free(self, name: str) -> None:
        self.in_flight[name] -= 1
        freed, self._freed = self._freed, None
        if freed is not None:
            freed.set()

    async def slot_freed(self, timeout_s: float) -> bool:
        """Wait (up to ``timeout_s``) until some deployment's call ends; False on timeout."""
        freed = self._freed
        if freed is None:
            freed = self._freed = asyncio.Event()
        try:
            async with asyncio.timeout(max(0.0, timeout_s)):
                await freed.wait()
        except TimeoutError:
            return False
        return True

    async def _unreserve(self, dep: Deployment, now: float, tokens: int, limited: bool) -> None:
        # The request slot stays spent (buckets have no "refund a request"); the tokens go back.
        if limited and dep.config.tpm is not None:
            await self.state.limit_adjust(dep.name, now, tpm=dep.config.tpm, delta_tokens=-tokens)

    async def settle(
        self, ticket: Ticket, *, error: BaseException | None, used_tokens: int | None, latency_s: float
    ) -> bool:
        """Record the attempt's outcome. Returns True when another key of the pool is worth trying at once."""
        self.release(ticket)
        now = self.clock()
        dep = ticket.dep
        if dep.config.tpm is not None:
            actual = used_tokens if error is None and used_tokens is not None else 0
            delta = actual - ticket.reserved_tokens
            if delta:
                await self.state.limit_adjust(dep.name, now, tpm=dep.config.tpm, delta_tokens=delta)
        if self.breaker_on:
            failed = error is not None and breaker_counts_as_failure(error)
            slow = error is None and self.slow_call_s is not None and latency_s > self.slow_call_s
            counts = error is None or failed  # request-specific errors neither heal nor hurt the breaker
            if counts or ticket.probe:
                await self.state.breaker_record(
                    ticket.breaker_key, now, self.policy, ok=not (failed or slow), probe=ticket.probe
                )
        return self._update_pool(ticket, error, now)

    def _update_pool(self, ticket: Ticket, error: BaseException | None, now: float) -> bool:
        key, pool = ticket.key, self.pools[ticket.dep.name]
        if key is None:
            return False
        if error is None or not (isinstance(error, AuthenticationError) or breaker_counts_as_failure(error)):
            # The provider accepted the key (an answer, a 429, a rejected request): a key on probation is back.
            # A 5xx or a timeout says nothing about the key: it stays on probation.
            pool.restore(key)
        if error is None:
            return False
        key.failures += 1
        if isinstance(error, RateLimitError):
            pool.cool(key, now, error.retry_after)
        elif isinstance(error, AuthenticationError):
            pool.disable(key, f"{error.status_code or ''} {error.message}".strip(), now)
        else:
            return False
        return any(e.usable(now) and e.cooling_until <= now for e in pool.entries)
