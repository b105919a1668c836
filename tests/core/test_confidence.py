"""``Response.confidence`` from token log probabilities: the definition, a real OpenAI-shaped upstream (whole and
streamed), the simulated models (deterministic, offline), and ``query_multiple(mode="confident")``."""

from __future__ import annotations

import json
import math
import re
from pathlib import Path
from typing import Any

import pytest
import yaml
from click.testing import CliRunner

from llm_manager import LLMManager
from llm_manager.cli.main import cli
from llm_manager.confidence import confidence_of, most_confident
from llm_manager.config import load_settings
from llm_manager.errors import AllCandidatesFailedError, ConfigError, LLMManagerError
from llm_manager.types import TokenLogprob
from tests.fakes import openai_wire
from tests.fakes.server import FakeUpstream, Reply
from tests.helpers import instant, sim_settings

TOKENS = [("The", -0.01), (" answer", -0.2), (" is", -0.05), (" 42", -1.5)]
EXPECTED = math.exp(sum(lp for _, lp in TOKENS) / len(TOKENS))


def _lp(*values: float) -> list[TokenLogprob]:
    return [TokenLogprob(token=f"t{i}", logprob=v) for i, v in enumerate(values)]


def test_the_definition() -> None:
    assert confidence_of(None) is None and confidence_of([]) is None
    assert confidence_of(_lp(0.0, 0.0)) == 1.0
    assert confidence_of(_lp(math.log(0.5), math.log(0.5))) == pytest.approx(0.5)
    assert confidence_of(_lp(math.log(0.9), math.log(0.1))) == pytest.approx(0.3)  # geometric, not arithmetic
    assert confidence_of(_lp(-0.1, -math.inf)) == 0.0  # a token of probability 0
    assert confidence_of(_lp(1e-7)) == 1.0  # a provider's rounding above 0 is still certainty
    assert confidence_of(_lp(-0.1, math.nan)) is None


def _openai(upstream: FakeUpstream, **models: dict[str, Any]) -> Any:
    common = {"provider": "openai-compatible", "base_url": upstream.url, "model": "gpt-4o"}
    return load_settings({"models": {n: {**common, **m} for n, m in models.items()} or {"gpt": common}}, env={})


async def test_confidence_from_an_upstream_that_returns_logprobs(upstream: FakeUpstream) -> None:
    upstream.push(Reply.json(openai_wire.completion("The answer is 42", logprobs=TOKENS)))
    async with LLMManager(_openai(upstream)) as llm:
        resp = await llm.generate("What is it?", logprobs=True)
    assert upstream.requests[0].json["logprobs"] is True
    assert resp.confidence == pytest.approx(EXPECTED)
    assert resp.model_dump(mode="json")["confidence"] == pytest.approx(EXPECTED)  # in --json and every dump


async def test_confidence_of_a_stream_covers_every_chunk(upstream: FakeUpstream) -> None:
    pieces = [t for t, _ in TOKENS]
    upstream.push(Reply.sse(openai_wire.stream_events(pieces, logprobs=[lp for _, lp in TOKENS])))
    async with LLMManager(_openai(upstream)) as llm:
        stream = llm.stream("What is it?", logprobs=True)
        text = await stream.text()
    assert text == "The answer is 42" and stream.response is not None
    assert stream.response.confidence == pytest.approx(EXPECTED)


async def test_no_logprobs_no_confidence_and_nothing_added_to_the_request(upstream: FakeUpstream) -> None:
    upstream.push(Reply.json(openai_wire.completion("The answer is 42")))
    async with LLMManager(_openai(upstream)) as llm:
        resp = await llm.generate("What is it?")
    assert "logprobs" not in upstream.requests[0].json  # confidence never changes what is sent unasked
    assert resp.logprobs is None and resp.confidence is None


async def test_simulated_models_give_deterministic_logprobs() -> None:
    settings = sim_settings({"a": {"family": "gpt"}, "b": {"family": "claude"}})
    seen = []
    for _ in range(2):  # two managers: the same answers, the same confidences
        async with LLMManager(settings) as llm:
            a = await llm.generate("Why is the sky blue?", model="a", logprobs=True, top_logprobs=3)
            b = await llm.generate("Why is the sky blue?", model="b", logprobs=True)
            streamed = llm.stream("Why is the sky blue?", model="a", logprobs=True)
            await streamed.text()
            plain = await llm.generate("Why is the sky blue?", model="a")
        assert streamed.response is not None
        seen.append((a.confidence, b.confidence, streamed.response.confidence))
        assert a.logprobs is not None and "".join(t.token for t in a.logprobs) == a.content
        assert all(len(t.top_logprobs) == 3 and t.top_logprobs[0].token == t.token for t in a.logprobs)
        assert plain.logprobs is None and plain.confidence is None
    (ca, cb, cs), again = seen
    assert seen[0] == again
    assert ca is not None and cb is not None and 0.55 < ca < 1 and 0.55 < cb < 1 and ca != cb
    assert cs == pytest.approx(ca)  # streamed or whole, the same answer has the same confidence


async def test_query_multiple_picks_the_most_confident_answer() -> None:
    models = {"a": {"family": "gpt"}, "b": {"family": "claude"}, "c": {"family": "llama"}}
    settings = sim_settings(models, max_retries=0)  # a pushed 500 fails its model
    async with LLMManager(settings) as llm:
        everyone = await llm.query_multiple("Explain retries", ["a", "b", "c"], logprobs=True)
        [best] = await llm.query_multiple("Explain retries", ["a", "b", "c"], mode="confident")
        ranked = [r for r in everyone if not isinstance(r, LLMManagerError)]
        assert len(ranked) == 3 and best.deployment == max(ranked, key=lambda r: r.confidence or 0).deployment
        # The best model fails: the best of the others answers.
        llm.adapter(best.deployment).push("500")  # type: ignore[attr-defined]
        survivors = [r for r in ranked if r.deployment != best.deployment]
        [second] = await llm.query_multiple("Explain retries", ["a", "b", "c"], mode="confident")
        assert second.deployment == max(survivors, key=lambda r: r.confidence or 0).deployment
        with pytest.raises(ConfigError, match="logprobs"):
            await llm.query_multiple("Explain retries", ["a", "b"], mode="confident", logprobs=False)
        for name in ("a", "b"):
            llm.adapter(name).push("500")  # type: ignore[attr-defined]
        with pytest.raises(AllCandidatesFailedError):
            await llm.query_multiple("Explain retries", ["a", "b"], mode="confident")


async def test_an_answer_without_logprobs_ranks_after_any_with_them(upstream: FakeUpstream) -> None:
    """An upstream that ignores ``logprobs`` (many local servers do) against a simulated model that returns them:
    the simulated answer wins even if it comes second, whatever its score."""
    upstream.push(Reply.json(openai_wire.completion("no logprobs here")))
    raw = {
        "models": {
            "local": {"provider": "openai-compatible", "base_url": upstream.url, "model": "llama"},
            "sim": {"provider": "simulated", "family": "gpt"},
        }
    }
    async with LLMManager(load_settings(raw, env={})) as llm:
        [best] = await llm.query_multiple("Hi", ["local", "sim"], mode="confident")
    assert best.deployment == "sim"
    assert upstream.requests[0].json["logprobs"] is True  # asked for, as documented
    assert most_confident([]) is None


def test_cli_ask_and_compare_show_confidence(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("LLM_MANAGER_STORE_URL", raising=False)
    config = tmp_path / "llm-manager.yaml"
    models = {
        n: {"provider": "simulated", "family": f, "simulate": instant()} for n, f in (("a", "gpt"), ("b", "llama"))
    }
    store = {"url": f"sqlite:///{tmp_path}/s.db"}
    config.write_text(yaml.safe_dump({"models": models, "store": store}), encoding="utf-8")
    runner = CliRunner()

    def run(*args: str) -> Any:
        return runner.invoke(cli, ["--config", str(config), *args], catch_exceptions=False)

    plain = run("ask", "Why?", "-m", "a")
    assert plain.exit_code == 0 and "confidence" not in plain.stderr
    sure = run("ask", "Why?", "-m", "a", "--confidence")
    assert sure.exit_code == 0 and re.search(r"confidence 0\.\d{3}", sure.stderr), sure.stderr
    as_json = json.loads(run("ask", "Why?", "-m", "a", "--confidence", "--json").stdout)
    assert 0.55 < as_json["confidence"] < 1 and as_json["logprobs"]
    assert f"{as_json['confidence']:.3f}" in sure.stderr
    every = json.loads(run("compare", "Why?", "-m", "a", "-m", "b", "--json").stdout)
    best = json.loads(run("compare", "Why?", "-m", "a", "-m", "b", "--most-confident", "--json").stdout)
    assert [r["confidence"] for r in every] == [None, None]  # not asked for
    [picked] = best
    assert (
        picked["confidence"] is not None
        and "confidence" in run("compare", "Why?", "-m", "a", "-m", "b", "--most-confident").stdout
    )
    both = run("compare", "Why?", "-m", "a", "-m", "b", "--first", "--most-confident")
    assert both.exit_code == 2
