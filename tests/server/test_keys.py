"""Gateway keys: the store functions, the gateway's checks through the openai SDK, and ``llm-manager keys``."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from decimal import Decimal
from pathlib import Path
from typing import Any

import httpx
import openai
import pytest
import yaml
from click.testing import CliRunner
from openai.types.chat import ChatCompletionMessageParam

from llm_manager.cli.keys_cmd import keys_group
from llm_manager.cli.main import _Ctx
from llm_manager.manager import LLMManager
from llm_manager.server import keys
from llm_manager.server.keys import KeyInfo, create_key, hash_secret, list_keys, revoke_key, verify
from llm_manager.store import Database, open_database
from tests.helpers import sim_settings
from tests.server.conftest import MODELS, Gateway, start_gateway

HI: list[ChatCompletionMessageParam] = [{"role": "user", "content": "hello there"}]


# -- the store functions ----------------------------------------------------------------------------------------


@pytest.fixture
async def db(tmp_path: Path) -> AsyncIterator[Database]:
    database = await open_database(f"sqlite:///{tmp_path}/k.db")
    yield database
    await database.aclose()


async def test_create_verify_list_revoke(db: Database) -> None:
    assert not await keys.any_active(db)
    key_id, secret = await create_key(db, "ci", models=["gpt", "fast"], rpm=5, admin=True)
    assert key_id.startswith("gk_") and len(key_id) == 11
    assert secret.startswith("llmm-") and len(secret) == 5 + 32
    assert await keys.any_active(db)

    info = await verify(db, secret)
    assert isinstance(info, KeyInfo)
    assert (info.id, info.name, info.models, info.rpm, info.admin) == (key_id, "ci", ("gpt", "fast"), 5, True)
    assert info.allows("fast") and not info.allows("claude")
    assert await verify(db, secret + "x") is None
    assert await verify(db, "sk-whatever") is None

    other_id, _ = await create_key(db, "dev")
    listed = await list_keys(db)
    assert [k.id for k in listed] == [key_id, other_id]
    assert listed[1].models is None and listed[1].rpm is None and not listed[1].admin
    assert listed[1].allows("anything")

    assert await revoke_key(db, key_id)
    assert not await revoke_key(db, key_id)  # already revoked
    assert not await revoke_key(db, "gk_nothere")
    assert await verify(db, secret) is None  # at once, despite the cache
    revoked = (await list_keys(db))[0]
    assert revoked.revoked and revoked.revoked_at is not None
    assert await keys.any_active(db)  # "dev" is still active
    assert await revoke_key(db, other_id)
    assert not await keys.any_active(db)


async def test_only_the_hash_is_stored(db: Database) -> None:
    _, secret = await create_key(db, "ci")
    async with db.transaction(False) as session:
        rows = await session.fetchall("SELECT * FROM llm_manager_gateway_keys")
    flat = " ".join(str(v) for v in rows[0])
    assert secret not in flat and secret[5:] not in flat
    assert hash_secret(secret) in flat


async def test_verify_is_served_from_the_cache(db: Database, monkeypatch: pytest.MonkeyPatch) -> None:
    _, secret = await create_key(db, "ci")
    assert await verify(db, secret) is not None
    assert await keys.any_active(db)

    class Broken(Exception):
        pass

    def refuse(_: bool) -> Any:
        raise Broken

    monkeypatch.setattr(db, "transaction", refuse)
    assert await verify(db, secret) is not None  # no database round trip
    assert await keys.any_active(db)
    monkeypatch.undo()


async def _until(check: Callable[[], Awaitable[bool]], within_s: float) -> float:
    """Seconds until ``check()`` holds; fails past ``within_s``."""
    t0 = time.monotonic()
    while not await check():
        assert time.monotonic() - t0 < within_s, f"not within {within_s}s"
        await asyncio.sleep(0.01)
    return time.monotonic() - t0


async def test_changes_made_by_another_process_arrive_within_the_check_interval(tmp_path: Path) -> None:
    """Two Database objects on one file stand for two processes: the CLI (``a``) and a running gateway (``b``),
    whose verdicts are cached. Each change reaches ``b`` within CHECK_INTERVAL_S (slack for a loaded machine)."""
    url = f"sqlite:///{tmp_path}/k.db"
    a, b = await open_database(url), await open_database(url)
    try:
        assert not await keys.any_active(b)  # "open" is cached in b
        key_id, secret = await create_key(a, "ci")
        other_id, other = await create_key(a, "other")
        bound = keys.CHECK_INTERVAL_S + 1.0
        assert await _until(lambda: keys.any_active(b), bound) <= bound
        assert await verify(b, secret) is not None and await verify(b, other) is not None  # both cached in b
        await revoke_key(a, key_id)
        took = await _until(lambda: _is_none(verify(b, secret)), bound)
        assert took <= bound
        assert await verify(b, other) is not None  # the other verdict is read again, still valid
        await revoke_key(a, other_id)
        await _until(lambda: _not(keys.any_active(b)), bound)  # the last key revoked: open again
    finally:
        await a.aclose()
        await b.aclose()


async def _is_none(pending: Awaitable[object]) -> bool:
    return await pending is None


async def _not(pending: Awaitable[bool]) -> bool:
    return not await pending


async def test_the_store_is_asked_at_most_once_per_interval(db: Database, monkeypatch: pytest.MonkeyPatch) -> None:
    _, secret = await create_key(db, "ci")
    assert await keys.any_active(db) and await verify(db, secret) is not None  # both verdicts cached
    queries: list[str] = []
    real = db.transaction

    def counting(write: bool) -> Any:
        queries.append("q")
        return real(write)

    monkeypatch.setattr(db, "transaction", counting)
    monkeypatch.setattr(keys, "CHECK_INTERVAL_S", 0.3)
    await asyncio.sleep(0.35)  # the interval has passed: the next request checks
    await asyncio.gather(*(keys.any_active(db) for _ in range(50)), *(verify(db, secret) for _ in range(50)))
    assert len(queries) == 1  # one fingerprint for 100 concurrent requests; nothing changed, verdicts cached


async def test_a_store_that_cannot_answer_keeps_cached_verdicts_for_their_ttl(
    db: Database, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    _, secret = await create_key(db, "ci")
    assert await keys.any_active(db) and await verify(db, secret) is not None

    def refuse(_: bool) -> Any:
        raise OSError("store down")

    monkeypatch.setattr(keys, "CHECK_INTERVAL_S", 0.0)
    monkeypatch.setattr(db, "transaction", refuse)
    for _ in range(3):
        assert await keys.any_active(db) and await verify(db, secret) is not None
    assert [r.getMessage() for r in caplog.records].count(
        "gateway keys: cannot check for changes: OSError: store down"
    ) == 1
    with pytest.raises(OSError):  # a verdict not cached cannot be given (the gateway answers 503)
        await verify(db, "llmm-" + "z" * 32)


async def test_bad_arguments_are_refused(db: Database) -> None:
    with pytest.raises(ValueError, match="name"):
        await create_key(db, " ")
    with pytest.raises(ValueError, match="models"):
        await create_key(db, "x", models=[])
    with pytest.raises(ValueError, match="rpm"):
        await create_key(db, "x", rpm=0)


# -- through the gateway ----------------------------------------------------------------------------------------


def _client(gateway: Gateway, api_key: str) -> openai.OpenAI:
    return openai.OpenAI(base_url=f"{gateway.url}/v1", api_key=api_key, max_retries=0, timeout=10)


def _new_key(gateway: Gateway, name: str = "test", **kw: Any) -> tuple[str, str]:
    async def make(llm: LLMManager) -> tuple[str, str]:
        return await create_key(await llm.database(), name, **kw)

    result: tuple[str, str] = gateway.run(make)
    return result


def _calls(gateway: Gateway) -> int:
    return sum(len(getattr(gateway.llm.adapter(n), "requests", ())) for n in ("claude", "gpt"))


def test_without_keys_the_gateway_is_open(gateway: Gateway) -> None:
    with _client(gateway, "anything") as c:
        assert c.chat.completions.create(model="gpt", messages=HI).choices[0].message.content
        assert c.models.list().data


def test_with_a_key_every_v1_route_requires_it(gateway: Gateway) -> None:
    key_id, secret = _new_key(gateway)
    with _client(gateway, "unused") as c:
        with pytest.raises(openai.AuthenticationError) as info:  # the SDK sends no Authorization header at all
            c.chat.completions.create(model="gpt", messages=HI, extra_headers={"Authorization": openai.omit})
        assert info.value.code == "invalid_api_key" and info.value.type == "invalid_request_error"
        assert "Missing" in info.value.message
    assert _calls(gateway) == 0  # nothing was called
    with _client(gateway, "llmm-" + "x" * 32) as c:
        with pytest.raises(openai.AuthenticationError) as info:
            c.chat.completions.create(model="gpt", messages=HI)
        assert info.value.code == "invalid_api_key"
        with pytest.raises(openai.AuthenticationError):
            c.models.list()
    assert _calls(gateway) == 0
    with _client(gateway, secret) as c:
        assert c.chat.completions.create(model="gpt", messages=HI).choices[0].message.content
        assert c.models.list().data
    assert _calls(gateway) == 1


def test_health_and_metrics_stay_open(gateway: Gateway) -> None:
    import httpx

    _new_key(gateway)
    for path in ("/health", "/health/ready", "/metrics"):
        assert httpx.get(gateway.url + path, timeout=10).status_code == 200
    assert httpx.get(gateway.url + "/v1/models", timeout=10).status_code == 401


def test_x_api_key_header_is_accepted(gateway: Gateway) -> None:
    import httpx

    _, secret = _new_key(gateway)
    body = {"model": "gpt", "messages": HI}
    ok = httpx.post(f"{gateway.url}/v1/chat/completions", json=body, headers={"x-api-key": secret}, timeout=10)
    assert ok.status_code == 200
    bad = httpx.post(f"{gateway.url}/v1/chat/completions", json=body, headers={"x-api-key": "nope"}, timeout=10)
    assert bad.status_code == 401
    assert bad.json()["error"]["code"] == "invalid_api_key"


def test_a_revoked_key_is_refused(gateway: Gateway) -> None:
    key_id, secret = _new_key(gateway)
    _new_key(gateway, "other")  # still one active key: the gateway stays closed
    with _client(gateway, secret) as c:
        c.chat.completions.create(model="gpt", messages=HI)

        async def revoke(llm: LLMManager) -> bool:
            return await revoke_key(await llm.database(), key_id)

        assert gateway.run(revoke)
        with pytest.raises(openai.AuthenticationError):
            c.chat.completions.create(model="gpt", messages=HI)


def test_a_model_outside_the_keys_list_is_forbidden(gateway: Gateway) -> None:
    _, secret = _new_key(gateway, models=["gpt"])
    with _client(gateway, secret) as c:
        assert c.chat.completions.with_raw_response.create(model="gpt", messages=HI).headers["x-llm-model"] == "gpt"
        assert c.chat.completions.create(model="fast", messages=HI)  # the alias of an allowed deployment
        with pytest.raises(openai.PermissionDeniedError) as info:
            c.chat.completions.create(model="claude", messages=HI)
        assert info.value.code == "model_not_allowed"
        with pytest.raises(openai.PermissionDeniedError):
            c.chat.completions.create(model="task:general", messages=HI)
    assert len(getattr(gateway.llm.adapter("claude"), "requests", ())) == 0


def test_models_lists_only_what_the_key_may_use(gateway: Gateway) -> None:
    _, restricted = _new_key(gateway, "r", models=["gpt", "task:analysis"])
    _, everything = _new_key(gateway, "all")
    with _client(gateway, restricted) as c:
        # The deployment, its alias (which resolves to it) and the task the key names; nothing else.
        assert sorted(m.id for m in c.models.list()) == ["fast", "gpt", "task:analysis"]
    with _client(gateway, everything) as c:
        assert {"claude", "smart", "gpt", "fast", "task:general"} <= {m.id for m in c.models.list()}


def test_an_allowed_model_never_falls_back_to_another(gateway: Gateway) -> None:
    _, secret = _new_key(gateway, models=["gpt"])
    gateway.script("gpt", "500")
    with _client(gateway, secret) as c, pytest.raises(openai.APIStatusError):
        c.chat.completions.create(model="gpt", messages=HI)
    assert len(getattr(gateway.llm.adapter("claude"), "requests", ())) == 0


def test_per_key_rpm_answers_429_with_retry_after(gateway: Gateway) -> None:
    _, secret = _new_key(gateway, rpm=1)
    _, other = _new_key(gateway, "other", rpm=1)
    with _client(gateway, secret) as c:
        c.chat.completions.create(model="gpt", messages=HI)
        with pytest.raises(openai.RateLimitError) as info:
            c.chat.completions.create(model="gpt", messages=HI)
        assert info.value.code == "rate_limit_exceeded"
        assert int(info.value.response.headers["retry-after"]) >= 1
    with _client(gateway, other) as c:  # each key has its own bucket
        c.chat.completions.create(model="gpt", messages=HI)
    assert _calls(gateway) == 2


def test_per_key_tpm_holds_the_prompt_then_charges_the_usage(gateway: Gateway) -> None:
    _, secret = _new_key(gateway, tpm=300)
    big: list[ChatCompletionMessageParam] = [{"role": "user", "content": "tell me " * 150}]  # ~300 tokens
    with _client(gateway, secret) as c:
        first = c.chat.completions.create(model="gpt", messages=big)
        assert first.usage is not None and first.usage.total_tokens > 300
        with pytest.raises(openai.RateLimitError) as info:  # the minute's tokens are spent
            c.chat.completions.create(model="gpt", messages=HI)
        assert "300 tokens per minute" in info.value.message
        assert int(info.value.response.headers["retry-after"]) >= 1
    assert _calls(gateway) == 1


@pytest.fixture
def priced_gateway() -> Any:
    priced = {"input_price_per_mtok": "3", "output_price_per_mtok": "15"}
    models = {k: {**v, **priced} for k, v in MODELS.items()}
    yield from start_gateway(sim_settings(models))


def test_a_keys_own_budget_stops_it_and_only_it(priced_gateway: Gateway) -> None:
    key_id, secret = _new_key(priced_gateway, budget_usd="0.002", budget_period="daily")
    _, other = _new_key(priced_gateway, "other")
    answered = 0
    with _client(priced_gateway, secret) as c:
        for _ in range(20):
            try:
                c.chat.completions.create(model="gpt", messages=HI, max_tokens=50)
            except openai.RateLimitError as exc:
                assert exc.code == "budget_exceeded" and exc.type == "insufficient_quota"
                break
            answered += 1
        else:
            pytest.fail("the key's budget never stopped it")
    assert answered >= 1
    with _client(priced_gateway, other) as c:  # another key is not charged against it
        c.chat.completions.create(model="gpt", messages=HI, max_tokens=50)

    async def status(llm: LLMManager) -> list[dict[str, Any]]:
        return await llm.budgets.status({"key": [key_id]})

    (row,) = [r for r in priced_gateway.run(status) if r["budget"] == f"key:{key_id}"]
    assert Decimal(row["spent_usd"]) <= Decimal("0.002") and Decimal(row["spent_usd"]) > 0
    assert row["period"] == "daily" and Decimal(row["reserved_usd"]) == 0


def test_key_limits_are_validated(gateway: Gateway) -> None:
    for bad in ({"tpm": 0}, {"budget_usd": "-1"}, {"budget_usd": "lots"}, {"budget_period": "hourly"}):
        with pytest.raises(ValueError):
            _new_key(gateway, **bad)


def test_the_ledger_row_carries_the_key_id(gateway: Gateway) -> None:
    key_id, secret = _new_key(gateway)
    with _client(gateway, secret) as c:
        done = c.chat.completions.create(model="gpt", messages=HI)

    async def rows(llm: LLMManager) -> list[Any]:
        assert llm.ledger is not None
        await llm.ledger.flush()
        return await llm.ledger.rows()

    found = [r for r in gateway.run(rows) if r.request_id == done.id.replace("chatcmpl-", "req_", 1)]
    assert found and all(r.api_key_id == key_id for r in found)


# -- the command line -------------------------------------------------------------------------------------------


def test_cli_create_list_revoke(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("LLM_MANAGER_STORE_URL", raising=False)
    config = tmp_path / "llm-manager.yaml"
    config.write_text(
        yaml.safe_dump(
            {
                "models": {"gpt": {"provider": "simulated", "family": "gpt"}},
                "store": {"url": f"sqlite:///{tmp_path}/k.db"},
            }
        ),
        encoding="utf-8",
    )
    runner = CliRunner()

    def run(*args: str) -> Any:
        return runner.invoke(keys_group, list(args), obj=_Ctx(str(config)), catch_exceptions=False)

    made = run("create", "ci", "--model", "gpt", "--rpm", "10")
    assert made.exit_code == 0, made.output
    secret = made.stdout.strip()
    assert secret.startswith("llmm-") and len(secret) == 37
    assert "cannot be shown again" in made.stderr

    listed = run("list")
    assert listed.exit_code == 0 and "ci" in listed.stdout and "gpt" in listed.stdout
    assert secret not in listed.output
    as_json = run("list", "--json")
    [entry] = json.loads(as_json.stdout)
    assert entry["name"] == "ci" and entry["models"] == ["gpt"] and entry["rpm"] == 10 and not entry["admin"]
    assert entry["revoked_at"] is None
    assert secret not in as_json.stdout and hash_secret(secret) not in as_json.stdout
    assert "hash" not in entry and "secret" not in entry

    revoked = run("revoke", entry["id"])
    assert revoked.exit_code == 0 and entry["id"] in revoked.stdout
    assert json.loads(run("list", "--json").stdout)[0]["revoked_at"] is not None
    again = run("revoke", entry["id"])
    assert again.exit_code == 1 and "no active key" in again.stderr

    limited = run("create", "team", "--tpm", "5000", "--budget-usd", "25", "--budget-period", "weekly")
    assert limited.exit_code == 0, limited.output
    entry = json.loads(run("list", "--json").stdout)[-1]
    assert (entry["tpm"], entry["budget_usd"], entry["budget_period"]) == (5000, "25", "weekly")
    assert "$25 weekly" in run("list").stdout
    bad = runner.invoke(keys_group, ["create", "x", "--budget-usd", "free"], obj=_Ctx(str(config)))
    assert bad.exit_code == 2 and "budget_usd" in bad.output


def test_an_admin_sees_a_keys_budget_before_the_key_is_used(priced_gateway: Gateway) -> None:
    key_id, _ = _new_key(priced_gateway, budget_usd="5", budget_period="weekly")
    _, admin = _new_key(priced_gateway, "ops", admin=True)
    resp = httpx.get(f"{priced_gateway.url}/admin/status", headers={"authorization": f"Bearer {admin}"}, timeout=10)
    assert resp.status_code == 200
    (row,) = [b for b in resp.json()["budgets"] if b["budget"] == f"key:{key_id}"]
    assert (row["period"], Decimal(row["limit_usd"]), Decimal(row["spent_usd"])) == ("weekly", Decimal(5), 0)
