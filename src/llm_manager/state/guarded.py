"""Shared state that never stalls a request: every Redis operation is bounded in time, and while Redis does not
answer the replica follows ``state.on_unavailable``.

Why a wrapper: the business code (admission, budgets, the cache) calls :class:`StateBackend` methods and should not
know what a hung socket is; a deadline and a policy around each of the backend's operations cover every Lua
script at once.

* **Deadline.** A refused connection makes Redis *unavailable* at once. An operation still waiting after
  ``state.timeout_s`` (default 1 s, the wait for a pooled connection included) makes the watcher ping Redis at once,
  on a connection of its own, within ``timeout_s`` (plus however late our own event loop is running); if that
  fails too, Redis is unavailable and every operation still waiting on it is cut. A slow operation is not cut on
  its own account: under load the slow one may be our event loop, not Redis, and cutting a reservation Redis did
  apply would leak it. So a hung Redis stalls a request for about ``2.5 × timeout_s`` at most, once; while
  unavailable, no operation waits at all, and the watcher probes every ``heartbeat_s`` until Redis answers again.
* **fail_closed** (the default): operations that decide whether a request may go (breaker admission, rate-limit
  buckets, budget reservations, cache reads, views) raise :class:`~llm_manager.errors.StateUnavailableError`;
  the gateway answers 503 with ``retry-after`` and ``x-should-retry: true`` and ``/health/ready`` answers 503, so
  a load balancer drains the replica.
* **fail_open**: the same operations run on an in-process :class:`~llm_manager.state.memory.MemoryState`, with
  every limit divided by the replicas last seen alive: an RPM of 600 with three replicas alive is 200 here, and a
  budget's local share is ``(limit - the counter's last value seen in Redis) / replicas``. So the replicas together
  stay within the limit as long as they all lose Redis together (the usual case: one Redis for all).
* **Nothing spent is lost.** Whatever the policy, recording what happened after a request (breaker results, token
  reconciliation, cache writes) never fails a request: it goes to the local state while Redis is away. Spend is
  money: a settlement or charge Redis did not take is kept per budget counter and written to Redis (one settle
  per counter) as soon as it answers again, before the replica counts it as available.
* **Reconciled when Redis is back**: pending spend written, then the local breakers, buckets and cache are dropped
  (Redis holds the shared truth again). Holds reserved locally and settled later are charged to Redis as spend.
  A settlement is matched to its local hold by the hold's id (budgets always reserve with one; a reservation
  without an id is matched by amount).
* **Live replicas**: every replica adds itself to a sorted set in Redis every ``heartbeat_s`` (Redis's clock);
  those heard from in the last three beats are alive. The count is also shown in ``/admin/status`` and
  ``/metrics``. A replica shutting down withdraws at once.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import secrets
import socket
import time
from collections.abc import Awaitable, Callable, Sequence
from typing import TYPE_CHECKING, Literal, TypeVar

from llm_manager.errors import StateUnavailableError
from llm_manager.state.base import (
    BUDGET_MAX,
    BreakerPolicy,
    BreakerState,
    BreakerVerdict,
    BreakerView,
    Lease,
    StateBackend,
    StateHealth,
)
from llm_manager.state.memory import MemoryState

if TYPE_CHECKING:
    from llm_manager.state.redis import RedisState

__all__ = ["GuardedState"]

log = logging.getLogger("llm_manager.state")
T = TypeVar("T")

_BEATS_ALIVE = 3
"""A replica not heard from for this many heartbeats is no longer counted."""
_HARD_FACTOR = 10
"""An operation is cut after this many ``timeout_s`` even if no probe failed (a stuck watcher's backstop)."""


class _Down(Exception):
    """The shared backend did not answer (raised inside this module only)."""


class _Debt:
    """A budget counter's settlements Redis has not taken yet (nanodollars, exact ints). A leased hold's is kept
    apart, by id with its spend: Redis may have applied it before its answer was lost, and settling the same hold
    again is a no-op there, where adding its spend to the rest would count it twice."""

    __slots__ = ("expire_at", "holds", "released", "spent")

    def __init__(self, expire_at: float) -> None:
        self.released = 0
        self.spent = 0
        self.expire_at = expire_at
        self.holds: list[tuple[str, int]] = []


class GuardedState(StateBackend):
    """``inner`` (Redis) under a per-operation deadline, with the ``on_unavailable`` policy when it fails."""

    def __init__(
        self,
        inner: RedisState,
        *,
        policy: Literal["fail_closed", "fail_open"] = "fail_closed",
        timeout_s: float = 1.0,
        heartbeat_s: float = 1.0,
    ) -> None:
        self.inner = inner
        self.local = MemoryState()
        self.policy: Literal["fail_closed", "fail_open"] = policy
        self.timeout_s = timeout_s
        self.heartbeat_s = heartbeat_s
        self.member = f"{socket.gethostname()}:{os.getpid()}:{secrets.token_hex(4)}"
        self.available = True
        self.unavailable_since: float | None = None
        self.replicas = 1
        self.failures = 0
        self._errors = inner.unavailable_errors
        self._errors_or_late: tuple[type[BaseException], ...] = (TimeoutError, *inner.unavailable_errors)
        self._known: dict[str, int] = {}
        """Budget key → ``spent + reserved`` as Redis last reported it (the base of a local share)."""
        self._local_held: dict[str, int] = {}
        """Budget key → nanodollars reserved locally (without a hold id) and not settled yet."""
        self._local_ids: set[str] = set()
        """Hold ids reserved locally and not settled yet."""
        self._pending: dict[str, _Debt] = {}
        """Budget key → what Redis has not taken yet."""
        self._waiting: dict[asyncio.Timeout, float] = {}
        """Operations waiting on Redis → when they started (event-loop time)."""
        self._watcher: asyncio.Task[None] | None = None
        self._wake: asyncio.Event | None = None
        self._contacted = False
        self._closed = False

    # -- the deadline and the policy ----------------------------------------------------------------------------

    async def _shared(self, op: Callable[[], Awaitable[T]]) -> T:
        """``op()`` on Redis; :class:`_Down` when Redis is unavailable, refuses, or is found hung while we wait.

        An operation slower than ``timeout_s`` is not cut on its own account: our event loop may be the slow one
        (a busy replica), and cutting a reservation Redis did apply would leak it. The watcher probes Redis instead
        and, if the probe fails too, cuts every operation still waiting (:meth:`_lost`). ``_HARD_FACTOR`` times the
        deadline is the backstop should the watcher itself be stuck.
        """
        if self._watcher is None:
            self._start()
        if not self.available:
            raise _Down
        loop = asyncio.get_running_loop()
        try:
            async with asyncio.timeout(self.timeout_s * _HARD_FACTOR) as cm:
                self._waiting[cm] = loop.time()
                try:
                    result = await op()
                finally:
                    del self._waiting[cm]
        except TimeoutError:
            self.failures += 1
            raise _Down from None
        except self._errors as exc:
            self.failures += 1
            self._lost(exc)
            raise _Down from None
        self._contacted = True
        return result

    async def _gate(self, shared: Callable[[], Awaitable[T]], local: Callable[[], Awaitable[T]]) -> T:
        """An operation a request's admission depends on: Redis, else the policy (local state, or a refusal)."""
        try:
            return await self._shared(shared)
        except _Down:
            if self.policy == "fail_open":
                return await local()
            raise self._refusal() from None

    async def _record(self, shared: Callable[[], Awaitable[T]], local: Callable[[], Awaitable[T]]) -> T:
        """An operation after the fact: Redis, else the local state; never fails the request it belongs to."""
        try:
            return await self._shared(shared)
        except _Down:
            return await local()

    def _refusal(self) -> StateUnavailableError:
        return StateUnavailableError(
            f"the shared state (Redis) is unavailable and state.on_unavailable is fail_closed; retry in "
            f"{self.heartbeat_s:g}s or on another replica",
            retry_after=self.heartbeat_s,
        )

    def _share(self, limit: int | None) -> int | None:
        """A limit's local share while Redis is away: the limit divided by the replicas last seen alive."""
        if limit is None:
            return None
        return max(1, limit // max(1, self.replicas))

    # -- circuit breakers ---------------------------------------------------------------------------------------

    async def breaker_allow(self, key: str, now: float, policy: BreakerPolicy) -> BreakerVerdict:
        return await self._gate(
            lambda: self.inner.breaker_allow(key, now, policy), lambda: self.local.breaker_allow(key, now, policy)
        )

    async def breaker_record(
        self, key: str, now: float, policy: BreakerPolicy, *, ok: bool, probe: bool
    ) -> BreakerState:
        return await self._record(
            lambda: self.inner.breaker_record(key, now, policy, ok=ok, probe=probe),
            lambda: self.local.breaker_record(key, now, policy, ok=ok, probe=probe),
        )

    async def breaker_view(self, keys: Sequence[str], now: float, policy: BreakerPolicy) -> dict[str, BreakerView]:
        return await self._gate(
            lambda: self.inner.breaker_view(keys, now, policy), lambda: self.local.breaker_view(keys, now, policy)
        )

    async def breaker_reset(self, key: str) -> None:
        await self.local.breaker_reset(key)
        await self._gate(lambda: self.inner.breaker_reset(key), _nothing)

    # -- rate limits --------------------------------------------------------------------------------------------

    async def limit_acquire(self, key: str, now: float, *, rpm: int | None, tpm: int | None, tokens: int) -> float:
        return await self._gate(
            lambda: self.inner.limit_acquire(key, now, rpm=rpm, tpm=tpm, tokens=tokens),
            lambda: self.local.limit_acquire(key, now, rpm=self._share(rpm), tpm=self._share(tpm), tokens=tokens),
        )

    async def limit_adjust(self, key: str, now: float, *, tpm: int | None, delta_tokens: int) -> None:
        await self._record(
            lambda: self.inner.limit_adjust(key, now, tpm=tpm, delta_tokens=delta_tokens),
            lambda: self.local.limit_adjust(key, now, tpm=self._share(tpm), delta_tokens=delta_tokens),
        )

    async def limit_view(
        self, key: str, now: float, *, rpm: int | None, tpm: int | None
    ) -> tuple[float | None, float | None]:
        return await self._gate(
            lambda: self.inner.limit_view(key, now, rpm=rpm, tpm=tpm),
            lambda: self.local.limit_view(key, now, rpm=self._share(rpm), tpm=self._share(tpm)),
        )

    # -- budgets ------------------------------------------------------------------------------------------------

    async def budget_reserve(
        self, key: str, amount: int, limit: int | None, *, expire_at: float, lease: Lease | None = None
    ) -> tuple[bool, int]:
        try:
            admitted, total = await self._shared(
                lambda: self.inner.budget_reserve(key, amount, limit, expire_at=expire_at, lease=lease)
            )
        except _Down:
            if self.policy != "fail_open":
                raise self._refusal() from None
            return await self._reserve_locally(key, amount, limit, expire_at, lease)
        self._known[key] = total
        return admitted, total

    async def _reserve_locally(
        self, key: str, amount: int, limit: int | None, expire_at: float, lease: Lease | None
    ) -> tuple[bool, int]:
        hold = lease.hold if lease is not None else None
        if lease is not None and lease.seeded:  # the local share needs no seed: it is a share of Redis's last word
            lease = Lease(lease.hold, lease.seconds)
        known = self._known.get(key, 0)
        share = None if limit is None else max(0, limit - known) // max(1, self.replicas)
        admitted, total = await self.local.budget_reserve(key, amount, share, expire_at=expire_at, lease=lease)
        if admitted:
            if hold is not None:
                self._local_ids.add(hold)
            else:
                self._local_held[key] = self._local_held.get(key, 0) + amount
        # What this replica knows of the whole counter: Redis's last word plus what it spent on its own since.
        return admitted, known + total

    async def budget_settle(
        self, key: str, reserved: int, actual: int, *, expire_at: float, hold: str | None = None
    ) -> int:
        if self._made_locally(key, reserved, hold):  # a hold made locally while Redis was away
            if self.available:
                return await self.budget_add(key, actual, expire_at=expire_at)
            await self.local.budget_settle(key, reserved, actual, expire_at=expire_at, hold=hold)
            return self._owe(key, 0, actual, expire_at)
        try:
            total = await self._shared(
                lambda: self.inner.budget_settle(key, reserved, actual, expire_at=expire_at, hold=hold)
            )
        except _Down:
            # A Redis hold, Redis away: the spend counts against the local share now and goes to Redis later,
            # together with the release of the hold.
            await self.local.budget_add(key, actual, expire_at=expire_at)
            return self._owe(key, 0 if hold is not None else reserved, actual, expire_at, hold)
        self._known[key] = total
        return total

    def _made_locally(self, key: str, reserved: int, hold: str | None) -> bool:
        """Whether the reservation being settled was made on the local state (and forget it there)."""
        if hold is not None:
            if hold in self._local_ids:
                self._local_ids.discard(hold)
                return True
            return False
        held = self._local_held.get(key, 0)
        if reserved > 0 and held >= reserved:  # no identity: matched by amount
            if held == reserved:
                del self._local_held[key]
            else:
                self._local_held[key] = held - reserved
            return True
        return False

    async def budget_add(self, key: str, amount: int, *, expire_at: float) -> int:
        try:
            total = await self._shared(lambda: self.inner.budget_add(key, amount, expire_at=expire_at))
        except _Down:
            await self.local.budget_add(key, amount, expire_at=expire_at)
            return self._owe(key, 0, amount, expire_at)
        self._known[key] = total
        return total

    async def budget_seed(self, key: str, spent: int, *, expire_at: float) -> bool:
        try:
            return await self._shared(lambda: self.inner.budget_seed(key, spent, expire_at=expire_at))
        except _Down:
            if self.policy != "fail_open":
                raise self._refusal() from None
            return False  # reservations go to the local share meanwhile, which needs no seed

    def _owe(self, key: str, released: int, spent: int, expire_at: float, hold: str | None = None) -> int:
        """Keep a settlement Redis has not taken, for :meth:`_reconcile`; return the counter's best known total."""
        debt = self._pending.get(key)
        if debt is None:
            debt = self._pending[key] = _Debt(expire_at)
        debt.released += released
        if hold is not None:
            debt.holds.append((hold, spent))
        else:
            debt.spent += spent
        debt.expire_at = max(debt.expire_at, expire_at)
        return self._known.get(key, 0) + spent

    async def budget_view(self, keys: Sequence[str]) -> dict[str, tuple[int, int]]:
        return await self._gate(lambda: self.inner.budget_view(keys), lambda: self._local_budget_view(keys))

    async def _local_budget_view(self, keys: Sequence[str]) -> dict[str, tuple[int, int]]:
        local = await self.local.budget_view(keys)
        return {k: (self._known.get(k, 0) + spent, reserved) for k, (spent, reserved) in local.items()}

    # -- response cache -----------------------------------------------------------------------------------------

    async def cache_get(self, key: str, now: float) -> bytes | None:
        return await self._gate(lambda: self.inner.cache_get(key, now), lambda: self.local.cache_get(key, now))

    async def cache_set(self, key: str, value: bytes, now: float, *, ttl_s: float, max_entries: int) -> None:
        await self._record(
            lambda: self.inner.cache_set(key, value, now, ttl_s=ttl_s, max_entries=max_entries),
            lambda: self.local.cache_set(key, value, now, ttl_s=ttl_s, max_entries=max_entries),
        )

    async def cache_size(self) -> int:
        return await self._gate(self.inner.cache_size, self.local.cache_size)

    async def cache_clear(self) -> None:
        await self.local.cache_clear()
        await self._gate(self.inner.cache_clear, _nothing)

    # -- health and the watcher ---------------------------------------------------------------------------------

    def health(self) -> StateHealth:
        return StateHealth(
            backend="redis",
            available=self.available,
            policy=self.policy,
            replicas=self.replicas,
            unavailable_since=self.unavailable_since,
            failures=self.failures,
            pending=len(self._pending),
        )

    async def check(self) -> StateHealth:
        if self._watcher is None:
            self._start()
        if not self._contacted and self.available:
            await self._beat()  # nothing has touched Redis yet: a readiness probe must not say "ready" blindly
        return self.health()

    def _start(self) -> None:
        if self._closed:
            return
        self._wake = asyncio.Event()
        self._watcher = asyncio.get_running_loop().create_task(self._watch(), name="llm-manager state watcher")

    def _lost(self, exc: BaseException | None) -> None:
        """Redis refused or a probe failed: unavailable from now on, and every operation waiting on it is cut."""
        if self.available:
            self.available = False
            self.unavailable_since = time.time()
            what = f"{type(exc).__name__}: {exc}" if exc is not None else f"no answer within {self.timeout_s:g}s"
            log.warning("state: Redis unavailable (%s); on_unavailable=%s", what, self.policy)
        if self._waiting:
            now = asyncio.get_running_loop().time()
            for cm in list(self._waiting):
                with contextlib.suppress(RuntimeError):  # one that expired meanwhile is ending already
                    cm.reschedule(now)
        if self._wake is not None:
            self._wake.set()

    def _slowest(self) -> float:
        """How long the oldest operation still waiting on Redis has waited (0 when none is)."""
        if not self._waiting:
            return 0.0
        return asyncio.get_running_loop().time() - min(self._waiting.values())

    async def _watch(self) -> None:
        """Heartbeat while Redis answers, probe (and reconcile) while it does not; between beats, probe at once
        when an operation has waited longer than ``timeout_s``."""
        assert self._wake is not None
        loop = asyncio.get_running_loop()
        lag = 0.0
        while True:
            await self._beat(lag)
            if self._closed:  # also when the Redis client swallowed our cancellation (seen with redis-py 8)
                return
            self._wake.clear()
            next_beat = loop.time() + self.heartbeat_s
            while (left := next_beat - loop.time()) > 0 and not self._wake.is_set():
                step = min(left, self.timeout_s / 2)
                expected = loop.time() + step
                with contextlib.suppress(TimeoutError):
                    async with asyncio.timeout(step):
                        await self._wake.wait()
                # How late this loop woke: a starved event loop makes everything late, Redis included.
                lag = max(0.0, loop.time() - expected)
                if self.available and self._slowest() > self.timeout_s + lag:
                    break

    async def _beat(self, lag: float = 0.0) -> None:
        try:
            async with asyncio.timeout(self.timeout_s + lag):
                self.replicas = max(1, await self.inner.heartbeat(self.member, self.heartbeat_s * _BEATS_ALIVE))
        except self._errors_or_late as exc:
            self.failures += 1
            self._lost(None if isinstance(exc, TimeoutError) else exc)
            return
        self._contacted = True
        if not self.available:
            await self._reconcile()

    async def _reconcile(self) -> None:
        """Redis answers again: write what it missed, drop the local stand-ins, and count it as available."""
        try:
            for key, debt in list(self._pending.items()):
                while debt.holds:  # each releases what Redis still counts for it (nothing once it lapsed)
                    hold, spent = debt.holds[-1]
                    async with asyncio.timeout(self.timeout_s):
                        await self.inner.budget_settle(key, 0, spent, expire_at=debt.expire_at, hold=hold)
                    debt.holds.pop()
                released, spent = min(debt.released, BUDGET_MAX), min(debt.spent, BUDGET_MAX)
                async with asyncio.timeout(self.timeout_s):
                    total = await self.inner.budget_settle(key, released, spent, expire_at=debt.expire_at)
                del self._pending[key]
                self._known[key] = total
        except self._errors_or_late:
            return  # still flaky: the next probe tries again
        self.local = MemoryState()
        self.available = True
        down_for = time.time() - (self.unavailable_since or time.time())
        self.unavailable_since = None
        log.warning("state: Redis available again after %.1fs; local state reconciled", down_for)

    # -- lifecycle ----------------------------------------------------------------------------------------------

    async def aclose(self) -> None:
        self._closed = True
        if self._watcher is not None:
            self._watcher.cancel()
            # Bounded: a cancellation that lands inside the Redis client may be swallowed there; the loop then
            # sees _closed when its heartbeat (itself bounded by timeout_s) returns.
            await asyncio.wait([self._watcher], timeout=self.timeout_s + 1)
            self._watcher = None
        if self.available and self._contacted:
            with contextlib.suppress(*self._errors_or_late):
                async with asyncio.timeout(self.timeout_s):
                    await self.inner.leave(self.member)
            if self._pending:
                await self._reconcile()
        if self._pending:
            log.warning("state: %d budget counters' spend could not be written to Redis", len(self._pending))
        await self.inner.aclose()


async def _nothing() -> None:
    return None
