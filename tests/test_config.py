"""load_settings: sources, every error path (field + fix), default chains, aliases, Portkey and presets."""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import pytest
import yaml

from llm_manager.config import DeploymentConfig, RoutingConfig, Settings, load_settings
from llm_manager.errors import ConfigError
from llm_manager.providers.presets import resolve_endpoint
from llm_manager.types import TASK_TYPES


def problems_of(raw: Any, env: dict[str, str] | None = None) -> str:
    with pytest.raises(ConfigError) as info:
        load_settings(raw, env={} if env is None else env)
    return info.value.message


def sim(**extra: Any) -> dict[str, Any]:
    return {"provider": "simulated", **extra}


# -- sources ------------------------------------------------------------------------------------------------------


def test_load_from_dict_fills_defaults_and_model_ids() -> None:
    s = load_settings({"models": {"gpt-4o": {"provider": "openai", "api_key": "sk-1"}}}, env={})
    assert s.source == "dict"
    dep = s.models["gpt-4o"]
    assert dep.model == "gpt-4o" and dep.model_name == "gpt-4o"
    assert dep.keys == ["sk-1"]
    assert s.routing.strategy == "balanced" and s.routing.max_retries == 2
    assert s.portkey is None


def test_load_from_yaml_file_interpolates_env(tmp_path: Path) -> None:
    path = tmp_path / "llm-manager.yaml"
    path.write_text(
        "models:\n"
        "  gpt:\n"
        "    provider: openai\n"
        "    model: gpt-4o-mini\n"
        "    api_keys: ${OPENAI_API_KEYS}\n"
        "  local:\n"
        "    provider: openai-compatible\n"
        '    base_url: "${LM_STUDIO_URL:-http://localhost:1234}/v1"\n'
        "    model: llama-3.1-8b\n"
        "routing:\n"
        "  strategy: cost\n"
        "  max_retries: 1\n",
        encoding="utf-8",
    )
    s = load_settings(path, env={"OPENAI_API_KEYS": "k1,k2"})
    assert s.source == str(path)
    assert s.models["gpt"].keys == ["k1", "k2"]
    assert s.models["gpt"].model_name == "gpt-4o-mini"
    assert s.models["local"].base_url == "http://localhost:1234/v1"
    assert s.routing.strategy == "cost" and s.routing.max_retries == 1


def test_empty_yaml_file_is_an_empty_config(tmp_path: Path) -> None:
    path = tmp_path / "empty.yaml"
    path.write_text("# nothing yet\n", encoding="utf-8")
    s = load_settings(path, env={})
    assert s.models == {}
    assert all(s.chain(t) == [] for t in TASK_TYPES)


# DESIGN.md's "Configuration" example. DESIGN.md writes `api_key: ${ANTHROPIC_API_KEY}` unquoted inside a flow
# mapping `{…}`, which is not valid YAML (the `{` of `${` opens a nested mapping); it is quoted here.
DESIGN_EXAMPLE = """\
models:
  gpt-4o:
    provider: openai
    model: gpt-4o
    api_keys: ${OPENAI_API_KEYS}
    rpm: 500
    tpm: 30000
  claude-sonnet: {provider: anthropic, model: claude-sonnet-4-5, api_key: "${ANTHROPIC_API_KEY}"}
  local-llama:   {provider: openai-compatible, base_url: "${LM_STUDIO_URL:-http://localhost:1234}/v1", model: llama-3.1-8b}
routing:
  strategy: balanced
  tasks:
    analysis:          [claude-sonnet, gpt-4o, local-llama]
    ui-generation:     [gpt-4o, claude-sonnet, local-llama]
    config-management: [local-llama, gpt-4o, claude-sonnet]
    general:           [gpt-4o, claude-sonnet, local-llama]
  max_retries: 3
  timeout_s: 30
  circuit_breaker: {failure_threshold: 5, cooldown_s: 60, half_open_successes: 2}
cache: {enabled: true, ttl_s: 300, max_entries: 1000}
budgets:
  - {name: daily, period: daily, limit_usd: 100, soft_limit_pct: 80, scope: global}
state: {redis_url: null}
store: {url: "sqlite:///llm.db"}
"""
DESIGN_ENV = {"OPENAI_API_KEYS": "sk-a,sk-b", "ANTHROPIC_API_KEY": "sk-ant"}


def unsupported_keys(raw: dict[str, Any]) -> list[str]:
    """Paths of the keys in ``raw`` that Settings does not define (top level, ``routing.*``, ``models.<name>.*``)."""
    out = [k for k in raw if k not in Settings.model_fields]
    out += [f"routing.{k}" for k in raw.get("routing", {}) if k not in RoutingConfig.model_fields]
    for name, spec in raw.get("models", {}).items():
        out += [f"models.{name}.{k}" for k in spec if k not in DeploymentConfig.model_fields]
    return out


def without(raw: dict[str, Any], paths: list[str]) -> dict[str, Any]:
    raw = copy.deepcopy(raw)
    for path in paths:
        *parents, leaf = path.split(".")
        node = raw
        for p in parents:
            node = node[p]
        del node[leaf]
    return raw


def test_design_example_reports_each_unsupported_section_by_name(tmp_path: Path) -> None:
    # Sections of DESIGN.md that are not implemented yet must each be named, never silently ignored.
    raw = yaml.safe_load(DESIGN_EXAMPLE)
    missing = unsupported_keys(raw)
    path = tmp_path / "design.yaml"
    path.write_text(DESIGN_EXAMPLE, encoding="utf-8")
    if not missing:
        load_settings(path, env=DESIGN_ENV)
        return
    msg = problems_of(path, DESIGN_ENV)
    assert f"{len(missing)} problem" in msg
    for field in missing:
        assert f"\n  - {field}: unknown key." in msg, field
    assert "source" not in msg, "the bookkeeping field `source` is not a config key"


def test_design_example_without_unsupported_sections_loads() -> None:
    raw = yaml.safe_load(DESIGN_EXAMPLE)
    s = load_settings(without(raw, unsupported_keys(raw)), env=DESIGN_ENV)
    assert s.models["gpt-4o"].keys == ["sk-a", "sk-b"]
    assert s.models["claude-sonnet"].keys == ["sk-ant"]
    assert s.models["local-llama"].base_url == "http://localhost:1234/v1"
    assert s.chain("analysis") == ["claude-sonnet", "gpt-4o", "local-llama"]
    assert s.chain("config-management") == ["local-llama", "gpt-4o", "claude-sonnet"]
    assert s.routing.max_retries == 3 and s.routing.timeout_s == 30


def test_unknown_section_is_reported_and_source_is_not_a_key() -> None:
    msg = problems_of({"telemetri": {"enabled": True}, "sourc": "x"})
    assert "\n  - telemetri: unknown key." in msg and "\n  - sourc: unknown key." in msg
    assert "source" not in msg, "`source` (where settings came from) is neither allowed nor suggested"


# -- error paths --------------------------------------------------------------------------------------------------


def test_unknown_top_level_key_suggests_the_right_one() -> None:
    msg = problems_of({"modles": {}})
    assert "modles: unknown key. Did you mean 'models'?" in msg
    assert "Allowed here: " in msg and "models, portkey, routing, simulation" in msg


def test_unknown_model_key_suggests_model() -> None:
    msg = problems_of({"models": {"gpt": {"provider": "openai", "modle": "gpt-4o", "api_key": "k"}}})
    assert "models.gpt.modle: unknown key. Did you mean 'model'?" in msg


def test_unknown_nested_keys_name_their_path() -> None:
    msg = problems_of({"routing": {"backoff": {"base": 1}}, "portkey": {"api_kye": "x"}})
    assert "routing.backoff.base: unknown key. Did you mean 'base_s'?" in msg
    assert "portkey.api_kye: unknown key. Did you mean 'api_key'?" in msg


def test_unknown_key_in_every_routing_part_suggests_and_lists_its_keys() -> None:
    # These parts were once forward references in RoutingConfig, and the explanation could not see their fields.
    msg = problems_of(
        {"routing": {"circuit_breaker": {"cooldown": 1}, "hedge": {"delay": 1}, "overtake": {"margins": 0.3}}}
    )
    assert "routing.circuit_breaker.cooldown: unknown key. Did you mean 'cooldown_s'? Allowed here: cooldown_s," in msg
    assert "routing.hedge.delay: unknown key. Did you mean 'delay_s'? Allowed here: delay_s, p95_fallback_s," in msg
    assert "routing.overtake.margins: unknown key. Did you mean 'margin'? Allowed here: hold_margin, margin," in msg


def test_bad_provider_lists_allowed_values() -> None:
    msg = problems_of({"models": {"gpt": {"provider": "openia", "api_key": "k"}}})
    assert "models.gpt.provider: 'openia' is not allowed." in msg
    for allowed in ("'openai'", "'anthropic'", "'gemini'", "'openai-compatible'", "'portkey'", "'simulated'"):
        assert allowed in msg


def test_bad_strategy_and_task_type_list_allowed_values() -> None:
    msg = problems_of({"models": {"a": sim()}, "routing": {"strategy": "fast", "tasks": {"analyss": ["a"]}}})
    assert "routing.strategy: 'fast' is not allowed. Fix: use one of 'cost', 'performance' or 'balanced'." in msg
    assert "'analyss' is not allowed" in msg and "'analysis'" in msg


def test_out_of_range_value_names_field_and_input() -> None:
    msg = problems_of({"routing": {"max_retries": 99}})
    assert "routing.max_retries:" in msg and "99" in msg


def test_missing_provider_says_to_add_it() -> None:
    msg = problems_of({"models": {"gpt": {"model": "gpt-4o"}}})
    assert "models.gpt.provider: required. Fix: add `provider:` here." in msg


def test_task_naming_unknown_model_suggests_a_close_one() -> None:
    msg = problems_of({"models": {"gpt-4o": sim(), "claude": sim()}, "routing": {"tasks": {"analysis": ["gtp-4o"]}}})
    assert "routing.tasks.analysis[0]: unknown model 'gtp-4o'. Did you mean 'gpt-4o'?" in msg
    assert "Defined models: gpt-4o, claude." in msg


def test_task_naming_unknown_model_without_close_match_lists_models() -> None:
    msg = problems_of({"models": {"gpt-4o": sim()}, "routing": {"tasks": {"general": ["gpt-4o", "zzzz"]}}})
    assert "routing.tasks.general[1]: unknown model 'zzzz'. Defined models: gpt-4o." in msg
    assert "Did you mean" not in msg


def test_bad_alias_target_names_alias_and_fix() -> None:
    msg = problems_of({"models": {"gpt": sim()}, "routing": {"aliases": {"fast": "nope"}}})
    assert "routing.aliases.fast: points at unknown model 'nope'." in msg
    assert "Fix: use one of gpt." in msg


def test_openai_compatible_needs_base_url_or_preset() -> None:
    msg = problems_of({"models": {"local": {"provider": "openai-compatible", "model": "x"}}})
    assert "models.local: openai-compatible needs `base_url:`" in msg and "or `preset:`" in msg
    assert load_settings({"models": {"local": {"provider": "openai-compatible", "preset": "ollama"}}}, env={})


def test_preset_only_with_openai_compatible() -> None:
    msg = problems_of({"models": {"gpt": {"provider": "openai", "preset": "groq", "api_key": "k"}}})
    assert "models.gpt.preset: only valid with provider: openai-compatible." in msg


def test_simulate_only_with_simulated() -> None:
    msg = problems_of({"models": {"gpt": {"provider": "openai", "api_key": "k", "simulate": {"latency_ms": 1}}}})
    assert "models.gpt.simulate: only valid with provider: simulated." in msg


def test_missing_api_key_names_the_variable() -> None:
    msg = problems_of({"models": {"gpt": {"provider": "openai"}}})
    assert "models.gpt: no API key. Fix: export OPENAI_API_KEY=..." in msg
    assert "api_key: ${OPENAI_API_KEY}" in msg
    msg = problems_of({"models": {"fast": {"provider": "openai-compatible", "preset": "groq"}}})
    assert "models.fast: no API key. Fix: export GROQ_API_KEY=..." in msg


def test_empty_api_key_counts_as_missing() -> None:
    msg = problems_of({"models": {"claude": {"provider": "anthropic", "api_key": "${ANTHROPIC_API_KEY:-}"}}})
    assert "models.claude: no API key. Fix: export ANTHROPIC_API_KEY=..." in msg


def test_api_key_is_picked_up_from_the_given_env() -> None:
    s = load_settings(
        {"models": {"gpt": {"provider": "openai"}, "gem": {"provider": "gemini", "model": "gemini-2.5-pro"}}},
        env={"OPENAI_API_KEY": "sk-env", "GOOGLE_API_KEY": "g-env"},
    )
    assert s.models["gpt"].keys == ["sk-env"]
    assert s.models["gem"].keys == ["g-env"], "GOOGLE_API_KEY is Gemini's second variable"


def test_config_key_wins_over_env() -> None:
    s = load_settings(
        {"models": {"gpt": {"provider": "openai", "api_key": "sk-cfg"}}}, env={"OPENAI_API_KEY": "sk-env"}
    )
    assert s.models["gpt"].keys == ["sk-cfg"]


def test_missing_file_says_how_to_fix(tmp_path: Path) -> None:
    msg = problems_of(tmp_path / "nope.yaml")
    assert "config file not found" in msg and "nope.yaml" in msg and "Fix:" in msg


def test_invalid_yaml_gives_line_number(tmp_path: Path) -> None:
    path = tmp_path / "bad.yaml"
    path.write_text("models:\n  gpt:\n    provider: openai\n   oops: [\n", encoding="utf-8")
    msg = problems_of(path)
    assert "not valid YAML at line 4" in msg and str(path) in msg


@pytest.mark.parametrize(("text", "kind"), [("- a\n- b\n", "list"), ("just text\n", "str")])
def test_top_level_must_be_a_mapping(tmp_path: Path, text: str, kind: str) -> None:
    path = tmp_path / "c.yaml"
    path.write_text(text, encoding="utf-8")
    msg = problems_of(path)
    assert "the top level must be a mapping" in msg and f"got {kind}" in msg


def test_several_validation_problems_reported_at_once() -> None:
    msg = problems_of(
        {
            "modles": {},
            "models": {"a": {"provider": "openia"}, "b": sim(simulate={"latency_ms": -1})},
            "routing": {"strategy": "fastest"},
        }
    )
    assert msg.startswith("invalid configuration (dict), 4 problems:")
    for path in ("modles:", "models.a.provider:", "models.b.simulate.latency_ms:", "routing.strategy:"):
        assert f"\n  - {path}" in msg


def test_several_cross_check_problems_reported_at_once() -> None:
    msg = problems_of(
        {
            "models": {
                "gpt": {"provider": "openai"},
                "local": {"provider": "openai-compatible"},
                "claude": {"provider": "anthropic", "api_key": "k", "simulate": {}},
            },
            "routing": {"tasks": {"analysis": ["claud"]}, "aliases": {"x": "y"}},
        }
    )
    assert msg.startswith("invalid configuration (dict), 5 problems:")
    for part in (
        "routing.tasks.analysis[0]: unknown model 'claud'. Did you mean 'claude'?",
        "routing.aliases.x:",
        "models.gpt: no API key",
        "models.local: openai-compatible needs",
        "models.claude.simulate: only valid",
    ):
        assert part in msg


# -- keys ---------------------------------------------------------------------------------------------------------


def test_api_keys_comma_string_is_split_and_blanks_dropped() -> None:
    s = load_settings({"models": {"gpt": {"provider": "openai", "api_keys": "a, b,,c"}}}, env={})
    assert s.models["gpt"].keys == ["a", "b", "c"]


def test_keys_merge_api_key_and_pool_without_duplicates() -> None:
    s = load_settings(
        {"models": {"gpt": {"provider": "openai", "api_key": "b", "api_keys": ["a", "b", "c", "a"]}}}, env={}
    )
    assert s.models["gpt"].keys == ["b", "a", "c"]


def test_secrets_do_not_leak_through_repr() -> None:
    s = load_settings({"models": {"gpt": {"provider": "openai", "api_key": "sk-secret-123"}}}, env={})
    assert "sk-secret-123" not in repr(s) and "sk-secret-123" not in str(s.model_dump())


# -- default chains and names -------------------------------------------------------------------------------------

FOUR_FAMILIES = {
    "models": {
        "gpt-4o": {"provider": "openai", "api_key": "k"},
        "sonnet": {"provider": "anthropic", "model": "claude-sonnet-4-5", "api_key": "k"},
        "flash": {"provider": "gemini", "model": "gemini-2.5-flash", "api_key": "k"},
        "local": {"provider": "openai-compatible", "preset": "lmstudio", "model": "some-local-model"},
    }
}


def test_default_chains_follow_the_seed_table_by_family() -> None:
    s = load_settings(FOUR_FAMILIES, env={})
    assert {n: d.resolved_family for n, d in s.models.items()} == {
        "gpt-4o": "gpt",
        "sonnet": "claude",
        "flash": "gemini",
        "local": "llama",
    }
    assert s.chain("analysis") == ["sonnet", "gpt-4o", "flash", "local"]
    assert s.chain("ui-generation") == ["gpt-4o", "sonnet", "flash", "local"]
    assert s.chain("config-management") == ["local", "gpt-4o", "sonnet", "flash"]
    assert s.chain("general") == ["gpt-4o", "sonnet", "flash", "local"]


def test_family_override_and_unknown_family_goes_last() -> None:
    s = load_settings(
        {
            "models": {
                "mystery": {"provider": "openai-compatible", "base_url": "http://127.0.0.1:9/v1", "model": "zz-1"},
                "gpt-4o": {"provider": "openai", "api_key": "k"},
                "house": {"provider": "openai-compatible", "base_url": "http://127.0.0.1:9/v1", "family": "claude"},
                "gpt-as-llama": {"provider": "openai", "model": "gpt-4o-mini", "family": "llama", "api_key": "k"},
            }
        },
        env={},
    )
    assert s.models["mystery"].resolved_family is None
    assert s.chain("analysis") == ["house", "gpt-4o", "gpt-as-llama", "mystery"]
    assert s.chain("config-management") == ["gpt-as-llama", "gpt-4o", "house", "mystery"]


def test_configured_task_overrides_only_that_task() -> None:
    raw = {**FOUR_FAMILIES, "routing": {"tasks": {"analysis": ["local", "flash"]}}}
    s = load_settings(raw, env={})
    assert s.chain("analysis") == ["local", "flash"]
    assert s.chain("general") == ["gpt-4o", "sonnet", "flash", "local"]


def test_aliases_resolve_from_routing_and_per_model() -> None:
    raw = {
        "models": {
            "gpt": {"provider": "openai", "model": "gpt-4o-mini", "api_key": "k", "aliases": ["cheap"]},
            "claude": {"provider": "anthropic", "model": "claude-sonnet-4-5", "api_key": "k"},
        },
        "routing": {"aliases": {"smart": "claude"}, "tasks": {"analysis": ["smart", "cheap", "gpt-4o-mini"]}},
    }
    s = load_settings(raw, env={})
    assert s.aliases() == {"smart": "claude", "cheap": "gpt"}
    assert s.resolve_name("smart") == "claude"
    assert s.resolve_name("cheap") == "gpt"
    assert s.resolve_name("gpt") == "gpt"
    assert s.resolve_name("claude-sonnet-4-5") == "claude", "the wire model id resolves too"
    assert s.resolve_name("gpt-4o") is None
    assert s.chain("analysis") == ["claude", "gpt"], "two names for one deployment put it in the chain once"


# -- endpoints: Portkey, presets, context windows -----------------------------------------------------------------


def endpoint(s: Settings, name: str) -> Any:
    return resolve_endpoint(name, s.models[name], s)


def test_portkey_deployment_with_virtual_key() -> None:
    s = load_settings(
        {
            "models": {"pk-gpt": {"provider": "portkey", "model": "gpt-4o", "portkey": {"virtual_key": "vk-1"}}},
            "portkey": {"api_key": "pk-key"},
        },
        env={},
    )
    ep = endpoint(s, "pk-gpt")
    assert ep.provider == "openai"
    assert ep.base_url == "http://localhost:8787/v1"
    assert ep.headers == {"x-portkey-api-key": "pk-key", "x-portkey-virtual-key": "vk-1"}
    assert ep.via_portkey is True
    assert ep.model == "gpt-4o" and ep.context_window == 128_000


def test_portkey_without_top_level_section_uses_defaults() -> None:
    s = load_settings(
        {
            "models": {
                "pk": {"provider": "portkey", "model": "gpt-4o", "portkey": {"virtual_key": "vk", "api_key": "a"}}
            }
        },
        env={},
    )
    ep = endpoint(s, "pk")
    assert ep.base_url == "http://localhost:8787/v1"
    assert ep.headers == {"x-portkey-api-key": "a", "x-portkey-virtual-key": "vk"}


def test_hosted_portkey_needs_an_api_key() -> None:
    msg = problems_of({"models": {"pk": {"provider": "portkey", "base_url": "https://api.portkey.ai/v1"}}})
    assert "models.pk: routing through hosted Portkey (api.portkey.ai) needs `portkey.api_key`" in msg


def test_portkey_route_all_sends_anthropic_through_portkey() -> None:
    s = load_settings(
        {
            "models": {
                "claude": {"provider": "anthropic", "model": "claude-sonnet-4-5"},
                "gem": {"provider": "gemini", "model": "gemini-2.5-flash"},
                "local": {"provider": "openai-compatible", "preset": "ollama", "model": "llama3.1"},
            },
            "portkey": {"api_key": "pk-key", "base_url": "http://127.0.0.1:8787/v1/", "route_all": True},
        },
        env={},
    )
    ep = endpoint(s, "claude")
    assert ep.provider == "openai"
    assert ep.base_url == "http://127.0.0.1:8787/v1"
    assert ep.headers == {"x-portkey-api-key": "pk-key", "x-portkey-provider": "anthropic"}
    assert endpoint(s, "gem").headers["x-portkey-provider"] == "google"
    local = endpoint(s, "local")
    assert local.base_url == "http://localhost:11434/v1" and local.via_portkey is False
    assert "x-portkey-api-key" not in local.headers


def test_portkey_config_header_from_global_or_route() -> None:
    s = load_settings(
        {
            "models": {
                "a": {"provider": "portkey", "model": "gpt-4o", "portkey": {"virtual_key": "vk"}},
                "b": {"provider": "portkey", "model": "gpt-4o", "portkey": {"provider": "openai", "config": "pc-b"}},
            },
            "portkey": {"api_key": "k", "config": "pc-global"},
        },
        env={},
    )
    assert endpoint(s, "a").headers["x-portkey-config"] == "pc-global"
    b = endpoint(s, "b").headers
    assert b["x-portkey-config"] == "pc-b" and b["x-portkey-provider"] == "openai"


def test_groq_preset_url_and_key_variable() -> None:
    s = load_settings(
        {"models": {"fast": {"provider": "openai-compatible", "preset": "groq", "model": "llama-3.3-70b-versatile"}}},
        env={"GROQ_API_KEY": "gsk-1"},
    )
    ep = endpoint(s, "fast")
    assert ep.provider == "openai" and ep.base_url == "https://api.groq.com/openai/v1"
    assert s.models["fast"].keys == ["gsk-1"]
    assert ep.context_window == 131_072 and s.models["fast"].resolved_family == "llama"


def test_ollama_preset_is_local_without_key() -> None:
    s = load_settings(
        {"models": {"o": {"provider": "openai-compatible", "preset": "ollama", "model": "qwen2.5"}}}, env={}
    )
    ep = endpoint(s, "o")
    assert ep.base_url == "http://localhost:11434/v1"
    assert s.models["o"].keys == []
    assert ep.profile.max_tokens_field == "max_tokens"


def test_custom_headers_merge_over_preset_headers() -> None:
    s = load_settings(
        {
            "models": {
                "or": {
                    "provider": "openai-compatible",
                    "preset": "openrouter",
                    "model": "openai/gpt-4o",
                    "api_key": "k",
                    "headers": {"x-title": "mine", "http-referer": "https://example.test"},
                }
            }
        },
        env={},
    )
    ep = endpoint(s, "or")
    assert ep.headers == {"x-title": "mine", "http-referer": "https://example.test"}
    assert ep.context_window == 128_000, "vendor/model ids match on the part after the slash"


@pytest.mark.parametrize(
    ("model", "window"),
    [
        ("gpt-4o", 128_000),
        ("gpt-4o-mini-2024-07-18", 128_000),
        ("gpt-4.1", 1_047_576),
        ("claude-sonnet-4-5", 200_000),
        ("gemini-2.5-pro", 1_048_576),
        ("llama-3.1-8b-instruct", 131_072),
        ("totally-unknown", 8_192),
    ],
)
def test_context_window_from_profiles(model: str, window: int) -> None:
    s = load_settings({"models": {"m": {"provider": "openai", "model": model, "api_key": "k"}}}, env={})
    assert endpoint(s, "m").context_window == window


def test_context_window_override() -> None:
    s = load_settings(
        {"models": {"m": {"provider": "openai", "model": "gpt-4o", "api_key": "k", "context_window": 4096}}}, env={}
    )
    assert endpoint(s, "m").context_window == 4096


def test_reasoning_models_use_max_completion_tokens_only_on_openai() -> None:
    s = load_settings(
        {
            "models": {
                "o": {"provider": "openai", "model": "o3-mini", "api_key": "k"},
                "c": {"provider": "openai-compatible", "base_url": "http://127.0.0.1:9/v1", "model": "o3-mini"},
            }
        },
        env={},
    )
    assert endpoint(s, "o").profile.max_tokens_field == "max_completion_tokens"
    assert endpoint(s, "c").profile.max_tokens_field == "max_tokens"
