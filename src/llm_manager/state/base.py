"""Where shared counters live: circuit breakers, rate-limit buckets, budget counters and cached responses.

Two implementations keep the same semantics: :mod:`~llm_manager.state.memory` (one process, the default) and
:mod:`~llm_manager.state.redis` (every process pointing at one Redis shares one state; each operation is a single
Lua script, so there is no read-modify-write in Python). Times are wall-clock seconds (``time.time()``) passed in
by the caller, so tests inject a clock and several processes on one host agree.

**Budgets** are counters of money in integer nanodollars (1 USD = ``10**9``), one per key, each holding two
totals: ``spent`` (real, reconciled cost) and ``reserved`` (pre-call estimates of calls in flight). The caller
puts the period in the key (``budget:daily:user=alice:2026-11-22``), so periods roll over by key, and passes
``expire_at`` (unix seconds): every write sets the key's expiry to it (so pass the same value for every write
to one key), and from then on the key may vanish; an unknown or expired key reads as zero spent, zero
reserved. Unlike the other operations there is no ``now`` argument: expiry is judged by the real clock. ``amount``, ``reserved``, ``actual`` and ``limit`` are ints in ``0 .. BUDGET_MAX`` (``TypeError`` for
a non-int, ``ValueError`` outside that range or for a non-finite ``expire_at``, raised before anything
changes), and each stored total saturates at :data:`BUDGET_MAX`.

Overshoot: a reservation is admitted only if ``spent + reserved`` stays within the limit afterwards, so for a
fixed limit ``spent + reserved <= limit + Σ (actual - estimate)`` over the settled calls whose actual cost
exceeded their estimate, plus what :meth:`StateBackend.budget_add` recorded. With estimates that are upper
bounds, reservations never take a counter past its limit; with optimistic estimates each call in flight at
the same time may overshoot by its own underestimate (50 concurrent 2-cent reservations fill a 1 USD limit; if
each really costs 3 cents the counter ends at 1.50 USD), so "at most one request's cost" over the limit holds
only for calls that do not overlap.

**Leases.** A reservation made with a :class:`Lease` naming a ``hold`` id lasts ``seconds`` at most (judged by the backend's own
clock: Redis's for Redis): once its lease ends, its amount no longer counts as reserved, so the holds of a
process that died (``kill -9``) before settling them lapse by themselves. Settling with the same ``hold`` id
releases exactly what the hold still counts (its amount, or nothing once it lapsed) and adds the spend; settling
twice releases nothing the second time. A reservation without a ``hold`` id has no lease (it is released only by
a settlement naming its amount).

**Seeding.** A counter can be lost while its period runs (Redis restarted without persistence or flushed; a
fresh process with in-process state). A reservation whose lease says ``seeded=True`` raises :class:`CounterNotSeeded`
instead of admitting on a counter that was never seeded; the caller then reads what the ledger holds for the
period and calls :meth:`StateBackend.budget_seed` (once per counter: the first seed wins, later ones change
nothing), then reserves again.

Business rules (when to count a call as failed, which key to use, what to do when there is no room) are the
caller's; this layer only keeps the numbers atomically.
"""

from __future__ import annotations

import math
from abc import ABC, abstractmethod
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

__all__ = [
    "BUDGET_MAX",
    "CounterNotSeeded",
    "Lease",
    "BreakerPolicy",
    "BreakerState",
    "BreakerVerdict",
    "BreakerView",
    "StateBackend",
    "StateHealth",
]

BUDGET_MAX = 2**53 - 1
"""Largest amount (and limit) a budget operation accepts, in nanodollars: about 9 million USD.

Redis runs the budget scripts in Lua, whose numbers are doubles; every integer up to ``2**53`` is exact there, so
this bound keeps both backends exact and in agreement. Each stored total (``spent``, ``reserved``) saturates at
this value rather than going beyond it.
"""

BreakerState = Literal["closed", "open", "half_open"]


@dataclass(frozen=True, slots=True)
class Lease:
    """How a budget reservation is held (see the module docstring)."""

    hold: str | None = None
    """An id unique to this reservation: it is then leased, and settled by this id (``None``: no lease)."""
    seconds: float = 0.0
    """How long the hold lasts at most when it has an id (finite, > 0)."""
    seeded: bool = False
    """Refuse with :class:`CounterNotSeeded` when the counter was never seeded from the ledger."""

    def __post_init__(self) -> None:
        if self.hold is not None and not (math.isfinite(self.seconds) and self.seconds > 0):
            raise ValueError(f"a budget lease must last a positive number of seconds, got {self.seconds}")


class CounterNotSeeded(Exception):
    """A reservation with ``Lease(seeded=True)`` on a counter never seeded from the ledger (nothing was reserved)."""

    def __init__(self, key: str) -> None:
        super().__init__(f"budget counter {key!r} has not been seeded from the ledger")
        self.key = key


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


@dataclass(frozen=True, slots=True)
class StateHealth:
    """Whether the shared state answers, for readiness, ``/admin/status`` and ``/metrics``."""

    backend: Literal["memory", "redis"]
    available: bool
    """False while Redis does not answer (in-process state always answers)."""
    policy: Literal["fail_closed", "fail_open"] = "fail_closed"
    """What requests get meanwhile (``state.on_unavailable``)."""
    replicas: int = 1
    """Processes sharing the state, as last heard in Redis (this one included)."""
    unavailable_since: float | None = None
    """Unix time of the failure that made it unavailable."""
    failures: int = 0
    """Operations that failed or timed out since the process started."""
    pending: int = 0
    """Budget counters with spend recorded while Redis was away, still to be written there."""

    def as_dict(self) -> dict[str, object]:
        return {
            "backend": self.backend,
            "available": self.available,
            "on_unavailable": self.policy,
            "replicas": self.replicas,
            "unavailable_since": self.unavailable_since,
            "failures": self.failures,
            "pending_budget_counters": self.pending,
        }


_IN_PROCESS = StateHealth(backend="memory", available=True)


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

    # -- budgets (integer nanodollars; rules shared by the four methods in the module docstring) --------------

    @abstractmethod
    async def budget_reserve(
        self, key: str, amount: int, limit: int | None, *, expire_at: float, lease: Lease | None = None
    ) -> tuple[bool, int]:
        """Reserve ``amount`` (a pre-call estimate) if it fits; return ``(admitted, spent + reserved)``.

        Atomically: first release the counter's lapsed holds; then when ``limit`` is ``None`` or ``spent +
        reserved + amount <= limit``, add ``amount`` to ``reserved`` and return ``(True, spent + reserved)`` after
        the addition (and set the expiry). Otherwise change nothing more (not even the expiry) and return
        ``(False, spent + reserved)`` as it is. A counter already over its limit refuses even ``amount = 0``.
        ``lease``: how the reservation is held (:class:`Lease`): an identified hold that lapses, and whether an
        unseeded counter is refused with :class:`CounterNotSeeded` (changing nothing).
        """

    @abstractmethod
    async def budget_settle(
        self, key: str, reserved: int, actual: int, *, expire_at: float, hold: str | None = None
    ) -> int:
        """Turn a reservation into real spend; return ``spent + reserved`` afterwards.

        Atomically: the key's reserved total drops by ``reserved`` (what this call reserved; never below 0, so a
        double settle cannot create room) and its spent total grows by ``actual``. With ``hold``, what is released
        is that hold's amount while it is still on record, and nothing once its lease ended (``reserved`` is then
        ignored). ``actual`` may be below the
        reservation (a pessimistic estimate: the difference is released) or above it (an optimistic one: the
        counter may end over the limit). ``actual = 0`` releases a reservation for a call that never happened.
        Never refuses: the money was spent.
        """

    @abstractmethod
    async def budget_add(self, key: str, amount: int, *, expire_at: float) -> int:
        """Add ``amount`` to ``spent`` without a reservation or a limit check; return ``spent + reserved`` afterwards.

        For costs known only after the fact (a hedge loser, a call made outside the budget check).
        """

    @abstractmethod
    async def budget_view(self, keys: Sequence[str]) -> dict[str, tuple[int, int]]:
        """``(spent, reserved)`` for each of ``keys``: ``(0, 0)`` for unknown or expired keys; lapsed holds are not
        counted as reserved. Never changes state."""

    @abstractmethod
    async def budget_seed(self, key: str, spent: int, *, expire_at: float) -> bool:
        """Seed a counter from the ledger, once: unless it was seeded already, ``spent`` becomes the larger of
        ``spent`` and what it counts now (settlements that reached a lost counter since are usually in the
        ledger too), and the counter is marked seeded. Returns whether this call seeded it."""

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

    # -- health -------------------------------------------------------------------------------------------------

    def health(self) -> StateHealth:
        """What is known now, without any I/O (in-process state is always available)."""
        return _IN_PROCESS

    async def check(self) -> StateHealth:
        """Like :meth:`health`, but a backend that has not been in touch with its server yet asks it first."""
        return self.health()

    # -- lifecycle ----------------------------------------------------------------------------------------------

    async def aclose(self) -> None:  # noqa: B027 - optional hook; the memory backend has nothing to release
        """Release connections."""


def _budget_int(name: str, value: int) -> int:
    """``value`` if it is an int in ``0 .. BUDGET_MAX``; ``TypeError`` / ``ValueError`` otherwise.

    Shared by both backends so they reject the same inputs (a negative amount would create room; a float would
    not survive the trip through Lua exactly).
    """
    if not isinstance(value, int) or isinstance(value, bool):
        raise TypeError(f"budget {name} must be an int (nanodollars), not {type(value).__name__}")
    if value < 0 or value > BUDGET_MAX:
        raise ValueError(f"budget {name} must be between 0 and {BUDGET_MAX} nanodollars, got {value}")
    return value


def _budget_expiry(expire_at: float) -> float:
    """``expire_at`` as a float if it is finite; ``ValueError`` otherwise."""
    expire_at = float(expire_at)
    if not math.isfinite(expire_at):
        raise ValueError(f"budget expire_at must be a finite unix time, got {expire_at}")
    return expire_at
