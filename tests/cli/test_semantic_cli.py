"""``ask`` and ``status`` with the semantic cache: two CLI runs share it through Redis (a unique prefix)."""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from click.testing import CliRunner

from tests.cli.test_cli import run, runner, write
from tests.state.conftest import require_redis

__all__ = ["runner"]

pytest.importorskip("wordllama", reason="the semantic extra (wordllama) is part of the dev install")


@pytest.fixture
def config(runner: CliRunner, tmp_path: Path) -> Iterator[str]:
    url, prefix = require_redis(), f"llmm-test-semcli-{uuid.uuid4().hex[:10]}"
    yield write(
        "llm-manager.yaml",
        {
            "models": {"gpt": {"provider": "simulated", "family": "gpt"}},
            "cache": {"semantic": {"enabled": True, "threshold": 0.8}},
            "state": {"redis_url": url, "prefix": prefix},
            "store": {"url": f"sqlite:///{tmp_path / 'store.db'}"},
        },
    )
    import redis

    client = redis.Redis.from_url(url)
    keys = list(client.scan_iter(match=f"{prefix}:*", count=1000))
    if keys:
        client.delete(*keys)
    client.close()


def test_ask_says_when_a_semantic_hit_answered_and_can_refuse_one(runner: CliRunner, config: str) -> None:
    first = run(runner, "ask", "How do I reset my password?")
    assert first.exit_code == 0 and "cache hit" not in first.stderr
    again = run(runner, "ask", "how can I reset my password")
    assert again.exit_code == 0 and "semantic cache hit (similarity 0." in again.stderr
    assert again.stdout == first.stdout
    refused = run(runner, "ask", "--no-semantic-cache", "how can I reset my password")
    assert refused.exit_code == 0 and "cache hit" not in refused.stderr
    exact = run(runner, "ask", "--no-semantic-cache", "How do I reset my password?")
    assert "— " in exact.stderr and "cache hit" in exact.stderr and "semantic" not in exact.stderr
    as_json = json.loads(run(runner, "ask", "--json", "How can I reset my password, please?").stdout)
    assert as_json["metadata"]["cached"] and as_json["metadata"]["cache_similarity"] >= 0.8


def test_status_shows_the_semantic_cache(runner: CliRunner, config: str) -> None:
    run(runner, "ask", "Why is the sky blue?")
    status = json.loads(run(runner, "status").stdout)
    semantic = status["cache"]["semantic"]
    assert semantic["enabled"] and semantic["shared"] and semantic["entries"] == 1 and semantic["threshold"] == 0.8
