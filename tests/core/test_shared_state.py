"""Two managers in separate processes, one Redis: one breaker state, one rate-limit budget, one cache."""

from __future__ import annotations

import json
import subprocess
import sys
import uuid
from pathlib import Path
from typing import Any

import pytest

from tests.state.conftest import require_redis

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def shared() -> tuple[str, str]:
    return require_redis(), f"llmm-test-{uuid.uuid4().hex[:10]}"


def spawn(url: str, prefix: str, action: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "tests.core._shared_worker", url, prefix, action],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def result(proc: subprocess.Popen[str]) -> dict[str, Any]:
    out, err = proc.communicate(timeout=30)
    assert proc.returncode == 0, err
    return json.loads(out.strip().splitlines()[-1])


def test_one_breaker_state_across_processes(shared: tuple[str, str]) -> None:
    a = result(spawn(*shared, "outage"))
    assert a["primary_calls"] == 3 and a["served"] == ["backup"] * 6  # opened after the threshold
    b = result(spawn(*shared, "after-outage"))
    assert b["primary_calls"] == 0  # process B never calls the primary: the breaker opened in A is open here
    assert b["served"] == ["backup"] * 6
    assert b["breaker"]["state"] == "open" and b["breaker"]["cooldown_left_s"] > 500


def test_one_rate_limit_budget_across_processes(shared: tuple[str, str]) -> None:
    procs = [spawn(*shared, "burst"), spawn(*shared, "burst")]
    admitted = [result(p)["admitted"] for p in procs]
    assert sum(admitted) == 10, admitted  # rpm 10 shared by both, not 10 each


def test_one_cache_across_processes(shared: tuple[str, str]) -> None:
    put = result(spawn(*shared, "cache-put"))
    got = result(spawn(*shared, "cache-get"))
    assert not put["cached"] and got["cached"] and got["content"] == put["content"] and got["primary_calls"] == 0
