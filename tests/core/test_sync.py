"""The blocking facade mirrors the async API and refuses to run inside an event loop."""

from __future__ import annotations

import pytest

from llm_manager import LLMManager, StreamInterruptedError
from llm_manager.providers.simulated import SimulatedAdapter
from tests.helpers import trio


def test_sync_generate_stream_models_health() -> None:
    with LLMManager.sync_from_config(trio()) as llm:
        r = llm.generate("Analyze this anomaly pattern", task="analysis")
        assert r.deployment == "claude" and r.metadata.simulated
        events = list(llm.stream("Write a haiku", task="general"))
        assert events[-1].type == "done" and events[-1].response is not None
        assert "".join(e.delta for e in events) == events[-1].response.content
        assert {m.name for m in llm.models()} == {"claude", "gpt", "llama"}
        assert all(h.ok for h in llm.health())
        assert llm.route("config-management")[0] == "llama"
        assert llm.status()["deployments"]["claude"]["calls"] == 1


def test_sync_stream_error_and_early_stop() -> None:
    with LLMManager.sync_from_config(trio()) as llm:
        adapter = llm.manager.adapter("gpt")
        assert isinstance(adapter, SimulatedAdapter)
        adapter.push("cut:1")
        with pytest.raises(StreamInterruptedError):
            for _ in llm.stream("x"):
                pass
        it = llm.stream("x")
        next(it)
        it.close()  # releases the upstream on the background loop
        assert llm.generate("again").deployment == "gpt"


async def test_sync_inside_a_running_loop_says_use_await() -> None:
    llm = LLMManager.sync_from_config.__func__  # type: ignore[attr-defined]
    with pytest.raises(RuntimeError, match="await"):
        llm(LLMManager, trio())


def test_close_is_idempotent_and_blocks_further_use() -> None:
    llm = LLMManager.sync_from_env(env={})
    llm.close()
    llm.close()
    with pytest.raises(RuntimeError, match="closed"):
        llm.generate("x")
