"""``LLMManager.simulate``: the library's way to script a simulated model's next outcomes (the demo uses it)."""

from __future__ import annotations

import pytest

from llm_manager import ConfigError, LLMManager
from llm_manager.config import load_settings
from tests.helpers import sim_settings


async def test_scripted_outcomes_come_first_then_normal_answers() -> None:
    settings = sim_settings({"primary": {"family": "gpt"}, "backup": {"family": "claude"}}, max_retries=0)
    async with LLMManager(settings) as llm:
        llm.simulate("primary", "503")
        first = await llm.generate("x", model="primary")
        second = await llm.generate("y", model="primary")
    assert [a.error_code for a in first.metadata.attempts] == ["model_unavailable", None]
    assert first.deployment == "backup" and second.deployment == "primary"


async def test_only_simulated_models_take_a_script() -> None:
    raw = {"models": {"real": {"provider": "openai-compatible", "base_url": "http://127.0.0.1:9/v1"}}}
    async with LLMManager(load_settings(raw, env={})) as llm:
        with pytest.raises(ConfigError, match="'real' is not simulated"):
            llm.simulate("real", "503")
        with pytest.raises(ConfigError, match="unknown model 'nope'"):
            llm.simulate("nope", "503")
