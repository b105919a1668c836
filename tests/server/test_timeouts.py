"""Request deadlines (x-llm-timeout, gateway.request_timeout_s) and the body read timeout, over real sockets."""

from __future__ import annotations

import socket
import time
from collections.abc import Iterator
from typing import Any

import httpx
import openai
import pytest

from llm_manager.config import GatewayConfig
from tests.helpers import sim_settings
from tests.server.conftest import MODELS, Gateway, start_gateway

HELLO = {"messages": [{"role": "user", "content": "hello"}]}
# 40 words at 20 a second: a stream that takes two seconds.
SLOW = {"family": "llama", "simulate": {"tokens_per_s": 20, "reply": " ".join(["word"] * 40)}}


@pytest.fixture
def timed() -> Iterator[Gateway]:
    """A default deadline of 0.5 s, a cap of 0.8 s on what clients ask for, and 0.3 s for a body to arrive."""
    models: dict[str, dict[str, Any]] = {**{k: dict(v) for k, v in MODELS.items()}, "slow": dict(SLOW)}
    settings = sim_settings(models, max_retries=0, queue_timeout_s=0)
    limits = GatewayConfig(request_timeout_s=0.5, max_request_timeout_s=0.8, body_timeout_s=0.3)
    yield from start_gateway(settings.model_copy(update={"gateway": limits}))


def _post(gw: Gateway, body: dict[str, Any], **headers: str) -> tuple[httpx.Response, float]:
    t0 = time.monotonic()
    resp = httpx.post(f"{gw.url}/v1/chat/completions", json=body, headers=headers, timeout=10)
    return resp, time.monotonic() - t0


def test_a_client_deadline_that_passes_is_a_504_timeout(gateway: Gateway) -> None:
    gateway.script("gpt", "timeout")  # never answers
    resp, took = _post(gateway, {"model": "gpt", **HELLO}, **{"x-llm-timeout": "0.3"})
    assert resp.status_code == 504, resp.text
    assert resp.json()["error"]["code"] == "timeout" and resp.json()["error"]["type"] == "api_error"
    assert resp.headers["x-should-retry"] == "false"  # its own deadline: retrying at once would only repeat it
    assert 0.3 <= took < 1.5


def test_the_official_sdk_does_not_retry_a_passed_deadline(gateway: Gateway) -> None:
    gateway.script("gpt", "timeout", "timeout", "timeout")
    client = openai.OpenAI(base_url=f"{gateway.url}/v1", api_key="x", max_retries=2)
    t0 = time.monotonic()
    with pytest.raises(openai.InternalServerError) as err:
        client.chat.completions.create(
            model="gpt", messages=[{"role": "user", "content": "hi"}], extra_headers={"x-llm-timeout": "0.3"}
        )
    assert err.value.status_code == 504 and time.monotonic() - t0 < 1.5  # one try, not three


def test_a_deadline_that_ends_on_another_failure_is_still_a_504(gateway: Gateway) -> None:
    # gpt fails fast, the fallback then hangs until the deadline: the client is told about its deadline, not the 500.
    gateway.script("gpt", "500")
    gateway.script("claude", "timeout")
    resp, _ = _post(gateway, {"model": "gpt", **HELLO}, **{"x-llm-timeout": "0.3"})
    assert resp.status_code == 504 and resp.json()["error"]["code"] == "timeout", resp.text
    assert "deadline" in resp.json()["error"]["message"]


def test_the_gateway_default_deadline_applies_without_a_header(timed: Gateway) -> None:
    timed.script("gpt", "timeout")
    resp, took = _post(timed, {"model": "gpt", **HELLO})
    assert resp.status_code == 504 and 0.5 <= took < 1.5


def test_a_longer_deadline_than_the_cap_is_cut_to_the_cap(timed: Gateway) -> None:
    timed.script("gpt", "timeout")
    resp, took = _post(timed, {"model": "gpt", **HELLO}, **{"x-llm-timeout": "3600"})
    assert resp.status_code == 504 and 0.8 <= took < 1.8


@pytest.mark.parametrize("value", ["soon", "0", "-1", "nan", "inf", "1e400"])
def test_a_timeout_header_that_is_not_a_positive_number_is_a_400(gateway: Gateway, value: str) -> None:
    resp, _ = _post(gateway, {"model": "gpt", **HELLO}, **{"x-llm-timeout": value})
    assert resp.status_code == 400 and resp.json()["error"]["param"] == "x-llm-timeout"


def test_a_deadline_answered_in_time_changes_nothing(gateway: Gateway) -> None:
    resp, _ = _post(gateway, {"model": "gpt", **HELLO}, **{"x-llm-timeout": "5"})
    assert resp.status_code == 200 and resp.json()["choices"][0]["message"]["content"]


def test_a_stream_past_its_deadline_ends_with_a_timeout_event_and_no_done(timed: Gateway) -> None:
    body = {"model": "slow", "stream": True, **HELLO}
    t0 = time.monotonic()
    with httpx.stream(
        "POST", f"{timed.url}/v1/chat/completions", json=body, headers={"x-llm-timeout": "0.4"}, timeout=10
    ) as resp:
        assert resp.status_code == 200
        events = [line[6:] for line in resp.iter_lines() if line.startswith("data: ")]
    took = time.monotonic() - t0
    assert 0.4 <= took < 1.5  # the stream alone would take two seconds
    assert len(events) > 2 and "[DONE]" not in events
    assert '"code":"timeout"' in events[-1]


def test_a_stream_within_its_deadline_completes(gateway: Gateway) -> None:
    body = {"model": "gpt", "stream": True, **HELLO}
    with httpx.stream("POST", f"{gateway.url}/v1/chat/completions", json=body, headers={"x-llm-timeout": "5"}) as r:
        events = [line[6:] for line in r.iter_lines() if line.startswith("data: ")]
    assert r.status_code == 200 and events[-1] == "[DONE]"


def test_a_body_that_trickles_in_gets_408_and_its_connection_closed(timed: Gateway) -> None:
    host, port = timed.url.removeprefix("http://").split(":")
    head = (
        b"POST /v1/chat/completions HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
        b"Content-Length: 1000\r\n\r\n{"
    )
    with socket.create_connection((host, int(port))) as sock:
        sock.sendall(head)
        sock.settimeout(0.05)
        got, closed, served_meanwhile = b"", False, None
        t0 = time.monotonic()
        while time.monotonic() - t0 < 5:
            try:
                chunk = sock.recv(65536)
            except TimeoutError:
                if served_meanwhile is None:  # the slow body holds nothing up: others are answered at once
                    s0 = time.monotonic()
                    served_meanwhile = (httpx.get(f"{timed.url}/health").status_code, time.monotonic() - s0)
                try:
                    sock.sendall(b" ")  # one byte at a time, never the whole body
                except OSError:
                    closed = True
                    break
                continue
            if not chunk:
                closed = True
                break
            got += chunk
    took = time.monotonic() - t0
    assert got.startswith(b"HTTP/1.1 408"), got[:200]
    assert b'"code":"request_timeout"' in got
    assert closed and took < 2
    assert served_meanwhile is not None and served_meanwhile[0] == 200 and served_meanwhile[1] < 0.25
