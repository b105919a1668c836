"""The Lua scripts behind :class:`~llm_manager.state.redis.RedisState`'s budget counters (kept apart: they are
the part of the Redis backend that holds money, and the reason to read it).

Keys (``P`` is the prefix):

* ``P:bg:KEY`` — the counter: a hash of ``s`` spent and ``r`` reserved (integer nanodollars written with
  ``%d``; a missing field is 0), ``h:ID`` the amount of each leased hold still open, and ``z`` once the counter
  was seeded from the ledger (:meth:`~llm_manager.state.base.StateBackend.budget_seed`).
* ``P:bgl:KEY`` — the counter's leases: a sorted set of hold id → the Redis time (unix ms) its lease ends.

Every write sets ``PEXPIREAT`` on both to the caller's ``expire_at`` (rounded up to the millisecond), so Redis
itself drops counters of past periods; a time already past deletes them at once (after the script computed its
answer, exactly like the memory backend reading it as zero afterwards).

**Leases are judged by Redis's clock** (``TIME``), so replicas on hosts with skewed clocks agree on when a hold
lapses. Every reserve, settle and add first sweeps the counter's lapsed leases: their amounts leave ``r`` and
their ``h:ID`` fields go. A view computes the same without writing. A settle of a hold that is no longer on
record (it lapsed, or Redis lost it in a restart) releases nothing — its amount already left ``r`` — and only
adds the spend.

**Reserving and settling a hold are idempotent** for a while: a settled hold stays as ``h:ID = x`` (it counts
nothing) for ``SETTLED_KEEP_S`` from its settlement (within the counter's own expiry), also when the hold was no
longer on record, so the same settle sent again — redis-py retrying a command whose reply was lost, or a replica
writing what it owes after Redis was away — changes nothing, and a reserve of an id still on record adds nothing.
Kept briefly because a busy counter settles hundreds of holds a second; the in-process state needs none of this
(no reply is lost there).

**Arithmetic is exact.** Lua numbers are doubles, exact for integers up to ``2**53``; inputs are checked against
``BUDGET_MAX = 2**53 - 1`` in Python and both totals saturate at it. ``spent + reserved + amount`` can exceed
``2**53`` in the admission test, but rounding is monotonic and ``2**53`` is representable, so such a sum still
compares greater than any valid limit. Totals come back as integer replies, never as floats.
"""

from __future__ import annotations

__all__ = ["BUDGET_ADD", "BUDGET_RESERVE", "BUDGET_SEED", "BUDGET_SETTLE", "BUDGET_VIEW", "SETTLED_KEEP_S"]

SETTLED_KEEP_S = 120
"""How long a settled hold's id is remembered: a replica writing what it owes after an outage of up to this long
still counts it once."""

# Shared prelude. MAX is BUDGET_MAX (2**53 - 1). sweep(): drop the lapsed leases of KEYS[1] / KEYS[2] and return
# the hash's {spent, reserved} afterwards (reserved already written back when something lapsed).
_PRELUDE = """
local MAX = 9007199254740991
local function now_ms()
  local t = redis.call('TIME')
  return tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
end
local function sweep()
  local h = redis.call('HMGET', KEYS[1], 's', 'r')
  local s = tonumber(h[1]) or 0
  local r = tonumber(h[2]) or 0
  local lapsed = redis.call('ZRANGEBYSCORE', KEYS[2], '-inf', now_ms())
  if #lapsed > 0 then
    for _, id in ipairs(lapsed) do
      r = r - (tonumber(redis.call('HGET', KEYS[1], 'h:' .. id)) or 0)
      redis.call('HDEL', KEYS[1], 'h:' .. id)
      redis.call('ZREM', KEYS[2], id)
    end
    if r < 0 then r = 0 end
    redis.call('HSET', KEYS[1], 'r', string.format('%d', r))
  end
  return s, r
end
local function expire(at)
  redis.call('PEXPIREAT', KEYS[1], at)
  if redis.call('EXISTS', KEYS[2]) == 1 then redis.call('PEXPIREAT', KEYS[2], at) end
end
"""

# KEYS[1] counter hash, KEYS[2] its leases. ARGV: amount, limit or '', expiry in unix ms, hold id or '', lease ms,
# '1' to refuse an unseeded counter. Returns {code, spent, reserved}: code 1 admitted, 0 refused, -1 not seeded.
BUDGET_RESERVE = (
    _PRELUDE
    + """
if ARGV[6] == '1' and redis.call('HEXISTS', KEYS[1], 'z') == 0 then return {-1, 0, 0} end
local s, r = sweep()
if ARGV[4] ~= '' and redis.call('HEXISTS', KEYS[1], 'h:' .. ARGV[4]) == 1 then return {1, s, r} end
local amount = tonumber(ARGV[1])
local limit = tonumber(ARGV[2])
if limit and s + r + amount > limit then return {0, s, r} end
r = r + amount
if r > MAX then r = MAX end
redis.call('HSET', KEYS[1], 'r', string.format('%d', r))
if ARGV[4] ~= '' then
  redis.call('HSET', KEYS[1], 'h:' .. ARGV[4], string.format('%d', amount))
  redis.call('ZADD', KEYS[2], string.format('%d', now_ms() + tonumber(ARGV[5])), ARGV[4])
end
expire(ARGV[3])
return {1, s, r}
"""
)

# KEYS[1] counter hash, KEYS[2] its leases. ARGV: reserved (released), actual (spent), expiry in unix ms, hold id
# or ''. With a hold id, what is released is the hold's recorded amount if it is still on record, else nothing; a
# hold already settled ('x') changes nothing. Returns {spent, reserved}.
BUDGET_SETTLE = (
    _PRELUDE
    + """
local s, r = sweep()
local release = tonumber(ARGV[1])
if ARGV[4] ~= '' then
  local held = redis.call('HGET', KEYS[1], 'h:' .. ARGV[4])
  if held == 'x' then return {s, r} end
  release = tonumber(held) or 0
  redis.call('HSET', KEYS[1], 'h:' .. ARGV[4], 'x')
  redis.call('ZADD', KEYS[2], string.format('%d', now_ms() + KEEP_MS), ARGV[4])
end
s = s + tonumber(ARGV[2])
if s > MAX then s = MAX end
r = r - release
if r < 0 then r = 0 end
redis.call('HSET', KEYS[1], 's', string.format('%d', s), 'r', string.format('%d', r))
expire(ARGV[3])
return {s, r}
""".replace("KEEP_MS", str(SETTLED_KEEP_S * 1000))
)

# KEYS[1] counter hash, KEYS[2] its leases. ARGV: amount (spent), expiry in unix ms. Returns {spent, reserved}.
BUDGET_ADD = (
    _PRELUDE
    + """
local s, r = sweep()
s = s + tonumber(ARGV[1])
if s > MAX then s = MAX end
redis.call('HSET', KEYS[1], 's', string.format('%d', s))
expire(ARGV[2])
return {s, r}
"""
)

# KEYS[1] counter hash, KEYS[2] its leases. ARGV: spent according to the ledger, expiry in unix ms. Once per
# counter (the 'z' mark): spent becomes the larger of the ledger's figure and what was counted since the counter
# was lost (settlements of requests in flight across a restart are in both). Returns {seeded now, spent}.
BUDGET_SEED = (
    _PRELUDE
    + """
if redis.call('HEXISTS', KEYS[1], 'z') == 1 then
  return {0, tonumber(redis.call('HGET', KEYS[1], 's')) or 0}
end
local s = tonumber(redis.call('HGET', KEYS[1], 's')) or 0
local seed = tonumber(ARGV[1])
if seed > s then s = seed end
if s > MAX then s = MAX end
redis.call('HSET', KEYS[1], 's', string.format('%d', s), 'z', '1')
expire(ARGV[2])
return {1, s}
"""
)

# KEYS: pairs of (counter hash, its leases). Read-only: {spent, reserved without the lapsed leases} of each pair.
BUDGET_VIEW = """
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local out = {}
for i = 1, #KEYS, 2 do
  local h = redis.call('HMGET', KEYS[i], 's', 'r')
  local r = tonumber(h[2]) or 0
  for _, id in ipairs(redis.call('ZRANGEBYSCORE', KEYS[i + 1], '-inf', now)) do
    r = r - (tonumber(redis.call('HGET', KEYS[i], 'h:' .. id)) or 0)
  end
  if r < 0 then r = 0 end
  out[#out + 1] = {tonumber(h[1]) or 0, r}
end
return out
"""
