"""Simon Willison's ``llm`` CLI, with the gateway configured as an OpenAI-compatible model."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from compat.conftest import Gateway
from compat.test_openai_python import PIXEL
from compat.upstream import ANSWER, image_sent

LLM = str(Path(sys.executable).with_name("llm"))


@pytest.fixture
def llm_home(gateway: Gateway, tmp_path: Path) -> Path:
    """An ``llm`` user directory whose extra models are the gateway (Chat Completions, and Responses)."""
    models = [
        {"model_id": "gateway", "model_name": "gpt", "api_base": gateway.v1, "supports_schema": True,
         "supports_tools": True, "vision": True},
        {"model_id": "gateway-responses", "model_name": "gpt", "api_base": gateway.v1, "responses": True},
    ]  # fmt: skip
    (tmp_path / "extra-openai-models.yaml").write_text(json.dumps(models))
    return tmp_path


def llm(home: Path, *args: str) -> str:
    env = {**os.environ, "LLM_USER_PATH": str(home), "OPENAI_API_KEY": "unused"}
    done = subprocess.run([LLM, *args], env=env, capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    return done.stdout.strip()


@pytest.mark.client("llm-cli", "plain")
def test_prompt(gateway: Gateway, llm_home: Path) -> None:
    mark = gateway.upstreams.mark()
    assert llm(llm_home, "-m", "gateway", "--no-stream", "Say hello") == ANSWER
    [sent] = gateway.upstreams.openai_since(mark)
    assert sent["messages"][-1]["content"] == "Say hello" and not sent.get("stream")


@pytest.mark.client("llm-cli", "stream")
def test_streamed_prompt(gateway: Gateway, llm_home: Path) -> None:
    mark = gateway.upstreams.mark()
    assert llm(llm_home, "-m", "gateway", "-s", "Be brief.", "Say hello") == ANSWER
    [sent] = gateway.upstreams.openai_since(mark)
    assert sent["stream"] is True and sent["messages"][0] == {"role": "system", "content": "Be brief."}


@pytest.mark.client("llm-cli", "tools")
def test_tool(gateway: Gateway, llm_home: Path) -> None:
    mark = gateway.upstreams.mark()
    assert llm(llm_home, "-m", "gateway", "-T", "llm_version", "Which llm version?") == ANSWER
    first, second = gateway.upstreams.openai_since(mark)
    assert first["tools"][0]["function"]["name"] == "llm_version"
    assert second["messages"][-1]["role"] == "tool"


@pytest.mark.client("llm-cli", "structured")
def test_schema(gateway: Gateway, llm_home: Path) -> None:
    out = json.loads(llm(llm_home, "-m", "gateway", "--schema", "service, severity int", "The checkout is down"))
    assert isinstance(out["service"], str) and isinstance(out["severity"], int)


@pytest.mark.client("llm-cli", "json-mode")
def test_json_object_option(gateway: Gateway, llm_home: Path) -> None:
    mark = gateway.upstreams.mark()
    assert isinstance(json.loads(llm(llm_home, "-m", "gateway", "-o", "json_object", "1", "Answer in JSON")), dict)
    [sent] = gateway.upstreams.openai_since(mark)
    assert sent.get("response_format") == {"type": "json_object"}


@pytest.mark.client("llm-cli", "image")
def test_attachment(gateway: Gateway, llm_home: Path, tmp_path: Path) -> None:
    import base64

    image = tmp_path / "pixel.png"
    image.write_bytes(base64.b64decode(PIXEL))
    mark = gateway.upstreams.mark()
    assert llm(llm_home, "-m", "gateway", "-a", str(image), "What is in this image?") == ANSWER
    [sent] = gateway.upstreams.openai_since(mark)
    assert image_sent(sent) == PIXEL


@pytest.mark.client("llm-cli", "responses")
def test_responses_model(gateway: Gateway, llm_home: Path) -> None:
    mark = gateway.upstreams.mark()
    assert llm(llm_home, "-m", "gateway-responses", "Say hello") == ANSWER
    [sent] = gateway.upstreams.openai_since(mark)
    assert sent["messages"][-1] == {"role": "user", "content": "Say hello"}
