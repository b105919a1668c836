"""query_with_schema / stream_with_schema / query_multiple through the manager."""

from __future__ import annotations

import asyncio
from decimal import Decimal
from typing import Literal

import pytest
from pydantic import BaseModel

from llm_manager import AllCandidatesFailedError, ExtractionError, LLMManager, ProviderTimeoutError
from llm_manager.providers.simulated import SimulatedAdapter
from tests.helpers import sim_settings


class Anomaly(BaseModel):
    service: str
    severity: Literal["low", "medium", "high", "critical"]
    description: str
    recommendation: str


class Report(BaseModel):
    anomalies: list[Anomaly]


def sim(llm: LLMManager, name: str) -> SimulatedAdapter:
    a = llm.adapter(name)
    assert isinstance(a, SimulatedAdapter)
    return a


def one(**simulate: object) -> object:
    return sim_settings(
        {"m": {"family": "gpt", "simulate": dict(simulate), "input_price_per_mtok": 1, "output_price_per_mtok": 2}}
    )


GOOD = '{"service": "checkout", "severity": "high", "description": "p99 x3", "recommendation": "roll back"}'


async def test_native_structured_output_validates() -> None:
    async with LLMManager(one()) as llm:
        report = await llm.query_with_schema("Analyze this trace", Report, task="analysis")
        req = sim(llm, "m").requests[-1]
    assert isinstance(report, Report) and report.anomalies
    assert req.response_format is not None and req.response_format.name == "Report"
    assert req.response_format.json_schema["title"] == "Report"


async def test_reask_sends_the_errors_back_until_valid() -> None:
    async with LLMManager(one()) as llm:
        sim(llm, "m").reply_with(
            "Sure! Here it is: no json at all",
            '```json\n{"service": "checkout", "severity": "urgent"}\n```',
            f"Here you go:\n```json\n{GOOD}\n```",
        )
        result = await llm.query_with_schema("Analyze", Anomaly, full=True)
        sent = list(sim(llm, "m").requests)
    assert result.value == Anomaly.model_validate_json(GOOD)
    assert len(result.tries) == 2 and result.response.content.endswith("```")
    assert result.usage.total_tokens > result.response.usage.total_tokens  # the failed tries count too
    # The second re-ask shows the model its previous answer and what was wrong with it.
    last = sent[-1].messages
    assert [m.role for m in last] == ["user", "assistant", "user", "assistant", "user"]
    assert "severity" in last[-1].content and "urgent" in last[-2].content
    assert all(r.cache is False for r in sent[1:])


async def test_extraction_error_after_the_last_reask_carries_every_try() -> None:
    async with LLMManager(one()) as llm:
        sim(llm, "m").reply_with("nope", "still nope", "never")
        with pytest.raises(ExtractionError) as ei:
            await llm.query_with_schema("Analyze", Anomaly, max_reasks=2)
    err = ei.value
    assert len(err.tries) == 3 and err.response == "never" and err.code == "extraction_failed"
    assert err.usage is not None and err.usage.total_tokens > 0 and err.usage.cost is not None
    assert all(t["errors"] for t in err.tries)


async def test_reask_budget_stops_early() -> None:
    async with LLMManager(one()) as llm:
        sim(llm, "m").reply_with("nope " * 50, "nope", "nope")
        with pytest.raises(ExtractionError) as ei:
            await llm.query_with_schema("Analyze", Anomaly, max_reasks=5, budget_tokens=60)
        calls = sim(llm, "m").calls
    assert len(ei.value.tries) == 1 and calls == 1


async def test_reask_budget_in_money() -> None:
    async with LLMManager(one()) as llm:
        sim(llm, "m").reply_with("nope", "nope", "nope")
        with pytest.raises(ExtractionError) as ei:
            await llm.query_with_schema("Analyze", Anomaly, max_reasks=5, budget_usd=Decimal("0.00000001"))
    assert len(ei.value.tries) == 1


async def test_seed_examples_through_the_manager() -> None:
    class Status(BaseModel):
        status: str
        data: list[int]

    async with LLMManager(one()) as llm:
        sim(llm, "m").reply_with('{"status": "success", "data": [1, 2,')
        value = await llm.query_with_schema("x", Status)
    assert value == Status(status="success", data=[1, 2])


async def test_json_schema_target_returns_a_dict() -> None:
    schema = {
        "type": "object",
        "properties": {"ok": {"type": "boolean"}, "n": {"type": "integer"}},
        "required": ["ok", "n"],
    }
    async with LLMManager(one()) as llm:
        value = await llm.query_with_schema("x", schema)
    assert isinstance(value, dict) and set(value) == {"ok", "n"}


async def test_stream_with_schema_yields_partials_then_the_validated_value() -> None:
    async with LLMManager(one(tokens_per_s=1e9)) as llm:
        sim(llm, "m").reply_with(GOOD[:1] + " " + GOOD[1:])  # the simulated stream splits on spaces
        items = [item async for item in llm.stream_with_schema("Analyze", Anomaly)]
    assert isinstance(items[-1], Anomaly) and items[-1] == Anomaly.model_validate_json(GOOD)
    assert len(items) > 2  # partial objects arrived before the end
    assert getattr(items[0], "service", None) in (None, "checkout")


async def test_stream_with_schema_falls_back_to_reask_when_the_stream_is_invalid() -> None:
    async with LLMManager(one()) as llm:
        sim(llm, "m").reply_with("I cannot do JSON today", GOOD)
        items = [item async for item in llm.stream_with_schema("Analyze", Anomaly)]
    assert items[-1] == Anomaly.model_validate_json(GOOD)


def test_sync_facade_structured() -> None:
    with LLMManager.sync_from_config(one()) as llm:
        assert isinstance(llm.query_with_schema("x", Report), Report)
        assert isinstance(list(llm.stream_with_schema("x", Report))[-1], Report)


# -- query_multiple ------------------------------------------------------------------------------------------------


def trio() -> object:
    return sim_settings(
        {
            "good": {"family": "gpt"},
            "failing": {"family": "claude"},
            "hanging": {"family": "gemini"},
        },
        max_retries=0,
    )


async def test_query_multiple_all_keeps_order_and_isolates_failures() -> None:
    async with LLMManager(trio()) as llm:
        sim(llm, "failing").push("500")
        sim(llm, "hanging").push("timeout")
        results = await llm.query_multiple("q", ["hanging", "good", "failing"], timeout_s=0.2)
    hanging, good, failing = results
    assert isinstance(hanging, ProviderTimeoutError) and hanging.deployment == "hanging"
    assert not isinstance(good, Exception) and good.deployment == "good"
    assert isinstance(failing, AllCandidatesFailedError)


async def test_query_multiple_never_falls_back() -> None:
    async with LLMManager(trio()) as llm:
        sim(llm, "failing").push("500")
        await llm.query_multiple("q", ["failing"])
        assert sim(llm, "good").calls == 0


async def test_query_multiple_first_returns_the_first_success_and_cancels_the_rest() -> None:
    settings = sim_settings(
        {
            "slow": {"family": "gpt", "simulate": {"latency_ms": 3000}},
            "fast": {"family": "claude", "simulate": {"latency_ms": 5}},
        }
    )
    async with LLMManager(settings) as llm:
        loop = asyncio.get_running_loop()
        t0 = loop.time()
        results = await llm.query_multiple("q", ["slow", "fast"], mode="first")
        took = loop.time() - t0
    assert len(results) == 1 and not isinstance(results[0], Exception) and results[0].deployment == "fast"
    assert took < 1.0


async def test_query_multiple_first_with_every_model_failing() -> None:
    async with LLMManager(trio()) as llm:
        for m in ("good", "failing"):
            sim(llm, m).push("500")
        with pytest.raises(AllCandidatesFailedError):
            await llm.query_multiple("q", ["good", "failing"], mode="first")


async def test_query_multiple_unknown_model_fails_before_any_call() -> None:
    from llm_manager import ConfigError

    async with LLMManager(trio()) as llm:
        with pytest.raises(ConfigError):
            await llm.query_multiple("q", ["good", "nope"])
        assert sim(llm, "good").calls == 0
