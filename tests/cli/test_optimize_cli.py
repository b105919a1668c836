"""``llm-manager optimize`` and ``ask --max-prompt-tokens``."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
from click.testing import CliRunner

from llm_manager.cli.main import cli
from tests.cli.test_cli import PROVIDER_VARS

DOC = "".join(f"Step {i}: move crate {i} from bay {i % 4} to dock {i % 3}.\n" for i in range(300))


def test_optimize_a_file_to_a_budget(tmp_path: Path) -> None:
    src = tmp_path / "prompt.md"
    src.write_text("Plan   the route.\n\n\n" + DOC + "Plan   the route.\nWhich dock is busiest?\n", encoding="utf-8")
    result = CliRunner().invoke(cli, ["optimize", str(src), "--max-tokens", "200"], catch_exceptions=False)
    assert result.exit_code == 0, result.output
    text = result.stdout
    assert text.startswith("Plan the route.\n\nStep 0:") and text.rstrip().endswith("Which dock is busiest?")
    assert "tokens) cut …]" in text and text.count("Plan the route.") == 1
    assert (
        "→" in result.stderr
        and "(o200k_base)" in result.stderr
        and "1 repeated lines/sentences dropped" in result.stderr
    )


def test_optimize_stdin_as_json_and_a_budget_it_cannot_meet() -> None:
    result = CliRunner().invoke(cli, ["optimize", "-", "--json", "--encoding", "cl100k_base"], input="a   b\n")
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    assert data["text"] == "a b" and data["tokenizer"] == "cl100k_base" and data["fits"]
    code = "```\n" + "".join(f"x{i} = {i}\n" for i in range(200)) + "```\n"
    failed = CliRunner().invoke(cli, ["optimize", "-", "--max-tokens", "20"], input=code)
    assert failed.exit_code == 1 and "cannot fit 20 tokens" in failed.stderr


def test_optimize_keeps_redundancy_when_asked() -> None:
    text = "Repeat this line please now.\nRepeat this line please now.\n"
    result = CliRunner().invoke(cli, ["optimize", "-", "--keep-redundancy"], input=text)
    assert result.stdout.count("Repeat this line") == 2


def test_ask_with_a_prompt_budget_reports_the_counts(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    for var in list(os.environ):  # the simulated models, whatever keys this machine has
        if var.startswith(PROVIDER_VARS) or var == "LLM_MANAGER_CONFIG":
            monkeypatch.delenv(var)
    monkeypatch.chdir(tmp_path)
    result = CliRunner().invoke(cli, ["ask", "Summarise:\n" + DOC, "--max-prompt-tokens", "150", "--json"])
    assert result.exit_code == 0, result.output
    prompt = json.loads(result.stdout)["metadata"]["prompt"]
    assert prompt["max_prompt_tokens"] == 150 and prompt["tokens_after"] <= 150 < prompt["tokens_before"]
    plain = CliRunner().invoke(cli, ["ask", "Summarise:\n" + DOC, "--max-prompt-tokens", "150"])
    assert "prompt " in plain.stderr and "tokens (o200k_base)" in plain.stderr
