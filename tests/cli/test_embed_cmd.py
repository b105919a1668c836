"""``llm-manager embed`` on the simulated embedding model (the offline default) and on a recording fake upstream."""

from __future__ import annotations

import json
from pathlib import Path

from click.testing import CliRunner

from tests.cli import test_cli
from tests.fakes import embeddings_wire as wire
from tests.fakes.server import FakeUpstream, Reply, serve_in_thread

runner = test_cli.runner  # the CLI tests' fixture: an empty directory, no provider key in the environment
run, write = test_cli.run, test_cli.write


def test_plain_output_and_summary(runner: CliRunner) -> None:
    result = run(runner, "embed", "How do I cancel my order?", "hello")
    assert result.exit_code == 0, result.output
    lines = result.stdout.splitlines()
    assert len(lines) == 2 and lines[0].startswith("[0] 256 dims  [") and "'hello'" in lines[1]
    assert "sim-embed" in result.stderr and "SIMULATED" in result.stderr


def test_json_is_the_whole_response_on_one_line(runner: CliRunner) -> None:
    result = run(runner, "embed", "a", "b", "--json", "--input-type", "query")
    assert result.exit_code == 0, result.output
    (line,) = result.stdout.splitlines()
    data = json.loads(line)
    assert (data["deployment"], data["dimensions"], len(data["vectors"]), len(data["vectors"][1])) == (
        "sim-embed",
        256,
        2,
        256,
    )
    assert data["dropped_params"] == ["input_type"] and data["metadata"]["task"] == "embedding"
    again = json.loads(run(runner, "embed", "a", "b", "--json").stdout)
    assert again["vectors"] == data["vectors"]  # the same text, the same vector


def test_texts_from_stdin_one_per_line(runner: CliRunner) -> None:
    result = run(runner, "embed", "-", stdin="first\n\nsecond\n")
    assert result.exit_code == 0, result.output
    assert [line.split("  ")[-1] for line in result.stdout.splitlines()] == ["'first'", "'second'"]


def test_errors_exit_2_for_bad_requests(runner: CliRunner) -> None:
    chat = run(runner, "embed", "x", "--model", "sim-gpt")
    assert chat.exit_code == 2 and "not an embedding model: 'sim-gpt'" in chat.stderr
    size = run(runner, "embed", "x", "--dimensions", "7")
    assert size.exit_code == 2 and "not 7" in size.stderr


def test_against_an_openai_compatible_server(runner: CliRunner, tmp_path: Path) -> None:
    with serve_in_thread(FakeUpstream()) as up:
        up.push(Reply.json(wire.openai_list([wire.vector(1, 768)], model="nomic-embed-text", prompt_tokens=4)))
        cfg = {
            "models": {
                "nomic": {
                    "provider": "openai-compatible",
                    "preset": "ollama",
                    "base_url": up.url + "/v1",
                    "model": "nomic-embed-text",
                }
            }
        }
        result = run(runner, "--config", write("cfg.yaml", cfg), "embed", "where is it", "--input-type", "query")
        sent = up.requests[0].json
    assert result.exit_code == 0, result.output
    assert sent["input"] == ["search_query: where is it"] and sent["model"] == "nomic-embed-text"
    assert result.stdout.startswith("[0] 768 dims") and "nomic (ollama/nomic-embed-text)" in result.stderr
    assert "$0.00000000" in result.stderr  # a server of your own costs nothing per token
