"""The gateway's ledger against bad labels: a ``user`` or ``project`` too long for the ledger's index is a 400 naming
it, and a row the store refuses anyway (here, a trigger of the store itself) never stops the ledger or the admin
API, on SQLite and PostgreSQL."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import nullcontext
from pathlib import Path

import anthropic
import httpx
import openai
import pytest

from llm_manager import ConfigError, LLMManager
from llm_manager.config import load_settings
from llm_manager.types import LABEL_MAX_CHARS
from tests.costs.test_dead_letters import refuse_user
from tests.costs.test_ledger import wait_for
from tests.helpers import instant, sim_settings
from tests.server.conftest import MODELS, Gateway, start_gateway
from tests.store.conftest import pg_schema

TOO_LONG = "u" * (LABEL_MAX_CHARS + 1)
HELLO = [{"role": "user", "content": "hello"}]


def test_a_user_or_project_past_the_bound_is_a_400_naming_it(gateway: Gateway) -> None:
    client = openai.OpenAI(base_url=f"{gateway.url}/v1", api_key="x", max_retries=0)
    cases = [
        ({"user": TOO_LONG}, "user"),
        ({"extra_headers": {"x-llm-user": TOO_LONG}}, "x-llm-user"),
        ({"extra_headers": {"x-llm-project": "p" * 5000}}, "x-llm-project"),
    ]
    for kwargs, param in cases:
        with pytest.raises(openai.BadRequestError) as ei:
            client.chat.completions.create(model="gpt", messages=HELLO, **kwargs)  # type: ignore[call-overload]
        error = ei.value.body
        assert isinstance(error, dict) and error["param"] == param, error
        assert f"at most {LABEL_MAX_CHARS}" in error["message"] and "ledger" in error["message"]
    # Exactly at the bound is fine.
    ok = client.chat.completions.create(model="gpt", messages=HELLO, user="u" * LABEL_MAX_CHARS)  # type: ignore[arg-type]
    assert ok.choices[0].message.content
    with anthropic.Anthropic(base_url=gateway.url, api_key="x", max_retries=0, timeout=10) as c:
        with pytest.raises(anthropic.BadRequestError, match=r"user is 257 characters long"):
            c.messages.create(model="gpt", max_tokens=20, messages=HELLO, metadata={"user_id": TOO_LONG})  # type: ignore[arg-type]


async def test_the_library_refuses_them_too() -> None:
    async with LLMManager(sim_settings({"gpt": {"family": "gpt"}})) as llm:
        with pytest.raises(ConfigError, match=r"user is 257 characters long; at most 256"):
            await llm.generate("hi", user=TOO_LONG)
        with pytest.raises(ConfigError, match=r"project is 300 characters long"):
            await llm.generate("hi", project="p" * 300)
        with pytest.raises(ConfigError, match=r"request_id is 257 characters long"):
            await llm.generate("hi", request_id=TOO_LONG)
        with pytest.raises(ConfigError, match=r"request_id is 257"):
            llm.stream("hi", request_id=TOO_LONG)
        assert (await llm.generate("hi", user="u" * 256, project="p" * 256)).content


@pytest.fixture(params=["sqlite", "postgres"])
def store_gateway(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Gateway]:
    sqlite = nullcontext(f"sqlite:///{tmp_path / 'store.db'}")
    with pg_schema() if request.param == "postgres" else sqlite as url:
        models = {n: {"provider": "simulated", "simulate": instant(), **m} for n, m in MODELS.items()}
        settings = load_settings(
            {"models": models, "store": {"url": url}, "ledger": {"flush_interval_s": 0.05}}, env={}
        )
        yield from start_gateway(settings)


def test_a_row_the_store_refuses_stops_neither_the_ledger_nor_the_admin_api(store_gateway: Gateway) -> None:
    gw = store_gateway

    async def install(llm: LLMManager) -> None:
        await refuse_user(await llm.database(), "poison")

    gw.run(install)
    client = openai.OpenAI(base_url=f"{gw.url}/v1", api_key="x", max_retries=0)
    client.chat.completions.create(model="gpt", messages=HELLO, user="poison")  # answered; its row is refused
    for i in range(50):
        client.chat.completions.create(model="gpt", messages=[{"role": "user", "content": f"q{i}"}])

    async def settled(llm: LLMManager) -> None:
        assert llm.ledger is not None
        await wait_for(lambda: llm.ledger is not None and llm.ledger.written == 50 and llm.ledger.pending == 0)

    gw.run(settled)
    costs = httpx.get(f"{gw.url}/admin/costs", params={"by": "user"})
    assert costs.status_code == 200 and costs.json()["summary"]["requests"] == 50
    requests = httpx.get(f"{gw.url}/admin/requests", params={"limit": 5})
    assert requests.status_code == 200 and requests.json()["total"] == 50
    series = httpx.get(f"{gw.url}/admin/timeseries")
    assert series.status_code == 200
    ledger = httpx.get(f"{gw.url}/admin/status").json()["ledger"]
    assert ledger["written"] == 50 and ledger["dead_lettered"] == 1 and ledger["pending"] == 0
    metrics = httpx.get(f"{gw.url}/metrics").text
    assert 'llm_manager_ledger_rows_total{outcome="dead_lettered"} 1.0' in metrics
    assert 'llm_manager_ledger_rows_total{outcome="written"} 50.0' in metrics
