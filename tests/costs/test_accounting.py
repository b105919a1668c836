"""The ledger as the manager fills it, and what the analyses and the CLI make of it."""

from __future__ import annotations

import asyncio
import json
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from llm_manager import AllCandidatesFailedError, LLMManager
from llm_manager.config import load_settings
from llm_manager.costs.analysis import recommend, replay
from llm_manager.costs.ledger import LedgerRow
from llm_manager.providers.simulated import SimulatedAdapter
from tests.helpers import instant

PRICES = {"input_price_per_mtok": "3", "output_price_per_mtok": "15"}


def settings(db: Path, **extra: Any) -> Any:
    return load_settings(
        {
            "models": {
                "primary": {"provider": "simulated", "family": "claude", "simulate": instant(latency_ms=2), **PRICES},
                "backup": {
                    "provider": "simulated",
                    "family": "gpt",
                    "simulate": instant(latency_ms=2),
                    "input_price_per_mtok": "0.15",
                    "output_price_per_mtok": "0.6",
                },
            },
            "routing": {"max_retries": 0},
            "store": {"url": f"sqlite:///{db}"},
            **extra,
        },
        env={},
    )


def sim(llm: LLMManager, name: str) -> SimulatedAdapter:
    a = llm.adapter(name)
    assert isinstance(a, SimulatedAdapter)
    return a


async def test_every_call_is_a_row_and_money_adds_up(tmp_path: Path) -> None:
    async with LLMManager(settings(tmp_path / "l.db")) as llm:
        sim(llm, "primary").push("503")
        fell_back = await llm.generate("q1", task="analysis", user="alice", project="p1")
        ok = await llm.generate("q2", task="analysis", user="bob")
        hit = await llm.generate("q2", task="analysis", user="bob")
        shared = await asyncio.gather(*(llm.generate("q3", task="analysis") for _ in range(3)))
        sim(llm, "primary").push("500")
        sim(llm, "backup").push("500")
        with pytest.raises(AllCandidatesFailedError):
            await llm.generate("q4", task="analysis")
        assert llm.ledger is not None
        await llm.ledger.flush()
        rows = await llm.ledger.rows()
        by_user = {t.key: t for t in await llm.ledger.totals("user")}
        summary = await llm.ledger.summary()
    statuses = sorted(r.status for r in rows)
    assert statuses == sorted(["error", "ok", "ok", "cached", "ok", "deduplicated", "deduplicated", "error", "error"])
    assert hit.metadata.cached and sum(r.metadata.deduplicated for r in shared) == 2
    paid = [fell_back, ok, next(r for r in shared if not r.metadata.deduplicated)]
    assert summary.cost == sum((r.usage.cost for r in paid if r.usage.cost is not None), Decimal(0))
    assert by_user["alice"].cost == fell_back.usage.cost and by_user["alice"].errors == 1
    first = next(r for r in rows if r.request_id == fell_back.id and r.attempt == 1)
    assert first.status == "error" and first.error_code == "model_unavailable" and first.cost == 0
    assert first.project == "p1" and first.task == "analysis"


async def test_a_restart_keeps_todays_budget(tmp_path: Path) -> None:
    budgets = {"budgets": [{"name": "day", "limit_usd": "0.001", "soft_limit_pct": None}]}
    db = tmp_path / "l.db"
    async with LLMManager(settings(db, **budgets)) as llm:
        for i in range(3):
            await llm.generate(f"q{i}", task="analysis", max_tokens=20)
        spent = Decimal((await llm.status())["budgets"][0]["spent_usd"])
    async with LLMManager(settings(db, **budgets)) as llm:  # a new process would start from the ledger too
        again = Decimal((await llm.status())["budgets"][0]["spent_usd"])
    assert spent > 0 and again == spent


def _row(i: int, **kw: Any) -> LedgerRow:
    base: dict[str, Any] = {
        "ts": datetime(2026, 11, 1, tzinfo=UTC) + timedelta(minutes=i),
        "request_id": f"r{i}",
        "attempt": 1,
        "deployment": "dear",
        "provider": "p",
        "model": "m",
        "status": "ok",
        "task": "analysis",
        "prompt_tokens": 100,
        "completion_tokens": 50,
        "cost": Decimal("0.01"),
        "request_key": f"k{i}",
    }
    base.update(kw)
    return LedgerRow(**base)


def test_recommend_finds_repeats_cheaper_models_and_failures() -> None:
    rows = [_row(i) for i in range(12)]
    rows += [_row(100 + i, request_key="same") for i in range(4)]
    rows += [_row(200 + i, deployment="cheap", cost=Decimal("0.001")) for i in range(12)]
    rows += [
        _row(300 + i, deployment="flaky", status="error" if i % 3 == 0 else "ok", error_code="timeout")
        for i in range(12)
    ]
    recs = recommend(rows, cache_enabled=True, cache_ttl_s=300)
    kinds = {r.kind: r for r in recs}
    assert kinds["cache"].savings_usd == Decimal("0.03") and kinds["cache"].evidence["distinct_prompts"] == 1
    cheaper = kinds["cheaper_model"]
    assert cheaper.evidence["cheaper"] == "cheap" and cheaper.evidence["dearer"] in ("dear", "flaky")
    assert any(r.kind == "failures" and "flaky" in r.title for r in recs)


def test_replay_reprices_on_the_other_configs_first_choice() -> None:
    rows = [_row(i, prompt_tokens=1_000_000, completion_tokens=1_000_000) for i in range(3)]
    other = load_settings(
        {
            "models": {
                "mini": {
                    "provider": "simulated",
                    "family": "claude",
                    "input_price_per_mtok": "1",
                    "output_price_per_mtok": "2",
                }
            }
        },
        env={},
    )
    r = replay(rows, other)
    assert r.requests == 3 and r.actual_usd == Decimal("0.03")
    assert r.estimated_usd == Decimal("9") and r.estimated_low_usd == r.estimated_high_usd == Decimal("9")
    assert r.by_task["analysis"]["model"] == "mini"


def test_cli_costs_recommend_and_replay(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from llm_manager.cli.main import cli

    cfg = tmp_path / "llm-manager.yaml"
    cfg.write_text(
        "models:\n"
        "  dear: {provider: simulated, family: claude, input_price_per_mtok: 3, output_price_per_mtok: 15}\n"
        f"store: {{url: 'sqlite:///{tmp_path}/l.db'}}\n"
        "budgets: [{name: day, limit_usd: 5}]\n"
    )
    other = tmp_path / "other.yaml"
    other.write_text(
        "models:\n  mini: {provider: simulated, family: claude, input_price_per_mtok: 0.1, "
        "output_price_per_mtok: 0.2}\n"
    )
    monkeypatch.delenv("LLM_MANAGER_CONFIG", raising=False)
    runner = CliRunner()
    for _ in range(2):
        assert runner.invoke(cli, ["--config", str(cfg), "ask", "same question", "--task", "analysis"]).exit_code == 0
    table = runner.invoke(cli, ["--config", str(cfg), "costs", "--by", "task"])
    assert table.exit_code == 0 and "spend by task" in table.stdout and "budget day" in table.stdout
    data = json.loads(runner.invoke(cli, ["--config", str(cfg), "costs", "--json", "--since", "1d"]).stdout)
    assert data["summary"]["requests"] == 2 and Decimal(data["summary"]["cost"]) > 0
    advice = runner.invoke(cli, ["--config", str(cfg), "costs", "--recommend"])
    assert "repeated an identical prompt" in advice.stdout
    what_if = runner.invoke(cli, ["--config", str(cfg), "replay", "--config", str(other)])
    assert what_if.exit_code == 0 and "on mini" in what_if.stdout
    bad = runner.invoke(cli, ["--config", str(cfg), "costs", "--since", "yesterdayish"])
    assert bad.exit_code == 2 and "since" in bad.output


async def test_an_abandoned_stream_is_billed_released_and_not_a_provider_failure(tmp_path: Path) -> None:
    slow = instant(tokens_per_s=200, reply=" ".join(["word"] * 60))
    cfg = load_settings(
        {
            "models": {"primary": {"provider": "simulated", "family": "claude", "simulate": slow, **PRICES}},
            "store": {"url": f"sqlite:///{tmp_path / 'l.db'}"},
            "budgets": [{"name": "day", "limit_usd": "10", "soft_limit_pct": None}],
        },
        env={},
    )
    async with LLMManager(cfg) as llm:
        stream = llm.stream("tell me", task="analysis", user="carol")
        got = []
        async for event in stream:
            got.append(event.delta)
            if len(got) == 5:
                break
        await stream.aclose()  # the caller walks away after five pieces
        assert len(got) == 5
        assert llm.ledger is not None
        await llm.ledger.flush()
        (row,) = await llm.ledger.rows()
        assert (row.status, row.error_code, row.deployment, row.user) == ("error", "cancelled", "primary", "carol")
        # Billed: the prompt and the five pieces it had sent, at the primary's prices.
        assert row.cost is not None and row.cost > 0
        status = (await llm.budgets.status())[0]
        assert Decimal(status["reserved_usd"]) == 0 and Decimal(status["spent_usd"]) == row.cost
        # Not the provider's fault: its breaker saw no failure, and the next request goes to it again.
        dep = (await llm.status())["deployments"]["primary"]
        assert dep["failures"] == 0 and all(b["state"] == "closed" for b in dep["breakers"].values())
        again = await llm.generate("next", task="analysis")
        assert again.deployment == "primary"


async def test_candidates_passed_over_leave_skipped_rows(tmp_path: Path) -> None:
    cfg = load_settings(
        {
            "models": {
                "tiny": {
                    "provider": "simulated",
                    "family": "gpt",
                    "context_window": 64,
                    "simulate": instant(),
                    **PRICES,
                },
                "big": {"provider": "simulated", "family": "claude", "simulate": instant(), **PRICES},
            },
            "routing": {"tasks": {"general": ["tiny", "big"], "analysis": ["tiny"]}},
            "store": {"url": f"sqlite:///{tmp_path / 'l.db'}"},
        },
        env={},
    )
    long_prompt = "word " * 400
    async with LLMManager(cfg) as llm:
        answered = await llm.generate(long_prompt)
        with pytest.raises(Exception):  # noqa: B017 - which error is the router's business; the rows are ours
            await llm.generate(long_prompt, task="analysis")
        assert llm.ledger is not None
        await llm.ledger.flush()
        rows = await llm.ledger.rows()
    mine = [(r.deployment, r.status, r.cost) for r in rows if r.request_id == answered.id]
    assert mine == [("tiny", "skipped", Decimal(0)), ("big", "ok", answered.usage.cost)]
    # Every candidate refused: the request still has its row, so it shows in totals and dashboards.
    refused = [r for r in rows if r.request_id != answered.id]
    assert [(r.deployment, r.status) for r in refused] == [("tiny", "skipped")]
    assert refused[0].error_code


async def test_answer_hands_the_response_over_before_its_bookkeeping(tmp_path: Path) -> None:
    budgets = {"budgets": [{"name": "day", "limit_usd": "10", "soft_limit_pct": None}]}
    async with LLMManager(settings(tmp_path / "l.db", **budgets)) as llm:
        request = llm.request("q", task="analysis")
        resp, settle = await llm.answer(request, request_id="req-1")
        assert llm.ledger is not None
        await llm.ledger.flush()
        assert await llm.ledger.rows() == []  # nothing booked yet: the gateway sends the answer first
        before = (await llm.budgets.status())[0]
        assert Decimal(before["reserved_usd"]) > 0 and Decimal(before["spent_usd"]) == 0
        assert not (await llm.generate("q", task="analysis")).metadata.cached  # the entry comes with settle()
        await settle()
        await llm.ledger.flush()
        rows = {r.request_id: r for r in await llm.ledger.rows()}
        assert rows["req-1"].status == "ok" and rows["req-1"].cost == resp.usage.cost
        after = (await llm.budgets.status())[0]
        assert Decimal(after["reserved_usd"]) == 0 and Decimal(after["spent_usd"]) > 0
        hit = await llm.generate("q", task="analysis")
        assert hit.metadata.cached


async def test_a_stream_closed_at_its_last_event_is_booked_as_answered(tmp_path: Path) -> None:
    async with LLMManager(settings(tmp_path / "l.db")) as llm:
        stream = llm.stream("tell me", task="analysis", request_id="req-s")
        async for event in stream:
            if event.type == "done":
                break  # not asking for the end: the bookkeeping runs when the stream is closed
        await stream.aclose()
        assert llm.ledger is not None
        await llm.ledger.flush()
        (row,) = await llm.ledger.rows()
        assert (row.request_id, row.status) == ("req-s", "ok") and row.cost == stream.response.usage.cost  # type: ignore[union-attr]
        assert (await llm.generate("tell me", task="analysis")).metadata.cached
