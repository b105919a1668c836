"""The JavaScript clients (the ``openai`` and ``@anthropic-ai/sdk`` npm packages, the Vercel AI SDK), run with node.

``compat/js/clients.mjs`` makes one call per client and feature and prints what it got; the packages come from
``compat/js/package-lock.json`` (installed once into ``compat/js/node_modules`` with ``npm ci``).
"""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest

from compat.conftest import Gateway
from compat.test_openai_python import PIXEL
from compat.upstream import ANSWER, image_sent

JS = Path(__file__).parent / "js"
NODE = shutil.which("node")


@pytest.fixture(scope="session")
def node_clients() -> Path:
    if NODE is None or shutil.which("npm") is None:
        pytest.fail("node and npm are needed for the JavaScript clients")
    stamp = JS / "node_modules" / ".package-lock.json"
    if not stamp.exists() or stamp.stat().st_mtime < (JS / "package-lock.json").stat().st_mtime:
        subprocess.run(["npm", "ci", "--no-audit", "--no-fund", "--loglevel=error"], cwd=JS, check=True, timeout=600)
    return JS


def run(gateway: Gateway, client: str, feature: str) -> dict[str, Any]:
    done = subprocess.run(
        [str(NODE), "clients.mjs", client, feature, gateway.url],
        cwd=JS,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    return json.loads(done.stdout.strip().splitlines()[-1])


CASES = [
    ("openai-js", "plain", {"text": ANSWER}),
    ("openai-js", "stream", {"text": ANSWER}),
    ("openai-js", "tools", {"tool": "get_weather"}),
    ("openai-js", "structured", None),
    ("openai-js", "json-mode", None),
    ("openai-js", "image", {"text": ANSWER}),
    ("openai-js", "responses", {"text": ANSWER}),
    ("openai-js", "embeddings", {"dims": 256}),
    ("openai-js", "completions", {"text": ANSWER, "streamed": ANSWER}),
    ("ai-sdk", "plain", {"text": ANSWER}),
    ("ai-sdk", "stream", {"text": ANSWER}),
    ("ai-sdk", "tools", {"text": ANSWER, "tool": "getWeather"}),
    ("ai-sdk", "structured", None),
    ("ai-sdk", "image", {"text": ANSWER}),
    ("ai-sdk", "responses", {"text": ANSWER}),
    ("ai-sdk", "embeddings", {"dims": 256}),
    ("anthropic-js", "plain", {"text": ANSWER}),
    ("anthropic-js", "stream", {"text": ANSWER}),
    ("anthropic-js", "tools", {"tool": "get_weather"}),
    ("anthropic-js", "image", {"text": ANSWER}),
]


@pytest.mark.parametrize(("client", "feature", "expected"), CASES)
def test_js_client(
    gateway: Gateway, node_clients: Path, client: str, feature: str, expected: dict[str, Any] | None
) -> None:
    mark = gateway.upstreams.mark()
    got = run(gateway, client, feature)
    if expected is not None:
        assert got == expected
    sent = gateway.upstreams.openai_since(mark) + gateway.upstreams.anthropic_since(mark)
    assert sent, "nothing reached an upstream"
    if feature == "structured":
        assert set(got["object"]) == {"service", "severity"}
        assert sent[0]["response_format"]["type"] == "json_schema"
    if feature == "image":
        assert image_sent(sent[0]) == PIXEL  # as an image_url data URL, or an Anthropic image block
    if feature == "json-mode":
        assert sent[0].get("response_format") == {"type": "json_object"}
    if feature == "responses":
        assert sent[0]["messages"][-1]["content"] in ("Say hello", [{"type": "text", "text": "Say hello"}])
    if feature == "completions":
        assert [s["messages"] for s in sent] == [[{"role": "user", "content": "Say hello"}]] * 2
        assert sent[0]["max_tokens"] == 50
    if feature == "embeddings":
        assert sent == [
            {"model": "text-embedding-3-small", "input": ["first text"], "encoding_format": "base64", "dimensions": 256}
        ]
