"""The ``llm-manager`` command line, run in-process with click's CliRunner on the simulated models."""

from __future__ import annotations

import json
import os
import socket
from pathlib import Path

import pytest
import yaml
from click.testing import CliRunner, Result

from llm_manager.cli.main import cli
from llm_manager.config import load_settings

PROVIDER_VARS = ("OPENAI", "ANTHROPIC", "GEMINI", "GOOGLE", "GROQ", "OPENROUTER", "PORTKEY", "LM_STUDIO", "OLLAMA")
WIDE = {"COLUMNS": "200"}  # rich wraps at 80 columns when not on a terminal


@pytest.fixture
def runner(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> CliRunner:
    """A runner in an empty working directory, with no provider key or config in the environment.

    (click 8.5 deprecates ``CliRunner.isolated_filesystem`` in favour of ``tmp_path`` + ``chdir``.)
    """
    for var in list(os.environ):
        if var.startswith(PROVIDER_VARS) or var == "LLM_MANAGER_CONFIG":
            monkeypatch.delenv(var)
    monkeypatch.chdir(tmp_path)
    return CliRunner()


def run(runner: CliRunner, *args: str, env: dict[str, str] | None = None, stdin: str | None = None) -> Result:
    return runner.invoke(cli, list(args), env={**WIDE, **(env or {})}, input=stdin, catch_exceptions=False)


def write(name: str, data: object) -> str:
    Path(name).write_text(data if isinstance(data, str) else yaml.safe_dump(data, sort_keys=False), encoding="utf-8")
    return name


# -- help ---------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("command", "mentions"),
    [
        ([], ["--config", "--verbose", "--version", "ask", "models", "health", "config", "demo"]),
        (
            ["ask"],
            [
                "PROMPT",
                "--task",
                "--model",
                "--no-fallback",
                "--system",
                "--max-tokens",
                "--temperature",
                "--timeout",
                "--stream",
                "--json",
                "analysis",
            ],
        ),
        (["models"], ["--json"]),
        (["health"], ["--timeout", "--json"]),
        (["config"], ["check", "show", "example"]),
        (["config", "check"], ["FILE"]),
        (["config", "show"], ["secrets masked"]),
        (["config", "example"], ["example config"]),
        (["demo"], ["--seed"]),
    ],
    ids=["group", "ask", "models", "health", "config", "config-check", "config-show", "config-example", "demo"],
)
def test_help(runner: CliRunner, command: list[str], mentions: list[str]) -> None:
    for flag in ("--help", "-h"):
        result = run(runner, *command, flag)
        assert result.exit_code == 0, result.output
        assert "Usage:" in result.stdout
        for word in mentions:
            assert word in result.stdout, word


def test_version(runner: CliRunner) -> None:
    result = run(runner, "--version")
    assert result.exit_code == 0 and "version" in result.stdout


# -- ask ----------------------------------------------------------------------------------------------------------


def test_ask_answers_from_simulated_model(runner: CliRunner) -> None:
    result = run(runner, "ask", "hi", "--task", "analysis")
    assert result.exit_code == 0, result.output
    assert result.stdout.startswith("[simulated sim-claude]")
    assert "SIMULATED" in result.stderr and "sim-claude" in result.stderr


def test_ask_json(runner: CliRunner) -> None:
    result = run(runner, "ask", "hi", "--json", "--task", "config-management")
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    assert data["deployment"] == "sim-llama"
    assert data["usage"]["prompt_tokens"] > 0 and data["usage"]["completion_tokens"] > 0
    assert data["metadata"]["simulated"] is True and data["metadata"]["task"] == "config-management"
    assert data["content"].startswith("[simulated sim-llama]")


def test_ask_stream_prints_text(runner: CliRunner) -> None:
    result = run(runner, "ask", "hi", "--stream")
    assert result.exit_code == 0, result.output
    assert result.stdout.startswith("[simulated sim-gpt]") and result.stdout.endswith("\n")
    assert len(result.stdout.split()) > 3


def test_ask_stream_json(runner: CliRunner) -> None:
    result = run(runner, "ask", "hi", "--stream", "--json")
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    assert data["deployment"] == "sim-gpt" and data["metadata"]["time_to_first_chunk_ms"] is not None


def test_ask_with_model(runner: CliRunner) -> None:
    result = run(runner, "ask", "hi", "-m", "sim-llama", "--task", "analysis")
    assert result.exit_code == 0, result.output
    assert result.stdout.startswith("[simulated sim-llama]")


def test_ask_unknown_model_is_a_usage_error(runner: CliRunner) -> None:
    result = run(runner, "ask", "hi", "-m", "nope")
    assert result.exit_code == 2
    assert "unknown model 'nope'" in result.stderr
    assert "sim-claude" in result.stderr and "sim-llama" in result.stderr
    assert result.stdout == ""


def test_ask_unknown_model_json_error(runner: CliRunner) -> None:
    result = run(runner, "ask", "hi", "-m", "nope", "--json")
    assert result.exit_code == 2
    assert json.loads(result.stdout)["error"]["code"] == "config_error"


def test_ask_reads_prompt_from_stdin(runner: CliRunner) -> None:
    piped = run(runner, "ask", "-", stdin="what changed after the deploy?")
    direct = run(runner, "ask", "what changed after the deploy?")
    other = run(runner, "ask", "-", stdin="something else entirely")
    assert piped.exit_code == direct.exit_code == other.exit_code == 0
    assert piped.stdout.startswith("[simulated sim-gpt]")
    assert piped.stdout == direct.stdout, "the simulated answer is derived from the prompt"
    assert other.stdout != piped.stdout


FLAKY = {
    "models": {
        "flaky": {"provider": "simulated", "simulate": {"script": ["500", "500", "500"], "latency_ms": 0}},
        "backup": {"provider": "simulated", "simulate": {"latency_ms": 0}},
    },
    "routing": {"max_retries": 0, "backoff": {"base_s": 0}},
}


def test_ask_no_fallback_fails_and_lists_the_attempt(runner: CliRunner) -> None:
    path = write("flaky.yaml", FLAKY)
    result = run(runner, "--config", path, "ask", "hi", "-m", "flaky", "--no-fallback")
    assert result.exit_code == 1
    assert "error [" in result.stderr
    assert "  - flaky: model_unavailable" in result.stderr and "simulated outage on flaky" in result.stderr
    assert "backup" not in result.stderr
    assert result.stdout == ""


def test_ask_with_fallback_recovers_on_the_next_model(runner: CliRunner) -> None:
    path = write("flaky.yaml", FLAKY)
    result = run(runner, "--config", path, "ask", "hi", "-m", "flaky")
    assert result.exit_code == 0, result.output
    assert result.stdout.startswith("[simulated backup]")
    assert "flaky:model_unavailable" in result.stderr, "the summary lists the failed attempt"


def test_config_from_environment_variable(runner: CliRunner) -> None:
    path = write("flaky.yaml", FLAKY)
    result = run(runner, "ask", "hi", "-m", "backup", env={"LLM_MANAGER_CONFIG": path})
    assert result.exit_code == 0, result.output
    assert result.stdout.startswith("[simulated backup]")


def test_llm_manager_yaml_in_working_directory_is_used(runner: CliRunner) -> None:
    write("llm-manager.yaml", FLAKY)
    result = run(runner, "models", "--json")
    assert result.exit_code == 0, result.output
    assert [m["name"] for m in json.loads(result.stdout)] == ["flaky", "backup"]


def test_ask_with_missing_config_file_exits_2(runner: CliRunner) -> None:
    result = run(runner, "--config", "missing.yaml", "ask", "hi")
    assert result.exit_code == 2
    assert "config file not found" in result.stderr and "missing.yaml" in result.stderr


# -- models / health ----------------------------------------------------------------------------------------------


def test_models_table(runner: CliRunner) -> None:
    result = run(runner, "models")
    assert result.exit_code == 0, result.output
    for name in ("sim-claude", "sim-gpt", "sim-gpt-mini", "sim-gemini", "sim-llama"):
        assert name in result.stdout
    assert "analysis           → sim-claude → sim-gpt" in result.stdout
    assert "config-management  → sim-llama" in result.stdout
    assert "embedding          → sim-embed" in result.stdout


def test_models_json(runner: CliRunner) -> None:
    result = run(runner, "models", "--json")
    assert result.exit_code == 0, result.output
    infos = {m["name"]: m for m in json.loads(result.stdout)}
    assert list(infos) == ["sim-claude", "sim-gpt", "sim-gpt-mini", "sim-gemini", "sim-llama", "sim-embed"]
    assert all(m["simulated"] for m in infos.values())
    assert (infos["sim-embed"]["kind"], infos["sim-embed"]["dimensions"]) == ("embedding", 256)
    assert infos["sim-embed"]["tasks"] == ["embedding#1"] and infos["sim-gpt"]["kind"] == "chat"
    assert infos["sim-llama"]["context_window"] == 8192 and "config-management#1" in infos["sim-llama"]["tasks"]
    assert infos["sim-claude"]["family"] == "claude"


def test_health_on_simulated(runner: CliRunner) -> None:
    result = run(runner, "health")
    assert result.exit_code == 0, result.output
    assert "sim-claude" in result.stdout
    data = json.loads(run(runner, "health", "--json").stdout)
    assert len(data) == 6 and all(h["ok"] and h["simulated"] for h in data)  # five chat models, one embedding


def test_health_exit_1_when_an_endpoint_is_down(runner: CliRunner) -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]  # closed again when the block ends: nothing listens there
    path = write(
        "down.yaml",
        {
            "models": {
                "ok": {"provider": "simulated"},
                "down": {"provider": "openai-compatible", "base_url": f"http://127.0.0.1:{port}/v1", "model": "x"},
            }
        },
    )
    result = run(runner, "--config", path, "health", "--json", "--timeout", "5")
    assert result.exit_code == 1, result.output
    by_name = {h["name"]: h for h in json.loads(result.stdout)}
    assert by_name["ok"]["ok"] is True
    assert by_name["down"]["ok"] is False and by_name["down"]["error_code"]


# -- config -------------------------------------------------------------------------------------------------------


def test_config_check_valid(runner: CliRunner) -> None:
    path = write("flaky.yaml", FLAKY)
    result = run(runner, "config", "check", path)
    assert result.exit_code == 0, result.output
    assert "flaky.yaml: valid — 2 model(s), strategy balanced" in result.stdout
    for task in ("analysis", "ui-generation", "config-management", "general"):
        assert f"  {task}" in result.stdout
    assert "→ flaky → backup" in result.stdout


def test_config_check_invalid_names_the_field(runner: CliRunner) -> None:
    path = write("bad.yaml", {"models": {"a": {"provider": "simulated", "modle": "x"}}, "routing": {"strategy": "x"}})
    result = run(runner, "config", "check", path)
    assert result.exit_code == 2
    assert "2 problems" in result.stderr
    assert "models.a.modle: unknown key. Did you mean 'model'?" in result.stderr
    assert "routing.strategy:" in result.stderr
    assert result.stdout == ""


def test_config_check_missing_file(runner: CliRunner) -> None:
    result = run(runner, "config", "check", "nope.yaml")
    assert result.exit_code == 2 and "config file not found" in result.stderr


KEYS = {"OPENAI_API_KEY": "sk-openai-test", "ANTHROPIC_API_KEY": "sk-ant-test"}


def test_config_example_is_accepted_by_config_check_with_keys(runner: CliRunner) -> None:
    example = run(runner, "config", "example")
    assert example.exit_code == 0
    path = write("llm-manager.yaml", example.stdout)
    result = run(runner, "config", "check", path, env=KEYS)
    assert result.exit_code == 0, result.output
    assert "valid — 3 model(s)" in result.stdout
    assert "analysis           → claude-sonnet → gpt-4o → local-llama" in result.stdout
    # The keys reach the deployments (the example's nested ${OPENAI_API_KEYS:-${OPENAI_API_KEY:-}} default).
    s = load_settings(path, env=KEYS)
    assert s.models["gpt-4o"].keys == ["sk-openai-test"]
    assert s.models["claude-sonnet"].keys == ["sk-ant-test"]
    assert s.models["local-llama"].base_url == "http://localhost:1234/v1"
    pool = load_settings(path, env={**KEYS, "OPENAI_API_KEYS": "k1,k2"})
    assert pool.models["gpt-4o"].keys == ["k1", "k2"]


def test_config_example_without_keys_says_which_keys_are_missing(runner: CliRunner) -> None:
    path = write("llm-manager.yaml", run(runner, "config", "example").stdout)
    result = run(runner, "config", "check", path)
    assert "models.gpt-4o: no API key. Fix: export OPENAI_API_KEY=" in result.stderr
    assert "models.claude-sonnet: no API key. Fix: export ANTHROPIC_API_KEY=" in result.stderr


SECRET_CONFIG = {
    "models": {
        "gpt": {"provider": "openai", "api_key": "sk-secret-123", "api_keys": ["sk-pool-456"]},
        "pk": {"provider": "portkey", "model": "gpt-4o", "portkey": {"virtual_key": "vk-secret-789"}},
    },
    "portkey": {"api_key": "pk-secret-000"},
}


def test_config_show_masks_secrets(runner: CliRunner) -> None:
    path = write("secret.yaml", SECRET_CONFIG)
    result = run(runner, "--config", path, "config", "show")
    assert result.exit_code == 0, result.output
    for secret in ("sk-secret-123", "sk-pool-456", "vk-secret-789", "pk-secret-000"):
        assert secret not in result.output
    assert f"# source: {path}" in result.stdout
    shown = yaml.safe_load(result.stdout)
    assert shown["models"]["gpt"]["provider"] == "openai"
    assert shown["models"]["gpt"]["api_key"] == "**********"


def test_config_show_masks_auth_headers(runner: CliRunner) -> None:
    path = write(
        "secret.yaml",
        {
            "models": {
                "azure": {
                    "provider": "openai-compatible",
                    "base_url": "http://127.0.0.1:9/v1",
                    "headers": {"api-key": "hdr-secret-123", "authorization": "Bearer hdr-secret-456"},
                }
            }
        },
    )
    result = run(runner, "--config", path, "config", "show")
    assert result.exit_code == 0, result.output
    assert "hdr-secret-123" not in result.output and "hdr-secret-456" not in result.output


def test_config_show_masks_passwords_inside_urls(runner: CliRunner) -> None:
    url = "http://svc:pw-base-111@127.0.0.1:9/v1"
    config = {
        "models": {"local": {"provider": "openai-compatible", "base_url": url, "extra_body": {"note": "pw-base-111"}}},
        "portkey": {"base_url": "http://pk:pw-portkey-222@127.0.0.1:8787/v1"},
        "state": {"redis_url": "redis://:pw-redis-333@127.0.0.1:6379/0"},
        "store": {"url": "postgresql://app:pw%40store-444@127.0.0.1:5432/db?sslmode=disable"},
        "telemetry": {"otlp_endpoint": "http://otel:pw-otlp-555@127.0.0.1:4318"},
    }
    result = run(runner, "--config", write("urls.yaml", config), "config", "show")
    assert result.exit_code == 0, result.output
    for secret in ("pw-base-111", "pw-portkey-222", "pw-redis-333", "pw%40store-444", "pw@store-444", "pw-otlp-555"):
        assert secret not in result.output, secret
    shown = yaml.safe_load(result.stdout.split("\n", 1)[1])
    assert shown["models"]["local"]["base_url"] == "http://svc:***@127.0.0.1:9/v1"
    assert shown["models"]["local"]["extra_body"] == {"note": "***"}  # a secret anywhere else: masked by value
    assert shown["state"]["redis_url"] == "redis://:***@127.0.0.1:6379/0"
    assert shown["store"]["url"] == "postgresql://app:***@127.0.0.1:5432/db?sslmode=disable"
    assert shown["portkey"]["base_url"] == "http://pk:***@127.0.0.1:8787/v1"
    assert shown["telemetry"]["otlp_endpoint"] == "http://otel:***@127.0.0.1:4318"


def test_config_show_on_simulated(runner: CliRunner) -> None:
    result = run(runner, "config", "show")
    assert result.exit_code == 0, result.output
    assert result.stdout.startswith("# source: simulated")
    assert set(yaml.safe_load(result.stdout.split("\n", 1)[1])["models"]) == {
        "sim-claude",
        "sim-gpt",
        "sim-gpt-mini",
        "sim-gemini",
        "sim-llama",
        "sim-embed",
    }


def test_config_show_invalid_exits_2(runner: CliRunner) -> None:
    path = write("bad.yaml", {"modles": {}})
    result = run(runner, "--config", path, "config", "show")
    assert result.exit_code == 2 and "modles: unknown key" in result.stderr


# -- demo ---------------------------------------------------------------------------------------------------------


def test_demo(runner: CliRunner) -> None:
    result = run(runner, "demo", "--seed", "7")
    assert result.exit_code == 0, result.output
    out = result.stdout
    for word in ("SIMULATED", "task routing", "fallback", "Retry-After", "stream", "stream_interrupted", "done."):
        assert word in out, word


# -- tools --------------------------------------------------------------------------------------------------------

TOOLS = [
    {
        "type": "function",
        "function": {
            "name": "get_weather",
            "parameters": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]},
        },
    }
]


def test_ask_with_tools_prints_the_call(runner: CliRunner) -> None:
    path = write("tools.json", json.dumps(TOOLS))
    result = run(runner, "ask", "weather in Oslo?", "--tools", path, "--tool-choice", "get_weather")
    assert result.exit_code == 0, result.output
    line = result.stdout.strip().splitlines()[0]
    assert line.startswith("tool call get_weather({") and "id=" in line
    data = json.loads(run(runner, "ask", "x", "--tools", path, "--tool-choice", "required", "--json").stdout)
    assert data["finish_reason"] == "tool_calls" and data["tool_calls"][0]["name"] == "get_weather"
    assert "city" in json.loads(data["tool_calls"][0]["arguments"])


@pytest.mark.parametrize(
    ("content", "choice", "message"),
    [
        ('[{"name": "bad name"}]', None, "name"),
        ("{}", None, "non-empty JSON array"),
        (json.dumps(TOOLS), "other", "not auto, none, required"),
    ],
)
def test_ask_with_bad_tools_says_what_is_wrong(
    runner: CliRunner, content: str, choice: str | None, message: str
) -> None:
    path = write("tools.json", content)
    args = ["ask", "x", "--tools", path] + (["--tool-choice", choice] if choice else [])
    result = runner.invoke(cli, args)
    assert result.exit_code == 2 and message in result.output
