"""The semantic cache in one process, with the real built-in model (wordllama) and the simulated provider."""

from __future__ import annotations

from typing import Any

import pytest

from llm_manager import LLMManager
from llm_manager.errors import ConfigError
from llm_manager.providers.simulated import SimulatedAdapter
from tests.helpers import FakeClock, sim_settings
from tests.store.conftest import store_url

__all__ = ["store_url"]  # the fixture: a fresh SQLite file, and a fresh PostgreSQL schema

pytest.importorskip("wordllama", reason="the semantic extra (wordllama) is part of the dev install")

ASKED = "How do I reset my password?"
SAME = "how can I reset my password"
NEAR = "How do I reset my username?"


def manager(semantic: dict[str, Any] | None = None, **kw: Any) -> LLMManager:
    cache = {"semantic": {"enabled": True, **(semantic or {})}}
    return LLMManager(sim_settings({"gpt": {"family": "gpt"}}, cache=cache), **kw)


def calls(llm: LLMManager) -> int:
    adapter = llm.adapter("gpt")
    assert isinstance(adapter, SimulatedAdapter)
    return adapter.calls


async def test_a_paraphrase_answers_from_the_cache_with_its_similarity() -> None:
    async with manager() as llm:
        first = await llm.generate(ASKED)
        again = await llm.generate(SAME)
        assert calls(llm) == 1
        assert again.content == first.content and again.id != first.id
        assert again.metadata.cached and again.metadata.cache_similarity is not None
        assert 0.8 <= again.metadata.cache_similarity < 1.0
        assert first.metadata.cache_similarity is None and not first.metadata.cached
        view = (await llm.status())["cache"]["semantic"]
        assert view["hits"] == 1 and view["misses"] == 1 and view["entries"] == 1 and not view["shared"]


async def test_a_near_miss_asks_the_provider() -> None:
    async with manager() as llm:
        await llm.generate(ASKED)
        near = await llm.generate(NEAR)
        negated = await llm.generate("How do I not reset my password?")
        assert calls(llm) == 3
        assert not near.metadata.cached and not negated.metadata.cached
        assert (await llm.status())["cache"]["semantic"]["guarded"] >= 1


@pytest.mark.parametrize(
    "change",
    [
        {"system": "Answer in French."},
        {"temperature": 0.1},
        {"task": "analysis"},
        {"max_tokens": 50},
        {"messages": [{"role": "user", "content": "hi"}, {"role": "assistant", "content": "hello"}]},
    ],
)
async def test_only_prompts_of_one_scope_answer_each_other(change: dict[str, Any]) -> None:
    async with manager() as llm:
        await llm.generate(ASKED)
        other = await llm.generate(SAME, **change)
        assert not other.metadata.cached and calls(llm) == 2
        # ... and within that other scope, a paraphrase hits again.
        assert (await llm.generate(SAME + "?", **change)).metadata.cache_similarity is not None


async def test_opting_out_per_request() -> None:
    async with manager() as llm:
        await llm.generate(ASKED)
        assert not (await llm.generate(SAME, semantic_cache=False)).metadata.cached
        assert not (await llm.generate(SAME + "!", cache=False)).metadata.cached
        assert calls(llm) == 3
        # The exact cache still answers a request that opted out of the semantic one.
        exact = await llm.generate(ASKED, semantic_cache=False)
        assert exact.metadata.cached and exact.metadata.cache_similarity is None


async def test_per_task_threshold() -> None:
    async with manager({"thresholds": {"analysis": 0.999}}) as llm:
        await llm.generate(ASKED, task="analysis")
        assert not (await llm.generate(SAME, task="analysis")).metadata.cached
        await llm.generate(ASKED)
        assert (await llm.generate(SAME)).metadata.cached
        assert calls(llm) == 3


async def test_entries_expire_and_are_bounded() -> None:
    clock = FakeClock()
    async with manager({"ttl_s": 60, "max_entries": 2}, wall_clock=clock) as llm:
        await llm.generate(ASKED)
        clock.now += 61
        assert not (await llm.generate(SAME)).metadata.cached  # expired (and now cached in its place)
        await llm.generate("What is the boiling point of water?")
        await llm.generate("Who wrote Pride and Prejudice?")
        view = (await llm.status())["cache"]["semantic"]
        assert view["entries"] == 2 and view["max_entries"] == 2
        before = calls(llm)
        assert not (await llm.generate("How can I reset my password, please?")).metadata.cached  # evicted
        assert (await llm.generate("who wrote pride and prejudice")).metadata.cached
        assert calls(llm) == before + 1


async def test_a_stream_replays_a_semantic_hit() -> None:
    async with manager() as llm:
        first = await llm.generate(ASKED)
        stream = llm.stream(SAME)
        text = await stream.text()
        assert text == first.content and stream.cached
        assert stream.cache_similarity is not None and stream.response is not None
        assert stream.response.metadata.cache_similarity == stream.cache_similarity
        # A streamed answer is cached for meaning too.
        streamed = llm.stream("Why is the sky blue?")
        await streamed.text()
        assert (await llm.generate("why is the sky blue")).metadata.cached
        assert calls(llm) == 2


async def test_prompts_that_take_no_part() -> None:
    async with manager({"max_prompt_chars": 40}) as llm:
        long = "Please explain in detail how photosynthesis works in plants."
        await llm.generate(long)
        assert not (await llm.generate(long.replace("Please explain", "Explain"))).metadata.cached
        assert (await llm.status())["cache"]["semantic"]["entries"] == 0


async def test_hits_are_in_the_ledger_with_their_similarity(store_url: str) -> None:
    settings = sim_settings({"gpt": {"family": "gpt"}}, cache={"semantic": {"enabled": True}})
    settings = settings.model_copy(update={"store": settings.store.model_copy(update={"url": store_url})})
    async with LLMManager(settings) as llm:
        await llm.generate(ASKED)
        hit = await llm.generate(SAME)
        assert llm.ledger is not None
        await llm.ledger.flush()
        rows = {r.request_id: r for r in await llm.ledger.rows()}
    assert rows[hit.id].status == "cached" and rows[hit.id].cache_similarity == hit.metadata.cache_similarity
    assert [r.cache_similarity for r in rows.values() if r.request_id != hit.id] == [None]


def test_bad_embedder_names_the_field() -> None:
    with pytest.raises(ConfigError, match=r"cache\.semantic\.embedder: 'nope' is not an embedding deployment"):
        manager({"embedder": "nope"})
    with pytest.raises(ConfigError, match=r"cache\.semantic\.embedder: 'gpt' is not an embedding deployment"):
        manager({"embedder": "gpt"})


def test_off_by_default_and_with_the_cache() -> None:
    plain = LLMManager(sim_settings({"gpt": {"family": "gpt"}}, cache={}))
    assert plain.semantic is None
    off = LLMManager(sim_settings({"gpt": {"family": "gpt"}}, cache={"enabled": False, "semantic": {"enabled": True}}))
    assert off.semantic is None


async def test_an_embedding_deployment_as_the_embedder(tmp_path: Any) -> None:
    from llm_manager.config import load_settings

    settings = load_settings(
        {
            "models": {
                "gpt": {"provider": "simulated", "family": "gpt", "simulate": {"latency_ms": 0}},
                "emb": {"provider": "simulated", "kind": "embedding", "dimensions": 256},
            },
            # The simulated model's vectors are hashed words and trigrams: a paraphrase scores ~0.78 there.
            "cache": {"semantic": {"enabled": True, "embedder": "emb", "threshold": 0.7}},
            "store": {"url": f"sqlite:///{tmp_path}/s.db"},
        },
        env={},
    )
    async with LLMManager(settings) as llm:
        await llm.generate(ASKED, user="ann")
        hit = await llm.generate(SAME, user="ann")
        near = await llm.generate(NEAR, user="ann")
        assert hit.metadata.cache_similarity is not None and not near.metadata.cached
        assert (await llm.status())["cache"]["semantic"]["embedder"] == "deployment:emb"
        assert llm.ledger is not None
        await llm.ledger.flush()
        rows = await llm.ledger.rows()
    # Each lookup embedded its prompt through the deployment, attributed to the asking user.
    embedded = [r for r in rows if r.task == "embedding"]
    assert len(embedded) == 3 and {r.deployment for r in embedded} == {"emb"} and {r.user for r in embedded} == {"ann"}
