"""Each strategy against the scenarios users meet: cheap-but-slow, fast-but-dear, unmeasured, noisy ties.

Latencies are fed through the manager's own statistics (what the executor records after each call); prices come from
config. ``routing.overtake`` defaults: 20 % to move up, 10 % to stay up, 5 measured calls before ``balanced`` trusts
a latency.
"""

from __future__ import annotations

import random
from collections.abc import AsyncIterator
from typing import Any

import pytest

from llm_manager.config import load_settings
from llm_manager.discovery import simulated_settings
from llm_manager.errors import ConfigError
from llm_manager.manager import LLMManager
from llm_manager.routing.planner import plan
from llm_manager.types import Request


def sim(price: float, prior_ms: float = 50.0) -> dict[str, Any]:
    """A simulated model at ``price`` USD per million tokens (in and out) whose own profile says ``prior_ms``."""
    return {
        "provider": "simulated",
        "input_price_per_mtok": price,
        "output_price_per_mtok": price,
        "simulate": {"latency_ms": prior_ms},
    }


def remote(price: float) -> dict[str, Any]:
    """A model with no latency prior (an OpenAI-compatible server that has not answered yet)."""
    return {
        "provider": "openai-compatible",
        "base_url": "http://127.0.0.1:9/v1",
        "input_price_per_mtok": price,
        "output_price_per_mtok": price,
    }


@pytest.fixture
async def make() -> AsyncIterator[Any]:
    made: list[LLMManager] = []

    def build(strategy: str, models: dict[str, dict[str, Any]], **routing: Any) -> LLMManager:
        raw = {"models": models, "routing": {"strategy": strategy, "tasks": {"general": list(models)}, **routing}}
        llm = LLMManager(load_settings(raw, env={}))
        made.append(llm)
        return llm

    yield build
    for llm in made:
        await llm.aclose()


def order(llm: LLMManager, task: str = "general") -> list[str]:
    p = plan(Request(prompt="hello", task=task), llm.settings, llm.deployments, llm.stats)
    return [d.name for d in p.candidates]


def measure(llm: LLMManager, name: str, ms: float, calls: int = 5) -> None:
    """``calls`` successful calls of ``ms`` each (enough of them settle the moving average on ``ms``)."""
    for _ in range(calls):
        llm.stats.success(name, ms)


# -- cost ----------------------------------------------------------------------------------------------------------


async def test_cost_puts_the_cheap_but_slow_model_first_and_unknown_prices_last(make: Any) -> None:
    mystery = {"provider": "simulated", "model": "in-house-x"}  # no price in config: unknown, never "free"
    llm = make("cost", {"mystery": mystery, "dear": sim(10), "cheap": sim(1)})
    measure(llm, "cheap", 900)
    measure(llm, "dear", 10)
    assert order(llm) == ["cheap", "dear", "mystery"]


async def test_cost_keeps_the_table_order_for_equal_prices_whatever_the_latencies(make: Any) -> None:
    llm = make("cost", {"a": sim(2), "b": sim(2)})
    rng = random.Random(7)
    for _ in range(100):
        llm.stats.success("a", rng.uniform(90, 110))
        llm.stats.success("b", rng.uniform(90, 110) / 3)
        assert order(llm) == ["a", "b"]


# -- performance ---------------------------------------------------------------------------------------------------


async def test_performance_puts_the_fast_but_dear_model_first(make: Any) -> None:
    llm = make("performance", {"cheap": sim(1), "dear": sim(10)})
    measure(llm, "cheap", 400)
    measure(llm, "dear", 40)
    assert order(llm) == ["dear", "cheap"]


async def test_performance_gives_an_unmeasured_model_its_prior_instead_of_last_place() -> None:
    # The case: after one call to the slow, dear Claude-class model, config-management went to it over the
    # 15 ms local Llama that had not been measured yet.
    llm = LLMManager(simulated_settings(overrides={"routing": {"strategy": "performance"}}))
    try:
        assert order(llm, "config-management")[0] == "sim-llama"
        llm.stats.success("sim-claude", 60.0)
        assert order(llm, "config-management")[0] == "sim-llama"
        assert order(llm, "analysis")[0] == "sim-llama"  # 15 ms beats 60 ms by far: the fastest answers
    finally:
        await llm.aclose()


async def test_performance_explores_a_model_with_no_prior_then_ranks_it_by_its_measurements(make: Any) -> None:
    llm = make("performance", {"known": remote(1), "new": remote(1)})
    measure(llm, "known", 50)
    assert order(llm) == ["new", "known"]  # never called, nothing known: tried once to be measured
    llm.stats.success("new", 500)
    assert order(llm) == ["known", "new"]


async def test_performance_measurements_replace_the_prior_after_enough_calls(make: Any) -> None:
    llm = make("performance", {"a": sim(1, prior_ms=100), "b": sim(1, prior_ms=20)})
    measure(llm, "b", 400, calls=4)
    assert order(llm) == ["b", "a"]  # four calls: the prior still stands
    llm.stats.success("b", 400)
    assert order(llm) == ["a", "b"]


async def test_performance_puts_a_model_whose_calls_all_failed_last(make: Any) -> None:
    llm = make("performance", {"broken": remote(1), "ok": remote(1)})
    llm.stats.failure("broken", "model_unavailable")
    measure(llm, "ok", 900)
    assert order(llm) == ["ok", "broken"]


async def test_performance_does_not_reorder_on_noisy_ties(make: Any) -> None:
    llm = make("performance", {"a": remote(1), "b": remote(1), "c": remote(1)})
    rng = random.Random(3)
    for _ in range(200):
        for name in ("a", "b", "c"):
            llm.stats.success(name, rng.uniform(90, 110))
        assert order(llm) == ["a", "b", "c"]


async def test_performance_moves_up_at_the_margin_and_holds_with_hysteresis(make: Any) -> None:
    llm = make("performance", {"a": remote(1), "b": remote(1)})
    measure(llm, "a", 100)
    measure(llm, "b", 85, calls=60)  # 15 % faster: not enough to move up
    assert order(llm) == ["a", "b"]
    measure(llm, "b", 75, calls=60)  # 25 % faster: moves up
    assert order(llm) == ["b", "a"]
    measure(llm, "b", 85, calls=60)  # back to 15 %: above the 10 % it needs to stay
    assert order(llm) == ["b", "a"]
    measure(llm, "b", 95, calls=60)  # 5 %: the table's order again
    assert order(llm) == ["a", "b"]


# -- balanced ------------------------------------------------------------------------------------------------------


async def test_balanced_keeps_the_table_for_cheap_but_slow_and_for_fast_but_dear(make: Any) -> None:
    llm = make("balanced", {"dear": sim(10), "cheap": sim(1)})
    measure(llm, "dear", 10)
    measure(llm, "cheap", 900)
    assert order(llm) == ["dear", "cheap"]  # cheaper, but slower
    llm = make("balanced", {"cheap": sim(1), "fast": sim(10)})
    measure(llm, "cheap", 900)
    measure(llm, "fast", 10)
    assert order(llm) == ["cheap", "fast"]  # faster, but dearer


async def test_balanced_moves_up_a_model_clearly_cheaper_and_faster_once_measured_enough(make: Any) -> None:
    llm = make("balanced", {"a": sim(10), "b": sim(5)})
    measure(llm, "a", 100)
    measure(llm, "b", 50, calls=4)
    assert order(llm) == ["a", "b"]  # four calls are not evidence enough
    llm.stats.success("b", 50)
    assert order(llm) == ["b", "a"]


async def test_balanced_ignores_priors_and_keeps_the_table_until_measured() -> None:
    llm = LLMManager(simulated_settings())  # sim-llama's profile is the cheapest and fastest of all
    try:
        for task in ("analysis", "ui-generation", "config-management", "general"):
            assert order(llm, task) == llm.settings.chain(task)
    finally:
        await llm.aclose()


async def test_balanced_needs_both_axes_past_the_margin(make: Any) -> None:
    llm = make("balanced", {"a": sim(10), "b": sim(8.5)})  # 15 % cheaper
    measure(llm, "a", 100)
    measure(llm, "b", 10)  # 90 % faster
    assert order(llm) == ["a", "b"]


async def test_balanced_does_not_flip_on_a_hundredth_of_a_millisecond(make: Any) -> None:
    # Min-max normalisation used to turn a 0.02 ms difference into a whole point and flip the table's primary.
    llm = make("balanced", {"a": sim(3), "b": sim(2.9), "c": sim(2.8)})
    rng = random.Random(11)
    for _ in range(200):
        for name in ("a", "b", "c"):
            llm.stats.success(name, 5 + rng.uniform(-0.02, 0.02))
        assert order(llm) == ["a", "b", "c"]


async def test_balanced_hysteresis_holds_a_model_that_moved_up(make: Any) -> None:
    llm = make("balanced", {"a": sim(10), "b": sim(5)})
    measure(llm, "a", 100)
    measure(llm, "b", 75, calls=60)
    assert order(llm) == ["b", "a"]
    measure(llm, "b", 88, calls=60)  # 12 % faster now: still ahead
    assert order(llm) == ["b", "a"]
    measure(llm, "b", 95, calls=60)
    assert order(llm) == ["a", "b"]


async def test_balanced_moves_a_model_up_only_past_the_models_it_beats(make: Any) -> None:
    llm = make("balanced", {"a": sim(10), "b": sim(20), "c": sim(1)})
    measure(llm, "a", 100)
    measure(llm, "b", 1000)
    measure(llm, "c", 10)
    assert order(llm) == ["c", "a", "b"]  # c beats b, then a
    llm = make("balanced", {"a": sim(1), "b": sim(20), "c": sim(5)})
    measure(llm, "a", 100)
    measure(llm, "b", 1000)
    measure(llm, "c", 10)
    assert order(llm) == ["a", "c", "b"]  # c beats b, but is dearer than a
    llm = make("balanced", {"a": sim(10), "b": sim(0.1), "c": sim(1)})
    measure(llm, "a", 100)
    measure(llm, "b", 1000)
    measure(llm, "c", 10)
    assert order(llm) == ["a", "b", "c"]  # c would beat a, but not b just above it: it does not jump b


async def test_margins_are_configurable_and_checked(make: Any) -> None:
    llm = make("balanced", {"a": sim(10), "b": sim(9)}, overtake={"margin": 0.05, "hold_margin": 0.0, "min_samples": 1})
    llm.stats.success("a", 100)
    llm.stats.success("b", 90)
    assert order(llm) == ["b", "a"]
    with pytest.raises(ConfigError, match=r"routing\.overtake\.hold_margin: 0\.3 is above margin 0\.2"):
        load_settings({"routing": {"overtake": {"hold_margin": 0.3}}}, env={})
