"""``embed()`` end to end through the manager: kinds kept apart, fallback by vector size, the same admission,
retries, key pools and breakers as chat, budgets, the ledger and the cache — on simulated models and on the
recording fake upstream."""

from __future__ import annotations

import asyncio
import json
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from llm_manager import (
    AllCandidatesFailedError,
    BudgetExceededError,
    ConfigError,
    InvalidRequestError,
    LLMManager,
    RateLimitError,
)
from llm_manager.config import load_settings
from llm_manager.providers.simulated_embeddings import SimulatedEmbeddingsAdapter
from tests.fakes import embeddings_wire as wire
from tests.fakes import openai_wire
from tests.fakes.server import FakeUpstream, Recorded, Reply
from tests.helpers import FakeClock, instant

PRICE = {"input_price_per_mtok": "0.02"}


def models(**extra: dict[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {
        "chat": {
            "provider": "simulated",
            "family": "gpt",
            "simulate": instant(),
            "input_price_per_mtok": "1",
            "output_price_per_mtok": "2",
        },
        "emb-a": {"provider": "simulated", "kind": "embedding", "dimensions": 64, "simulate": instant(), **PRICE},
        "emb-small": {"provider": "simulated", "kind": "embedding", "dimensions": 32, "simulate": instant(), **PRICE},
        "emb-b": {"provider": "simulated", "kind": "embedding", "dimensions": 64, "simulate": instant(), **PRICE},
    }
    out.update(extra)
    return out


def manager(tmp_path: Path | None = None, *, cache: bool = False, **raw: Any) -> LLMManager:
    clock = FakeClock()
    cfg: dict[str, Any] = {
        "models": raw.pop("models", models()),
        "routing": {"max_retries": 0, "backoff": {"jitter": False}, **raw.pop("routing", {})},
        "cache": {"enabled": cache},
        **raw,
    }
    if tmp_path is not None:
        cfg["store"] = {"url": f"sqlite:///{tmp_path / 'ledger.db'}"}
    return LLMManager(load_settings(cfg, env={}), sleep=clock.sleep)


def sim(llm: LLMManager, name: str) -> SimulatedEmbeddingsAdapter:
    adapter = llm.adapter(name)
    assert isinstance(adapter, SimulatedEmbeddingsAdapter)
    return adapter


async def test_vectors_usage_cost_and_metadata() -> None:
    async with manager() as llm:
        r = await llm.embed(["hello world", "goodbye"], user="ann")
    assert (r.deployment, r.dimensions, len(r.vectors), len(r.vectors[0])) == ("emb-a", 64, 2, 64)
    assert r.usage.prompt_tokens == r.usage.total_tokens > 0 and r.usage.completion_tokens == 0
    assert r.usage.cost == Decimal(r.usage.prompt_tokens) * Decimal("0.02") / 1_000_000
    assert r.metadata.task == "embedding" and r.metadata.simulated and [a.ok for a in r.metadata.attempts] == [True]
    assert r.vectors[0] != r.vectors[1] and r.dropped_params == []
    with pytest.raises(ValueError, match="2 vectors"):
        r.vector  # noqa: B018


async def test_chat_and_embedding_models_never_mix() -> None:
    async with manager() as llm:
        assert llm.route("general") == ["chat"]
        with pytest.raises(ConfigError, match="embedding model"):
            await llm.generate("hi", model="emb-a")
        with pytest.raises(ConfigError, match="call embed"):
            await llm.generate("hi", task="embedding")
        with pytest.raises(ConfigError, match="not an embedding model"):
            await llm.embed("hi", model="chat")
        with pytest.raises(ConfigError, match="routes chat models"):
            await llm.embed("hi", task="general")
        with pytest.raises(ConfigError, match="does not take max_tokens"):
            await llm.embed("hi", max_tokens=5)
        with pytest.raises(ConfigError, match="texts.1"):
            await llm.embed(["a", ""])
        assert (await llm.generate("hi")).deployment == "chat"
        infos = {m.name: m for m in llm.models()}
    assert (infos["emb-a"].kind, infos["emb-a"].dimensions, infos["emb-a"].tasks) == ("embedding", 64, ["embedding#1"])
    assert (infos["chat"].kind, infos["chat"].dimensions) == ("chat", None)
    assert infos["emb-small"].tasks == ["embedding#2"]


async def test_fallback_only_to_models_of_the_same_size() -> None:
    async with manager() as llm:
        sim(llm, "emb-a").push("503")
        r = await llm.embed("q")
        tried = [(a.deployment, a.skipped, a.error_code) for a in r.metadata.attempts]
        assert r.deployment == "emb-b"
        assert tried == [("emb-a", False, "model_unavailable"), ("emb-b", False, None)]  # emb-small: other size
        small = await llm.embed("q", dimensions=32)
        assert small.deployment == "emb-small" and small.dimensions == 32
        sim(llm, "emb-small").push("503")
        with pytest.raises(AllCandidatesFailedError):
            await llm.embed("q", dimensions=32)
        with pytest.raises(ConfigError, match="no embedding model can take"):
            await llm.embed("q", dimensions=48)


async def test_the_same_text_gets_the_same_vector_from_either_model_of_a_pair() -> None:
    cfg = models(
        **{
            "emb-b": {
                "provider": "simulated",
                "model": "emb-a",
                "kind": "embedding",
                "dimensions": 64,
                "simulate": instant(),
            }
        }
    )
    async with manager(models=cfg) as llm:
        first = await llm.embed("same text")
        sim(llm, "emb-a").push("500")
        second = await llm.embed("same text")
    assert (first.deployment, second.deployment) == ("emb-a", "emb-b")
    assert first.vectors == second.vectors  # one model id, one space: a safe fallback pair


async def test_retries_key_pools_and_breakers_apply(upstream: FakeUpstream) -> None:
    cfg = {
        "oa": {
            "provider": "openai",
            "model": "text-embedding-3-small",
            "base_url": upstream.url + "/v1",
            "api_keys": "k1,k2",
        },
    }
    breaker = {"failure_threshold": 1, "cooldown_s": 600}
    async with manager(models=cfg, routing={"max_retries": 1, "circuit_breaker": breaker}) as llm:
        upstream.push(
            Reply.error(429, openai_wire.error_body("slow", "requests", "rate_limit_exceeded"), {"retry-after": "0"}),
            Reply.json(wire.openai_list([wire.vector(1, 1536)], prompt_tokens=2)),
        )
        r = await llm.embed("x")
        keys = [q.headers["authorization"] for q in upstream.requests]
        assert keys[0] != keys[1] and r.usage.prompt_tokens == 2  # the other key of the pool, at once
        assert [a.key is not None for a in r.metadata.attempts] == [True, True]
        upstream.push(*[Reply.error(500, openai_wire.error_body("boom", "server_error"))] * 2)  # one per key
        with pytest.raises(AllCandidatesFailedError):
            await llm.embed("y", cache=False)
        sent = len(upstream.requests)
        with pytest.raises(Exception) as err:
            await llm.embed("z", cache=False)
        assert len(upstream.requests) == sent and "circuit" in str(err.value)  # open breakers: nothing sent


async def test_shortened_vectors_and_token_input_on_the_wire(upstream: FakeUpstream) -> None:
    base = upstream.url + "/v1"
    cfg = {
        "small": {
            "provider": "openai",
            "model": "text-embedding-3-small",
            "base_url": base,
            "api_key": "k",
            "dimensions": 256,
        },
        "large": {
            "provider": "openai",
            "model": "text-embedding-3-large",
            "base_url": base,
            "api_key": "k",
            "dimensions": 256,
        },
        "local": {"provider": "simulated", "kind": "embedding", "dimensions": 256, "simulate": instant()},
    }

    def answer(req: Recorded) -> Reply:
        n = len(req.json["input"])
        return Reply.json(
            wire.openai_list([wire.vector(i, req.json.get("dimensions", 1536)) for i in range(n)], b64=True)
        )

    upstream.default = answer
    async with manager(models=cfg) as llm:
        await llm.embed(["a", "b"])
        assert upstream.requests[-1].json["dimensions"] == 256  # asked to shorten to the configured size
        r = await llm.embed("a", dimensions=1536, fallback=False, model="small")
        assert "dimensions" not in upstream.requests[-1].json and r.dimensions == 1536
        tok = await llm.embed(tokens=[[1, 2, 3]])
        assert tok.deployment == "small" and upstream.requests[-1].json["input"] == [[1, 2, 3]]
        upstream.push(Reply.error(503, openai_wire.error_body("busy", "server_error")))
        with pytest.raises(AllCandidatesFailedError) as failed:
            await llm.embed(tokens=[[1, 2, 3]])
        # Token ids belong to small's tokenizer: large (another model) and local (text only) are never tried.
        assert [a.deployment for a in failed.value.attempts] == ["small"]
        with pytest.raises(ConfigError, match="takes text, not token ids"):
            await llm.embed(tokens=[[1]], model="local")


async def test_an_answer_of_the_wrong_size_names_the_fix(upstream: FakeUpstream) -> None:
    cfg = {
        "m": {
            "provider": "openai-compatible",
            "base_url": upstream.url + "/v1",
            "model": "mystery",
            "kind": "embedding",
            "dimensions": 8,
        }
    }
    upstream.push(Reply.json(wire.openai_list([wire.vector(1, 12)])))
    async with manager(models=cfg) as llm:
        with pytest.raises(InvalidRequestError, match=r"set models\.m\.dimensions"):
            await llm.embed("x")


async def test_cache_and_in_flight_sharing() -> None:
    async with manager(cache=True) as llm:
        first = await llm.embed(["a", "b"])
        hit = await llm.embed(["a", "b"])
        assert hit.metadata.cached and hit.vectors == first.vectors and hit.id != first.id
        assert len(sim(llm, "emb-a").calls_received) == 1
        sim(llm, "emb-a").behaviour = sim(llm, "emb-a").behaviour.model_copy(update={"latency_ms": 50.0})
        shared = await asyncio.gather(*(llm.embed("c") for _ in range(3)))
        assert sum(r.metadata.deduplicated for r in shared) == 2 and len(sim(llm, "emb-a").calls_received) == 2
        fresh = await llm.embed(["a", "b"], cache=False)
        assert not fresh.metadata.cached and len(sim(llm, "emb-a").calls_received) == 3


async def test_ledger_rows_and_budgets(tmp_path: Path) -> None:
    budgets = [{"name": "day", "limit_usd": "0.001", "soft_limit_pct": None}]
    async with manager(tmp_path, cache=True, budgets=budgets) as llm:
        sim(llm, "emb-a").push("500")
        r = await llm.embed(["alpha beta"], user="ann", project="p")
        await llm.embed(["alpha beta"], user="ann")
        assert llm.ledger is not None
        await llm.ledger.flush()
        rows = await llm.ledger.rows()
        by_task = {t.key: t for t in await llm.ledger.totals("task")}
        with pytest.raises(BudgetExceededError):
            await llm.embed(["x" * 400_000] * 1000)  # ~100M tokens: far over the day's $0.001
    assert [(x.deployment, x.status, x.task) for x in rows] == [
        ("emb-a", "error", "embedding"),
        ("emb-b", "ok", "embedding"),
        ("emb-b", "cached", "embedding"),
    ]
    ok = rows[1]
    assert (ok.user, ok.project, ok.prompt_tokens, ok.completion_tokens, ok.cost) == (
        "ann",
        "p",
        r.usage.prompt_tokens,
        0,
        r.usage.cost,
    )
    assert by_task["embedding"].cost == r.usage.cost


def test_the_sync_facade_embeds() -> None:
    cfg = {"models": models(), "cache": {"enabled": False}}
    with LLMManager.sync_from_config(cfg) as llm:
        r = llm.embed("one text", input_type="query")
    assert len(r.vector) == 64 and r.dropped_params == ["input_type"]


@pytest.mark.parametrize(
    ("model", "problem"),
    [
        ({"provider": "simulated", "kind": "embedding"}, "vector size of 'x' is not known"),
        ({"provider": "simulated", "dimensions": 8}, "only embedding models have dimensions"),
        ({"provider": "openai", "model": "text-embedding-ada-002", "api_key": "k", "dimensions": 512}, "only 1536"),
        ({"provider": "gemini", "model": "gemini-embedding-001", "api_key": "k", "dimensions": 64}, "128 to 3072"),
        ({"provider": "anthropic", "kind": "embedding", "dimensions": 8, "api_key": "k"}, "no embedding API"),
    ],
)
def test_config_problems(model: dict[str, Any], problem: str) -> None:
    with pytest.raises(ConfigError, match=problem):
        load_settings({"models": {"x": model}}, env={})


def test_known_embedding_models_are_recognised_and_kept_out_of_chat_chains() -> None:
    s = load_settings(
        {
            "models": {
                "g": {"provider": "gemini", "model": "gemini-embedding-001", "api_key": "k"},
                "flash": {"provider": "gemini", "model": "gemini-2.5-flash", "api_key": "k"},
                "nomic": {"provider": "openai-compatible", "preset": "ollama", "model": "nomic-embed-text"},
            },
            "routing": {"tasks": {"embedding": ["nomic", "g"]}},
        },
        env={},
    )
    assert s.chain("general") == ["flash"] and s.chain("embedding") == ["nomic", "g"]
    with pytest.raises(ConfigError, match="is not a chat model"):
        load_settings(
            {
                "models": {"g": {"provider": "gemini", "model": "gemini-embedding-001", "api_key": "k"}},
                "routing": {"tasks": {"general": ["g"]}},
            },
            env={},
        )
    assert json.dumps(s.routing.tasks)


async def test_an_embedding_call_is_traced_and_counted_as_such() -> None:
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import SimpleSpanProcessor
    from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
    from prometheus_client.parser import text_string_to_metric_families

    from llm_manager.telemetry import Telemetry, TelemetryConfig

    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    tel = Telemetry(TelemetryConfig(), tracer_provider=provider)
    settings = load_settings({"models": models(), "cache": {"enabled": False}}, env={})
    async with LLMManager(settings, telemetry=tel) as llm:
        r = await llm.embed("secret text", model="emb-b")
        body, _ = await llm.metrics()
    root = next(s for s in exporter.get_finished_spans() if s.parent is None)
    assert root.name == "embeddings emb-b" and root.attributes is not None
    assert root.attributes["gen_ai.operation.name"] == "embeddings"
    assert root.attributes["gen_ai.usage.input_tokens"] == r.usage.prompt_tokens
    assert "secret text" not in str(dict(root.attributes))
    families = {f.name: f for f in text_string_to_metric_families(body.decode())}
    assert any(
        s.labels == {"deployment": "emb-b", "task": "embedding", "status": "ok"} and s.value == 1
        for s in families["llm_manager_requests"].samples
    )


async def test_gemini_embeddings_through_the_manager(upstream: FakeUpstream) -> None:
    cfg = {
        "g": {
            "provider": "gemini",
            "model": "gemini-embedding-001",
            "base_url": upstream.url + "/v1beta",
            "api_key": "g-key",
            "dimensions": 768,
        }
    }
    upstream.push(Reply.json(wire.gemini_batch([wire.vector(1, 768), wire.vector(2, 768)])))
    async with manager(models=cfg) as llm:
        r = await llm.embed(["first text here", "second"], input_type="document")
    sent = upstream.requests[0]
    assert sent.path.endswith("/models/gemini-embedding-001:batchEmbedContents")
    assert [q["taskType"] for q in sent.json["requests"]] == ["RETRIEVAL_DOCUMENT"] * 2
    assert [q["outputDimensionality"] for q in sent.json["requests"]] == [768, 768]
    assert r.vectors == [wire.vector(1, 768), wire.vector(2, 768)] and r.dropped_params == []
    # No usage in Gemini's answer: estimated from the text, flagged, and priced at the table's input rate.
    assert r.usage.estimated and r.usage.prompt_tokens > 0
    assert r.usage.cost == Decimal(r.usage.prompt_tokens) * Decimal("0.15") / 1_000_000


async def test_rate_limits_apply_to_embedding_models() -> None:
    cfg = models(
        **{"emb-a": {"provider": "simulated", "kind": "embedding", "dimensions": 64, "rpm": 1, "simulate": instant()}}
    )
    del cfg["emb-b"]
    async with manager(models=cfg, routing={"queue_timeout_s": 0}) as llm:
        await llm.embed("one", model="emb-a", fallback=False)
        with pytest.raises(RateLimitError, match="rate limit"):
            await llm.embed("two", model="emb-a", fallback=False)
        assert len(sim(llm, "emb-a").calls_received) == 1
