"""Tasks of one's own: ``routing.tasks`` may define any task name, for chat or embedding models, and the library,
the CLI and the gateway accept it; an unknown task is one clear error listing the known ones."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import openai
import pytest
import yaml
from click.testing import CliRunner

from llm_manager import LLMManager
from llm_manager.cli.main import cli
from llm_manager.config import load_settings
from llm_manager.errors import ConfigError
from tests.server.conftest import Gateway, start_gateway

FAST = {"latency_ms": 0, "first_token_ms": 0}
CONFIG: dict[str, Any] = {
    "models": {
        "big": {"provider": "simulated", "family": "claude", "simulate": FAST},
        "small": {"provider": "simulated", "family": "gpt", "simulate": FAST},
        "vec": {"provider": "simulated", "kind": "embedding", "dimensions": 8},
    },
    "routing": {
        "tasks": {
            "summarization": ["small", "big"],
            "code-review": ["big"],
            "doc-vectors": ["vec"],
        },
        "hedge": {"tasks": ["code-review"]},
    },
    "cache": {"enabled": False},
}


def test_a_name_near_a_built_in_one_but_not_a_typo_is_a_task_of_its_own() -> None:
    s = load_settings({"models": CONFIG["models"], "routing": {"tasks": {"general-v2": ["small"]}}}, env={})
    assert s.chain("general-v2") == ["small"]


def test_the_config_defines_tasks_beside_the_built_in_ones() -> None:
    s = load_settings(CONFIG, env={})
    assert s.task_names() == [
        "analysis",
        "ui-generation",
        "config-management",
        "general",
        "summarization",
        "code-review",
        "doc-vectors",
        "embedding",
    ]
    assert s.chain("summarization") == ["small", "big"]
    assert s.chain("analysis") == ["big", "small"], "the built-in tasks keep the seeds' table"
    with pytest.raises(ConfigError, match=r"unknown task 'sumarization'\. Did you mean 'summarization'\?"):
        s.chain("sumarization")


@pytest.mark.parametrize(
    ("routing", "problem"),
    [
        ({"tasks": {"summarization": []}}, "routing.tasks.summarization: a task of your own needs at least one model"),
        ({"tasks": {"bad name!": ["big"]}}, "routing.tasks.bad name!"),
        ({"tasks": {"review": ["nope"]}}, "routing.tasks.review[0]: unknown model 'nope'"),
        ({"tasks": {"mixed": ["big", "vec"]}}, "routing.tasks.mixed: vec is not a chat model"),
        ({"hedge": {"tasks": ["sumarization"]}}, "routing.hedge.tasks[0]: unknown task 'sumarization'"),
        ({"tasks": {"generl": ["big"]}}, "'generl' is not allowed: it is a typo of the built-in task 'general'"),
    ],
    ids=["empty", "bad-name", "unknown-model", "mixed-kinds", "hedge-unknown", "typo-of-built-in"],
)
def test_a_bad_task_table_is_a_config_error(routing: dict[str, Any], problem: str) -> None:
    with pytest.raises(ConfigError) as info:
        load_settings({"models": CONFIG["models"], "routing": routing}, env={})
    assert problem in info.value.message


async def test_the_library_routes_a_task_of_ones_own() -> None:
    async with LLMManager.from_config(CONFIG) as llm:
        r = await llm.generate("Summarise the incident", task="summarization")
        assert r.deployment == "small" and r.metadata.task == "summarization"
        s = llm.stream("Review this diff", task="code-review")
        await s.text()
        assert s.response is not None and s.response.deployment == "big"
        resp, settle = await llm.answer(llm.request(prompt="again", task="summarization"))
        await settle()
        assert resp.deployment == "small"
        e = await llm.embed(["a", "b"], task="doc-vectors")
        assert e.deployment == "vec" and len(e.vectors) == 2
        with pytest.raises(ConfigError) as info:
            await llm.generate("hi", task="translation")
        assert "unknown task 'translation'" in info.value.message
        assert "summarization, code-review, doc-vectors" in info.value.message
        with pytest.raises(ConfigError, match="routes embedding models"):
            await llm.generate("hi", task="doc-vectors")
        with pytest.raises(ConfigError, match="routes chat models"):
            await llm.embed(["a"], task="summarization")


def test_the_sync_facade_takes_a_task_of_ones_own() -> None:
    with LLMManager.sync_from_config(CONFIG) as llm:
        assert llm.generate("Summarise", task="summarization").deployment == "small"


@pytest.fixture
def config_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> str:
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("LLM_MANAGER_CONFIG", raising=False)
    path = tmp_path / "tasks.yaml"
    path.write_text(yaml.safe_dump({**CONFIG, "store": {"url": f"sqlite:///{tmp_path / 's.db'}"}}), encoding="utf-8")
    return str(path)


def test_the_cli_takes_any_task_the_config_defines(config_file: str) -> None:
    runner = CliRunner()
    ok = runner.invoke(cli, ["-c", config_file, "ask", "Summarise this", "--task", "summarization"])
    assert ok.exit_code == 0, ok.output
    assert ok.stdout.startswith("[simulated small]")
    bad = runner.invoke(cli, ["-c", config_file, "ask", "hi", "--task", "translation"])
    assert bad.exit_code == 2
    assert "unknown task 'translation'" in bad.stderr and "summarization" in bad.stderr
    chat = runner.invoke(cli, ["-c", config_file, "chat", "--task", "translation"], input="hello\n")
    assert chat.exit_code == 2 and "unknown task 'translation'" in chat.stderr
    models = runner.invoke(cli, ["-c", config_file, "models"], env={"COLUMNS": "200"})
    assert models.exit_code == 0, models.output
    assert "summarization" in models.stdout and "doc-vectors" in models.stdout
    check = runner.invoke(cli, ["config", "check", config_file])
    assert check.exit_code == 0 and "code-review" in check.stdout


def test_cli_help_lists_no_fixed_choice(config_file: str) -> None:
    result = CliRunner().invoke(cli, ["ask", "--help"], env={"COLUMNS": "200"})
    assert "[analysis|ui-generation" not in result.stdout and "routing.tasks" in result.stdout


@pytest.fixture(scope="module")
def gw() -> Iterator[Gateway]:
    yield from start_gateway(load_settings(CONFIG, env={}))


def test_the_gateway_routes_task_pseudo_models_of_ones_own(gw: Gateway) -> None:
    client = openai.OpenAI(base_url=gw.url + "/v1", api_key="unused", max_retries=0)
    r = client.chat.completions.with_raw_response.create(
        model="task:summarization", messages=[{"role": "user", "content": "Summarise"}]
    )
    assert r.headers["x-llm-model"] == "small"
    stream = client.chat.completions.create(
        model="task:code-review", messages=[{"role": "user", "content": "Review"}], stream=True
    )
    assert "".join(c.choices[0].delta.content or "" for c in stream if c.choices).startswith("[simulated big]")
    ids = {m.id for m in client.models.list().data}
    assert {"task:summarization", "task:code-review", "task:doc-vectors"} <= ids
    e = client.embeddings.create(model="task:doc-vectors", input=["a"])
    assert len(e.data) == 1


def test_the_gateway_refuses_an_unknown_task_listing_the_known_ones(gw: Gateway) -> None:
    r = httpx.post(
        gw.url + "/v1/chat/completions",
        json={"model": "task:translation", "messages": [{"role": "user", "content": "hi"}]},
    )
    assert r.status_code == 400
    err = r.json()["error"]
    assert err["type"] == "invalid_request_error" and err["param"] == "model"
    assert "unknown task 'translation'" in err["message"] and "summarization" in err["message"]
    h = httpx.post(
        gw.url + "/v1/chat/completions",
        json={"model": "small", "messages": [{"role": "user", "content": "hi"}]},
        headers={"x-llm-task": "translation"},
    )
    assert h.status_code == 400 and h.json()["error"]["param"] == "x-llm-task"
    ok = httpx.post(
        gw.url + "/v1/chat/completions",
        json={"model": "big", "messages": [{"role": "user", "content": "hi"}]},
        headers={"x-llm-task": "summarization"},
    )
    assert ok.status_code == 200 and json.loads(ok.text)["choices"][0]["message"]["content"]
