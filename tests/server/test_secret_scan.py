"""No configured secret reaches any output: an upstream that echoes every secret it knows (and the credentials it
was sent) in a 401, a 5xx and a stream's error event, against ``llm-manager serve -v`` and the CLI as real processes.

The secrets have no vendor prefix (nothing but their value identifies them): a key pool, a single key, a Portkey key
and virtual key, and the passwords inside ``base_url``, ``state.redis_url`` (a private Redis that requires it) and
``store.url`` (PostgreSQL, whose trust auth ignores it). Every gateway body and header, the ``serve -v`` log, the
output of ``ask``, ``status``, ``health``, ``models``, ``keys list`` and ``config show`` are scanned for each one.
"""

from __future__ import annotations

import base64
import subprocess
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import quote

import httpx
import pytest

from tests.fakes.openai_wire import chunk, error_body, sse
from tests.fakes.server import FakeUpstream, Recorded, Reply, serve_in_thread
from tests.processes import cli_process, serve_process
from tests.state.private_redis import private_redis
from tests.store.conftest import pg_schema

KEY_A = "Zq7pLmN0alpha7f3e9c21"
KEY_B = "Wx4vTy8kbravo5d2a8b60"
KEY_C = "Cc1dEe2fcharlie0b9a8c7"
PORTKEY_KEY = "Pk9rSt2uportkey3c1f77ad"
VIRTUAL_KEY = "Vk5mNb3qvirtual9e8d6a41"
BASE_PASSWORD = "Bp6hJk1wbasepass42x"
REDIS_PASSWORD = "Rd3sPw9qredispass77y"
PG_PASSWORD = "pg@Pass-9w8e7r6t"  # written %40-encoded in the URL: both forms must be masked
SECRETS = (KEY_A, KEY_B, KEY_C, PORTKEY_KEY, VIRTUAL_KEY, BASE_PASSWORD, REDIS_PASSWORD, PG_PASSWORD)
FORMS = (*SECRETS, quote(PG_PASSWORD, safe=""), base64.b64encode(f"svc:{BASE_PASSWORD}".encode()).decode())
CREDENTIAL_HEADERS = ("authorization", "x-portkey-api-key", "x-portkey-virtual-key")


def _echo(req: Recorded) -> Reply:
    """Every answer is an error quoting the credentials it was sent and every secret the test knows."""
    sent = "; ".join(f"{k}: {v}" for k, v in req.headers.items() if k in CREDENTIAL_HEADERS)
    leak = f"Incorrect API key provided ({sent}). Also known here: {', '.join(SECRETS)}"
    model = (req.json or {}).get("model") if req.method == "POST" else None
    if model == "cut":
        cid = "chatcmpl-cut"
        return Reply.sse(
            [
                sse(chunk(id=cid, model="cut", delta={"role": "assistant", "content": ""})),
                sse(chunk(id=cid, model="cut", delta={"content": "partial"})),
                sse({"error": {"message": leak, "type": "server_error", "param": None, "code": None}}),
            ]
        )
    if model == "down":
        return Reply.error(500, error_body(leak, type="server_error"))
    return Reply.error(401, error_body(leak, code="invalid_api_key"))  # auth-fail, and every probe (GET /models)


@pytest.fixture
def echoing_upstream() -> Iterator[FakeUpstream]:
    with serve_in_thread(FakeUpstream(default=_echo)) as upstream:
        yield upstream


def _config(tmp_path: Path, upstream: str, redis_url: str, store_url: str) -> Path:
    base = f"{upstream}/v1"
    with_password = base.replace("http://", f"http://svc:{BASE_PASSWORD}@")
    cfg = tmp_path / "llm-manager.yaml"
    cfg.write_text(
        f"""
models:
  pool: {{provider: openai-compatible, base_url: "{base}", model: auth-fail, api_keys: "{KEY_A},{KEY_B}", family: gpt}}
  broken: {{provider: openai-compatible, base_url: "{base}", model: down, api_key: "{KEY_C}", family: claude}}
  cut: {{provider: openai-compatible, base_url: "{base}", model: cut, api_key: "{KEY_C}", family: gpt}}
  basic: {{provider: openai-compatible, preset: vllm, base_url: "{with_password}", model: down, family: llama}}
  pk:
    provider: portkey
    base_url: "{base}"
    model: auth-fail
    family: gemini
    portkey: {{api_key: "{PORTKEY_KEY}", virtual_key: "{VIRTUAL_KEY}"}}
routing: {{max_retries: 0, backoff: {{base_s: 0, max_s: 0}}}}
state: {{redis_url: "{redis_url}"}}
store: {{url: "{store_url}"}}
ledger: {{flush_interval_s: 0.2}}
"""
    )
    return cfg


def _gateway_outputs(base: str) -> tuple[list[str], str]:
    """Every body and header the gateway answered with; and the body of the pool's 502 (a key echoed there)."""
    outputs: list[str] = []

    def keep(resp: httpx.Response) -> httpx.Response:
        outputs.append(f"{resp.status_code} {dict(resp.headers)} {resp.text}")
        return resp

    chat = f"{base}/v1/chat/completions"
    hello = [{"role": "user", "content": "hello"}]
    pool = keep(httpx.post(chat, json={"model": "pool", "messages": hello}, timeout=30))
    assert pool.status_code == 502, pool.text
    for model in ("broken", "basic", "pk"):
        assert keep(httpx.post(chat, json={"model": model, "messages": hello}, timeout=30)).status_code >= 500
    streamed = keep(httpx.post(chat, json={"model": "cut", "messages": hello, "stream": True}, timeout=30))
    assert streamed.status_code == 200 and '"error"' in streamed.text and "partial" in streamed.text
    msg = {"model": "broken", "max_tokens": 20, "messages": hello}
    assert keep(httpx.post(f"{base}/v1/messages", json=msg, timeout=30)).status_code >= 500
    for path in ("/admin/status", "/admin/requests", "/health/ready", "/metrics", "/v1/models"):
        assert keep(httpx.get(f"{base}{path}", timeout=30)).status_code == 200, path
    return outputs, pool.text


def _cli_outputs(cfg: Path) -> list[str]:
    commands = [
        ("-v", "ask", "hello", "--model", "pool", "--no-fallback"),
        ("ask", "hello", "--model", "broken", "--no-fallback", "--json"),
        ("status",),
        ("health",),
        ("health", "--json"),
        ("models", "--json"),
        ("keys", "list"),
        ("config", "show"),
    ]
    procs = [(args, cli_process(cfg, *args, env={"COLUMNS": "200"})) for args in commands]
    outputs = []
    for args, proc in procs:
        try:
            out, err = proc.communicate(timeout=60)
        except subprocess.TimeoutExpired:
            proc.kill()
            raise
        outputs.append(f"$ llm-manager {' '.join(args)} (exit {proc.returncode})\n{out.decode()}\n{err.decode()}")
    return outputs


def test_no_secret_reaches_a_body_a_log_or_the_cli(tmp_path: Path, echoing_upstream: FakeUpstream) -> None:
    with private_redis(tmp_path, REDIS_PASSWORD) as redis, pg_schema() as pg_url:
        redis_url = redis.url
        store_url = pg_url.replace("postgresql://postgres@", f"postgresql://postgres:{quote(PG_PASSWORD, safe='')}@")
        cfg = _config(tmp_path, echoing_upstream.url, redis_url, store_url)
        log = tmp_path / "serve.log"
        with serve_process(cfg, log, verbose=True) as base:
            gateway, pool_body = _gateway_outputs(base)
            cli = _cli_outputs(cfg)
        outputs = [*gateway, *cli, log.read_text()]

    sent = {k: v for r in echoing_upstream.requests for k, v in r.headers.items() if k in CREDENTIAL_HEADERS}
    # The upstream really received the credentials it echoes, so a leak was possible on every path.
    assert f"Bearer {KEY_B}" in {v for r in echoing_upstream.requests for v in r.headers.values()}
    assert sent["x-portkey-api-key"] == PORTKEY_KEY and sent["x-portkey-virtual-key"] == VIRTUAL_KEY
    assert any(v.startswith("Basic ") for r in echoing_upstream.requests for v in r.headers.values())
    assert "Incorrect API key provided" in pool_body and "***" in pool_body  # the echo got through, masked
    assert "removed from the pool" in outputs[-1] and "***" in outputs[-1]  # serve -v logged the echo, masked
    for text in outputs:
        for secret in FORMS:
            assert secret not in text, f"secret {secret[:4]}… leaked in:\n{text[:3000]}"
