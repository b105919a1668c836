"""The clients under test, behind one tiny interface so every one is timed by the same harness code.

Each client is an async context manager with two operations against the fake upstream:

- :meth:`BenchClient.complete`: one non-streaming chat completion, returning the answer text;
- :meth:`BenchClient.stream`: one streaming chat completion, yielding each content piece as it arrives.

Returning / yielding the text lets the harness check that every client really parsed the answer: a client that
skipped the work would look fast for the wrong reason.
"""

from __future__ import annotations

import itertools
import os
from collections.abc import AsyncIterator
from types import TracebackType
from typing import Any

import orjson

PROMPT = "Summarise the anomaly pattern in the attached metrics in one paragraph."
MODEL = "bench-model"
API_KEY = "x"  # the fake upstream accepts anything; the SDKs insist on some key
_HEADERS = {"content-type": "application/json", "authorization": f"Bearer {API_KEY}"}
_DATA = b"data: "
_serial = itertools.count(1)


def next_prompt() -> str:
    """A prompt no client has sent before: every call is a new question, as in real traffic, so no response cache
    or de-duplication (llm-manager has both, on by default) can answer without the upstream."""
    return f"{PROMPT} (request {next(_serial)})"


def _messages() -> list[Any]:  # Any: each SDK wants its own TypedDict for the same plain dict
    return [{"role": "user", "content": next_prompt()}]


class BenchClient:
    """Base class: ``async with Client(base_url) as c: await c.complete()``."""

    name = "?"

    def __init__(self, base_url: str) -> None:
        self.base_url = base_url.rstrip("/")  # ".../v1"
        self.url = f"{self.base_url}/chat/completions"

    async def open(self) -> None:
        """Create sessions / pools inside the running loop."""

    async def close(self) -> None:
        """Release them."""

    async def complete(self) -> str:
        raise NotImplementedError

    def stream(self) -> AsyncIterator[str]:
        raise NotImplementedError

    async def __aenter__(self) -> BenchClient:
        await self.open()
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.close()


def _body(stream: bool, model: str = MODEL) -> bytes:
    # The raw baselines still serialise per call: a real caller would, and it is part of the honest floor.
    body: dict[str, Any] = {"model": model, "messages": _messages()}
    if stream:
        body["stream"] = True
        body["stream_options"] = {"include_usage": True}
    return orjson.dumps(body)


def _answer(payload: bytes) -> str:
    return str(orjson.loads(payload)["choices"][0]["message"]["content"])


def _sse_texts(buf: bytes) -> tuple[list[str], bytes, bool]:
    """Minimal SSE parse for the raw baselines: ``(texts, rest of buffer, saw [DONE])``.

    Assumes ``\\n\\n``-separated single-line ``data:`` events, which is what the fake upstream (and OpenAI) sends;
    the libraries under test handle the general case, so this is a floor, not a competitor.
    """
    *events, rest = buf.split(b"\n\n")
    texts: list[str] = []
    for event in events:
        if not event.startswith(_DATA):
            continue
        data = event[len(_DATA) :]
        if data == b"[DONE]":
            return texts, rest, True
        choices = orjson.loads(data)["choices"]
        if choices and (text := choices[0]["delta"].get("content")):
            texts.append(text)
    return texts, rest, False


class RawAiohttp(BenchClient):
    """The floor: one aiohttp ClientSession, POST, read, orjson parse. What every other client is measured against."""

    name = "raw aiohttp"

    async def open(self) -> None:
        import aiohttp

        self.session = aiohttp.ClientSession()

    async def close(self) -> None:
        await self.session.close()

    async def complete(self) -> str:
        async with self.session.post(self.url, data=_body(False), headers=_HEADERS) as resp:
            resp.raise_for_status()
            return _answer(await resp.read())

    async def stream(self) -> AsyncIterator[str]:
        async with self.session.post(self.url, data=_body(True), headers=_HEADERS) as resp:
            resp.raise_for_status()
            buf = b""
            async for data in resp.content.iter_any():
                texts, buf, done = _sse_texts(buf + data)
                for text in texts:
                    yield text
                if done:
                    return


class RawPyreqwest(BenchClient):
    """The same minimal call on pyreqwest (Rust's reqwest / hyper): faster than aiohttp on its own, yet slower inside
    the gateway (docs/speed.md), so it is measured here but not used."""

    name = "raw pyreqwest"

    async def open(self) -> None:
        from pyreqwest.client import ClientBuilder

        self.client = ClientBuilder().build()

    async def close(self) -> None:
        await self.client.close()

    async def complete(self) -> str:
        resp = await self.client.post(self.url).headers(_HEADERS).body_bytes(_body(False)).build().send()
        resp.error_for_status()
        return _answer((await resp.bytes()).to_bytes())

    async def stream(self) -> AsyncIterator[str]:
        request = self.client.post(self.url).headers(_HEADERS).body_bytes(_body(True))
        async with request.streamed_read_buffer_limit(0).build_streamed() as resp:
            resp.error_for_status()
            buf = b""
            while (data := await resp.body_reader.read_chunk()) is not None:
                texts, buf, done = _sse_texts(buf + data.to_bytes())
                for text in texts:
                    yield text
                if done:
                    return


class RawHttpx(BenchClient):
    """The same minimal call on httpx's AsyncClient (the transport the official SDKs are built on)."""

    name = "raw httpx"

    async def open(self) -> None:
        import httpx

        # Keep as many idle connections as aiohttp does (its default pool is 100 and keeps them all); httpx's
        # default keeps 20, which at concurrency 64 would measure connection churn instead of the client.
        limits = httpx.Limits(max_connections=100, max_keepalive_connections=100)
        self.client = httpx.AsyncClient(timeout=30.0, limits=limits)

    async def close(self) -> None:
        await self.client.aclose()

    async def complete(self) -> str:
        resp = await self.client.post(self.url, content=_body(False), headers=_HEADERS)
        resp.raise_for_status()
        return _answer(resp.content)

    async def stream(self) -> AsyncIterator[str]:
        async with self.client.stream("POST", self.url, content=_body(True), headers=_HEADERS) as resp:
            resp.raise_for_status()
            buf = b""
            async for data in resp.aiter_raw():
                texts, buf, done = _sse_texts(buf + data)
                for text in texts:
                    yield text
                if done:
                    return


class Ours(BenchClient):
    """``LLMManager.generate()`` / ``.stream()`` with one openai-compatible deployment, everything else default."""

    name = "llm-manager"
    extra_config: dict[str, Any] = {}  # merged into the config; read-only, subclasses replace it

    async def open(self) -> None:
        from llm_manager import LLMManager

        deployment = {"provider": "openai-compatible", "base_url": self.base_url, "model": MODEL}
        self.llm = LLMManager.from_config({"models": {"bench": deployment}, **self.extra_config})

    async def close(self) -> None:
        await self.llm.aclose()

    async def complete(self) -> str:
        return (await self.llm.generate(next_prompt())).content

    async def stream(self) -> AsyncIterator[str]:
        async with self.llm.stream(next_prompt()) as events:
            async for event in events:
                if event.delta:
                    yield event.delta


class OursCacheOff(Ours):
    """The same with the response cache switched off: shows what the (default-on) cache costs on a miss."""

    name = "llm-manager, cache off"
    extra_config = {"cache": {"enabled": False}}


class OpenAISDK(BenchClient):
    """The official SDK: ``AsyncOpenAI(...).chat.completions.create`` with retries off (the upstream never fails)."""

    name = "openai SDK"

    async def open(self) -> None:
        import openai

        self.client = openai.AsyncOpenAI(base_url=self.base_url, api_key=API_KEY, max_retries=0)

    async def close(self) -> None:
        await self.client.close()

    async def complete(self) -> str:
        resp = await self.client.chat.completions.create(model=MODEL, messages=_messages())
        return resp.choices[0].message.content or ""

    async def stream(self) -> AsyncIterator[str]:
        stream = await self.client.chat.completions.create(
            model=MODEL,
            messages=_messages(),
            stream=True,
            stream_options={"include_usage": True},
        )
        async with stream:
            async for chunk in stream:
                if chunk.choices and (text := chunk.choices[0].delta.content):
                    yield text


class LiteLLM(BenchClient):
    """``litellm.acompletion(model="openai/bench-model", api_base=...)`` with LiteLLM's defaults."""

    name = "LiteLLM"

    async def open(self) -> None:
        # The bundled price table instead of a fetch from GitHub at import: no network here, and a fetch would
        # time the network, not LiteLLM. Must be set before the first import (run.py sets it for subprocesses too).
        os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")
        import litellm

        self.litellm = litellm

    async def complete(self) -> str:
        resp = await self.litellm.acompletion(
            model=f"openai/{MODEL}", messages=_messages(), api_base=self.base_url, api_key=API_KEY
        )
        return str(resp.choices[0].message.content or "")

    async def stream(self) -> AsyncIterator[str]:
        resp = await self.litellm.acompletion(
            model=f"openai/{MODEL}",
            messages=_messages(),
            api_base=self.base_url,
            api_key=API_KEY,
            stream=True,
            stream_options={"include_usage": True},
        )
        async for chunk in resp:
            if chunk.choices and (text := chunk.choices[0].delta.content):
                yield text


def litellm_missing() -> str | None:
    """Why LiteLLM cannot be measured (not installed), or ``None`` when it can."""
    import importlib.util

    if importlib.util.find_spec("litellm") is None:
        return "litellm is not installed (pip install -e '.[bench]')"
    return None
