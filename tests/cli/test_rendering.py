"""What the CLI prints at 80 columns, and what it does not print: the demo's banner keeps its label, tables cut
nothing a user must read, no SIMULATED warning on commands that call no model, ``costs --recommend`` says why
repeats missed the cache, and ``conversations fork --at N`` ends after a whole exchange."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path

import pytest
import yaml
from click.testing import CliRunner

from llm_manager.cli.main import cli
from llm_manager.costs.analysis import recommend
from llm_manager.costs.rows import LedgerRow
from tests.cli import test_cli

NARROW = {"COLUMNS": "80"}


runner = test_cli.runner  # the CLI tests' fixture: an empty directory, no provider key in the environment
PROVIDER_VARS = test_cli.PROVIDER_VARS


def _table_rows(text: str) -> list[str]:
    lines = text.splitlines()
    first = next((i for i, line in enumerate(lines) if line.startswith("┏")), len(lines))  # after the demo's banner
    return [line for line in lines[first:] if line.startswith(("│", "┃", "┏", "┡", "└"))]


def _column(text: str, index: int) -> str:
    """A column's cells joined, folded words made whole again."""
    return "".join(line.split("│")[index + 1].strip() for line in _table_rows(text) if line.startswith("│"))


def _assert_nothing_cut(text: str) -> None:
    rows = _table_rows(text)
    assert rows, text
    for line in rows:
        assert len(line) <= 80, f"wider than 80 columns: {line!r}"
        assert line.endswith(("│", "┃", "┓", "┩", "┘")), f"a table cut at its right edge: {line!r}"
        assert "…" not in line, f"a cell cut short: {line!r}"


def test_demo_banner_keeps_its_label_and_tables_fit_80_columns(runner: CliRunner) -> None:
    result = runner.invoke(cli, ["demo"], env=NARROW)
    assert result.exit_code == 0, result.output
    assert "answers are labelled [simulated …])" in result.stdout
    _assert_nothing_cut(result.stdout)
    for word in ("model_unavailable", "rate_limited", "config-management", "sim-gpt-mini"):
        assert word in result.stdout, word  # whole, not "model_unav…"


def test_models_and_health_tables_fit_80_columns(runner: CliRunner) -> None:
    models = runner.invoke(cli, ["models"], env=NARROW)
    assert models.exit_code == 0, models.output
    _assert_nothing_cut(models.stdout)
    for word in ("sim-claude", "sim-gpt-mini", "simulated", "15.00", "config-management", "ui-generation"):
        assert re.search(rf"│\s*{re.escape(word)}\s", models.stdout), word  # whole in one cell line
    health = runner.invoke(cli, ["health"], env=NARROW)
    assert health.exit_code == 0, health.output
    _assert_nothing_cut(health.stdout)
    assert "sim-gpt-mini" in health.stdout


def test_a_long_name_folds_instead_of_being_cut(runner: CliRunner) -> None:
    long = "openrouter-anthropic-claude-sonnet-4-5-thinking"
    Path("c.yaml").write_text(
        yaml.safe_dump({"models": {long: {"provider": "simulated", "family": "claude", "simulate": {"latency_ms": 0}}}})
    )
    result = runner.invoke(cli, ["-c", "c.yaml", "models"], env=NARROW)
    assert result.exit_code == 0, result.output
    _assert_nothing_cut(result.stdout)
    assert long in _column(result.stdout, 0), "folded over several lines, every character kept"


def test_costs_table_fits_80_columns(runner: CliRunner, tmp_path: Path) -> None:
    Path("c.yaml").write_text(
        yaml.safe_dump(
            {
                "models": {"sim-claude-sonnet-large": {"provider": "simulated", "input_price_per_mtok": 3}},
                "store": {"url": f"sqlite:///{tmp_path / 's.db'}"},
            }
        )
    )
    assert runner.invoke(cli, ["-c", "c.yaml", "ask", "hi"]).exit_code == 0
    result = runner.invoke(cli, ["-c", "c.yaml", "costs"], env=NARROW)
    assert result.exit_code == 0, result.output
    _assert_nothing_cut(result.stdout)
    assert "sim-claude-sonnet-large" in _column(result.stdout, 0)


@pytest.mark.parametrize(
    "args",
    [["conversations", "list"], ["conversations", "delete", "conv_x"], ["keys", "list"], ["costs"], ["ask", "hi"]],
    ids=" ".join,
)
def test_the_simulated_warning_only_where_a_model_is_called(tmp_path: Path, args: list[str]) -> None:
    # A real process: the warning is a log line, written by the handler the CLI installs on its own stderr.
    env = {k: v for k, v in os.environ.items() if not k.startswith(PROVIDER_VARS) and k != "LLM_MANAGER_CONFIG"}
    env["XDG_DATA_HOME"] = str(tmp_path / "data")  # the default store, in the test's directory
    done = subprocess.run(
        [sys.executable, "-m", "llm_manager.cli.main", *args],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    warned = "answers come from SIMULATED offline models" in done.stderr
    assert warned == (args[0] == "ask"), done.stderr


def _row(i: int, ts: datetime, key: str = "same") -> LedgerRow:
    return LedgerRow(
        ts=ts,
        request_id=f"r{i}",
        attempt=1,
        deployment="m",
        provider="openai",
        model="m",
        status="ok",
        task="general",
        prompt_tokens=10,
        completion_tokens=5,
        cost=Decimal("0.01"),
        request_key=key,
    )


def test_recommend_says_the_cache_is_per_process_when_repeats_came_within_the_ttl() -> None:
    t0 = datetime(2026, 12, 1, tzinfo=UTC)
    rows = [_row(0, t0), _row(1, t0 + timedelta(seconds=5)), _row(2, t0 + timedelta(seconds=900))]
    (rec,) = [r for r in recommend(rows, cache_enabled=True, cache_ttl_s=300) if r.kind == "cache"]
    assert "1 came within the cache TTL (300s)" in rec.detail
    assert "each process's memory" in rec.detail and "state.redis_url" in rec.detail
    assert "1 came more than the cache TTL (300s) apart" in rec.detail
    (shared,) = [
        r for r in recommend(rows[:2], cache_enabled=True, cache_ttl_s=300, shared_cache=True) if r.kind == "cache"
    ]
    assert "each process's memory" not in shared.detail and "asked not to be cached" in shared.detail


def test_costs_recommend_after_two_cli_runs_points_at_the_per_process_cache(runner: CliRunner, tmp_path: Path) -> None:
    Path("c.yaml").write_text(
        yaml.safe_dump(
            {
                "models": {"m": {"provider": "simulated", "input_price_per_mtok": 3, "output_price_per_mtok": 9}},
                "store": {"url": f"sqlite:///{tmp_path / 's.db'}"},
            }
        )
    )
    for _ in range(2):  # two runs, two processes' caches: the second run cannot see the first's answer
        assert runner.invoke(cli, ["-c", "c.yaml", "ask", "the same question"]).exit_code == 0
    result = runner.invoke(cli, ["-c", "c.yaml", "costs", "--recommend"])
    assert result.exit_code == 0, result.output
    assert "each process's memory" in result.stdout and "state.redis_url" in result.stdout
    assert "more than the cache TTL" not in result.stdout


def test_fork_at_n_ends_after_a_whole_exchange(runner: CliRunner, tmp_path: Path) -> None:
    Path("c.yaml").write_text(
        yaml.safe_dump(
            {
                "models": {"m": {"provider": "simulated", "simulate": {"latency_ms": 0}}},
                "store": {"url": f"sqlite:///{tmp_path / 's.db'}"},
            }
        )
    )
    chat = runner.invoke(cli, ["-c", "c.yaml", "chat", "--system", "Be brief."], input="one\ntwo\nthree\n/id\n")
    assert chat.exit_code == 0, chat.output
    cid = chat.stdout.strip().splitlines()[-1]
    shown = runner.invoke(cli, ["-c", "c.yaml", "conversations", "show", cid])
    assert "exchange 3 (fork --at 3 keeps up to here)" in shown.stdout
    fork = runner.invoke(cli, ["-c", "c.yaml", "conversations", "fork", cid, "--at", "2"])
    assert fork.exit_code == 0, fork.output
    data = json.loads(
        runner.invoke(cli, ["-c", "c.yaml", "conversations", "show", fork.stdout.strip(), "--json"]).stdout
    )
    roles = [m["role"] for m in data["messages"]]
    assert roles[-4:] == ["user", "assistant", "user", "assistant"], roles
    assert roles.count("user") == 2 and roles[-1] == "assistant", "ends on the answer, never on a question"
    too_far = runner.invoke(cli, ["-c", "c.yaml", "conversations", "fork", cid, "--at", "4"])
    assert too_far.exit_code == 2 and "has 3 exchange(s), not 4" in too_far.output
