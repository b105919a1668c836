"""The planner on real deployments (simulated models): chains, explicit models, strategies and context windows."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import pytest

from llm_manager.config import load_settings
from llm_manager.discovery import SIMULATED_MODELS, simulated_settings
from llm_manager.errors import ConfigError, ContextTooLargeError
from llm_manager.manager import LLMManager
from llm_manager.routing.planner import Plan, plan
from llm_manager.types import TASK_TYPES, Request

SIMS = {name: {"provider": "simulated", **spec} for name, spec in SIMULATED_MODELS.items()}


@pytest.fixture
async def make() -> AsyncIterator[Any]:
    made: list[LLMManager] = []

    def build(**overrides: Any) -> LLMManager:
        llm = LLMManager(simulated_settings(overrides=overrides))
        made.append(llm)
        return llm

    yield build
    for llm in made:
        await llm.aclose()


def plan_for(llm: LLMManager, prompt: str = "hello", **prefs: Any) -> Plan:
    return plan(Request(prompt=prompt, **prefs), llm.settings, llm.deployments, llm.stats)


def names(p: Plan) -> list[str]:
    return [d.name for d in p.candidates]


# -- chains and explicit models -----------------------------------------------------------------------------------


async def test_task_chains_follow_the_seed_table(make: Any) -> None:
    llm = make()
    expected = {
        "analysis": ["sim-claude", "sim-gpt", "sim-gpt-mini", "sim-gemini", "sim-llama"],
        "ui-generation": ["sim-gpt", "sim-gpt-mini", "sim-claude", "sim-gemini", "sim-llama"],
        "config-management": ["sim-llama", "sim-gpt", "sim-gpt-mini", "sim-claude", "sim-gemini"],
        "general": ["sim-gpt", "sim-gpt-mini", "sim-claude", "sim-gemini", "sim-llama"],
    }
    for task in TASK_TYPES:
        p = plan_for(llm, task=task)
        assert names(p) == expected[task] == llm.settings.chain(task), task
        assert p.skipped == []


async def test_configured_task_chain(make: Any) -> None:
    llm = make(routing={"tasks": {"analysis": ["sim-gemini", "sim-llama"]}})
    assert names(plan_for(llm, task="analysis")) == ["sim-gemini", "sim-llama"]
    assert names(plan_for(llm, task="general"))[0] == "sim-gpt"


async def test_explicit_model_goes_first_then_the_chain(make: Any) -> None:
    llm = make()
    p = plan_for(llm, task="analysis", model="sim-llama")
    assert names(p) == ["sim-llama", "sim-claude", "sim-gpt", "sim-gpt-mini", "sim-gemini"]


async def test_explicit_model_stays_first_under_every_strategy(make: Any) -> None:
    for strategy in ("cost", "performance", "balanced"):
        llm = make(routing={"strategy": strategy})
        assert names(plan_for(llm, task="general", model="sim-claude"))[0] == "sim-claude", strategy


async def test_no_fallback_means_only_that_model(make: Any) -> None:
    llm = make()
    assert names(plan_for(llm, task="analysis", model="sim-gpt", fallback=False)) == ["sim-gpt"]


async def test_unknown_model_lists_available(make: Any) -> None:
    llm = make(routing={"aliases": {"fast": "sim-gpt-mini"}})
    with pytest.raises(ConfigError) as info:
        plan_for(llm, model="nope")
    msg = info.value.message
    assert "unknown model 'nope'" in msg
    for name in [*SIMULATED_MODELS, "fast"]:
        assert name in msg


async def test_aliases_and_wire_ids_pick_the_deployment(make: Any) -> None:
    models = {**SIMS, "cheap": {"provider": "simulated", "model": "gpt-4o-mini", "aliases": ["budget"]}}
    llm = make(models=models, routing={"aliases": {"fast": "sim-gpt-mini"}})
    assert names(plan_for(llm, model="fast", fallback=False)) == ["sim-gpt-mini"]
    assert names(plan_for(llm, model="budget", fallback=False)) == ["cheap"]
    assert names(plan_for(llm, model="gpt-4o-mini", fallback=False)) == ["cheap"]
    p = plan_for(llm, model="fast", task="analysis")
    assert names(p)[0] == "sim-gpt-mini" and names(p).count("sim-gpt-mini") == 1


async def test_no_models_configured_says_how_to_fix() -> None:
    llm = LLMManager(load_settings({}, env={}))
    try:
        with pytest.raises(ConfigError, match=r"no models configured\. Fix: add `models:`"):
            plan_for(llm)
    finally:
        await llm.aclose()


# -- strategies ---------------------------------------------------------------------------------------------------


async def test_cost_orders_by_estimated_price_and_unknown_last(make: Any) -> None:
    llm = make(routing={"strategy": "cost"})
    assert names(plan_for(llm, task="analysis")) == ["sim-llama", "sim-gpt-mini", "sim-gemini", "sim-gpt", "sim-claude"]

    models = {**SIMS, "mystery": {"provider": "simulated", "model": "in-house-model-x"}}
    llm = make(
        models=models, routing={"strategy": "cost", "tasks": {"general": ["mystery", "sim-claude", "sim-llama"]}}
    )
    assert llm.deployments["mystery"].price_in is None
    assert names(plan_for(llm, task="general")) == ["sim-llama", "sim-claude", "mystery"]


async def test_cost_uses_the_price_table_when_config_has_none(make: Any) -> None:
    # No prices in config: the maintained price table prices the model ids (an OpenAI-compatible server's model
    # id names its vendor). Simulated models, by contrast, are priced only by config.
    local = {"provider": "openai-compatible", "base_url": "http://127.0.0.1:9/v1"}
    models = {
        "a": {**local, "model": "gpt-4o"},
        "b": {**local, "model": "gpt-4o-mini"},
    }
    llm = make(models=models, routing={"strategy": "cost", "tasks": {"general": ["a", "b"]}})
    assert names(plan_for(llm, task="general")) == ["b", "a"]


# Performance and balanced: tests/routing/test_strategy.py.


# -- context windows ----------------------------------------------------------------------------------------------


async def test_small_window_is_skipped_and_recorded(make: Any) -> None:
    llm = make()
    p = plan_for(llm, "x" * 40_000, task="config-management")
    assert names(p) == ["sim-gpt", "sim-gpt-mini", "sim-claude", "sim-gemini"]
    assert p.needed_tokens > 8_192
    [skip] = p.skipped
    assert skip.deployment == "sim-llama" and skip.skipped and not skip.ok
    assert skip.error_code == "context_too_large" == ContextTooLargeError.code
    assert skip.model == "sim-llama" and skip.provider == "simulated"
    assert "8192" in (skip.error or "")


async def test_requested_output_counts_towards_the_window(make: Any) -> None:
    llm = make()
    assert "sim-llama" in names(plan_for(llm, "short", task="config-management", max_tokens=1000))
    p = plan_for(llm, "short", task="config-management", max_tokens=9000)
    assert "sim-llama" not in names(p) and [a.deployment for a in p.skipped] == ["sim-llama"]


async def test_only_model_too_small_raises_with_counts(make: Any) -> None:
    llm = make()
    with pytest.raises(ContextTooLargeError) as info:
        plan_for(llm, "x" * 40_000, model="sim-llama", fallback=False)
    assert info.value.max_tokens == 8_192
    assert info.value.token_count is not None and info.value.token_count > 8_192
    assert "sim-llama" in info.value.message


async def test_prompt_bigger_than_every_window_raises(make: Any) -> None:
    llm = make()
    with pytest.raises(ContextTooLargeError) as info:
        plan_for(llm, "x" * 4_100_000, task="analysis")
    assert info.value.max_tokens == 1_000_000, "the largest window among the candidates"
    assert info.value.token_count is not None and info.value.token_count > 1_000_000


async def test_route_preview_uses_the_planner(make: Any) -> None:
    llm = make()
    assert llm.route("config-management", prompt="x" * 40_000) == [
        "sim-gpt",
        "sim-gpt-mini",
        "sim-claude",
        "sim-gemini",
        "sim-llama (skipped)",
    ]


async def test_two_names_for_one_deployment_plan_it_once(make: Any) -> None:
    llm = make(
        routing={"aliases": {"fast": "sim-gpt-mini"}, "tasks": {"general": ["fast", "sim-gpt-mini", "sim-llama"]}}
    )
    assert names(plan_for(llm, task="general")) == ["sim-gpt-mini", "sim-llama"]
