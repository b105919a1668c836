"""The shared-timer deadlines that replace ``asyncio.timeout`` on the request path."""

from __future__ import annotations

import asyncio
import time

import pytest

from llm_manager import _deadline
from llm_manager._deadline import RESOLUTION_S, arm, deadline, idle_timeout


async def test_a_deadline_cancels_the_body_and_raises_timeout_error() -> None:
    t0 = time.perf_counter()
    with pytest.raises(TimeoutError):
        async with deadline(0.03) as d:
            await asyncio.sleep(5)
    took = time.perf_counter() - t0
    assert d.expired
    assert 0.03 <= took < 0.03 + RESOLUTION_S + 0.1
    assert asyncio.current_task().cancelling() == 0  # type: ignore[union-attr]  # our cancellation was taken back


async def test_a_body_that_finishes_in_time_is_left_alone() -> None:
    async with deadline(1.0) as d:
        await asyncio.sleep(0.001)
    assert not d.expired
    await asyncio.sleep(0.01)  # a disarmed deadline never cancels anything later


async def test_none_means_no_deadline() -> None:
    async with deadline(None) as d:
        await asyncio.sleep(0.001)
    assert not d.expired


@pytest.mark.parametrize("kind", ["deadline", "idle_timeout"])
async def test_a_cancellation_from_outside_is_not_turned_into_a_timeout(kind: str) -> None:
    async def body() -> None:
        if kind == "deadline":
            async with deadline(5.0):
                await asyncio.sleep(5)
        else:
            async with idle_timeout(5.0) as idle:
                idle.waiting()
                await asyncio.sleep(5)

    task = asyncio.create_task(body())
    await asyncio.sleep(0.01)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task


async def test_nested_deadlines_each_raise_at_their_own_level() -> None:
    with pytest.raises(TimeoutError):
        async with deadline(0.02):
            async with deadline(5.0) as inner:
                await asyncio.sleep(5)
    assert not inner.expired
    caught = False
    async with deadline(5.0) as outer:
        try:
            async with deadline(0.02):
                await asyncio.sleep(5)
        except TimeoutError:
            caught = True
    assert caught and not outer.expired


async def test_many_deadlines_fire_in_order_and_disarmed_ones_never_fire() -> None:
    loop = asyncio.get_running_loop()
    fired: list[int] = []
    now = loop.time()
    entries = [arm(now + 0.01 + i * 0.002, lambda i=i: fired.append(i)) for i in range(20)]
    for entry in entries[::2]:
        entry.disarm()
        entry.disarm()  # idempotent
    await asyncio.sleep(0.01 + 20 * 0.002 + RESOLUTION_S + 0.05)
    assert fired == list(range(1, 20, 2))


async def test_disarmed_entries_are_compacted_away(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(_deadline, "_COMPACT_AT", 10)
    loop = asyncio.get_running_loop()
    soon = arm(loop.time() + 0.01, lambda: None)
    later = [arm(loop.time() + 60, lambda: None) for _ in range(50)]
    for entry in later:
        entry.disarm()
    await asyncio.sleep(0.01 + RESOLUTION_S + 0.03)  # the tick for `soon` rebuilds the heap
    wheel = soon.wheel
    assert wheel.dead == 0 and all(e.callback is not None for e in wheel.heap)


def test_each_event_loop_has_its_own_timer() -> None:
    async def one() -> bool:
        async with deadline(0.01) as d:
            try:
                await asyncio.sleep(1)
            except asyncio.CancelledError:
                raise
        return d.expired

    for _ in range(2):  # a closed loop's wheel is dropped, a new loop gets a new one
        with pytest.raises(TimeoutError):
            asyncio.run(one())


async def test_an_idle_timeout_fires_when_one_wait_lasts_too_long() -> None:
    t0 = time.perf_counter()
    with pytest.raises(TimeoutError):
        async with idle_timeout(0.05) as idle:
            for gap in (0.01, 0.01, 5):
                idle.waiting()
                await asyncio.sleep(gap)
                idle.resumed()
    took = time.perf_counter() - t0
    assert 0.07 <= took < 0.07 + RESOLUTION_S + 0.1
    assert asyncio.current_task().cancelling() == 0  # type: ignore[union-attr]


async def test_an_idle_timeout_counts_each_wait_alone_and_never_the_time_between_waits() -> None:
    async with idle_timeout(0.05) as idle:
        for _ in range(8):  # 0.16 s of waiting in all, none of it 0.05 s at once
            idle.waiting()
            await asyncio.sleep(0.02)
            idle.resumed()
        await asyncio.sleep(0.12)  # the consumer busy between waits (writing to a slow client)
        idle.waiting()
        await asyncio.sleep(0.01)
        idle.resumed()
    await asyncio.sleep(0.08)  # left behind, it cancels nothing later
