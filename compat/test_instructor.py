"""instructor over the official ``openai`` client, pointed at the gateway, in each mode that a gateway must carry."""

from __future__ import annotations

import instructor
import openai
import pytest
from pydantic import BaseModel

from compat.conftest import Gateway


class Incident(BaseModel):
    service: str
    severity: int


def patched(gw: Gateway, mode: instructor.Mode) -> instructor.Instructor:
    return instructor.from_openai(openai.OpenAI(base_url=gw.v1, api_key="unused", max_retries=0), mode=mode)


def ask(client: instructor.Instructor) -> Incident:
    return client.chat.completions.create(
        model="gpt",
        response_model=Incident,
        max_retries=0,
        messages=[{"role": "user", "content": "The checkout service is down"}],
    )


@pytest.mark.client("instructor", "tools")
def test_mode_tools(gateway: Gateway) -> None:
    mark = gateway.upstreams.mark()
    assert isinstance(ask(patched(gateway, instructor.Mode.TOOLS)), Incident)
    [sent] = gateway.upstreams.openai_since(mark)
    assert sent["tool_choice"]["function"]["name"] == "Incident"


@pytest.mark.client("instructor", "structured")
def test_mode_json_schema(gateway: Gateway) -> None:
    mark = gateway.upstreams.mark()
    assert isinstance(ask(patched(gateway, instructor.Mode.JSON_SCHEMA)), Incident)
    [sent] = gateway.upstreams.openai_since(mark)
    assert sent["response_format"]["type"] == "json_schema"


@pytest.mark.client("instructor", "stream")
def test_partial_stream(gateway: Gateway) -> None:
    client = patched(gateway, instructor.Mode.TOOLS)
    partials = list(
        client.chat.completions.create_partial(
            model="gpt",
            response_model=Incident,
            max_retries=0,
            messages=[{"role": "user", "content": "The checkout service is down"}],
        )
    )
    assert partials and isinstance(partials[-1].service, str)


@pytest.mark.client("instructor", "json-mode")
def test_mode_json(gateway: Gateway) -> None:
    mark = gateway.upstreams.mark()
    assert isinstance(ask(patched(gateway, instructor.Mode.JSON)), Incident)
    [sent] = gateway.upstreams.openai_since(mark)
    assert sent.get("response_format") == {"type": "json_object"}
