"""In-process state: breakers, token buckets, budget counters and the response cache in plain dicts.

Everything runs on one event loop and no operation awaits halfway through, so each method is atomic without a
lock. The breaker and limiter paths run on every provider call, so they are written for speed: per-key state lives
in ``__slots__`` objects mutated in place, the common verdicts are shared constants (a frozen dataclass can be
reused), and an idle key costs nothing until it is first used.

Decisions where :mod:`~llm_manager.state.base` leaves room (:mod:`~llm_manager.state.redis` makes the same ones):

* **Lost probes.** A half-open probe whose result is never recorded (the caller was cancelled or crashed) would
  hold its slot forever. Slots are therefore leased: once ``cooldown_s`` has passed since the latest probe was
  admitted with every slot still taken, the slots are considered lost and freed. A caller refused for want of a
  slot is told to retry in ``min(1 s, time until the lease ends)``.
* ``half_open_probes < 1`` is treated as 1 (otherwise a half-open breaker could never close).
* **Which results count.** A result with ``probe=False`` that arrives while half-open was admitted before the
  breaker opened: ignored, like results arriving while open (even when the cooldown is over; only
  ``breaker_allow`` moves open to half-open). A result arriving while closed is counted whatever its ``probe``
  flag (a late probe after the breaker closed was still a real call to a now-healthy key).
* Only a failure can trip a breaker: the rules are checked when a failure is recorded (so ``failure_rate=0``
  does not open on a success). The rate rule compares ``failures / calls >= failure_rate``.
* Closing (enough probe successes) forgets the key entirely, which is the same as closed with zero counts.
* ``breaker_view`` reports zero counts for a closed key whose window is over (the next call starts a new one),
  and ``opened_at`` for open and half-open keys only.
* **Rate limits.** The two buckets keep separate refill timestamps, because ``limit_adjust`` only knows ``tpm``
  and must not steal refill time from the request bucket. A time earlier than the bucket's last update (clock
  skew between processes) refills nothing and never moves the timestamp back. A capacity that changed since
  the last call clamps the level to the new capacity. Comparisons allow a ``1e-6`` slack so that retrying after
  exactly the returned wait succeeds despite float rounding. A refused call returns the longest of the two
  buckets' waits. Negative ``tokens`` count as 0. ``rpm`` / ``tpm`` must be positive when given (the config
  enforces ``> 0``). ``limit_view`` reports the token level as is, so it is negative while in debt.
* **Budgets.** Expiry is lazy: each counter stores its ``expire_at`` and is read as zero once ``time.time()``
  reaches it (the next write starts it afresh). So that counters of past periods nobody touches again do not
  pile up, creating a counter first drops every expired one whenever the table has doubled since the last such
  sweep (and holds at least 1024): amortised O(1) per operation, and at most about twice the live counters
  (or 1024) in memory. A refused reservation creates nothing. Leased holds are swept lazily too: a counter
  remembers when its earliest lease ends, and the next operation on it at or after that time releases every
  lapsed hold (a view subtracts them without changing anything).
* **Cache.** ``ttl_s <= 0`` stores nothing (and drops any previous value for the key). Eviction is pure LRU over
  all stored entries; expired entries are dropped when read or when they reach the LRU end.
"""

from __future__ import annotations

import time
from collections import OrderedDict
from collections.abc import Sequence

from llm_manager.state.base import (
    BUDGET_MAX,
    BreakerPolicy,
    BreakerState,
    BreakerVerdict,
    BreakerView,
    CounterNotSeeded,
    Lease,
    StateBackend,
    _budget_expiry,
    _budget_int,
)

__all__ = ["MemoryState"]

_EPS = 1e-6
"""Slack on bucket comparisons: a retry after exactly the returned wait must not fail on rounding."""

_PROBE_WAIT_S = 1.0
"""Longest retry hint for a caller refused because every probe slot is taken (probes usually finish sooner)."""

_INF = float("inf")

_BUDGET_SWEEP_MIN = 1024
"""Budget counters kept before expired ones are swept at all (the sweep then runs each time the table doubles)."""

# Shared verdicts for the hot paths: frozen, so handing out the same instance is safe and allocates nothing.
_ALLOW_CLOSED = BreakerVerdict(allowed=True, state="closed", probe=False, retry_in_s=0.0)
_ALLOW_PROBE = BreakerVerdict(allowed=True, state="half_open", probe=True, retry_in_s=0.0)
_UNKNOWN_VIEW = BreakerView(state="closed", calls=0, failures=0, cooldown_left_s=0.0, opened_at=None)


class _Breaker:
    """Mutable per-key breaker state (one allocation per key, then mutated in place)."""

    __slots__ = ("calls", "failures", "in_flight", "opened_at", "probe_at", "state", "successes", "window_start")

    def __init__(self) -> None:
        self.state: BreakerState = "closed"
        self.window_start = -_INF  # no window yet: the first recorded call starts one
        self.calls = 0
        self.failures = 0
        self.opened_at = 0.0
        self.in_flight = 0
        self.successes = 0
        self.probe_at = 0.0


class _Buckets:
    """Request and token bucket levels of one key; ``inf`` means full (clamped to the capacity on use)."""

    __slots__ = ("req", "req_at", "tok", "tok_at")

    def __init__(self, now: float) -> None:
        self.req = _INF
        self.req_at = now
        self.tok = _INF
        self.tok_at = now


class _Budget:
    """Totals of one budget counter, in nanodollars, when the counter expires (unix seconds), its leased holds
    (id → amount, lease end) and whether it was seeded from the ledger."""

    __slots__ = ("expire_at", "holds", "next_lapse", "reserved", "seeded", "spent")

    def __init__(self) -> None:
        self.spent = 0
        self.reserved = 0
        self.expire_at = _INF
        self.holds: dict[str, tuple[int, float]] | None = None
        self.next_lapse = _INF
        self.seeded = False

    def sweep(self, now: float) -> None:
        """Release the holds whose lease has ended (cheap when none has: one comparison)."""
        if now < self.next_lapse or self.holds is None:
            return
        nxt = _INF
        for hold, (amount, until) in list(self.holds.items()):
            if until <= now:
                del self.holds[hold]
                self.reserved = max(0, self.reserved - amount)
            elif until < nxt:
                nxt = until
        self.next_lapse = nxt

    def lapsed(self, now: float) -> int:
        """What the holds whose lease has ended still count in ``reserved`` (for a view, which changes nothing)."""
        if now < self.next_lapse or self.holds is None:
            return 0
        return sum(amount for amount, until in self.holds.values() if until <= now)


def _refilled(level: float, at: float, now: float, cap: int) -> float:
    """Bucket level at ``now``: linear refill of ``cap`` per minute, never above ``cap`` (nor back in time)."""
    if now > at:
        level += (now - at) * cap / 60.0
    return level if level < cap else float(cap)


class MemoryState(StateBackend):
    """State kept in this process only (the default when no Redis URL is configured)."""

    def __init__(self) -> None:
        self._breakers: dict[str, _Breaker] = {}
        self._buckets: dict[str, _Buckets] = {}
        self._cache: OrderedDict[str, tuple[float, bytes]] = OrderedDict()
        self._budgets: dict[str, _Budget] = {}
        self._budget_sweep_at = _BUDGET_SWEEP_MIN

    # -- circuit breakers ---------------------------------------------------------------------------------------

    async def breaker_allow(self, key: str, now: float, policy: BreakerPolicy) -> BreakerVerdict:
        b = self._breakers.get(key)
        if b is None or b.state == "closed":
            return _ALLOW_CLOSED
        cooldown = policy.cooldown_s
        if b.state == "open":
            left = b.opened_at + cooldown - now
            if left > 0.0:
                return BreakerVerdict(allowed=False, state="open", probe=False, retry_in_s=left)
            b.state = "half_open"
            b.in_flight = 0
            b.successes = 0
        probes = policy.half_open_probes if policy.half_open_probes > 0 else 1
        if b.in_flight >= probes and now - b.probe_at >= cooldown:
            b.in_flight = 0  # lease over: those probes will never report back
        if b.in_flight < probes:
            b.in_flight += 1
            b.probe_at = now
            return _ALLOW_PROBE
        wait = b.probe_at + cooldown - now
        return BreakerVerdict(
            allowed=False, state="half_open", probe=False, retry_in_s=wait if wait < _PROBE_WAIT_S else _PROBE_WAIT_S
        )

    async def breaker_record(
        self, key: str, now: float, policy: BreakerPolicy, *, ok: bool, probe: bool
    ) -> BreakerState:
        b = self._breakers.get(key)
        if b is None:
            b = self._breakers[key] = _Breaker()
        state = b.state
        if state == "closed":
            if now - b.window_start >= policy.window_s:
                b.window_start = now
                b.calls = 0
                b.failures = 0
            b.calls += 1
            if ok:
                return "closed"
            b.failures += 1
            threshold = policy.failure_threshold
            rate = policy.failure_rate
            if (threshold > 0 and b.failures >= threshold) or (
                rate is not None and b.calls >= policy.min_calls and b.failures / b.calls >= rate
            ):
                b.state = "open"
                b.opened_at = now
                b.in_flight = 0
                b.successes = 0
                return "open"
            return "closed"
        if state == "half_open":
            if not probe:
                return "half_open"  # admitted before the breaker opened: says nothing about recovery
            if b.in_flight > 0:
                b.in_flight -= 1
            if ok:
                b.successes += 1
                if b.successes >= policy.half_open_successes:
                    del self._breakers[key]  # closed with zero counts
                    return "closed"
                return "half_open"
            b.state = "open"
            b.opened_at = now
            b.in_flight = 0
            b.successes = 0
            return "open"
        # Open: a late result changes nothing; report what breaker_allow would see now.
        return "half_open" if now >= b.opened_at + policy.cooldown_s else "open"

    async def breaker_view(self, keys: Sequence[str], now: float, policy: BreakerPolicy) -> dict[str, BreakerView]:
        out: dict[str, BreakerView] = {}
        for key in keys:
            b = self._breakers.get(key)
            if b is None:
                out[key] = _UNKNOWN_VIEW
            elif b.state == "closed":
                if now - b.window_start >= policy.window_s:
                    out[key] = _UNKNOWN_VIEW
                else:
                    out[key] = BreakerView("closed", b.calls, b.failures, 0.0, None)
            else:
                left = b.opened_at + policy.cooldown_s - now if b.state == "open" else 0.0
                if left > 0.0:
                    out[key] = BreakerView("open", b.calls, b.failures, left, b.opened_at)
                else:
                    out[key] = BreakerView("half_open", b.calls, b.failures, 0.0, b.opened_at)
        return out

    async def breaker_reset(self, key: str) -> None:
        self._breakers.pop(key, None)

    # -- rate limits --------------------------------------------------------------------------------------------

    async def limit_acquire(self, key: str, now: float, *, rpm: int | None, tpm: int | None, tokens: int) -> float:
        if rpm is None and tpm is None:
            return 0.0
        b = self._buckets.get(key)
        if b is None:
            b = self._buckets[key] = _Buckets(now)
        wait = 0.0
        req = tok = 0.0
        if rpm is not None:
            req = b.req = _refilled(b.req, b.req_at, now, rpm)
            if now > b.req_at:
                b.req_at = now
            if req < 1.0 - _EPS:
                wait = (1.0 - req) * 60.0 / rpm
        if tpm is not None:
            tok = b.tok = _refilled(b.tok, b.tok_at, now, tpm)
            if now > b.tok_at:
                b.tok_at = now
            if tokens < 0:
                tokens = 0
            need = tokens if tokens <= tpm else tpm  # oversize: admitted when full, never starved
            if tok < need - _EPS:
                tok_wait = (need - tok) * 60.0 / tpm
                if tok_wait > wait:
                    wait = tok_wait
        if wait > 0.0:
            return wait  # both or nothing: neither bucket is debited
        if rpm is not None:
            b.req = req - 1.0
        if tpm is not None:
            b.tok = tok - tokens
        return 0.0

    async def limit_adjust(self, key: str, now: float, *, tpm: int | None, delta_tokens: int) -> None:
        if tpm is None or delta_tokens == 0:
            return
        b = self._buckets.get(key)
        if b is None:
            b = self._buckets[key] = _Buckets(now)
        tok = _refilled(b.tok, b.tok_at, now, tpm) - delta_tokens
        b.tok = tok if tok < tpm else float(tpm)
        if now > b.tok_at:
            b.tok_at = now

    async def limit_view(
        self, key: str, now: float, *, rpm: int | None, tpm: int | None
    ) -> tuple[float | None, float | None]:
        b = self._buckets.get(key)
        if b is None:
            return (None if rpm is None else float(rpm), None if tpm is None else float(tpm))
        return (
            None if rpm is None else _refilled(b.req, b.req_at, now, rpm),
            None if tpm is None else _refilled(b.tok, b.tok_at, now, tpm),
        )

    # -- budgets ----------------------------------------------------------------------------------------------

    def _new_budget(self, key: str, now: float) -> _Budget:
        """A zero counter for ``key``, which has no live one: its expired counter reset in place, or a new one."""
        budgets = self._budgets
        stale = budgets.get(key)
        if stale is not None:
            stale.spent = 0
            stale.reserved = 0
            stale.holds = None
            stale.next_lapse = _INF
            stale.seeded = False
            return stale
        if len(budgets) >= self._budget_sweep_at:
            for k in [k for k, v in budgets.items() if now >= v.expire_at]:
                del budgets[k]
            self._budget_sweep_at = max(_BUDGET_SWEEP_MIN, 2 * len(budgets))
        b = budgets[key] = _Budget()
        return b

    async def budget_reserve(
        self, key: str, amount: int, limit: int | None, *, expire_at: float, lease: Lease | None = None
    ) -> tuple[bool, int]:
        # Fast path for valid ints; the helpers raise (or accept an int subclass) otherwise.
        if type(amount) is not int or not 0 <= amount <= BUDGET_MAX:
            _budget_int("amount", amount)
        if limit is not None and (type(limit) is not int or not 0 <= limit <= BUDGET_MAX):
            _budget_int("limit", limit)
        if not -_INF < expire_at < _INF:
            _budget_expiry(expire_at)
        seeded = lease is not None and lease.seeded
        now = time.time()
        b = self._budgets.get(key)
        if b is None or now >= b.expire_at:
            if seeded:
                raise CounterNotSeeded(key)
            if limit is not None and amount > limit:
                return False, 0  # refused: an expired or missing counter stays as it is
            b = self._new_budget(key, now)
        else:
            if seeded and not b.seeded:
                raise CounterNotSeeded(key)
            b.sweep(now)
            if limit is not None and b.spent + b.reserved + amount > limit:
                return False, b.spent + b.reserved
        reserved = b.reserved + amount
        b.reserved = reserved if reserved < BUDGET_MAX else BUDGET_MAX
        b.expire_at = expire_at
        if lease is not None and lease.hold is not None:
            until = now + lease.seconds
            if b.holds is None:
                b.holds = {}
            b.holds[lease.hold] = (amount, until)
            if until < b.next_lapse:
                b.next_lapse = until
        return True, b.spent + b.reserved

    async def budget_settle(
        self, key: str, reserved: int, actual: int, *, expire_at: float, hold: str | None = None
    ) -> int:
        if type(reserved) is not int or not 0 <= reserved <= BUDGET_MAX:
            _budget_int("reserved", reserved)
        if type(actual) is not int or not 0 <= actual <= BUDGET_MAX:
            _budget_int("actual", actual)
        if not -_INF < expire_at < _INF:
            _budget_expiry(expire_at)
        now = time.time()
        b = self._budgets.get(key)
        if b is None or now >= b.expire_at:
            b = self._new_budget(key, now)
        else:
            b.sweep(now)
        if hold is not None:  # release what the hold still counts: nothing once its lease ended
            held = b.holds.pop(hold, None) if b.holds is not None else None
            reserved = held[0] if held is not None else 0
        left = b.reserved - reserved
        b.reserved = left if left > 0 else 0
        spent = b.spent + actual
        b.spent = spent if spent < BUDGET_MAX else BUDGET_MAX
        b.expire_at = expire_at
        return b.spent + b.reserved

    async def budget_add(self, key: str, amount: int, *, expire_at: float) -> int:
        # Spend without a reservation is a settlement of nothing reserved.
        if type(amount) is not int or not 0 <= amount <= BUDGET_MAX:
            _budget_int("amount", amount)
        return await self.budget_settle(key, 0, amount, expire_at=expire_at)

    async def budget_view(self, keys: Sequence[str]) -> dict[str, tuple[int, int]]:
        now = time.time()
        out: dict[str, tuple[int, int]] = {}
        for key in keys:
            b = self._budgets.get(key)
            out[key] = (0, 0) if b is None or now >= b.expire_at else (b.spent, b.reserved - b.lapsed(now))
        return out

    async def budget_seed(self, key: str, spent: int, *, expire_at: float) -> bool:
        _budget_int("spent", spent)
        _budget_expiry(expire_at)
        now = time.time()
        b = self._budgets.get(key)
        if b is None or now >= b.expire_at:
            b = self._new_budget(key, now)
        if b.seeded:
            return False
        b.spent = min(max(b.spent, spent), BUDGET_MAX)
        b.seeded = True
        b.expire_at = expire_at
        return True

    # -- response cache -----------------------------------------------------------------------------------------

    async def cache_get(self, key: str, now: float) -> bytes | None:
        entry = self._cache.get(key)
        if entry is None:
            return None
        if now >= entry[0]:
            del self._cache[key]
            return None
        self._cache.move_to_end(key)
        return entry[1]

    async def cache_set(self, key: str, value: bytes, now: float, *, ttl_s: float, max_entries: int) -> None:
        cache = self._cache
        if ttl_s <= 0:
            cache.pop(key, None)
            return
        cache[key] = (now + ttl_s, value)
        cache.move_to_end(key)  # assignment to an existing key keeps its old position
        while len(cache) > max_entries and cache:
            cache.popitem(last=False)

    async def cache_size(self) -> int:
        return len(self._cache)

    async def cache_clear(self) -> None:
        self._cache.clear()
