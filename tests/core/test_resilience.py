"""Breakers, rate limits, priority queueing, key pools, hedging, de-duplication and the cache, through the manager."""

from __future__ import annotations

import asyncio
import logging
from typing import Any

import pytest

from llm_manager import AllCandidatesFailedError, CircuitOpenError, LLMManager, RateLimitError
from llm_manager.config import load_settings
from llm_manager.providers.simulated import SimulatedAdapter
from tests.fakes import openai_wire
from tests.fakes.server import FakeUpstream, Recorded, Reply
from tests.helpers import FakeClock, ManualClock, sim_settings


def sim(llm: LLMManager, name: str) -> SimulatedAdapter:
    adapter = llm.adapter(name)
    assert isinstance(adapter, SimulatedAdapter)
    return adapter


def pair(**routing: Any) -> Any:
    return sim_settings({"primary": {"family": "gpt"}, "backup": {"family": "claude"}}, max_retries=0, **routing)


def manager(settings: Any, clock: FakeClock) -> LLMManager:
    return LLMManager(settings, clock=clock, sleep=clock.sleep, wall_clock=clock, rand=lambda: 0.5)


# -- circuit breaker ----------------------------------------------------------------------------------------------


async def test_breaker_opens_skips_then_probes_and_closes() -> None:
    clock = FakeClock()
    cb = {"failure_threshold": 3, "cooldown_s": 30, "half_open_successes": 2}
    async with manager(pair(circuit_breaker=cb), clock) as llm:
        primary = sim(llm, "primary")
        primary.push(*["503"] * 100)
        for _ in range(50):
            assert (await llm.generate("x")).deployment == "backup"
        assert primary.calls == 3  # the outage cost exactly the threshold, not 50 attempts
        br = (await llm.status())["deployments"]["primary"]["breakers"]["-"]
        assert br["state"] == "open" and br["cooldown_left_s"] == pytest.approx(30)
        r = await llm.generate("x")
        assert r.metadata.attempts[0].skipped and r.metadata.attempts[0].error_code == "circuit_open"

        clock.now += 31  # cooldown over: one probe goes through, still failing → open again
        await llm.generate("x")
        assert primary.calls == 4
        assert (await llm.status())["deployments"]["primary"]["breakers"]["-"]["state"] == "open"

        clock.now += 31
        primary.script.clear()  # recovered
        assert (await llm.generate("x")).deployment == "primary"  # probe 1
        assert (await llm.generate("x")).deployment == "primary"  # probe 2 → closed
        assert (await llm.status())["deployments"]["primary"]["breakers"]["-"]["state"] == "closed"


async def test_all_breakers_open_raises_circuit_open_without_calls() -> None:
    clock = FakeClock()
    async with manager(pair(circuit_breaker={"failure_threshold": 1, "cooldown_s": 10}), clock) as llm:
        sim(llm, "primary").push("500")
        sim(llm, "backup").push("500")
        with pytest.raises(AllCandidatesFailedError):
            await llm.generate("x")
        with pytest.raises(CircuitOpenError) as ei:
            await llm.generate("x")
    assert ei.value.retry_after == pytest.approx(10) and ei.value.code == "circuit_open"
    assert sim(llm, "primary").calls == 1 and sim(llm, "backup").calls == 1


async def test_request_errors_do_not_trip_the_breaker() -> None:
    clock = FakeClock()
    async with manager(pair(circuit_breaker={"failure_threshold": 2}), clock) as llm:
        for _ in range(3):
            sim(llm, "primary").push("filter")
            await llm.generate("x")
        assert (await llm.status())["deployments"]["primary"]["breakers"]["-"]["state"] == "closed"


async def test_slow_calls_count_as_failures() -> None:
    settings = sim_settings(
        {"primary": {"family": "gpt", "simulate": {"latency_ms": 30}}, "backup": {"family": "claude"}},
        circuit_breaker={"failure_threshold": 2, "slow_call_s": 0.01},
    )
    async with LLMManager(settings) as llm:
        assert (await llm.generate("a")).deployment == "primary"  # slow, but the answer is still returned
        await llm.generate("b")
        assert (await llm.generate("c")).deployment == "backup"


# -- rate limits and priority ---------------------------------------------------------------------------------------


async def test_a_deployment_without_room_falls_to_the_next_candidate() -> None:
    clock = FakeClock()
    settings = sim_settings({"primary": {"family": "gpt", "rpm": 2}, "backup": {"family": "claude"}})
    async with manager(settings, clock) as llm:
        got = [(await llm.generate(f"q{i}")).deployment for i in range(4)]
    assert got == ["primary", "primary", "backup", "backup"]


async def test_tpm_counts_tokens_and_reconciles_with_real_usage() -> None:
    clock = FakeClock()
    settings = sim_settings({"primary": {"family": "gpt", "tpm": 1000}, "backup": {"family": "claude"}})
    async with manager(settings, clock) as llm:
        # max_tokens=900 reserves ~900 tokens; the real answer is ~30, so the rest is given back afterwards.
        assert (await llm.generate("x", max_tokens=900)).deployment == "primary"
        assert (await llm.generate("y", max_tokens=900)).deployment == "primary"
        left = (await llm.status())["deployments"]["primary"]["limits"]["tpm_available"]
    assert 800 < left < 1000


async def test_no_room_anywhere_waits_then_succeeds() -> None:
    clock = FakeClock()
    settings = sim_settings({"only": {"family": "gpt", "rpm": 1}}, queue_timeout_s=120)
    async with manager(settings, clock) as llm:
        await llm.generate("a")
        r = await llm.generate("b")
    assert r.deployment == "only" and clock.sleeps == [pytest.approx(60)]


async def test_no_room_within_queue_timeout_raises_rate_limit_with_retry_after() -> None:
    clock = FakeClock()
    settings = sim_settings({"only": {"family": "gpt", "rpm": 1}}, queue_timeout_s=5)
    async with manager(settings, clock) as llm:
        await llm.generate("a")
        with pytest.raises(RateLimitError) as ei:
            await llm.generate("b")
    assert ei.value.retry_after == pytest.approx(60) and clock.sleeps == []
    assert ei.value.attempts[-1].error_code == "rate_limited" and ei.value.attempts[-1].skipped


async def test_waiting_requests_are_served_high_priority_first() -> None:
    clock = ManualClock()
    settings = sim_settings({"only": {"family": "gpt", "rpm": 1}}, queue_timeout_s=3600, deadline_s=3600)
    async with manager(settings, clock) as llm:
        await llm.generate("warm-up")  # the budget is now empty: everyone below has to queue
        order: list[str] = []

        async def ask(prio: str, i: int) -> None:
            await llm.generate(f"{prio}-{i}", priority=prio)
            order.append(prio)

        tasks = [asyncio.create_task(ask(p, i)) for i, p in enumerate(["low", "low", "medium", "high", "low", "high"])]
        await clock.advance(0)
        assert len(llm.executor.gate) == 6 and order == []
        for _ in range(6):
            await clock.advance(60)  # one more request of room per minute
        await asyncio.gather(*tasks)
    assert order == ["high", "high", "medium", "low", "low", "low"]


# -- key pools (over real HTTP: the key is in the Authorization header) ---------------------------------------------


def by_key(replies: dict[str, Reply]) -> Any:
    def answer(req: Recorded) -> Reply:
        return replies[req.headers["authorization"].removeprefix("Bearer ")]

    return answer


def pooled(up: FakeUpstream, keys: str, **extra: Any) -> Any:
    return load_settings(
        {
            "models": {
                "gpt": {
                    "provider": "openai-compatible",
                    "base_url": f"{up.url}/v1",
                    "model": "gpt-4o",
                    "api_keys": keys,
                    **extra,
                }
            },
            "cache": {"enabled": False},
        },
        env={},
    )


async def test_round_robin_with_weights() -> None:
    ok = Reply.json(openai_wire.completion("ok"))
    async with FakeUpstream(by_key({"k1": ok, "k2": ok})) as up:
        async with LLMManager(pooled(up, "k1,k2", key_weights=[3, 1])) as llm:
            for i in range(8):
                await llm.generate(f"q{i}")
    used = [r.headers["authorization"] for r in up.requests]
    assert used.count("Bearer k1") == 6 and used.count("Bearer k2") == 2


async def test_429_on_one_key_moves_to_the_next_key_at_once() -> None:
    limited = Reply.error(429, openai_wire.error_body("slow", "rate_limit_error", None), headers={"retry-after": "30"})
    clock = FakeClock()
    async with FakeUpstream(by_key({"k1": limited, "k2": Reply.json(openai_wire.completion("ok"))})) as up:
        async with manager(pooled(up, "k1,k2"), clock) as llm:
            r = await llm.generate("x")
            keys = (await llm.status())["deployments"]["gpt"]["keys"]
            r2 = await llm.generate("y")
    assert r.content == "ok" and clock.sleeps == []
    assert [a.error_code for a in r.metadata.attempts] == ["rate_limited", None]
    assert keys[0]["state"] == "cooling" and keys[0]["rate_limited"] == 1
    assert r2.metadata.attempts[0].key == keys[1]["key"]  # the cooling key is not picked first


async def test_401_removes_the_key_and_names_it_by_fingerprint(caplog: pytest.LogCaptureFixture) -> None:
    bad = Reply.error(401, openai_wire.error_body("Incorrect API key", "invalid_request_error", "invalid_api_key"))
    ok = Reply.json(openai_wire.completion("ok"))
    async with FakeUpstream(by_key({"sk-bad-secret": bad, "sk-good": ok})) as up:
        async with LLMManager(pooled(up, "sk-bad-secret,sk-good")) as llm:
            with caplog.at_level(logging.WARNING, logger="llm_manager.keys"):
                answers = [(await llm.generate(f"q{i}")).content for i in range(4)]
            keys = (await llm.status())["deployments"]["gpt"]["keys"]
    assert answers == ["ok"] * 4
    assert [k["state"] for k in keys] == ["disabled", "ok"]
    assert sum(r.headers["authorization"] == "Bearer sk-bad-secret" for r in up.requests) == 1
    assert keys[0]["key"] in caplog.text and "sk-bad-secret" not in caplog.text


async def test_every_key_removed_surfaces_authentication_error() -> None:
    bad = Reply.error(401, openai_wire.error_body("nope", "invalid_request_error", "invalid_api_key"))
    async with FakeUpstream(lambda _r: bad) as up:
        async with LLMManager(pooled(up, "a,b")) as llm:
            with pytest.raises(Exception) as ei:
                await llm.generate("x")
    assert type(ei.value).__name__ == "AuthenticationError" and len(up.requests) == 2


# -- hedging --------------------------------------------------------------------------------------------------------


async def test_hedge_starts_the_second_candidate_and_first_answer_wins() -> None:
    settings = sim_settings(
        {
            "slow": {
                "family": "gpt",
                "simulate": {"latency_ms": 2000},
                "input_price_per_mtok": 1,
                "output_price_per_mtok": 1,
            },
            "fast": {"family": "claude", "simulate": {"latency_ms": 5}},
        },
        hedge={"tasks": ["general"], "delay_s": 0.05},
    )
    async with LLMManager(settings) as llm:
        r = await llm.generate("x")
    assert r.deployment == "fast" and r.metadata.hedged and r.metadata.latency_ms < 1000
    loser = next(a for a in r.metadata.attempts if a.deployment == "slow")
    assert loser.error_code == "hedge_lost" and loser.hedge and loser.cost is not None and loser.cost > 0
    assert sim(llm, "slow").calls == 1 and sim(llm, "fast").calls == 1


async def test_hedge_not_started_when_the_first_answers_in_time() -> None:
    settings = sim_settings(
        {"a": {"family": "gpt"}, "b": {"family": "claude"}}, hedge={"tasks": ["general"], "delay_s": 0.5}
    )
    async with LLMManager(settings) as llm:
        r = await llm.generate("x")
    assert r.deployment == "a" and not r.metadata.hedged and sim(llm, "b").calls == 0


async def test_hedge_with_both_failing_continues_down_the_chain() -> None:
    slow_error = {"first_token_ms": 30}  # simulated errors arrive after first_token_ms
    settings = sim_settings(
        {
            "a": {"family": "gpt", "simulate": slow_error},
            "b": {"family": "claude", "simulate": slow_error},
            "c": {"family": "gemini"},
        },
        hedge={"tasks": ["general"], "delay_s": 0.005},
        max_retries=0,
    )
    async with LLMManager(settings) as llm:
        sim(llm, "a").push("500")
        sim(llm, "b").push("503")
        r = await llm.generate("x")
    assert r.deployment == "c" and r.metadata.hedged
    assert [(a.deployment, a.error_code) for a in r.metadata.attempts] == [
        ("a", "model_unavailable"),
        ("b", "model_unavailable"),
        ("c", None),
    ]


async def test_hedge_delay_p95_uses_observed_latency() -> None:
    settings = sim_settings(
        {"a": {"family": "gpt", "simulate": {"latency_ms": 1}}, "b": {"family": "claude"}},
        hedge={"tasks": ["general"], "delay_s": "p95", "p95_fallback_s": 5},
    )
    async with LLMManager(settings) as llm:
        assert llm.executor._hedge_delay(llm.request("x"), _plan(llm)) == 5  # no samples yet: the fallback
        for i in range(25):
            await llm.generate(f"warm {i}")
        assert llm.executor._hedge_delay(llm.request("x"), _plan(llm)) < 0.5


def _plan(llm: LLMManager) -> Any:
    from llm_manager.routing.planner import plan

    return plan(llm.request("x"), llm.settings, llm.deployments, llm.stats)


# -- de-duplication and cache ------------------------------------------------------------------------------------


async def test_100_concurrent_identical_requests_make_one_upstream_call() -> None:
    settings = sim_settings({"gpt": {"family": "gpt", "simulate": {"latency_ms": 20}}}, cache={"enabled": True})
    async with LLMManager(settings) as llm:
        rs = await asyncio.gather(*(llm.generate("same question") for _ in range(100)))
    assert sim(llm, "gpt").calls == 1
    assert sum(r.metadata.deduplicated for r in rs) == 99
    assert len({r.metadata.request_id for r in rs}) == 100 and len({r.content for r in rs}) == 1


async def test_dedupe_is_off_when_the_caller_opts_out_of_caching() -> None:
    settings = sim_settings({"gpt": {"family": "gpt", "simulate": {"latency_ms": 10}}}, cache={"enabled": True})
    async with LLMManager(settings) as llm:
        await asyncio.gather(*(llm.generate("same", cache=False) for _ in range(10)))
    assert sim(llm, "gpt").calls == 10


async def test_a_failing_leader_fails_its_followers_too() -> None:
    # first_token_ms: the simulated 500 takes a moment, so the followers arrive while the leader is in flight
    settings = sim_settings(
        {"gpt": {"family": "gpt", "simulate": {"latency_ms": 10, "first_token_ms": 5}}},
        cache={"enabled": True},
        max_retries=0,
    )
    async with LLMManager(settings) as llm:
        sim(llm, "gpt").push("500")
        results = await asyncio.gather(*(llm.generate("same") for _ in range(5)), return_exceptions=True)
    assert all(isinstance(r, AllCandidatesFailedError) for r in results) and sim(llm, "gpt").calls == 1


async def test_cache_hit_ttl_and_opt_out() -> None:
    clock = FakeClock()
    settings = sim_settings({"gpt": {"family": "gpt"}}, cache={"enabled": True, "ttl_s": 300})
    async with manager(settings, clock) as llm:
        first = await llm.generate("q")
        hit = await llm.generate("q", user="someone-else")  # who asks does not change the answer
        assert hit.metadata.cached and hit.content == first.content and hit.id != first.id
        assert (await llm.generate("q", cache=False)).metadata.cached is False
        assert (await llm.generate("q", temperature=0.1)).metadata.cached is False  # other parameters, other key
        clock.now += 301
        assert (await llm.generate("q")).metadata.cached is False
    assert sim(llm, "gpt").calls == 4


async def test_cached_answer_is_replayed_as_a_stream_and_streams_fill_the_cache() -> None:
    settings = sim_settings({"gpt": {"family": "gpt"}}, cache={"enabled": True})
    async with LLMManager(settings) as llm:
        s1 = llm.stream("haiku")
        text1 = await s1.text()
        s2 = llm.stream("haiku")
        events = [e async for e in s2]
    assert [e.type for e in events] == ["delta", "done"] and events[0].delta == text1
    assert s2.response is not None and s2.response.metadata.cached and sim(llm, "gpt").calls == 1


async def test_cache_respects_its_bound() -> None:
    settings = sim_settings({"gpt": {"family": "gpt"}}, cache={"enabled": True, "max_entries": 5})
    async with LLMManager(settings) as llm:
        for i in range(20):
            await llm.generate(f"q{i}")
        assert (await llm.status())["cache"]["entries"] == 5
        assert (await llm.generate("q19")).metadata.cached
        assert not (await llm.generate("q0")).metadata.cached


async def test_stream_hedge_decides_before_the_first_chunk() -> None:
    settings = sim_settings(
        {
            "slow": {"family": "gpt", "simulate": {"first_token_ms": 2000}},
            "fast": {"family": "claude", "simulate": {"first_token_ms": 5}},
        },
        hedge={"tasks": ["general"], "delay_s": 0.05},
    )
    async with LLMManager(settings) as llm:
        s = llm.stream("haiku")
        text = await s.text()
    assert text.startswith("[simulated fast]") and "[simulated slow]" not in text
    assert s.response is not None and s.response.metadata.hedged and s.response.deployment == "fast"
    assert [a.error_code for a in s.response.metadata.attempts if a.deployment == "slow"] == ["hedge_lost"]


async def test_stream_hedge_when_primary_is_quick_does_not_start_a_second_stream() -> None:
    settings = sim_settings(
        {"a": {"family": "gpt"}, "b": {"family": "claude"}}, hedge={"tasks": ["general"], "delay_s": 0.5}
    )
    async with LLMManager(settings) as llm:
        s = llm.stream("haiku")
        await s.text()
    assert s.response is not None and s.response.deployment == "a" and sim(llm, "b").calls == 0
