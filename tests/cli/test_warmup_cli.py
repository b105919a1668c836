"""``llm-manager health --warmup`` and ``serve --warmup`` against a loopback fake that counts connections."""

from __future__ import annotations

import json
import signal
import time
from pathlib import Path

import yaml
from click.testing import CliRunner

from llm_manager.cli.main import cli
from tests.cli.test_serve_stack import _post
from tests.fakes import openai_wire
from tests.fakes.server import FakeUpstream, Recorded, Reply, serve_in_thread
from tests.processes import free_port, start_serve


def _answer(req: Recorded) -> Reply:
    if req.path.endswith("/models"):
        return Reply.json(openai_wire.models_list("gpt-4o"))
    return Reply.json(openai_wire.completion("warm answer"))


def _config(tmp_path: Path, url: str) -> str:
    path = tmp_path / "llm-manager.yaml"
    models = {"gpt": {"provider": "openai-compatible", "base_url": f"{url}/v1", "api_key": "k", "model": "gpt-4o"}}
    path.write_text(yaml.safe_dump({"models": models}), encoding="utf-8")
    return str(path)


def _settle(ups: FakeUpstream, connections: int) -> None:
    """The fake runs on its own thread: give it a moment to count a connection the client already has."""
    deadline = time.monotonic() + 5
    while ups.connections < connections and time.monotonic() < deadline:
        time.sleep(0.01)
    time.sleep(0.05)


def test_health_warmup_reports_each_deployment_and_the_probe_reuses_the_connection(tmp_path: Path) -> None:
    with serve_in_thread(FakeUpstream(_answer)) as ups:
        config = _config(tmp_path, ups.url)
        result = CliRunner().invoke(cli, ["--config", config, "health", "--warmup", "--json"], catch_exceptions=False)
        _settle(ups, 1)
        assert result.exit_code == 0, result.output
        (row,) = json.loads(result.stdout)
        assert row["ok"] and row["warmup"]["ok"] and row["warmup"]["origin"] == f"http://127.0.0.1:{ups.port}"
        assert row["warmup"]["connection_ms"] is not None and not row["warmup"]["reused"]
        assert ups.connections == 1 and [r.path for r in ups.requests] == ["/v1/models"]

        table = CliRunner().invoke(cli, ["--config", config, "health", "--warmup"], env={"COLUMNS": "200"})
        assert table.exit_code == 0, table.output
        assert "warm-up" in table.stdout and "opened" in table.stdout and "tcp+tls" in table.stdout


def test_health_warmup_fails_for_an_unreachable_endpoint(tmp_path: Path) -> None:
    config = _config(tmp_path, f"http://127.0.0.1:{free_port()}")
    result = CliRunner().invoke(cli, ["--config", config, "health", "--warmup", "--json"])
    assert result.exit_code == 1
    (row,) = json.loads(result.stdout)
    assert row["warmup"]["error_code"] == "model_unavailable"


def test_serve_warmup_connects_before_listening(tmp_path: Path) -> None:
    with serve_in_thread(FakeUpstream(_answer)) as ups:
        config = _config(tmp_path, ups.url)
        log = tmp_path / "serve.log"
        proc, port = start_serve(Path(config), log, "--warmup")
        try:
            base = f"http://127.0.0.1:{port}"
            _settle(ups, 1)
            assert ups.connections == 1 and ups.requests == []  # warmed before any request came
            assert f"warm-up gpt: opened http://127.0.0.1:{ups.port}" in log.read_text()
            status, body = _post(
                f"{base}/v1/chat/completions", {"model": "gpt", "messages": [{"role": "user", "content": "hi"}]}
            )
            assert status == 200 and body["choices"][0]["message"]["content"] == "warm answer"
            assert ups.connections == 1 and len(ups.requests) == 1  # the request took the warm connection
        finally:
            proc.send_signal(signal.SIGTERM)
            assert proc.wait(20) == 0
