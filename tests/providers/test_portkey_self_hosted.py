"""A self-hosted Portkey gateway needs no Portkey key: any base URL other than Portkey's hosted API is self-hosted.

Tested against the real open-source gateway (``@portkey-ai/gateway``, run with node), plain and streamed, routed
by it to a local fake OpenAI upstream (``x-portkey-custom-host``). The gateway is npm-installed once into
bench/.node (git-ignored), from npm's package cache when it has it; without node / npm the test is skipped with a
message, except under CI, where it fails.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from llm_manager import LLMManager
from llm_manager.config import load_settings
from llm_manager.errors import ConfigError
from tests.fakes import openai_wire
from tests.fakes.server import FakeUpstream, Recorded, Reply, serve_in_thread
from tests.processes import free_port, stop

MODEL = "gpt-4o-mini"


def _settings(base_url: str, **portkey: Any) -> dict[str, Any]:
    return {
        "models": {
            "pk": {"provider": "portkey", "model": MODEL, "base_url": base_url, "portkey": {"provider": "openai"}}
        },
        **({"portkey": portkey} if portkey else {}),
    }


@pytest.mark.parametrize(
    "base_url",
    ["http://127.0.0.1:8787/v1", "http://portkey:8787/v1", "http://[::1]:8787/v1", "https://gateway.internal/v1"],
)
def test_any_base_url_but_the_hosted_api_is_self_hosted(base_url: str) -> None:
    s = load_settings(_settings(base_url), env={})
    assert s.models["pk"].base_url == base_url


@pytest.mark.parametrize("where", ["model", "section"])
def test_the_hosted_api_still_needs_a_portkey_key(where: str) -> None:
    hosted = "https://api.portkey.ai/v1"
    raw = _settings(hosted) if where == "model" else {**_settings(""), "portkey": {"base_url": hosted}}
    if where == "section":
        del raw["models"]["pk"]["base_url"]
    with pytest.raises(ConfigError, match=r"hosted Portkey \(api\.portkey\.ai\) needs `portkey\.api_key`"):
        load_settings(raw, env={})
    raw.setdefault("portkey", {})["api_key"] = "pk-key"
    load_settings(raw, env={})


# -- the real gateway -----------------------------------------------------------------------------------------------


def _portkey_script() -> Path:
    from bench.gateway_systems import Unavailable, install_portkey

    if shutil.which("node") is None or shutil.which("npm") is None:
        message = "node / npm not found (Debian: apt-get install nodejs npm): the Portkey gateway cannot run"
        if os.environ.get("CI"):
            pytest.fail(message)
        pytest.skip(message)
    try:
        return install_portkey()
    except Unavailable as exc:
        if os.environ.get("CI"):
            pytest.fail(f"the Portkey gateway could not be installed: {exc}")
        pytest.skip(f"the Portkey gateway could not be installed: {exc}")


@pytest.fixture(scope="module")
def portkey(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    script = _portkey_script()
    port = free_port()
    log = tmp_path_factory.mktemp("portkey") / "gateway.log"
    with log.open("wb") as out:  # the child keeps its own copy of the descriptor
        proc = subprocess.Popen(["node", str(script), f"--port={port}", "--headless"], stdout=out, stderr=out)
    try:
        deadline = time.monotonic() + 30
        while True:
            assert proc.poll() is None, f"the Portkey gateway exited: {log.read_text(errors='replace')[-2000:]}"
            assert time.monotonic() < deadline, "the Portkey gateway did not listen within 30 s"
            try:
                socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
                break
            except OSError:
                time.sleep(0.1)
        yield f"http://127.0.0.1:{port}/v1"
    finally:
        stop(proc, 10)


def _answer(req: Recorded) -> Reply:
    if (req.json or {}).get("stream"):
        return Reply.sse(openai_wire.stream_events(["self", "-hosted", " stream"], model=MODEL))
    return Reply.json(openai_wire.completion("through self-hosted portkey", model=MODEL))


@pytest.fixture(scope="module")
def upstream() -> Iterator[FakeUpstream]:
    with serve_in_thread(FakeUpstream(_answer)) as up:
        yield up


@pytest.mark.timeout(900)  # the first run npm-installs the gateway
async def test_through_the_real_self_hosted_gateway(portkey: str, upstream: FakeUpstream) -> None:
    raw = _settings(portkey)
    raw["models"]["pk"].update(
        api_key="sk-upstream",  # the upstream's key: Portkey forwards it as the bearer token
        headers={"x-portkey-custom-host": upstream.url + "/v1"},
    )
    settings = load_settings(raw, env={})  # no Portkey key anywhere: a self-hosted gateway needs none
    before = len(upstream.requests)
    async with LLMManager(settings) as llm:
        r = await llm.generate("hello", cache=False)
        assert r.content == "through self-hosted portkey" and r.deployment == "pk"
        assert r.usage.prompt_tokens == 12 and r.usage.completion_tokens == 5
        s = llm.stream("hello again", cache=False)
        assert await s.text() == "self-hosted stream"
        assert s.response is not None and s.response.finish_reason == "stop"
    sent = upstream.requests[before:]
    assert [req.path for req in sent] == ["/v1/chat/completions", "/v1/chat/completions"], "both went via Portkey"
    assert all(req.headers["authorization"] == "Bearer sk-upstream" for req in sent)
    assert sent[0].json["model"] == MODEL and sent[1].json["stream"] is True
