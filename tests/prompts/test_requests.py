"""``max_prompt_tokens`` on requests: what the upstream receives, the report in the metadata, and the errors."""

from __future__ import annotations

from typing import Any

import pytest

from llm_manager import ConfigError, LLMManager, PromptOptimizer
from llm_manager.config import load_settings
from llm_manager.prompts.requests import FRAMING_TOKENS, shrink_request
from llm_manager.types import Message, Request
from tests.fakes import openai_wire
from tests.fakes.server import FakeUpstream, Reply

DOC = "".join(f"Line {i} of the attached log reports event number {i} on host h{i % 7}.\n" for i in range(600))


def _settings(url: str, **extra: Any) -> Any:
    model = {"provider": "openai-compatible", "base_url": f"{url}/v1", "api_key": "k", "family": "gpt"}
    return load_settings({"models": {"gpt": model}, "cache": {"enabled": False}, **extra}, env={})


def _sent_text(body: dict[str, Any]) -> str:
    return "\n".join(m["content"] for m in body["messages"])


async def test_the_upstream_receives_the_shrunk_prompt_and_the_response_reports_it() -> None:
    async with FakeUpstream() as ups:
        ups.push(Reply.json(openai_wire.completion("summary")))
        async with LLMManager(_settings(ups.url)) as llm:
            r = await llm.generate(
                "Summarise this log.\n" + DOC + "Which host failed?",
                system="You are terse.",
                max_prompt_tokens=500,
            )
    sent = ups.requests[0].json
    report = r.metadata.prompt
    assert report is not None and report.tokenizer == "o200k_base" and report.max_prompt_tokens == 500
    assert report.tokens_before > 10_000 and report.tokens_after <= 500 and report.cut == ["messages[0]"]
    opt = PromptOptimizer()
    assert report.tokens_after == sum(opt.count(m["content"]) + FRAMING_TOKENS for m in sent["messages"])
    user = sent["messages"][-1]["content"]
    assert user.startswith("Summarise this log.\nLine 0") and user.endswith("Which host failed?")
    assert "tokens) cut …]" in user
    assert sent["messages"][0] == {"role": "system", "content": "You are terse."}  # the system prompt was left alone


async def test_a_prompt_within_the_budget_is_sent_as_it_is() -> None:
    prompt = "Hello   there.\n\n\n\nHello   there."
    async with FakeUpstream() as ups:
        ups.push(Reply.json(openai_wire.completion("hi")))
        async with LLMManager(_settings(ups.url)) as llm:
            r = await llm.generate(prompt, max_prompt_tokens=1000)
    assert _sent_text(ups.requests[0].json) == prompt
    assert r.metadata.prompt is not None and r.metadata.prompt.tokens_before == r.metadata.prompt.tokens_after


async def test_streams_report_it_on_the_final_response() -> None:
    async with FakeUpstream() as ups:
        ups.push(Reply.sse(openai_wire.stream_events(["a", "b"])))
        async with LLMManager(_settings(ups.url)) as llm:
            stream = llm.stream(DOC, max_prompt_tokens=300)
            text = await stream.text()
    assert text == "ab" and stream.response is not None and stream.prompt is not None
    assert stream.response.metadata.prompt == stream.prompt and stream.prompt.tokens_after <= 300
    assert "cut …]" in _sent_text(ups.requests[0].json)


async def test_a_budget_that_cannot_be_met_is_refused_before_any_call() -> None:
    code = "```\n" + "".join(f"value_{i} = f({i})\n" for i in range(300)) + "```"
    async with FakeUpstream() as ups:
        async with LLMManager(_settings(ups.url)) as llm:
            with pytest.raises(ConfigError, match=r"max_prompt_tokens=100: .* cannot be shrunk below \d+ tokens"):
                await llm.generate(code, max_prompt_tokens=100)
            with pytest.raises(ConfigError, match="max_prompt_tokens"):
                llm.request("hi", max_prompt_tokens=0)
    assert ups.requests == []


def test_repeats_are_dropped_first_and_the_longest_text_is_cut_first_the_system_prompt_last() -> None:
    repeated = "Please double-check every figure before answering.\n" * 40
    req = Request(
        messages=[
            Message(role="user", content=repeated + "What is the total?"),
            Message(role="assistant", content="Which figures?"),
            Message(role="user", content=DOC),
        ],
        system="Rules: " + DOC[:3000],
        max_prompt_tokens=900,
    )
    shrunk, report = shrink_request(req)
    assert report is not None and report.tokens_after <= 900 and report.duplicates_removed == 39
    assert report.cut[0] == "messages[2]" and shrunk.messages[1].content == "Which figures?"
    assert shrunk.messages[0].content == "Please double-check every figure before answering.\nWhat is the total?"
    assert report.cut == ["messages[2]"] or report.cut[-1] == "system"
    unchanged, none = shrink_request(req.model_copy(update={"max_prompt_tokens": None}))
    assert none is None and unchanged is not None


def test_text_parts_are_shrunk_and_other_parts_kept() -> None:
    from llm_manager.types import ImagePart, TextPart

    image = ImagePart(url="https://example.invalid/chart.png")
    req = Request(
        messages=[Message(role="user", content=(TextPart(text="Explain the chart.\n" + DOC), image))],
        max_prompt_tokens=300,
    )
    shrunk, report = shrink_request(req)
    text, kept = shrunk.messages[0].content
    assert report is not None and report.cut == ["messages[0].content[0]"] and report.tokens_after <= 300
    assert kept == image and isinstance(text, TextPart) and text.text.startswith("Explain the chart.\nLine 0")
