"""A pool key removed after a 401 is tried again after ``routing.key_reprobe_s`` (over real HTTP: the key is in the
Authorization header), with the reason and the time left in ``status()``."""

from __future__ import annotations

import logging
from typing import Any

import pytest

from llm_manager.errors import AuthenticationError
from llm_manager.manager import LLMManager
from tests.core.test_resilience import by_key, manager, pooled
from tests.fakes import openai_wire
from tests.fakes.server import FakeUpstream, Reply
from tests.helpers import FakeClock

OK = Reply.json(openai_wire.completion("ok"))
BAD = Reply.error(401, openai_wire.error_body("Incorrect API key provided", "invalid_request_error", "invalid_api_key"))


def _settings(up: FakeUpstream, reprobe_s: float | None, keys: str = "k1,k2") -> Any:
    settings = pooled(up, keys)
    settings.routing.key_reprobe_s = reprobe_s
    return settings


async def _keys(llm: LLMManager) -> list[dict[str, Any]]:
    return list((await llm.status())["deployments"]["gpt"]["keys"])


def _uses(up: FakeUpstream, key: str) -> int:
    return sum(r.headers["authorization"] == f"Bearer {key}" for r in up.requests)


async def test_a_removed_key_is_reprobed_after_the_cooldown_and_restored(caplog: pytest.LogCaptureFixture) -> None:
    replies = {"k1": BAD, "k2": OK}  # k1: a transient 401 (a rotating proxy), then accepted again
    clock = FakeClock()
    async with FakeUpstream(by_key(replies)) as up, manager(_settings(up, 60), clock) as llm:
        assert (await llm.generate("a")).content == "ok"
        removed = (await _keys(llm))[0]
        assert removed["state"] == "disabled" and removed["reprobe_in_s"] == 60 and removed["removals"] == 1
        assert str(removed["reason"]).startswith("401 Incorrect API key provided")
        for i in range(4):
            await llm.generate(f"b{i}")
        assert _uses(up, "k1") == 1  # out of the pool during the cooldown

        clock.now += 59
        assert (await _keys(llm))[0]["reprobe_in_s"] == 1
        clock.now += 1
        replies["k1"] = OK
        assert (await _keys(llm))[0]["state"] == "probing"
        with caplog.at_level(logging.WARNING, logger="llm_manager.keys"):
            for i in range(4):
                await llm.generate(f"c{i}")
        assert _uses(up, "k1") >= 2  # back in the round-robin
        back = (await _keys(llm))[0]
        assert back["state"] == "ok" and "reason" not in back and back["removals"] == 1
        assert "back in the pool" in caplog.text


async def test_a_key_that_still_fails_is_out_for_another_period() -> None:
    clock = FakeClock()
    async with FakeUpstream(by_key({"k1": BAD, "k2": OK})) as up, manager(_settings(up, 60), clock) as llm:
        await llm.generate("a")
        clock.now += 61
        for i in range(6):
            assert (await llm.generate(f"b{i}")).content == "ok"  # the failed probe moves to k2 at once
        assert _uses(up, "k1") == 2  # one probe, not one per request
        again = (await _keys(llm))[0]
        assert again["state"] == "disabled" and again["removals"] == 2 and again["reprobe_in_s"] == 60


async def test_reprobe_null_keeps_a_removed_key_out_for_good() -> None:
    clock = FakeClock()
    async with FakeUpstream(by_key({"k1": BAD, "k2": OK})) as up, manager(_settings(up, None), clock) as llm:
        await llm.generate("a")
        clock.now += 86_400
        for i in range(4):
            await llm.generate(f"b{i}")
        assert _uses(up, "k1") == 1
        gone = (await _keys(llm))[0]
        assert gone["state"] == "disabled" and gone["reprobe_in_s"] is None


async def test_a_pool_with_every_key_removed_answers_again_once_a_key_is_due() -> None:
    replies = {"k1": BAD, "k2": BAD}
    clock = FakeClock()
    async with FakeUpstream(by_key(replies)) as up, manager(_settings(up, 30), clock) as llm:
        with pytest.raises(AuthenticationError):
            await llm.generate("a")
        with pytest.raises(Exception, match="tried again in 30s"):  # nothing is sent while every key is out
            await llm.generate("b")
        assert len(up.requests) == 2
        clock.now += 30
        replies.update(k1=OK, k2=OK)
        assert (await llm.generate("c")).content == "ok"
