"""Shared state in Redis: every process using the same server and prefix sees one set of breakers, budgets and cache.

Each operation is one Lua script (sent with EVALSHA) or one single command, so concurrent processes never
interleave a read-modify-write. Semantics match :mod:`~llm_manager.state.memory` exactly, including the
decisions listed in its docstring (probe leases, which late results count, bucket slack and clamping, cache with
``ttl_s <= 0``); the conformance tests run against both.

Keys (``P`` is the prefix):

* ``P:br:KEY`` — breaker hash: ``s`` state (``c``/``o``/``h``), ``ws`` window start, ``c`` calls, ``f``
  failures, ``oa`` opened at, ``p`` probes in flight, ``ps`` probe successes, ``pa`` latest probe admission.
  Expires ``max(2 × window_s, 60 s)`` after the last write while closed (the window is over by then, so a
  missing key means the same thing), and ``cooldown_s + 1 h`` after the last write while open or half-open: a
  breaker nobody touched for an hour after its cooldown is forgotten (closed) rather than kept forever.
* ``P:rl:KEY`` — bucket hash: ``r``/``rt`` request level and its refill time, ``t``/``tt`` token level and its
  refill time (a missing level means full). Expires 60 s after both buckets would be full again (a full bucket
  and a missing key are the same); the expiry is only ever extended, because a call that does not know one
  bucket's capacity cannot tell when that bucket fills.
* ``P:bg:KEY`` and ``P:bgl:KEY`` — a budget counter and its leased holds: see :mod:`.redis_budgets`.
* ``P:c:v:KEY`` — cached value: a hash of ``v`` (the bytes) and ``e`` (expiry time), with a real ``PX`` expiry
  of ``ttl_s``. (Values live under ``c:v:`` rather than directly under ``c:`` so that no cache key, not even
  ``lru``, can collide with the LRU set.)
* ``P:c:lru`` — sorted set of cache key → recency; expires with the longest-lived entry.

Decisions specific to Redis:

* **Cache expiry is double.** The caller's ``now + ttl_s`` is stored with the value and checked on read, exactly
  like the memory backend (so tests inject a clock and both backends agree); the ``PX`` expiry of ``ttl_s``
  real milliseconds reclaims memory when nobody reads the entry again. With ``now = time.time()`` both agree.
* **Recency is a logical clock.** The LRU score is one more than the highest score in the set, not the wall
  time: equal or skewed timestamps from several processes (or an injected clock) would otherwise make the
  eviction order arbitrary. Entries whose ``PX`` expiry removed the value stay in the set until read or evicted
  (``cache_size`` may count them, as the interface allows).
* **Budget arithmetic is exact** and holds' leases follow Redis's clock (:mod:`.redis_budgets`).
* Floats cross the Lua boundary as strings in both directions (``%.17g`` round-trips a double exactly), since a
  Lua number returned to Redis is truncated to an integer.
* Scripts build the names of evicted cache entries themselves, so the keys of one prefix must live on one node:
  use a single Redis (or a prefix wrapped in a ``{hash tag}`` on a cluster).
* :meth:`RedisState.from_url` uses a blocking connection pool (64 connections, 20 s wait): the default pool
  fails with "Too many connections" as soon as more than 100 operations are in flight.
* ``P:replicas`` — sorted set of the processes sharing the prefix → the Redis time of their latest
  :meth:`RedisState.heartbeat`; members not heard from within the heartbeat's ``ttl_s`` are dropped by the next
  one (Redis's own clock, so hosts with skewed clocks still agree).
* Redis failures (connection refused, timeouts) propagate as ``redis.exceptions`` errors (listed in
  :attr:`RedisState.unavailable_errors`): what to do without shared state (``state.on_unavailable``) is
  :mod:`~llm_manager.state.guarded`'s business. A connection that broke (Redis restarted) is retried once at
  once on a fresh one; nothing else is retried here.
* ``import llm_manager.state.redis`` does not import ``redis``; :meth:`RedisState.from_url` does, and raises
  :class:`~llm_manager.errors.ConfigError` when the package is missing.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

from llm_manager.errors import ConfigError
from llm_manager.state import redis_budgets as lua
from llm_manager.state.base import (
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
from llm_manager.state.memory import _ALLOW_CLOSED, _ALLOW_PROBE, _UNKNOWN_VIEW, _refilled

__all__ = ["RedisState"]

_STATES: tuple[BreakerState, BreakerState, BreakerState] = ("closed", "open", "half_open")
"""Breaker states by the code the scripts return."""

_MAX_CONNECTIONS = 64
_POOL_TIMEOUT_S = 20.0

_NO_LEASE = Lease()

_OPEN_KEEP_S = 3600.0
"""How long an open or half-open breaker nobody touches is remembered after its cooldown."""

# KEYS[1] breaker hash. ARGV: now, cooldown_s, half_open_probes, keep_ms.
# Returns {allowed, state code, probe, retry_in_s as a string}.
_BREAKER_ALLOW = """
local now = tonumber(ARGV[1])
local h = redis.call('HMGET', KEYS[1], 's', 'oa', 'p', 'pa')
local s = h[1]
if not s or s == 'c' then return {1, 0, 0, '0'} end
local cooldown = tonumber(ARGV[2])
if s == 'o' then
  local left = tonumber(h[2]) + cooldown - now
  if left > 0 then return {0, 1, 0, string.format('%.17g', left)} end
  h[3] = false
  redis.call('HSET', KEYS[1], 's', 'h', 'p', '0', 'ps', '0')
end
local probes = tonumber(ARGV[3])
local p = tonumber(h[3]) or 0
local pa = tonumber(h[4]) or 0
if p >= probes and now - pa >= cooldown then p = 0 end
if p < probes then
  redis.call('HSET', KEYS[1], 'p', string.format('%d', p + 1), 'pa', ARGV[1])
  redis.call('PEXPIRE', KEYS[1], ARGV[4])
  return {1, 2, 1, '0'}
end
local wait = pa + cooldown - now
if wait > 1 then wait = 1 end
return {0, 2, 0, string.format('%.17g', wait)}
"""

# KEYS[1] breaker hash. ARGV: now, ok, probe, window_s, failure_threshold, failure_rate or '', min_calls,
# cooldown_s, half_open_successes, closed keep_ms, open keep_ms. Returns the state code afterwards.
_BREAKER_RECORD = """
local now = tonumber(ARGV[1])
local h = redis.call('HMGET', KEYS[1], 's', 'ws', 'c', 'f', 'oa', 'p', 'ps')
local s = h[1] or 'c'
if s == 'c' then
  local ws = h[2]
  local c = tonumber(h[3]) or 0
  local f = tonumber(h[4]) or 0
  if not ws or now - tonumber(ws) >= tonumber(ARGV[4]) then
    ws = ARGV[1]
    c = 0
    f = 0
  end
  c = c + 1
  if ARGV[2] ~= '1' then
    f = f + 1
    local threshold = tonumber(ARGV[5])
    local rate = tonumber(ARGV[6])
    if (threshold > 0 and f >= threshold) or (rate and c >= tonumber(ARGV[7]) and f / c >= rate) then
      redis.call('HSET', KEYS[1], 's', 'o', 'ws', ws, 'c', string.format('%d', c), 'f', string.format('%d', f),
        'oa', ARGV[1], 'p', '0', 'ps', '0')
      redis.call('PEXPIRE', KEYS[1], ARGV[11])
      return 1
    end
  end
  redis.call('HSET', KEYS[1], 's', 'c', 'ws', ws, 'c', string.format('%d', c), 'f', string.format('%d', f))
  redis.call('PEXPIRE', KEYS[1], ARGV[10])
  return 0
end
if s == 'h' then
  if ARGV[3] ~= '1' then return 2 end
  local p = tonumber(h[6]) or 0
  if p > 0 then p = p - 1 end
  if ARGV[2] == '1' then
    local ps = (tonumber(h[7]) or 0) + 1
    if ps >= tonumber(ARGV[9]) then
      redis.call('DEL', KEYS[1])
      return 0
    end
    redis.call('HSET', KEYS[1], 'p', string.format('%d', p), 'ps', string.format('%d', ps))
    redis.call('PEXPIRE', KEYS[1], ARGV[11])
    return 2
  end
  redis.call('HSET', KEYS[1], 's', 'o', 'oa', ARGV[1], 'p', '0', 'ps', '0')
  redis.call('PEXPIRE', KEYS[1], ARGV[11])
  return 1
end
if now >= tonumber(h[5]) + tonumber(ARGV[8]) then return 2 end
return 1
"""

# KEYS: breaker hashes. Read-only: the raw fields each view is computed from.
_BREAKER_VIEW = """
local out = {}
for i, k in ipairs(KEYS) do
  out[i] = redis.call('HMGET', k, 's', 'ws', 'c', 'f', 'oa')
end
return out
"""

# Shared by both bucket scripts: level and refill time at `now` (a missing level is full).
_REFILL = """
local now = tonumber(ARGV[1])
local function refill(level, at, cap)
  level = tonumber(level)
  if not level then return cap, now end
  at = tonumber(at)
  if now > at then
    level = level + (now - at) * cap / 60
    at = now
  end
  if level > cap then level = cap end
  return level, at
end
local function keep(ms)
  ms = math.ceil(ms)
  if redis.call('PTTL', KEYS[1]) < ms then redis.call('PEXPIRE', KEYS[1], string.format('%d', ms)) end
end
"""

# KEYS[1] bucket hash. ARGV: now, rpm or '', tpm or '', tokens. Returns the wait in seconds as a string.
_LIMIT_ACQUIRE = (
    _REFILL
    + """
local rpm = tonumber(ARGV[2])
local tpm = tonumber(ARGV[3])
local tokens = tonumber(ARGV[4])
local h = redis.call('HMGET', KEYS[1], 'r', 'rt', 't', 'tt')
local wait = 0
local r, rt, t, tt
if rpm then
  r, rt = refill(h[1], h[2], rpm)
  if r < 1 - 1e-6 then wait = (1 - r) * 60 / rpm end
end
if tpm then
  t, tt = refill(h[3], h[4], tpm)
  local need = tokens
  if need > tpm then need = tpm end
  if t < need - 1e-6 then
    local w = (need - t) * 60 / tpm
    if w > wait then wait = w end
  end
end
if wait > 0 then return string.format('%.17g', wait) end
local full_in = 0
if rpm then
  r = r - 1
  redis.call('HSET', KEYS[1], 'r', string.format('%.17g', r), 'rt', string.format('%.17g', rt))
  full_in = (rpm - r) * 60 / rpm
end
if tpm then
  t = t - tokens
  redis.call('HSET', KEYS[1], 't', string.format('%.17g', t), 'tt', string.format('%.17g', tt))
  local w = (tpm - t) * 60 / tpm
  if w > full_in then full_in = w end
end
keep((full_in + 60) * 1000)
return '0'
"""
)

# KEYS[1] bucket hash. ARGV: now, tpm, delta_tokens.
_LIMIT_ADJUST = (
    _REFILL
    + """
local tpm = tonumber(ARGV[2])
local h = redis.call('HMGET', KEYS[1], 't', 'tt')
local t, tt = refill(h[1], h[2], tpm)
t = t - tonumber(ARGV[3])
if t > tpm then t = tpm end
redis.call('HSET', KEYS[1], 't', string.format('%.17g', t), 'tt', string.format('%.17g', tt))
keep(((tpm - t) * 60 / tpm + 60) * 1000)
"""
)

# KEYS[1] replica set. ARGV: member, ttl_s. Returns how many members were heard from within ttl_s (itself included).
_HEARTBEAT = """
local t = redis.call('TIME')
local now = tonumber(t[1]) + tonumber(t[2]) / 1e6
local ttl = tonumber(ARGV[2])
redis.call('ZADD', KEYS[1], string.format('%.6f', now), ARGV[1])
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', string.format('(%.6f', now - ttl))
redis.call('PEXPIRE', KEYS[1], math.ceil(ttl * 1000))
return redis.call('ZCARD', KEYS[1])
"""

_EXPIRE_MS_MAX = 2**53
"""Latest expiry sent to Redis (about 285,000 years): larger values would overflow its millisecond clock."""

# KEYS[1] value hash, KEYS[2] LRU set. ARGV: now, cache key. Returns the bytes or nil.
_CACHE_GET = """
local h = redis.call('HMGET', KEYS[1], 'v', 'e')
if not h[1] then
  redis.call('ZREM', KEYS[2], ARGV[2])
  return false
end
if tonumber(ARGV[1]) >= tonumber(h[2]) then
  redis.call('DEL', KEYS[1])
  redis.call('ZREM', KEYS[2], ARGV[2])
  return false
end
local top = redis.call('ZRANGE', KEYS[2], -1, -1, 'WITHSCORES')
if top[1] ~= ARGV[2] then
  local seq = 1
  if top[2] then seq = tonumber(top[2]) + 1 end
  redis.call('ZADD', KEYS[2], string.format('%d', seq), ARGV[2])
end
return h[1]
"""

# KEYS[1] value hash, KEYS[2] LRU set. ARGV: cache key, value, expiry time, ttl_ms (<= 0: delete), max_entries,
# prefix of value keys.
_CACHE_SET = """
if tonumber(ARGV[4]) <= 0 then
  redis.call('DEL', KEYS[1])
  redis.call('ZREM', KEYS[2], ARGV[1])
  return 0
end
local top = redis.call('ZRANGE', KEYS[2], -1, -1, 'WITHSCORES')
local seq = 1
if top[2] then seq = tonumber(top[2]) + 1 end
redis.call('HSET', KEYS[1], 'v', ARGV[2], 'e', ARGV[3])
redis.call('PEXPIRE', KEYS[1], ARGV[4])
redis.call('ZADD', KEYS[2], string.format('%d', seq), ARGV[1])
local extra = redis.call('ZCARD', KEYS[2]) - tonumber(ARGV[5])
if extra > 0 then
  local old = redis.call('ZRANGE', KEYS[2], 0, extra - 1)
  for _, m in ipairs(old) do redis.call('DEL', ARGV[6] .. m) end
  redis.call('ZREMRANGEBYRANK', KEYS[2], 0, extra - 1)
end
if redis.call('PTTL', KEYS[2]) < tonumber(ARGV[4]) then redis.call('PEXPIRE', KEYS[2], ARGV[4]) end
return extra
"""

# KEYS[1] LRU set. ARGV: prefix of value keys. Deletes in slices: unpack() has a stack limit.
_CACHE_CLEAR = """
local members = redis.call('ZRANGE', KEYS[1], 0, -1)
local batch = {}
for _, m in ipairs(members) do
  batch[#batch + 1] = ARGV[1] .. m
  if #batch == 1000 then
    redis.call('DEL', unpack(batch))
    batch = {}
  end
end
if #batch > 0 then redis.call('DEL', unpack(batch)) end
redis.call('DEL', KEYS[1])
"""


def _keep_ms(seconds: float) -> int:
    return math.ceil(seconds * 1000.0)


def _expire_ms(expire_at: float) -> int:
    """A checked ``expire_at`` (unix seconds) as the unix milliseconds for ``PEXPIREAT``, rounded up."""
    ms = math.ceil(_budget_expiry(expire_at) * 1000.0)
    return 0 if ms < 0 else _EXPIRE_MS_MAX if ms > _EXPIRE_MS_MAX else ms


class RedisState(StateBackend):
    """State shared through one Redis server by every process that uses the same ``prefix``."""

    unavailable_errors: tuple[type[BaseException], ...] = (OSError,)
    """Exceptions meaning "Redis cannot be reached right now" (set to redis-py's when the client is built)."""

    def __init__(self, client: Any, *, prefix: str = "llm-manager", side: Any = None) -> None:
        """Wrap ``client`` (a ``redis.asyncio.Redis`` that does not decode responses); :meth:`from_url` is simpler.

        ``side``: a second client for :meth:`ping` and :meth:`heartbeat` (default: ``client``), so that a probe is
        not queued behind a pool saturated by requests: it must tell whether Redis answers, not how busy we are.
        """
        self._client = client
        self._side = side if side is not None else client
        self.prefix = prefix
        self._replicas = f"{prefix}:replicas"
        try:
            from redis.exceptions import ConnectionError as RedisConnectionError
            from redis.exceptions import TimeoutError as RedisTimeoutError
        except ImportError:  # a client of another make: only the standard library's errors are known
            pass
        else:
            self.unavailable_errors = (RedisConnectionError, RedisTimeoutError, OSError)
        self._br = f"{prefix}:br:"
        self._rl = f"{prefix}:rl:"
        self._cv = f"{prefix}:c:v:"
        self._lru = f"{prefix}:c:lru"
        self._bg = f"{prefix}:bg:"
        self._bgl = f"{prefix}:bgl:"
        self._breaker_allow = client.register_script(_BREAKER_ALLOW)
        self._breaker_record = client.register_script(_BREAKER_RECORD)
        self._breaker_view = client.register_script(_BREAKER_VIEW)
        self._limit_acquire = client.register_script(_LIMIT_ACQUIRE)
        self._limit_adjust = client.register_script(_LIMIT_ADJUST)
        self._budget_reserve = client.register_script(lua.BUDGET_RESERVE)
        self._budget_settle = client.register_script(lua.BUDGET_SETTLE)
        self._budget_add = client.register_script(lua.BUDGET_ADD)
        self._budget_seed = client.register_script(lua.BUDGET_SEED)
        self._budget_view = client.register_script(lua.BUDGET_VIEW)
        self._cache_get = client.register_script(_CACHE_GET)
        self._cache_set = client.register_script(_CACHE_SET)
        self._cache_clear = client.register_script(_CACHE_CLEAR)
        self._heartbeat = self._side.register_script(_HEARTBEAT)

    @classmethod
    def from_url(cls, url: str, prefix: str = "llm-manager", **options: Any) -> RedisState:
        """Connect lazily to ``url`` (``redis://host:6379/0``).

        ``options`` go to ``redis.asyncio.BlockingConnectionPool.from_url`` (defaults: ``max_connections=64``,
        ``timeout=20`` seconds to wait for a free connection). A blocking pool, because the default pool raises
        "Too many connections" as soon as more operations are in flight than it has connections, and a gateway
        under load easily has hundreds; waiting a moment for a connection is the better failure mode.
        """
        try:
            from redis import asyncio as aioredis
        except ImportError as exc:
            raise ConfigError(
                f"state.redis_url is set ({url!r}) but the redis package is missing: install llm-manager[redis]"
            ) from exc
        from redis.asyncio.retry import Retry
        from redis.backoff import NoBackoff
        from redis.exceptions import ConnectionError as RedisConnectionError

        options.setdefault("max_connections", _MAX_CONNECTIONS)
        options.setdefault("timeout", _POOL_TIMEOUT_S)
        # No socket timeout: GuardedState bounds every operation. With one, redis-py writes through wait_for, which on
        # Python 3.11 drops a cut landing as the write ends: the cut operation then waited out redis-py's 5 s read.
        options.setdefault("socket_timeout", None)
        # One immediate retry on a fresh connection: after a Redis restart every pooled connection is dead, and
        # the first command on each would otherwise fail. More retries would only stall requests while it is down.
        options.setdefault("retry", Retry(NoBackoff(), 1))
        # Cached values are bytes, so responses stay undecoded; the few text fields are compared as bytes.
        options["decode_responses"] = False
        pool = aioredis.BlockingConnectionPool.from_url(url, **options)
        # The watcher's own connection retries a dead connection once too (a restart closes it like the pool's), or
        # its first beat after a restart would mark Redis unavailable for a whole heartbeat; a timeout is not
        # retried, so a hung Redis is still found within one timeout.
        retry = Retry(NoBackoff(), 1, supported_errors=(RedisConnectionError,))
        side = aioredis.Redis.from_url(url, decode_responses=False, socket_timeout=None, retry=retry)
        return cls(aioredis.Redis.from_pool(pool), prefix=prefix, side=side)

    # -- circuit breakers ---------------------------------------------------------------------------------------

    async def breaker_allow(self, key: str, now: float, policy: BreakerPolicy) -> BreakerVerdict:
        probes = policy.half_open_probes if policy.half_open_probes > 0 else 1
        keep = _keep_ms(policy.cooldown_s + _OPEN_KEEP_S)
        allowed, code, probe, retry = await self._breaker_allow(
            keys=[self._br + key], args=[now, policy.cooldown_s, probes, keep]
        )
        if allowed:
            return _ALLOW_PROBE if probe else _ALLOW_CLOSED
        return BreakerVerdict(allowed=False, state=_STATES[code], probe=False, retry_in_s=float(retry))

    async def breaker_record(
        self, key: str, now: float, policy: BreakerPolicy, *, ok: bool, probe: bool
    ) -> BreakerState:
        code = await self._breaker_record(
            keys=[self._br + key],
            args=[
                now,
                1 if ok else 0,
                1 if probe else 0,
                policy.window_s,
                policy.failure_threshold,
                "" if policy.failure_rate is None else policy.failure_rate,
                policy.min_calls,
                policy.cooldown_s,
                policy.half_open_successes,
                _keep_ms(max(2.0 * policy.window_s, 60.0)),
                _keep_ms(policy.cooldown_s + _OPEN_KEEP_S),
            ],
        )
        return _STATES[code]

    async def breaker_view(self, keys: Sequence[str], now: float, policy: BreakerPolicy) -> dict[str, BreakerView]:
        if not keys:
            return {}
        rows = await self._breaker_view(keys=[self._br + k for k in keys], args=[])
        return {key: _view(row, now, policy) for key, row in zip(keys, rows, strict=True)}

    async def breaker_reset(self, key: str) -> None:
        await self._client.delete(self._br + key)

    # -- rate limits --------------------------------------------------------------------------------------------

    async def limit_acquire(self, key: str, now: float, *, rpm: int | None, tpm: int | None, tokens: int) -> float:
        if rpm is None and tpm is None:
            return 0.0
        wait = await self._limit_acquire(
            keys=[self._rl + key],
            args=[now, "" if rpm is None else rpm, "" if tpm is None else tpm, tokens if tokens > 0 else 0],
        )
        return float(wait)

    async def limit_adjust(self, key: str, now: float, *, tpm: int | None, delta_tokens: int) -> None:
        if tpm is None or delta_tokens == 0:
            return
        await self._limit_adjust(keys=[self._rl + key], args=[now, tpm, delta_tokens])

    async def limit_view(
        self, key: str, now: float, *, rpm: int | None, tpm: int | None
    ) -> tuple[float | None, float | None]:
        r, rt, t, tt = await self._client.hmget(self._rl + key, "r", "rt", "t", "tt")
        return (
            None if rpm is None else _level(r, rt, now, rpm),
            None if tpm is None else _level(t, tt, now, tpm),
        )

    # -- budgets ----------------------------------------------------------------------------------------------

    def _counter(self, key: str) -> list[str]:
        return [self._bg + key, self._bgl + key]

    async def budget_reserve(
        self, key: str, amount: int, limit: int | None, *, expire_at: float, lease: Lease | None = None
    ) -> tuple[bool, int]:
        _budget_int("amount", amount)
        if limit is not None:
            _budget_int("limit", limit)
        lease = lease or _NO_LEASE
        lease_ms = math.ceil(lease.seconds * 1000.0) if lease.hold is not None else 0
        code, spent, reserved = await self._budget_reserve(
            keys=self._counter(key),
            args=[
                amount,
                "" if limit is None else limit,
                _expire_ms(expire_at),
                lease.hold or "",
                lease_ms,
                "1" if lease.seeded else "0",
            ],
        )
        if code < 0:
            raise CounterNotSeeded(key)
        return code == 1, int(spent) + int(reserved)

    async def budget_settle(
        self, key: str, reserved: int, actual: int, *, expire_at: float, hold: str | None = None
    ) -> int:
        _budget_int("reserved", reserved)
        _budget_int("actual", actual)
        spent, left = await self._budget_settle(
            keys=self._counter(key), args=[reserved, actual, _expire_ms(expire_at), hold or ""]
        )
        return int(spent) + int(left)

    async def budget_add(self, key: str, amount: int, *, expire_at: float) -> int:
        _budget_int("amount", amount)
        spent, reserved = await self._budget_add(keys=self._counter(key), args=[amount, _expire_ms(expire_at)])
        return int(spent) + int(reserved)

    async def budget_seed(self, key: str, spent: int, *, expire_at: float) -> bool:
        _budget_int("spent", spent)
        seeded, _ = await self._budget_seed(keys=self._counter(key), args=[spent, _expire_ms(expire_at)])
        return bool(seeded)

    async def budget_view(self, keys: Sequence[str]) -> dict[str, tuple[int, int]]:
        if not keys:
            return {}
        rows = await self._budget_view(keys=[k for key in keys for k in self._counter(key)], args=[])
        return {key: (int(s or 0), int(r or 0)) for key, (s, r) in zip(keys, rows, strict=True)}

    # -- response cache -----------------------------------------------------------------------------------------

    async def cache_get(self, key: str, now: float) -> bytes | None:
        value: bytes | None = await self._cache_get(keys=[self._cv + key, self._lru], args=[now, key])
        return value

    async def cache_set(self, key: str, value: bytes, now: float, *, ttl_s: float, max_entries: int) -> None:
        ttl_ms = _keep_ms(ttl_s) if ttl_s > 0 else 0
        await self._cache_set(
            keys=[self._cv + key, self._lru],
            args=[key, value, now + ttl_s, ttl_ms, max_entries if max_entries > 0 else 0, self._cv],
        )

    async def cache_size(self) -> int:
        size: int = await self._client.zcard(self._lru)
        return size

    async def cache_clear(self) -> None:
        await self._cache_clear(keys=[self._lru], args=[self._cv])

    # -- replicas and health ------------------------------------------------------------------------------------

    async def ping(self) -> None:
        """Raise unless Redis answers (on the side connection)."""
        await self._side.ping()

    async def heartbeat(self, member: str, ttl_s: float) -> int:
        """Announce ``member`` as alive now; return how many members were heard from within ``ttl_s``."""
        alive: int = await self._heartbeat(keys=[self._replicas], args=[member, ttl_s])
        return alive

    async def leave(self, member: str) -> None:
        """Withdraw ``member`` (a replica shutting down) so the others stop counting it at once."""
        await self._side.zrem(self._replicas, member)

    # -- lifecycle ----------------------------------------------------------------------------------------------

    async def aclose(self) -> None:
        await self._client.aclose()
        if self._side is not self._client:
            await self._side.aclose()


def _level(level: bytes | None, at: bytes | None, now: float, cap: int) -> float:
    """A bucket level read from Redis, refilled to ``now`` (missing means full)."""
    if level is None or at is None:
        return float(cap)
    return _refilled(float(level), float(at), now, cap)


def _view(row: list[bytes | None], now: float, policy: BreakerPolicy) -> BreakerView:
    """A :class:`BreakerView` from the raw ``s, ws, c, f, oa`` fields of a breaker hash."""
    s, ws, calls, failures, opened_at = row
    if s is None or s == b"c":
        if ws is None or now - float(ws) >= policy.window_s:
            return _UNKNOWN_VIEW
        return BreakerView("closed", int(calls or 0), int(failures or 0), 0.0, None)
    opened = float(opened_at or 0)
    left = opened + policy.cooldown_s - now if s == b"o" else 0.0
    if left > 0.0:
        return BreakerView("open", int(calls or 0), int(failures or 0), left, opened)
    return BreakerView("half_open", int(calls or 0), int(failures or 0), 0.0, opened)
