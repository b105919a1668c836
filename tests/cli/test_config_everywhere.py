"""``--config FILE`` before or after the subcommand, on every command, in every ``--help``; ``ask --schema`` is one
call and one JSON document."""

from __future__ import annotations

import json
from pathlib import Path

import click
import pytest
import yaml
from click.testing import CliRunner

from llm_manager.cli.main import cli
from tests.cli import test_cli

CONFIG = {"models": {"only-one": {"provider": "simulated", "simulate": {"latency_ms": 0}}}}


runner = test_cli.runner  # the CLI tests' fixture: an empty directory, no provider key in the environment


@pytest.fixture
def cli_in_dir(runner: CliRunner, tmp_path: Path) -> CliRunner:
    """The CLI tests' runner, with ``f.yaml`` (one simulated model, a store of its own) in its directory."""
    config = {**CONFIG, "store": {"url": f"sqlite:///{tmp_path / 'store.db'}"}}
    Path("f.yaml").write_text(yaml.safe_dump(config), encoding="utf-8")
    return runner


def _paths(group: click.Group, prefix: tuple[str, ...] = ()) -> list[tuple[str, ...]]:
    out: list[tuple[str, ...]] = []
    for name, cmd in group.commands.items():
        out.append((*prefix, name))
        if isinstance(cmd, click.Group):
            out += _paths(cmd, (*prefix, name))
    return out


@pytest.mark.parametrize("path", _paths(cli), ids=" ".join)
def test_every_help_shows_config(cli_in_dir: CliRunner, path: tuple[str, ...]) -> None:
    result = cli_in_dir.invoke(cli, [*path, "--help"], env={"COLUMNS": "200"})
    assert result.exit_code == 0, result.output
    assert "--config" in result.stdout, f"`llm-manager {' '.join(path)} --help` does not show --config"


@pytest.mark.parametrize("where", ["before", "after"])
def test_ask_takes_config_before_and_after(cli_in_dir: CliRunner, where: str) -> None:
    args = ["--config", "f.yaml", "ask", "hi"] if where == "before" else ["ask", "hi", "--config", "f.yaml"]
    result = cli_in_dir.invoke(cli, args)
    assert result.exit_code == 0, result.output
    assert result.stdout.startswith("[simulated only-one]")


def test_config_after_the_subcommand_wins_over_the_environment(cli_in_dir: CliRunner) -> None:
    Path("other.yaml").write_text(yaml.safe_dump({"models": {"other": {"provider": "simulated"}}}), encoding="utf-8")
    result = cli_in_dir.invoke(cli, ["models", "--json", "-c", "f.yaml"], env={"LLM_MANAGER_CONFIG": "other.yaml"})
    assert result.exit_code == 0, result.output
    assert [m["name"] for m in json.loads(result.stdout)] == ["only-one"]


@pytest.mark.parametrize(
    "args",
    [
        ["serve", "--config", "missing.yaml", "--port", "0"],
        ["chat", "--config", "missing.yaml"],
        ["conversations", "list", "--config", "missing.yaml"],
        ["costs", "--config", "missing.yaml"],
        ["keys", "list", "--config", "missing.yaml"],
        ["status", "--config", "missing.yaml"],
    ],
    ids=lambda a: a[0] if a[0] != "conversations" and a[0] != "keys" else " ".join(a[:2]),
)
def test_config_after_the_subcommand_is_read(cli_in_dir: CliRunner, args: list[str]) -> None:
    # The file named after the subcommand is the one used: a missing one is reported (exit 2), not ignored.
    result = cli_in_dir.invoke(cli, args, input="")
    assert result.exit_code == 2, result.output
    assert "missing.yaml" in result.output


def test_config_check_takes_config_instead_of_file(cli_in_dir: CliRunner) -> None:
    result = cli_in_dir.invoke(cli, ["config", "check", "--config", "f.yaml"])
    assert result.exit_code == 0, result.output
    assert "f.yaml: valid" in result.stdout


def test_ask_schema_calls_the_model_once_and_prints_one_document(cli_in_dir: CliRunner) -> None:
    Path("s.json").write_text(
        json.dumps({"type": "object", "properties": {"n": {"type": "integer"}}, "required": ["n"]}), encoding="utf-8"
    )
    result = cli_in_dir.invoke(cli, ["ask", "give me n", "--schema", "s.json", "-c", "f.yaml"])
    assert result.exit_code == 0, result.output
    assert isinstance(json.loads(result.stdout)["n"], int), "stdout is exactly one JSON document (| jq works)"
    assert "only-one (simulated/" not in result.stderr, "no second, plain ask (its summary line) after the schema one"
    costs = cli_in_dir.invoke(cli, ["costs", "--by", "model", "--json", "-c", "f.yaml"])
    assert costs.exit_code == 0, costs.output
    data = json.loads(costs.stdout)
    assert sum(row["requests"] for row in data["totals"]) == 1, data
