"""Several choices in one request — chat's ``n``, the legacy completions' ``n`` and prompt lists — through the
official ``openai`` SDK: each choice a call of its own (the cache on: copies of one prompt are still separate
calls), one body with the choices in order and the usage summed, and the headers covering every choice."""

from __future__ import annotations

import time
from collections.abc import Iterator
from decimal import Decimal
from typing import Any

import openai
import pytest

from llm_manager.server.keys import create_key
from tests.helpers import sim_settings
from tests.server.conftest import MODELS, Gateway, start_gateway

ASK: Any = [{"role": "user", "content": "Name a colour"}]


@pytest.fixture
def cached_gateway() -> Iterator[Gateway]:
    """The gateway's models, priced, with the response cache on."""
    priced = {k: {**v, "input_price_per_mtok": 1, "output_price_per_mtok": 2} for k, v in MODELS.items()}
    yield from start_gateway(sim_settings(priced, cache={"enabled": True}))


@pytest.fixture
def client(cached_gateway: Gateway) -> Iterator[openai.OpenAI]:
    with openai.OpenAI(base_url=f"{cached_gateway.url}/v1", api_key="x", max_retries=0, timeout=10) as c:
        yield c


def _calls(gateway: Gateway, name: str = "gpt") -> int:
    return len(gateway.llm.adapter(name).requests)  # type: ignore[attr-defined]


def test_chat_n_is_n_calls_in_one_answer(client: openai.OpenAI, cached_gateway: Gateway) -> None:
    alone = client.chat.completions.with_raw_response.create(
        model="gpt", messages=ASK, extra_headers={"x-llm-cache": "no-store"}
    )
    one = alone.parse()
    before = _calls(cached_gateway)
    raw = client.chat.completions.with_raw_response.create(model="gpt", messages=ASK, n=3)
    done = raw.parse()
    assert [c.index for c in done.choices] == [0, 1, 2]
    assert all(c.message.content and c.finish_reason == "stop" for c in done.choices)
    assert _calls(cached_gateway) - before == 3  # the first choice is cached now; its copies were not shared
    assert done.usage is not None and one.usage is not None
    assert done.usage.completion_tokens == 3 * one.usage.completion_tokens
    assert done.usage.total_tokens == done.usage.prompt_tokens + done.usage.completion_tokens
    assert raw.headers["x-llm-model"] == "gpt" and raw.headers["x-llm-attempts"] == "3"
    assert Decimal(raw.headers["x-llm-cost"]) == 3 * Decimal(alone.headers["x-llm-cost"]) > 0
    assert raw.headers["x-request-id"].removeprefix("req_") in done.id
    again = client.chat.completions.with_raw_response.create(model="gpt", messages=ASK, n=2)
    assert _calls(cached_gateway) - before == 4  # the first choice from the cache, its copy called
    assert "x-llm-cache" not in again.headers  # a header the choices disagree on (hit, miss) is left out


def test_prompt_lists_and_n_answer_each_prompt_in_order(client: openai.OpenAI, cached_gateway: Gateway) -> None:
    before = _calls(cached_gateway)
    done = client.completions.create(model="gpt", prompt=["First: ", "Second: "], n=2, echo=True, max_tokens=20)
    assert [c.index for c in done.choices] == [0, 1, 2, 3]
    assert [c.text.split("[simulated")[0] for c in done.choices] == ["First: ", "First: ", "Second: ", "Second: "]
    assert _calls(cached_gateway) - before == 4
    sent = [r.messages[0].content for r in list(cached_gateway.llm.adapter("gpt").requests)[-4:]]  # type: ignore[attr-defined]
    assert sorted(sent) == ["First: ", "First: ", "Second: ", "Second: "]
    assert done.usage is not None and done.usage.total_tokens > 0


def test_a_failed_choice_stops_the_others(client: openai.OpenAI, cached_gateway: Gateway) -> None:
    cached_gateway.script("gpt", "400", "timeout", "timeout")
    t0 = time.monotonic()
    with pytest.raises(openai.BadRequestError) as info:
        client.chat.completions.create(model="gpt", messages=ASK, n=3, extra_headers={"x-llm-cache": "no-store"})
    assert "simulated invalid request" in info.value.message
    assert time.monotonic() - t0 < 5  # the two that never answer were stopped, not waited for


def test_what_was_answered_counts_on_the_key_when_a_choice_fails(
    client: openai.OpenAI, cached_gateway: Gateway
) -> None:
    alone = client.chat.completions.create(model="gpt", messages=ASK, extra_headers={"x-llm-cache": "no-store"})
    assert alone.usage is not None
    used = alone.usage.total_tokens  # what the same prompt costs (the simulated answer is deterministic)
    tpm = used + 20
    key_id, secret = cached_gateway.run(lambda llm: _key(llm, tpm))
    cached_gateway.script("gpt", "ok", "timeout")  # the second choice outlives the request's 1 s deadline
    with openai.OpenAI(base_url=f"{cached_gateway.url}/v1", api_key=secret, max_retries=0, timeout=30) as c:
        with pytest.raises(openai.APIStatusError):
            c.chat.completions.create(
                model="gpt", messages=ASK, n=2, extra_headers={"x-llm-cache": "no-store", "x-llm-timeout": "1"}
            )
    _rpm, left = cached_gateway.run(
        lambda llm: llm.state.limit_view(f"gatewaykey:{key_id}", time.time(), rpm=None, tpm=tpm)
    )
    # The answered choice's tokens are charged (not refunded as if nothing was used); a few seconds refill ~1 each.
    assert left is not None and left < tpm - used / 2


async def _key(llm: Any, tpm: int) -> tuple[str, str]:
    return await create_key(await llm.database(), "choices", tpm=tpm)


def test_copies_of_a_seeded_prompt_get_seeds_of_their_own(client: openai.OpenAI, cached_gateway: Gateway) -> None:
    client.chat.completions.create(model="gpt", messages=ASK, n=3, seed=7)
    sent = list(cached_gateway.llm.adapter("gpt").requests)[-3:]  # type: ignore[attr-defined]
    assert sorted(r.seed for r in sent) == [7, 8, 9]


@pytest.mark.parametrize(
    ("route", "body", "param"),
    [
        ("/chat/completions", {"model": "gpt", "messages": ASK, "n": 2, "stream": True}, "n"),
        ("/chat/completions", {"model": "gpt", "messages": ASK, "n": 0}, "n"),
        ("/chat/completions", {"model": "gpt", "messages": ASK, "n": 129}, "n"),
        ("/completions", {"model": "gpt", "prompt": ["a", "b"], "stream": True}, "prompt"),
        ("/completions", {"model": "gpt", "prompt": "a", "n": 2, "stream": True}, "n"),
        ("/completions", {"model": "gpt", "prompt": "a", "n": 0}, "n"),
        ("/completions", {"model": "gpt", "prompt": ["a"] * 65, "n": 2}, "n"),
    ],
)
def test_what_cannot_be_served_is_a_400_naming_the_field(
    client: openai.OpenAI, route: str, body: dict[str, Any], param: str
) -> None:
    with pytest.raises(openai.BadRequestError) as info:
        client.post(route, cast_to=object, body=body)
    assert info.value.param == param
