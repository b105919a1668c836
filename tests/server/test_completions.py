"""``POST /v1/completions`` (the legacy text completions) through the official ``openai`` SDK: answered by chat
models, routed like chat, streamed in the ``text_completion`` chunk shape, and every field it cannot honour named in
``x-llm-dropped-params``."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import ExitStack
from typing import Any

import httpx
import openai
import pytest
from openai.types import Completion

from llm_manager.config import load_settings
from llm_manager.manager import LLMManager
from llm_manager.server.keys import create_key
from tests.fakes import openai_wire
from tests.fakes.server import FakeUpstream, Reply, serve_in_thread
from tests.server.conftest import Gateway, start_gateway


@pytest.fixture
def client(gateway: Gateway) -> Iterator[openai.OpenAI]:
    with openai.OpenAI(base_url=f"{gateway.url}/v1", api_key="x", max_retries=0, timeout=10) as c:
        yield c


def _sent(gateway: Gateway, name: str = "gpt") -> Any:
    """The canonical request the deployment ``name`` last received."""
    return gateway.llm.adapter(name).requests[-1]  # type: ignore[attr-defined]


def test_a_prompt_is_answered_as_a_text_completion(client: openai.OpenAI, gateway: Gateway) -> None:
    raw = client.completions.with_raw_response.create(
        model="gpt", prompt="Say hello", max_tokens=40, temperature=0.2, top_p=0.9, stop="\n\n", seed=7
    )
    done = raw.parse()
    assert done.object == "text_completion" and done.id.startswith("cmpl-")
    (choice,) = done.choices
    assert choice.text.startswith("[simulated gpt]") and choice.index == 0
    assert choice.finish_reason == "stop" and choice.logprobs is None
    assert done.usage is not None and done.usage.total_tokens == done.usage.prompt_tokens + done.usage.completion_tokens
    assert raw.headers["x-llm-model"] == "gpt" and raw.headers["x-request-id"].removeprefix("req_") in done.id
    assert "x-llm-dropped-params" not in raw.headers
    sent = _sent(gateway)
    assert [(m.role, m.content) for m in sent.messages] == [("user", "Say hello")]
    assert (sent.max_tokens, sent.temperature, sent.top_p, sent.stop, sent.seed) == (40, 0.2, 0.9, ["\n\n"], 7)


def test_routed_like_chat_by_alias_and_task(client: openai.OpenAI, gateway: Gateway) -> None:
    aliased = client.completions.with_raw_response.create(model="smart", prompt=["one prompt in a list"])
    assert aliased.headers["x-llm-model"] == "claude"
    assert _sent(gateway, "claude").messages[0].content == "one prompt in a list"
    tasked = client.completions.with_raw_response.create(model="task:analysis", prompt="x")
    assert tasked.headers["x-llm-model"] in ("claude", "gpt") and _sent(gateway, tasked.headers["x-llm-model"]).task


def test_echo_puts_the_prompt_before_the_answer(client: openai.OpenAI) -> None:
    done = client.completions.create(model="gpt", prompt="Once upon a time", echo=True)
    assert done.choices[0].text.startswith("Once upon a time[simulated gpt]")


def test_a_stream_has_the_legacy_chunk_shape_and_usage(client: openai.OpenAI, gateway: Gateway) -> None:
    whole = client.completions.create(model="gpt", prompt="Tell me a story")
    chunks = list(
        client.completions.create(
            model="gpt", prompt="Tell me a story", echo=True, stream=True, stream_options={"include_usage": True}
        )
    )
    assert all(isinstance(c, Completion) and c.object == "text_completion" for c in chunks)
    assert len({c.id for c in chunks}) == 1 and chunks[0].id.startswith("cmpl-")
    text = "".join(c.choices[0].text for c in chunks if c.choices)
    assert text == "Tell me a story" + whole.choices[0].text
    finishes = [c.choices[0].finish_reason for c in chunks if c.choices]
    assert finishes[-1] == "stop" and set(finishes[:-1]) == {None}
    assert chunks[-1].choices == [] and chunks[-1].usage is not None and chunks[-1].usage.completion_tokens > 0


def test_a_raw_stream_ends_with_done(gateway: Gateway) -> None:
    body = {"model": "gpt", "prompt": "hi", "stream": True}
    with httpx.stream("POST", f"{gateway.url}/v1/completions", json=body, timeout=10) as r:
        text = r.read().decode()
    assert r.headers["content-type"].startswith("text/event-stream") and r.headers["x-llm-model"] == "gpt"
    assert text.endswith("data: [DONE]\n\n") and '"object":"text_completion"' in text


def test_what_cannot_be_honoured_is_named_never_dropped_silently(client: openai.OpenAI) -> None:
    raw = client.completions.with_raw_response.create(
        model="gpt",
        prompt="x",
        best_of=3,
        suffix="the end",
        logit_bias={"50256": -100},  # OpenAI's token ids: a simulated model cannot take them
        extra_body={"no_such_field": 1},
    )
    assert raw.parse().choices[0].text
    dropped = raw.headers["x-llm-dropped-params"].split(",")
    assert dropped == ["best_of", "suffix", "no_such_field", "logit_bias"]
    # best_of 1 and an empty suffix ask for nothing extra.
    plain = client.completions.with_raw_response.create(model="gpt", prompt="x", best_of=1, suffix="")
    assert "x-llm-dropped-params" not in plain.headers


def test_a_stream_names_what_it_drops_in_its_headers(gateway: Gateway) -> None:
    body = {"model": "gpt", "prompt": "hi", "stream": True, "logprobs": 2, "logit_bias": {"1": 5}}
    with httpx.stream("POST", f"{gateway.url}/v1/completions", json=body, timeout=10) as r:
        r.read()
    assert r.headers["x-llm-dropped-params"] == "logprobs,logit_bias"


@pytest.mark.parametrize(
    ("body", "param"),
    [
        ({"model": "gpt", "prompt": "x", "n": 0}, "n"),
        ({"model": "gpt", "prompt": []}, "prompt"),
        ({"model": "gpt", "prompt": [1, 2, 3]}, "prompt"),
        ({"model": "gpt"}, "prompt"),
        ({"model": "gpt", "prompt": "x", "max_tokens": "9"}, "max_tokens"),
        ({"model": "gpt", "prompt": "x", "logprobs": 6}, "logprobs"),
        ({"model": "gpt", "prompt": "x", "echo": "yes"}, "echo"),
        ({"prompt": "x"}, "model"),
    ],
)
def test_bad_bodies_are_400s_naming_the_field(client: openai.OpenAI, body: dict[str, Any], param: str) -> None:
    with pytest.raises(openai.BadRequestError) as info:
        client.post("/completions", cast_to=Completion, body=body)
    assert info.value.param == param


def test_an_unknown_model_is_a_404(client: openai.OpenAI) -> None:
    with pytest.raises(openai.NotFoundError) as info:
        client.completions.create(model="nope", prompt="x")
    assert info.value.code == "model_not_found"


def test_keys_and_the_ledger_apply(gateway: Gateway) -> None:
    async def make(llm: LLMManager) -> tuple[str, str]:
        return await create_key(await llm.database(), "legacy", models=["gpt"])

    key_id, secret = gateway.run(make)
    with openai.OpenAI(base_url=f"{gateway.url}/v1", api_key=secret, max_retries=0, timeout=10) as keyed:
        raw = keyed.completions.with_raw_response.create(model="gpt", prompt="x")
        with pytest.raises(openai.PermissionDeniedError):
            keyed.completions.create(model="claude", prompt="x")
    with pytest.raises(openai.AuthenticationError):
        openai.OpenAI(base_url=f"{gateway.url}/v1", api_key="no", max_retries=0).completions.create(
            model="gpt", prompt="x"
        )

    async def rows(llm: LLMManager) -> list[Any]:
        assert llm.ledger is not None
        await llm.ledger.flush()
        return await llm.ledger.rows()

    found = [r for r in gateway.run(rows) if r.request_id == raw.headers["x-request-id"]]
    assert found and all(r.api_key_id == key_id and r.deployment == "gpt" for r in found)


# -- against a fake OpenAI upstream: what reaches the wire, and log probabilities ----------------------------------


@pytest.fixture
def upstream() -> Iterator[tuple[Gateway, FakeUpstream]]:
    with ExitStack() as stack:
        up = stack.enter_context(serve_in_thread(FakeUpstream()))
        settings = load_settings(
            {
                "models": {
                    "gpt": {
                        "provider": "openai-compatible",
                        "base_url": f"{up.url}/v1",
                        "model": "gpt-4o",
                        "api_key": "sk-up",
                    }
                },
                "routing": {"max_retries": 0},
                "cache": {"enabled": False},
            },
            env={},
        )
        gen = start_gateway(settings)
        gw = next(gen)
        stack.callback(gen.close)
        yield gw, up


def _with_logprobs(text_tokens: list[tuple[str, float]]) -> dict[str, Any]:
    body = openai_wire.completion("".join(t for t, _ in text_tokens))
    body["choices"][0]["logprobs"] = {
        "content": [
            {
                "token": t,
                "logprob": lp,
                "bytes": list(t.encode()),
                "top_logprobs": [{"token": t, "logprob": lp, "bytes": list(t.encode())}],
            }
            for t, lp in text_tokens
        ],
        "refusal": None,
    }
    return body


def test_logprobs_and_logit_bias_reach_an_openai_deployment(upstream: tuple[Gateway, FakeUpstream]) -> None:
    gw, up = upstream
    up.push(Reply.json(_with_logprobs([("Hel", -0.1), ("lo", -0.5)])))
    with openai.OpenAI(base_url=f"{gw.url}/v1", api_key="x", max_retries=0, timeout=10) as c:
        raw = c.completions.with_raw_response.create(
            model="gpt", prompt="Hi: ", echo=True, logprobs=1, logit_bias={"50256": -100}, max_tokens=5
        )
    done = raw.parse()
    assert "x-llm-dropped-params" not in raw.headers
    sent = up.requests[-1].json
    assert sent["messages"] == [{"role": "user", "content": "Hi: "}]
    assert (sent["logprobs"], sent["top_logprobs"], sent["logit_bias"]) == (True, 1, {"50256": -100})
    choice = done.choices[0]
    assert choice.text == "Hi: Hello"
    assert choice.logprobs is not None
    assert choice.logprobs.tokens == ["Hel", "lo"] and choice.logprobs.token_logprobs == [-0.1, -0.5]
    assert choice.logprobs.text_offset == [4, 7]  # after the echoed prompt
    assert choice.logprobs.top_logprobs == [{"Hel": -0.1}, {"lo": -0.5}]
