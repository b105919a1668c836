"""Settings from environment variables alone, and the simulated fallback when nothing is configured."""

from __future__ import annotations

import logging

import pytest

from llm_manager.config import Settings
from llm_manager.discovery import SIMULATED_MODELS, discover, settings_from_env, simulated_settings
from llm_manager.manager import LLMManager
from llm_manager.providers.presets import resolve_endpoint


def from_env(env: dict[str, str]) -> Settings:
    s = settings_from_env(env)
    assert s is not None
    assert s.source == "environment"
    return s


def test_nothing_configured_gives_none_and_discover_falls_back_to_simulated() -> None:
    assert settings_from_env({}) is None
    assert settings_from_env({"UNRELATED": "1", "OPENAI_API_KEY": ""}) is None
    s = discover({})
    assert s.source == "simulated"
    assert list(s.models) == ["sim-claude", "sim-gpt", "sim-gpt-mini", "sim-gemini", "sim-llama", "sim-embed"]
    assert len(SIMULATED_MODELS) == 5
    assert all(d.provider == "simulated" for d in s.models.values())
    assert s.chain("analysis")[0] == "sim-claude" and "sim-embed" not in s.chain("general")
    assert s.chain("embedding") == ["sim-embed"] and s.models["sim-embed"].dimensions == 256
    assert s.chain("config-management")[0] == "sim-llama"


def test_simulated_settings_take_seed_and_overrides() -> None:
    s = simulated_settings(seed=42, overrides={"routing": {"strategy": "cost"}})
    assert s.simulation.seed == 42 and s.routing.strategy == "cost" and s.source == "simulated"


def test_openai_key_gives_gpt_deployments() -> None:
    s = from_env({"OPENAI_API_KEY": "sk-1"})
    assert list(s.models) == ["gpt-4o", "gpt-4o-mini", "text-embedding-3-small"]
    for name in s.models:
        dep = s.models[name]
        assert dep.provider == "openai" and dep.keys == ["sk-1"] and dep.resolved_family == "gpt"
    assert s.chain("general") == ["gpt-4o", "gpt-4o-mini"] and s.chain("embedding") == ["text-embedding-3-small"]
    assert s.models["gpt-4o"].model_name == "gpt-4o"
    assert from_env({"OPENAI_API_KEY": "k", "OPENAI_MODEL": "gpt-4.1"}).models["gpt-4o"].model_name == "gpt-4.1"


def test_openai_key_pool() -> None:
    s = from_env({"OPENAI_API_KEYS": "k1, k2,k3", "OPENAI_API_KEY": "ignored-when-pool-given"})
    assert s.models["gpt-4o"].keys == ["k1", "k2", "k3"]
    assert s.models["gpt-4o-mini"].keys == ["k1", "k2", "k3"]


def test_anthropic_key() -> None:
    s = from_env({"ANTHROPIC_API_KEY": "sk-ant"})
    dep = s.models["claude-sonnet"]
    assert dep.provider == "anthropic" and dep.keys == ["sk-ant"] and dep.resolved_family == "claude"
    assert resolve_endpoint("claude-sonnet", dep, s).base_url == "https://api.anthropic.com"


@pytest.mark.parametrize("var", ["GEMINI_API_KEY", "GOOGLE_API_KEY"])
def test_gemini_from_either_variable(var: str) -> None:
    s = from_env({var: "g-1"})
    dep = s.models["gemini-flash"]
    assert dep.provider == "gemini" and dep.keys == ["g-1"] and dep.model_name == "gemini-2.5-flash"
    assert dep.resolved_family == "gemini"


def test_groq() -> None:
    s = from_env({"GROQ_API_KEY": "gsk"})
    dep = s.models["groq-llama"]
    ep = resolve_endpoint("groq-llama", dep, s)
    assert dep.keys == ["gsk"] and dep.resolved_family == "llama"
    assert ep.provider == "openai" and ep.base_url == "https://api.groq.com/openai/v1"


def test_openrouter() -> None:
    s = from_env({"OPENROUTER_API_KEY": "or-1"})
    dep = s.models["openrouter"]
    ep = resolve_endpoint("openrouter", dep, s)
    assert ep.base_url == "https://openrouter.ai/api/v1" and dep.keys == ["or-1"]
    assert dep.resolved_family == "gpt", "openai/gpt-4o-mini is recognised after the vendor prefix"


def test_lm_studio_url_gets_v1() -> None:
    s = from_env({"LM_STUDIO_URL": "http://127.0.0.1:1234/"})
    dep = s.models["local-llama"]
    assert dep.base_url == "http://127.0.0.1:1234/v1"
    assert dep.keys == [] and dep.resolved_family == "llama"
    assert resolve_endpoint("local-llama", dep, s).base_url == "http://127.0.0.1:1234/v1"


@pytest.mark.parametrize(
    ("host", "base"),
    [
        ("127.0.0.1:11434", "http://127.0.0.1:11434/v1"),
        ("http://gpu-box:11434", "http://gpu-box:11434/v1"),
        ("https://ollama.internal/", "https://ollama.internal/v1"),
    ],
)
def test_ollama_host_with_and_without_scheme(host: str, base: str) -> None:
    s = from_env({"OLLAMA_HOST": host})
    assert s.models["ollama"].base_url == base
    assert s.models["ollama"].model_name == "llama3.1" and s.models["ollama"].resolved_family == "llama"


def test_portkey_virtual_keys_become_deployments() -> None:
    s = from_env(
        {
            "PORTKEY_API_KEY": "pk-1",
            "PORTKEY_GPT4_VIRTUAL_KEY": "vk-gpt",
            "PORTKEY_CLAUDE_VIRTUAL_KEY": "vk-claude",
            "PORTKEY_EMPTY_VIRTUAL_KEY": "",
        }
    )
    assert sorted(s.models) == ["portkey-claude", "portkey-gpt4"]
    assert s.portkey is not None and s.portkey.api_key is not None
    assert s.portkey.api_key.get_secret_value() == "pk-1"
    gpt, claude = s.models["portkey-gpt4"], s.models["portkey-claude"]
    assert (gpt.provider, gpt.resolved_family, gpt.model_name) == ("portkey", "gpt", "gpt-4o")
    assert (claude.provider, claude.resolved_family, claude.model_name) == ("portkey", "claude", "claude-sonnet-4-5")
    ep = resolve_endpoint("portkey-gpt4", gpt, s)
    assert ep.provider == "openai" and ep.base_url == "http://localhost:8787/v1"
    assert ep.headers == {"x-portkey-api-key": "pk-1", "x-portkey-virtual-key": "vk-gpt"}
    assert resolve_endpoint("portkey-claude", claude, s).headers["x-portkey-virtual-key"] == "vk-claude"
    assert s.chain("analysis") == ["portkey-claude", "portkey-gpt4"]


def test_portkey_custom_tag_and_base_url() -> None:
    s = from_env(
        {
            "PORTKEY_API_KEY": "pk",
            "PORTKEY_BASE_URL": "https://api.portkey.ai/v1",
            "PORTKEY_MISTRAL_VIRTUAL_KEY": "vk-m",
            "PORTKEY_MISTRAL_MODEL": "mistral-large",
        }
    )
    dep = s.models["portkey-mistral"]
    assert dep.model_name == "mistral-large" and dep.resolved_family == "llama"
    assert resolve_endpoint("portkey-mistral", dep, s).base_url == "https://api.portkey.ai/v1"


def test_default_analysis_chain_with_openai_anthropic_and_lm_studio() -> None:
    s = from_env({"OPENAI_API_KEY": "sk", "ANTHROPIC_API_KEY": "ant", "LM_STUDIO_URL": "http://localhost:1234"})
    assert s.chain("analysis") == ["claude-sonnet", "gpt-4o", "gpt-4o-mini", "local-llama"]
    assert s.chain("config-management")[0] == "local-llama"
    assert s.chain("ui-generation")[0] == "gpt-4o"


async def test_from_env_without_keys_answers_from_simulated_models_and_warns(caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.WARNING, logger="llm_manager"):
        llm = LLMManager.from_env(env={})
    try:
        assert any("SIMULATED" in r.getMessage() and r.levelno == logging.WARNING for r in caplog.records)
        r = await llm.generate("hello", task="analysis")
        assert r.metadata.simulated is True
        assert r.deployment == "sim-claude" and r.content.startswith("[simulated sim-claude]")
    finally:
        await llm.aclose()


async def test_from_env_with_a_key_does_not_warn(caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.WARNING, logger="llm_manager"):
        llm = LLMManager.from_env(env={"LM_STUDIO_URL": "http://127.0.0.1:1"})
    try:
        assert not any("SIMULATED" in r.getMessage() for r in caplog.records)
        assert [m.name for m in llm.models()] == ["local-llama"]
        assert not llm.models()[0].simulated
    finally:
        await llm.aclose()


# -- URL and naming edge cases -------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("var", "name"), [("LM_STUDIO_URL", "local-llama"), ("OLLAMA_HOST", "ollama")], ids=["lmstudio", "ollama"]
)
def test_url_already_ending_in_v1_is_kept(var: str, name: str) -> None:
    s = from_env({var: "http://127.0.0.1:1234/v1"})
    assert s.models[name].base_url == "http://127.0.0.1:1234/v1"


def test_ollama_host_without_port_uses_default_port() -> None:
    assert from_env({"OLLAMA_HOST": "127.0.0.1"}).models["ollama"].base_url == "http://127.0.0.1:11434/v1"


def test_bare_portkey_virtual_key_gets_a_sensible_name() -> None:
    s = from_env({"PORTKEY_API_KEY": "pk", "PORTKEY_VIRTUAL_KEY": "vk"})
    assert "portkey-" not in s.models
    assert all(d.model_name != "portkey-" for d in s.models.values())
