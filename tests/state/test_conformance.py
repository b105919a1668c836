"""One suite, both backends: MemoryState and RedisState must agree on every rule of ``state/base.py``.

Time is injected (``now``), so nothing here sleeps. The cache TTL is checked against the injected clock too: the
Redis backend stores ``now + ttl_s`` next to the value and checks it on read, and only uses the real ``PX``
expiry to reclaim memory (that part is tested in ``test_redis_multiprocess.py``).
"""

from __future__ import annotations

import uuid
from collections import OrderedDict

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from llm_manager.state import BreakerPolicy, BreakerView, MemoryState, StateBackend, make_state

T0 = 1_700_000_000.0
"""A realistic ``time.time()``: large enough that float precision through Redis matters."""

COUNT = BreakerPolicy(failure_threshold=3, window_s=60.0, cooldown_s=30.0, half_open_probes=1, half_open_successes=2)
CLOSED_EMPTY = BreakerView(state="closed", calls=0, failures=0, cooldown_left_s=0.0, opened_at=None)


async def fail(backend: StateBackend, key: str, now: float, policy: BreakerPolicy, times: int = 1) -> str:
    state = ""
    for _ in range(times):
        state = await backend.breaker_record(key, now, policy, ok=False, probe=False)
    return state


async def view(backend: StateBackend, key: str, now: float, policy: BreakerPolicy = COUNT) -> BreakerView:
    return (await backend.breaker_view([key], now, policy))[key]


async def open_breaker(backend: StateBackend, key: str = "k", now: float = T0, policy: BreakerPolicy = COUNT) -> None:
    assert await fail(backend, key, now, policy, policy.failure_threshold) == "open"


# -- circuit breakers -------------------------------------------------------------------------------------------


async def test_unknown_key_is_closed_and_allowed(backend: StateBackend) -> None:
    verdict = await backend.breaker_allow("new", T0, COUNT)
    assert (verdict.allowed, verdict.state, verdict.probe, verdict.retry_in_s) == (True, "closed", False, 0.0)
    assert await view(backend, "new", T0) == CLOSED_EMPTY


async def test_opens_at_the_failure_count_threshold(backend: StateBackend) -> None:
    assert await fail(backend, "k", T0, COUNT, 2) == "closed"
    assert await backend.breaker_record("k", T0 + 1, COUNT, ok=True, probe=False) == "closed"
    assert (await backend.breaker_allow("k", T0 + 1, COUNT)).allowed
    assert await fail(backend, "k", T0 + 2, COUNT) == "open"
    assert await view(backend, "k", T0 + 2) == BreakerView("open", 4, 3, 30.0, T0 + 2)


async def test_successes_never_open_and_count_rule_can_be_disabled(backend: StateBackend) -> None:
    for _ in range(20):
        assert await backend.breaker_record("ok", T0, COUNT, ok=True, probe=False) == "closed"
    no_count = BreakerPolicy(failure_threshold=0)
    assert await fail(backend, "nocount", T0, no_count, 50) == "closed"
    assert await view(backend, "nocount", T0, no_count) == BreakerView("closed", 50, 50, 0.0, None)


async def test_rate_rule_waits_for_min_calls(backend: StateBackend) -> None:
    rate = BreakerPolicy(failure_threshold=0, failure_rate=0.5, min_calls=4, window_s=60.0, cooldown_s=30.0)
    assert await fail(backend, "a", T0, rate, 2) == "closed"  # 100 % failures but only 2 calls
    assert await backend.breaker_record("a", T0, rate, ok=True, probe=False) == "closed"
    assert await fail(backend, "a", T0, rate) == "open"  # 3 / 4 >= 0.5

    for ok in (True, True, True):
        await backend.breaker_record("b", T0, rate, ok=ok, probe=False)
    assert await fail(backend, "b", T0, rate) == "closed"  # 1 / 4 < 0.5
    assert await fail(backend, "b", T0, rate) == "closed"  # 2 / 5 < 0.5
    assert await fail(backend, "b", T0, rate) == "open"  # 3 / 6 >= 0.5 (the boundary trips)


async def test_rate_rule_with_awkward_float_ratio(backend: StateBackend) -> None:
    # 3 / 10 >= 0.3 must trip even though 0.3 * 10 is 3.0000000000000004 in floating point.
    rate = BreakerPolicy(failure_threshold=0, failure_rate=0.3, min_calls=10)
    for _ in range(7):
        await backend.breaker_record("k", T0, rate, ok=True, probe=False)
    assert await fail(backend, "k", T0, rate, 2) == "closed"
    assert await fail(backend, "k", T0, rate) == "open"


async def test_fixed_window_resets_counts(backend: StateBackend) -> None:
    policy = BreakerPolicy(failure_threshold=3, window_s=10.0, cooldown_s=30.0)
    await fail(backend, "k", T0, policy)
    await fail(backend, "k", T0 + 5, policy)
    assert await view(backend, "k", T0 + 9.99, policy) == BreakerView("closed", 2, 2, 0.0, None)
    # The window started at T0, so T0 + 10 starts a fresh one: this is failure 1, not 3.
    assert await fail(backend, "k", T0 + 10, policy) == "closed"
    assert await view(backend, "k", T0 + 10, policy) == BreakerView("closed", 1, 1, 0.0, None)
    # An idle closed key whose window is over reports zero counts.
    assert await view(backend, "k", T0 + 20, policy) == CLOSED_EMPTY
    assert await fail(backend, "k", T0 + 19, policy) == "closed"
    assert await fail(backend, "k", T0 + 19.5, policy) == "open"  # 3 failures in the window from T0 + 10


async def test_open_refuses_with_the_cooldown_left(backend: StateBackend) -> None:
    await open_breaker(backend, now=T0)
    for elapsed in (0.0, 10.0, 29.5):
        verdict = await backend.breaker_allow("k", T0 + elapsed, COUNT)
        assert (verdict.allowed, verdict.state, verdict.probe) == (False, "open", False)
        assert verdict.retry_in_s == pytest.approx(30.0 - elapsed)
    assert (await view(backend, "k", T0 + 10)).cooldown_left_s == pytest.approx(20.0)


async def test_half_open_admits_exactly_the_probe_count(backend: StateBackend) -> None:
    policy = BreakerPolicy(failure_threshold=1, cooldown_s=30.0, half_open_probes=2, half_open_successes=2)
    await open_breaker(backend, policy=policy)
    t = T0 + 30.0
    first, second, third = [await backend.breaker_allow("k", t, policy) for _ in range(3)]
    assert (first.allowed, first.state, first.probe) == (True, "half_open", True)
    assert (second.allowed, second.probe) == (True, True)
    assert (third.allowed, third.state, third.probe) == (False, "half_open", False)
    assert 0.0 < third.retry_in_s <= 1.0
    # A finished probe frees its slot for the next caller.
    assert await backend.breaker_record("k", t + 1, policy, ok=True, probe=True) == "half_open"
    assert (await backend.breaker_allow("k", t + 1, policy)).probe
    assert not (await backend.breaker_allow("k", t + 1, policy)).allowed


async def test_enough_probe_successes_close_and_clear(backend: StateBackend) -> None:
    await open_breaker(backend)
    t = T0 + 30.0
    assert (await backend.breaker_allow("k", t, COUNT)).probe
    assert await backend.breaker_record("k", t, COUNT, ok=True, probe=True) == "half_open"
    assert (await backend.breaker_allow("k", t + 1, COUNT)).probe
    assert await backend.breaker_record("k", t + 1, COUNT, ok=True, probe=True) == "closed"
    assert await view(backend, "k", t + 1) == CLOSED_EMPTY
    verdict = await backend.breaker_allow("k", t + 2, COUNT)
    assert (verdict.allowed, verdict.state, verdict.probe) == (True, "closed", False)
    # Counters were cleared: it takes the full threshold again to open.
    assert await fail(backend, "k", t + 2, COUNT, 2) == "closed"
    assert await fail(backend, "k", t + 2, COUNT) == "open"


async def test_probe_failure_reopens_with_a_fresh_cooldown(backend: StateBackend) -> None:
    await open_breaker(backend)
    assert (await backend.breaker_allow("k", T0 + 30, COUNT)).probe
    assert await backend.breaker_record("k", T0 + 35, COUNT, ok=False, probe=True) == "open"
    verdict = await backend.breaker_allow("k", T0 + 36, COUNT)
    assert (verdict.allowed, verdict.state) == (False, "open")
    assert verdict.retry_in_s == pytest.approx(29.0)
    assert (await view(backend, "k", T0 + 36)).opened_at == T0 + 35
    assert (await backend.breaker_allow("k", T0 + 65, COUNT)).probe


async def test_one_probe_failure_reopens_even_after_successes(backend: StateBackend) -> None:
    policy = BreakerPolicy(failure_threshold=1, cooldown_s=10.0, half_open_probes=1, half_open_successes=3)
    await open_breaker(backend, policy=policy)
    for i in range(2):
        assert (await backend.breaker_allow("k", T0 + 10 + i, policy)).probe
        assert await backend.breaker_record("k", T0 + 10 + i, policy, ok=True, probe=True) == "half_open"
    assert (await backend.breaker_allow("k", T0 + 12, policy)).probe
    assert await backend.breaker_record("k", T0 + 12, policy, ok=False, probe=True) == "open"
    # The earlier successes are forgotten: after the new cooldown, three more are needed.
    for i in range(2):
        assert (await backend.breaker_allow("k", T0 + 22 + i, policy)).probe
        assert await backend.breaker_record("k", T0 + 22 + i, policy, ok=True, probe=True) == "half_open"


async def test_late_results_while_open_change_nothing(backend: StateBackend) -> None:
    await open_breaker(backend)
    before = await view(backend, "k", T0 + 1)
    for ok in (True, False):
        for probe in (False, True):
            assert await backend.breaker_record("k", T0 + 1, COUNT, ok=ok, probe=probe) == "open"
    assert await view(backend, "k", T0 + 1) == before
    # Cooldown over but nobody asked yet: reported as half-open, still changes nothing.
    assert await backend.breaker_record("k", T0 + 40, COUNT, ok=False, probe=False) == "half_open"
    assert await view(backend, "k", T0 + 40) == BreakerView("half_open", 3, 3, 0.0, T0)


async def test_late_non_probe_results_while_half_open_are_ignored(backend: StateBackend) -> None:
    await open_breaker(backend)
    assert (await backend.breaker_allow("k", T0 + 30, COUNT)).probe
    # Calls admitted before the breaker opened report back now: neither closes nor re-opens, nor frees the slot.
    assert await backend.breaker_record("k", T0 + 31, COUNT, ok=False, probe=False) == "half_open"
    assert await backend.breaker_record("k", T0 + 31, COUNT, ok=True, probe=False) == "half_open"
    assert not (await backend.breaker_allow("k", T0 + 31, COUNT)).allowed


async def test_lost_probe_slots_are_released_after_a_cooldown(backend: StateBackend) -> None:
    await open_breaker(backend)
    assert (await backend.breaker_allow("k", T0 + 30, COUNT)).probe  # never reports back
    refused = await backend.breaker_allow("k", T0 + 59.5, COUNT)
    assert not refused.allowed
    assert refused.retry_in_s == pytest.approx(0.5)
    assert (await backend.breaker_allow("k", T0 + 60, COUNT)).probe


async def test_view_never_changes_state(backend: StateBackend) -> None:
    await open_breaker(backend)
    for _ in range(3):
        snapshot = await backend.breaker_view(["k", "other"], T0 + 45, COUNT)
        assert snapshot == {"k": BreakerView("half_open", 3, 3, 0.0, T0), "other": CLOSED_EMPTY}
    # The view neither moved the breaker to half-open nor took the probe slot.
    assert (await backend.breaker_allow("k", T0 + 45, COUNT)).probe
    assert await backend.breaker_view([], T0, COUNT) == {}


async def test_reset_forgets_the_key(backend: StateBackend) -> None:
    await open_breaker(backend)
    await backend.breaker_reset("k")
    await backend.breaker_reset("never-seen")
    assert await view(backend, "k", T0 + 1) == CLOSED_EMPTY
    assert (await backend.breaker_allow("k", T0 + 1, COUNT)).state == "closed"


async def test_breaker_keys_are_independent(backend: StateBackend) -> None:
    await open_breaker(backend, "a")
    assert (await backend.breaker_allow("b", T0, COUNT)).state == "closed"
    assert not (await backend.breaker_allow("a", T0, COUNT)).allowed


# -- rate limits ------------------------------------------------------------------------------------------------


async def acquire(
    backend: StateBackend, now: float, rpm: int | None = None, tpm: int | None = None, tokens: int = 0
) -> float:
    return await backend.limit_acquire("k", now, rpm=rpm, tpm=tpm, tokens=tokens)


async def test_rpm_exhaustion_and_refill_timing(backend: StateBackend) -> None:
    for _ in range(60):
        assert await acquire(backend, T0, rpm=60) == 0.0
    assert await acquire(backend, T0, rpm=60) == pytest.approx(1.0)  # 60 / min refills one per second
    assert await acquire(backend, T0 + 0.25, rpm=60) == pytest.approx(0.75)
    assert await acquire(backend, T0 + 1.0, rpm=60) == 0.0
    wait = await acquire(backend, T0 + 1.0, rpm=60)
    assert wait == pytest.approx(1.0)
    assert await acquire(backend, T0 + 1.0 + wait, rpm=60) == 0.0  # retrying after the wait succeeds
    assert await backend.limit_view("k", T0 + 62.0, rpm=60, tpm=None) == (60.0, None)


async def test_awkward_rates_admit_exactly_after_the_returned_wait(backend: StateBackend) -> None:
    now = T0
    for _ in range(7):
        assert await acquire(backend, now, rpm=7, tpm=997, tokens=100) == 0.0
    for _ in range(20):
        wait = await acquire(backend, now, rpm=7, tpm=997, tokens=100)
        assert wait > 0.0
        now += wait
        assert await acquire(backend, now, rpm=7, tpm=997, tokens=100) == 0.0


async def test_tpm_exhaustion_returns_the_wait(backend: StateBackend) -> None:
    assert await acquire(backend, T0, tpm=600, tokens=400) == 0.0
    assert await acquire(backend, T0, tpm=600, tokens=400) == pytest.approx(20.0)  # 200 left, 10 tokens / s
    assert await acquire(backend, T0 + 19.9, tpm=600, tokens=400) > 0.0
    assert await acquire(backend, T0 + 20.0, tpm=600, tokens=400) == 0.0
    assert await backend.limit_view("k", T0 + 20.0, rpm=None, tpm=600) == (None, pytest.approx(0.0, abs=1e-6))


async def test_both_or_nothing(backend: StateBackend) -> None:
    assert await acquire(backend, T0, rpm=2, tpm=100, tokens=80) == 0.0
    # Refused by the token bucket: the request bucket keeps its slot.
    assert await acquire(backend, T0, rpm=2, tpm=100, tokens=80) == pytest.approx(36.0)
    assert await backend.limit_view("k", T0, rpm=2, tpm=100) == (pytest.approx(1.0), pytest.approx(20.0))
    assert await acquire(backend, T0, rpm=2, tpm=100, tokens=10) == 0.0
    # Refused by the request bucket: no tokens are taken.
    assert await acquire(backend, T0, rpm=2, tpm=100, tokens=5) == pytest.approx(30.0)
    assert await backend.limit_view("k", T0, rpm=2, tpm=100) == (pytest.approx(0.0), pytest.approx(10.0))
    # Refused by both: the longer wait wins.
    assert await acquire(backend, T0, rpm=2, tpm=100, tokens=90) == pytest.approx(48.0)


async def test_oversize_request_is_admitted_only_when_the_bucket_is_full(backend: StateBackend) -> None:
    assert await acquire(backend, T0, tpm=100, tokens=10) == 0.0
    assert await acquire(backend, T0, tpm=100, tokens=150) == pytest.approx(6.0)  # until full again
    assert await acquire(backend, T0 + 6.0, tpm=100, tokens=150) == 0.0
    assert (await backend.limit_view("k", T0 + 6.0, rpm=None, tpm=100))[1] == pytest.approx(-50.0)
    # The debt delays the next oversize request until the bucket is full again: 150 tokens at 100 / min.
    assert await acquire(backend, T0 + 6.0, tpm=100, tokens=150) == pytest.approx(90.0)
    assert await acquire(backend, T0 + 95.0, tpm=100, tokens=150) == pytest.approx(1.0)
    assert await acquire(backend, T0 + 96.0, tpm=100, tokens=150) == 0.0


async def test_adjust_debits_and_refunds_within_capacity(backend: StateBackend) -> None:
    assert await acquire(backend, T0, tpm=600, tokens=100) == 0.0
    await backend.limit_adjust("k", T0, tpm=600, delta_tokens=200)  # used 200 more than reserved
    assert await backend.limit_view("k", T0, rpm=None, tpm=600) == (None, pytest.approx(300.0))
    await backend.limit_adjust("k", T0, tpm=600, delta_tokens=-1000)  # refund, capped at capacity
    assert await backend.limit_view("k", T0, rpm=None, tpm=600) == (None, pytest.approx(600.0))
    await backend.limit_adjust("k", T0, tpm=600, delta_tokens=900)  # into debt
    assert await backend.limit_view("k", T0, rpm=None, tpm=600) == (None, pytest.approx(-300.0))
    assert await acquire(backend, T0, tpm=600, tokens=1) == pytest.approx(30.1)
    await backend.limit_adjust("k", T0, tpm=None, delta_tokens=10_000)  # unlimited: no-op
    assert await backend.limit_view("k", T0, rpm=None, tpm=600) == (None, pytest.approx(-300.0))
    # Adjusting refills first, and leaves the request bucket (and its refill clock) alone.
    await backend.limit_adjust("k", T0 + 30.1, tpm=600, delta_tokens=1)
    assert await backend.limit_view("k", T0 + 30.1, rpm=None, tpm=600) == (None, pytest.approx(0.0, abs=1e-6))


async def test_adjust_does_not_steal_refill_time_from_requests(backend: StateBackend) -> None:
    assert await acquire(backend, T0, rpm=1, tpm=600, tokens=10) == 0.0
    await backend.limit_adjust("k", T0 + 30, tpm=600, delta_tokens=5)
    assert await backend.limit_view("k", T0 + 60, rpm=1, tpm=600) == (pytest.approx(1.0), pytest.approx(600.0))
    assert await acquire(backend, T0 + 60, rpm=1, tpm=600, tokens=10) == 0.0


async def test_adjust_on_an_unknown_key_starts_from_full(backend: StateBackend) -> None:
    await backend.limit_adjust("k", T0, tpm=100, delta_tokens=30)
    assert await backend.limit_view("k", T0, rpm=5, tpm=100) == (pytest.approx(5.0), pytest.approx(70.0))


async def test_unlimited(backend: StateBackend) -> None:
    for _ in range(200):
        assert await acquire(backend, T0, rpm=None, tpm=None, tokens=10**9) == 0.0
    assert await backend.limit_view("k", T0, rpm=None, tpm=None) == (None, None)
    for _ in range(5):  # rpm only: tokens are not limited
        assert await acquire(backend, T0, rpm=5, tpm=None, tokens=10**9) == 0.0
    assert await acquire(backend, T0, rpm=5, tpm=None, tokens=0) > 0.0
    for _ in range(50):  # tpm only: requests are not limited
        assert await backend.limit_acquire("t", T0, rpm=None, tpm=1000, tokens=1) == 0.0


async def test_buckets_never_refill_above_capacity_and_view_does_not_consume(backend: StateBackend) -> None:
    assert await acquire(backend, T0, rpm=10, tpm=100, tokens=50) == 0.0
    for _ in range(3):
        assert await backend.limit_view("k", T0 + 3600, rpm=10, tpm=100) == (10.0, 100.0)
    assert await backend.limit_view("unknown", T0, rpm=10, tpm=100) == (10.0, 100.0)
    for _ in range(10):
        assert await acquire(backend, T0 + 3600, rpm=10, tpm=100, tokens=1) == 0.0
    assert await acquire(backend, T0 + 3600, rpm=10, tpm=100, tokens=1) > 0.0


async def test_a_clock_behind_the_last_update_refills_nothing(backend: StateBackend) -> None:
    assert await acquire(backend, T0, rpm=60) == 0.0
    for _ in range(59):
        await acquire(backend, T0 - 5.0, rpm=60)  # another process with a slow clock
    assert await acquire(backend, T0 - 5.0, rpm=60) > 0.0
    # The refill clock stayed at T0: half a second later there is half a request, not five and a half.
    assert await backend.limit_view("k", T0 + 0.5, rpm=60, tpm=None) == (pytest.approx(0.5), None)
    assert await acquire(backend, T0 + 1.0, rpm=60) == 0.0


# -- response cache ---------------------------------------------------------------------------------------------


async def test_cache_get_set_overwrite_and_binary_values(backend: StateBackend) -> None:
    assert await backend.cache_get("a", T0) is None
    await backend.cache_set("a", b"\x00\xff one", T0, ttl_s=60, max_entries=10)
    assert await backend.cache_get("a", T0) == b"\x00\xff one"
    await backend.cache_set("a", b"two", T0, ttl_s=60, max_entries=10)
    assert await backend.cache_get("a", T0) == b"two"
    await backend.cache_set("lru", b"a key named like the LRU set", T0, ttl_s=60, max_entries=10)
    assert await backend.cache_get("lru", T0) == b"a key named like the LRU set"
    assert await backend.cache_size() == 2


async def test_cache_ttl_with_an_injected_clock(backend: StateBackend) -> None:
    await backend.cache_set("a", b"v", T0, ttl_s=10, max_entries=10)
    assert await backend.cache_get("a", T0 + 5) == b"v"  # a hit refreshes recency, not the TTL
    assert await backend.cache_get("a", T0 + 9.99) == b"v"
    assert await backend.cache_get("a", T0 + 10) is None
    assert await backend.cache_size() == 0  # the expired entry was dropped on read
    await backend.cache_set("b", b"v", T0, ttl_s=0, max_entries=10)  # nothing to keep
    assert await backend.cache_get("b", T0) is None
    assert await backend.cache_size() == 0


async def test_cache_evicts_least_recently_used(backend: StateBackend) -> None:
    for key in ("a", "b", "c"):
        await backend.cache_set(key, key.encode(), T0, ttl_s=60, max_entries=3)
    assert await backend.cache_get("a", T0) == b"a"  # a is now the most recently used
    await backend.cache_set("d", b"d", T0, ttl_s=60, max_entries=3)
    assert await backend.cache_size() == 3
    assert await backend.cache_get("b", T0) is None
    await backend.cache_set("c", b"c2", T0, ttl_s=60, max_entries=3)  # overwriting refreshes recency too
    await backend.cache_set("e", b"e", T0, ttl_s=60, max_entries=3)
    assert [await backend.cache_get(k, T0) for k in "acde"] == [None, b"c2", b"d", b"e"]
    await backend.cache_set("f", b"f", T0, ttl_s=60, max_entries=1)  # a smaller bound trims at once
    assert await backend.cache_size() == 1
    assert await backend.cache_get("f", T0) == b"f"


async def test_cache_clear(backend: StateBackend) -> None:
    for i in range(30):
        await backend.cache_set(f"k{i}", b"v", T0, ttl_s=60, max_entries=100)
    await backend.cache_clear()
    assert await backend.cache_size() == 0
    assert await backend.cache_get("k1", T0) is None
    await backend.cache_set("again", b"v", T0, ttl_s=60, max_entries=100)
    assert await backend.cache_get("again", T0) == b"v"


KEYS = st.sampled_from([f"key{i}" for i in range(8)])
OPS = st.lists(st.tuples(st.sampled_from(["set", "get"]), KEYS), max_size=40)


@settings(
    max_examples=25,
    deadline=None,
    # Every example starts from cache_clear(), so sharing the function-scoped backend is intended.
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)
@given(ops=OPS, max_entries=st.integers(min_value=1, max_value=5))
async def test_cache_bound_keeps_the_most_recently_used(
    backend: StateBackend, ops: list[tuple[str, str]], max_entries: int
) -> None:
    await backend.cache_clear()
    model: OrderedDict[str, bytes] = OrderedDict()  # reference LRU: most recently used last
    for step, (op, key) in enumerate(ops):
        if op == "set":
            value = f"{key}@{step}".encode()
            await backend.cache_set(key, value, T0 + step, ttl_s=3600, max_entries=max_entries)
            model[key] = value
            model.move_to_end(key)
            while len(model) > max_entries:
                model.popitem(last=False)
        else:
            assert await backend.cache_get(key, T0 + step) == model.get(key)
            if key in model:
                model.move_to_end(key)
        assert await backend.cache_size() <= max_entries
    assert await backend.cache_size() == len(model)
    for i in range(8):  # exactly the most recently used keys survive, with their latest values
        assert await backend.cache_get(f"key{i}", T0 + len(ops)) == model.get(f"key{i}")


# -- construction -----------------------------------------------------------------------------------------------


async def test_make_state_picks_the_backend(redis_url: str) -> None:
    assert isinstance(make_state(None), MemoryState)
    from llm_manager.state.guarded import GuardedState
    from llm_manager.state.redis import RedisState

    prefix = f"llm-manager-test:{uuid.uuid4().hex}"
    state = make_state(redis_url, prefix=prefix, on_unavailable="fail_open", timeout_s=0.25)
    try:
        # Redis always comes wrapped: a deadline on every operation and the on_unavailable policy.
        assert isinstance(state, GuardedState)
        assert isinstance(state.inner, RedisState)
        assert state.inner.prefix == prefix
        assert (state.policy, state.timeout_s) == ("fail_open", 0.25)
        assert await state.cache_size() == 0
    finally:
        await state.aclose()


def test_redis_helper_fails_in_ci_and_skips_elsewhere(monkeypatch: pytest.MonkeyPatch) -> None:
    from tests.state import conftest

    monkeypatch.setattr(conftest, "_reachable", False)  # as if nothing answered on 127.0.0.1:6379
    monkeypatch.setenv("CI", "true")
    with pytest.raises(pytest.fail.Exception, match="CI=true"):
        conftest.require_redis()
    for ci in ("false", None):
        if ci is None:
            monkeypatch.delenv("CI")
        else:
            monkeypatch.setenv("CI", ci)
        with pytest.raises(pytest.skip.Exception, match=r"Redis not reachable at 127\.0\.0\.1:6379; start it with"):
            conftest.require_redis()
