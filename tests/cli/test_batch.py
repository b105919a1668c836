"""``llm-manager batch``: JSONL in, one result per line out, in order, failures reported per line."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from llm_manager.cli.main import cli


def test_batch_runs_every_line_in_order(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    for var in ("OPENAI_API_KEY", "ANTHROPIC_API_KEY", "LLM_MANAGER_CONFIG"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.chdir(tmp_path)
    src = tmp_path / "in.jsonl"
    src.write_text(
        '{"id": "a", "prompt": "Analyze this", "task": "analysis"}\n\n{"prompt": "hello"}\n'
        '{"prompt": "x", "model": "nope"}\n'
    )
    out = tmp_path / "out.jsonl"
    result = CliRunner().invoke(cli, ["batch", str(src), "-o", str(out), "-j", "2", "--task", "general"])
    lines = [json.loads(line) for line in out.read_text().splitlines()]
    assert result.exit_code == 1 and "2 ok, 1 failed" in result.stderr
    assert [r["id"] for r in lines] == ["a", "3", "4"]
    assert lines[0]["ok"] and lines[0]["response"]["deployment"] == "sim-claude"
    assert lines[1]["ok"] and lines[1]["response"]["metadata"]["task"] == "general"
    assert not lines[2]["ok"] and lines[2]["error"]["code"] == "config_error"


def test_batch_rejects_a_line_that_is_not_json(tmp_path: Path) -> None:
    src = tmp_path / "in.jsonl"
    src.write_text("not json\n")
    result = CliRunner().invoke(cli, ["batch", str(src)])
    assert result.exit_code == 2 and "line 1 is not JSON" in result.output
