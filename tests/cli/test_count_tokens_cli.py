"""``llm-manager count-tokens``: estimated on the simulated models (the offline default), counted by Anthropic's
endpoint on a recording fake upstream."""

from __future__ import annotations

import json
from pathlib import Path

from click.testing import CliRunner

from tests.cli import test_cli
from tests.fakes.server import FakeUpstream, Reply, serve_in_thread

runner = test_cli.runner  # the CLI tests' fixture: an empty directory, no provider key in the environment
run, write = test_cli.run, test_cli.write


def test_simulated_models_are_estimated(runner: CliRunner) -> None:
    result = run(runner, "count-tokens", "How many tokens is this prompt?", "--model", "sim-gpt")
    assert result.exit_code == 0, result.output
    assert int(result.stdout) > 0 and "sim-gpt" in result.stderr and "estimated" in result.stderr
    as_json = json.loads(run(runner, "count-tokens", "-", "--json", stdin="from standard input").stdout)
    assert as_json["source"] == "estimate" and as_json["input_tokens"] > 0 and as_json["deployment"]


def test_an_anthropic_model_is_counted_by_its_api(runner: CliRunner, tmp_path: Path) -> None:
    with serve_in_thread(FakeUpstream()) as up:
        up.push(Reply.json({"input_tokens": 321}))
        config = write(
            str(tmp_path / "c.yaml"),
            f"models:\n  claude:\n    provider: anthropic\n    base_url: {up.url}\n    api_key: sk-ant-cli-count-5f0c2e9a7b\n"
            "    model: claude-sonnet-4-5\n",
        )
        result = run(runner, "count-tokens", "hello", "--system", "Be brief.", "--config", config, "--json")
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    assert (data["input_tokens"], data["source"], data["deployment"]) == (321, "provider", "claude")
    (sent,) = up.requests
    assert sent.path == "/v1/messages/count_tokens" and sent.json["system"] == "Be brief."


def test_an_unknown_model_exits_2(runner: CliRunner) -> None:
    result = run(runner, "count-tokens", "x", "--model", "nope")
    assert result.exit_code == 2 and "nope" in result.stderr
