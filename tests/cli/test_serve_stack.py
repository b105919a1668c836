"""``llm-manager serve --loop / --http``: every event loop and HTTP parser combination serves and stops cleanly.

Each case runs the real command as a child process on the simulated models, sends a chat completion over loopback,
and stops it with SIGTERM (the gateway drains and exits 0).
"""

from __future__ import annotations

import asyncio
import importlib.util
import json
import signal
import urllib.request
from pathlib import Path
from typing import Any

import pytest

from llm_manager.cli.serve import _runner
from tests.processes import start_serve

HAS_UVLOOP = importlib.util.find_spec("uvloop") is not None
HAS_HTTPTOOLS = importlib.util.find_spec("httptools") is not None


def _post(url: str, body: dict[str, object]) -> tuple[int, Any]:
    req = urllib.request.Request(url, data=json.dumps(body).encode(), headers={"content-type": "application/json"})
    with urllib.request.urlopen(req, timeout=10) as resp:
        return resp.status, json.loads(resp.read())


CASES = [
    pytest.param(("--loop", "asyncio", "--http", "h11"), id="asyncio+h11"),
    pytest.param(
        ("--loop", "uvloop", "--http", "httptools"),
        id="uvloop+httptools",
        marks=pytest.mark.skipif(not (HAS_UVLOOP and HAS_HTTPTOOLS), reason="uvloop / httptools not installed"),
    ),
    pytest.param((), id="defaults"),
]


@pytest.mark.parametrize("flags", CASES)
def test_serves_a_completion_and_stops_on_sigterm(flags: tuple[str, ...], tmp_path: Path) -> None:
    proc, port = start_serve(None, tmp_path / "serve.log", *flags)
    base = f"http://127.0.0.1:{port}"
    try:
        status, body = _post(
            f"{base}/v1/chat/completions", {"model": "task:general", "messages": [{"role": "user", "content": "hi"}]}
        )
        assert status == 200
        assert body["object"] == "chat.completion"
        assert body["choices"][0]["message"]["content"]
    finally:
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(20) == 0


def test_auto_loop_is_uvloop_when_installed() -> None:
    with _runner("auto") as runner:
        loop = runner.get_loop()
        expected = "uvloop" if HAS_UVLOOP else "asyncio"
        assert type(loop).__module__.split(".")[0] == expected


def test_asyncio_loop_on_request() -> None:
    with _runner("asyncio") as runner:
        assert isinstance(runner.get_loop(), asyncio.BaseEventLoop)  # the standard library's, not uvloop's Loop
