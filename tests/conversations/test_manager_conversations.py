"""Conversations through the manager: turns, streaming, trimming to the window, concurrency, restarts, CLI."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from llm_manager import ConversationNotFoundError, LLMManager
from llm_manager.config import load_settings
from llm_manager.providers.simulated import SimulatedAdapter
from tests.helpers import instant


def settings(db: Path, **model: Any) -> Any:
    spec = {"provider": "simulated", "family": "gpt", "simulate": instant(), **model}
    return load_settings(
        {"models": {"m": spec}, "store": {"url": f"sqlite:///{db}"}, "cache": {"enabled": False}}, env={}
    )


def sim(llm: LLMManager) -> SimulatedAdapter:
    a = llm.adapter("m")
    assert isinstance(a, SimulatedAdapter)
    return a


async def test_turns_are_stored_and_sent_with_history(tmp_path: Path) -> None:
    async with LLMManager(settings(tmp_path / "c.db")) as llm:
        cid = await llm.start_conversation("You are terse.")
        r1 = await llm.continue_conversation(cid, "hello")
        await llm.continue_conversation(cid, "and again")
        conv = await llm.get_conversation(cid)
        sent = sim(llm).requests[-1]
    assert [m.role for m in conv.messages] == ["system", "user", "assistant", "user", "assistant"]
    assert conv.messages[2].content == r1.content
    assert sent.system == "You are terse." and [m.content for m in sent.messages][:2] == ["hello", r1.content]


async def test_streamed_turn_is_stored_when_complete(tmp_path: Path) -> None:
    async with LLMManager(settings(tmp_path / "c.db")) as llm:
        cid = await llm.start_conversation()
        s = llm.stream_conversation(cid, "haiku please")
        text = await s.text()
        conv = await llm.get_conversation(cid)
    assert conv.messages[-1].content == text and conv.messages[-2].content == "haiku please"


async def test_a_broken_stream_stores_nothing(tmp_path: Path) -> None:
    from llm_manager import StreamInterruptedError

    async with LLMManager(settings(tmp_path / "c.db")) as llm:
        cid = await llm.start_conversation()
        sim(llm).push("cut:2")
        with pytest.raises(StreamInterruptedError):
            await llm.stream_conversation(cid, "haiku please").text()
        assert (await llm.get_conversation(cid)).messages == []


async def test_50_concurrent_continues_never_lose_or_interleave(tmp_path: Path) -> None:
    async with LLMManager(settings(tmp_path / "c.db", simulate=instant(latency_ms=2))) as llm:
        cid = await llm.start_conversation("sys")
        await asyncio.gather(*(llm.continue_conversation(cid, f"question {i}") for i in range(50)))
        msgs = (await llm.get_conversation(cid)).messages
    turns = msgs[1:]
    assert len(turns) == 100
    assert all(turns[i].role == "user" and turns[i + 1].role == "assistant" for i in range(0, 100, 2))
    assert sorted(int(turns[i].content.split()[1]) for i in range(0, 100, 2)) == list(range(50))


async def test_history_is_trimmed_to_the_window_and_the_response_says_so(tmp_path: Path) -> None:
    async with LLMManager(settings(tmp_path / "c.db", context_window=2000)) as llm:
        cid = await llm.start_conversation("Keep this system prompt.")
        for i in range(12):
            r = await llm.continue_conversation(cid, f"turn {i}: " + "lorem ipsum " * 60)
        sent = sim(llm).requests[-1]
        stored = (await llm.get_conversation(cid)).messages
    assert r.metadata.trimmed_messages > 0
    assert sent.system == "Keep this system prompt."
    assert sent.messages[0].role == "user" and sent.messages[-1].content.startswith("turn 11:")
    assert len(sent.messages) < 23 and len(stored) == 25  # nothing is deleted from the store


async def test_resume_after_restart_and_fork(tmp_path: Path) -> None:
    db = tmp_path / "c.db"
    async with LLMManager(settings(db)) as llm:
        cid = await llm.start_conversation("sys")
        await llm.continue_conversation(cid, "first")
    async with LLMManager(settings(db)) as llm:  # a new process would see the same
        await llm.continue_conversation(cid, "second")
        conv = await llm.get_conversation(cid)
        fork = await llm.fork_conversation(cid, at=2)
        forked = await llm.get_conversation(fork)
        listed = [c.id for c in await llm.list_conversations()]
        assert await llm.delete_conversation(fork)
        with pytest.raises(ConversationNotFoundError):
            await llm.continue_conversation(fork, "gone")
    assert [m.content for m in conv.messages][:2] == ["sys", "first"] and len(conv.messages) == 5
    assert [m.content for m in forked.messages] == [m.content for m in conv.messages[:3]]
    assert set(listed) >= {cid, fork}


def test_cli_chat_and_conversations(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from llm_manager.cli.main import cli

    cfg = tmp_path / "llm-manager.yaml"
    cfg.write_text(f"models:\n  m: {{provider: simulated, family: gpt}}\nstore: {{url: 'sqlite:///{tmp_path}/c.db'}}\n")
    for var in ("OPENAI_API_KEY", "ANTHROPIC_API_KEY", "LLM_MANAGER_CONFIG"):
        monkeypatch.delenv(var, raising=False)
    runner = CliRunner()
    chat = runner.invoke(cli, ["--config", str(cfg), "chat", "--system", "be brief"], input="hello\n/id\n/exit\n")
    assert chat.exit_code == 0, chat.output
    assert "[simulated m]" in chat.stdout
    listed = runner.invoke(cli, ["--config", str(cfg), "conversations", "list", "--json"])
    assert listed.exit_code == 0
    import json

    rows = json.loads(listed.stdout)
    assert len(rows) == 1 and rows[0]["message_count"] == 3
    shown = runner.invoke(cli, ["--config", str(cfg), "conversations", "show", rows[0]["id"]])
    assert "[system]" in shown.stdout and "be brief" in shown.stdout and "[assistant]" in shown.stdout
    again = runner.invoke(cli, ["--config", str(cfg), "chat", "--continue"], input="more\n")
    assert again.exit_code == 0
    shown = runner.invoke(cli, ["--config", str(cfg), "conversations", "show", rows[0]["id"], "--json"])
    assert len(json.loads(shown.stdout)["messages"]) == 5
    missing = runner.invoke(cli, ["--config", str(cfg), "conversations", "show", "nope"])
    assert missing.exit_code == 1 and "no conversation" in missing.stderr
