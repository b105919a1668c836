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
    # Written as each request ends (completion order), each line carrying its id.
    lines = sorted((json.loads(line) for line in out.read_text().splitlines()), key=lambda r: r["id"])
    assert result.exit_code == 1 and "2 ok, 1 failed" in result.stderr
    assert [r["id"] for r in lines] == ["3", "4", "a"]
    assert lines[2]["ok"] and lines[2]["response"]["deployment"] == "sim-claude"
    assert lines[0]["ok"] and lines[0]["response"]["metadata"]["task"] == "general"
    assert not lines[1]["ok"] and lines[1]["error"]["code"] == "config_error"


def test_batch_rejects_a_line_that_is_not_json(tmp_path: Path) -> None:
    src = tmp_path / "in.jsonl"
    src.write_text("not json\n")
    result = CliRunner().invoke(cli, ["batch", str(src)])
    assert result.exit_code == 2 and "line 1 is not JSON" in result.output


def test_batch_refuses_two_lines_with_one_id(tmp_path: Path) -> None:
    src = tmp_path / "in.jsonl"
    src.write_text('{"id": "x", "prompt": "a"}\n{"id": "x", "prompt": "b"}\n')
    result = CliRunner().invoke(cli, ["batch", str(src)])
    assert result.exit_code == 2 and "line 2 repeats the id 'x' of line 1" in result.output


def test_resume_needs_an_output_file(tmp_path: Path) -> None:
    src = tmp_path / "in.jsonl"
    src.write_text('{"prompt": "a"}\n')
    result = CliRunner().invoke(cli, ["batch", str(src), "--resume"])
    assert result.exit_code == 2 and "--resume needs --output FILE" in result.output


@pytest.mark.parametrize("tail", [b'{"id": "q0", "ok": tr', b""], ids=["cut-line", "whole-lines"])
def test_resume_after_a_crash_cut_the_last_line(tmp_path: Path, tail: bytes) -> None:
    config = tmp_path / "c.yaml"
    config.write_text(
        f"models: {{fast: {{provider: simulated, simulate: {{latency_ms: 0}}}}}}\n"
        f"store: {{url: 'sqlite:///{tmp_path / 'store.db'}'}}\n"
    )
    src = tmp_path / "in.jsonl"
    src.write_text('{"id": "q0", "prompt": "a"}\n{"id": "q1", "prompt": "b"}\n')
    out = tmp_path / "out.jsonl"
    out.write_bytes(b'{"id": "q1", "ok": true, "response": {}}\n' + tail)
    result = CliRunner().invoke(cli, ["batch", str(src), "-o", str(out), "--resume", "-c", str(config)])
    assert result.exit_code == 0, result.output
    assert "1 ok, 0 failed, 1 already done" in result.stderr
    ids = [json.loads(line)["id"] for line in out.read_text().splitlines()]
    assert ids == ["q1", "q0"], "a line cut short by a crash is dropped and its request run again"
