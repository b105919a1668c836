"""Where shared counters live: circuit breakers, rate-limit buckets and cached responses.

Two implementations keep the same semantics: :mod:`~llm_manager.state.memory` (one process, the default) and
:mod:`~llm_manager.state.redis` (every process pointing at one Redis shares one state; each operation is a single
Lua script, so there is no read-modify-write in Python). Times are wall-clock seconds (``time.time()``) passed in
by the caller, so tests inject a clock and several processes on one host agree.

Business rules (when to count a call as failed, which key to use, what to do when there is no room) are the
caller's; this layer only keeps the numbers atomically.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

__all__ = ["BreakerPolicy", "BreakerState", "BreakerVerdict", "BreakerView", "StateBackend"]

BreakerState = Literal["closed", "open", "half_open"]


@dataclass(frozen=True, slots=True)
class BreakerPolicy:
    """When a breaker opens and how it recovers."""

    failure_threshold: int = 5
    """Open after this many failures within ``window_s`` (0 disables the count rule)."""
    failure_rate: float | None = None
    """Also open when failures / calls ≥ this within ``window_s``, once ``min_calls`` calls were seen."""
    min_calls: int = 10
    window_s: float = 60.0
    """Failures and calls are counted in a fixed window starting at the first call after the previous window."""
    cooldown_s: float = 60.0
    """How long an open breaker refuses before letting probes through."""
    half_open_probes: int = 1
    """Probe calls allowed in flight at once while half-open."""
    half_open_successes: int = 2
    """Successful probes needed to close again; one failed probe re-opens (with a fresh cooldown)."""


@dataclass(frozen=True, slots=True)
class BreakerVerdict:
    """Answer of :meth:`StateBackend.breaker_allow`."""

    allowed: bool
    state: BreakerState
    """State after the check (an open breaker whose cooldown is over is reported as ``half_open``)."""
    probe: bool
    """True when the call was admitted as a half-open probe (its result must be recorded with ``probe=True``)."""
    retry_in_s: float
    """When refused: seconds until it may admit again (cooldown left, or a short wait for a probe slot)."""


@dataclass(frozen=True, slots=True)
class BreakerView:
    """Read-only snapshot for status pages."""

    state: BreakerState
    calls: int
    failures: int
    cooldown_left_s: float
    """Seconds until an open breaker admits probes (0 when not open)."""
    opened_at: float | None


class StateBackend(ABC):
    """Atomic operations on shared state. Keys are opaque strings chosen by the caller."""

    # -- circuit breakers ---------------------------------------------------------------------------------------

    @abstractmethod
    async def breaker_allow(self, key: str, now: float, policy: BreakerPolicy) -> BreakerVerdict:
        """May a call go to ``key`` now?

        closed → allowed. open → refused until ``opened_at + cooldown_s``; from then on it is half-open.
        half-open → allowed as a probe while fewer than ``half_open_probes`` probes are in flight (admitting one
        counts it in flight), refused otherwise.
        """

    @abstractmethod
    async def breaker_record(
        self, key: str, now: float, policy: BreakerPolicy, *, ok: bool, probe: bool
    ) -> BreakerState:
        """Record a call's outcome; return the state afterwards.

        closed: start a new window if ``now - window_start >= window_s``; count the call (and the failure); open
        (``opened_at = now``) when the count rule or the rate rule trips. half-open (``probe=True``): release the
        probe slot; a success counts toward ``half_open_successes`` (reaching it closes the breaker and clears the
        counters); a failure re-opens it with ``opened_at = now``. A result recorded while open (a call admitted
        before the breaker opened) changes nothing.
        """

    @abstractmethod
    async def breaker_view(self, keys: Sequence[str], now: float, policy: BreakerPolicy) -> dict[str, BreakerView]:
        """Snapshots of ``keys`` (unknown keys are closed with zero counts). Never changes state."""

    @abstractmethod
    async def breaker_reset(self, key: str) -> None:
        """Forget ``key`` (closed, zero counts)."""

    # -- rate limits (token buckets) ----------------------------------------------------------------------------

    @abstractmethod
    async def limit_acquire(self, key: str, now: float, *, rpm: int | None, tpm: int | None, tokens: int) -> float:
        """Reserve one request and ``tokens`` tokens; return 0.0 when reserved, else seconds until there may be room.

        Two buckets per key, both full at first use: requests (capacity ``rpm``, refilled at ``rpm / 60`` per
        second) and tokens (capacity ``tpm``, refilled at ``tpm / 60`` per second). ``None`` means unlimited.
        Both are debited together or not at all. A request needing more tokens than ``tpm`` is admitted when the
        token bucket is full (and leaves it at zero or below), so it is slowed down but never starved forever.
        """

    @abstractmethod
    async def limit_adjust(self, key: str, now: float, *, tpm: int | None, delta_tokens: int) -> None:
        """Reconcile the token bucket after the real usage is known: ``delta_tokens = actual - reserved``.

        Positive debits more (the bucket may go below zero, delaying later requests); negative gives tokens back
        (never above capacity). No-op when ``tpm`` is ``None``.
        """

    @abstractmethod
    async def limit_view(
        self, key: str, now: float, *, rpm: int | None, tpm: int | None
    ) -> tuple[float | None, float | None]:
        """Requests and tokens available now (after refill), ``None`` for unlimited. Never changes state."""

    # -- response cache (bytes; TTL plus a hard bound on entries, least recently used evicted first) -----------

    @abstractmethod
    async def cache_get(self, key: str, now: float) -> bytes | None:
        """The value if present and not expired (a hit refreshes its recency, not its TTL)."""

    @abstractmethod
    async def cache_set(self, key: str, value: bytes, now: float, *, ttl_s: float, max_entries: int) -> None:
        """Store ``value`` until ``now + ttl_s``; then evict least recently used entries beyond ``max_entries``."""

    @abstractmethod
    async def cache_size(self) -> int:
        """Entries currently stored (expired ones may be counted until evicted)."""

    @abstractmethod
    async def cache_clear(self) -> None:
        """Drop every cached entry."""

    # -- lifecycle ----------------------------------------------------------------------------------------------

    async def aclose(self) -> None:  # noqa: B027 - optional hook; the memory backend has nothing to release
        """Release connections."""
