"""The OpenAI Agents SDK, pointed at the gateway: its default (the Responses API) and its Chat Completions model."""

from __future__ import annotations

import openai
import pytest
from agents import Agent, OpenAIChatCompletionsModel, Runner, function_tool, set_tracing_disabled
from agents.models.openai_responses import OpenAIResponsesModel
from pydantic import BaseModel

from compat.conftest import Gateway
from compat.upstream import ANSWER

set_tracing_disabled(True)  # traces would go to OpenAI's servers


class Incident(BaseModel):
    service: str
    severity: int


@function_tool
def get_weather(city: str) -> str:
    """Current weather for a city."""
    return f"4 °C in {city}"


def chat_model(gw: Gateway) -> OpenAIChatCompletionsModel:
    return OpenAIChatCompletionsModel(model="gpt", openai_client=openai.AsyncOpenAI(base_url=gw.v1, api_key="unused"))


@pytest.mark.client("agents", "plain")
async def test_chat_completions_model(gateway: Gateway) -> None:
    agent = Agent(name="helper", instructions="Be brief.", model=chat_model(gateway))
    result = await Runner.run(agent, "Say hello")
    assert result.final_output == ANSWER


@pytest.mark.client("agents", "stream")
async def test_run_streamed(gateway: Gateway) -> None:
    agent = Agent(name="helper", instructions="Be brief.", model=chat_model(gateway))
    run = Runner.run_streamed(agent, "Say hello")
    kinds = [event.type async for event in run.stream_events()]
    assert "raw_response_event" in kinds
    assert run.final_output == ANSWER


@pytest.mark.client("agents", "tools")
async def test_tool_loop(gateway: Gateway) -> None:
    mark = gateway.upstreams.mark()
    agent = Agent(name="weather", instructions="Use tools.", model=chat_model(gateway), tools=[get_weather])
    result = await Runner.run(agent, "Weather in Oslo?")
    assert result.final_output == ANSWER
    first, second = gateway.upstreams.openai_since(mark)
    assert first["tools"][0]["function"]["name"] == "get_weather"
    assert second["messages"][-1]["role"] == "tool"


@pytest.mark.client("agents", "structured")
async def test_output_type(gateway: Gateway) -> None:
    agent = Agent(name="triage", instructions="Classify.", model=chat_model(gateway), output_type=Incident)
    result = await Runner.run(agent, "The checkout is down")
    assert isinstance(result.final_output, Incident)


@pytest.mark.client("agents", "responses")
async def test_default_model_is_responses(gateway: Gateway) -> None:
    mark = gateway.upstreams.mark()
    model = OpenAIResponsesModel(model="gpt", openai_client=openai.AsyncOpenAI(base_url=gateway.v1, api_key="unused"))
    result = await Runner.run(Agent(name="helper", instructions="Be brief.", model=model), "Say hello")
    assert result.final_output == ANSWER
    [sent] = gateway.upstreams.openai_since(mark)
    assert sent["messages"] == [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "Say hello"}]
