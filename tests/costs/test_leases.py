"""Budget holds are leased (issue 18: a ``kill -9`` left ``reserved_usd 1.034`` counted against the hard limit
until the period key expired, ~42 h): a process killed with requests in flight on the shared Redis leaves holds
that lapse after the request's deadline plus ``state.budget_lease_margin_s``."""

from __future__ import annotations

import asyncio
import subprocess
import sys
import time
import uuid
from decimal import Decimal
from pathlib import Path

import pytest

from llm_manager import BudgetExceededError, LLMManager
from tests.costs._lease_worker import MARGIN_S, TIMEOUT_S, settings
from tests.state.conftest import require_redis

ROOT = Path(__file__).resolve().parents[2]


async def reserved(llm: LLMManager) -> Decimal:
    [row] = await llm.budgets.status()
    return Decimal(row["reserved_usd"])


async def test_the_holds_of_a_killed_process_lapse_after_their_lease(tmp_path: Path) -> None:
    url = require_redis()
    prefix = f"llmm-lease-{uuid.uuid4().hex[:8]}"
    log = tmp_path / "worker.log"
    with log.open("wb") as err:
        worker = subprocess.Popen(
            [sys.executable, "-m", "tests.costs._lease_worker", url, prefix],
            cwd=ROOT,
            stdout=subprocess.DEVNULL,
            stderr=err,
        )
    try:
        async with LLMManager(settings(url, prefix, latency_ms=1)) as llm:
            deadline = time.monotonic() + 20
            while await reserved(llm) < Decimal("0.075"):  # the worker's five requests are in flight
                assert worker.poll() is None, log.read_text()
                assert time.monotonic() < deadline, "the worker never reserved its budget"
                await asyncio.sleep(0.05)
            reserved_at = time.monotonic()
            worker.kill()  # kill -9: no settlement, no release
            worker.wait(10)
            with pytest.raises(BudgetExceededError):  # the dead process's holds still count…
                await llm.generate("now", max_tokens=5)
            while await reserved(llm) > 0:  # …until their lease ends: deadline + margin after reserving
                assert time.monotonic() - reserved_at < TIMEOUT_S + MARGIN_S + 3, "the holds did not lapse"
                await asyncio.sleep(0.1)
            lapsed_after = time.monotonic() - reserved_at
            answer = await llm.generate("later", max_tokens=5)  # the budget is usable again
            assert answer.deployment == "dear" and await reserved(llm) == 0
    finally:
        if worker.poll() is None:
            worker.kill()
            worker.wait(10)
    # Not before the lease could have ended (the holds were taken a little before we saw them).
    assert lapsed_after >= TIMEOUT_S + MARGIN_S - 1.0, lapsed_after


def test_the_lease_margin_is_validated() -> None:
    from llm_manager.config import load_settings
    from llm_manager.errors import ConfigError

    for bad in (0, -5, 86401):
        with pytest.raises(ConfigError, match=r"state\.budget_lease_margin_s"):
            load_settings({"state": {"budget_lease_margin_s": bad}}, env={})
