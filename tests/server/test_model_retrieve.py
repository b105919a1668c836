"""``GET /v1/models/{id}`` through the official ``openai`` SDK's ``models.retrieve``."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import httpx
import openai
import pytest

from llm_manager.manager import LLMManager
from llm_manager.server.keys import create_key
from tests.helpers import sim_settings
from tests.server.conftest import MODELS, Gateway, start_gateway


@pytest.fixture
def slashed() -> Iterator[Gateway]:
    """The usual models plus one named as OpenAI-compatible vendors name theirs (with a slash), and an alias."""
    models: dict[str, dict[str, Any]] = {k: dict(v) for k, v in MODELS.items()}
    models["openrouter/meta-llama/llama-3.1-8b"] = {"family": "llama", "aliases": ["vendor/llama"]}
    yield from start_gateway(sim_settings(models))


@pytest.fixture
def client(slashed: Gateway) -> Iterator[openai.OpenAI]:
    with openai.OpenAI(base_url=f"{slashed.url}/v1", api_key="x", max_retries=0, timeout=10) as c:
        yield c


def test_retrieve_is_the_listed_model_object(client: openai.OpenAI) -> None:
    listed = {m.id: m for m in client.models.list()}
    for model_id in ("gpt", "smart", "task:analysis", "emb"):
        got = client.models.retrieve(model_id)
        assert got == listed[model_id]
        assert (got.id, got.object) == (model_id, "model")
    assert client.models.retrieve("gpt").owned_by == "simulated"
    assert client.models.retrieve("emb").model_extra == {"kind": "embedding", "dimensions": 8}


def test_ids_with_slashes_are_found(client: openai.OpenAI) -> None:
    assert client.models.retrieve("openrouter/meta-llama/llama-3.1-8b").id == "openrouter/meta-llama/llama-3.1-8b"
    assert client.models.retrieve("vendor/llama").id == "vendor/llama"


def test_unknown_model_is_an_openai_shaped_404(client: openai.OpenAI, slashed: Gateway) -> None:
    with pytest.raises(openai.NotFoundError) as info:
        client.models.retrieve("nope")
    assert info.value.code == "model_not_found" and info.value.param == "model"
    assert "nope" in info.value.message
    raw = httpx.get(f"{slashed.url}/v1/models/openrouter/unknown")
    assert raw.status_code == 404 and raw.json()["error"]["code"] == "model_not_found"


def test_a_restricted_key_sees_only_its_models(slashed: Gateway) -> None:
    async def make(llm: LLMManager) -> tuple[str, str]:
        return await create_key(await llm.database(), "ci", models=["gpt"])

    _, secret = slashed.run(make)
    with openai.OpenAI(base_url=f"{slashed.url}/v1", api_key=secret, max_retries=0, timeout=10) as keyed:
        assert keyed.models.retrieve("gpt").id == "gpt"
        with pytest.raises(openai.NotFoundError):
            keyed.models.retrieve("claude")  # exists, but not for this key: no different from unknown
    with openai.OpenAI(base_url=f"{slashed.url}/v1", api_key="wrong", max_retries=0, timeout=10) as stranger:
        with pytest.raises(openai.AuthenticationError):
            stranger.models.retrieve("gpt")
