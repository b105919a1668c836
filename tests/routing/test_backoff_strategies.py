"""Retry strategies (``routing.backoff.strategy``) against a real HTTP upstream on 127.0.0.1 that is down for a
known time: the fixed curves on the injected clock, and the adaptive strategy learning that time."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import pytest

from llm_manager import LLMManager
from llm_manager.config import BackoffConfig, load_settings
from llm_manager.errors import ConfigError, ModelUnavailableError, RateLimitError
from llm_manager.routing.recovery import RecoveryLearner
from llm_manager.routing.retry import backoff_delay, curve_delay
from tests.fakes import openai_wire
from tests.fakes.server import FakeUpstream, Recorded, Reply
from tests.helpers import FakeClock


def _policy(strategy: str, **kw: Any) -> BackoffConfig:
    return BackoffConfig.model_validate({"strategy": strategy, "jitter": False, **kw})


@pytest.mark.parametrize(
    ("strategy", "expected"),
    [
        ("exponential", [0.5, 1.0, 2.0, 4.0, 8.0, 8.0]),
        ("linear", [0.5, 1.0, 1.5, 2.0, 2.5, 3.0]),
        ("fibonacci", [0.5, 0.5, 1.0, 1.5, 2.5, 4.0]),
        ("adaptive", [0.5, 1.0, 2.0, 4.0, 8.0, 8.0]),  # before it has learned: the exponential curve
    ],
)
def test_curves(strategy: str, expected: list[float]) -> None:
    assert [curve_delay(i, _policy(strategy)) for i in range(6)] == expected


def test_curves_are_capped_and_jittered_within_half() -> None:
    policy = _policy("fibonacci", base_s=1.0, max_s=6.0, jitter=True)
    assert [curve_delay(i, policy) for i in range(7)] == [1, 1, 2, 3, 5, 6, 6]
    exc = ModelUnavailableError("down", status_code=503)
    assert backoff_delay(4, exc, policy, lambda: 0.0, 20.0) == 2.5
    assert backoff_delay(4, exc, policy, lambda: 1.0, 20.0) == 5.0


def test_retry_after_wins_over_every_strategy_and_learned_wait_only_counts_for_adaptive() -> None:
    limited = RateLimitError("slow", retry_after=3.0)
    for strategy in ("exponential", "linear", "fibonacci", "adaptive"):
        assert backoff_delay(0, limited, _policy(strategy), lambda: 0.5, 20.0, learned_s=7.0) == 3.0
    down = ModelUnavailableError("down", status_code=503)
    assert backoff_delay(0, down, _policy("adaptive"), lambda: 0.5, 20.0, learned_s=1.25) == 1.25
    assert backoff_delay(0, down, _policy("linear"), lambda: 0.5, 20.0, learned_s=1.25) == 0.5


def test_config_names_a_bad_strategy_and_merges_the_deployment_override() -> None:
    with pytest.raises(ConfigError, match=r"routing\.backoff\.strategy.*'fibonaci'.*'fibonacci'"):
        load_settings({"routing": {"backoff": {"strategy": "fibonaci"}}}, env={})
    with pytest.raises(ConfigError, match=r"models\.m\.backoff\.strategy"):
        load_settings({"models": {"m": {"provider": "simulated", "backoff": {"strategy": "random"}}}}, env={})


# -- against a fake upstream that is down for a known time ---------------------------------------------------------


def _down_until(recover_at: Callable[[], float], clock: Callable[[], float], status: int = 503) -> Any:
    """The upstream's answer: ``status`` while ``clock() < recover_at()``, a completion after."""

    def answer(req: Recorded) -> Reply:
        if clock() < recover_at():
            err = openai_wire.error_body("overloaded", "server_error" if status >= 500 else "rate_limit_error")
            return Reply.error(status, err)
        return Reply.json(openai_wire.completion("recovered"))

    return answer


def _settings(url: str, backoff: dict[str, Any], own: dict[str, Any] | None = None, **routing: Any) -> Any:
    model: dict[str, Any] = {"provider": "openai-compatible", "base_url": f"{url}/v1", "api_key": "k", "family": "gpt"}
    if own is not None:
        model["backoff"] = own
    return load_settings(
        {
            "models": {"gpt": model},
            "routing": {"max_retries": 6, "backoff": {"jitter": False, **backoff}, **routing},
            "cache": {"enabled": False},
        },
        env={},
    )


@pytest.mark.parametrize(
    ("strategy", "sleeps"),
    [
        ("exponential", [0.5, 1.0, 2.0]),  # 3.5 s: the third retry lands after the 3 s outage
        ("linear", [0.5, 1.0, 1.5]),  # exactly 3.0 s
        ("fibonacci", [0.5, 0.5, 1.0, 1.5]),  # 3.5 s, one more retry
    ],
)
async def test_fixed_curves_against_a_three_second_outage(strategy: str, sleeps: list[float]) -> None:
    clock = FakeClock()
    down_until = clock.now + 3.0
    async with FakeUpstream(_down_until(lambda: down_until, clock)) as ups:
        async with LLMManager(_settings(ups.url, {"strategy": strategy}), clock=clock, sleep=clock.sleep) as llm:
            r = await llm.generate("hi")
    assert r.content == "recovered" and clock.sleeps == sleeps
    assert len(ups.requests) == len(sleeps) + 1
    assert [a.waited_ms for a in r.metadata.attempts] == [0.0, *(s * 1000 for s in sleeps)]


async def test_deployment_backoff_overrides_only_the_fields_it_sets() -> None:
    clock = FakeClock()
    down_until = clock.now + 1.0
    settings = _settings("http://127.0.0.1:1", {"strategy": "exponential", "base_s": 0.25}, own={"strategy": "linear"})
    async with FakeUpstream(_down_until(lambda: down_until, clock)) as ups:
        settings.models["gpt"].base_url = f"{ups.url}/v1"
        async with LLMManager(settings, clock=clock, sleep=clock.sleep) as llm:
            await llm.generate("hi")
    assert clock.sleeps == [0.25, 0.5, 0.75]  # linear steps of the routing-wide base_s


async def test_adaptive_learns_the_recovery_time_and_waits_that_long_next_time() -> None:
    clock = FakeClock()
    outage = {"until": clock.now + 3.0}
    async with FakeUpstream(_down_until(lambda: outage["until"], clock)) as ups:
        async with LLMManager(_settings(ups.url, {"strategy": "adaptive"}), clock=clock, sleep=clock.sleep) as llm:
            await llm.generate("first outage")
            assert clock.sleeps == [0.5, 1.0, 2.0]  # nothing learned yet: the exponential curve
            learned = (await llm.status())["deployments"]["gpt"]["recovery"]["unavailable"]
            assert learned["clear_s"] == pytest.approx(3.5, abs=0.05) and learned["samples"] == 1

            clock.sleeps.clear()
            outage["until"] = clock.now + 3.0
            sent = len(ups.requests)
            r = await llm.generate("second outage")
    assert r.content == "recovered"
    assert clock.sleeps == [pytest.approx(3.5, abs=0.05)]  # one wait of the learned length, then success
    assert len(ups.requests) - sent == 2


async def test_adaptive_uses_the_retry_after_values_a_deployment_sent_when_a_429_has_none() -> None:
    clock = FakeClock()
    async with FakeUpstream() as ups:
        limited = openai_wire.error_body("slow down", "rate_limit_error")
        ups.push(
            Reply.error(429, limited, headers={"retry-after": "2"}),
            Reply.json(openai_wire.completion("ok")),
            Reply.error(429, limited),  # this time no Retry-After
            Reply.json(openai_wire.completion("ok again")),
        )
        settings = _settings(ups.url, {"strategy": "adaptive", "base_s": 0.1})
        async with LLMManager(settings, clock=clock, sleep=clock.sleep) as llm:
            await llm.generate("a")
            r = await llm.generate("b")
    assert r.content == "ok again"
    assert clock.sleeps[0] == 2.0  # the header
    assert clock.sleeps[1] == pytest.approx(2.0, abs=0.05)  # learned: the clear time the header's wait measured


async def test_adaptive_moves_on_when_the_expected_recovery_is_past_the_cap_or_the_deadline() -> None:
    clock = FakeClock()
    outage = {"until": clock.now + 12.0}
    async with FakeUpstream(_down_until(lambda: outage["until"], clock)) as ups:
        settings = _settings(ups.url, {"strategy": "adaptive", "base_s": 4.0, "max_s": 8.0}, retry_after_cap_s=10.0)
        async with LLMManager(settings, clock=clock, sleep=clock.sleep) as llm:
            await llm.generate("learn")  # 4 + 8 = 12 s: learns ~12 s
            clock.sleeps.clear()
            outage["until"] = clock.now + 12.0
            with pytest.raises(Exception, match="every candidate failed"):
                await llm.generate("again")  # 12 s expected > the 10 s cap: no wait, next candidate (none)
            assert clock.sleeps == []
    outage = {"until": clock.now + 1.0}
    async with FakeUpstream(_down_until(lambda: outage["until"], clock)) as ups:
        settings = _settings(ups.url, {"strategy": "adaptive", "base_s": 1.0})
        async with LLMManager(settings, clock=clock, sleep=clock.sleep) as llm:
            await llm.generate("learn")  # learns ~1 s
            clock.sleeps.clear()
            outage["until"] = clock.now + 1.0
            with pytest.raises(Exception, match="cut short by the 0.5s deadline"):
                await llm.generate("again", timeout_s=0.5)
            assert clock.sleeps == []


async def test_adaptive_learning_in_real_time_over_loopback() -> None:
    """No injected clock: the upstream is down for 0.3 s of real time after each outage starts."""
    recovery_s = 0.3
    outage = {"until": 0.0}
    async with FakeUpstream(_down_until(lambda: outage["until"], time.monotonic)) as ups:
        settings = _settings(ups.url, {"strategy": "adaptive", "base_s": 0.05})
        async with LLMManager(settings) as llm:
            outage["until"] = time.monotonic() + recovery_s
            first = await llm.generate("first")
            first_tries = len(first.metadata.attempts)
            outage["until"] = time.monotonic() + recovery_s
            t0 = time.monotonic()
            second = await llm.generate("second")
            took = time.monotonic() - t0
            learned = (await llm.status())["deployments"]["gpt"]["recovery"]["unavailable"]
    assert first_tries >= 4  # 0.05, 0.1, 0.2 …: the curve needed several tries to get past 0.3 s
    assert len(second.metadata.attempts) == 2  # one failure, one learned wait, success
    assert recovery_s <= second.metadata.attempts[1].waited_ms / 1000 + 0.05 and took < 1.0
    assert learned["samples"] == 2 and recovery_s <= learned["clear_s"] < 0.8


def test_learner_ignores_successes_that_started_before_the_trouble_and_other_errors() -> None:
    clock = FakeClock()
    learner = RecoveryLearner(clock)
    learner.failed("d", TimeoutError())
    assert learner.snapshot("d") == {}
    learner.failed("d", RateLimitError("429", status_code=429))
    learner.succeeded("d", clock.now - 1.0)  # began before the 429: proves nothing
    clock.now += 2.0
    learner.succeeded("d", clock.now)
    assert learner.snapshot("d")["rate_limited"] == {"clear_s": 2.0, "retry_after_s": None, "samples": 1, "open": False}
    learner.failed("d", RateLimitError("429", status_code=429))
    clock.now += 0.5
    assert learner.wait("d", RateLimitError("429")) == 1.5  # what is left of the usual 2 s
    clock.now += 2.0
    assert learner.wait("d", RateLimitError("429")) is None  # longer than usual: back to the curve
    clock.now += 1.0
    learner.succeeded("d", clock.now)
    assert learner.snapshot("d")["rate_limited"]["clear_s"] == 2.75  # the moving average of 2.0 and 3.5
